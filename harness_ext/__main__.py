"""`python -m harness_ext` is the same as the `harness-ext` console script."""

from __future__ import annotations

import sys

from harness_ext.cli import main

if __name__ == "__main__":
    sys.exit(main())
