"""A measure as consultants record it, validated at the edge: what the CLI and the web form
take, checked against the meters and opportunities the store knows for the site."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from collector.analysis.measures import DEFAULT_MEASURES
from collector.evaluation.inputs import meter_keys
from collector.store import MeasureExclusion, MeasureRow, Reader
from sparwatt.errors import ConfigError
from sparwatt.wire import ID_PATTERN

# the kinds of savings opportunity the scan finds, and anything else a company does
KINDS: tuple[str, ...] = (*DEFAULT_MEASURES, "other")
MODELS = ("auto", "caltrack_hourly", "caltrack_daily", "time_of_week")
ModelChoice = Literal["auto", "caltrack_hourly", "caltrack_daily", "time_of_week"]
FIRST_YEAR, LAST_YEAR = 2000, 2100
NonNeg = Annotated[float, Field(ge=0, allow_inf_nan=False)]
_SPAN = re.compile(r"^(\d{4}-\d{2}-\d{2}):(\d{4}-\d{2}-\d{2})(?::(.*))?$")


def _in_years(day: dt.date) -> dt.date:
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ValueError(f"{day} is not between {FIRST_YEAR} and {LAST_YEAR}")
    return day


class ExclusionInput(BaseModel):
    """A non-routine event: local days from `start` to `end`, both included."""

    model_config = ConfigDict(extra="forbid")

    start: dt.date
    end: dt.date
    label: Annotated[str, Field(max_length=100)] = ""

    @field_validator("start", "end")
    @classmethod
    def _years(cls, day: dt.date) -> dt.date:
        return _in_years(day)

    @field_validator("end")
    @classmethod
    def _ordered(cls, end: dt.date, info: ValidationInfo) -> dt.date:
        start = info.data.get("start")
        if start is not None and end < start:
            raise ValueError(f"ends on {end}, before it starts on {start}")
        return end


class MeasureInput(BaseModel):
    """A measure as entered. The validation context holds the site's `meters` (names) and
    `opportunities` (ids) the store knows."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    site: Annotated[str, Field(pattern=ID_PATTERN)]
    meters: Annotated[list[str], Field(min_length=1)]
    kind: str
    title: Annotated[str, Field(min_length=1, max_length=200)]
    installed_from: dt.date
    installed_to: dt.date | None = None
    investment_dkk: NonNeg | None = None
    expected_kwh_year: NonNeg | None = None
    opportunity_id: str | None = None
    model: ModelChoice = "auto"
    exclusions: list[ExclusionInput] = []
    note: Annotated[str, Field(max_length=2000)] | None = None

    @field_validator("meters")
    @classmethod
    def _meters_at_site(cls, meters: list[str], info: ValidationInfo) -> list[str]:
        known: set[str] = set((info.context or {}).get("meters", ()))
        unique = list(dict.fromkeys(m.strip() for m in meters))
        missing = [m for m in unique if m not in known]
        if missing:
            have = ", ".join(sorted(known)) if known else "none"
            raise ValueError(
                f"no meter {missing[0]!r} at site {info.data.get('site', '?')} (its meters: {have})"
            )
        return unique

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; one of: {', '.join(KINDS)}")
        return kind

    @field_validator("installed_from")
    @classmethod
    def _from_years(cls, day: dt.date) -> dt.date:
        return _in_years(day)

    @field_validator("installed_to")
    @classmethod
    def _after_install(cls, day: dt.date | None, info: ValidationInfo) -> dt.date | None:
        if day is None:
            return None
        _in_years(day)
        start = info.data.get("installed_from")
        if start is not None and day < start:
            raise ValueError(f"{day} is before the installation starts ({start})")
        return day

    @field_validator("opportunity_id")
    @classmethod
    def _known_opportunity(cls, value: str | None, info: ValidationInfo) -> str | None:
        if not value:
            return None
        known = set((info.context or {}).get("opportunities", ()))
        if value not in known:
            raise ValueError(f"no opportunity {value!r} at site {info.data.get('site', '?')}")
        return value

    @field_validator("title")
    @classmethod
    def _one_line(cls, text: str) -> str:
        if "\n" in text or "\r" in text:
            raise ValueError("must be one line")
        return text

    @field_validator("note")
    @classmethod
    def _empty_note(cls, text: str | None) -> str | None:
        return text or None


def site_meters(reader: Reader, site: str) -> list[str]:
    """The names of a site's meters as measures name them ('gateway:meter' when two
    gateways of the site have a meter of the same name)."""
    return sorted(
        key.meter for key in meter_keys(reader.meter_index()).values() if key.site == site
    )


def site_opportunities(reader: Reader, site: str) -> list[str]:
    return [row.id for row in reader.opportunities(site)]


def parse_exclusion(
    text: str, source: str = "measure", label: str = "exclusions"
) -> dict[str, str]:
    """'2026-07-01:2026-07-21:summer closure' as a {start, end, label} mapping; the dates are
    checked by MeasureInput. A mistake is one line, `source: label 'text': why`."""
    found = _SPAN.match(text.strip())
    if found is None:
        why = "expected START:END[:LABEL] with ISO dates"
        raise ConfigError([f"{source}: {label} {text.strip()!r}: {why}"])
    return {"start": found[1], "end": found[2], "label": (found[3] or "").strip()}


def validate_measure(
    data: Mapping[str, Any],
    meters: Iterable[str],
    opportunities: Iterable[str] = (),
    source: str = "measure",
    labels: Mapping[str, str] | None = None,
) -> MeasureInput:
    """Check a measure as entered; ConfigError with one line per problem, each naming the
    field (by its label in `labels`, such as a command-line option) and the bad value."""
    context = {"meters": list(meters), "opportunities": list(opportunities)}
    try:
        return MeasureInput.model_validate(dict(data), context=context)
    except ValidationError as exc:
        raise ConfigError(_problems(exc, source, labels or {})) from None


def _problems(exc: ValidationError, source: str, labels: Mapping[str, str]) -> list[str]:
    lines = []
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        where = labels.get(str(loc[0]), str(loc[0])) if loc else "(measure)"
        for part in loc[1:]:
            where += f" #{part + 1}" if isinstance(part, int) else f" {part}"
        msg = err["msg"].removeprefix("Value error, ")
        line = f"{source}: {where}: {msg}"
        value = err.get("input")
        # a check of ours names the bad value itself
        shown = err["type"] not in ("missing", "value_error")
        if shown and not isinstance(value, dict | list):
            line += f" (got {value!r})"
        lines.append(line)
    return lines


def as_input(row: MeasureRow) -> dict[str, Any]:
    """A stored measure as MeasureInput takes it, for an edit to change and check again."""
    return {
        "site": row.site,
        "meters": list(row.meters),
        "kind": row.kind,
        "title": row.title,
        "installed_from": row.installed_from,
        "installed_to": row.installed_to,
        "investment_dkk": row.investment_dkk,
        "expected_kwh_year": row.expected_kwh_year,
        "opportunity_id": row.opportunity_id,
        "model": row.model,
        "exclusions": [{"start": e.start, "end": e.end, "label": e.label} for e in row.exclusions],
        "note": row.note,
    }


def to_row(
    measure: MeasureInput, now_ms: int, measure_id: str | None = None, created_ms: int | None = None
) -> MeasureRow:
    """The row to store: a new id unless an existing measure is being replaced."""
    return MeasureRow(
        id=measure_id or new_id(),
        site=measure.site,
        meters=list(measure.meters),
        kind=measure.kind,
        title=measure.title,
        installed_from=measure.installed_from,
        installed_to=measure.installed_to,
        investment_dkk=measure.investment_dkk,
        expected_kwh_year=measure.expected_kwh_year,
        opportunity_id=measure.opportunity_id,
        model=measure.model,
        exclusions=[MeasureExclusion(e.start, e.end, e.label) for e in measure.exclusions],
        note=measure.note,
        created_ms=now_ms if created_ms is None else created_ms,
        updated_ms=now_ms,
    )


def new_id() -> str:
    return secrets.token_hex(4)


def as_json(row: MeasureRow) -> dict[str, Any]:
    """A stored measure as plain JSON values."""
    return {
        "id": row.id,
        "site": row.site,
        "meters": list(row.meters),
        "kind": row.kind,
        "title": row.title,
        "installed_from": row.installed_from.isoformat(),
        "installed_to": None if row.installed_to is None else row.installed_to.isoformat(),
        "investment_dkk": row.investment_dkk,
        "expected_kwh_year": row.expected_kwh_year,
        "opportunity_id": row.opportunity_id,
        "model": row.model,
        "exclusions": [
            {"start": e.start.isoformat(), "end": e.end.isoformat(), "label": e.label}
            for e in row.exclusions
        ],
        "note": row.note,
        "created_ms": row.created_ms,
        "updated_ms": row.updated_ms,
    }
