"""The durable outbox: batches live in SQLite from commit until the broker's PUBACK."""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batch (
    seq INTEGER PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    readings INTEGER NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('next_seq', 0), ('dropped_batches', 0),
    ('dropped_readings', 0);
"""


@dataclass(frozen=True, slots=True)
class OutboxStats:
    depth: int
    bytes: int
    oldest_age_s: float | None
    dropped_batches: int
    dropped_readings: int
    next_seq: int


class Outbox:
    """Append-only queue of encoded batches with a persisted sequence number."""

    def __init__(self, path: Path, max_bytes: int, max_age_s: float) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL keeps every commit atomic; on power loss the last commits may roll back,
        # which is the documented loss window.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self._bytes = self.db.execute(
            "SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM batch").fetchone()[0]

    def next_seq(self) -> int:
        return int(self.db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()[0])

    def append(self, seq: int, payload: bytes, readings: int) -> None:
        """Commit one batch whose payload already carries `seq`; the counter moves with it."""
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("INSERT INTO batch VALUES (?, ?, ?, ?)",
                            (seq, int(time.time() * 1000), readings, payload))
            self.db.execute("UPDATE meta SET value=? WHERE key='next_seq'", (seq + 1,))
        self._bytes += len(payload)
        self.enforce_caps()

    def pending(self, after_seq: int = -1, limit: int = 100) -> list[tuple[int, bytes]]:
        rows = self.db.execute("SELECT seq, payload FROM batch WHERE seq > ? ORDER BY seq LIMIT ?",
                               (after_seq, limit)).fetchall()
        return [(int(s), bytes(p)) for s, p in rows]

    def has(self, seq: int) -> bool:
        return self.db.execute("SELECT 1 FROM batch WHERE seq=?", (seq,)).fetchone() is not None

    def ack(self, seqs: list[int]) -> None:
        if not seqs:
            return
        marks = ",".join("?" * len(seqs))
        with self.db:
            self.db.execute("BEGIN")
            size = self.db.execute(
                f"SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM batch WHERE seq IN ({marks})",
                seqs).fetchone()[0]
            self.db.execute(f"DELETE FROM batch WHERE seq IN ({marks})", seqs)
        self._bytes -= size

    def enforce_caps(self) -> int:
        """Drop the oldest batches beyond the size or age cap; returns how many went."""
        cutoff = int((time.time() - self.max_age_s) * 1000)
        dropped = 0
        while True:
            row = self.db.execute("SELECT seq, created_ms, readings, LENGTH(payload) FROM batch "
                                  "ORDER BY seq LIMIT 1").fetchone()
            if row is None or (self._bytes <= self.max_bytes and row[1] >= cutoff):
                break
            seq, _, readings, size = row
            with self.db:
                self.db.execute("BEGIN")
                self.db.execute("DELETE FROM batch WHERE seq=?", (seq,))
                self.db.execute("UPDATE meta SET value=value+1 WHERE key='dropped_batches'")
                self.db.execute("UPDATE meta SET value=value+? WHERE key='dropped_readings'",
                                (readings,))
            self._bytes -= size
            dropped += 1
        if dropped:
            log.warning("outbox full: dropped %d oldest batches", dropped)
        return dropped

    def stats(self) -> OutboxStats:
        depth, oldest = self.db.execute("SELECT COUNT(*), MIN(created_ms) FROM batch").fetchone()
        meta = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        return OutboxStats(
            depth=int(depth), bytes=int(self._bytes),
            oldest_age_s=None if oldest is None else round(time.time() - oldest / 1000, 3),
            dropped_batches=int(meta["dropped_batches"]),
            dropped_readings=int(meta["dropped_readings"]), next_seq=int(meta["next_seq"]),
        )

    def close(self) -> None:
        self.db.close()
