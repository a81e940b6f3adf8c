"""``python -m minidiff``: the same as the ``minidiff`` console script (see :mod:`minidiff.cli`)."""

import sys

from .cli import main

sys.exit(main())
