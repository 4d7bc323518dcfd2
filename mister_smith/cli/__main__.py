"""``python -m mister_smith.cli``: the same as the ``mister-smith`` command."""

import sys

from . import main

sys.exit(main())
