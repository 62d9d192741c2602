"""Server-rendered pages: login, overview, site and the printable energy-review report."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from collector import fleet
from collector.evaluation import measures as measure_input
from collector.evaluation import verification
from collector.store import Reader, Store
from collector.web import api, auth, figures, models, svg, views
from collector.web.access import SiteId, caller, visible_site
from collector.web.context import HERE, ctx_of
from sparwatt import wire
from sparwatt.errors import ConfigError

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
    return _site(request, who, site)


def _site(
    request: Request,
    who: auth.Principal,
    site: str,
    errors: list[str] | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    """The site page; `errors` and `form`: a measure form sent back to be corrected."""
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
        measures=api.measure_summaries(ctx, site),
        may_edit=_may_edit(who),
        measure_form=_form_choices(ctx.reader(), site, page.opportunities),
        form=form or {"model": "auto"},
        form_errors=errors or [],
        status_text=STATUS_TEXT,
        status_code=400 if errors else 200,
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


# ---- measures: recorded by consultants and admins, seen by the site's company


MEASURE_LABELS = {
    "site": "Site",
    "meters": "Meters",
    "kind": "Kind",
    "title": "Title",
    "installed_from": "Installed",
    "installed_to": "Installed to",
    "investment_dkk": "Investment (DKK)",
    "expected_kwh_year": "Expected kWh/yr",
    "opportunity_id": "Opportunity",
    "model": "Baseline model",
    "exclusions": "Excluded periods",
    "note": "Note",
}
STATUS_TEXT = {
    "verified": "verified",
    "baseline_failed": "baseline failed",
    "insufficient_data": "insufficient data",
    "not_started": "reporting not begun",
}
FORM_LIMIT = 16_384


def _may_edit(who: auth.Principal) -> bool:
    return who.role in (auth.Role.ADMIN, auth.Role.CONSULTANT)


def _form_choices(
    reader: Reader, site: str, opportunities: list[models.Opportunity]
) -> dict[str, Any]:
    return {
        "meters": measure_input.site_meters(reader, site),
        "kinds": measure_input.KINDS,
        "models": measure_input.MODELS,
        "opportunities": [(o.id, f"{o.action or o.kind} ({o.meter})") for o in opportunities],
    }


def _same_origin(request: Request) -> bool:
    """A form post must come from a page of this server. The login cookie is SameSite=Strict,
    so a browser sends it with no other site's post; this checks what the browser says on
    top (Origin, else Referer), as a second line."""
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if not claimed:
        return True
    return urlsplit(claimed).netloc == request.headers.get("host", request.url.netloc)


async def _editor(request: Request, site: str) -> tuple[auth.Principal, dict[str, list[str]]]:
    """The caller, allowed to change the site's measures, and the form they sent."""
    ctx = ctx_of(request)
    who = await run_in_threadpool(_who, request)
    await run_in_threadpool(visible_site, ctx, who, site)
    if not _may_edit(who):
        raise HTTPException(403, "measures are recorded by consultants and admins")
    if not _same_origin(request):
        raise HTTPException(403, "a form from another site")
    body = (await request.body())[:FORM_LIMIT].decode(errors="replace")
    return who, parse_qs(body, keep_blank_values=True)


def _measure_data(site: str, form: dict[str, list[str]]) -> tuple[dict[str, Any], list[str]]:
    """The measure as entered, and the lines of excluded periods that do not parse."""

    def one(name: str) -> str | None:
        value = (form.get(name) or [""])[0].strip()
        return value or None

    exclusions, problems = [], []
    for line in (one("exclusions") or "").splitlines():
        if line.strip():
            try:
                exclusions.append(
                    measure_input.parse_exclusion(line, "measure", MEASURE_LABELS["exclusions"])
                )
            except ConfigError as exc:
                problems += exc.problems
    data: dict[str, Any] = {
        "site": site,
        "meters": [m for m in form.get("meters", []) if m],
        "kind": one("kind") or "",
        "title": one("title") or "",
        "installed_from": one("installed_from") or "",
        "installed_to": one("installed_to"),
        "investment_dkk": one("investment_dkk"),
        "expected_kwh_year": one("expected_kwh_year"),
        "opportunity_id": one("opportunity_id"),
        "model": one("model") or "auto",
        "exclusions": exclusions,
        "note": one("note"),
    }
    return data, problems


@router.post("/sites/{site}/measures")
async def add_measure(request: Request, site: SiteId) -> Response:
    """Record a measure from the site page's form; a form with mistakes comes back with one
    line per mistake."""
    who, form = await _editor(request, site)
    ctx = ctx_of(request)
    data, problems = _measure_data(site, form)

    def save() -> str | list[str]:
        reader = ctx.reader()
        try:
            measure = measure_input.validate_measure(
                data,
                measure_input.site_meters(reader, site),
                measure_input.site_opportunities(reader, site),
                source="measure",
                labels=MEASURE_LABELS,
            )
        except ConfigError as exc:
            return problems + exc.problems
        if problems:
            return problems
        row = measure_input.to_row(measure, ctx.now_ms())
        store = Store(ctx.db)
        try:
            store.put_measure(row)
        finally:
            store.close()
        return row.id

    saved = await run_in_threadpool(save)
    if isinstance(saved, list):
        entered = {k: v if k == "meters" else "\n".join(v) for k, v in form.items()}
        return await run_in_threadpool(_site, request, who, site, saved, entered)
    return RedirectResponse(f"/sites/{site}/measures/{saved}", 303)


@router.post("/sites/{site}/measures/{measure}/remove")
async def remove_measure(request: Request, site: SiteId, measure: api.MeasureId) -> Response:
    """Delete a measure of the site (the button on the site page)."""
    await _editor(request, site)
    ctx = ctx_of(request)

    def remove() -> None:
        api.measure_of(ctx, site, measure)
        store = Store(ctx.db)
        try:
            store.remove_measure(measure)
        finally:
            store.close()

    await run_in_threadpool(remove)
    return RedirectResponse(f"/sites/{site}#measures", 303)


@router.get("/sites/{site}/measures/{measure}")
def measure_page(request: Request, site: SiteId, measure: api.MeasureId) -> Response:
    """One measure: baseline model and why, Guideline 14 figures, the cumulative avoided
    energy with its 90 % band, DKK and CO2."""
    who = _who(request)
    ctx = ctx_of(request)
    visible_site(ctx, who, site)
    found = api.verified(ctx, api.measure_of(ctx, site, measure))
    result = models.MeasureVerification.model_validate(verification.describe(found))
    points = result.cumulative
    chart = svg.band_chart(
        [p.day for p in points],
        [p.avoided_kwh for p in points],
        [p.low_kwh for p in points],
        [p.high_kwh for p in points],
        "Cumulative avoided energy, with its 90 % interval",
    )
    return render(
        request,
        "measure.html",
        tz=ctx.site_tz(site),
        who=who,
        site=site,
        v=result,
        chart=chart,
        status_text=STATUS_TEXT,
        may_edit=_may_edit(who),
    )
