"""`python -m glyphsr_core ...` entry point."""

import sys

from .cli import main

if __name__ == "__main__":  # spawned worker processes import this module; only the CLI runs it
    sys.exit(main())
