"""Publish as N gateways with M SDM630 meters each, without Modbus (see devtools/load.py).

Run:  .venv/bin/python bench/load_generator.py --port 1883 --gateways 2000 --meters 5 \\
          --interval-s 10 --duration-s 60
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.load import main

if __name__ == "__main__":
    sys.exit(main())
