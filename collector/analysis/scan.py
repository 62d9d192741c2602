"""Portfolio scan: run every detector on every meter, with sector peers, into opportunities."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

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
from collector.analysis.site_context import SiteContext

log = logging.getLogger(__name__)
NO_SECTOR = "unknown"


@dataclass
class ScanReport:
    """Everything a scan produced; `errors` counts detector faults that were contained."""

    opportunities: list[Opportunity] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    errors: int = 0


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


def _peer_tables(meters: list[_Meter]) -> _Peers:
    """Per meter key: peer ratio/share/common-mode for main meters of sectors with peers."""
    mains = [m for m in meters if m.raw.series.role == "main" and m.ctx.sector != NO_SECTOR]
    sector = {m.key: m.ctx.sector for m in mains}
    min_peers = min((m.ctx.thresholds.min_peers for m in mains), default=2)
    base: dict[str, float] = {}
    off: dict[str, float] = {}
    share: dict[str, float] = {}
    profile: dict[str, np.ndarray] = {}
    days: dict[str, np.ndarray] = {}
    rel: dict[str, np.ndarray] = {}
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
    return _Peers(
        base=peers.median_of_others(base, sector, min_peers),
        off=peers.median_of_others(off, sector, min_peers),
        share=_aligned_shares(mains, share, profile, sector, min_peers),
        common=peers.common_mode(days, rel, sector, min_peers),
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
    peer_share, common = table.share.get(k), table.common.get(k)
    return [
        lambda: baseload.detect(load.series, ctx, peer_ratio=peer_base, frame=load),
        lambda: offhours.detect(load.series, ctx, peer_ratio=peer_off, frame=load),
        lambda: standby.detect(load.series, ctx, frame=load),
        lambda: peaks.detect_shift(load.series, ctx, peer_share=peer_share, frame=load),
        lambda: peaks.detect_shave(raw.series, ctx, frame=raw),
        lambda: power_quality.detect_power_factor(raw.series, ctx, frame=raw),
        lambda: power_quality.detect_phase_imbalance(raw.series, ctx, frame=raw),
        lambda: drift.detect(load.series, ctx, common=common, frame=load),
    ]


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
        for run in _detectors(m, table):
            try:
                report.findings.extend(run())
            except Exception:
                report.errors += 1
                site, meter = m.key.split("\x1f")
                log.exception("detector failed site=%s meter=%s", site, meter)
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
