"""Portfolio scan: run every detector on every meter, with sector peers, into opportunities.

A site with fewer than `min_peers` other sites in its sector has no peer yardstick; it is
then also judged against its own history (base load, night load of dedicated meters, total
use), with whatever sector sites there are serving only as a season.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from collector.analysis import (
    baseload,
    drift,
    nightload,
    offhours,
    peaks,
    peers,
    power_quality,
    standby,
)
from collector.analysis.findings import Finding, Opportunity
from collector.analysis.frame import Frame
from collector.analysis.opportunities import to_opportunity
from collector.analysis.series import MeterSeries
from collector.analysis.site_context import SiteContext, Thresholds
from sparwatt.timeutil import QUARTER_MS

log = logging.getLogger(__name__)
NO_SECTOR = "unknown"


@dataclass(frozen=True)
class Skipped:
    """A detector that did not look at a meter, and why (the data cannot show it)."""

    site: str
    meter: str
    detector: str
    reason: str


@dataclass
class ScanReport:
    """Everything a scan produced; `errors` counts detector faults that were contained."""

    opportunities: list[Opportunity] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    errors: int = 0
    skipped: list[Skipped] = field(default_factory=list)


def skipped(series: MeterSeries) -> list[Skipped]:
    """What the detectors cannot judge from this meter's data; the others work on it at any
    resolution (an hourly value spread over its quarters keeps the hour's energy right)."""
    out = []
    if series.role == "main" and series.resolution_ms > QUARTER_MS:
        minutes = series.resolution_ms // 60_000
        out.append(("peak_shave", f"{minutes}-minute data hide the 15-minute peaks a demand "
                    "charge is set by"))  # fmt: skip
    if series.role == "main" and series.power_factor is None and series.reactive_kvarh is None:
        out.append(("power_factor", "no power factor or reactive energy is metered"))
    if series.role == "main" and series.currents_a is None and series.voltages_v is None:
        out.append(("phase_imbalance", "no phase currents or voltages are metered"))
    return [Skipped(series.site, series.meter, name, why) for name, why in out]


@dataclass
class _Meter:
    key: str
    ctx: SiteContext
    raw: Frame  # the connection as metered: power quality and demand charge
    load: Frame  # main meter minus its dedicated sub-meters: what the site itself uses


def _load_series(main: MeterSeries, dedicated: list[MeterSeries]) -> MeterSeries:
    """Main minus dedicated sub-meters on the same grid, so a leak is not counted twice."""
    subs = [d for d in dedicated if d.same_grid(main)]
    if not subs:
        return main
    rest = main.energy_kwh - np.sum([np.nan_to_num(d.energy_kwh) for d in subs], axis=0)
    return main.with_energy(np.clip(rest, 0, None))


def _prepare(
    series_list: Sequence[MeterSeries], contexts: Mapping[str, SiteContext]
) -> list[_Meter]:
    by_site: dict[str, list[MeterSeries]] = {}
    for s in series_list:
        by_site.setdefault(s.site, []).append(s)
    meters: list[_Meter] = []
    for site, group in by_site.items():
        ctx = contexts.get(site)
        if ctx is None:
            log.warning("no site context, using defaults site=%s", site)
            ctx = SiteContext()
        dedicated = [s for s in group if s.role == "dedicated"]
        for s in group:
            raw = Frame(s, ctx)
            load = Frame(_load_series(s, dedicated), ctx) if s.role == "main" else raw
            meters.append(_Meter(f"{s.site}\x1f{s.meter}", ctx, raw, load))
    return meters


@dataclass
class _Peers:
    base: dict[str, float | None]
    off: dict[str, float | None]
    share: dict[str, float | None]
    common: dict[str, np.ndarray | None]
    few_sites: set[str]  # sites without min_peers other sites: also judged by their history
    few_common: dict[str, np.ndarray | None]  # their season of total use, from the few peers
    few_base: dict[str, np.ndarray | None]  # their season of the daily floor


def _peer_tables(meters: list[_Meter]) -> _Peers:
    """Per meter key: peer ratio/share/common-mode for main meters of sectors with peers."""
    all_mains = [m for m in meters if m.raw.series.role == "main"]
    mains = [m for m in all_mains if m.ctx.sector != NO_SECTOR]
    sector = {m.key: m.ctx.sector for m in mains}
    min_peers = min((m.ctx.thresholds.min_peers for m in mains), default=2)
    sector_size = Counter(sector.values())
    few = {m.key for m in all_mains if sector_size.get(m.ctx.sector, 0) - 1 < min_peers}
    base: dict[str, float] = {}
    off: dict[str, float] = {}
    share: dict[str, float] = {}
    profile: dict[str, np.ndarray] = {}
    days: dict[str, np.ndarray] = {}
    rel: dict[str, np.ndarray] = {}
    floor_days: dict[str, np.ndarray] = {}
    floor_rel: dict[str, np.ndarray] = {}
    for m in mains:
        b = baseload.features(m.load)
        o = offhours.features(m.load)
        p = peaks.features(m.load)
        d = drift.features(m.load)
        base[m.key] = b.ratio if b else np.nan
        off[m.key] = o.ratio if o else np.nan
        if p is not None:
            share[m.key], profile[m.key] = p.share, p.profile
        if d is not None:
            days[m.key], rel[m.key] = d.day_num, d.rel
        h = baseload.history_features(m.load) if m.key in few else None
        if h is not None:
            floor_days[m.key], floor_rel[m.key] = h.day_num, h.rel
    # the few peers of a small sector are no yardstick, but they share its season
    few_days = {k: v for k, v in days.items() if k in few}
    return _Peers(
        base=peers.median_of_others(base, sector, min_peers),
        off=peers.median_of_others(off, sector, min_peers),
        share=_aligned_shares(mains, share, profile, sector, min_peers),
        common=peers.common_mode(days, rel, sector, min_peers),
        few_sites={m.raw.series.site for m in all_mains if m.key in few},
        few_common=peers.common_mode(few_days, rel, sector, 1),
        few_base=peers.common_mode(floor_days, floor_rel, sector, 1),
    )


def _aligned_shares(
    mains: list[_Meter],
    share: dict[str, float],
    profile: dict[str, np.ndarray],
    sector: dict[str, str],
    min_peers: int,
) -> dict[str, float | None]:
    """Peer spidslast shares, comparing only sites whose spidslast hours are the same."""
    groups: dict[bytes, list[str]] = {}
    band_of: dict[bytes, np.ndarray] = {}
    for m in mains:
        if m.key in share:
            band = m.ctx.band_table == peaks.PEAK
            groups.setdefault(band.tobytes(), []).append(m.key)
            band_of[band.tobytes()] = band
    out: dict[str, float | None] = {}
    for tag, keys in groups.items():
        out |= peers.aligned_share(
            {k: share[k] for k in keys}, profile, band_of[tag], sector, min_peers
        )
    return out


def _detectors(m: _Meter, table: _Peers) -> list[Callable[[], list[Finding]]]:
    raw, load, ctx, k = m.raw, m.load, m.ctx, m.key
    if raw.series.role == "dedicated":
        return [
            lambda: nightload.detect(raw.series, ctx, frame=raw),
            lambda: drift.detect(raw.series, ctx, frame=raw),
        ]
    peer_base, peer_off = table.base.get(k), table.off.get(k)
    peer_share = peers.usable(table.share.get(k))  # peaks reads a zero share as a yardstick
    common, few = table.common.get(k), False
    if raw.series.site in table.few_sites:
        common = table.few_common.get(k)
        few = common is not None
    return [
        lambda: baseload.detect(load.series, ctx, peer_ratio=peer_base, frame=load),
        lambda: offhours.detect(load.series, ctx, peer_ratio=peer_off, frame=load),
        lambda: standby.detect(load.series, ctx, frame=load),
        lambda: peaks.detect_shift(load.series, ctx, peer_share=peer_share, frame=load),
        *(
            [lambda: peaks.detect_shave(raw.series, ctx, frame=raw)]
            if raw.series.resolution_ms <= QUARTER_MS
            else []
        ),
        lambda: power_quality.detect_power_factor(raw.series, ctx, frame=raw),
        lambda: power_quality.detect_phase_imbalance(raw.series, ctx, frame=raw),
        lambda: drift.detect(load.series, ctx, common=common, few_peers=few, frame=load),
    ]


def _history_detectors(m: _Meter, table: _Peers) -> list[Callable[[], list[Finding]]]:
    """Own-history checks for a site without enough peers (none for the others)."""
    raw, load, ctx = m.raw, m.load, m.ctx
    if raw.series.site not in table.few_sites:
        return []
    if raw.series.role == "dedicated":
        return [lambda: nightload.detect_history(raw.series, ctx, frame=raw)]
    season = table.few_base.get(m.key)
    return [lambda: baseload.detect_history(load.series, ctx, season=season, frame=load)]


def _run(m: _Meter, runs: list[Callable[[], list[Finding]]], report: ScanReport) -> list[Finding]:
    found: list[Finding] = []
    for run in runs:
        try:
            found.extend(run())
        except Exception:
            report.errors += 1
            site, meter = m.key.split("\x1f")
            log.exception("detector failed site=%s meter=%s", site, meter)
    return found


def _combine(
    found: list[Finding], history: list[Finding], th: Thresholds, drift_min_rel: float
) -> list[Finding]:
    """One finding per kind: a history finding replaces a smaller one of the same kind, and a
    drift counts only beyond the rise of base or night load the history checks report (that
    rise is in the total use too)."""
    by_kind = {f.kind: f for f in found}
    for h in history:
        old = by_kind.get(h.kind)
        if old is None or h.annual_kwh > old.annual_kwh:
            by_kind[h.kind] = h
    explained = sum(h.annual_kwh for h in history if by_kind.get(h.kind) is h)
    d = by_kind.pop(drift.KIND, None)
    if d is not None and explained > 0:
        d = _net_drift(d, explained, th, drift_min_rel)
    if d is not None:
        by_kind[drift.KIND] = d
    return list(by_kind.values())


def _net_drift(d: Finding, explained_kwh: float, th: Thresholds, min_rel: float) -> Finding | None:
    """The drift less `explained_kwh` a year; None when what is left is below its thresholds."""
    left = d.annual_kwh - explained_kwh
    if left < th.min_annual_kwh:
        return None
    part = left / d.annual_kwh
    rise = float(d.evidence.get("rise", 0.0)) * part
    if rise < min_rel:
        return None
    evidence = {**d.evidence, "rise": round(rise, 3), "reported_rise_kwh": round(explained_kwh)}
    return replace(
        d,
        annual_kwh=left,
        annual_dkk=d.annual_dkk * part,
        annual_kg_co2=d.annual_kg_co2 * part,
        evidence=evidence,
    )


def scan_report(
    series_list: Sequence[MeterSeries],
    contexts: Mapping[str, SiteContext],
    now_ms: int | None = None,
) -> ScanReport:
    """Run all detectors on all meters; a failing detector is logged and the scan goes on."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    meters = _prepare(series_list, contexts)
    table = _peer_tables(meters)
    report = ScanReport()
    for m in meters:
        report.skipped.extend(skipped(m.raw.series))
        found = _run(m, _detectors(m, table), report)
        history = _run(m, _history_detectors(m, table), report)
        if history:
            th = m.ctx.thresholds
            few_season = table.few_common.get(m.key) is not None
            min_rel = th.drift_min_rel_few_peers if few_season else th.drift_min_rel_alone
            found = _combine(found, history, th, min_rel)
        report.findings.extend(found)
    report.opportunities = sorted(
        (to_opportunity(f, contexts.get(f.site) or SiteContext(), now) for f in report.findings),
        key=lambda o: -o.annual_dkk,
    )
    return report


def scan(
    series_list: Sequence[MeterSeries],
    contexts: Mapping[str, SiteContext],
    now_ms: int | None = None,
) -> list[Opportunity]:
    """All opportunities in a portfolio, largest yearly DKK first."""
    return scan_report(series_list, contexts, now_ms).opportunities
