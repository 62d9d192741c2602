"""Job leases in the database, so that one of the collectors sharing it runs each round.

Several collectors on one database (docs/scaling.md) each schedule the same jobs. Before a
round a collector takes the job's lease row in one atomic statement, and only the holder
runs the round. A round is named by the time it is due (`round_ms`) and the row remembers
the newest round done, so a round that fires at every collector still runs once. A holder
that dies leaves its lease to expire (`expires_ms`); until then nobody else runs the job.

Plain SQL on one table: SQLite and PostgreSQL take the same statements (INSERT ... ON
CONFLICT ... DO UPDATE ... WHERE ... RETURNING).
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from collector.store.schema import connect
from collector.store.sql import Target

log = logging.getLogger(__name__)

T = TypeVar("T")
BUSY_PAUSE_S = 0.02

# the lease is free (expired, or ours) and, unless the round is one of its own (?4 = 1),
# the round is newer than the newest done
_TAKE = (
    "INSERT INTO lease (name, holder, expires_ms, round_ms) VALUES (?1, ?2, ?3, ?5) "
    "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
    "expires_ms = excluded.expires_ms, round_ms = excluded.round_ms "
    "WHERE (lease.expires_ms <= ?6 OR lease.holder = excluded.holder) "
    "AND (?4 OR lease.done_ms IS NULL OR lease.done_ms < excluded.round_ms) "
    "RETURNING round_ms"
)


def holder_id(client_id: str) -> str:
    """This process as a lease holder: its MQTT client id, host and process id (a restarted
    collector is another holder and waits for its predecessor's lease to expire)."""
    return f"{client_id}@{socket.gethostname()}:{os.getpid()}"


def is_busy(exc: BaseException) -> bool:
    """A transaction another collector's commit overtook (SQLITE_BUSY, a lock timeout; on
    PostgreSQL also a deadlock or a serialization failure): running it again is safe and
    will succeed."""
    if isinstance(exc, sqlite3.OperationalError):
        code = getattr(exc, "sqlite_errorcode", None)
        return (code is not None and code & 0xFF == sqlite3.SQLITE_BUSY) or "locked" in str(exc)
    try:
        from psycopg import errors  # only a PostgreSQL deployment has it
    except ImportError:
        return False
    return isinstance(
        exc, errors.DeadlockDetected | errors.SerializationFailure | errors.LockNotAvailable
    )


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Leases:
    """Take, keep and give back named job leases, on a connection of their own (each
    statement commits by itself, whatever the other connections have open)."""

    def __init__(self, path: Target, holder: str, clock: Callable[[], int] = _wall_ms) -> None:
        self.holder = holder
        self.clock = clock
        self.db = connect(path)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def take(self, name: str, round_ms: int | None, ttl_ms: int) -> int | None:
        """Take the lease for one round: the round taken, or None if another live holder
        has it or the round is done already. A round of None is one of its own (now),
        for work that must only not overlap (it is never done already)."""
        now = self.clock()
        own = round_ms is None
        with self._lock:
            rows = self.db.execute(
                _TAKE, (name, self.holder, now + ttl_ms, own, now if own else round_ms, now)
            ).fetchall()
        return int(rows[0][0]) if rows else None

    def keep(self, name: str, ttl_ms: int) -> bool:
        """Extend a lease this process holds (a long round); False if it is no longer ours."""
        now = self.clock()
        with self._lock:
            rows = self.db.execute(
                "UPDATE lease SET expires_ms = ? WHERE name = ? AND holder = ? RETURNING name",
                (now + ttl_ms, name, self.holder),
            ).fetchall()
        return bool(rows)

    def release(self, name: str, round_ms: int) -> None:
        """Give the lease back with its round done; nothing if it is no longer ours."""
        now = self.clock()
        with self._lock:
            # the newer of the two rounds (SQLite's MAX(a, b) is PostgreSQL's GREATEST)
            self.db.execute(
                "UPDATE lease SET expires_ms = ?, done_ms = CASE WHEN done_ms > ? THEN done_ms "
                "ELSE ? END WHERE name = ? AND holder = ?",
                (now, round_ms, round_ms, name, self.holder),
            )

    def holder_of(self, name: str) -> tuple[str, int] | None:
        """(holder, expires ms) of a lease, expired or not; None if never taken."""
        with self._lock:
            row = self.db.execute(
                "SELECT holder, expires_ms FROM lease WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else (str(row[0]), int(row[1]))

    def run(
        self,
        name: str,
        round_ms: int | None,
        ttl_ms: int,
        work: Callable[[], T],
        busy_retry_s: float = 0.0,
    ) -> tuple[bool, T | None]:
        """Run `work` for one round (None: one of its own, as for `take`) if this process
        gets its lease: (ran, its result).

        A failed round is done all the same (as it would be with one collector); its error
        is raised after the lease is given back. With `busy_retry_s`, work that another
        collector's commit overtook is run again for up to that long (it must be safe to
        repeat, as a transaction that did not commit is), while the lease is still ours.
        """
        taken = self.take(name, round_ms, ttl_ms)
        if taken is None:
            return False, None
        try:
            deadline = time.monotonic() + busy_retry_s
            while True:
                try:
                    return True, work()
                except Exception as exc:
                    if not is_busy(exc) or time.monotonic() >= deadline:
                        raise
                    time.sleep(BUSY_PAUSE_S)
                    if not self.keep(name, ttl_ms):  # it ran out: another collector has it
                        raise
                    log.debug("job %s met another collector's commit; running it again", name)
        finally:
            self.release(name, taken)
