"""``python -m asnmon.cli``."""

import sys

from asnmon.cli import main

sys.exit(main())
