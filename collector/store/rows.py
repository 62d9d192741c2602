"""The rows the store takes and gives back, one type per kind of row.

Rows read or written by the thousand (readings, intervals) are NamedTuples: built from
SQLite's tuples in C, about 20 % dearer to fetch than those, and they still unpack by
position. Rows for commands, the web layer and alert rounds are frozen dataclasses, named
field for field after the JSON the commands have always printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal, NamedTuple, Protocol

# A JSON object kept as text in one column (an opportunity's figures, a gateway's status).
JsonObject = dict[str, object]
OpportunityStatus = Literal["open", "closed"]  # the table's CHECK allows no other

# ---- written by the ingest loop and the interval refresh


class Quarantined(NamedTuple):
    """A rejected message for the quarantine: its payload capped, its full size kept."""

    topic: str
    reason: str
    detail: str
    payload: bytes
    size: int


class IntervalRow(NamedTuple):
    """One 15-minute interval of a meter as the refresh computes it."""

    start_ms: int
    energy_kwh: float | None
    estimated: bool
    export_kwh: float | None
    export_estimated: bool
    mean_power_w: float | None
    max_power_w: float | None


class DirtyMeter(NamedTuple):
    """A meter whose intervals are stale from `from_ms` on."""

    meter_id: int
    from_ms: int


# ---- readings and intervals, read back


class ReadingRow(NamedTuple):
    """One stored value of one site's meter."""

    gateway: str
    meter: str
    quantity: str
    ts_ms: int
    value: float


class SiteInterval(NamedTuple):
    """A meter's 15-minute import energy and power; `estimated` is 0 or 1."""

    gateway: str
    meter: str
    start_ms: int
    energy_kwh: float | None
    estimated: int
    mean_power_w: float | None
    max_power_w: float | None


class SiteEnergyInterval(NamedTuple):
    """A meter's 15-minute import and export energy and power; the estimates are 0 or 1."""

    gateway: str
    meter: str
    start_ms: int
    energy_kwh: float | None
    estimated: int
    export_kwh: float | None
    export_estimated: int
    mean_power_w: float | None
    max_power_w: float | None


class SiteTotal(NamedTuple):
    """A site's 15-minute figures summed over its meters; None where no meter had one."""

    start_ms: int
    energy_kwh: float | None
    estimated: int | None
    mean_power_w: float | None
    max_power_w: float | None


class MeterRef(NamedTuple):
    """A known meter: its id and where it sits."""

    meter_id: int
    site: str
    gateway: str
    meter: str


class MeterEnergy(NamedTuple):
    """A meter's import energy and peak power in one 15-minute interval."""

    meter_id: int
    start_ms: int
    energy_kwh: float | None
    max_power_w: float | None


class TemperatureRow(NamedTuple):
    """A site's outdoor temperature over one hour, from its start."""

    start_ms: int
    celsius: float


class Stat(NamedTuple):
    """A runtime figure (ingest rate, sink backlog) and when it was last set."""

    value: float | str | None
    updated_ms: int


# ---- registry, status and quarantine


@dataclass(frozen=True, slots=True)
class LatestRow:
    """The newest value of one quantity of one meter."""

    site: str
    gateway: str
    meter: str
    quantity: str
    ts_ms: int
    value: float


@dataclass(frozen=True, slots=True)
class MeterRow:
    """A meter of a site and the quantities it has reported; `source` and `resolution_ms`
    say where an imported history came from (None: a gateway's readings)."""

    gateway: str
    meter: str
    quantities: list[str]
    source: str | None = None
    resolution_ms: int | None = None


@dataclass(frozen=True, slots=True)
class GatewayRow:
    """A gateway: its sequence and state, its last status message and health report."""

    site: str
    gateway: str
    registered_ms: int
    last_seq: int | None
    last_seen_ms: int | None
    state: str | None
    state_ms: int | None
    status: JsonObject | None
    health: JsonObject | None
    health_ms: int | None = None  # when the collector received `health`


@dataclass(frozen=True, slots=True)
class GapRow:
    """Batches a gateway numbered but never delivered, with the times around them."""

    site: str
    gateway: str
    from_seq: int
    to_seq: int
    after_ms: int | None
    before_ms: int | None


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    """A rejected message and why; `payload` is None unless it was asked for."""

    id: int
    received_ms: int
    topic: str
    reason: str
    detail: str
    size: int
    payload: bytes | None = None


# ---- web: tokens, opportunities and alerts


@dataclass(frozen=True, slots=True)
class TokenRow:
    """An API token as listed: never its hash."""

    id: int
    name: str
    role: str
    sites: list[str]
    created_ms: int
    revoked_ms: int | None
    expires_ms: int | None


@dataclass(frozen=True, slots=True)
class TokenHashRow:
    """A token found by its hash, with the hash for a constant-time check."""

    id: int
    name: str
    role: str
    sites: list[str]
    hash: str
    revoked_ms: int | None
    expires_ms: int | None


@dataclass(frozen=True, slots=True)
class OpportunityRow:
    """A savings opportunity; `data` holds the scan's figures as JSON."""

    id: str
    site: str
    meter: str
    kind: str
    status: OpportunityStatus
    data: JsonObject
    updated_ms: int


@dataclass(frozen=True, slots=True)
class AlertRow:
    """A firing or resolved alert; `data` holds its values and notification state."""

    id: str
    site: str
    labels: dict[str, str]
    state: str
    severity: str
    summary: str
    started_ms: int
    resolved_ms: int | None
    data: JsonObject


# ---- evaluation: silences and notices


@dataclass(frozen=True, slots=True)
class SilenceRow:
    """Alerts of a site, or of one meter of it, muted for a time window."""

    id: str
    site: str
    meter: str | None
    starts_ms: int
    ends_ms: int
    reason: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class NoticeRow:
    """An alert notice waiting for its receiver; `due` once its retry time has come."""

    id: int
    receiver: str
    site: str
    body: bytes
    created_ms: int
    attempts: int
    due: bool


class OutgoingNotice(Protocol):
    """A notice to queue: the alert channels' own notice type fits as it is."""

    @property
    def receiver(self) -> str: ...
    @property
    def site(self) -> str: ...
    @property
    def body(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class StorageFigures:
    """Disk the database takes, and what it holds, for `status` and the sizing of retention."""

    db_bytes: int  # the file and its write-ahead log
    raw_bytes: int  # raw readings and their index
    rollup_bytes: int  # the 15-minute history (rollups and interval energy)
    raw_values: int  # values kept raw now
    raw_days: float  # how many days of raw readings the meters hold, on average
    rollup_meter_days: float  # days of 15-minute history, summed over meters
    # raw readings kept elsewhere: "VictoriaMetrics at URL" (raw_bytes: its disk, when it
    # says; raw_days: 0, its own retention keeps them)
    raw_in: str | None = None


# ---- verified savings: measures a company took


@dataclass(frozen=True, slots=True)
class MeasureExclusion:
    """A non-routine event (building works, a shutdown): local days, both ends included."""

    start: date
    end: date
    label: str = ""


@dataclass(frozen=True, slots=True)
class MeasureRow:
    """A measure a company took and how its savings are verified.

    `meters` are meter names at the site whose energy the measure changes; `installed_to`
    ends an installation period (None: installed on `installed_from`); `model` is the
    baseline model asked for ("auto" lets the data decide).
    """

    id: str
    site: str
    meters: list[str]
    kind: str
    title: str
    installed_from: date
    installed_to: date | None
    investment_dkk: float | None
    expected_kwh_year: float | None
    opportunity_id: str | None
    model: str
    exclusions: list[MeasureExclusion]
    note: str | None
    created_ms: int
    updated_ms: int
