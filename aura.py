#!/usr/bin/env python3
"""Run aura from a checkout: `python3 aura.py …` (no install needed beyond the deps)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aura.cli.app import main

if __name__ == "__main__":
    main()
