"""``python -m backuppolicy``: the command line."""

import sys

from backuppolicy.cli import main

sys.exit(main())
