"""A plugin whose import fails (a missing dependency)."""

import magvit_dependency_that_does_not_exist  # noqa: F401
