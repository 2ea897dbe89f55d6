"""``python -m embedsuite.app``: the same as the ``embedsuite`` command."""

from __future__ import annotations

import sys

from embedsuite.app.cli import main

if __name__ == "__main__":
    sys.exit(main())
