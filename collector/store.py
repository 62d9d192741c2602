"""The collector's only SQLite user: readings, intervals, registry, gaps and quarantine."""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from sparwatt import wire

SCHEMA_VERSION = 4

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
    # export energy beside import; runtime figures (ingest rate, sink backlog) for `status`
    2: """
ALTER TABLE interval_energy ADD COLUMN export_kwh REAL;
ALTER TABLE interval_energy ADD COLUMN export_estimated INTEGER NOT NULL DEFAULT 0;
CREATE TABLE stat (name TEXT PRIMARY KEY, value REAL, text TEXT, updated_ms INTEGER NOT NULL);
CREATE INDEX quarantine_by_time ON quarantine (received_ms);
""",
    # API tokens (hashed), savings opportunities and alerts, shown by the web layer
    3: """
CREATE TABLE token (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, sites TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE, created_ms INTEGER NOT NULL, revoked_ms INTEGER
);
CREATE TABLE opportunity (
    id TEXT PRIMARY KEY, site TEXT NOT NULL, meter TEXT NOT NULL, kind TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'closed')), data TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX opportunity_by_site ON opportunity (site, status);
CREATE TABLE alert (
    id TEXT PRIMARY KEY, site TEXT NOT NULL, labels TEXT NOT NULL, state TEXT NOT NULL,
    severity TEXT NOT NULL, summary TEXT NOT NULL, started_ms INTEGER NOT NULL,
    resolved_ms INTEGER, data TEXT NOT NULL
);
CREATE INDEX alert_by_site ON alert (site, started_ms);
""",
    # the alert lifecycle's state between rounds, and silences added from the CLI
    4: """
CREATE TABLE alert_state (
    id INTEGER PRIMARY KEY CHECK (id = 1), data TEXT NOT NULL, updated_ms INTEGER NOT NULL
);
CREATE TABLE silence (
    id TEXT PRIMARY KEY, site TEXT NOT NULL, meter TEXT, starts_ms INTEGER NOT NULL,
    ends_ms INTEGER NOT NULL, reason TEXT NOT NULL, created_ms INTEGER NOT NULL
);
""",
}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
# quantities whose new readings make a meter's 15-minute intervals stale
INTERVAL_QUANTITIES = frozenset({"energy_import_kwh", "energy_export_kwh", "power_w"})

Quarantined = tuple[str, str, str, bytes, int]  # topic, reason, detail, payload (capped), size
IntervalRow = tuple[int, float | None, bool, float | None, bool, float | None, float | None]


INSERT_CHUNK_ROWS = 256  # x 3 parameters, within SQLite's 32766


@functools.cache
def _insert_sql(rows: int) -> str:
    return "INSERT OR IGNORE INTO reading VALUES " + ",".join(["(?, ?, ?)"] * rows)


def ms(ts: datetime) -> int:
    """Epoch milliseconds, exact (float timestamps can land a millisecond low)."""
    return (ts - _EPOCH) // _MS


def epoch_ms(readings: Iterable[wire.Reading]) -> list[int]:
    """Each reading's ts in exact epoch milliseconds."""
    return [(reading.ts - _EPOCH) // _MS for reading in readings]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class StoreResult:
    stored: int
    duplicates: int


def connect(path: Path, readonly: bool = False,
            synchronous: Literal["full", "normal"] = "full") -> sqlite3.Connection:
    if readonly:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None,
                             check_same_thread=False)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before we ack it to the broker, even across a power cut
        db.execute(f"PRAGMA synchronous={synchronous.upper()}")
        db.execute("PRAGMA cache_size=-65536")  # 64 MiB: B-tree inserts stay in memory
    db.execute("PRAGMA busy_timeout=5000")
    return db


def _create(path: Path) -> None:
    """Build a new database beside its final name and move it in whole, so a reader that
    finds the file always finds the schema too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = path.with_name(path.name + ".new")
    fresh.unlink(missing_ok=True)
    Path(f"{fresh}-journal").unlink(missing_ok=True)
    db = sqlite3.connect(fresh, isolation_level=None)
    try:
        _apply_migrations(db, fresh)
    finally:
        db.close()
    fresh.replace(path)


def _apply_migrations(db: sqlite3.Connection, path: Path) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
    current = row[0] or 0
    newest = max(_MIGRATIONS)
    if current > newest:
        raise RuntimeError(f"{path}: database schema {current} is newer than this "
                           f"collector knows ({newest}); upgrade the collector")
    for version in sorted(v for v in _MIGRATIONS if v > current):
        db.execute("BEGIN")
        try:
            for statement in _MIGRATIONS[version].split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("INSERT INTO schema_version VALUES (?)", (version,))
            db.execute("COMMIT")
        except Exception:
            db.execute("ROLLBACK")
            raise


class Store:
    """One writer connection; readers open their own (WAL lets them run beside the writer)."""

    def __init__(self, path: Path, synchronous: Literal["full", "normal"] = "full") -> None:
        self.path = path
        if not path.exists():
            _create(path)
        self.db = connect(path, synchronous=synchronous)
        self._migrate()
        self._load_caches()

    def _load_caches(self) -> None:
        # (site, gateway) -> meter -> (meter id, {quantity: series id})
        self._meters: dict[tuple[str, str], dict[str, tuple[int, dict[str, int]]]] = {}
        by_id: dict[int, dict[str, int]] = {}
        for meter_id, site, gateway, meter in self.db.execute(
                "SELECT id, site, gateway, meter FROM meter"):
            ids = by_id[meter_id] = {}
            self._meters.setdefault((site, gateway), {})[meter] = (meter_id, ids)
        for series_id, meter_id, quantity in self.db.execute(
                "SELECT id, meter_id, quantity FROM series"):
            by_id[meter_id][quantity] = series_id
        self._gateways: dict[tuple[str, str], tuple[int | None, int | None]] = {
            (s, g): (q, t) for s, g, q, t in self.db.execute(
                "SELECT site, gateway, last_seq, last_seen_ms FROM gateway")
        }

    def _migrate(self) -> None:
        _apply_migrations(self.db, self.path)

    def schema_version(self) -> int:
        return int(self.db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0])

    def close(self) -> None:
        self.db.close()

    # ---- registry

    def knows_gateway(self, site: str, gateway: str) -> bool:
        return (site, gateway) in self._gateways

    def register_gateway(self, site: str, gateway: str) -> None:
        if (site, gateway) in self._gateways:
            return
        self.db.execute("INSERT OR IGNORE INTO gateway (site, gateway, registered_ms) "
                        "VALUES (?, ?, ?)", (site, gateway, now_ms()))
        self._gateways[(site, gateway)] = (None, None)

    def _meter(self, site: str, gateway: str, meter: str) -> tuple[int, dict[str, int]]:
        key = (site, gateway, meter)
        self.db.execute("INSERT OR IGNORE INTO meter (site, gateway, meter) VALUES (?, ?, ?)", key)
        meter_id = self.db.execute("SELECT id FROM meter WHERE site=? AND gateway=? AND meter=?",
                                   key).fetchone()[0]
        entry = self._meters.setdefault((site, gateway), {})[meter] = (meter_id, {})
        return entry

    def _series(self, meter_id: int, ids: dict[str, int], quantity: str) -> int:
        self.db.execute("INSERT OR IGNORE INTO series (meter_id, quantity) VALUES (?, ?)",
                        (meter_id, quantity))
        series_id: int = self.db.execute("SELECT id FROM series WHERE meter_id=? AND quantity=?",
                                         (meter_id, quantity)).fetchone()[0]
        ids[quantity] = series_id
        return series_id

    def meter_id(self, site: str, gateway: str, meter: str) -> int | None:
        entry = self._meters.get((site, gateway), {}).get(meter)
        return None if entry is None else entry[0]

    # ---- writing

    def write(self, messages: list[wire.ReadingsMessage],
              quarantined: Iterable[Quarantined] = ()) -> StoreResult:
        """Store accepted messages and quarantined ones in one transaction."""
        params: list[int | float] = []  # series, ts, value, series, ts, value, ...
        dirty: dict[int, int] = {}
        interval_quantities = INTERVAL_QUANTITIES
        extend = params.extend
        self.db.execute("BEGIN")
        try:
            for message in messages:
                site, gateway = message.site, message.gateway
                self.register_gateway(site, gateway)
                readings = message.readings
                stamps = epoch_ms(readings)
                self._track_seq(message, min(stamps), max(stamps))
                known = self._meters.setdefault((site, gateway), {})
                for reading, ts in zip(readings, stamps, strict=True):
                    meter_id, ids = known.get(reading.meter) or self._meter(
                        site, gateway, reading.meter)
                    values = reading.values
                    for quantity, value in values.items():
                        # series ids start at 1, so a missing one is the only falsy result
                        extend((ids.get(quantity) or self._series(meter_id, ids, quantity),
                                ts, value))
                    if not interval_quantities.isdisjoint(values):
                        earliest = dirty.get(meter_id)
                        if earliest is None or ts < earliest:
                            dirty[meter_id] = ts
            before = self.db.total_changes
            self._insert_readings(params)
            stored = self.db.total_changes - before
            rows = len(params) // 3
            self.mark_dirty(dirty)
            q = list(quarantined)
            received = now_ms()
            self.db.executemany(
                "INSERT INTO quarantine (received_ms, topic, reason, detail, payload, size) "
                "VALUES (?, ?, ?, ?, ?, ?)", [(received, *entry) for entry in q])
            counts = {"stored": stored, "duplicates": rows - stored,
                      "messages": len(messages), "quarantined": len(q),
                      "readings": sum(len(m.readings) for m in messages)}
            for entry in q:
                name = f"quarantined.{entry[1]}"
                counts[name] = counts.get(name, 0) + 1
            self._count(counts)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            self._load_caches()
            raise
        return StoreResult(stored, rows - stored)

    def _insert_readings(self, params: list[int | float]) -> None:
        """Insert (series, ts, value) triples, many rows per statement.

        One statement of many rows costs about half as much per row as executemany's one
        statement per row; chunk sizes are powers of two so few statements get prepared.
        """
        start, total = 0, len(params) // 3
        size = INSERT_CHUNK_ROWS
        while start < total:
            while size > total - start:
                size //= 2
            self.db.execute(_insert_sql(size), params[3 * start:3 * (start + size)])
            start += size

    def mark_dirty(self, dirty: dict[int, int]) -> None:
        self.db.executemany(
            "INSERT INTO dirty VALUES (?, ?) ON CONFLICT (meter_id) "
            "DO UPDATE SET from_ms = MIN(from_ms, excluded.from_ms)", dirty.items())

    def _count(self, deltas: dict[str, int]) -> None:
        self.db.executemany(
            "INSERT INTO counter VALUES (?, ?) ON CONFLICT (name) "
            "DO UPDATE SET value = value + excluded.value",
            [(k, v) for k, v in deltas.items() if v])

    def _track_seq(self, message: wire.ReadingsMessage, first_ts: int, last_ts: int) -> None:
        """Record seq gaps per gateway; a late (reordered) message closes its part of a gap.

        A gap's time span runs from the newest reading before it to the oldest after it.
        """
        key = (message.site, message.gateway)
        last, last_ms = self._gateways.get(key, (None, None))
        seq = message.seq
        if last is None or seq > last:
            if last is not None and seq > last + 1:
                self.db.execute(
                    "INSERT INTO gap (site, gateway, from_seq, to_seq, after_ms, before_ms, "
                    "detected_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (*key, last + 1, seq - 1, last_ms, first_ts, now_ms()))
            self._gateways[key] = (seq, last_ts)
            self.db.execute("UPDATE gateway SET last_seq=?, last_seen_ms=? WHERE site=? AND "
                            "gateway=?", (seq, last_ts, *key))
            return
        row = self.db.execute(
            "SELECT id, from_seq, to_seq, after_ms, before_ms FROM gap WHERE site=? AND "
            "gateway=? AND from_seq<=? AND to_seq>=?", (*key, seq, seq)).fetchone()
        if row is None:
            return  # a redelivery of something already seen
        gap_id, lo, hi, after_ms, before_ms = row
        self.db.execute("DELETE FROM gap WHERE id=?", (gap_id,))
        parts = [(lo, seq - 1, after_ms, first_ts), (seq + 1, hi, last_ts, before_ms)]
        self.db.executemany(
            "INSERT INTO gap (site, gateway, from_seq, to_seq, after_ms, before_ms, detected_ms)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(*key, a, b, c, d, now_ms()) for a, b, c, d in parts if a <= b])

    def set_status(self, site: str, gateway: str, status: wire.StatusMessage) -> None:
        self.db.execute("UPDATE gateway SET state=?, state_ms=?, status=? WHERE site=? AND "
                        "gateway=?", (status.state.value, now_ms(),
                                      status.model_dump_json(by_alias=True), site, gateway))

    def set_health(self, site: str, gateway: str, health: dict[str, Any]) -> None:
        self.db.execute("UPDATE gateway SET health=? WHERE site=? AND gateway=?",
                        (json.dumps(health), site, gateway))

    def set_stats(self, values: dict[str, float | str | None]) -> None:
        """Runtime figures (ingest rate, sink backlog) for readers such as `status`."""
        now = now_ms()
        self.db.executemany(
            "INSERT OR REPLACE INTO stat (name, value, text, updated_ms) VALUES (?, ?, ?, ?)",
            [(k, v if not isinstance(v, str) else None, v if isinstance(v, str) else None, now)
             for k, v in values.items()])

    def prune(self, retention_days: float, now: float | None = None) -> int:
        """Drop raw readings and quarantine entries older than the retention; intervals stay."""
        cutoff = int(((time.time() if now is None else now) - retention_days * 86400) * 1000)
        before = self.db.total_changes
        series = [row[0] for row in self.db.execute("SELECT id FROM series")]
        self.db.execute("BEGIN")
        # per series, so each delete is a range scan of the primary key
        self.db.executemany("DELETE FROM reading WHERE series = ? AND ts < ?",
                            [(s, cutoff) for s in series])
        pruned = self.db.total_changes - before
        self.db.execute("DELETE FROM quarantine WHERE received_ms < ?", (cutoff,))
        self.db.execute("COMMIT")
        return pruned

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

    def put_intervals(self, meter_id: int, rows: list[IntervalRow]) -> None:
        """Replace interval rows (start, import, est, export, est, mean W, max W) of a meter."""
        self.db.execute("BEGIN")
        self.db.executemany(
            "INSERT OR REPLACE INTO interval_energy (meter_id, start_ms, energy_kwh, estimated, "
            "export_kwh, export_estimated, mean_power_w, max_power_w) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(meter_id, *row) for row in rows])
        self.db.execute("COMMIT")

    # ---- web: API tokens, opportunities and alerts

    def add_token(self, name: str, role: str, sites: list[str], digest: str) -> int:
        """Store a token by its hash only; returns its id."""
        cur = self.db.execute(
            "INSERT INTO token (name, role, sites, hash, created_ms) VALUES (?, ?, ?, ?, ?)",
            (name, role, json.dumps(sorted(sites)), digest, int(time.time() * 1000)))
        return int(cur.lastrowid or 0)

    def revoke_token(self, token_id: int) -> bool:
        """Revoke a live token; False if there is no such token or it was revoked before."""
        before = self.db.total_changes
        self.db.execute("UPDATE token SET revoked_ms=? WHERE id=? AND revoked_ms IS NULL",
                        (int(time.time() * 1000), token_id))
        return self.db.total_changes > before

    def put_opportunity(self, opportunity_id: str, site: str, meter: str, kind: str,
                        status: str, data: dict[str, Any], updated_ms: int | None = None) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO opportunity VALUES (?, ?, ?, ?, ?, ?, ?)",
            (opportunity_id, site, meter, kind, status, json.dumps(data),
             int(time.time() * 1000) if updated_ms is None else updated_ms))

    def put_alert(self, alert_id: str, site: str, labels: dict[str, str], state: str,
                  severity: str, summary: str, started_ms: int, resolved_ms: int | None = None,
                  data: dict[str, Any] | None = None) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO alert VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (alert_id, site, json.dumps(labels), state, severity, summary, started_ms,
             resolved_ms, json.dumps(data or {})))

    # ---- evaluation: opportunities, alert rounds and silences

    def save_opportunities(self, rows: list[tuple[str, str, str, str, str, dict[str, Any]]],
                           updated_ms: int) -> None:
        """Write (id, site, meter, kind, status, data) rows of one scan in one transaction."""
        self.db.execute("BEGIN")
        try:
            for row in rows:
                self.put_opportunity(*row, updated_ms=updated_ms)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def save_alert_round(self, state: dict[str, Any], alerts: list[dict[str, Any]],
                         updated_ms: int) -> None:
        """The lifecycle state and the alert rows it changed, together or not at all."""
        self.db.execute("BEGIN")
        try:
            self.db.execute("INSERT OR REPLACE INTO alert_state VALUES (1, ?, ?)",
                            (json.dumps(state), updated_ms))
            for row in alerts:
                self.put_alert(**row)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def add_silence(self, silence_id: str, site: str, meter: str | None, starts_ms: int,
                    ends_ms: int, reason: str) -> None:
        self.db.execute("INSERT INTO silence VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (silence_id, site, meter, starts_ms, ends_ms, reason, now_ms()))

    def remove_silence(self, silence_id: str) -> bool:
        before = self.db.total_changes
        self.db.execute("DELETE FROM silence WHERE id = ?", (silence_id,))
        return self.db.total_changes > before


class Reader:
    """Read-only queries on their own connection, so they never block ingest."""

    def __init__(self, path: Path) -> None:
        self.db = connect(path, readonly=True)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

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

    def stats(self) -> dict[str, tuple[float | str | None, int]]:
        """Runtime figures: name -> (value, updated epoch ms)."""
        return {name: (text if value is None else value, updated)
                for name, value, text, updated in self.db.execute(
                    "SELECT name, value, text, updated_ms FROM stat")}

    def quarantine(self, limit: int, with_payload: bool = False) -> list[dict[str, Any]]:
        keys = ["id", "received_ms", "topic", "reason", "detail", "size"]
        if with_payload:
            keys.append("payload")
        cols = ", ".join(keys)
        return [dict(zip(keys, row, strict=True)) for row in self.db.execute(
            f"SELECT {cols} FROM quarantine ORDER BY id DESC LIMIT ?", (limit,))]

    def quarantine_by_reason(self) -> dict[str, int]:
        """Rejected messages per reason since the database was created (outlives pruning)."""
        prefix = "quarantined."
        return {name[len(prefix):]: value for name, value in self.db.execute(
            "SELECT name, value FROM counter WHERE name LIKE 'quarantined.%' ORDER BY name")}

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
        """(gateway, meter, quantity, ts ms, value) of one site, by time."""
        yield from self.db.execute(
            "SELECT m.gateway, m.meter, s.quantity, r.ts, r.value FROM reading r "
            "JOIN series s ON s.id = r.series JOIN meter m ON m.id = s.meter_id "
            "WHERE m.site = ? AND r.ts >= ? AND r.ts < ? ORDER BY r.ts, m.meter, s.quantity",
            (site, from_ms, to_ms))

    def intervals(self, site: str, from_ms: int, to_ms: int) -> Iterator[tuple[Any, ...]]:
        """(gateway, meter, start ms, import kWh, estimated, mean W, max W), by start."""
        for g, m, s, e, est, _x, _xest, mp, xp in self.energy_intervals(site, from_ms, to_ms):
            yield g, m, s, e, est, mp, xp

    def energy_intervals(self, site: str, from_ms: int, to_ms: int
                         ) -> Iterator[tuple[Any, ...]]:
        """(gateway, meter, start ms, import kWh, est, export kWh, est, mean W, max W)."""
        yield from self.db.execute(
            "SELECT m.gateway, m.meter, i.start_ms, i.energy_kwh, i.estimated, i.export_kwh, "
            "i.export_estimated, i.mean_power_w, i.max_power_w FROM interval_energy i "
            "JOIN meter m ON m.id = i.meter_id "
            "WHERE m.site = ? AND i.start_ms >= ? AND i.start_ms < ? ORDER BY i.start_ms, m.meter",
            (site, from_ms, to_ms))

    def reading_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM reading").fetchone()[0])

    # ---- web: sites, meters, tokens, opportunities and alerts

    def sites(self) -> list[str]:
        return [row[0] for row in self.db.execute(
            "SELECT site FROM gateway UNION SELECT site FROM meter ORDER BY 1")]

    def meters(self, site: str) -> list[dict[str, Any]]:
        keys = ("gateway", "meter", "quantities")
        rows = self.db.execute(
            "SELECT m.gateway, m.meter, group_concat(s.quantity, ' ') FROM meter m "
            "LEFT JOIN series s ON s.meter_id = m.id WHERE m.site = ? "
            "GROUP BY m.id ORDER BY m.gateway, m.meter", (site,))
        return [dict(zip(keys, (g, m, sorted((q or "").split())), strict=True))
                for g, m, q in rows]

    def latest_of(self, quantity: str, site: str | None = None) -> list[dict[str, Any]]:
        """Newest value of one quantity per meter (of one site, or all)."""
        keys = ("site", "gateway", "meter", "ts_ms", "value")
        sql = ("SELECT m.site, m.gateway, m.meter, r.ts, r.value FROM series s "
               "JOIN meter m ON m.id = s.meter_id "
               "JOIN reading r ON r.series = s.id AND r.ts = "
               "(SELECT MAX(ts) FROM reading WHERE series = s.id) WHERE s.quantity = ? "
               + ("AND m.site = ? " if site else "") + "ORDER BY m.site, m.gateway, m.meter")
        args = (quantity, site) if site else (quantity,)
        return [dict(zip(keys, row, strict=True)) for row in self.db.execute(sql, args)]

    def energy_by_site(self, from_ms: int, to_ms: int) -> dict[str, float]:
        """Interval energy per site over [from_ms, to_ms)."""
        return {site: kwh or 0.0 for site, kwh in self.db.execute(
            "SELECT m.site, SUM(i.energy_kwh) FROM meter m JOIN interval_energy i "
            "ON i.meter_id = m.id AND i.start_ms >= ? AND i.start_ms < ? GROUP BY m.site",
            (from_ms, to_ms))}

    def gateways_of(self, site: str) -> list[dict[str, Any]]:
        keys = ("gateway", "registered_ms", "last_seq", "last_seen_ms", "state", "state_ms",
                "status", "health")
        out = []
        for row in self.db.execute(
                "SELECT gateway, registered_ms, last_seq, last_seen_ms, state, state_ms, status, "
                "health FROM gateway WHERE site = ? ORDER BY gateway", (site,)):
            entry = dict(zip(keys, row, strict=True))
            for key in ("status", "health"):
                entry[key] = json.loads(entry[key]) if entry[key] else None
            out.append(entry)
        return out

    def token_by_hash(self, digest: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT id, name, role, sites, hash, revoked_ms FROM token "
                              "WHERE hash = ?", (digest,)).fetchone()
        if row is None:
            return None
        keys = ("id", "name", "role", "sites", "hash", "revoked_ms")
        entry = dict(zip(keys, row, strict=True))
        entry["sites"] = json.loads(entry["sites"])
        return entry

    def tokens(self) -> list[dict[str, Any]]:
        keys = ("id", "name", "role", "sites", "created_ms", "revoked_ms")
        out = []
        for row in self.db.execute("SELECT id, name, role, sites, created_ms, revoked_ms "
                                   "FROM token ORDER BY id"):
            entry = dict(zip(keys, row, strict=True))
            entry["sites"] = json.loads(entry["sites"])
            out.append(entry)
        return out

    def opportunities(self, site: str | None = None,
                      status: str | None = None) -> list[dict[str, Any]]:
        keys = ("id", "site", "meter", "kind", "status", "data", "updated_ms")
        clauses = [c for c, v in (("site = ?", site), ("status = ?", status)) if v is not None]
        sql = ("SELECT id, site, meter, kind, status, data, updated_ms FROM opportunity "
               + ("WHERE " + " AND ".join(clauses) + " " if clauses else "") + "ORDER BY id")
        out = []
        for row in self.db.execute(sql, [v for v in (site, status) if v is not None]):
            entry = dict(zip(keys, row, strict=True))
            entry["data"] = json.loads(entry["data"])
            out.append(entry)
        return out

    def alerts(self, site: str | None = None, since_ms: int = 0) -> list[dict[str, Any]]:
        """Open alerts and those resolved since `since_ms`, newest first."""
        keys = ("id", "site", "labels", "state", "severity", "summary", "started_ms",
                "resolved_ms", "data")
        sql = ("SELECT id, site, labels, state, severity, summary, started_ms, resolved_ms, "
               "data FROM alert WHERE (resolved_ms IS NULL OR resolved_ms >= ?) "
               + ("AND site = ? " if site else "") + "ORDER BY started_ms DESC, id")
        out = []
        for row in self.db.execute(sql, (since_ms, site) if site else (since_ms,)):
            entry = dict(zip(keys, row, strict=True))
            entry["labels"] = json.loads(entry["labels"])
            entry["data"] = json.loads(entry["data"])
            out.append(entry)
        return out

    def site_intervals(self, site: str, from_ms: int, to_ms: int) -> list[tuple[Any, ...]]:
        """(gateway, meter, start ms, import kWh, estimated, mean W, max W) of one site."""
        return self.db.execute(
            "SELECT m.gateway, m.meter, i.start_ms, i.energy_kwh, i.estimated, i.mean_power_w, "
            "i.max_power_w FROM meter m JOIN interval_energy i ON i.meter_id = m.id "
            "WHERE m.site = ? AND i.start_ms >= ? AND i.start_ms < ? "
            "ORDER BY i.start_ms, m.gateway, m.meter", (site, from_ms, to_ms)).fetchall()

    # ---- evaluation: inputs of savings scans and alert rounds

    def meter_index(self) -> list[tuple[int, str, str, str]]:
        """(meter id, site, gateway, meter) of every known meter."""
        return self.db.execute(
            "SELECT id, site, gateway, meter FROM meter ORDER BY site, meter, gateway").fetchall()

    def interval_energy(self, from_ms: int, to_ms: int, meter_id: int | None = None
                        ) -> list[tuple[int, int, float | None, float | None]]:
        """(meter id, start ms, import kWh, max W) over [from_ms, to_ms), of one meter or all."""
        if meter_id is None:
            return self.db.execute(
                "SELECT meter_id, start_ms, energy_kwh, max_power_w FROM interval_energy "
                "WHERE start_ms >= ? AND start_ms < ?", (from_ms, to_ms)).fetchall()
        return self.db.execute(
            "SELECT meter_id, start_ms, energy_kwh, max_power_w FROM interval_energy "
            "WHERE meter_id = ? AND start_ms >= ? AND start_ms < ? ORDER BY start_ms",
            (meter_id, from_ms, to_ms)).fetchall()

    def quarter_means(self, meter_id: int, quantity: str, from_ms: int, to_ms: int,
                      absolute: bool = False) -> list[tuple[int, float]]:
        """(interval start ms, mean) of one meter's gauge per 15-minute interval."""
        value = "ABS(r.value)" if absolute else "r.value"
        return self.db.execute(
            f"SELECT (r.ts / 900000) * 900000 AS q, AVG({value}) FROM series s "
            "JOIN reading r ON r.series = s.id WHERE s.meter_id = ? AND s.quantity = ? "
            "AND r.ts >= ? AND r.ts < ? GROUP BY q", (meter_id, quantity, from_ms, to_ms)
        ).fetchall()

    def last_reading_ms(self, until_ms: int) -> dict[int, int]:
        """Newest reading time per meter, of any quantity, up to `until_ms` inclusive."""
        out: dict[int, int] = {}
        for meter_id, ts in self.db.execute(
                "SELECT s.meter_id, (SELECT MAX(ts) FROM reading WHERE series = s.id AND ts <= ?)"
                " FROM series s", (until_ms,)):
            if ts is not None and ts > out.get(meter_id, -1):
                out[meter_id] = ts
        return out

    def samples_of(self, quantity: str, from_ms: int, to_ms: int
                   ) -> list[tuple[int, int, float]]:
        """(meter id, ts ms, value) of one quantity for every meter, oldest first."""
        return self.db.execute(
            "SELECT s.meter_id, r.ts, r.value FROM series s JOIN reading r ON r.series = s.id "
            "WHERE s.quantity = ? AND r.ts >= ? AND r.ts <= ? ORDER BY s.meter_id, r.ts",
            (quantity, from_ms, to_ms)).fetchall()

    def alert_state(self) -> dict[str, Any] | None:
        row = self.db.execute("SELECT data FROM alert_state WHERE id = 1").fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def silences(self, site: str | None = None, after_ms: int = 0) -> list[dict[str, Any]]:
        """Silences ending after `after_ms`, soonest start first."""
        keys = ("id", "site", "meter", "starts_ms", "ends_ms", "reason", "created_ms")
        sql = ("SELECT id, site, meter, starts_ms, ends_ms, reason, created_ms FROM silence "
               "WHERE ends_ms > ? " + ("AND site = ? " if site else "") + "ORDER BY starts_ms, id")
        return [dict(zip(keys, row, strict=True))
                for row in self.db.execute(sql, (after_ms, site) if site else (after_ms,))]

    def site_totals(self, site: str, from_ms: int, to_ms: int) -> list[tuple[Any, ...]]:
        """Per 15-minute start, summed over the site's meters: (start ms, kWh, any estimated,
        mean W, max W); None where no meter had a value."""
        return self.db.execute(
            "SELECT i.start_ms, SUM(i.energy_kwh), MAX(i.estimated), SUM(i.mean_power_w), "
            "SUM(i.max_power_w) FROM meter m JOIN interval_energy i ON i.meter_id = m.id "
            "WHERE m.site = ? AND i.start_ms >= ? AND i.start_ms < ? "
            "GROUP BY i.start_ms ORDER BY i.start_ms", (site, from_ms, to_ms)).fetchall()
