"""Pydantic models of alerts.toml; unknown keys are errors, secrets are only file paths."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from collector.alerts.inhibition import DEFAULT_INHIBIT_RULES, InhibitRule
from collector.alerts.matchers import parse_all
from collector.alerts.model import Severity
from collector.alerts.silences import Silence
from sparwatt import configfile
from sparwatt.wire import ID_PATTERN

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(value: Any) -> Any:
    """Accept "90s", "15m", "1h30m", plain seconds, or a timedelta; return seconds."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, str):
        text = value.strip()
        parts = _PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ValueError(f'duration {value!r} is not like "30s", "15m", "1h30m"')
        return sum(float(n) * _UNITS[u] for n, u in parts)
    return value  # numbers go on to float validation


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
Id = Annotated[str, Field(pattern=ID_PATTERN)]
_FORBID = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def _resolve(path: Path | None, info: ValidationInfo) -> Path | None:
    """Relative secret-file paths are relative to the config file, not the working directory."""
    if path is None or path.is_absolute():
        return path
    base = (info.context or {}).get("base_dir")
    return Path(base) / path if base else path


class ExpectedConfig(BaseModel):
    """How the expected usage (median and MAD per slot of the week) is learnt."""

    model_config = _FORBID
    weeks: int = Field(default=6, ge=4, le=8)
    slot_minutes: Literal[15, 60] = 60
    min_weeks: int = Field(default=3, ge=1, le=8)

    @model_validator(mode="after")
    def _enough_weeks(self) -> ExpectedConfig:
        if self.min_weeks > self.weeks:
            raise ValueError(f"min_weeks ({self.min_weeks}) exceeds weeks ({self.weeks})")
        return self


class UnusualUsageRule(BaseModel):
    model_config = _FORBID
    enabled: bool = True
    z_threshold: float = Field(default=3.5, gt=0)
    consecutive: int = Field(default=2, ge=1, le=96)
    min_deviation_kw: float = Field(default=1.0, ge=0)
    min_deviation_pct: float = Field(default=30.0, ge=0)
    mad_floor_kwh: float = Field(default=0.025, gt=0)
    mad_floor_pct: float = Field(default=5.0, ge=0)
    direction: Literal["above", "below", "both"] = "above"
    hold_missing: Duration = 6 * 3600.0
    for_: Duration = Field(default=15 * 60.0, alias="for")
    severity: Severity = Severity.WARNING


class MeterSilentRule(BaseModel):
    model_config = _FORBID
    enabled: bool = True
    after: Duration = Field(default=30 * 60.0, gt=0)
    for_: Duration = Field(default=0.0, alias="for")
    severity: Severity = Severity.WARNING


class GatewayOfflineRule(BaseModel):
    model_config = _FORBID
    enabled: bool = True
    for_: Duration = Field(default=5 * 60.0, alias="for")
    severity: Severity = Severity.CRITICAL


class CounterAnomalyRule(BaseModel):
    model_config = _FORBID
    enabled: bool = True
    window: Duration = Field(default=6 * 3600.0, gt=0)
    drop_tolerance_kwh: float = Field(default=0.01, ge=0)
    jump_margin: float = Field(default=1.0, gt=0)
    voltage_v: float = Field(default=400.0, gt=0)
    for_: Duration = Field(default=0.0, alias="for")
    severity: Severity = Severity.WARNING


class DataGapRule(BaseModel):
    model_config = _FORBID
    enabled: bool = True
    window: Duration = Field(default=24 * 3600.0, gt=0)
    min_missing: int = Field(default=1, ge=1)
    for_: Duration = Field(default=3600.0, alias="for")
    severity: Severity = Severity.INFO


class RulesConfig(BaseModel):
    model_config = _FORBID
    unusual_usage: UnusualUsageRule = UnusualUsageRule()
    meter_silent: MeterSilentRule = MeterSilentRule()
    gateway_offline: GatewayOfflineRule = GatewayOfflineRule()
    counter_anomaly: CounterAnomalyRule = CounterAnomalyRule()
    data_gap: DataGapRule = DataGapRule()


class InhibitConfig(BaseModel):
    model_config = _FORBID
    source: list[str] = Field(min_length=1)
    target: list[str] = Field(min_length=1)
    equal: list[str] = Field(default_factory=lambda: ["site"])

    @field_validator("source", "target")
    @classmethod
    def _matchers(cls, value: list[str]) -> list[str]:
        parse_all(value)
        return value

    def rule(self) -> InhibitRule:
        return InhibitRule(parse_all(self.source), parse_all(self.target), tuple(self.equal))


class SiteConfig(BaseModel):
    """Who hears about a site; what the site is (calendar, fuse) lives in the sites file."""

    model_config = _FORBID
    receivers: list[Id] | None = None  # None: use default_receivers


class MqttReceiver(BaseModel):
    model_config = _FORBID
    type: Literal["mqtt"]


class WebhookReceiver(BaseModel):
    model_config = _FORBID
    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://\S+$")
    timeout: Duration = Field(default=10.0, gt=0)
    retries: int = Field(default=3, ge=0, le=10)
    backoff: Duration = 1.0
    headers: dict[str, str] = Field(default_factory=dict)
    bearer_token_file: Path | None = None

    @field_validator("headers")
    @classmethod
    def _no_secrets(cls, value: dict[str, str]) -> dict[str, str]:
        if any(name.lower() == "authorization" for name in value):
            raise ValueError("put the token in bearer_token_file, not in headers")
        return value

    @field_validator("bearer_token_file")
    @classmethod
    def _relative_to_config(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return _resolve(value, info)


class EmailReceiver(BaseModel):
    model_config = _FORBID
    type: Literal["email"]
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    username: str | None = None
    password_file: Path | None = None
    sender: str = Field(pattern=_EMAIL.pattern)
    recipients: list[Annotated[str, Field(pattern=_EMAIL.pattern)]] = Field(min_length=1)
    timeout: Duration = Field(default=10.0, gt=0)
    ca_file: Path | None = None

    @field_validator("password_file", "ca_file")
    @classmethod
    def _relative_to_config(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return _resolve(value, info)

    @model_validator(mode="after")
    def _credentials(self) -> EmailReceiver:
        if (self.username is None) != (self.password_file is None):
            raise ValueError("username and password_file go together")
        if self.username is not None and not self.starttls:
            raise ValueError("login without starttls would send the password in clear")
        return self


Receiver = Annotated[MqttReceiver | WebhookReceiver | EmailReceiver, Field(discriminator="type")]


class SilenceConfig(BaseModel):
    model_config = _FORBID
    id: Id
    starts_at: datetime
    ends_at: datetime
    matchers: list[str] = Field(min_length=1)
    comment: str = ""

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("needs a UTC offset, e.g. 2025-07-14T00:00:00+02:00")
        return value

    @field_validator("matchers")
    @classmethod
    def _matchers(cls, value: list[str]) -> list[str]:
        parse_all(value)
        return value

    @model_validator(mode="after")
    def _order(self) -> SilenceConfig:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self

    def silence(self) -> Silence:
        matchers = parse_all(self.matchers)
        return Silence(self.id, self.starts_at, self.ends_at, matchers, self.comment)


class AlertsConfig(BaseModel):
    """Everything in alerts.toml."""

    model_config = _FORBID
    expected: ExpectedConfig = ExpectedConfig()
    rules: RulesConfig = RulesConfig()
    inhibit: list[InhibitConfig] | None = None  # None: the built-in gateway -> meters rule
    sites: dict[Id, SiteConfig] = Field(default_factory=dict)
    receivers: dict[Id, Receiver] = Field(default_factory=dict)
    default_receivers: list[Id] = Field(default_factory=list)
    silences: list[SilenceConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> AlertsConfig:
        problems = [
            f"default_receivers: unknown receiver {name!r}"
            for name in self.default_receivers
            if name not in self.receivers
        ]
        for site, cfg in self.sites.items():
            problems += [
                f"sites.{site}.receivers: unknown receiver {name!r}"
                for name in cfg.receivers or ()
                if name not in self.receivers
            ]
        ids = [s.id for s in self.silences]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        problems += [f"silences: id {i!r} used twice" for i in twice]
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def inhibit_rules(self) -> tuple[InhibitRule, ...]:
        if self.inhibit is None:
            return DEFAULT_INHIBIT_RULES
        return tuple(c.rule() for c in self.inhibit)

    def silence_list(self) -> tuple[Silence, ...]:
        return tuple(s.silence() for s in self.silences)

    def receivers_for(self, site: str) -> list[str]:
        cfg = self.sites.get(site)
        if cfg is not None and cfg.receivers is not None:
            return list(cfg.receivers)
        return list(self.default_receivers)


_TO_SITES = "moved to the sites file (evaluation.sites_file)"
# Keys an older alerts.toml may still carry: facts about a site have one home, the sites file.
MOVED = {
    "calendar.timezone": f"{_TO_SITES}: timezone under [defaults] or [sites.<id>]",
    "calendar.holiday_country": f"{_TO_SITES}: holidays.country",
    "calendar.holiday_subdivision": f"{_TO_SITES}: holidays.subdiv",
    "calendar.holiday_categories": f"{_TO_SITES}: holidays.categories",
    "calendar.extra_closed_days": f"{_TO_SITES}: holidays.extra, or closures for date ranges",
    "calendar.*": f"{_TO_SITES}: the site's calendar",
    "expected.holidays_as": f"{_TO_SITES}: holidays.treat_as (closed or sunday) decides it",
    "sites.*.fuse_a": f"{_TO_SITES}: main_fuse_a under [sites.{{0}}]",
}


def load_alerts_config(path: Path) -> AlertsConfig:
    """Read and validate alerts.toml; ConfigError lists one line per problem."""
    return configfile.load(AlertsConfig, path, moved=MOVED)
