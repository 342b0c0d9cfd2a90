"""``python -m crossent`` is the ``crossent`` command."""

import sys

from .cli import main

sys.exit(main())
