"""The demo's 13 months of history: its sites and meters, the problems hidden for the scan
and the alerts to find, and the 15-minute energy and rollups built from them.

Each quarter draws what the meter's `LoadProfile` draws in the middle of it, so the live
meters carry on at the level the history stops at. Closed days (the site's holidays and
closures in the sites file) draw the profile's Sunday. A mild season and a day-to-day spread
vary the level; both are 1 where the history meets the live data. The problems are plain
data laid on top; `write` stores a meter's history through `Store` as the interval refresh
would: one `interval_energy` row and one rollup per quarter.
"""

from __future__ import annotations

import functools
import multiprocessing as mp
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd

from collector.alerts.calendar import site_calendar
from collector.analysis.site_context import SiteContext, Sites
from collector.intervals.rollup import CounterStats, GaugeStats, Rollup, Stats, pack
from collector.store import IntervalRow, Store
from gateway.sim.profile import LoadProfile, ProfileKind
from sparwatt.timeutil import DAY_MS, QUARTER_MS

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

HISTORY_DAYS = 396  # 13 months
EPOCH = date(1970, 1, 1)
PEAK = 1.08  # highest reading of a quarter over its mean, and its lowest under it
YEAR_MS = 365.25 * DAY_MS
# season: (amplitude, day of the year it peaks); heating and light in winter, cooling in summer
SEASON: dict[str, tuple[float, int]] = {
    "office": (0.05, 15),
    "production": (0.03, 15),
    "retail": (0.04, 350),
    "cold-store": (0.07, 200),
    "compressor": (0.03, 200),
}
DAY_SPREAD = 0.03  # standard deviation of a day's level
PHASE_SHARES = (0.36, 0.33, 0.31)  # of the load per phase, as the simulated meters split it
VOLTS = 230.0
# the quantities a history rollup holds, where the meter's model reports them
ROLLED_UP = (
    "power_w",
    "power_factor",
    "voltage_l1_v",
    "voltage_l2_v",
    "voltage_l3_v",
    "current_l1_a",
    "current_l2_a",
    "current_l3_a",
    "energy_import_kwh",
    "reactive_energy_import_kvarh",
)


@dataclass(frozen=True)
class Meter:
    """One simulated meter: where it is, what it reads and how it draws."""

    site: str
    meter: str
    model: str
    kind: ProfileKind
    peak_kw: float
    seed: int
    quantities: frozenset[str] = frozenset(ROLLED_UP)  # what its model reports
    dedicated: bool = False  # a sub-meter on one process, behind the site's main meter

    @property
    def profile(self) -> LoadProfile:
        return LoadProfile(self.kind, self.peak_kw, self.seed)


@dataclass(frozen=True)
class ExtraLoad:
    """A steady load on `meters` from `since_days` ago on: a leak draws it around the clock,
    ventilation left on draws it while the site is closed (`closed_only`)."""

    what: str
    site: str
    meters: tuple[str, ...]
    kw: float
    since_days: float
    closed_only: bool = False


@dataclass(frozen=True)
class LowPowerFactor:
    """A meter whose load runs at about this power factor (no capacitor bank)."""

    what: str
    site: str
    meter: str
    pf: float


@dataclass(frozen=True)
class LeftRunning:
    """A meter that draws its working-day load on the site's closures noted `note`."""

    what: str
    site: str
    meter: str
    note: str


@dataclass(frozen=True)
class Surge:
    """The last `hours` of a meter `kw` above its load: what an alert should catch."""

    what: str
    site: str
    meter: str
    hours: float
    kw: float


Problem = ExtraLoad | LowPowerFactor | LeftRunning | Surge


@dataclass(frozen=True)
class History:
    """One meter's quarters; the last is the one under way, up to `end_ms`."""

    meter: Meter
    start_ms: Ints
    end_ms: int
    kw: Floats  # mean power of each quarter
    pf: Floats  # mean power factor of each quarter

    @property
    def seconds(self) -> Floats:
        """How long each quarter ran: 900 s, less for the last one."""
        return np.minimum(self.start_ms + QUARTER_MS, self.end_ms) / 1000 - self.start_ms / 1000

    @property
    def kwh(self) -> Floats:
        return self.kw * self.seconds / 3600.0


def history_start_ms(now_ms: int, tz: ZoneInfo, days: int = HISTORY_DAYS) -> int:
    """Local midnight `days` days before today: where the history begins."""
    today = datetime.fromtimestamp(now_ms / 1000, tz).date()
    first = today - timedelta(days=days)
    return int(datetime(first.year, first.month, first.day, tzinfo=tz).timestamp() * 1000)


def _local(start_ms: Ints, tz: ZoneInfo) -> tuple[Ints, Ints]:
    """Local day number (days since 1970-01-01) and quarter of the day of each start."""
    local = pd.to_datetime(start_ms, unit="ms", utc=True).tz_convert(tz).tz_localize(None)
    ms = np.asarray(local.values.astype("datetime64[ms]").astype(np.int64))
    return ms // DAY_MS, ms % DAY_MS // QUARTER_MS


def _closed_days(meter: Meter, ctx: SiteContext, days: Ints, problems: Sequence[Problem]) -> Bools:
    """Quarters on days the site is closed beyond its week plan, less those left running."""
    first, last = EPOCH + timedelta(days=int(days[0])), EPOCH + timedelta(days=int(days[-1]))
    closed = {(d - EPOCH).days for d in site_calendar(ctx, first, last).closed}
    for p in problems:
        if isinstance(p, LeftRunning) and (p.site, p.meter) == (meter.site, meter.meter):
            for c in ctx.closures:
                if c.note == p.note:
                    closed -= set(range((c.start - EPOCH).days, (c.end - EPOCH).days + 1))
    return np.isin(days, np.array(sorted(closed), dtype=np.int64))


def _level(meter: Meter, start_ms: Ints, days: Ints, now_ms: int) -> Floats:
    """Season times day-to-day spread, both 1 where the history ends."""
    amplitude, peak_day = SEASON[meter.kind]
    phase = 2 * np.pi * (start_ms - peak_day * DAY_MS) / YEAR_MS
    phase_now = 2 * np.pi * (now_ms - peak_day * DAY_MS) / YEAR_MS
    season = 1 + amplitude * (np.cos(phase) - np.cos(phase_now))
    rng = np.random.default_rng(meter.seed)
    spread = 1 + np.clip(rng.normal(0, DAY_SPREAD, int(days[-1] - days[0]) + 1), -0.08, 0.08)
    spread[-1] = 1.0
    return np.asarray(season * spread[days - days[0]])


def build_meter(
    meter: Meter,
    sites: Sites,
    problems: Sequence[Problem],
    now_ms: int,
    days: int = HISTORY_DAYS,
) -> History:
    """One meter's history up to `now_ms`."""
    ctx = sites.calendar_of(meter.site)
    tz = ZoneInfo(ctx.timezone)
    starts = np.arange(history_start_ms(now_ms, tz, days), now_ms, QUARTER_MS, dtype=np.int64)
    day, quarter = _local(starts, tz)
    closed_day = _closed_days(meter, ctx, day, problems)
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    middle_s = (starts + np.minimum(QUARTER_MS, now_ms - starts) // 2) / 1000
    # a closed day draws what the profile draws on a Sunday: its base load all day
    when = middle_s + np.where(closed_day, (6 - weekday) * 86400, 0)
    profile = meter.profile
    kw = np.fromiter((profile.power_w(t) for t in when.tolist()), float, len(when)) / 1000
    kw *= _level(meter, starts, day, now_ms)
    pf = 0.93 + 0.04 * np.sin(middle_s / 600.0 + meter.seed)  # as the simulated meter draws it
    closed = closed_day | ~ctx.open_table[weekday, quarter]
    for p in problems:
        if p.site != meter.site:
            continue
        if isinstance(p, ExtraLoad) and meter.meter in p.meters:
            on = (starts >= now_ms - p.since_days * DAY_MS) & (closed if p.closed_only else True)
            kw += np.where(on, p.kw, 0.0)
        elif isinstance(p, LowPowerFactor) and p.meter == meter.meter:
            pf += p.pf - 0.93
        elif isinstance(p, Surge) and p.meter == meter.meter:
            kw += np.where(starts + QUARTER_MS > now_ms - p.hours * 3_600_000, p.kw, 0.0)
    return History(meter, starts, now_ms, kw, np.clip(pf, 0.05, 1.0))


def build(
    meters: Sequence[Meter],
    sites: Sites,
    problems: Sequence[Problem],
    now_ms: int,
    days: int = HISTORY_DAYS,
) -> list[History]:
    """Every meter's history up to `now_ms`, on as many processes as there are cores (the
    profile draws each quarter in Python)."""
    one = functools.partial(build_meter, sites=sites, problems=problems, now_ms=now_ms, days=days)
    workers = min(len(meters), os.cpu_count() or 1)
    if workers < 2:
        return [one(m) for m in meters]
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
        return list(pool.map(one, meters))


def interval_rows(history: History) -> list[IntervalRow]:
    """The `interval_energy` rows: energy, mean and peak power of each quarter."""
    watts = history.kw * 1000
    return [
        IntervalRow(start, kwh, False, 0.0, False, w, w * PEAK)
        for start, kwh, w in zip(
            history.start_ms.tolist(), history.kwh.tolist(), watts.tolist(), strict=True
        )
    ]


def _columns(history: History, poll_s: float) -> dict[str, tuple[Floats, ...]]:
    """Per rolled-up quantity the meter's model reports: (mean, min, max, count) of a gauge,
    (energy,) of a counter, as a quarter of readings every `poll_s` would give them."""
    have = history.meter.quantities
    watts, pf = history.kw * 1000, history.pf
    count = np.maximum(np.rint(history.seconds / poll_s), 1)
    out: dict[str, tuple[Floats, ...]] = {
        "power_w": (watts, watts / PEAK, watts * PEAK, count),
        "power_factor": (pf, pf - 0.015, np.minimum(pf + 0.015, 1.0), count),
    }
    shares = PHASE_SHARES if "current_l3_a" in have else (1.0,)  # else one phase carries all
    for k, share in enumerate(shares, start=1):
        volts = VOLTS + 0.3 * np.sin(history.start_ms / 3.6e6 + k)
        amps = watts * share / (volts * pf)
        out[f"voltage_l{k}_v"] = (volts, volts - 1.5, volts + 1.5, count)
        out[f"current_l{k}_a"] = (amps, amps / PEAK, amps * PEAK, count)
    out["energy_import_kwh"] = (history.kwh,)
    out["reactive_energy_import_kvarh"] = (history.kwh * np.sqrt(1 - pf**2) / pf,)
    return {q: out[q] for q in ROLLED_UP if q in have}


# rollup.pack's layout of one quantity: a gauge's statistics, a counter's energy and flag
GAUGE_FIELDS = (("mean", "<f4"), ("min", "<f4"), ("max", "<f4"), ("count", "<u2"))
COUNTER_FIELDS = (("energy", "<f8"), ("estimated", "u1"))


def _stats(row: np.void, quantity: str, gauge: bool) -> Stats:
    """One quantity of one record, as rollup.pack takes it."""
    if gauge:
        low, high = float(row[f"{quantity}.min"]), float(row[f"{quantity}.max"])
        return GaugeStats(float(row[f"{quantity}.mean"]), low, high, int(row[f"{quantity}.count"]))
    return CounterStats(float(row[f"{quantity}.energy"]), bool(row[f"{quantity}.estimated"]))


def rollup_rows(history: History, poll_s: float) -> list[tuple[int, str, bytes]]:
    """One packed rollup a quarter for `Store.put_rollups`.

    The blobs are laid out in one numpy record array (packing 35,000 rollups one by one
    takes seconds); its first record must equal what `rollup.pack` makes of the same
    figures, so a change of the packing stops here rather than storing wrong blobs.
    """
    columns = _columns(history, poll_s)
    layout = {q: GAUGE_FIELDS if len(s) == 4 else COUNTER_FIELDS for q, s in columns.items()}
    dtype = np.dtype([(f"{q}.{name}", code) for q, f in layout.items() for name, code in f])
    table = np.zeros(len(history.start_ms), dtype=dtype)
    for q, stats in columns.items():
        for (name, _code), values in zip(layout[q], stats, strict=False):
            table[f"{q}.{name}"] = values
    first = {q: _stats(table[0], q, f is GAUGE_FIELDS) for q, f in layout.items()}
    key, blob = pack(Rollup(int(history.start_ms[0]), first))
    size, raw = dtype.itemsize, table.tobytes()
    if blob != raw[:size]:
        raise RuntimeError(f"rollup.pack lays out {key} otherwise than GAUGE/COUNTER_FIELDS")
    return [
        (start, key, raw[i * size : (i + 1) * size])
        for i, start in enumerate(history.start_ms.tolist())
    ]


def write(store: Store, history: History, gateway: str, poll_s: float) -> int:
    """Store one meter's history (intervals and rollups); returns the quarters written."""
    m = history.meter
    with store.transaction():
        store.register_gateway(m.site, gateway)
        meter_id = store.meter_id(m.site, gateway, m.meter) or store.new_meter(
            m.site, gateway, m.meter
        )
    store.put_intervals(meter_id, interval_rows(history))
    store.put_rollups(meter_id, rollup_rows(history, poll_s))
    return len(history.start_ms)


def kwh_by_meter(histories: Iterable[History]) -> dict[tuple[str, str], float]:
    """Total energy of each (site, meter): where the live counters carry on from."""
    return {(h.meter.site, h.meter.meter): float(h.kwh.sum()) for h in histories}


# ---- the demo's sites, and what their history hides

GATEWAY = "gw1"
TZ = ZoneInfo("Europe/Copenhagen")
OFFICE_GSRN = "571313174100236478"  # the office's metering point at the grid company
IMPORTED = ("office-park", "meter-1")  # its history comes as that metering point's export
EXPORT = "eloverblik-office-park.csv"
HOLIDAY = "company holiday"  # the office's week off, six weeks before the demo starts


@dataclass(frozen=True)
class Site:
    """A demo company: its calendar and fuse for the sites file, and its meters."""

    id: str
    sector: str
    # the hours its load profile opens (gateway/sim/profile.py), as the sites file states them
    opening_hours: dict[str, str]
    main_fuse_a: int
    meters: tuple[tuple[str, ProfileKind, float], ...]  # model, load shape, peak kW
    dedicated: tuple[int, ...] = ()  # units of sub-meters on one process, behind meter 1


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
SITES = [
    Site(
        "bakery-nord",
        "bakery",
        dict.fromkeys((*WEEKDAYS, "sat"), "06:00-22:00"),
        160,
        (("eastron-sdm630", "production", 60.0), ("carlo-gavazzi-em24", "compressor", 15.0)),
        dedicated=(2,),
    ),
    Site(
        "office-park",
        "office",
        dict.fromkeys(WEEKDAYS, "07:00-17:00"),
        125,
        (("abb-b23", "office", 65.0), ("eastron-sdm120", "office", 8.0)),
    ),
    Site(
        "cold-store-syd",
        "cold storage",
        dict.fromkeys((*WEEKDAYS, "sat"), "06:00-18:00"),
        250,
        (
            ("carlo-gavazzi-em340", "cold-store", 90.0),
            ("schneider-iem3155", "cold-store", 40.0),
            ("janitza-umg96rm", "cold-store", 25.0),
        ),
    ),
]
# What the history hides for the scan and the alerts to find; the live meters run clean.
PROBLEMS: list[Problem] = [
    ExtraLoad("ventilation no longer off at night", "office-park", ("meter-1",), 6.0, 24, True),
    LeftRunning("everything left on", "office-park", "meter-1", HOLIDAY),
    # the leak is on the compressor's sub-meter and on the main meter it sits behind
    ExtraLoad("compressed-air leak", "bakery-nord", ("meter-1", "meter-2"), 2.5, 150),
    LowPowerFactor("no capacitor bank", "cold-store-syd", "meter-1", 0.78),
    Surge("defrost heaters stuck on", "cold-store-syd", "meter-2", 1.5, 20.0),
]


def imported(histories: list[History]) -> History:
    """The history that arrives as an Eloverblik export."""
    return next(h for h in histories if (h.meter.site, h.meter.meter) == IMPORTED)


def plan_meters(available: dict[str, frozenset[str]]) -> list[Meter]:
    """Every demo meter; a model not shipped falls back to the SDM630."""
    meters = []
    for index, site in enumerate(SITES):
        for unit, (wanted, kind, peak_kw) in enumerate(site.meters, start=1):
            model = wanted if wanted in available else "eastron-sdm630"
            meters.append(
                Meter(
                    site.id,
                    f"meter-{unit}",
                    model,
                    kind,
                    peak_kw,
                    seed=index * 10 + unit,
                    quantities=available.get(model, frozenset()),
                    dedicated=unit in site.dedicated,
                )
            )
    return meters


def office_closures(first: date, today: date) -> list[tuple[date, date, str]]:
    """The office's closures: Christmas from the history's first year to the coming one, and
    a week off six weeks ago, inside the savings scan's window whatever the date."""
    years = range(first.year, today.year + 1)
    christmas = [(date(y, 12, 24), date(y, 12, 31), "Christmas") for y in years]
    monday = today - timedelta(days=today.weekday() + 42)
    if any(s <= monday + timedelta(days=4) and monday <= e for s, e, _ in christmas):
        monday -= timedelta(days=14)  # a week off of its own, not part of Christmas
    return sorted([*christmas, (monday, monday + timedelta(days=4), HOLIDAY)])
