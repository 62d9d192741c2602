"""The collector's config file, validated once at start-up into pydantic models."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from collector.store.sql import is_postgres, target
from sparwatt import configfile
from sparwatt.configfile import TimeZoneName
from sparwatt.wire import ID_PATTERN

Id = Annotated[str, Field(pattern=ID_PATTERN)]
# a shared subscription's group name is one topic level (MQTT v5 4.8.2)
SHARE_NAME = r"[^/+#\s\x00-\x1f\x7f]{1,64}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _database(value: object) -> object:
    """A PostgreSQL URL stays a string (its password never in it: the config is no place
    for secrets); anything else is a SQLite file's path."""
    if not isinstance(value, str):
        return value
    if is_postgres(value) and re.match(r"^[a-z]+://[^/@:]*:[^@/]*@", value):
        raise PydanticCustomError(
            configfile.SECRET_ERROR,
            "a PostgreSQL URL in the config must not hold a password: give it in a libpq "
            "password file (?passfile=/etc/sparwatt/pgpass in the URL) or PGPASSWORD",
        )
    return target(value)


# a SQLite file (the embedded default) or a PostgreSQL URL (several collectors, one database)
Database = Annotated[Path | str, BeforeValidator(_database)]


class Victoria(_Model):
    """[storage.victoria]: a single node (`url`) or a cluster (`insert_url`, `select_url`)."""

    url: str | None = Field(default=None, description="a single node, e.g. http://vm:8428")
    insert_url: str | None = Field(
        default=None, description="a cluster's vminsert, e.g. http://vminsert:8480"
    )
    select_url: str | None = Field(
        default=None, description="a cluster's vmselect, e.g. http://vmselect:8481"
    )
    tenant: str = Field(
        default="0",
        pattern=r"^[0-9]{1,10}(:[0-9]{1,10})?$",
        description="a cluster's accountID or accountID:projectID",
    )
    timeout_ms: int = Field(default=10_000, ge=100)
    # a cluster's vmstorage nodes (e.g. http://vmstorage-1:8482): the refresh asks each to
    # make what it holds readable before it reads, as a single node's own URL is asked
    flush_urls: list[str] = Field(default_factory=list)
    # how long after a flush a new series (a new meter or quantity) may still be unreadable:
    # about a second measured on a single node; without a flush, pending samples wait for
    # the server's own schedule (about a second, new series up to ten)
    settle_s: float = Field(default=1.5, ge=0, le=60)
    # a batch is acknowledged only once its readings can be read back (a flush per batch,
    # up to `settle_s` more for a new series): for tests and demos, at a cost to ingest
    readable_on_ack: bool = False
    # how long the server keeps readings (its -retentionPeriod), for a cluster; a single
    # node says it itself. Older 15-minute history is final: never recomputed from what
    # is left (a month, the server's default, when unknown)
    retention_days: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_shape(self) -> Self:
        cluster = (self.insert_url, self.select_url)
        if self.url is not None and cluster != (None, None):
            raise ValueError("give url (a single node) or insert_url and select_url, not both")
        if self.url is None and None in cluster:
            raise ValueError(
                "give url (a single node) or both insert_url and select_url (a cluster)"
            )
        if self.url is not None and self.tenant != "0":
            raise ValueError("tenant is for a cluster: a single node has none")
        for name, value in (
            ("url", self.url),
            ("insert_url", cluster[0]),
            ("select_url", cluster[1]),
        ):
            if value is not None:
                _check_base(name, value)
        for value in self.flush_urls:
            _check_base("flush_urls", value)
        if self.readable_on_ack and self.url is None and not self.flush_urls:
            raise ValueError("readable_on_ack needs a single node (url) or flush_urls")
        return self


def _check_base(name: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"{name} must be an http(s) URL without query, e.g. http://vm:8428")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{name} must not hold credentials: the config is no place for them")
    if re.search(r"/(insert|select)(/|$)", parts.path):
        raise ValueError(
            f"{name} is the server's base URL: /insert/<tenant>/ and /select/<tenant>/ are "
            "added from `tenant`"
        )


class Storage(_Model):
    db: Database = Path("/var/lib/sparwatt-collector/sparwatt.db")
    # docs/storage.md: 14 days of raw readings, the 15-minute history for good
    raw_retention_days: float = Field(default=14.0, gt=0)
    # "full": every commit is on disk before its messages are acked, even across a power
    # cut; "normal" survives a collector crash but may lose the last commits on power loss
    synchronous: Literal["full", "normal"] = "full"
    # raw readings in VictoriaMetrics instead of the database (docs/scaling.md); the
    # database keeps everything else, the 15-minute history included
    victoria: Victoria | None = None


class Tls(_Model):
    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None


class Mqtt(_Model):
    host: str = "localhost"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password_file: Path | None = None
    tls: Tls | None = None
    client_id: str = "sparwatt-collector"
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    session_expiry_s: int = Field(
        default=7 * 86400, ge=0, description="broker keeps our queue this long while we are away"
    )
    # several collectors sharing the readings through `$share/<group>/...` (docs/scaling.md);
    # each needs its own client_id
    shared_group: str | None = Field(
        default=None, description="MQTT v5 shared subscription group for the readings"
    )

    @field_validator("shared_group")
    @classmethod
    def _group(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(SHARE_NAME, value):
            raise ValueError(
                "must be 1 to 64 characters of an MQTT topic level: no '/', '+' or '#', "
                "no spaces or control characters"
            )
        return value


class GatewayEntry(_Model):
    site: Id
    gateway: Id


class Ingest(_Model):
    max_payload_bytes: int = Field(default=1_000_000, ge=1024)
    max_readings_per_message: int = Field(default=5000, ge=1)
    max_future_s: float = Field(default=300.0, ge=0)
    max_past_days: float = Field(default=400.0, gt=0)
    registration: Literal["auto", "registry"] = "auto"
    gateways: list[GatewayEntry] = Field(default_factory=list)
    quarantine_payload_bytes: int = Field(default=4096, ge=0)
    batch_messages: int = Field(default=500, ge=1, description="messages per store commit")
    batch_wait_ms: float = Field(
        default=20.0, ge=0, le=1000, description="how long a commit waits for more messages"
    )
    # a seq jump becomes a gap only once the missing batches stayed away this long: with
    # shared ingest they may be in flight at another collector (0: a gap at once)
    gap_grace_s: float = Field(
        default=60.0, ge=0, le=86400, description="how long missing batches may still arrive"
    )


class Intervals(_Model):
    max_gap_minutes: float = Field(default=120.0, gt=0)
    rollover_kwh: list[float] = Field(default_factory=list)
    refresh_s: float = Field(default=30.0, gt=0)


class Influx(_Model):
    enabled: bool = False
    url: str = "http://localhost:8086"
    org: str = "sparwatt"
    bucket: str = "sparwatt"
    token_file: Path | None = None  # or SPARWATT_INFLUX_TOKEN
    measurement: str = Field(default="sparwatt", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    # the 15-minute history too, one point per meter and interval (fields <quantity>_mean,
    # _min, _max, _count for gauges, <quantity>_energy for counters)
    rollups: bool = False
    rollup_measurement: str = Field(
        default="sparwatt_15m", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
    )
    batch_size: int = Field(default=5000, ge=1, description="points per write request")
    flush_interval_ms: int = Field(default=1000, ge=10)
    max_buffer_points: int = Field(
        default=1_000_000, ge=1000, description="oldest points are dropped beyond this backlog"
    )
    timeout_ms: int = Field(default=10_000, ge=100)
    retry_initial_ms: int = Field(default=1000, ge=10)
    retry_max_ms: int = Field(default=60_000, ge=10)


class Http(_Model):
    """The collector's own web pages and HTTP API (see docs/web.md)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    secure_cookie: bool = Field(
        default=False, description="mark the login cookie Secure (behind HTTPS)"
    )


class Evaluation(_Model):
    """Savings scans and alerting on the stored data (docs/savings.md, docs/alerts.md)."""

    sites_file: Path | None = Field(default=None, description="site contexts; none: no scan")
    alerts_file: Path | None = Field(default=None, description="alert rules; none: no alerts")
    # when the collector's own jobs run; a site's local time is its timezone in the sites file
    timezone: TimeZoneName = Field(default="Europe/Copenhagen", description="of scan_at")
    scan_at: str = Field(
        default="02:30",
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="local time of the nightly savings scan",
    )
    scan_days: int = Field(
        default=91, ge=14, le=400, description="days of interval data each scan looks at"
    )
    dedicated_meters: list[str] = Field(
        default_factory=list, description="'site/meter' of sub-meters on one process"
    )
    alerts_every_s: float = Field(default=900.0, gt=0, description="one alert round per ...")
    alerts_delay_s: float = Field(
        default=60.0, ge=0, description="... this long after an interval closes"
    )
    run_at_start: bool = Field(
        default=False,
        description="also scan as the collector starts, and run an alert round alerts_delay_s "
        "later, instead of waiting for scan_at and the next interval",
    )

    @field_validator("dedicated_meters")
    @classmethod
    def _site_meter(cls, values: list[str]) -> list[str]:
        for value in values:
            parts = value.split("/")
            if len(parts) != 2 or not all(re.fullmatch(ID_PATTERN, p) for p in parts):
                raise ValueError(
                    f"{value!r} is not 'site/meter' with the ids gateways use "
                    "(lower-case letters, digits, '-' and '_')"
                )
        return values


class Provisioning(_Model):
    """Gateways' broker credentials, made and revoked on the broker host (docs/fleet.md)."""

    password_file: Path = Path("/etc/mosquitto/sparwatt/passwd")
    acl_file: Path = Path("/etc/mosquitto/sparwatt/acl")
    ca_cert: Path = Field(
        default=Path("/etc/mosquitto/sparwatt/ca.crt"), description="goes into every bundle"
    )
    ca_key: Path | None = Field(default=None, description="signs client certificates (--cert)")
    broker_host: str = Field(min_length=1, description="the broker as gateways reach it")
    broker_port: int = Field(default=8883, ge=1, le=65535)
    admins: list[str] = Field(
        default=["collector"], min_length=1, description="may configure and command gateways"
    )
    # how the broker re-reads the password file and ACL (both: SIGHUP to mosquitto)
    reload_pid_file: Path | None = None
    reload_command: list[str] | None = Field(default=None, min_length=1)
    home_assistant_prefix: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$"
    )
    cert_days: int = Field(default=3650, ge=1, le=36500)

    @model_validator(mode="after")
    def _reload(self) -> Self:
        if (self.reload_pid_file is None) == (self.reload_command is None):
            raise ValueError("give one of reload_pid_file and reload_command")
        return self


class CollectorConfig(_Model):
    storage: Storage = Storage()
    mqtt: Mqtt = Mqtt()
    ingest: Ingest = Ingest()
    intervals: Intervals = Intervals()
    influxdb: Influx = Influx()
    http: Http = Http()
    evaluation: Evaluation = Evaluation()
    provisioning: Provisioning | None = None

    @model_validator(mode="after")
    def _admin(self) -> Self:
        p, user = self.provisioning, self.mqtt.username
        if p is not None and user is not None and user not in p.admins:
            raise ValueError(
                f"provisioning.admins: the collector's own user {user!r} must be one, "
                "or it could not configure or command gateways"
            )
        return self

    @model_validator(mode="after")
    def _registry(self) -> Self:
        if self.ingest.registration == "registry" and not self.ingest.gateways:
            raise ValueError("ingest.registration = 'registry' needs ingest.gateways entries")
        return self


# Keys an older collector config may still carry: facts about a site live in the sites file.
MOVED = {
    "http.timezone": "moved to the sites file (evaluation.sites_file): pages show each site "
    "in its own timezone, set under [defaults] or [sites.<id>]",
}


def load(path: Path) -> CollectorConfig:
    config = configfile.load(CollectorConfig, path, moved=MOVED)
    # the evaluation files sit next to the collector config unless given absolute
    ev = config.evaluation
    files = {
        name: path.parent / value
        for name in ("sites_file", "alerts_file")
        if (value := getattr(ev, name)) is not None and not value.is_absolute()
    }
    if files:
        config = config.model_copy(update={"evaluation": ev.model_copy(update=files)})
    return config
