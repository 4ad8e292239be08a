"""``python -m bioimage_py``: the ``bioimage-py`` command line (see ``bioimage_py.cli``)."""
from __future__ import annotations

import sys

from bioimage_py.cli import main

if __name__ == "__main__":
    sys.exit(main())
