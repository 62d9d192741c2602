"""The MQTT wire contract v1 shared by gateway and collector (see docs/wire.md).

Topics, payload models, the canonical quantity vocabulary and the schema
version live here and nowhere else, so both ends cannot drift apart.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    PlainSerializer,
    ValidationError,
    model_validator,
)
from pydantic.dataclasses import dataclass as pydantic_dataclass

from sparwatt.errors import WireError
from sparwatt.timeutil import epochs_ms

SCHEMA_VERSION: Literal[1] = 1
TOPIC_ROOT = "sparwatt/v1"
READINGS_QOS = 1

# Ids appear in topics, file names and SQL; a narrow alphabet keeps every one of them safe.
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
# the largest seq a 64-bit signed integer column holds (SQLite's INTEGER, PostgreSQL's BIGINT)
MAX_SEQ = 2**63 - 1


class Kind(StrEnum):
    """How a quantity behaves over time."""

    COUNTER = "counter"  # only grows, except on reset or meter replacement
    GAUGE = "gauge"  # instantaneous value


@dataclass(frozen=True, slots=True)
class Quantity:
    """One entry of the canonical vocabulary."""

    name: str
    unit: str
    kind: Kind
    description: str


def _q(name: str, unit: str, kind: Kind, description: str) -> tuple[str, Quantity]:
    return name, Quantity(name, unit, kind, description)


_G, _C = Kind.GAUGE, Kind.COUNTER

QUANTITIES: dict[str, Quantity] = dict(
    [
        _q("voltage_l1_v", "V", _G, "Phase L1 to neutral voltage"),
        _q("voltage_l2_v", "V", _G, "Phase L2 to neutral voltage"),
        _q("voltage_l3_v", "V", _G, "Phase L3 to neutral voltage"),
        _q("voltage_l1_l2_v", "V", _G, "Line L1 to L2 voltage"),
        _q("voltage_l2_l3_v", "V", _G, "Line L2 to L3 voltage"),
        _q("voltage_l3_l1_v", "V", _G, "Line L3 to L1 voltage"),
        _q("current_l1_a", "A", _G, "Phase L1 current"),
        _q("current_l2_a", "A", _G, "Phase L2 current"),
        _q("current_l3_a", "A", _G, "Phase L3 current"),
        _q("current_n_a", "A", _G, "Neutral current"),
        _q("power_w", "W", _G, "Total active power, import positive"),
        _q("power_l1_w", "W", _G, "Phase L1 active power"),
        _q("power_l2_w", "W", _G, "Phase L2 active power"),
        _q("power_l3_w", "W", _G, "Phase L3 active power"),
        _q("reactive_power_var", "var", _G, "Total reactive power"),
        _q("apparent_power_va", "VA", _G, "Total apparent power"),
        _q("power_factor", "", _G, "Total power factor (signed as the meter reports it)"),
        _q("power_factor_l1", "", _G, "Phase L1 power factor"),
        _q("power_factor_l2", "", _G, "Phase L2 power factor"),
        _q("power_factor_l3", "", _G, "Phase L3 power factor"),
        _q("frequency_hz", "Hz", _G, "Grid frequency"),
        _q("energy_import_kwh", "kWh", _C, "Total active energy imported"),
        _q("energy_export_kwh", "kWh", _C, "Total active energy exported"),
        _q("reactive_energy_import_kvarh", "kvarh", _C, "Total reactive energy imported"),
        _q("reactive_energy_export_kvarh", "kvarh", _C, "Total reactive energy exported"),
        _q("energy_import_l1_kwh", "kWh", _C, "Phase L1 active energy imported"),
        _q("energy_import_l2_kwh", "kWh", _C, "Phase L2 active energy imported"),
        _q("energy_import_l3_kwh", "kWh", _C, "Phase L3 active energy imported"),
    ]
)


def format_ts(ts: datetime) -> str:
    """RFC 3339 UTC with milliseconds, the only timestamp form on the wire."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


Id = Annotated[str, Field(pattern=ID_PATTERN)]
# Checked in the validator's own code (no Python call per reading); any offset is exact.
Timestamp = Annotated[AwareDatetime, PlainSerializer(format_ts, return_type=str)]
# A Literal of the vocabulary: names and finiteness are checked without a Python call per value.
if TYPE_CHECKING:
    QuantityName = str
else:
    QuantityName = Literal[tuple(QUANTITIES)]
Values = Annotated[
    dict[QuantityName, FiniteFloat],
    Field(min_length=1, max_length=len(QUANTITIES)),
]

_STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# A slotted dataclass, not a model: a batch holds hundreds of these, and building one
# costs about half as much as building a model instance.
@pydantic_dataclass(frozen=True, slots=True, config=ConfigDict(extra="forbid"))
class Reading:
    """Values of one meter taken at one instant."""

    meter: Id
    ts: Timestamp
    values: Values


class ReadingsMessage(BaseModel):
    """One batch published on the readings topic."""

    model_config = _STRICT
    schema_: Literal[1] = Field(default=SCHEMA_VERSION, alias="schema")
    site: Id
    gateway: Id
    seq: int = Field(ge=0, le=MAX_SEQ)
    sent_at: Timestamp
    readings: list[Reading] = Field(min_length=1)

    @functools.cached_property
    def stamps_ms(self) -> list[int]:
        """Each reading's time in exact epoch milliseconds, in order: worked out once, for
        the collector's timestamp checks and its store."""
        return epochs_ms([reading.ts for reading in self.readings])


class GatewayState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class StatusMessage(BaseModel):
    """Retained gateway presence: birth on connect, last will on loss."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_: Literal[1] = Field(default=SCHEMA_VERSION, alias="schema")
    state: GatewayState
    version: str | None = None
    meters: list[Id] = Field(default_factory=list)
    ts: Timestamp | None = None


@dataclass(frozen=True, slots=True)
class TopicAddress:
    site: str
    gateway: str
    channel: str


CHANNELS = ("readings", "status", "health")


def topic(site: str, gateway: str, channel: Literal["readings", "status", "health"]) -> str:
    return f"{TOPIC_ROOT}/{site}/{gateway}/{channel}"


def alerts_topic(site: str) -> str:
    return f"{TOPIC_ROOT}/{site}/alerts"


def subscription(channel: str) -> str:
    """Wildcard filter for one channel of every gateway."""
    return f"{TOPIC_ROOT}/+/+/{channel}"


def parse_topic(name: str) -> TopicAddress:
    parts = name.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != TOPIC_ROOT or parts[4] not in CHANNELS:
        raise WireError(
            "bad_topic", f"topic {name!r} is not sparwatt/v1/<site>/<gateway>/<channel>"
        )
    return TopicAddress(parts[2], parts[3], parts[4])


def encode_readings(message: ReadingsMessage) -> bytes:
    return message.model_dump_json(by_alias=True).encode()


def encode_status(message: StatusMessage) -> bytes:
    return message.model_dump_json(by_alias=True, exclude_none=True).encode()


def _first_error(exc: ValidationError) -> tuple[str, str]:
    err = exc.errors(include_url=False)[0]
    loc = err["loc"]
    kind = err["type"]
    if kind == "literal_error" and loc[-1:] == ("[key]",):
        # a quantity name outside the vocabulary; the full list of names would bury the point
        where = ".".join(str(p) for p in loc[:-1])
        return "unknown_quantity", f"{where}: unknown quantity {loc[-2]!r}"
    where = ".".join(str(p) for p in loc) or "payload"
    if kind == "less_than_equal" and loc == ("seq",):
        return "seq_out_of_range", f"seq: exceeds {MAX_SEQ}"
    reason = {
        "json_invalid": "invalid_json",
        "literal_error": "unsupported_schema",
        "missing": "missing_field",
        "extra_forbidden": "unknown_field",
        "unexpected_keyword_argument": "unknown_field",
        "string_pattern_mismatch": "bad_id",
        "finite_number": "not_finite",
        "too_long": "too_many_items",
        "too_short": "empty",
        "timezone_aware": "naive_timestamp",
    }.get(kind, "invalid_value")
    return reason, f"{where}: {err['msg']}"


def decode_readings(topic_name: str, payload: bytes | str) -> ReadingsMessage:
    """Validate one readings payload against its topic; raise WireError with a reason code."""
    address = parse_topic(topic_name)
    if address.channel != "readings":
        raise WireError("bad_topic", f"topic {topic_name!r} is not a readings topic")
    try:
        # strict: "12", true and epoch numbers are not what the contract says, so they are refused
        message = ReadingsMessage.model_validate_json(payload, strict=True)
    except ValidationError as exc:
        raise WireError(*_first_error(exc)) from None
    if (message.site, message.gateway) != (address.site, address.gateway):
        raise WireError(
            "identity_mismatch",
            f"payload says {message.site}/{message.gateway}, "
            f"topic says {address.site}/{address.gateway}",
        )
    return message


def decode_status(payload: bytes | str) -> StatusMessage:
    try:
        return StatusMessage.model_validate_json(payload, strict=True)
    except ValidationError as exc:
        raise WireError(*_first_error(exc)) from None


def decode_json_object(payload: bytes | str) -> dict[str, Any]:
    """Parse a free-form JSON object (health messages), rejecting anything else."""
    try:
        value = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireError("invalid_json", str(exc)) from None
    if not isinstance(value, dict):
        raise WireError("invalid_value", "payload is not a JSON object")
    return value


# ---- Remote management (docs/fleet.md) ---------------------------------------------------
# The collector's broker user (the admin) asks; the gateway answers. Only that user may write
# the request topics and each gateway may read only its own (config/mosquitto ACL). Replies
# use MQTT v5 request/response: the request names a Response Topic under the gateway's
# `reply/` subtree and Correlation Data that the reply carries back.

HEX_VERSION_PATTERN = r"^[0-9a-f]{12}$"
UNITS_PATTERN = r"^[0-9]{1,3}(-[0-9]{1,3})?$"


def config_set_topic(site: str, gateway: str) -> str:
    """Where the admin pushes a new config to one gateway (QoS 1, never retained)."""
    return f"{TOPIC_ROOT}/{site}/{gateway}/config/set"


def config_result_topic(site: str, gateway: str) -> str:
    """Where a gateway reports the outcome of its latest push (QoS 1, retained)."""
    return f"{TOPIC_ROOT}/{site}/{gateway}/config/result"


def command_topic(site: str, gateway: str) -> str:
    """Installer commands (read, scan) the admin asks one gateway to run."""
    return f"{TOPIC_ROOT}/{site}/{gateway}/command"


def reply_topic(site: str, gateway: str, requester: str) -> str:
    """The Response Topic a requester names; it lies in the gateway's own subtree, so the
    gateway's ACL lets it answer there and nowhere else."""
    return f"{TOPIC_ROOT}/{site}/{gateway}/reply/{requester}"


def reply_prefix(site: str, gateway: str) -> str:
    return f"{TOPIC_ROOT}/{site}/{gateway}/reply/"


def reply_subscription(requester: str) -> str:
    """Replies of every gateway to one requester."""
    return f"{TOPIC_ROOT}/+/+/reply/{requester}"


def state_topic(site: str, gateway: str, meter: str) -> str:
    """A meter's newest values, retained, for Home Assistant (gateway/home_assistant.py)."""
    return f"{TOPIC_ROOT}/{site}/{gateway}/state/{meter}"


def config_version(text: str) -> str:
    """A config's version: the start of its text's SHA-256, so a pushed and a stored copy of
    the same text agree without a counter kept anywhere."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class ConfigPush(BaseModel):
    """A new gateway config: the TOML text, its version, and the file name it came from
    (the gateway's validation errors name it, as check-config run on that file would)."""

    model_config = _STRICT
    schema_: Literal[1] = Field(default=SCHEMA_VERSION, alias="schema")
    version: str = Field(pattern=HEX_VERSION_PATTERN)
    source: str = Field(min_length=1, max_length=500)
    config: str = Field(max_length=1_000_000)


class ConfigResult(BaseModel):
    """A gateway's answer to a push: applied, or the exact validation errors."""

    model_config = _STRICT
    schema_: Literal[1] = Field(default=SCHEMA_VERSION, alias="schema")
    site: Id
    gateway: Id
    ok: bool
    version: str  # the pushed version
    running_version: str | None  # what runs now: the pushed one, or the one kept
    errors: list[str] = Field(default_factory=list)
    ts: Timestamp


class Command(BaseModel):
    """An installer command for a gateway: read one meter now, or scan one bus."""

    model_config = _STRICT
    schema_: Literal[1] = Field(default=SCHEMA_VERSION, alias="schema")
    command: Literal["read", "scan"]
    meter: Id | None = None
    bus: Id | None = None
    units: str = Field(default="1-32", pattern=UNITS_PATTERN)

    @model_validator(mode="after")
    def _target(self) -> Command:
        if self.command == "read" and self.meter is None:
            raise ValueError("read needs meter")
        if self.command == "scan" and self.bus is None:
            raise ValueError("scan needs bus")
        return self


class ReadReply(BaseModel):
    """One meter read once, on request; `values` in canonical units, `unit` names them."""

    model_config = _STRICT
    schema_: Literal[1] = Field(default=SCHEMA_VERSION, alias="schema")
    ok: bool
    meter: Id
    values: dict[QuantityName, FiniteFloat] = Field(default_factory=dict)
    unit: dict[QuantityName, str] = Field(default_factory=dict)
    error: str | None = None
    latency_ms: float = 0.0
    requests: int = 0
    invalid: list[str] = Field(default_factory=list)


class ScanHit(BaseModel):
    model_config = _STRICT
    unit: int = Field(ge=0, le=255)
    guess: str | None = None


class ScanReply(BaseModel):
    """Unit ids that answered on one of the gateway's buses, with the model each resembles."""

    model_config = _STRICT
    schema_: Literal[1] = Field(default=SCHEMA_VERSION, alias="schema")
    ok: bool
    bus: Id
    found: list[ScanHit] = Field(default_factory=list)
    error: str | None = None
    latency_ms: float = 0.0


class Refused(BaseModel):
    """A gateway's answer to a request it could not even read."""

    model_config = _STRICT
    schema_: Literal[1] = Field(default=SCHEMA_VERSION, alias="schema")
    ok: Literal[False] = False
    error: str


M = TypeVar("M", bound=BaseModel)


def encode(message: BaseModel) -> bytes:
    """Any remote-management message as JSON."""
    return message.model_dump_json(by_alias=True).encode()


def decode(model: type[M], payload: bytes | str) -> M:
    """A remote-management message, checked as strictly as readings; WireError otherwise."""
    try:
        return model.model_validate_json(payload, strict=True)
    except ValidationError as exc:
        raise WireError(*_first_error(exc)) from None
