"""The collector's only database user: readings, intervals, registry, gaps and quarantine,
in a SQLite file or a PostgreSQL database.

`schema` holds the migrations and opens connections, `sql` the little that differs between
the two engines, `writer` is the writer (`Store`), `reader` the queries (`Reader`), each on
its own connection; `rows` the typed rows both take and give back; `copy` moves a whole
database from one engine to the other.
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
