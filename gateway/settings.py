"""The gateway's config file, validated once at start-up into pydantic models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway import bus_budget, meter_maps
from sparwatt import configfile
from sparwatt.wire import ID_PATTERN

Id = Annotated[str, Field(pattern=ID_PATTERN)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Identity(_Model):
    site: Id
    id: Id
    state_dir: Path = Path("/var/lib/sparwatt-gateway")


class Tls(_Model):
    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure_skip_verify: bool = False

    @model_validator(mode="after")
    def _pair(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        return self


class Mqtt(_Model):
    host: str = "localhost"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password_file: Path | None = Field(
        default=None, description="file holding the password; SPARWATT_MQTT_PASSWORD also works"
    )
    tls: Tls | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    protocol: Literal["v5", "v311"] = "v5"
    reconnect_min_s: float = Field(default=1.0, ge=0.1, description="first retry delay")
    reconnect_max_s: float = Field(
        default=60.0,
        gt=0,
        description="retry delay ceiling; each wait is jittered between half of it and all of it",
    )

    @model_validator(mode="after")
    def _backoff(self) -> Self:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be at least reconnect_min_s")
        return self


class Outbox(_Model):
    commit_interval_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="readings are written to disk this often: the power-cut loss window",
    )
    max_mb: float = Field(default=200.0, gt=0)
    max_age_days: float = Field(default=30.0, gt=0)
    drain_per_s: float = Field(default=50.0, gt=0, description="backlog messages per second")
    max_inflight: int = Field(default=50, ge=1, le=65535)
    max_readings_per_message: int = Field(default=500, ge=1)


class Bus(_Model):
    id: Id
    transport: Literal["tcp", "rtu", "rtu-over-tcp"]
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    device: str | None = None
    baud: int = Field(default=9600, ge=300, le=921600)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    timeout_s: float = Field(default=1.0, gt=0, le=30)
    retries: int = Field(default=1, ge=0, le=5)
    pause_ms: int = Field(default=0, ge=0, le=5000)

    @model_validator(mode="after")
    def _endpoint(self) -> Self:
        if self.transport == "rtu":
            if not self.device:
                raise ValueError("transport 'rtu' needs device (e.g. /dev/ttyUSB0)")
        elif not self.host:
            raise ValueError(f"transport {self.transport!r} needs host")
        return self

    @property
    def tcp_port(self) -> int:
        return self.port or 502


class Group(_Model):
    quantities: list[str] = Field(min_length=1)
    interval_s: float = Field(ge=1, le=900)


class Meter(_Model):
    id: Id
    bus: Id
    unit: int = Field(ge=1, le=247)
    model: str
    interval_s: float = Field(default=10.0, ge=1, le=900)
    quantities: list[str] | None = Field(default=None, description="default: all of the model")
    groups: list[Group] = Field(default_factory=list)
    max_registers: int | None = Field(default=None, ge=1, le=125)

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        known = meter_maps.library()
        if value not in known:
            raise ValueError(f"unknown meter model {value!r}; known: {', '.join(sorted(known))}")
        return value

    @model_validator(mode="after")
    def _quantities_exist(self) -> Self:
        offered = meter_maps.library().get(self.model)
        if offered is None:
            return self
        wanted = list(self.quantities or []) + [q for g in self.groups for q in g.quantities]
        missing = [q for q in wanted if q not in offered.quantities]
        if missing:
            raise ValueError(f"model {self.model} has no quantity {', '.join(missing)}")
        return self

    def wanted(self, meter: meter_maps.MeterMap) -> list[str]:
        return list(self.quantities or meter.quantities)

    def schedules(self, meter: meter_maps.MeterMap) -> list[tuple[float, list[str]]]:
        """(interval, quantities) per schedule group; the rest use the meter's interval."""
        grouped = {q for g in self.groups for q in g.quantities}
        rest = [q for q in self.wanted(meter) if q not in grouped]
        out = [(g.interval_s, list(g.quantities)) for g in self.groups]
        if rest:
            out.append((self.interval_s, rest))
        return out


class Health(_Model):
    interval_s: float = Field(default=60.0, ge=1)


class Metrics(_Model):
    """The optional Prometheus listener for the gateway's own figures (gateway/metrics.py)."""

    listen: str | None = Field(
        default=None,
        pattern=r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$",
        description="host:port, e.g. 127.0.0.1:9108; none: no listener",
    )

    @field_validator("listen")
    @classmethod
    def _port(cls, value: str | None) -> str | None:
        if value is not None and not 1 <= int(value.rsplit(":", 1)[1]) <= 65535:
            raise ValueError("port must be 1..65535")
        return value

    def address(self) -> tuple[str, int] | None:
        """(host, port) to bind, brackets of an IPv6 host removed; None: no listener."""
        if self.listen is None:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


class HomeAssistant(_Model):
    """MQTT discovery for Home Assistant (gateway/home_assistant.py)."""

    enabled: bool = False
    prefix: str = Field(
        default="homeassistant",
        pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$",
        description="Home Assistant's discovery prefix",
    )


class GatewayConfig(_Model):
    gateway: Identity
    mqtt: Mqtt = Mqtt()
    outbox: Outbox = Outbox()
    health: Health = Health()
    metrics: Metrics = Metrics()
    home_assistant: HomeAssistant = HomeAssistant()
    buses: list[Bus] = Field(min_length=1)
    meters: list[Meter] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> Self:
        problems = []
        bus_ids = [b.id for b in self.buses]
        if len(set(bus_ids)) != len(bus_ids):
            problems.append("buses: bus ids must be unique")
        meter_ids = [m.id for m in self.meters]
        if len(set(meter_ids)) != len(meter_ids):
            problems.append("meters: meter ids must be unique")
        seen: set[tuple[str, int]] = set()
        for i, meter in enumerate(self.meters):
            if meter.bus not in bus_ids:
                problems.append(f"meters[{i}].bus: no bus with id {meter.bus!r}")
            if (meter.bus, meter.unit) in seen:
                problems.append(
                    f"meters[{i}].unit: unit {meter.unit} already used on bus {meter.bus!r}"
                )
            seen.add((meter.bus, meter.unit))
        if not problems:
            problems = bus_budget.problems(self)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def bus(self, bus_id: str) -> Bus:
        return next(b for b in self.buses if b.id == bus_id)


def load(path: Path) -> GatewayConfig:
    return configfile.load(GatewayConfig, path)


def mqtt_password(mqtt: Mqtt, environ: dict[str, str]) -> str | None:
    return configfile.read_secret(mqtt.password_file, "SPARWATT_MQTT_PASSWORD", environ)
