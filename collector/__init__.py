"""Sparwatt collector: receives meter readings over MQTT, stores, analyses and alerts.

The collector ships in the same wheel as the gateway but needs the `collector` extra; an
install without it fails here, at once and by name, rather than deep inside some import.
"""

import sys
from importlib.util import find_spec
from pathlib import Path

# import names of the `collector` extra's packages (pyproject.toml)
_EXTRA = ("numpy", "pandas", "holidays", "fastapi", "uvicorn", "httpx", "jinja2", "markupsafe",
          "influxdb_client", "cryptography")  # fmt: skip
_missing = [name for name in _EXTRA if find_spec(name) is None]
if _missing:
    _message = (
        f"the Sparwatt collector needs the collector extra (missing: {', '.join(_missing)}); "
        "install it with: pip install 'sparwatt[collector]'"
    )
    if Path(sys.argv[0]).name == "sparwatt-collector":
        # the command itself, not a program importing the package: one line, no traceback
        print(f"sparwatt-collector: {_message}", file=sys.stderr)
        raise SystemExit(2)
    raise ModuleNotFoundError(_message, name=_missing[0])
