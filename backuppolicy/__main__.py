"""``python -m backuppolicy``: the command line."""

import sys

from backuppolicy.cli.main import main

sys.exit(main())
