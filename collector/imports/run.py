"""One import: recognise a file, read and validate all of it, map its metering points to
meters, then store it (or, for a dry run, say what would be stored)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from collector.analysis.site_context import Sites
from collector.imports import eloverblik, market, readings, temperature
from collector.imports.readings import ReadingsFile
from collector.imports.utility import UtilityFile, fail
from collector.intervals.energy import IntervalPolicy
from collector.intervals.refresh import refresh_intervals
from collector.store import Store
from collector.store.history import MeterHistory, write_energy
from sparwatt.errors import ConfigError
from sparwatt.timeutil import from_ms
from sparwatt.wire import format_ts

FORMATS = ("eloverblik-csv", "eloverblik-json", "csv", "jsonl", "energidataservice", "temperature")
SOURCE = "eloverblik"
# values per transaction: about a second of writing, short enough for a live collector
# sharing the database to wait it out, long enough that commits cost little
BATCH_VALUES = 500_000
Progress = Callable[[int], object]  # called with how many values were just done


def detect(path: Path) -> str:
    """The file's format, from its first bytes."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4096).decode("utf-8-sig", errors="replace")
    except OSError as exc:
        raise fail(str(path), None, f"cannot read: {exc.strerror}") from None
    first = head.lstrip().splitlines()[0] if head.strip() else ""
    if market.recognise(head):
        return "energidataservice"
    if temperature.recognise(head):
        return "temperature"
    if first.startswith("MålepunktsID;"):
        return "eloverblik-csv"
    if first.startswith("{") and "MyEnergyData_MarketDocument" in head:
        return "eloverblik-json"
    if first.startswith("{") and '"readings"' in first:
        return "jsonl"
    if first.replace(" ", "").startswith("ts,site,meter"):
        return "csv"
    raise fail(
        str(path),
        1,
        "format not recognised (Eloverblik CSV or JSON, readings CSV with a ts,site,meter "
        "header, readings messages one per line, an Energi Data Service download, or outdoor "
        "temperature); name it with --format",
    )


def read(path: Path, fmt: str | None = None, gateway: str = "import") -> UtilityFile | ReadingsFile:
    """The whole file, validated; ConfigError names file, line and reason."""
    fmt = fmt or detect(path)
    readable(path)
    try:
        if fmt == "eloverblik-csv":
            return eloverblik.read_csv(path)
        if fmt == "eloverblik-json":
            return eloverblik.read_json(path)
        if fmt == "jsonl":
            return readings.read_jsonl(path)
        return readings.read_csv(path, gateway)
    except UnicodeDecodeError:
        raise _not_utf8(path) from None


def readable(path: Path) -> None:
    """A file that can be read (not missing, not a directory); ConfigError otherwise."""
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise fail(str(path), None, f"cannot read: {exc.strerror}") from None


def _not_utf8(path: Path) -> ConfigError:
    """The first line that is not UTF-8 (looked for once a reader has met one)."""
    with path.open("rb") as handle:
        for n, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return fail(str(path), n, "not UTF-8 text")
    return fail(str(path), None, "not UTF-8 text")


@dataclass(frozen=True)
class Target:
    """Where one metering point's data goes."""

    gsrn: str
    site: str
    gateway: str
    meter: str


def targets(
    file: UtilityFile, sites: Sites | None, site: str | None, meter: str | None, gateway: str
) -> dict[str, Target]:
    """Each metering point's meter: the sites file's mapping, else --site/--meter."""
    out: dict[str, Target] = {}
    unmapped = []
    for point in file.points:
        found = sites.metering_point(point.gsrn) if sites is not None else None
        if found is not None:
            out[point.gsrn] = Target(point.gsrn, found[0], found[1].gateway, found[1].meter)
        else:
            unmapped.append(point)
    if unmapped and site and meter and len(unmapped) == 1:
        out[unmapped[0].gsrn] = Target(unmapped[0].gsrn, site, gateway, meter)
    elif unmapped:
        point = unmapped[0]
        hint = (
            f"{len(unmapped)} metering points are not in the sites file; --site/--meter map one"
            if site and meter
            else "map it under [sites.<id>.metering_points] in the sites file, or give "
            "--site and --meter"
        )
        raise fail(file.path, point.first_line, f"metering point {point.gsrn}: not mapped to a "
                   f"meter ({hint})")  # fmt: skip
    return out


def summary(file: UtilityFile | ReadingsFile, where: dict[str, Target]) -> dict[str, object]:
    """What the file holds and where it would go: what --dry-run prints."""
    out: dict[str, object] = {"file": file.path, "format": file.format, "rows": file.rows}
    if isinstance(file, ReadingsFile):
        stamps = [r.ts for m in file.messages for r in m.readings]
        meters = sorted(
            {f"{m.site}/{m.gateway}/{r.meter}" for m in file.messages for r in m.readings}
        )
        out.update(
            values=file.values,
            readings=len(stamps),
            meters=meters,
            first=format_ts(min(stamps)),
            last=format_ts(max(stamps)),
        )
        return out
    points = []
    for p in file.points:
        t, h = where[p.gsrn], p.history
        points.append(
            {
                "gsrn": p.gsrn,
                "site": t.site,
                "meter": f"{t.gateway}/{t.meter}",
                "resolution_minutes": h.resolution_ms // 60_000,
                "first": format_ts(from_ms(int(h.start_ms[0]))),
                "last": format_ts(from_ms(int(h.start_ms[-1]))),
                "values": len(h.start_ms),
                "gaps": p.gaps,
                "estimated": int(h.estimated.sum()),
                "kwh": round(float(h.kwh.sum()), 3),
            }
        )
    out.update(values=file.values, empty_rows=file.empty_rows, points=points)
    return out


@dataclass(frozen=True)
class Stored:
    stored: int  # values newly stored
    kept: int  # values already there


def store(
    db: Store,
    file: UtilityFile | ReadingsFile,
    where: dict[str, Target],
    policy: IntervalPolicy,
    progress: Progress = lambda _n: None,
) -> Stored:
    """Write a validated file in transactions of about BATCH_VALUES values (or batches of
    messages), so a live collector writes between them and a second run finishes an
    interrupted one."""
    if isinstance(file, ReadingsFile):
        stored = total = 0
        for start in range(0, len(file.messages), 20):
            messages = file.messages[start : start + 20]
            stored += db.write(messages, imported=True).stored
            done = sum(len(r.values) for m in messages for r in m.readings)
            total += done
            progress(done)
        refresh_intervals(db, policy)  # the 15-minute history of what came in, now
        return Stored(stored, total - stored)
    stored = kept = 0
    batch: list[MeterHistory] = []
    for n, point in enumerate(file.points, start=1):
        t = where[point.gsrn]
        batch.append(MeterHistory(t.site, t.gateway, t.meter, SOURCE, point.history))
        size = sum(len(b.history.start_ms) for b in batch)
        if size >= BATCH_VALUES or n == len(file.points):
            wrote = write_energy(db, batch)
            stored, kept = stored + wrote.stored, kept + wrote.kept
            progress(size)
            batch = []
    return Stored(stored, kept)
