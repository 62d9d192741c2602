"""Backfills of meter readings: the wire contract's messages one per line (JSONL, as
gateways publish them), or a CSV of readings (long: ts,site,meter,quantity,value; or wide:
ts,site,meter and one column per quantity). Every row is validated by the wire contract."""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from collector.imports.utility import fail
from sparwatt import wire

BATCH_READINGS = 500  # readings per message built from a CSV (the store takes them in bulk)
LONG = ("ts", "site", "meter", "quantity", "value")
KEYS = ("ts", "site", "meter", "gateway")


@dataclass(frozen=True)
class ReadingsFile:
    path: str
    format: str
    messages: list[wire.ReadingsMessage]
    rows: int

    @property
    def values(self) -> int:
        return sum(len(r.values) for m in self.messages for r in m.readings)


def _why(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def read_jsonl(path: Path) -> ReadingsFile:
    """One readings message per line; blank lines are skipped."""
    messages = []
    rows = 0
    with path.open(encoding="utf-8-sig") as handle:
        for n, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            rows += 1
            try:
                messages.append(wire.ReadingsMessage.model_validate_json(line))
            except ValidationError as exc:
                raise fail(str(path), n, f"not a readings message: {_why(exc)}") from None
    if not messages:
        raise fail(str(path), None, "no messages")
    return ReadingsFile(str(path), "jsonl", messages, rows)


def _ts(path: str, line: int, text: str) -> datetime:
    try:
        ts = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise fail(path, line, f"ts {text!r} is not an ISO 8601 time") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)  # no zone: UTC, as on the wire


def _number(path: str, line: int, column: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise fail(path, line, f"{column} {text!r} is not a number") from None


def _rows(
    path: Path, gateway: str
) -> Iterator[tuple[int, str, str, str, datetime, dict[str, float]]]:
    """(line, site, gateway, meter, ts, values) per reading, long or wide."""
    name = str(path)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        long = tuple(h for h in header if h != "gateway") == LONG
        if not long and header[:3] != list(LONG[:3]):
            raise fail(name, 1, f"header {','.join(header)!r}: expected "
                       "ts,site,meter,quantity,value or ts,site,meter,<quantity>,...")  # fmt: skip
        quantities = [h for h in header if h not in KEYS]
        unknown = [q for q in quantities if q not in wire.QUANTITIES] if not long else []
        if unknown:
            raise fail(name, 1, f"unknown quantities {unknown}; see `sparwatt-gateway meters`")
        for n, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise fail(name, n, f"{len(row)} fields, expected {len(header)}")
            cells = dict(zip(header, row, strict=True))
            gw = cells.get("gateway", "").strip() or gateway
            ts = _ts(name, n, cells["ts"])
            if long:
                q = cells["quantity"].strip()
                values = {q: _number(name, n, "value", cells["value"])}
            else:
                values = {q: _number(name, n, q, cells[q]) for q in quantities if cells[q].strip()}
            yield n, cells["site"].strip(), gw, cells["meter"].strip(), ts, values


def read_csv(path: Path, gateway: str) -> ReadingsFile:
    """A CSV of readings; those of one site, gateway, meter and ts become one reading."""
    name = str(path)
    merged: dict[tuple[str, str, str, datetime], tuple[int, dict[str, float]]] = {}
    given: dict[tuple[str, str, str, datetime, str], int] = {}  # -> the line giving it
    rows = 0
    for n, site, gw, meter, ts, values in _rows(path, gateway):
        rows += 1
        held = merged.setdefault((site, gw, meter, ts), (n, {}))[1]
        for q, value in values.items():
            before = given.setdefault((site, gw, meter, ts, q), n)
            if before != n and held[q] != value:
                raise fail(name, n, f"{q} of {site}/{gw}/{meter} at {wire.format_ts(ts)} again, "
                           f"{value:g} after {held[q]:g} on line {before}")  # fmt: skip
        held.update(values)
    messages = []
    by_gateway = sorted(merged.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][3]))
    for (site, gw), group in itertools.groupby(by_gateway, key=lambda kv: kv[0][:2]):
        entries = list(group)
        for start in range(0, len(entries), BATCH_READINGS):
            chunk = entries[start : start + BATCH_READINGS]
            try:
                readings = [
                    wire.Reading(meter=meter, ts=ts, values=values)
                    for (_s, _g, meter, ts), (_n, values) in chunk
                ]
                messages.append(
                    wire.ReadingsMessage(
                        site=site, gateway=gw, seq=0, sent_at=datetime.now(UTC), readings=readings
                    )
                )
            except ValidationError as exc:
                where = _failing_line(chunk, exc)
                raise fail(name, where, f"not a valid reading: {_why(exc)}") from None
    if not messages:
        raise fail(name, None, "no readings")
    return ReadingsFile(name, "csv", messages, rows)


def _failing_line(
    chunk: list[tuple[tuple[str, str, str, datetime], tuple[int, dict[str, float]]]],
    exc: ValidationError,
) -> int | None:
    loc = exc.errors()[0]["loc"]
    if len(loc) >= 2 and loc[0] == "readings" and isinstance(loc[1], int):
        return chunk[loc[1]][1][0]
    return chunk[0][1][0]
