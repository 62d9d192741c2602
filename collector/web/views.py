"""What the API and the pages show, assembled from Reader queries and site figures."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, overload
from zoneinfo import ZoneInfo

from collector.analysis.site_context import SiteContext
from collector.intervals.rollup import CounterStats, GaugeStats, Stats
from collector.store import AlertRow, GatewayRow, LatestRow, OpportunityRow, Reader
from collector.web import figures, models, site_calendar

DAY_MS = figures.DAY_MS


@overload
def at(ms: int) -> datetime: ...
@overload
def at(ms: None) -> None: ...
@overload
def at(ms: int | None) -> datetime | None: ...
def at(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def _num(data: dict[str, Any], key: str) -> float | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def opportunity(row: OpportunityRow) -> models.Opportunity:
    data = row.data if isinstance(row.data, dict) else {}
    action = data.get("action")
    rentabel = data.get("rentabel")
    return models.Opportunity(
        id=row.id,
        site=row.site,
        meter=row.meter,
        kind=row.kind,
        status=row.status,
        action=action if isinstance(action, str) else None,
        annual_kwh=_num(data, "annual_kwh"),
        annual_dkk=_num(data, "annual_dkk"),
        annual_kg_co2=_num(data, "annual_kg_co2"),
        investment_dkk=_num(data, "investment_dkk"),
        payback_years=_num(data, "payback_years"),
        lifetime_years=_num(data, "lifetime_years"),
        rentabel=rentabel if isinstance(rentabel, bool) else None,
        updated=at(row.updated_ms),
        data=data,
    )


def ranked(opps: list[models.Opportunity]) -> list[models.Opportunity]:
    """Shortest payback first; unknown payback last, larger yearly saving first among ties."""
    return sorted(
        opps,
        key=lambda o: (
            o.payback_years is None,
            o.payback_years or 0.0,
            -(o.annual_dkk or 0.0),
            o.id,
        ),
    )


def alert(row: AlertRow) -> models.Alert:
    # the stored JSON is shown whatever it holds: labels that are not strings become strings
    labels = {str(k): str(v) for k, v in row.labels.items()} if isinstance(row.labels, dict) else {}
    return models.Alert(
        id=row.id,
        site=row.site,
        labels=labels,
        state=row.state,
        severity=row.severity,
        summary=row.summary,
        started=at(row.started_ms),
        resolved=at(row.resolved_ms),
        data=row.data if isinstance(row.data, dict) else {},
    )


def gateway(row: GatewayRow) -> models.Gateway:
    return models.Gateway(
        gateway=row.gateway,
        online=row.state == "online",
        state=row.state,
        state_since=at(row.state_ms),
        last_reading=at(row.last_seen_ms),
        last_seq=row.last_seq,
        status=row.status,
        health=row.health,
    )


def summaries(
    reader: Reader, sites: list[str], now_ms: int, tz_of: Callable[[str], ZoneInfo]
) -> list[models.SiteSummary]:
    """One line per site for the overview; global queries, filtered, when many sites.

    "Today" is each site's own local day (`tz_of`): one query per time zone in use.
    """
    one = sites[0] if len(sites) == 1 else None
    wanted = set(sites)
    power: dict[str, list[LatestRow]] = defaultdict(list)
    for row in reader.latest_of("power_w", one):
        power[row.site].append(row)
    by_tz: dict[ZoneInfo, list[str]] = defaultdict(list)
    for site in sites:
        by_tz[tz_of(site)].append(site)
    today: dict[str, float] = {}
    for tz, in_tz in by_tz.items():
        midnight = figures.local_midnight_ms(now_ms, tz)
        kwh = reader.energy_by_site(midnight, now_ms + 1)
        today.update({site: kwh[site] for site in in_tz if site in kwh})
    gws: dict[str, list[GatewayRow]] = defaultdict(list)
    for gw in reader.gateways(one):
        gws[gw.site].append(gw)
    open_alerts: dict[str, int] = defaultdict(int)
    for a in reader.alerts(one, since_ms=2**62):
        open_alerts[a.site] += 1
    opps: dict[str, list[models.Opportunity]] = defaultdict(list)
    for o in reader.opportunities(one, "open"):
        opps[o.site].append(opportunity(o))
    out = []
    for site in sites:
        if site not in wanted:
            continue
        rows = [r for r in power.get(site, []) if reader.in_site_total(site, r.meter)]
        best = ranked(opps.get(site, []))
        out.append(
            models.SiteSummary(
                site=site,
                power_w=sum(r.value for r in rows) if rows else None,
                power_at=at(max(r.ts_ms for r in rows)) if rows else None,
                today_kwh=round(today.get(site, 0.0), 3),
                gateways_online=sum(1 for g in gws.get(site, []) if g.state == "online"),
                gateways_total=len(gws.get(site, [])),
                open_alerts=open_alerts.get(site, 0),
                open_opportunities=len(best),
                top_opportunity=best[0] if best else None,
            )
        )
    return out


def points(
    reader: Reader, site: str, from_ms: int, to_ms: int, meter: str | None = None
) -> list[figures.Point]:
    if meter is None:  # summed in SQL: a site can have many meters and weeks of data
        return [
            figures.Point(start, kwh, mean_w, max_w, bool(est))
            for start, kwh, est, mean_w, max_w in reader.site_totals(site, from_ms, to_ms)
        ]
    return figures.totals(
        r for r in reader.site_intervals(site, from_ms, to_ms) if r.meter == meter
    )


def gaps(
    reader: Reader, site: str, pts: list[figures.Point], from_ms: int, to_ms: int
) -> models.Gaps:
    return models.Gaps(
        seq_gaps=[
            models.SeqGap(
                gateway=g.gateway,
                from_seq=g.from_seq,
                to_seq=g.to_seq,
                after=at(g.after_ms),
                before=at(g.before_ms),
            )
            for g in reader.gaps(site)
        ],
        missing_intervals=[
            models.MissingIntervals(start=at(g.from_ms), end=at(g.to_ms))
            for g in figures.missing(pts, from_ms, to_ms)
        ],
    )


@dataclass(frozen=True)
class Calendar:
    """A site's calendar as the pages state it; None: the sites file has no entry for it."""

    opening_hours: str | None
    closed_days: str | None


def calendar(ctx: SiteContext | None, first: date, last: date) -> Calendar:
    if ctx is None:
        return Calendar(None, None)
    return Calendar(
        site_calendar.opening_hours_text(ctx.opening_hours),
        site_calendar.closed_days_text(ctx, first, last),
    )


@dataclass(frozen=True)
class SitePage:
    summary: models.SiteSummary
    calendar: Calendar
    meters: list[dict[str, Any]]  # gateway, meter, key, power_w, at
    profile: list[figures.Point]  # last 7 days, 15 minutes
    heatmap: list[list[float | None]]  # last 8 weeks, weekday x hour, kW
    base_load_w: float | None
    opportunities: list[models.Opportunity]
    alerts: list[models.Alert]
    gateways: list[models.Gateway]
    gaps: models.Gaps


def site_page(
    reader: Reader, site: str, now_ms: int, tz: ZoneInfo, ctx: SiteContext | None
) -> SitePage:
    """`tz` is the site's own time zone; `ctx` its entry in the sites file, if any."""
    week_from = now_ms - 7 * DAY_MS
    long = points(reader, site, now_ms - 56 * DAY_MS, now_ms + 1)
    week = [p for p in long if p.start_ms >= week_from]
    latest = {(r.gateway, r.meter): r for r in reader.latest_of("power_w", site)}
    meters = []
    for m in reader.meters(site):
        power = latest.get((m.gateway, m.meter))
        meters.append(
            {
                "gateway": m.gateway,
                "meter": m.meter,
                "key": f"{m.gateway}/{m.meter}",
                "power_w": None if power is None else power.value,
                "at": None if power is None else at(power.ts_ms),
                "sub_meter": not reader.in_site_total(site, m.meter),
            }
        )
    today = datetime.fromtimestamp(now_ms / 1000, tz).date()
    return SitePage(
        summary=summaries(reader, [site], now_ms, lambda _site: tz)[0],
        # closures still to come and those inside the heatmap's 8 weeks
        calendar=calendar(ctx, today - timedelta(days=56), date.max),
        meters=meters,
        profile=week,
        heatmap=figures.heatmap(long, tz),
        base_load_w=figures.base_load_w(week),
        opportunities=ranked([opportunity(r) for r in reader.opportunities(site, "open")]),
        alerts=[alert(r) for r in reader.alerts(site, since_ms=week_from)],
        gateways=[gateway(r) for r in reader.gateways_of(site)],
        gaps=gaps(reader, site, week, week_from, now_ms),
    )


@dataclass(frozen=True)
class Report:
    site: str
    from_ms: int
    to_ms: int
    summary: figures.Summary
    calendar: Calendar
    off_hours_share: float | None  # None: no opening hours known, or no energy used
    daily: list[figures.Point]
    profile: list[figures.Point]
    average_day: dict[str, list[float | None]]  # "weekday"/"weekend" -> 96 mean kW values
    heatmap: list[list[float | None]]
    opportunities: list[models.Opportunity]
    meters: int
    gaps: models.Gaps
    sources: list[str]  # per meter: where its data comes from, at what resolution


SOURCES = {"eloverblik": "the utility's metering data (DataHub, imported from Eloverblik)"}


def data_sources(reader: Reader, site: str) -> list[str]:
    """One line per meter: gateway readings, or an imported series and its resolution."""
    out = []
    for m in reader.meters(site):
        if m.source is None:
            out.append(f"{m.gateway}/{m.meter}: gateway readings, 15-minute intervals")
            continue
        minutes = (m.resolution_ms or 900_000) // 60_000
        step = "hourly values" if minutes == 60 else f"{minutes}-minute values"
        text = SOURCES.get(m.source, m.source)
        if m.quantities != ["energy_import_kwh"]:
            text += " and gateway readings"
        out.append(f"{m.gateway}/{m.meter}: {text}, {step}")
    return out


def average_day(pts: list[figures.Point], tz: ZoneInfo) -> dict[str, list[float | None]]:
    """Mean kW per local quarter-hour of the day, for weekdays and weekend days."""
    sums = {"weekday": [0.0] * 96, "weekend": [0.0] * 96}
    counts = {"weekday": [0] * 96, "weekend": [0] * 96}
    for p in pts:
        if p.mean_power_w is None:
            continue
        local = datetime.fromtimestamp(p.start_ms / 1000, tz)
        kind = "weekday" if local.weekday() < 5 else "weekend"
        slot = local.hour * 4 + local.minute // 15
        sums[kind][slot] += p.mean_power_w / 1000
        counts[kind][slot] += 1
    return {
        k: [sums[k][i] / counts[k][i] if counts[k][i] else None for i in range(96)] for k in sums
    }


def report(
    reader: Reader, site: str, from_ms: int, to_ms: int, tz: ZoneInfo, ctx: SiteContext | None
) -> Report:
    """The energy review of [from_ms, to_ms); without a sites-file entry (`ctx` None) there
    are no opening hours, so no off-hours share either."""
    pts = points(reader, site, from_ms, to_ms)
    first = datetime.fromtimestamp(from_ms / 1000, tz).date()
    last = datetime.fromtimestamp((to_ms - 1) / 1000, tz).date()
    return Report(
        site=site,
        from_ms=from_ms,
        to_ms=to_ms,
        summary=figures.summarize(pts, from_ms, to_ms),
        calendar=calendar(ctx, first, last),
        off_hours_share=(
            None if ctx is None else site_calendar.off_hours_share(pts, from_ms, to_ms, site, ctx)
        ),
        daily=figures.bucket(pts, "1d", tz),
        profile=pts,
        average_day=average_day(pts, tz),
        heatmap=figures.heatmap(pts, tz),
        opportunities=ranked([opportunity(r) for r in reader.opportunities(site, "open")]),
        meters=len(reader.meters(site)),
        gaps=gaps(reader, site, pts, from_ms, to_ms),
        sources=data_sources(reader, site),
    )


def meter_rollups(
    reader: Reader, site: str, meter: str, from_ms: int, to_ms: int, quantities: set[str] | None
) -> list[tuple[int, dict[str, Stats]]] | None:
    """One meter's 15-minute rollups (None: no such meter at the site)."""
    ids = [m.meter_id for m in reader.meter_index() if m.site == site and m.meter == meter]
    if not ids:
        return None
    out = []
    for start, stats in reader.rollups(ids[0], from_ms, to_ms):
        kept = {q: v for q, v in stats.items() if quantities is None or q in quantities}
        if kept:
            out.append((start, kept))
    return out


def rollup_points(
    rows: list[tuple[int, dict[str, Stats]]], step: str, tz: ZoneInfo
) -> list[models.RollupPoint]:
    """Rollups as API points, combined into local hours or days for a longer step (means
    weighted by their reading counts, energies summed)."""
    buckets: dict[int, dict[str, list[Stats]]] = {}
    for start, stats in rows:
        key = start if step == "15m" else figures.local_bucket_ms(start, step, tz)
        for q, v in stats.items():
            buckets.setdefault(key, {}).setdefault(q, []).append(v)
    points = []
    for start, by_q in sorted(buckets.items()):
        values = {}
        for q, parts in by_q.items():
            gauges = [v for v in parts if isinstance(v, GaugeStats)]
            if gauges:
                n = sum(g.count for g in gauges)
                values[q] = models.QuantityStats(
                    mean=sum(g.mean * g.count for g in gauges) / n if n else None,
                    min=min(g.min for g in gauges),
                    max=max(g.max for g in gauges),
                    count=n,
                )
            else:
                energies = [v.energy for v in parts if isinstance(v, CounterStats)]
                known = [e for e in energies if e is not None]
                values[q] = models.QuantityStats(energy=sum(known) if known else None)
        points.append(models.RollupPoint(start=at(start), values=values))
    return points
