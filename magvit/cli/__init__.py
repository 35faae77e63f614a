"""The `magvit` command line.

Before anything imports torch: idle OpenMP threads sleep instead of spinning (see
`magvit/core/threads.py`), unless the user chose a policy.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
