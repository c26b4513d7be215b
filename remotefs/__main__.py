"""``python -m remotefs``: the command line."""

import sys

from remotefs.cli import main

sys.exit(main())
