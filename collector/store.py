"""The collector's only SQLite user: readings, intervals, registry, gaps and quarantine."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparwatt import wire

SCHEMA_VERSION = 1

_MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE gateway (
    site TEXT NOT NULL, gateway TEXT NOT NULL,
    registered_ms INTEGER NOT NULL, last_seq INTEGER, last_seen_ms INTEGER,
    state TEXT, state_ms INTEGER, status TEXT, health TEXT,
    PRIMARY KEY (site, gateway)
);
CREATE TABLE meter (
    id INTEGER PRIMARY KEY, site TEXT NOT NULL, gateway TEXT NOT NULL, meter TEXT NOT NULL,
    UNIQUE (site, gateway, meter)
);
CREATE TABLE series (
    id INTEGER PRIMARY KEY, meter_id INTEGER NOT NULL REFERENCES meter(id),
    quantity TEXT NOT NULL, UNIQUE (meter_id, quantity)
);
CREATE TABLE reading (
    series INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (series, ts)
) WITHOUT ROWID;
CREATE TABLE interval_energy (
    meter_id INTEGER NOT NULL, start_ms INTEGER NOT NULL,
    energy_kwh REAL, estimated INTEGER NOT NULL, mean_power_w REAL, max_power_w REAL,
    PRIMARY KEY (meter_id, start_ms)
) WITHOUT ROWID;
CREATE TABLE dirty (meter_id INTEGER PRIMARY KEY, from_ms INTEGER NOT NULL);
CREATE TABLE gap (
    id INTEGER PRIMARY KEY, site TEXT NOT NULL, gateway TEXT NOT NULL,
    from_seq INTEGER NOT NULL, to_seq INTEGER NOT NULL,
    after_ms INTEGER, before_ms INTEGER, detected_ms INTEGER NOT NULL
);
CREATE INDEX gap_by_gateway ON gap (site, gateway, from_seq);
CREATE TABLE quarantine (
    id INTEGER PRIMARY KEY, received_ms INTEGER NOT NULL, topic TEXT NOT NULL,
    reason TEXT NOT NULL, detail TEXT NOT NULL, size INTEGER NOT NULL, payload BLOB
);
CREATE TABLE counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
""",
}


def _ms(ts: Any) -> int:
    return int(ts.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class StoreResult:
    stored: int
    duplicates: int


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=5000")
    return db


class Store:
    """One writer connection; readers open their own (WAL lets them run beside the writer)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = connect(path)
        self._migrate()
        self._series: dict[tuple[str, str, str, str], int] = {}
        self._meters: dict[tuple[str, str, str], int] = {}
        self._gateways: dict[tuple[str, str], int | None] = {
            (s, g): q for s, g, q in self.db.execute("SELECT site, gateway, last_seq FROM gateway")
        }

    def _migrate(self) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = self.db.execute("SELECT MAX(version) FROM schema_version").fetchone()
        current = row[0] or 0
        for version in sorted(v for v in _MIGRATIONS if v > current):
            self.db.execute("BEGIN")
            try:
                for statement in _MIGRATIONS[version].split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute("INSERT INTO schema_version VALUES (?)", (version,))
                self.db.execute("COMMIT")
            except Exception:
                self.db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        self.db.close()

    # ---- registry

    def knows_gateway(self, site: str, gateway: str) -> bool:
        return (site, gateway) in self._gateways

    def register_gateway(self, site: str, gateway: str) -> None:
        if (site, gateway) in self._gateways:
            return
        self.db.execute("INSERT OR IGNORE INTO gateway (site, gateway, registered_ms) "
                        "VALUES (?, ?, ?)", (site, gateway, int(time.time() * 1000)))
        self._gateways[(site, gateway)] = None

    def _meter_id(self, site: str, gateway: str, meter: str) -> int:
        key = (site, gateway, meter)
        found = self._meters.get(key)
        if found is None:
            self.db.execute("INSERT OR IGNORE INTO meter (site, gateway, meter) VALUES (?, ?, ?)",
                            key)
            found = self.db.execute("SELECT id FROM meter WHERE site=? AND gateway=? AND meter=?",
                                    key).fetchone()[0]
            self._meters[key] = found
        return found

    def _series_id(self, site: str, gateway: str, meter: str, quantity: str) -> int:
        key = (site, gateway, meter, quantity)
        found = self._series.get(key)
        if found is None:
            meter_id = self._meter_id(site, gateway, meter)
            self.db.execute("INSERT OR IGNORE INTO series (meter_id, quantity) VALUES (?, ?)",
                            (meter_id, quantity))
            found = self.db.execute("SELECT id FROM series WHERE meter_id=? AND quantity=?",
                                    (meter_id, quantity)).fetchone()[0]
            self._series[key] = found
        return found

    # ---- writing

    def write(self, messages: list[wire.ReadingsMessage],
              quarantined: Iterable[tuple[str, str, str, bytes, int]] = ()) -> StoreResult:
        """Store accepted messages and quarantined ones in one transaction."""
        rows: list[tuple[int, int, float]] = []
        dirty: dict[int, int] = {}
        self.db.execute("BEGIN")
        try:
            for message in messages:
                self._track_seq(message)
                for reading in message.readings:
                    ts = _ms(reading.ts)
                    meter_key = (message.site, message.gateway, reading.meter)
                    for quantity, value in reading.values.items():
                        rows.append((self._series_id(*meter_key, quantity), ts, value))
                    if "energy_import_kwh" in reading.values or "power_w" in reading.values:
                        meter_id = self._meter_id(*meter_key)
                        dirty[meter_id] = min(dirty.get(meter_id, ts), ts)
            before = self.db.total_changes
            self.db.executemany("INSERT OR IGNORE INTO reading VALUES (?, ?, ?)", rows)
            stored = self.db.total_changes - before
            self.db.executemany(
                "INSERT INTO dirty VALUES (?, ?) ON CONFLICT (meter_id) "
                "DO UPDATE SET from_ms = MIN(from_ms, excluded.from_ms)", dirty.items())
            q = list(quarantined)
            self.db.executemany(
                "INSERT INTO quarantine (received_ms, topic, reason, detail, payload, size) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(int(time.time() * 1000), *entry) for entry in q])
            self._count({"stored": stored, "duplicates": len(rows) - stored,
                         "messages": len(messages), "quarantined": len(q)})
            self.db.execute("COMMIT")
        except Exception:
            self.db.execute("ROLLBACK")
            self._series.clear()
            self._meters.clear()
            raise
        return StoreResult(stored, len(rows) - stored)

    def _count(self, deltas: dict[str, int]) -> None:
        self.db.executemany(
            "INSERT INTO counter VALUES (?, ?) ON CONFLICT (name) "
            "DO UPDATE SET value = value + excluded.value",
            [(k, v) for k, v in deltas.items() if v])

    def _track_seq(self, message: wire.ReadingsMessage) -> None:
        """Record seq gaps per gateway; a late (reordered) message closes its part of a gap."""
        key = (message.site, message.gateway)
        last = self._gateways.get(key)
        seq = message.seq
        first_ts = _ms(message.readings[0].ts)
        now = int(time.time() * 1000)
        if last is None or seq > last:
            if last is not None and seq > last + 1:
                prev = self.db.execute("SELECT last_seen_ms FROM gateway WHERE site=? AND "
                                       "gateway=?", key).fetchone()
                self.db.execute(
                    "INSERT INTO gap (site, gateway, from_seq, to_seq, after_ms, before_ms, "
                    "detected_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (*key, last + 1, seq - 1, prev[0] if prev else None, first_ts, now))
            self._gateways[key] = seq
            self.db.execute("UPDATE gateway SET last_seq=?, last_seen_ms=? WHERE site=? AND "
                            "gateway=?", (seq, first_ts, *key))
            return
        row = self.db.execute(
            "SELECT id, from_seq, to_seq, after_ms, before_ms FROM gap WHERE site=? AND "
            "gateway=? AND from_seq<=? AND to_seq>=?", (*key, seq, seq)).fetchone()
        if row is None:
            return
        gap_id, lo, hi, after_ms, before_ms = row
        self.db.execute("DELETE FROM gap WHERE id=?", (gap_id,))
        parts = [(lo, seq - 1, after_ms, first_ts), (seq + 1, hi, first_ts, before_ms)]
        self.db.executemany(
            "INSERT INTO gap (site, gateway, from_seq, to_seq, after_ms, before_ms, detected_ms)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(*key, a, b, c, d, now) for a, b, c, d in parts if a <= b])

    def set_status(self, site: str, gateway: str, status: wire.StatusMessage) -> None:
        now = int(time.time() * 1000)
        self.db.execute("UPDATE gateway SET state=?, state_ms=?, status=? WHERE site=? AND "
                        "gateway=?", (status.state.value, now,
                                      status.model_dump_json(by_alias=True), site, gateway))

    def set_health(self, site: str, gateway: str, health: dict[str, Any]) -> None:
        self.db.execute("UPDATE gateway SET health=? WHERE site=? AND gateway=?",
                        (json.dumps(health), site, gateway))

    def prune(self, retention_days: float) -> int:
        cutoff = int((time.time() - retention_days * 86400) * 1000)
        before = self.db.total_changes
        self.db.execute("DELETE FROM reading WHERE ts < ?", (cutoff,))
        return self.db.total_changes - before

    # ---- intervals

    def take_dirty(self) -> list[tuple[int, int]]:
        self.db.execute("BEGIN")
        rows = self.db.execute("SELECT meter_id, from_ms FROM dirty").fetchall()
        self.db.execute("DELETE FROM dirty")
        self.db.execute("COMMIT")
        return rows

    def samples(self, meter_id: int, quantity: str, from_ms: int) -> list[tuple[int, float]]:
        return self.db.execute(
            "SELECT r.ts, r.value FROM reading r JOIN series s ON s.id = r.series "
            "WHERE s.meter_id=? AND s.quantity=? AND r.ts >= ? ORDER BY r.ts",
            (meter_id, quantity, from_ms)).fetchall()

    def put_intervals(self, meter_id: int,
                      rows: list[tuple[int, float | None, bool, float | None, float | None]]) -> None:
        self.db.execute("BEGIN")
        self.db.executemany(
            "INSERT OR REPLACE INTO interval_energy VALUES (?, ?, ?, ?, ?, ?)",
            [(meter_id, *row) for row in rows])
        self.db.execute("COMMIT")


class Reader:
    """Read-only queries on their own connection, so they never block ingest."""

    def __init__(self, path: Path) -> None:
        self.db = connect(path, readonly=True)

    def close(self) -> None:
        self.db.close()

    def latest(self, site: str | None = None) -> list[dict[str, Any]]:
        sql = ("SELECT m.site, m.gateway, m.meter, s.quantity, r.ts, r.value FROM series s "
               "JOIN meter m ON m.id = s.meter_id "
               "JOIN reading r ON r.series = s.id AND r.ts = "
               "(SELECT MAX(ts) FROM reading WHERE series = s.id) "
               + ("WHERE m.site = ? " if site else "")
               + "ORDER BY m.site, m.gateway, m.meter, s.quantity")
        keys = ("site", "gateway", "meter", "quantity", "ts_ms", "value")
        return [dict(zip(keys, row, strict=True))
                for row in self.db.execute(sql, (site,) if site else ())]

    def counters(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT name, value FROM counter").fetchall())

    def quarantine(self, limit: int) -> list[dict[str, Any]]:
        keys = ("id", "received_ms", "topic", "reason", "detail", "size")
        return [dict(zip(keys, row, strict=True)) for row in self.db.execute(
            "SELECT id, received_ms, topic, reason, detail, size FROM quarantine "
            "ORDER BY id DESC LIMIT ?", (limit,))]

    def quarantine_by_reason(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT reason, COUNT(*) FROM quarantine GROUP BY reason"))

    def gaps(self, site: str | None = None) -> list[dict[str, Any]]:
        keys = ("site", "gateway", "from_seq", "to_seq", "after_ms", "before_ms")
        sql = "SELECT site, gateway, from_seq, to_seq, after_ms, before_ms FROM gap "
        sql += ("WHERE site = ? " if site else "") + "ORDER BY site, gateway, from_seq"
        return [dict(zip(keys, r, strict=True)) for r in self.db.execute(sql, (site,) if site
                                                                          else ())]

    def gateways(self) -> list[dict[str, Any]]:
        keys = ("site", "gateway", "last_seq", "last_seen_ms", "state", "state_ms", "health")
        out = []
        for row in self.db.execute("SELECT site, gateway, last_seq, last_seen_ms, state, "
                                   "state_ms, health FROM gateway ORDER BY site, gateway"):
            entry = dict(zip(keys, row, strict=True))
            entry["health"] = json.loads(entry["health"]) if entry["health"] else None
            out.append(entry)
        return out

    def raw(self, site: str, from_ms: int, to_ms: int) -> Iterator[tuple[Any, ...]]:
        yield from self.db.execute(
            "SELECT m.gateway, m.meter, s.quantity, r.ts, r.value FROM reading r "
            "JOIN series s ON s.id = r.series JOIN meter m ON m.id = s.meter_id "
            "WHERE m.site = ? AND r.ts >= ? AND r.ts < ? ORDER BY r.ts, m.meter, s.quantity",
            (site, from_ms, to_ms))

    def intervals(self, site: str, from_ms: int, to_ms: int) -> Iterator[tuple[Any, ...]]:
        yield from self.db.execute(
            "SELECT m.gateway, m.meter, i.start_ms, i.energy_kwh, i.estimated, i.mean_power_w, "
            "i.max_power_w FROM interval_energy i JOIN meter m ON m.id = i.meter_id "
            "WHERE m.site = ? AND i.start_ms >= ? AND i.start_ms < ? ORDER BY i.start_ms, m.meter",
            (site, from_ms, to_ms))

    def reading_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM reading").fetchone()[0])
