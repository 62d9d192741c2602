"""Ground truth: synthetic portfolio with injected problems, scored against the scan."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from unittest import mock

import holidays
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collector.analysis import MeterSeries, Opportunity, SiteContext, scan
from collector.analysis.site_context import Closure, OpeningHours, Thresholds

TZ = "Europe/Copenhagen"
Q_MS = 900_000
LOSS_SHARE = Thresholds().internal_loss_share  # the loss model is an assumption, not a measurement
KINDS = (
    "baseload",
    "offhours",
    "standby",
    "peak_shift",
    "power_factor",
    "phase_imbalance",
    "night_load",
    "drift",
)

# BDEW profile -> (sector, opening hours); hours follow each profile's busy part of the day
SECTORS: dict[str, tuple[str, dict[str, list[str]]]] = {
    "g0": (
        "general commerce",
        {
            **{d: ["07:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
            "sat": ["08:00-13:00"],
        },
    ),
    "g1": ("office", {d: ["07:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}),
    "g2": (
        "restaurant",
        {d: ["10:00-22:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
    ),
    "g3": (
        "two-shift production",
        {d: ["06:00-22:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
    ),
    "g4": (
        "shop",
        {
            **{d: ["08:00-19:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
            "sat": ["09:00-15:00"],
        },
    ),
    "g5": (
        "bakery",
        {
            **{d: ["04:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat")},
            "sun": ["05:00-12:00"],
        },
    ),
    "g6": (
        "weekend business",
        {"fri": ["16:00-22:00"], "sat": ["09:00-22:00"], "sun": ["09:00-22:00"]},
    ),
}
# profiles of our own, not BDEW's: refrigeration around the clock, more in summer
OTHER_PROFILES: dict[str, tuple[str, dict[str, list[str]]]] = {
    "cold": ("cold store", {d: ["06:00-16:00"] for d in ("mon", "tue", "wed", "thu", "fri")}),
}


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _sector_hours(profile: str) -> tuple[str, dict[str, list[str]]]:
    """(sector, opening hours) of a BDEW profile or one of OTHER_PROFILES."""
    return SECTORS[profile] if profile in SECTORS else OTHER_PROFILES[profile]


@dataclass(frozen=True)
class SiteSpec:
    """One synthetic site: profile, closures, injected problems and their sizes.

    `sector` replaces the profile's sector name, so a few sites can form a small sector of
    their own; `annual_kwh` fixes the yearly use the generator would otherwise draw.
    """

    site: str
    bdew: str
    problems: dict[str, float] = field(default_factory=dict)
    closures: tuple[tuple[dt.date, dt.date], ...] = ()
    compressor: bool = False
    sector: str | None = None
    annual_kwh: float | None = None


@dataclass(frozen=True)
class TruthEvent:
    site: str
    meter: str
    kind: str
    annual_kwh: float
    note: str


@dataclass
class Portfolio:
    series: list[MeterSeries]
    contexts: dict[str, SiteContext]
    truth: list[TruthEvent]
    clean_sites: list[str]


def _d(y: int, m: int, d: int) -> dt.date:
    return dt.date(y, m, d)


def default_specs(year: int = 2025) -> list[SiteSpec]:
    """32 sites: 4 per BDEW G profile, then two sectors of only two sites (an office pair and
    a cold-store pair, judged against their own history); 20 injected problems and 12 clean
    control sites."""
    summer = ((_d(year, 7, 14), _d(year, 8, 1)),)
    xmas = ((_d(year, 12, 22), _d(year, 12, 31)),)
    return [
        SiteSpec("s01", "g0", {"standby": 0.4}, summer + xmas),
        SiteSpec("s02", "g0", {"step": 0.25}),
        SiteSpec("s03", "g0", {"pf": 0.80}),
        SiteSpec("s04", "g0"),
        SiteSpec("s05", "g1", {"baseload": 0.2}, xmas),
        SiteSpec("s06", "g1", {"offhours": 0.5}, xmas),
        SiteSpec("s07", "g1", {"imbalance": 0.25}, xmas),
        SiteSpec("s08", "g1", {}, xmas),
        SiteSpec("s09", "g2", {"peak_shift": 0.4}),
        SiteSpec("s10", "g2", {"pf": 0.84}),
        SiteSpec("s11", "g2"),
        SiteSpec("s12", "g2"),
        SiteSpec("s13", "g3", {"offhours": 0.5}, summer, compressor=True),
        SiteSpec("s14", "g3", {"peak_shift": 0.4}, summer),
        SiteSpec("s15", "g3", {"leak": 0.2}, summer, compressor=True),
        SiteSpec("s16", "g3", {}, summer, compressor=True),
        SiteSpec("s17", "g4", {"baseload": 0.2}),
        SiteSpec("s18", "g4", {"ramp": 0.3}),
        SiteSpec("s19", "g4", {"standby": 0.4}, xmas),
        SiteSpec("s20", "g4", {"imbalance": 0.35}),
        SiteSpec("s21", "g5", {"leak": 0.25}, compressor=True),
        SiteSpec("s22", "g5", {"step": 0.2}),
        SiteSpec("s23", "g5"),
        SiteSpec("s24", "g5"),
        SiteSpec("s25", "g6", {"ramp": 0.25}),
        SiteSpec("s26", "g6"),
        SiteSpec("s27", "g6"),
        SiteSpec("s28", "g6"),
        # small sectors: one peer each, fewer than the default min_peers
        SiteSpec("s29", "g1", {"base_step": 0.3}, xmas, sector="engineering office"),
        SiteSpec("s30", "g1", {}, xmas, sector="engineering office"),
        SiteSpec("s31", "cold", {"creep": 0.14}),
        SiteSpec("s32", "cold"),
    ]


@lru_cache(maxsize=64)
def _bdew_year(year: int, closed: tuple[dt.date, ...]) -> pd.DataFrame:
    """BDEW G0-G6 for one year (demandlib), holidays and closure days as Sundays."""
    from demandlib import bdew

    days = dict.fromkeys(closed, "closed")
    days |= dict(holidays.country_holidays("DK", years=year))
    # demandlib 0.2.2 sets every warning to an error while it runs, and pandas 3 warns about
    # its use of inplace=True; keep its filter change from reaching the process
    with warnings.catch_warnings(), mock.patch.object(warnings, "simplefilter"):
        warnings.filterwarnings("ignore")
        slp = bdew.ElecSlp(year, holidays=days)
        return slp.get_profile({f"g{i}": 1.0 for i in range(7)})


def _grid(start: dt.date, days: int) -> np.ndarray:
    t0 = pd.Timestamp(start).tz_localize(TZ).tz_convert("UTC")
    t1 = pd.Timestamp(start + dt.timedelta(days=days)).tz_localize(TZ).tz_convert("UTC")
    ms0 = int(t0.value // 1_000_000)
    n = int((t1.value - t0.value) // 1_000_000 // Q_MS)
    return ms0 + np.arange(n, dtype=np.int64) * Q_MS


@dataclass(frozen=True)
class _Local:
    date: np.ndarray  # datetime64[D] local date
    weekday: np.ndarray
    quarter: np.ndarray


def _local(start_ms: np.ndarray) -> _Local:
    naive = pd.DatetimeIndex(start_ms.astype("datetime64[ms]"), tz="UTC").tz_convert(TZ)
    local_ms = naive.tz_localize(None).to_numpy().astype("datetime64[ms]").astype(np.int64)
    day = local_ms // 86_400_000
    return _Local(
        day.astype("datetime64[D]"),
        ((day + 3) % 7).astype(np.int8),
        ((local_ms % 86_400_000) // Q_MS).astype(np.int16),
    )


def _cold_store(loc: _Local, open_: np.ndarray) -> np.ndarray:
    """Cold-store shape: compressors all day, about 15 % more in late July than in January;
    packing, doors and forklifts more than double the load in opening hours."""
    doy = (loc.date - loc.date.astype("datetime64[Y]")).astype(np.int64)
    return (1 + 0.07 * np.cos(2 * np.pi * (doy - 200) / 365)) * (1 + 1.2 * open_)


def _closure_days(spec: SiteSpec) -> tuple[dt.date, ...]:
    out = []
    for a, b in spec.closures:
        out += [a + dt.timedelta(days=i) for i in range((b - a).days + 1)]
    return tuple(out)


def _profile(spec: SiteSpec, loc: _Local) -> np.ndarray:
    """The site's BDEW shape at each interval (local wall clock; DST repeats/skips an hour)."""
    years = sorted({int(str(d)[:4]) for d in (loc.date[0], loc.date[-1])})
    out = np.empty(len(loc.date))
    for y in range(years[0], years[-1] + 1):
        closed = tuple(d for d in _closure_days(spec) if d.year == y)
        col = _bdew_year(y, closed)[spec.bdew].to_numpy()
        jan1 = np.datetime64(f"{y}-01-01")
        in_y = (loc.date >= jan1) & (loc.date < np.datetime64(f"{y + 1}-01-01"))
        pos = (loc.date[in_y] - jan1).astype(np.int64) * 96
        out[in_y] = col[pos + loc.quarter[in_y]]
    return out


def _counter_semantics(
    rng: np.random.Generator, kwh: np.ndarray, reset_at: int | None, gap: tuple[int, int] | None
) -> np.ndarray:
    """Interval energy as the collector derives it from a 0.01 kWh import register."""
    reading = rng.uniform(1e4, 5e5) + np.concatenate([[0.0], np.cumsum(kwh)])
    if reset_at is not None:  # meter swapped: the new register starts near zero
        reading[reset_at:] -= reading[reset_at] - rng.uniform(0, 5)
    reading = np.round(reading, 2)
    missing = rng.random(len(reading)) < 0.003
    if gap is not None:
        missing[gap[0] : gap[1]] = True
    diff = np.diff(reading)
    bad = missing[:-1] | missing[1:] | (diff < 0)
    return np.where(bad, np.nan, diff)


def _electrical(
    rng: np.random.Generator, kwh: np.ndarray, pf_level: float, imbalance: float
) -> dict[str, np.ndarray]:
    n = len(kwh)
    p_kw = kwh * 4
    pf = np.clip(pf_level + rng.normal(0, 0.01, n), 0.3, 1.0)
    split = np.array([1 + imbalance, 1 - imbalance / 2, 1 - imbalance / 2])
    i_mean = p_kw * 1000 / (3**0.5 * 400 * pf)
    currents = i_mean[:, None] * split[None, :] * (1 + rng.normal(0, 0.02, (n, 3)))
    volts = 230 * (1 + rng.uniform(-0.004, 0.004, 3))[None, :] * (1 + rng.normal(0, 0.002, (n, 3)))
    return {
        "max_power_w": p_kw * 1000 * (1 + np.abs(rng.normal(0.12, 0.06, n))),
        "power_factor": pf,
        "reactive_kvarh": kwh * np.sqrt(1 - pf**2) / pf,
        "currents_a": currents,
        "voltages_v": volts,
    }


def _open_mask(spec: SiteSpec, loc: _Local, special: np.ndarray) -> np.ndarray:
    table = np.zeros((7, 96), dtype=bool)
    for i, day in enumerate(WEEKDAYS):
        for span in _sector_hours(spec.bdew)[1].get(day, []):
            a, b = span.split("-")
            qa = int(a[:2]) * 4 + int(a[3:]) // 15
            qb = int(b[:2]) * 4 + int(b[3:]) // 15
            table[i, qa:qb] = True
    return table[loc.weekday, loc.quarter] & ~special


def build(specs: list[SiteSpec], start: dt.date, days: int, seed: int = 7) -> Portfolio:
    """Series, contexts and the truth list for `specs` over `days` local days from `start`."""
    rng = np.random.default_rng(seed)
    start_ms = _grid(start, days)
    loc = _local(start_ms)
    n = len(start_ms)
    year_scale = 365.0 / days
    hol = {
        np.datetime64(d)
        for d in holidays.country_holidays(
            "DK", years=range(start.year, (start + dt.timedelta(days=max(days, 365))).year + 1)
        )
    }
    series: list[MeterSeries] = []
    contexts: dict[str, SiteContext] = {}
    truth: list[TruthEvent] = []
    clean: list[str] = []
    for idx, spec in enumerate(specs):
        sector, hours = _sector_hours(spec.bdew)
        closure = {np.datetime64(d) for d in _closure_days(spec)}
        special = np.isin(loc.date, np.array(sorted(hol | closure), dtype="datetime64[D]"))
        open_ = _open_mask(spec, loc, special)
        annual = rng.uniform(80_000, 600_000)
        if spec.annual_kwh is not None:  # drawn all the same, so later sites keep their draws
            annual = spec.annual_kwh
        own = _cold_store(loc, open_) if spec.bdew == "cold" else _profile(spec, loc)
        shape = np.roll(own, int(rng.integers(-1, 2)))
        clean_kwh = shape / shape.sum() * annual / year_scale
        pm = annual / 8760.0  # the site's mean power, kW
        clean_kwh += rng.uniform(0, 0.02) * pm * 0.25  # each site's own small always-on load
        days_idx = (loc.date - loc.date[0]).astype(np.int64)
        daily = rng.normal(1, 0.03, days_idx[-1] + 1)[days_idx]
        clean_kwh *= daily * rng.lognormal(0, 0.06, n)
        kwh = clean_kwh.copy()
        main_id, p = f"{spec.site}-main", spec.problems

        def inject(
            kind: str,
            extra: np.ndarray,
            note: str,
            meter: str = main_id,
            site: str = spec.site,
            annual: float | None = None,
        ) -> None:
            size = float(extra.sum()) * year_scale if annual is None else annual
            truth.append(TruthEvent(site, meter, kind, size, note))

        if "baseload" in p:
            extra = np.where(~open_, p["baseload"] * pm * 0.25, 0.0)
            kwh += extra
            inject("baseload", extra, f"+{p['baseload'] * pm:.1f} kW whenever closed")
        if "base_step" in p:  # the floor rises from one day to the next, a quarter in
            extra = np.where(~open_, p["base_step"] * pm * 0.25, 0.0)
            kwh += extra * (days_idx / days >= 0.25)
            inject("baseload", extra, f"floor up {p['base_step'] * pm:.1f} kW a quarter in")
        if "creep" in p:  # all use creeps up over most of the period, then stays up
            level = np.clip((days_idx / days - 0.2) / 0.65, 0, 1)
            kwh += p["creep"] * level * clean_kwh
            inject("drift", p["creep"] * clean_kwh, f"creep to +{p['creep']:.0%} of all use")
        if "offhours" in p:
            win = (loc.weekday >= 5) & ~special & (loc.quarter >= 28) & (loc.quarter < 68)
            extra = np.where(win, p["offhours"] * pm * 0.25, 0.0)
            kwh += extra
            inject("offhours", extra, f"+{p['offhours'] * pm:.1f} kW weekends 07-17")
        if "standby" in p:
            extra = np.where(special, p["standby"] * pm * 0.25, 0.0)
            kwh += extra
            # holidays are not spread evenly over the year: count those of a whole year
            year = np.arange(np.datetime64(start), np.datetime64(start + dt.timedelta(days=365)))
            per_year = int(np.isin(year, np.array(sorted(hol | closure))).sum())
            inject(
                "standby",
                extra,
                f"+{p['standby'] * pm:.1f} kW on holidays and closures",
                annual=p["standby"] * pm * 24 * per_year,
            )
        if "peak_shift" in p:
            win = (loc.weekday < 5) & ~special & (loc.quarter >= 68) & (loc.quarter < 84)
            extra = np.where(win, p["peak_shift"] * pm * 0.25, 0.0)
            kwh += extra
            inject("peak_shift", extra, f"+{p['peak_shift'] * pm:.1f} kW weekdays 17-21")
        for kind in ("step", "ramp"):
            if kind in p:
                t = days_idx / days
                level = np.clip((t - 0.6) / 0.15, 0, 1) if kind == "ramp" else (t >= 0.65) * 1.0
                open_kwh = np.where(open_, clean_kwh, 0.0)
                kwh += p[kind] * level * open_kwh
                full = p[kind] * open_kwh
                what = "slow drift to" if kind == "ramp" else "step of"
                inject("drift", full, f"{what} +{p[kind]:.0%} in opening hours")
        if spec.compressor:
            rated = rng.uniform(0.15, 0.3) * pm
            comp = np.where(open_, rated * rng.uniform(0.4, 0.8, n), 0.005 * rated) * 0.25
            ded_id = f"{spec.site}-air"
            if "leak" in p:
                leak = np.full(n, p["leak"] * rated * 0.25)
                comp = comp + leak
                inject(
                    "night_load", leak, f"{p['leak'] * rated:.1f} kW compressed-air leak", ded_id
                )
            kwh = kwh + comp
            series.append(
                MeterSeries(
                    spec.site,
                    ded_id,
                    "dedicated",
                    start_ms,
                    _counter_semantics(rng, comp, None, None),
                )
            )
        pf_level = p.get("pf", rng.uniform(0.93, 0.98))
        imb = p.get("imbalance", rng.uniform(0.0, 0.04))
        if "pf" in p:
            loss = LOSS_SHARE * kwh * (1 - (p["pf"] / Thresholds().pf_target) ** 2)
            inject("power_factor", loss, f"power factor {p['pf']:.2f}")
        if "imbalance" in p:
            f = ((1 + imb) ** 2 + 2 * (1 - imb / 2) ** 2) / 3
            inject(
                "phase_imbalance", LOSS_SHARE * kwh * (1 - 1 / f), f"current imbalance {imb:.0%}"
            )
        reset = int(n * 0.4) if idx % 9 == 4 else None
        gap = (int(n * 0.3), int(n * 0.3) + 96 * 2) if idx % 7 == 3 else None
        elec = _electrical(rng, kwh, pf_level, imb)
        series.append(
            MeterSeries(
                spec.site,
                main_id,
                "main",
                start_ms,
                _counter_semantics(rng, kwh, reset, gap),
                **elec,
            )
        )
        if not p:
            clean.append(spec.site)
        contexts[spec.site] = SiteContext(
            sector=spec.sector or sector,
            # BDEW runs holidays as Sundays: for businesses busy on Sundays that means open;
            # a cold store keeps cooling on holidays, so they are ordinary closed days for it
            holidays={"treat_as": "sunday" if spec.bdew in ("g2", "g6", "cold") else "closed"},
            opening_hours=OpeningHours(**{d: hours.get(d, []) for d in WEEKDAYS}),
            closures=[Closure(start=a, end=b) for a, b in spec.closures],
        )
    return Portfolio(series, contexts, truth, clean)


@dataclass
class Score:
    kind: str
    tp: int
    fp: int
    fn: int
    errors: list[tuple[str, float, float]]  # site, truth kWh, estimated kWh

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def evaluate(opps: list[Opportunity], pf: Portfolio) -> tuple[dict[str, Score], list[str]]:
    """Event-level scores per kind and the opportunities found on clean control sites."""
    found = {(o.site, o.meter, o.kind): o for o in opps}
    want = {(t.site, t.meter, t.kind): t for t in pf.truth}
    kinds = sorted({k for _, _, k in want} | {k for _, _, k in found})
    scores = {}
    for kind in kinds:
        f = {k for k in found if k[2] == kind}
        w = {k for k in want if k[2] == kind}
        errs = [(k[0], want[k].annual_kwh, found[k].annual_kwh) for k in sorted(f & w)]
        scores[kind] = Score(kind, len(f & w), len(f - w), len(w - f), errs)
    on_clean = [f"{o.site}/{o.kind}" for o in opps if o.site in pf.clean_sites]
    return scores, on_clean


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--year", type=int, default=2025)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    args = ap.parse_args(argv)
    pf = build(default_specs(args.year), dt.date(args.year, 1, 1), args.days, args.seed)
    opps = scan(pf.series, pf.contexts)
    scores, on_clean = evaluate(opps, pf)
    ok = not on_clean
    rows = []
    for s in scores.values():
        worst = max((abs(e - t) / t for _, t, e in s.errors), default=0.0)
        ok &= s.precision >= 0.9 and s.recall >= 0.9 and worst <= 0.15
        rows.append(
            {
                "kind": s.kind,
                "tp": s.tp,
                "fp": s.fp,
                "fn": s.fn,
                "precision": s.precision,
                "recall": s.recall,
                "worst_kwh_error": worst,
                "events": [
                    {"site": site, "truth_kwh": t, "estimate_kwh": e, "rel_error": (e - t) / t}
                    for site, t, e in s.errors
                ],
            }
        )
    if args.json:
        print(
            json.dumps(
                {
                    "sites": len(pf.contexts),
                    "meters": len(pf.series),
                    "injected": len(pf.truth),
                    "clean_sites": pf.clean_sites,
                    "on_clean_sites": on_clean,
                    "detectors": rows,
                    "pass": ok,
                },
                indent=2,
            )
        )
        return 0 if ok else 1
    print(
        f"ground truth: {len(pf.contexts)} sites, {len(pf.series)} meters, {args.days} days, "
        f"{len(pf.truth)} injected problems, {len(pf.clean_sites)} clean control sites"
    )
    print("targets: precision >= 0.90, recall >= 0.90, |kWh error| <= 15 %, nothing on clean sites")
    print(
        f"{'detector':<16}{'TP':>4}{'FP':>4}{'FN':>4}{'precision':>11}{'recall':>8}"
        f"{'worst kWh err':>15}"
    )
    for r in rows:
        print(
            f"{r['kind']:<16}{r['tp']:>4}{r['fp']:>4}{r['fn']:>4}{r['precision']:>11.2f}"
            f"{r['recall']:>8.2f}{r['worst_kwh_error']:>14.1%}"
        )
    print("\nper injected problem (annual kWh):")
    notes = {(t.site, t.kind): t.note for t in pf.truth}
    for r in rows:
        for e in r["events"]:
            print(
                f"  {r['kind']:<16}{e['site']:<5}truth {e['truth_kwh']:>10.0f}  "
                f"estimate {e['estimate_kwh']:>10.0f}  error {e['rel_error']:+6.1%}  "
                f"({notes[(e['site'], r['kind'])]})"
            )
    missed = [
        t
        for t in pf.truth
        if (t.site, t.meter, t.kind) not in {(o.site, o.meter, o.kind) for o in opps}
    ]
    for t in missed:
        print(f"  MISSED {t.kind} at {t.site} ({t.note})")
    extra = [
        o
        for o in opps
        if (o.site, o.meter, o.kind) not in {(t.site, t.meter, t.kind) for t in pf.truth}
    ]
    for o in extra:
        print(f"  FALSE ALARM {o.kind} at {o.site}/{o.meter} ({o.annual_kwh:.0f} kWh)")
    print(f"\nopportunities on clean control sites: {len(on_clean)} {on_clean or ''}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
