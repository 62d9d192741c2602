"""Energi Data Service downloads (day-ahead and spot prices, CO2 of electricity): checked
and described. They are used as they come, named in the sites file, not copied into the
database; the import tells which key takes the file and what it covers."""

from __future__ import annotations

from pathlib import Path

from collector.analysis import hourly
from sparwatt.errors import SiteConfigError
from sparwatt.timeutil import from_ms
from sparwatt.wire import format_ts

AREAS = ("DK1", "DK2")
MARKERS = ("TimeUTC", "HourUTC", "Minutes5UTC")
_USES = {
    "dkk_per_kwh": ("energy_price.spot_hourly_csv", "spot price series"),
    "g_per_kwh": ("co2.hourly_csv", "CO2 series"),
}


def recognise(head: str) -> bool:
    """Whether the first bytes of a file look like an Energi Data Service download."""
    first = head.lstrip().splitlines()[0] if head.strip() else ""
    return any(m in first for m in MARKERS) or ('"records"' in head and any(
        m in head for m in MARKERS
    ))  # fmt: skip


def describe(path: Path) -> dict[str, object]:
    """What the file holds per price area; raises SiteConfigError when it cannot be used."""
    column = "g_per_kwh" if "Minutes5UTC" in path.read_text(encoding="utf-8-sig")[:4096] else (
        "dkk_per_kwh"
    )  # fmt: skip
    key, what = _USES[column]
    areas: dict[str, object] = {}
    problems: list[SiteConfigError] = []
    for area in AREAS:
        try:
            series = hourly.load(path, column, what, area)
        except SiteConfigError as exc:
            problems.append(exc)
            continue
        if not len(series.starts):
            continue
        areas[area] = {
            "dataset": series.layout,
            "first": format_ts(from_ms(int(series.starts[0]))),
            "last": format_ts(from_ms(int(series.starts[-1]))),
            "rows": len(series.starts),
            "empty_rows": series.skipped,
            "mean": round(float(series.values.mean()), 4),
            "unit": "DKK/kWh" if column == "dkk_per_kwh" else "g/kWh",
        }
    if not areas:
        # a broken row says more than an area the file does not have
        problems.sort(key=lambda exc: "no rows for price area" in str(exc))
        raise problems[0] if problems else SiteConfigError(f"{path}: no rows for DK1 or DK2")
    return {"file": str(path), "format": "energidataservice", "sites_key": key, "areas": areas}
