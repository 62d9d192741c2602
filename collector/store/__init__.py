"""The collector's only SQLite user: readings, intervals, registry, gaps and quarantine.

`schema` holds the migrations and opens connections, `writer` is the single writer
(`Store`), `reader` the queries (`Reader`), each on its own connection.
"""

from collector.store.reader import Reader
from collector.store.schema import SCHEMA_VERSION, connect
from collector.store.writer import (
    INTERVAL_QUANTITIES,
    IntervalRow,
    Quarantined,
    Store,
    StoreResult,
    epoch_ms,
    now_ms,
)

__all__ = [
    "INTERVAL_QUANTITIES",
    "SCHEMA_VERSION",
    "IntervalRow",
    "Quarantined",
    "Reader",
    "Store",
    "StoreResult",
    "connect",
    "epoch_ms",
    "now_ms",
]
