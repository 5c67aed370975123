"""``python -m hvae_lib {build,run,refresh}``: see :mod:`hvae_lib.book`."""

from __future__ import annotations

import sys

from .book import main

if __name__ == "__main__":
    sys.exit(main())
