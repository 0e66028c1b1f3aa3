"""``python -m labpkg``: see ``labpkg.cli``."""

import sys

from labpkg.cli import main

sys.exit(main())
