import sys

from croupier.modelserver.cli import main

sys.exit(main())
