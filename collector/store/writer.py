"""The one writer: readings, registry, gaps, quarantine, counters, intervals and records."""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from collector.store.rows import (
    AlertRow,
    DirtyMeter,
    IntervalRow,
    NoticeRow,
    OpportunityRow,
    OutgoingNotice,
    Quarantined,
)
from collector.store.schema import apply_migrations, connect, create
from sparwatt import wire

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
# quantities whose new readings make a meter's 15-minute intervals stale
INTERVAL_QUANTITIES = frozenset({"energy_import_kwh", "energy_export_kwh", "power_w"})

INSERT_CHUNK_ROWS = 256  # x 3 parameters, within SQLite's 32766


@functools.cache
def _insert_sql(rows: int) -> str:
    return "INSERT OR IGNORE INTO reading VALUES " + ",".join(["(?, ?, ?)"] * rows)


def epoch_ms(readings: Iterable[wire.Reading]) -> list[int]:
    """Each reading's ts in exact epoch milliseconds (float timestamps can land one low)."""
    return [(reading.ts - _EPOCH) // _MS for reading in readings]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class StoreResult:
    stored: int
    duplicates: int


class Store:
    """One writer connection; readers open their own (WAL lets them run beside the writer)."""

    def __init__(self, path: Path, synchronous: Literal["full", "normal"] = "full") -> None:
        self.path = path
        if not path.exists():
            create(path)
        self.db = connect(path, synchronous=synchronous)
        self._migrate()
        self._load_caches()

    def _load_caches(self) -> None:
        # (site, gateway) -> meter -> (meter id, {quantity: series id})
        self._meters: dict[tuple[str, str], dict[str, tuple[int, dict[str, int]]]] = {}
        by_id: dict[int, dict[str, int]] = {}
        for meter_id, site, gateway, meter in self.db.execute(
            "SELECT id, site, gateway, meter FROM meter"
        ):
            ids = by_id[meter_id] = {}
            self._meters.setdefault((site, gateway), {})[meter] = (meter_id, ids)
        for series_id, meter_id, quantity in self.db.execute(
            "SELECT id, meter_id, quantity FROM series"
        ):
            by_id[meter_id][quantity] = series_id
        self._gateways: dict[tuple[str, str], tuple[int | None, int | None]] = {
            (s, g): (q, t)
            for s, g, q, t in self.db.execute(
                "SELECT site, gateway, last_seq, last_seen_ms FROM gateway"
            )
        }

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN ... COMMIT, rolled back (see `rollback`) on any failure."""
        if self.db.in_transaction:  # left open by a statement SQLite undid on its own
            self.rollback()
        self.db.execute("BEGIN")
        try:
            yield
            self.db.execute("COMMIT")
        except BaseException:
            self.rollback()
            raise

    def rollback(self) -> None:
        """Undo the open transaction and forget ids cached during it.

        SQLite may have undone it already (disk full, I/O error): a second ROLLBACK would
        then fail and hide the real error, and cached meter and series ids that were never
        committed would be handed out again for other meters.
        """
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")
        self._load_caches()

    def _migrate(self) -> None:
        apply_migrations(self.db, self.path)

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
        self.db.execute(
            "INSERT OR IGNORE INTO gateway (site, gateway, registered_ms) VALUES (?, ?, ?)",
            (site, gateway, now_ms()),
        )
        self._gateways[(site, gateway)] = (None, None)

    def _meter(self, site: str, gateway: str, meter: str) -> tuple[int, dict[str, int]]:
        key = (site, gateway, meter)
        self.db.execute("INSERT OR IGNORE INTO meter (site, gateway, meter) VALUES (?, ?, ?)", key)
        meter_id = self.db.execute(
            "SELECT id FROM meter WHERE site=? AND gateway=? AND meter=?", key
        ).fetchone()[0]
        entry = self._meters.setdefault((site, gateway), {})[meter] = (meter_id, {})
        return entry

    def _series(self, meter_id: int, ids: dict[str, int], quantity: str) -> int:
        self.db.execute(
            "INSERT OR IGNORE INTO series (meter_id, quantity) VALUES (?, ?)", (meter_id, quantity)
        )
        series_id: int = self.db.execute(
            "SELECT id FROM series WHERE meter_id=? AND quantity=?", (meter_id, quantity)
        ).fetchone()[0]
        ids[quantity] = series_id
        return series_id

    def meter_id(self, site: str, gateway: str, meter: str) -> int | None:
        entry = self._meters.get((site, gateway), {}).get(meter)
        return None if entry is None else entry[0]

    # ---- writing

    def write(
        self, messages: list[wire.ReadingsMessage], quarantined: Iterable[Quarantined] = ()
    ) -> StoreResult:
        """Store accepted messages and quarantined ones in one transaction."""
        params: list[int | float] = []  # series, ts, value, series, ts, value, ...
        dirty: dict[int, int] = {}
        interval_quantities = INTERVAL_QUANTITIES
        extend = params.extend
        with self.transaction():
            for message in messages:
                site, gateway = message.site, message.gateway
                self.register_gateway(site, gateway)
                readings = message.readings
                stamps = epoch_ms(readings)
                self._track_seq(message, min(stamps), max(stamps))
                known = self._meters.setdefault((site, gateway), {})
                for reading, ts in zip(readings, stamps, strict=True):
                    meter_id, ids = known.get(reading.meter) or self._meter(
                        site, gateway, reading.meter
                    )
                    values = reading.values
                    for quantity, value in values.items():
                        # series ids start at 1, so a missing one is the only falsy result
                        extend(
                            (ids.get(quantity) or self._series(meter_id, ids, quantity), ts, value)
                        )
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
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(received, *entry) for entry in q],
            )
            counts = {
                "stored": stored,
                "duplicates": rows - stored,
                "messages": len(messages),
                "quarantined": len(q),
                "readings": sum(len(m.readings) for m in messages),
            }
            for entry in q:
                name = f"quarantined.{entry.reason}"
                counts[name] = counts.get(name, 0) + 1
            self._count(counts)
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
            self.db.execute(_insert_sql(size), params[3 * start : 3 * (start + size)])
            start += size

    def mark_dirty(self, dirty: dict[int, int]) -> None:
        self.db.executemany(
            "INSERT INTO dirty VALUES (?, ?) ON CONFLICT (meter_id) "
            "DO UPDATE SET from_ms = MIN(from_ms, excluded.from_ms)",
            dirty.items(),
        )

    def _count(self, deltas: dict[str, int]) -> None:
        self.db.executemany(
            "INSERT INTO counter VALUES (?, ?) ON CONFLICT (name) "
            "DO UPDATE SET value = value + excluded.value",
            [(k, v) for k, v in deltas.items() if v],
        )

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
                    (*key, last + 1, seq - 1, last_ms, first_ts, now_ms()),
                )
            self._gateways[key] = (seq, last_ts)
            self.db.execute(
                "UPDATE gateway SET last_seq=?, last_seen_ms=? WHERE site=? AND gateway=?",
                (seq, last_ts, *key),
            )
            return
        row = self.db.execute(
            "SELECT id, from_seq, to_seq, after_ms, before_ms FROM gap WHERE site=? AND "
            "gateway=? AND from_seq<=? AND to_seq>=?",
            (*key, seq, seq),
        ).fetchone()
        if row is None:
            return  # a redelivery of something already seen
        gap_id, lo, hi, after_ms, before_ms = row
        self.db.execute("DELETE FROM gap WHERE id=?", (gap_id,))
        parts = [(lo, seq - 1, after_ms, first_ts), (seq + 1, hi, last_ts, before_ms)]
        self.db.executemany(
            "INSERT INTO gap (site, gateway, from_seq, to_seq, after_ms, before_ms, detected_ms)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(*key, a, b, c, d, now_ms()) for a, b, c, d in parts if a <= b],
        )

    def set_status(self, site: str, gateway: str, status: wire.StatusMessage) -> None:
        self.db.execute(
            "UPDATE gateway SET state=?, state_ms=?, status=? WHERE site=? AND gateway=?",
            (status.state.value, now_ms(), status.model_dump_json(by_alias=True), site, gateway),
        )

    def set_health(self, site: str, gateway: str, health: Mapping[str, object]) -> None:
        self.db.execute(
            "UPDATE gateway SET health=?, health_ms=? WHERE site=? AND gateway=?",
            (json.dumps(health), now_ms(), site, gateway),
        )

    def set_stats(self, values: dict[str, float | str | None]) -> None:
        """Runtime figures (ingest rate, sink backlog) for readers such as `status`."""
        now = now_ms()
        self.db.executemany(
            "INSERT OR REPLACE INTO stat (name, value, text, updated_ms) VALUES (?, ?, ?, ?)",
            [
                (k, v if not isinstance(v, str) else None, v if isinstance(v, str) else None, now)
                for k, v in values.items()
            ],
        )

    def prune(self, retention_days: float, now: float | None = None) -> int:
        """Drop raw readings and quarantine entries older than the retention; intervals stay."""
        cutoff = int(((time.time() if now is None else now) - retention_days * 86400) * 1000)
        before = self.db.total_changes
        series = [row[0] for row in self.db.execute("SELECT id FROM series")]
        with self.transaction():
            # per series, so each delete is a range scan of the primary key
            self.db.executemany(
                "DELETE FROM reading WHERE series = ? AND ts < ?", [(s, cutoff) for s in series]
            )
            pruned = self.db.total_changes - before
            self.db.execute("DELETE FROM quarantine WHERE received_ms < ?", (cutoff,))
        return pruned

    # ---- intervals

    def take_dirty(self) -> list[DirtyMeter]:
        with self.transaction():
            rows = [
                DirtyMeter(*row) for row in self.db.execute("SELECT meter_id, from_ms FROM dirty")
            ]
            self.db.execute("DELETE FROM dirty")
        return rows

    def samples(self, meter_id: int, quantity: str, from_ms: int) -> list[tuple[int, float]]:
        """(ts ms, value) of one meter's quantity, oldest first.

        Plain pairs, not a row type: the refresh reads millions of them into numeric code.
        """
        return self.db.execute(
            "SELECT r.ts, r.value FROM reading r JOIN series s ON s.id = r.series "
            "WHERE s.meter_id=? AND s.quantity=? AND r.ts >= ? ORDER BY r.ts",
            (meter_id, quantity, from_ms),
        ).fetchall()

    def put_intervals(self, meter_id: int, rows: list[IntervalRow]) -> None:
        """Replace a meter's interval rows."""
        with self.transaction():
            self.db.executemany(
                "INSERT OR REPLACE INTO interval_energy (meter_id, start_ms, energy_kwh, "
                "estimated, export_kwh, export_estimated, mean_power_w, max_power_w) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(meter_id, *row) for row in rows],
            )

    # ---- web: API tokens, opportunities and alerts

    def add_token(
        self, name: str, role: str, sites: list[str], digest: str, expires_ms: int | None = None
    ) -> int:
        """Store a token by its hash only; returns its id. None: valid until revoked."""
        cur = self.db.execute(
            "INSERT INTO token (name, role, sites, hash, created_ms, expires_ms) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (name, role, json.dumps(sorted(sites)), digest, now_ms(), expires_ms),
        )
        return int(cur.lastrowid or 0)

    def revoke_token(self, token_id: int) -> bool:
        """Revoke a live token; False if there is no such token or it was revoked before."""
        before = self.db.total_changes
        self.db.execute(
            "UPDATE token SET revoked_ms=? WHERE id=? AND revoked_ms IS NULL",
            (int(time.time() * 1000), token_id),
        )
        return self.db.total_changes > before

    def put_opportunity(
        self,
        opportunity_id: str,
        site: str,
        meter: str,
        kind: str,
        status: str,
        data: Mapping[str, object],
        updated_ms: int | None = None,
    ) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO opportunity VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                opportunity_id,
                site,
                meter,
                kind,
                status,
                json.dumps(data),
                int(time.time() * 1000) if updated_ms is None else updated_ms,
            ),
        )

    def put_alert(
        self,
        alert_id: str,
        site: str,
        labels: Mapping[str, str],
        state: str,
        severity: str,
        summary: str,
        started_ms: int,
        resolved_ms: int | None = None,
        data: Mapping[str, object] | None = None,
    ) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO alert VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                alert_id,
                site,
                json.dumps(labels),
                state,
                severity,
                summary,
                started_ms,
                resolved_ms,
                json.dumps(data or {}),
            ),
        )

    # ---- evaluation: opportunities, alert rounds and silences

    def save_opportunities(self, rows: Iterable[OpportunityRow]) -> None:
        """Write the opportunities of one scan in one transaction."""
        with self.transaction():
            for row in rows:
                self.put_opportunity(
                    row.id, row.site, row.meter, row.kind, row.status, row.data, row.updated_ms
                )

    def save_alert_round(
        self,
        state: Mapping[str, object],
        alerts: Iterable[AlertRow],
        updated_ms: int,
        notices: Iterable[OutgoingNotice] = (),
    ) -> None:
        """The lifecycle state, the alert rows it changed and the notices it owes, together
        or not at all."""
        with self.transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO alert_state VALUES (1, ?, ?)",
                (json.dumps(state), updated_ms),
            )
            for row in alerts:
                self.put_alert(
                    row.id,
                    row.site,
                    row.labels,
                    row.state,
                    row.severity,
                    row.summary,
                    row.started_ms,
                    row.resolved_ms,
                    row.data,
                )
            self.db.executemany(
                "INSERT INTO notice (receiver, site, body, created_ms, next_ms) "
                "VALUES (?, ?, ?, ?, ?)",
                [(n.receiver, n.site, n.body, updated_ms, updated_ms) for n in notices],
            )

    def due_notices(self, now_ms: int) -> list[NoticeRow]:
        """Undelivered notices, oldest first, with whether their retry time has come."""
        return [
            NoticeRow(i, receiver, site, bytes(body), created, attempts, bool(due))
            for i, receiver, site, body, created, attempts, due in self.db.execute(
                "SELECT id, receiver, site, body, created_ms, attempts, next_ms <= ? FROM notice "
                "ORDER BY id",
                (now_ms,),
            )
        ]

    def notice_delivered(self, notice_id: int) -> None:
        self.db.execute("DELETE FROM notice WHERE id = ?", (notice_id,))

    def notice_failed(self, notice_id: int, next_ms: int, error: str) -> None:
        self.db.execute(
            "UPDATE notice SET attempts = attempts + 1, next_ms = ?, last_error = ? WHERE id = ?",
            (next_ms, error[:500], notice_id),
        )

    def add_silence(
        self,
        silence_id: str,
        site: str,
        meter: str | None,
        starts_ms: int,
        ends_ms: int,
        reason: str,
    ) -> None:
        self.db.execute(
            "INSERT INTO silence VALUES (?, ?, ?, ?, ?, ?, ?)",
            (silence_id, site, meter, starts_ms, ends_ms, reason, now_ms()),
        )

    def remove_silence(self, silence_id: str) -> bool:
        before = self.db.total_changes
        self.db.execute("DELETE FROM silence WHERE id = ?", (silence_id,))
        return self.db.total_changes > before
