"""The collector's only SQLite user: readings, intervals, registry, gaps and quarantine.

`schema` holds the migrations and opens connections, `writer` is the single writer
(`Store`), `reader` the queries (`Reader`), each on its own connection; `rows` the typed
rows both take and give back.
"""

from collector.store.reader import Reader
from collector.store.rows import (
    AlertRow,
    DirtyMeter,
    GapRow,
    GatewayRow,
    IntervalRow,
    JsonObject,
    LatestRow,
    MeasureExclusion,
    MeasureRow,
    MeterEnergy,
    MeterRef,
    MeterRow,
    NoticeRow,
    OpportunityRow,
    OpportunityStatus,
    OutgoingNotice,
    Quarantined,
    QuarantineRow,
    ReadingRow,
    SilenceRow,
    SiteEnergyInterval,
    SiteInterval,
    SiteTotal,
    Stat,
    StorageFigures,
    TemperatureRow,
    TokenHashRow,
    TokenRow,
)
from collector.store.schema import SCHEMA_VERSION, connect
from collector.store.writer import Store, StoreResult
from sparwatt.timeutil import now_ms

__all__ = [
    "SCHEMA_VERSION",
    "AlertRow",
    "DirtyMeter",
    "GapRow",
    "GatewayRow",
    "IntervalRow",
    "JsonObject",
    "LatestRow",
    "MeasureExclusion",
    "MeasureRow",
    "MeterEnergy",
    "MeterRef",
    "MeterRow",
    "NoticeRow",
    "OpportunityRow",
    "OpportunityStatus",
    "OutgoingNotice",
    "QuarantineRow",
    "Quarantined",
    "Reader",
    "ReadingRow",
    "SilenceRow",
    "SiteEnergyInterval",
    "SiteInterval",
    "SiteTotal",
    "Stat",
    "StorageFigures",
    "Store",
    "StoreResult",
    "TemperatureRow",
    "TokenHashRow",
    "TokenRow",
    "connect",
    "now_ms",
]
