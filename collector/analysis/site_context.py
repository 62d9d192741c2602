"""Site context: opening hours, calendar, prices, CO2 and thresholds, validated once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from collector.analysis import hourly
from collector.analysis.measures import DEFAULT_MEASURES, MeasureOverride
from sparwatt import configfile
from sparwatt.configfile import TimeZoneName
from sparwatt.errors import ConfigError, SiteConfigError
from sparwatt.wire import Id

QUARTERS = 96
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NonNeg = Annotated[float, Field(ge=0)]
Share = Annotated[float, Field(ge=0, le=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def parse_span(text: str) -> tuple[int, int]:
    """'07:00-17:30' -> (28, 70) as quarter-hour indices [start, end); '24:00' ends the day."""
    try:
        a, b = text.split("-")
        qa, qb = (_quarter(part.strip()) for part in (a, b))
    except ValueError:
        raise ValueError(f"time span must look like '07:00-17:00', got {text!r}") from None
    if not 0 <= qa < qb <= QUARTERS:
        raise ValueError(f"time span must run forward within one day, got {text!r}")
    return qa, qb


def _quarter(hhmm: str) -> int:
    hh, mm = hhmm.split(":")
    h, m = int(hh), int(mm)
    if not (0 <= h <= 24 and m in (0, 15, 30, 45)) or (h == 24 and m):
        raise ValueError(hhmm)
    return h * 4 + m // 15


def _span_table(spans: list[str]) -> np.ndarray:
    row = np.zeros(QUARTERS, dtype=bool)
    for span in spans:
        qa, qb = parse_span(span)
        row[qa:qb] = True
    return row


class OpeningHours(_Strict):
    """Regular opening hours per weekday as lists of 'HH:MM-HH:MM' spans (quarter-hour steps)."""

    mon: list[str] = ["07:00-17:00"]
    tue: list[str] = ["07:00-17:00"]
    wed: list[str] = ["07:00-17:00"]
    thu: list[str] = ["07:00-17:00"]
    fri: list[str] = ["07:00-17:00"]
    sat: list[str] = []
    sun: list[str] = []

    @field_validator(*WEEKDAYS)
    @classmethod
    def _spans_parse(cls, spans: list[str]) -> list[str]:
        for span in spans:
            parse_span(span)
        return spans

    def table(self) -> np.ndarray:
        """Bool (7, 96): open in that weekday (Mon=0) and local quarter-hour."""
        return np.stack([_span_table(getattr(self, day)) for day in WEEKDAYS])


class Closure(_Strict):
    """A planned closure (summer shutdown, Christmas), both dates inclusive."""

    start: dt.date
    end: dt.date
    note: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> Closure:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class Holidays(_Strict):
    """Public holidays from the `holidays` package, plus company-specific closed days."""

    country: str = "DK"
    subdiv: str | None = None
    # "public" only: 24 and 31 December, 1 May and 5 June are not public holidays in Denmark;
    # add "optional" (or list them in extra) where the company closes on those days.
    categories: list[Literal["public", "optional"]] = ["public"]
    extra: list[dt.date] = []
    # "closed": holidays are closed days (standby is checked on them); "sunday": the site
    # keeps Sunday's hours on holidays, as restaurants and leisure businesses often do
    treat_as: Literal["closed", "sunday"] = "closed"

    @field_validator("country")
    @classmethod
    def _known_country(cls, code: str) -> str:
        import holidays

        if code not in holidays.list_supported_countries():
            raise ValueError(f"unknown holiday country code {code!r}")
        return code


PriceArea = Literal["DK1", "DK2"]


class _AreaSeries(_Strict):
    """A section naming a price or CO2 file; which price area's rows count is the site's."""

    _price_area: PriceArea | None = PrivateAttr(default=None)

    @property
    def price_area(self) -> PriceArea | None:
        """The site's price area (SiteContext.price_area), given to the file reader."""
        return self._price_area


class EnergyPrice(_AreaSeries):
    """Energy part of the price in DKK/kWh excluding VAT: spot + supplier margin + taxes."""

    spot_dkk_per_kwh: NonNeg = 0.75  # flat, and for intervals the spot file lacks
    # spot prices per hour or 15 minutes: ts,dkk_per_kwh (ts UTC ISO 8601), or Energi Data
    # Service's DayAheadPrices or Elspotprices download (CSV or JSON) as it comes
    spot_hourly_csv: Path | None = None
    supplier_margin_dkk_per_kwh: NonNeg = 0.05
    # elafgift (0.72 DKK/kWh in 2025) plus Energinet's net and system tariffs (about 0.12);
    # companies with process refund of elafgift should set their own figure
    taxes_dkk_per_kwh: NonNeg = 0.84


class BandRates(_Strict):
    """Grid tariff per band in DKK/kWh excluding VAT."""

    lavlast: NonNeg
    hoejlast: NonNeg
    spidslast: NonNeg


class GridTariff(_Strict):
    """Time-of-use grid tariff (Tarifmodel 3.0) with winter and summer rates."""

    lavlast: list[str] = ["00:00-06:00"]
    spidslast: list[str] = ["17:00-21:00"]
    # everything not lavlast or spidslast is hoejlast (06-17 and 21-24 by default)
    winter_months: list[Annotated[int, Field(ge=1, le=12)]] = [10, 11, 12, 1, 2, 3]
    # C-level (0.4 kV) business rates of the size Danish grid companies publish for 2024-25,
    # ex VAT; winter keeps the 1:3:9 steps of Tarifmodel 3.0. Replace with the local company's.
    winter: BandRates = BandRates(lavlast=0.14, hoejlast=0.42, spidslast=1.26)
    summer: BandRates = BandRates(lavlast=0.14, hoejlast=0.21, spidslast=0.55)
    demand_charge_dkk_per_kw_month: NonNeg = 0.0
    reactive_dkk_per_kvarh: NonNeg = 0.0  # only some grid companies bill reactive energy
    reactive_free_tan_phi: NonNeg = 0.4  # reactive energy up to tan(phi) * kWh is free

    @model_validator(mode="after")
    def _bands_disjoint(self) -> GridTariff:
        if np.any(_span_table(self.lavlast) & _span_table(self.spidslast)):
            raise ValueError("lavlast and spidslast spans overlap")
        return self

    def band_table(self) -> np.ndarray:
        """Int8 (96,): 0 lavlast, 1 hoejlast, 2 spidslast for each local quarter-hour."""
        band = np.ones(QUARTERS, dtype=np.int8)
        band[_span_table(self.lavlast)] = 0
        band[_span_table(self.spidslast)] = 2
        return band


class Co2(_AreaSeries):
    """CO2 intensity of grid electricity: a yearly factor or a series file."""

    g_per_kwh: NonNeg = 60.0  # Denmark 2024 average (Green Power Denmark from Energinet data)
    # per hour, 15 or 5 minutes: ts,g_per_kwh (ts UTC ISO 8601), or Energi Data Service's
    # CO2Emis download (CSV or JSON) as it comes
    hourly_csv: Path | None = None


class Payback(_Strict):
    """When a measure counts as 'rentabel'."""

    # the energy-label rule is payback within the measure's lifetime; a company may want less
    company_limit_years: Annotated[float, Field(gt=0)] | None = None


class Thresholds(_Strict):
    """Detector thresholds; docs/savings.md explains each default."""

    min_coverage: Share = 0.5
    min_annual_kwh: NonNeg = 500.0
    min_peers: Annotated[int, Field(ge=1)] = 2
    base_peer_margin: NonNeg = 0.2
    base_min_excess_ratio: NonNeg = 0.04
    base_ratio_max_alone: Share = 0.5
    base_ratio_target_alone: Share = 0.3
    base_min_share: Share = 0.02
    offhours_peer_margin: NonNeg = 0.25
    offhours_expected_alone: NonNeg = 0.15
    offhours_min_share: Share = 0.02
    offhours_grace_h: Annotated[float, Field(ge=0, le=12)] = 2.0
    standby_margin: NonNeg = 0.2
    standby_window_days: Annotated[int, Field(ge=1)] = 35
    shift_peer_margin: NonNeg = 0.05
    shift_min_share: Share = 0.02
    shift_to: Literal["lavlast", "hoejlast"] = "lavlast"
    shave_quantile: Share = 0.99
    shave_min_dkk: NonNeg = 2000.0
    pf_min: Share = 0.90
    pf_target: Share = 0.95
    internal_loss_share: Share = 0.02
    imbalance_current_max: Share = 0.10
    imbalance_voltage_max: Share = 0.02
    imbalance_min_load: Share = 0.2
    night_min_kw: NonNeg = 0.2
    night_min_ratio: Share = 0.1
    drift_baseline_weeks: Annotated[int, Field(ge=1)] = 8
    drift_recent_days: Annotated[int, Field(ge=7)] = 28
    drift_k: NonNeg = 0.5
    drift_h: Annotated[float, Field(gt=0)] = 10.0
    drift_min_rel_peers: NonNeg = 0.05
    drift_min_rel_alone: NonNeg = 0.25
    drift_min_rel_few_peers: NonNeg = 0.1
    history_min_rise: NonNeg = 0.3
    history_min_rise_alone: NonNeg = 0.5


GSRN = Annotated[str, Field(pattern=r"^[0-9]{18}$")]


class MeteringPoint(_Strict):
    """A utility metering point (GSRN) whose data is imported: the meter it becomes.

    With the default gateway `utility` it is a meter of its own beside the gateway meters;
    name a gateway's meter instead to give that meter the years before the gateway came.
    """

    meter: Id
    gateway: Id = "utility"


class SiteContext(_Strict):
    """Everything the detectors need to know about one site beyond its meter data."""

    timezone: TimeZoneName = "Europe/Copenhagen"
    sector: str = "unknown"
    opening_hours: OpeningHours = OpeningHours()
    closures: list[Closure] = []
    holidays: Holidays = Holidays()
    main_fuse_a: Annotated[float, Field(gt=0)] | None = None
    contracted_kw: Annotated[float, Field(gt=0)] | None = None
    # DK1 (Jutland, Funen) or DK2 (Zealand, Bornholm): the rows of an Energi Data Service
    # price or CO2 download that apply to the site; the project's own files need none
    price_area: PriceArea | None = None
    energy_price: EnergyPrice = EnergyPrice()
    grid_tariff: GridTariff = GridTariff()
    co2: Co2 = Co2()
    payback: Payback = Payback()
    measures: dict[str, MeasureOverride] = {}
    thresholds: Thresholds = Thresholds()
    baseline_start: dt.date | None = None
    baseline_end: dt.date | None = None
    metering_points: dict[GSRN, MeteringPoint] = {}

    _open_table: np.ndarray = PrivateAttr()
    _band_table: np.ndarray = PrivateAttr()

    @field_validator("measures")
    @classmethod
    def _known_kinds(cls, rows: dict[str, MeasureOverride]) -> dict[str, MeasureOverride]:
        unknown = sorted(set(rows) - set(DEFAULT_MEASURES))
        if unknown:
            known = ", ".join(sorted(DEFAULT_MEASURES))
            raise ValueError(f"unknown measure kind(s) {unknown}; known: {known}")
        return rows

    @model_validator(mode="after")
    def _area_to_series(self) -> SiteContext:
        # the price and CO2 readers get the area from their own section (co2_per_interval
        # takes only the Co2 section)
        self.energy_price._price_area = self.price_area
        self.co2._price_area = self.price_area
        return self

    @model_validator(mode="after")
    def _baseline_ordered(self) -> SiteContext:
        if self.baseline_start and self.baseline_end and self.baseline_end <= self.baseline_start:
            raise ValueError("baseline_end must be after baseline_start")
        return self

    def model_post_init(self, context: Any, /) -> None:
        # tables are derived once here so detectors never re-parse the spans
        self._open_table = self.opening_hours.table()
        self._band_table = self.grid_tariff.band_table()

    @property
    def open_table(self) -> np.ndarray:
        return self._open_table

    @property
    def quiet_weekday(self) -> int:
        """Mon=0: the weekday with the fewest opening hours, the later one on a tie (a Sunday
        rather than a Saturday); a closed day is expected to look like it."""
        hours = self._open_table.sum(axis=1)
        return int(np.flatnonzero(hours == hours.min())[-1])

    @property
    def band_table(self) -> np.ndarray:
        return self._band_table


class Target(_Strict):
    """A programme's targets: shares of the baseline year's figure, -0.20 = 20 % less."""

    co2: float | None = None
    energy: float | None = None

    @field_validator("co2", "energy")
    @classmethod
    def _a_reduction(cls, share: float | None) -> float | None:
        if share is not None and not -1 <= share < 0:
            raise ValueError(
                "a target is a reduction against the baseline year: a share from -1 to "
                "below 0, such as -0.20"
            )
        return share

    @model_validator(mode="after")
    def _one_at_least(self) -> Target:
        if self.co2 is None and self.energy is None:
            raise ValueError("a target needs co2, energy or both")
        return self


class Programme(_Strict):
    """A partnership programme (or a municipality's): sites measured against one baseline
    year, with targets for energy and CO2."""

    name: Annotated[str, Field(min_length=1)]
    sites: Annotated[list[str], Field(min_length=1)]
    baseline_year: Annotated[int, Field(ge=2000, le=2100)]
    target: Target

    @field_validator("sites")
    @classmethod
    def _unique(cls, sites: list[str]) -> list[str]:
        twice = sorted({s for s in sites if sites.count(s) > 1})
        if twice:
            raise ValueError(f"site(s) listed twice: {twice}")
        return sites


class SitesFile(_Strict):
    """A sites TOML file: defaults shared by all sites, then one table per site."""

    defaults: dict[str, Any] = {}
    sites: dict[str, dict[str, Any]]
    programmes: dict[Id, Programme] = {}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


class Sites(Mapping[str, SiteContext]):
    """A validated sites file: the one home of every fact about a site (time zone, opening
    hours, holidays, closures, fuse, sector). The scan, the alert rules and the web pages
    all read a site's calendar from here.

    As a mapping it holds the sites the file lists. `defaults` is what `[defaults]` gives a
    site the file does not list: its time zone and holidays for alerts and pages. Such a
    site has no opening hours of its own (`context` is None), so nothing is judged against
    opening hours it never stated.
    """

    def __init__(
        self,
        listed: Mapping[str, SiteContext] | None = None,
        defaults: SiteContext | None = None,
        programmes: Mapping[str, Programme] | None = None,
    ) -> None:
        self._listed = dict(listed or {})
        self.defaults = SiteContext() if defaults is None else defaults
        self._programmes = dict(programmes or {})

    def __getitem__(self, site: str) -> SiteContext:
        return self._listed[site]

    def __iter__(self) -> Iterator[str]:
        return iter(self._listed)

    def __len__(self) -> int:
        return len(self._listed)

    def context(self, site: str) -> SiteContext | None:
        """The site's own entry; None for a site the file does not list."""
        return self._listed.get(site)

    def metering_point(self, gsrn: str) -> tuple[str, MeteringPoint] | None:
        """(site, where its data goes) of a utility metering point the file maps."""
        for site, ctx in self._listed.items():
            if gsrn in ctx.metering_points:
                return site, ctx.metering_points[gsrn]
        return None

    def calendar_of(self, site: str) -> SiteContext:
        """Where a site's time zone, holidays and closures come from: its entry, else
        `[defaults]`."""
        return self._listed.get(site, self.defaults)

    @property
    def programmes(self) -> Mapping[str, Programme]:
        """The file's programmes by id, in file order."""
        return self._programmes

    def programme(self, programme_id: str) -> Programme | None:
        return self._programmes.get(programme_id)

    def programmes_of(self, site: str) -> list[str]:
        """Ids of the programmes a site takes part in (one site may be in several)."""
        return [pid for pid, p in self._programmes.items() if site in p.sites]


def load_sites(path: Path) -> Sites:
    """Read and validate a sites file; raises sparwatt.ConfigError naming each key."""
    raw = configfile.read_toml(path)
    top = configfile.validate(SitesFile, raw, str(path))
    data = {"sites": {name: _merge(top.defaults, site) for name, site in top.sites.items()}}
    sites = configfile.validate(_Sites, data, str(path)).sites
    _check_metering_points(path, top.defaults, sites)
    # a key every site overrides is still checked here: a site not listed would get it
    defaults = configfile.validate(_Defaults, {"defaults": top.defaults}, str(path)).defaults
    for ctx in (*sites.values(), defaults):  # series paths are relative to the sites file
        if ctx.co2.hourly_csv is not None:
            ctx.co2.hourly_csv = path.parent / ctx.co2.hourly_csv
        if ctx.energy_price.spot_hourly_csv is not None:
            ctx.energy_price.spot_hourly_csv = path.parent / ctx.energy_price.spot_hourly_csv
    _check_programmes(path, top.programmes, sites)
    _check_series_files(path, sites)
    return Sites(sites, defaults, top.programmes)


def _check_programmes(
    path: Path, programmes: dict[str, Programme], sites: dict[str, SiteContext]
) -> None:
    """Every site a programme lists has its own table in [sites]."""
    problems = [
        f"{path}: programmes.{pid}.sites: no site {site!r} in [sites]"
        for pid, programme in programmes.items()
        for site in programme.sites
        if site not in sites
    ]
    if problems:
        raise ConfigError(problems)


def _check_metering_points(
    path: Path, defaults: dict[str, Any], sites: dict[str, SiteContext]
) -> None:
    """A metering point belongs to one site and one meter."""
    problems = []
    if "metering_points" in defaults:
        problems.append(f"{path}: defaults.metering_points: a metering point belongs to one site")
    owner: dict[str, str] = {}
    for name, ctx in sites.items():
        for gsrn in ctx.metering_points:
            if gsrn in owner:
                problems.append(
                    f"{path}: sites.{name}.metering_points.{gsrn}: already mapped by site "
                    f"{owner[gsrn]}"
                )
            owner.setdefault(gsrn, name)
    if problems:
        raise ConfigError(problems)


def _check_series_files(path: Path, sites: dict[str, SiteContext]) -> None:
    """Parse every CO2 and spot-price file now, for the site's price area, so a broken one
    stops start-up and check-config instead of failing the nightly scan (they are read again
    when they change)."""
    problems = []
    for name, ctx in sites.items():
        files = (
            ("co2.hourly_csv", ctx.co2.hourly_csv, "g_per_kwh", "CO2 series"),
            (
                "energy_price.spot_hourly_csv",
                ctx.energy_price.spot_hourly_csv,
                "dkk_per_kwh",
                "spot price series",
            ),
        )
        for key, csv_path, column, what in files:
            if csv_path is None:
                continue
            try:
                hourly.load(csv_path, column, what, ctx.price_area)
            except SiteConfigError as exc:
                problems.append(f"{path}: sites.{name}.{key}: {exc}")
    if problems:
        raise ConfigError(problems)


class _Sites(_Strict):
    sites: dict[str, SiteContext]


class _Defaults(_Strict):
    defaults: SiteContext
