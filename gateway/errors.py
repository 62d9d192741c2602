"""Gateway exceptions.

    GatewayError
    ├── ConfigError        (sparwatt.configfile: bad config, exit 2)
    └── ReadError          one Modbus request failed; `kind` says how
        kinds: timeout, exception (with Modbus exception code), connection, frame
"""

from __future__ import annotations

from sparwatt.configfile import ConfigError

__all__ = ["ConfigError", "GatewayError", "ReadError"]

ILLEGAL_ADDRESS = 2


class GatewayError(Exception):
    """Base of the gateway's own errors."""


class ReadError(GatewayError):
    def __init__(self, kind: str, detail: str, code: int | None = None) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.code = code

    @property
    def splittable(self) -> bool:
        """A block the meter refuses or ignores may succeed when read in smaller parts."""
        return self.kind == "timeout" or (self.kind == "exception" and self.code == ILLEGAL_ADDRESS)
