"""The JSON API under /api: every route checks the caller's token and site scope."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from fastapi.security import APIKeyCookie, HTTPBearer

from collector import fleet
from collector.analysis.site_context import Sites
from collector.evaluation import verification
from collector.store import LatestRow, MeasureRow
from collector.web import auth, figures, models, views
from collector.web.access import SiteId, caller, visible_site
from collector.web.context import WebContext, ctx_of, presented_token
from sparwatt import wire
from sparwatt.timeutil import QUARTER_MS, epoch_ms

# Declared for the OpenAPI document; the checks themselves are in `principal`.
_bearer = HTTPBearer(auto_error=False, description="an API token: `spw_...`")
_cookie = APIKeyCookie(name=auth.COOKIE, auto_error=False, description="set by the login page")

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": models.Problem, "description": "a bad time range"},
    401: {"model": models.Problem, "description": "no valid token"},
    404: {"model": models.Problem, "description": "no such site, or not yours"},
}
SPAN_LIMIT_DAYS = {"15m": 92, "1h": 400, "1d": 3700}
MIN_YEAR, MAX_YEAR = 2000, 2100
KEEPALIVE_S = 15.0


def principal(
    request: Request, _b: Annotated[Any, Depends(_bearer)], _c: Annotated[Any, Depends(_cookie)]
) -> auth.Principal:
    found = caller(request)
    if found is None:
        raise HTTPException(
            401, "a valid API token is needed", headers={"WWW-Authenticate": "Bearer"}
        )
    return found


Caller = Annotated[auth.Principal, Depends(principal)]


class CsvResponse(Response):
    media_type = "text/csv"


class EventStream(StreamingResponse):
    media_type = "text/event-stream"


def time_range(
    ctx: WebContext,
    start: datetime | None,
    end: datetime | None,
    default_days: float,
    limit_days: float,
) -> tuple[int, int]:
    """[from, to) in epoch ms; naive times are UTC; 400 on reversed or too long ranges."""
    for value in (start, end):
        if value is not None:
            _check_year(value)
    hi = _ms(end) if end is not None else ctx.now_ms()
    lo = _ms(start) if start is not None else hi - int(default_days * figures.DAY_MS)
    if lo >= hi:
        raise HTTPException(400, "'from' must be before 'to'")
    if hi - lo > limit_days * figures.DAY_MS:
        raise HTTPException(400, f"at most {limit_days:g} days at this step")
    return lo, hi


def _check_year(value: datetime) -> None:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise HTTPException(400, f"times must lie in the years {MIN_YEAR}..{MAX_YEAR}")


def _ms(value: datetime) -> int:
    return epoch_ms(value if value.tzinfo else value.replace(tzinfo=UTC))


router = APIRouter(prefix="/api", responses={401: _ERRORS[401]}, tags=["api"])
From = Annotated[datetime | None, Query(alias="from", description="start (ISO 8601)")]
To = Annotated[datetime | None, Query(alias="to", description="end, exclusive (ISO 8601)")]


@router.get("/me", response_model=models.Me)
def me(who: Caller) -> models.Me:
    return models.Me(
        name=who.name,
        role=who.role.value,
        sites=None if who.role is auth.Role.ADMIN else sorted(who.sites),
    )


@router.get("/sites", response_model=list[models.SiteSummary])
def sites(request: Request, who: Caller) -> list[models.SiteSummary]:
    ctx = ctx_of(request)
    reader = ctx.reader()
    return views.summaries(reader, who.visible(reader.sites()), ctx.now_ms(), ctx.site_tz)


@router.get("/sites/{site}", response_model=models.SiteSummary, responses={404: _ERRORS[404]})
def site_summary(request: Request, who: Caller, site: SiteId) -> models.SiteSummary:
    ctx = ctx_of(request)
    visible_site(ctx, who, site)
    return views.summaries(ctx.reader(), [site], ctx.now_ms(), ctx.site_tz)[0]


@router.get(
    "/sites/{site}/meters", response_model=list[models.Meter], responses={404: _ERRORS[404]}
)
def meters(request: Request, who: Caller, site: SiteId) -> list[models.Meter]:
    ctx = ctx_of(request)
    visible_site(ctx, who, site)
    return [
        models.Meter(gateway=m.gateway, meter=m.meter, quantities=m.quantities)
        for m in ctx.reader().meters(site)
    ]


def known_quantities(names: list[str]) -> None:
    """400 for a quantity name outside the wire vocabulary (a typo would answer nothing)."""
    unknown = sorted(set(names) - set(wire.QUANTITIES))
    if unknown:
        raise HTTPException(400, f"unknown quantity: {unknown[0]!r}")


@router.get(
    "/sites/{site}/latest",
    response_model=list[models.Latest],
    responses={400: _ERRORS[400], 404: _ERRORS[404]},
)
def latest(
    request: Request,
    who: Caller,
    site: SiteId,
    quantity: Annotated[str | None, Query(max_length=64, description="only this quantity")] = None,
) -> list[models.Latest]:
    """The newest value of every quantity of every meter of the site."""
    ctx = ctx_of(request)
    visible_site(ctx, who, site)
    known_quantities([quantity] if quantity else [])
    rows = ctx.reader().latest_of(quantity, site) if quantity else ctx.reader().latest(site)
    return [
        models.Latest(
            gateway=r.gateway,
            meter=r.meter,
            quantity=r.quantity,
            at=views.at(r.ts_ms),
            value=r.value,
        )
        for r in rows
    ]


@router.get(
    "/sites/{site}/meters/{meter}/rollups",
    response_model=models.Rollups,
    responses={400: _ERRORS[400], 404: _ERRORS[404]},
)
def meter_rollups(
    request: Request,
    who: Caller,
    site: SiteId,
    meter: Annotated[str, Path(pattern=wire.ID_PATTERN, description="meter id")],
    start: From = None,
    end: To = None,
    step: Literal["15m", "1h", "1d"] = "15m",
    quantity: Annotated[
        list[str] | None, Query(description="only these quantities (repeatable); else all")
    ] = None,
) -> models.Rollups:
    """Every quantity of one meter per 15 minutes, local hour or local day, from the history
    kept for good (default: last 7 days): gauges as mean, min, max and count, counters as
    the energy of each step."""
    ctx = ctx_of(request)
    visible_site(ctx, who, site)
    known_quantities(quantity or [])
    lo, hi = time_range(ctx, start, end, 7, SPAN_LIMIT_DAYS[step])
    rows = views.meter_rollups(ctx.reader(), site, meter, lo, hi, set(quantity or ()) or None)
    if rows is None:
        raise HTTPException(404, "meter not found")
    return models.Rollups(
        site=site,
        meter=meter,
        step=step,
        start=views.at(lo),
        end=views.at(hi),
        points=views.rollup_points(rows, step, ctx.site_tz(site)),
    )


@router.get(
    "/sites/{site}/series",
    response_model=models.Series,
    responses={400: _ERRORS[400], 404: _ERRORS[404]},
)
def series(
    request: Request,
    who: Caller,
    site: SiteId,
    start: From = None,
    end: To = None,
    step: Literal["15m", "1h", "1d"] = "15m",
    meter: Annotated[
        str | None, Query(pattern=wire.ID_PATTERN, description="one meter; else the site total")
    ] = None,
) -> models.Series:
    """Energy and mean power per 15 minutes, local hour or local day (default: last 7 days)."""
    ctx = ctx_of(request)
    visible_site(ctx, who, site)
    lo, hi = time_range(ctx, start, end, 7, SPAN_LIMIT_DAYS[step])
    pts = figures.bucket(views.points(ctx.reader(), site, lo, hi, meter), step, ctx.site_tz(site))
    return models.Series(
        site=site,
        meter=meter,
        step=step,
        start=views.at(lo),
        end=views.at(hi),
        points=[
            models.Point(
                start=views.at(p.start_ms),
                energy_kwh=p.energy_kwh,
                mean_power_w=p.mean_power_w,
                max_power_w=p.max_power_w,
                estimated=p.estimated,
            )
            for p in pts
        ],
    )


@router.get(
    "/sites/{site}/opportunities",
    response_model=list[models.Opportunity],
    responses={404: _ERRORS[404]},
)
def opportunities(
    request: Request, who: Caller, site: SiteId, status: Literal["open", "closed"] | None = None
) -> list[models.Opportunity]:
    """Savings opportunities, shortest payback first."""
    ctx = ctx_of(request)
    visible_site(ctx, who, site)
    return views.ranked([views.opportunity(r) for r in ctx.reader().opportunities(site, status)])


@router.get(
    "/sites/{site}/alerts",
    response_model=list[models.Alert],
    responses={400: _ERRORS[400], 404: _ERRORS[404]},
)
def alerts(
    request: Request,
    who: Caller,
    site: SiteId,
    since: Annotated[
        datetime | None, Query(description="also alerts resolved since then (default: 7 days ago)")
    ] = None,
) -> list[models.Alert]:
    """Open alerts and recently resolved ones, newest first."""
    ctx = ctx_of(request)
    visible_site(ctx, who, site)
    if since is None:
        lo = ctx.now_ms() - 7 * figures.DAY_MS
    else:
        _check_year(since)
        lo = _ms(since)
    return [views.alert(r) for r in ctx.reader().alerts(site, since_ms=lo)]


@router.get(
    "/sites/{site}/gateways", response_model=list[models.Gateway], responses={404: _ERRORS[404]}
)
def gateways(request: Request, who: Caller, site: SiteId) -> list[models.Gateway]:
    """Each gateway's online state, last status message and health report."""
    ctx = ctx_of(request)
    visible_site(ctx, who, site)
    return [views.gateway(r) for r in ctx.reader().gateways_of(site)]


@router.get(
    "/sites/{site}/gaps",
    response_model=models.Gaps,
    responses={400: _ERRORS[400], 404: _ERRORS[404]},
)
def gaps(
    request: Request, who: Caller, site: SiteId, start: From = None, end: To = None
) -> models.Gaps:
    """Missing batches (sequence gaps) and missing 15-minute intervals in the range."""
    ctx = ctx_of(request)
    visible_site(ctx, who, site)
    lo, hi = time_range(ctx, start, end, 7, SPAN_LIMIT_DAYS["15m"])
    return views.gaps(ctx.reader(), site, views.points(ctx.reader(), site, lo, hi), lo, hi)


@router.get(
    "/sites/{site}/export.csv",
    response_model=None,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "one row per meter and 15-minute interval",
        },
        400: _ERRORS[400],
        404: _ERRORS[404],
    },
)
def export_csv(
    request: Request, who: Caller, site: SiteId, start: From = None, end: To = None
) -> Response:
    """15-minute energy and power per meter as CSV (default: last 7 days)."""
    ctx = ctx_of(request)
    visible_site(ctx, who, site)
    lo, hi = time_range(ctx, start, end, 7, SPAN_LIMIT_DAYS["15m"])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "site",
            "gateway",
            "meter",
            "start",
            "energy_kwh",
            "estimated",
            "mean_power_w",
            "max_power_w",
        ]
    )
    for gw, meter, start_ms, kwh, est, mean_w, max_w in ctx.reader().site_intervals(site, lo, hi):
        writer.writerow(
            [site, gw, meter, wire.format_ts(views.at(start_ms)), kwh, bool(est), mean_w, max_w]
        )
    name = f"{site}-{datetime.fromtimestamp(lo / 1000, UTC):%Y%m%d}-15min.csv"
    return CsvResponse(
        out.getvalue(), headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get(
    "/sites/{site}/live",
    response_model=None,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "Server-Sent Events: a snapshot, then one event per received batch",
        },
        404: _ERRORS[404],
    },
)
async def live(
    request: Request,
    site: SiteId,
    max_events: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> Response:
    """Live power per meter as Server-Sent Events, re-checking the token before each event."""
    ctx = ctx_of(request)
    presented = presented_token(request)

    def check() -> list[LatestRow]:
        who = ctx.authenticate(presented)
        if who is None:
            raise HTTPException(
                401, "a valid API token is needed", headers={"WWW-Authenticate": "Bearer"}
            )
        visible_site(ctx, who, site)
        return ctx.reader().latest_of("power_w", site)

    rows = await run_in_threadpool(check)
    snapshot = {
        "ts_ms": max((r.ts_ms for r in rows), default=None),
        "values": {f"{r.gateway}/{r.meter}": [r.ts_ms, r.value] for r in rows},
    }

    async def still_allowed() -> bool:
        try:
            await run_in_threadpool(check)
        except HTTPException:
            return False
        return True

    async def stream() -> AsyncIterator[str]:
        sub = ctx.hub.subscribe(site)
        try:
            yield "retry: 2000\n" + _event(snapshot, "snapshot")
            sent = 1
            while max_events is None or sent < max_events:
                try:
                    event = await asyncio.wait_for(sub.queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    if not await still_allowed():
                        return
                    yield ": keepalive\n\n"
                    continue
                if event is None or not await still_allowed():
                    return
                yield _event(event, "power")
                sent += 1
        finally:
            ctx.hub.unsubscribe(sub)

    return EventStream(stream(), headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def _event(data: dict[str, Any], name: str) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@router.get(
    "/tokens",
    response_model=list[models.Token],
    responses={403: {"model": models.Problem, "description": "admins only"}},
)
def tokens(request: Request, who: Caller) -> list[models.Token]:
    """Every API token (never the token itself); admins only."""
    if who.role is not auth.Role.ADMIN:
        raise HTTPException(403, "admins only")
    return [
        models.Token(
            id=t.id,
            name=t.name,
            role=t.role,
            sites=t.sites,
            created=views.at(t.created_ms),
            revoked=views.at(t.revoked_ms),
            expires=views.at(t.expires_ms),
        )
        for t in ctx_of(request).reader().tokens()
    ]


MeasureId = Annotated[
    str, Path(pattern=wire.ID_PATTERN, examples=["a1b2c3d4"], description="measure id")
]


_verified: OrderedDict[tuple[object, ...], verification.MeasureVerification] = OrderedDict()
_verified_lock = threading.Lock()
VERIFIED_KEPT = 64


def verified(ctx: WebContext, row: MeasureRow) -> verification.MeasureVerification:
    """A measure verified now, with the site's calendar, prices and CO2 from the sites file.

    Reading a year and more of 15-minute history is most of the work, so a verification
    is reused within the quarter-hour it was made in (the history grows by quarters; an
    edited measure has a new `updated_ms`).
    """
    now = ctx.now_ms()
    key = (str(ctx.db), id(ctx.sites), row.id, row.updated_ms, now // QUARTER_MS)
    with _verified_lock:
        found = _verified.get(key)
    if found is None:
        found = verification.verify(ctx.reader(), ctx.sites or Sites(), row, now)
        with _verified_lock:
            _verified[key] = found
            while len(_verified) > VERIFIED_KEPT:
                _verified.popitem(last=False)
    return found


def measure_summaries(ctx: WebContext, site: str) -> list[models.MeasureSummary]:
    return [
        models.MeasureSummary.model_validate(verification.summary(verified(ctx, row)))
        for row in ctx.reader().measures(site)
    ]


def measure_of(ctx: WebContext, site: str, measure_id: str) -> MeasureRow:
    """A measure of the site; 404 when there is none (or it belongs to another site)."""
    row = ctx.reader().measure(measure_id)
    if row is None or row.site != site:
        raise HTTPException(404, "measure not found")
    return row


@router.get(
    "/sites/{site}/measures",
    response_model=list[models.MeasureSummary],
    responses={404: _ERRORS[404]},
)
def site_measures(request: Request, who: Caller, site: SiteId) -> list[models.MeasureSummary]:
    """The measures recorded for the site with their verification status: verified kWh a
    year with its 90 % interval, next to what was expected."""
    ctx = ctx_of(request)
    visible_site(ctx, who, site)
    return measure_summaries(ctx, site)


@router.get(
    "/sites/{site}/measures/{measure}",
    response_model=models.MeasureVerification,
    responses={404: {"model": models.Problem, "description": "no such site or measure"}},
)
def site_measure(
    request: Request, who: Caller, site: SiteId, measure: MeasureId
) -> models.MeasureVerification:
    """One measure verified now: the baseline model and why, its ASHRAE Guideline 14
    figures, and the savings in kWh, DKK and CO2 with the cumulative avoided energy."""
    ctx = ctx_of(request)
    visible_site(ctx, who, site)
    found = verified(ctx, measure_of(ctx, site, measure))
    return models.MeasureVerification.model_validate(verification.describe(found))


@router.get("/fleet", response_model=list[models.FleetGateway])
def fleet_list(request: Request, who: Caller) -> list[models.FleetGateway]:
    """Every gateway of the sites the caller may see: state, versions, outbox, meter polling."""
    ctx = ctx_of(request)
    reader = ctx.reader()
    rows = fleet.fleet(reader, ctx.now_ms(), who.visible(reader.sites()))
    return [fleet_model(row) for row in rows]


def fleet_model(row: fleet.FleetGateway) -> models.FleetGateway:
    return models.FleetGateway(
        site=row.site,
        gateway=row.gateway,
        state=row.state,
        status=row.status,
        status_at=views.at(row.status_ms),
        last_seen=views.at(row.last_seen_ms),
        last_health=views.at(row.last_health_ms),
        last_reading=views.at(row.last_reading_ms),
        health_interval_s=row.health_interval_s,
        version=row.version,
        config_version=row.config_version,
        uptime_s=row.uptime_s,
        outbox_depth=row.outbox_depth,
        outbox_oldest_age_s=row.outbox_oldest_age_s,
        outbox_dropped_batches=row.outbox_dropped_batches,
        mqtt_connected=row.mqtt_connected,
        meters=[models.FleetMeter.model_validate(m, from_attributes=True) for m in row.meters],
        errors=list(row.errors),
    )
