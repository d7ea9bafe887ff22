"""``python -m croupier.devcluster``: the same as ``croupier-devcluster``."""

import sys

from .cli import main

sys.exit(main())
