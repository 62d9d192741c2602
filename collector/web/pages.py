"""Server-rendered pages: login, overview, site and the printable energy-review report."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from collector import fleet
from collector.web import auth, figures, svg, views
from collector.web.access import SiteId, caller, visible_site
from collector.web.context import HERE, ctx_of
from sparwatt import wire

templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)
REPORT_DEFAULT_DAYS = 28
REPORT_MAX_DAYS = 400


def _who(request: Request) -> auth.Principal:
    found = caller(request)
    if found is None:
        raise HTTPException(401, "login needed")
    return found


def _filters(tz: ZoneInfo) -> dict[str, Any]:
    def local(value: datetime | int | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        if value is None:
            return "-"
        if isinstance(value, int):
            value = datetime.fromtimestamp(value / 1000, tz)
        return value.astimezone(tz).strftime(fmt)

    def num(value: float | None, digits: int = 1, scale: float = 1.0) -> str:
        return "-" if value is None else f"{value / scale:,.{digits}f}"

    return {"local": local, "num": num}


def render(
    request: Request,
    name: str,
    status_code: int = 200,
    tz: ZoneInfo | None = None,
    **data: Any,
) -> HTMLResponse:
    """A page; `tz` is the time zone of the site it shows (pages of no one site have none)."""
    zone = tz or ctx_of(request).default_tz
    return templates.TemplateResponse(
        request, name, {**_filters(zone), "tz": zone.key, **data}, status_code=status_code
    )


def error_page(request: Request, status: int, detail: str = "") -> Response:
    if status == 401:
        return RedirectResponse("/login", 303)
    if status == 404:
        return render(request, "error.html", status, message="Not found", detail="")
    return render(request, "error.html", status, message="Cannot show this page", detail=detail)


@router.get("/login")
def login_form(request: Request) -> Response:
    return render(request, "login.html", error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    body = (await request.body())[:4096].decode(errors="replace")
    presented = (parse_qs(body).get("token") or [""])[0].strip()
    ctx = ctx_of(request)

    who = await run_in_threadpool(ctx.authenticate, presented)
    if who is None:
        return render(request, "login.html", 401, error="That token is not valid.")
    response = RedirectResponse("/", 303)
    response.set_cookie(
        auth.COOKIE, presented, httponly=True, samesite="strict", secure=ctx.secure_cookie, path="/"
    )
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", 303)
    response.delete_cookie(auth.COOKIE, path="/")
    return response


@router.get("/")
def overview(request: Request) -> Response:
    who = _who(request)
    ctx = ctx_of(request)
    reader = ctx.reader()
    rows = views.summaries(reader, who.visible(reader.sites()), ctx.now_ms(), ctx.site_tz)
    return render(request, "overview.html", who=who, sites=rows)


@router.get("/fleet")
def fleet_page(request: Request) -> Response:
    """Every gateway of the sites the caller may see; installers (admin, consultant) also
    get a "Read now" button per meter."""
    who = _who(request)
    ctx = ctx_of(request)
    reader = ctx.reader()
    now = ctx.now_ms()
    rows = fleet.fleet(reader, now, who.visible(reader.sites()))
    return render(
        request,
        "fleet.html",
        who=who,
        rows=rows,
        counts=fleet.tally(rows),
        now_ms=now,
        may_read=who.role is not auth.Role.COMPANY,
    )


@router.get("/sites/{site}")
def site_page(request: Request, site: SiteId) -> Response:
    who = _who(request)
    visible_site(ctx_of(request), who, site)
    ctx = ctx_of(request)
    tz = ctx.site_tz(site)
    page = views.site_page(ctx.reader(), site, ctx.now_ms(), tz, ctx.site_context(site))
    now_s = ctx.now_ms() // 1000
    profile = {
        "from": now_s - 7 * 86400,
        "to": now_s,
        "t": [p.start_ms // 1000 for p in page.profile],
        "kw": [
            None if p.mean_power_w is None else round(p.mean_power_w / 1000, 3)
            for p in page.profile
        ],
    }
    return render(
        request,
        "site.html",
        tz=tz,
        who=who,
        site=site,
        page=page,
        profile=profile,
        heatmap=svg.heatmap(page.heatmap, "Mean power by weekday and hour, last 8 weeks"),
        sites_file=ctx.sites is not None,
    )


def _day(text: str | None, default: date) -> date:
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise HTTPException(400, f"not a date (YYYY-MM-DD): {text[:20]!r}") from None


@router.get("/sites/{site}/report")
def report_page(
    request: Request,
    site: SiteId,
    start: Annotated[str | None, Query(alias="from", max_length=20)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=20)] = None,
) -> Response:
    """Energy review of whole local days [from, to], printable, charts inline."""
    who = _who(request)
    visible_site(ctx_of(request), who, site)
    ctx = ctx_of(request)
    tz = ctx.site_tz(site)
    today = datetime.fromtimestamp(ctx.now_ms() / 1000, tz).date()
    last = _day(end, today - timedelta(days=1))
    first = _day(start, last - timedelta(days=REPORT_DEFAULT_DAYS - 1))
    if (
        first > last
        or (last - first).days >= REPORT_MAX_DAYS
        or first.year < 2000
        or last.year > 2100
    ):
        raise HTTPException(400, f"'from' must not be after 'to', at most {REPORT_MAX_DAYS} days")
    lo = _midnight(first, tz)
    hi = _midnight(last + timedelta(days=1), tz)
    rep = views.report(ctx.reader(), site, lo, hi, tz, ctx.site_context(site))
    charts = {
        "daily": svg.bar_chart(
            [views.at(p.start_ms).astimezone(tz).strftime("%d %b") for p in rep.daily],
            [p.energy_kwh for p in rep.daily],
            "Energy per day",
            "kWh",
        ),
        "profile": svg.line_chart(
            [p.start_ms for p in rep.profile],
            [None if p.mean_power_w is None else p.mean_power_w / 1000 for p in rep.profile],
            tz,
            "15-minute mean power over the period",
            "kW",
            span=(lo, hi),
        ),
        "day": svg.day_profile(rep.average_day, "Average day: weekdays and weekend days"),
        "heatmap": svg.heatmap(rep.heatmap, "Mean power by weekday and hour"),
    }
    css = Markup((HERE / "static" / "report.css").read_text())  # our own file, not input
    return render(
        request,
        "report.html",
        tz=tz,
        who=who,
        site=site,
        rep=rep,
        charts=charts,
        css=css,
        first=first,
        last=last,
        generated=ctx.now_ms(),
        from_iso=wire.format_ts(views.at(lo)),
        to_iso=wire.format_ts(views.at(hi)),
        sites_file=ctx.sites is not None,
        base_pct=figures.BASE_LOAD_PERCENTILE,
        sub_meters=sorted(m.split("/", 1)[1] for m in ctx.sub_meters if m.startswith(f"{site}/")),
    )


def _midnight(day: date, tz: ZoneInfo) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp() * 1000)
