"""``python -m gradcheck``: the command line (see :mod:`gradcheck.cli`)."""

import sys

from gradcheck.cli import main

sys.exit(main())
