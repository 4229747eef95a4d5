"""``python -m replaygate``."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    rv = main()
    sys.exit(rv if isinstance(rv, int) else 0)
