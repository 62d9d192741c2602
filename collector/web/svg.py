"""Server-side SVG charts for printable reports and the heatmap: no script, no network."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_FONT = 'font-family="sans-serif" font-size="11" fill="#333"'


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return value


def _frame(width: int, height: int, title: str, body: list[str]) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{escape(title)}" class="chart">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def _no_data(width: int, height: int, title: str) -> Markup:
    return _frame(
        width,
        height,
        title,
        [f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" {_FONT}>no data</text>'],
    )


def _plot_area(width: int, height: int) -> tuple[int, int, int, int]:
    """(left, plot width, plot height, baseline y) of a chart with a y axis."""
    left, right, top_pad, bottom = 48, 10, 20, 28
    return left, width - left - right, height - top_pad - bottom, height - bottom


def _y_axis(top: float, left: int, plot_w: int, plot_h: int, base: int, unit: str) -> list[str]:
    out = []
    for i in range(5):
        value = top * i / 4
        y = base - plot_h * i / 4
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#ddd" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" {_FONT}>{value:g}</text>'
        )
    out.append(f'<text x="4" y="12" {_FONT}>{escape(unit)}</text>')
    return out


def line_chart(
    xs_ms: list[int],
    ys: list[float | None],
    tz: ZoneInfo,
    title: str,
    unit: str = "kW",
    width: int = 900,
    height: int = 240,
    span: tuple[int, int] | None = None,
) -> Markup:
    """A line over time; None breaks the line (a gap stays visible as a gap)."""
    left, plot_w, plot_h, base = _plot_area(width, height)
    body: list[str] = []
    values = [y for y in ys if y is not None]
    if not xs_ms or not values:
        return _no_data(width, height, title)
    top = _nice_max(max(values))
    lo, hi = span or (xs_ms[0], xs_ms[-1])
    hi = max(hi, lo + 1)
    body += _y_axis(top, left, plot_w, plot_h, base, unit)

    def x_of(ms: int) -> float:
        return left + plot_w * (ms - lo) / (hi - lo)

    segments: list[list[str]] = [[]]
    for x, y in zip(xs_ms, ys, strict=True):
        if y is None:
            if segments[-1]:
                segments.append([])
            continue
        segments[-1].append(f"{x_of(x):.1f},{base - plot_h * y / top:.1f}")
    body += [
        f'<polyline fill="none" stroke="#1f6feb" stroke-width="1.2" points="{" ".join(seg)}"/>'
        for seg in segments
        if seg
    ]
    days = max(1, (hi - lo) // 86_400_000)
    every = max(1, days // 8)
    day = datetime.fromtimestamp(lo / 1000, tz).replace(hour=0, minute=0, second=0, microsecond=0)
    n = 0
    while int(day.timestamp() * 1000) <= hi:
        ms = int(day.timestamp() * 1000)
        if ms >= lo and n % every == 0:
            tick = x_of(ms)
            body.append(
                f'<line x1="{tick:.1f}" x2="{tick:.1f}" y1="{base}" y2="{base + 4}" stroke="#333"/>'
            )
            body.append(
                f'<text x="{tick:.1f}" y="{base + 16}" text-anchor="middle" {_FONT}>'
                f"{day.strftime('%d %b')}</text>"
            )
        n += 1
        day = (day.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=tz)
    return _frame(width, height, title, body)


def bar_chart(
    labels: list[str],
    values: list[float | None],
    title: str,
    unit: str = "kWh",
    width: int = 900,
    height: int = 220,
) -> Markup:
    left, plot_w, plot_h, base = _plot_area(width, height)
    known = [v for v in values if v is not None]
    body: list[str] = []
    if not known:
        return _no_data(width, height, title)
    top = _nice_max(max(known))
    body += _y_axis(top, left, plot_w, plot_h, base, unit)
    slot = plot_w / len(values)
    every = max(1, len(values) // 12)
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = left + slot * i
        if value is not None:
            h = plot_h * value / top
            body.append(
                f'<rect x="{x + slot * 0.15:.1f}" y="{base - h:.1f}" '
                f'width="{slot * 0.7:.1f}" height="{h:.1f}" fill="#1f6feb">'
                f"<title>{escape(label)}: {value:.1f} {escape(unit)}</title></rect>"
            )
        if i % every == 0:
            body.append(
                f'<text x="{x + slot / 2:.1f}" y="{base + 16}" text-anchor="middle" '
                f"{_FONT}>{escape(label)}</text>"
            )
    return _frame(width, height, title, body)


def _colour(value: float | None, top: float) -> str:
    if value is None:
        return "#f4f4f4"
    t = min(1.0, max(0.0, value / top)) if top > 0 else 0.0
    # light yellow to deep red: readable in print and for most colour-blind readers
    r, g, b = 255, int(245 - 200 * t), int(200 - 190 * t)
    return f"rgb({r},{g},{b})"


def heatmap(
    matrix: list[list[float | None]],
    title: str,
    unit: str = "kW",
    width: int = 900,
    height: int = 230,
) -> Markup:
    """Weekday (rows, Monday first) by hour (columns) cells coloured by mean power."""
    left, top_pad, bottom, right = 40, 8, 40, 10
    cell_w = (width - left - right) / 24
    cell_h = (height - top_pad - bottom) / 7
    known = [v for row in matrix for v in row if v is not None]
    top = max(known) if known else 1.0
    body: list[str] = []
    for d, row in enumerate(matrix):
        y = top_pad + d * cell_h
        body.append(
            f'<text x="{left - 6}" y="{y + cell_h * 0.65:.1f}" text-anchor="end" '
            f"{_FONT}>{WEEKDAYS[d]}</text>"
        )
        for h, value in enumerate(row):
            shown = "no data" if value is None else f"{value:.1f} {escape(unit)}"
            body.append(
                f'<rect x="{left + h * cell_w:.1f}" y="{y:.1f}" '
                f'width="{cell_w - 1:.1f}" height="{cell_h - 1:.1f}" '
                f'fill="{_colour(value, top)}"><title>{WEEKDAYS[d]} {h:02d}:00: '
                f"{shown}</title></rect>"
            )
    base = top_pad + 7 * cell_h
    for h in range(0, 24, 3):
        body.append(
            f'<text x="{left + h * cell_w + cell_w / 2:.1f}" y="{base + 14:.1f}" '
            f'text-anchor="middle" {_FONT}>{h:02d}</text>'
        )
    body.append(
        f'<text x="{left}" y="{height - 6}" {_FONT}>hour of day (local); colour: '
        f"mean power, lightest = 0, darkest red = {top:.1f} {escape(unit)}</text>"
    )
    return _frame(width, height, title, body)


def day_profile(
    series: dict[str, list[float | None]],
    title: str,
    unit: str = "kW",
    width: int = 900,
    height: int = 220,
) -> Markup:
    """Several 96-slot (quarter-hour) day curves on one local-time axis."""
    left, plot_w, plot_h, base = _plot_area(width, height)
    colours = ("#1f6feb", "#d1242f", "#1a7f37", "#8250df")
    known = [v for ys in series.values() for v in ys if v is not None]
    body: list[str] = []
    if not known:
        return _no_data(width, height, title)
    top = _nice_max(max(known))
    body += _y_axis(top, left, plot_w, plot_h, base, unit)
    for i, (name, ys) in enumerate(series.items()):
        colour = colours[i % len(colours)]
        pts = [
            f"{left + plot_w * slot / 96:.1f},{base - plot_h * v / top:.1f}"
            for slot, v in enumerate(ys)
            if v is not None
        ]
        if pts:
            body.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" '
                f'points="{" ".join(pts)}"/>'
            )
        body.append(
            f'<rect x="{left + 10 + i * 110}" y="4" width="10" height="10" '
            f'fill="{colour}"/><text x="{left + 24 + i * 110}" y="13" {_FONT}>'
            f"{escape(name)}</text>"
        )
    for h in range(0, 25, 3):
        x = left + plot_w * h / 24
        body.append(
            f'<text x="{x:.1f}" y="{base + 16}" text-anchor="middle" {_FONT}>{h:02d}:00</text>'
        )
    return _frame(width, height, title, body)


def _nice_step(span: float) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten) giving about four gridlines."""
    raw = max(span, 1e-9) / 4
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return next(s * magnitude for s in (1, 2, 2.5, 5, 10) if s * magnitude >= raw)


def band_chart(
    days: list[date],
    values: list[float | None],
    low: list[float | None],
    high: list[float | None],
    title: str,
    unit: str = "kWh",
    width: int = 900,
    height: int = 260,
) -> Markup:
    """A line over days with a shaded band around it (an interval), on an axis through zero
    (values may be negative)."""
    known = [
        (d, v, lo, hi)
        for d, v, lo, hi in zip(days, values, low, high, strict=True)
        if v is not None and lo is not None and hi is not None
    ]
    if not known:
        return _no_data(width, height, title)
    left, plot_w, plot_h, base = _plot_area(width, height)
    lowest = min(0.0, *(lo for *_, lo, _ in known))
    highest = max(0.0, *(hi for *_, hi in known))
    step = _nice_step(highest - lowest)
    bottom = math.floor(lowest / step) * step
    top = max(math.ceil(highest / step) * step, bottom + step)
    first, last = known[0][0], known[-1][0]
    span_days = max((last - first).days, 1)

    def x_of(d: date) -> float:
        return left + plot_w * (d - first).days / span_days

    def y_of(v: float) -> float:
        return base - plot_h * (v - bottom) / (top - bottom)

    body: list[str] = []
    tick = bottom
    while tick <= top + step / 2:
        y = y_of(tick)
        colour = "#999" if abs(tick) < step / 2 else "#ddd"
        body.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{colour}" stroke-width="1"/>'
        )
        body.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" {_FONT}>{tick:,.0f}</text>'
        )
        tick += step
    body.append(f'<text x="4" y="12" {_FONT}>{escape(unit)}</text>')
    upper = [f"{x_of(d):.1f},{y_of(hi):.1f}" for d, _v, _lo, hi in known]
    lower = [f"{x_of(d):.1f},{y_of(lo):.1f}" for d, _v, lo, _hi in reversed(known)]
    body.append(
        f'<polygon fill="#1f6feb" fill-opacity="0.18" stroke="none" '
        f'points="{" ".join(upper + lower)}"><title>interval</title></polygon>'
    )
    line = " ".join(f"{x_of(d):.1f},{y_of(v):.1f}" for d, v, _lo, _hi in known)
    body.append(f'<polyline fill="none" stroke="#1f6feb" stroke-width="1.5" points="{line}"/>')
    every = max(1, span_days // 8)
    for n in range(0, span_days + 1, every):
        d = first + timedelta(days=n)
        x = x_of(d)
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{base}" y2="{base + 4}" stroke="#333"/>')
        body.append(
            f'<text x="{x:.1f}" y="{base + 16}" text-anchor="middle" {_FONT}>'
            f"{d.strftime('%d %b %y')}</text>"
        )
    return _frame(width, height, title, body)
