"""The durable outbox: batches live in SQLite from commit until the broker's PUBACK.

The only gateway module that talks to SQLite. One `flush()` is one transaction: the new
batches get their seq from the persisted counter inside it, and acknowledged batches are
deleted in it, so the gateway writes the SD card once per commit interval.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
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

# Builds the encoded payload of a batch once its seq is known (the seq is inside the payload).
Build = Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class OutboxStats:
    depth: int
    bytes: int
    oldest_age_s: float | None
    dropped_batches: int
    dropped_readings: int
    next_seq: int


@dataclass(frozen=True, slots=True)
class NewBatch:
    build: Build
    readings: int


class Outbox:
    """Queue of encoded batches with a persisted sequence number, bounded by size and age."""

    def __init__(
        self, path: Path, max_bytes: int, max_age_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, timeout=10)
        self.db.execute("PRAGMA journal_mode=WAL")
        # FULL syncs the WAL at every commit: a committed batch survives a power cut. The
        # gateway commits once per commit interval, so that is one small write per second.
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.clock = clock
        self._bytes = int(
            self.db.execute("SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM batch").fetchone()[0]
        )

    def next_seq(self) -> int:
        return int(self.db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()[0])

    def flush(self, batches: Iterable[NewBatch] = (), acked: Iterable[int] = ()) -> list[int]:
        """Commit new batches and delete acknowledged ones in one transaction; the new seqs."""
        acked = list(acked)
        seqs: list[int] = []
        added = 0
        now_ms = int(self.clock() * 1000)
        self.db.execute("BEGIN IMMEDIATE")
        try:
            removed = self._delete(acked)
            seq = self.next_seq()
            for batch in batches:
                payload = batch.build(seq)
                self.db.execute(
                    "INSERT INTO batch VALUES (?, ?, ?, ?)", (seq, now_ms, batch.readings, payload)
                )
                seqs.append(seq)
                added += len(payload)
                seq += 1
            if seqs:
                self.db.execute("UPDATE meta SET value=? WHERE key='next_seq'", (seq,))
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:  # SQLite undoes it itself on disk full or I/O error
                self.db.execute("ROLLBACK")
            raise
        self._bytes += added - removed
        if seqs:
            self.enforce_caps()
        return seqs

    def append(self, build: Build, readings: int) -> int:
        """Commit one batch; its seq is taken from the counter in the same transaction."""
        return self.flush([NewBatch(build, readings)])[0]

    def ack(self, seqs: Iterable[int]) -> None:
        self.flush(acked=seqs)

    def _delete(self, seqs: list[int]) -> int:
        removed = 0
        for start in range(0, len(seqs), 500):
            chunk = seqs[start : start + 500]
            marks = ",".join("?" * len(chunk))
            removed += int(
                self.db.execute(
                    f"SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM batch WHERE seq IN ({marks})",
                    chunk,
                ).fetchone()[0]
            )
            self.db.execute(f"DELETE FROM batch WHERE seq IN ({marks})", chunk)
        return removed

    def pending(
        self, after: int = -1, before: int | None = None, limit: int = 100
    ) -> list[tuple[int, bytes]]:
        """Batches with after < seq < before, oldest first."""
        rows = self.db.execute(
            "SELECT seq, payload FROM batch WHERE seq > ? AND seq < ? ORDER BY seq LIMIT ?",
            (after, 2**62 if before is None else before, limit),
        ).fetchall()
        return [(int(s), bytes(p)) for s, p in rows]

    def enforce_caps(self) -> int:
        """Drop the oldest batches beyond the size or age cap, counted; how many went."""
        cutoff_ms = int((self.clock() - self.max_age_s) * 1000)
        excess = self._bytes - self.max_bytes
        last, count, readings, size = None, 0, 0, 0
        rows = self.db.execute(
            "SELECT seq, created_ms, readings, LENGTH(payload) FROM batch ORDER BY seq"
        )
        for seq, created_ms, n, length in rows:
            if size >= excess and created_ms >= cutoff_ms:
                break
            last, count, readings, size = seq, count + 1, readings + n, size + length
        rows.close()
        if last is None:
            return 0
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("DELETE FROM batch WHERE seq <= ?", (last,))
            self.db.execute("UPDATE meta SET value=value+? WHERE key='dropped_batches'", (count,))
            self.db.execute(
                "UPDATE meta SET value=value+? WHERE key='dropped_readings'", (readings,)
            )
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:  # SQLite undoes it itself on disk full or I/O error
                self.db.execute("ROLLBACK")
            raise
        self._bytes -= size
        log.warning(
            "outbox full: dropped %d oldest batches (%d readings) up to seq=%d",
            count,
            readings,
            last,
        )
        return count

    def stats(self) -> OutboxStats:
        depth, oldest = self.db.execute("SELECT COUNT(*), MIN(created_ms) FROM batch").fetchone()
        meta = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        return OutboxStats(
            depth=int(depth),
            bytes=int(self._bytes),
            oldest_age_s=None if oldest is None else round(self.clock() - oldest / 1000, 3),
            dropped_batches=int(meta["dropped_batches"]),
            dropped_readings=int(meta["dropped_readings"]),
            next_seq=int(meta["next_seq"]),
        )

    def close(self) -> None:
        self.db.close()
