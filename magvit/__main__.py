import sys

from magvit.cli.main import main

sys.exit(main())
