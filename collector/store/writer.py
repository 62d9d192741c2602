"""The one writer: readings, registry, gaps, quarantine, counters, intervals and records."""

from __future__ import annotations

import contextlib
import functools
import json
import operator
import struct
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from collector.store import packing, timeseries
from collector.store.rows import (
    AlertRow,
    DirtyMeter,
    IntervalRow,
    MeasureRow,
    NoticeRow,
    OpportunityRow,
    OutgoingNotice,
    Quarantined,
)
from collector.store.schema import apply_migrations, connect, create
from collector.store.sql import Connection, Dialect, Target, describe, dialect_of, is_postgres
from sparwatt import wire
from sparwatt.errors import SchemaError
from sparwatt.timeutil import QUARTER_MS, now_ms, quarter_floor

if TYPE_CHECKING:
    from collector.settings import Victoria
    from collector.store.victoria import VictoriaRaw

INSERT_CHUNK_ROWS = 256  # x 4 parameters, within SQLite's 32766
# a batch's messages in this order: collectors sharing a PostgreSQL database lock gateway
# rows in one order, so none waits for a lock the other holds (a deadlock)
_LOCK_ORDER = operator.attrgetter("site", "gateway", "seq")


_INSERT_SAMPLES = "INSERT OR IGNORE INTO sample (meter_id, ts, layout, data)"
# RETURNING names the rows really inserted; it costs about a third of the insert, so it
# only runs again on a chunk where some row met a stored reading
_INSERTED = "RETURNING meter_id, ts"
# how one meter's float32 readings of one layout are packed: meter id, the layout's
# struct pack and unpack, layout id
_Plan = tuple[int, Callable[..., bytes], Callable[[Any], tuple[Any, ...]], int]


_Row = TypeVar("_Row")


@functools.cache
def _rows_sql(head: str, width: int, rows: int, tail: str = "") -> str:
    """`head` VALUES (?, ...), ... `tail`: one statement for many rows (a round trip, not
    one per row, on PostgreSQL); `rows` a power of two, so few statements get prepared."""
    row = "(" + ", ".join(["?"] * width) + ")"
    return f"{head} VALUES {', '.join([row] * rows)} {tail}".rstrip()


def _where_in(key: str, part: Sequence[tuple[object, ...]]) -> tuple[str, list[object]]:
    """`WHERE (key) IN (VALUES ...)` for these keys, and the keys' values as parameters."""
    where = _rows_sql(f"WHERE ({key}) IN (", len(part[0]), len(part), ")")
    return where, [value for k in part for value in k]


def _chunks(rows: Sequence[_Row], most: int = 256) -> Iterator[Sequence[_Row]]:
    """`rows` in pieces of a power-of-two length (at most `most`), largest first."""
    start, size = 0, most
    while start < len(rows):
        while size > len(rows) - start:
            size //= 2
        yield rows[start : start + size]
        start += size


class _Layouts(dict[int, packing.Layout]):
    """Packing layouts by id; one another collector on this database added since this one
    loaded its cache is read on first use."""

    def __init__(self, db: Connection) -> None:
        super().__init__()
        self._db = db

    def __missing__(self, layout_id: int) -> packing.Layout:
        row = self._db.execute("SELECT spec FROM layout WHERE id = ?", (layout_id,)).fetchone()
        if row is None or ":" not in row[0]:
            raise KeyError(layout_id)
        layout = self[layout_id] = packing.Layout.from_key(row[0])
        return layout


def _max_with(column: str) -> str:
    """The larger of a column (NULL as 0) and a parameter, which is bound twice: the
    two-argument MAX is SQLite's own and GREATEST PostgreSQL's."""
    return f"CASE WHEN COALESCE({column}, 0) > ? THEN COALESCE({column}, 0) ELSE ? END"


def _into(table: str, columns: str) -> str:
    """INTO table (columns) VALUES (?, ...): one parameter a column."""
    return f"INTO {table} ({columns}) VALUES ({', '.join('?' * len(columns.split(',')))})"


def _replace(table: str, columns: str, key: str) -> str:
    """INSERT OR REPLACE as both engines write it: the row with the same `key` takes every
    other column's new value."""
    keys = {k.strip() for k in key.split(",")}
    updates = ", ".join(
        f"{c} = excluded.{c}" for c in (c.strip() for c in columns.split(",")) if c not in keys
    )
    return f"INSERT {_into(table, columns)} ON CONFLICT ({key}) DO UPDATE SET {updates}"


_INTERVALS = (
    "interval_energy",
    "meter_id, start_ms, energy_kwh, estimated, export_kwh, export_estimated, mean_power_w, "
    "max_power_w",
)
_ROLLUPS = ("rollup", "meter_id, start_ms, layout, data")
_OPPORTUNITY = _replace("opportunity", "id, site, meter, kind, status, data, updated_ms", "id")
_ALERT = _replace(
    "alert", "id, site, labels, state, severity, summary, started_ms, resolved_ms, data", "id"
)
_ALERT_STATE = _replace("alert_state", "id, data, updated_ms", "id")
_STAT = _replace("stat", "name, value, text, updated_ms", "name")
_MEASURE = _replace(
    "measure",
    "id, site, meters, kind, title, installed_from, installed_to, investment_dkk, "
    "expected_kwh_year, opportunity_id, model, exclusions, note, created_ms, updated_ms",
    "id",
)


def _unroll(
    numbers: str, scale: float, estimated: bytes, flagged: bool
) -> tuple[list[float], list[int]]:
    """`put_energy_run`'s run as the kWh and estimated flags, computed as SQLite does from
    the JSON (the same doubles: one correctly rounded division each)."""
    values = json.loads(numbers)  # whole numbers when flagged
    if flagged:
        return [(v >> 1) / scale for v in values], [v & 1 for v in values]
    return [v / scale for v in values], list(estimated)


@dataclass(frozen=True, slots=True)
class StoreResult:
    stored: int
    duplicates: int


class Store:
    """One writer connection; readers open their own (WAL lets them run beside the writer).

    `target` is a SQLite file (made when missing) or a PostgreSQL URL (a database that
    exists; its tables come from the migrations). The statements are SQLite's, in the SQL
    both engines speak; the few that differ ask `dialect`.
    """

    _in_transaction = False  # within `transaction()`: a nested one joins it
    victoria: VictoriaRaw | None = None  # where raw readings go, if not into the database

    def __init__(self, target: Target, synchronous: Literal["full", "normal"] = "full") -> None:
        self.path: Target = target
        if not is_postgres(target) and not Path(target).exists():
            create(Path(target))
        self.db: Connection = connect(target, synchronous=synchronous)
        try:
            self._migrate()
        except BaseException:
            self.db.close()  # a schema it cannot use, or a failed step: nothing stays open
            raise
        self.victoria = timeseries.open_bound(self.db)
        self._load_caches()

    @property
    def dialect(self) -> Dialect:
        return dialect_of(self.db)

    def _load_caches(self) -> None:
        # (site, gateway) -> meter -> (meter id, quantities it has reported)
        self._meters: dict[tuple[str, str], dict[str, tuple[int, set[str]]]] = {}
        for meter_id, site, gateway, meter, quantities in self.db.execute(
            "SELECT id, site, gateway, meter, quantities FROM meter"
        ):
            self._meters.setdefault((site, gateway), {})[meter] = (
                meter_id,
                set(quantities.split()),
            )
        self._meter_keys: dict[int, tuple[str, str, str]] = {}
        self._layout_ids: dict[packing.Layout, int] = {}
        # (site, gateway) -> (meter, quantities) -> (meter id, pack, unpack, layout id):
        # the all-float32 layouts each meter has written, its quantities registered
        self._plans: dict[tuple[str, str], dict[tuple[str, tuple[str, ...]], _Plan]] = {}
        self.layouts = _Layouts(self.db)
        for layout_id, spec in self.db.execute("SELECT id, spec FROM layout"):
            if ":" in spec:
                layout = packing.Layout.from_key(spec)
                self._layout_ids[layout] = layout_id
                self.layouts[layout_id] = layout
        self.__dict__.pop("_rollup_layouts", None)  # ids an undone transaction handed out
        self._gateways: dict[tuple[str, str], tuple[int | None, int | None]] = {
            (s, g): (q, t)
            for s, g, q, t in self.db.execute(
                "SELECT site, gateway, last_seq, last_seen_ms FROM gateway"
            )
        }

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN ... COMMIT, rolled back (see `rollback`) on any failure.

        IMMEDIATE takes the write lock at once: a transaction that reads before it writes
        would otherwise fail as busy when another collector on this database commits in
        between, instead of waiting its turn. PostgreSQL has no such lock: there
        transactions run side by side, each locking the rows it writes, and what must not
        interleave (a gateway's seq) starts with a write that locks its row.
        Inside another `transaction()` of this store, it is part of that one.
        """
        if self._in_transaction:
            yield
            return
        if self.db.in_transaction:  # left open by a statement SQLite undid on its own
            self.rollback()
        self.db.execute("BEGIN IMMEDIATE")
        self._in_transaction = True
        try:
            yield
            self.db.execute("COMMIT")
        except BaseException:
            self.rollback()
            raise
        finally:
            self._in_transaction = False

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
        if self.victoria is not None:
            self.victoria.close()

    def use_victoria(self, cfg: Victoria | None) -> None:
        """Keep raw readings where the config says: in VictoriaMetrics (`cfg`) or in this
        database (None). Switching a database that already holds raw readings is refused:
        `sparwatt-collector copy` moves them (docs/scaling.md)."""
        with self.transaction():
            bound = timeseries.settings_of(self.db)
            if cfg is None and bound is None:
                return
            if cfg is None:
                assert bound is not None
                raise SchemaError(
                    f"{describe(self.path)} keeps its raw readings in VictoriaMetrics at "
                    f"{timeseries.where(bound)}: give [storage.victoria] in the config"
                )
            if bound is not None and timeseries.server(bound) != timeseries.server(cfg):
                # the readings there would be left behind, and members would write apart
                raise SchemaError(
                    f"{describe(self.path)} keeps its raw readings in VictoriaMetrics at "
                    f"{timeseries.where(bound)}, not at {timeseries.where(cfg)}: give that "
                    "server, or copy the database to move them"
                )
            if bound is None and self.db.execute("SELECT 1 FROM sample LIMIT 1").fetchone():
                raise SchemaError(
                    f"{describe(self.path)} keeps raw readings itself: copy the database with "
                    "`sparwatt-collector copy --victoria URL` before giving [storage.victoria]"
                )
            if cfg != bound:  # the same server; its other settings as this config gives them
                timeseries.bind(self.db, cfg)
        if self.victoria is not None:
            self.victoria.close()
        self.victoria = timeseries.open_raw(cfg)

    def settle(self) -> int | None:
        """Before a refresh reads raw readings: make those acknowledged so far readable;
        returns the time before which every mark's readings can be read (None: all)."""
        return None if self.victoria is None else self.victoria.settle()

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

    def _meter(self, site: str, gateway: str, meter: str) -> tuple[int, set[str]]:
        key = (site, gateway, meter)
        self.db.execute("INSERT OR IGNORE INTO meter (site, gateway, meter) VALUES (?, ?, ?)", key)
        meter_id = self.db.execute(
            "SELECT id FROM meter WHERE site=? AND gateway=? AND meter=?", key
        ).fetchone()[0]
        entry = self._meters.setdefault((site, gateway), {})[meter] = (meter_id, set())
        return entry

    def _layout_id(self, layout: packing.Layout) -> int:
        # another collector on this database may have added the same layout just now
        self.db.execute("INSERT OR IGNORE INTO layout (spec) VALUES (?)", (layout.key(),))
        layout_id = int(
            self.db.execute("SELECT id FROM layout WHERE spec = ?", (layout.key(),)).fetchone()[0]
        )
        self._layout_ids[layout] = layout_id
        self.layouts[layout_id] = layout
        return layout_id

    def _register(self, messages: list[wire.ReadingsMessage]) -> None:
        """Every meter and quantity these messages report for the first time, registered in
        a few statements for the whole batch: a fleet's first batch names thousands of
        meters, and a statement each would be a round trip each to PostgreSQL. The web
        lists a meter's quantities; the list is merged with the stored one, which another
        collector may have extended since this one read it (its rows are locked first, in
        key order as every writer locks them)."""
        wanted: dict[tuple[str, str, str], set[str]] = {}
        for message in messages:
            known = self._meters.get((message.site, message.gateway), {})
            for reading in message.readings:
                entry = known.get(reading.meter)
                if entry is None or not entry[1].issuperset(reading.values):
                    key = (message.site, message.gateway, reading.meter)
                    wanted.setdefault(key, set()).update(reading.values)
        keys = sorted(wanted)
        for part in _chunks(keys):
            flat = [value for key in part for value in key]
            self.db.execute(
                _rows_sql("INSERT OR IGNORE INTO meter (site, gateway, meter)", 3, len(part)),
                flat,
            )
        updates: list[tuple[str, int]] = []
        for meter_id, site, gateway, meter, stored in self._locked(
            "SELECT id, site, gateway, meter, quantities FROM meter", "site, gateway, meter",
            keys, "site, gateway, meter",
        ):  # fmt: skip
            names = set(stored.split())
            merged = names | wanted[(site, gateway, meter)]
            meters = self._meters.setdefault((site, gateway), {})
            entry = meters.get(meter)
            if entry is None:
                meters[meter] = (meter_id, merged)
            else:
                entry[1].update(merged)  # in place: a caller holds this set
            if merged != names:
                updates.append((" ".join(sorted(merged)), meter_id))
        self.db.executemany(
            "UPDATE meter SET quantities = ? WHERE id = ?", sorted(updates, key=lambda u: u[1])
        )

    def meter_key(self, meter_id: int) -> tuple[str, str, str] | None:
        """(site, gateway, meter) of a meter id."""
        if meter_id not in self._meter_keys:
            self._meter_keys = {
                known_id: (site, gateway, meter)
                for (site, gateway), meters in self._meters.items()
                for meter, (known_id, _q) in meters.items()
            }
        if meter_id not in self._meter_keys:
            # a meter another connection registered since this one loaded its cache
            row = self.db.execute(
                "SELECT site, gateway, meter FROM meter WHERE id = ?", (meter_id,)
            ).fetchone()
            if row is not None:
                self._meter_keys[meter_id] = (row[0], row[1], row[2])
        return self._meter_keys.get(meter_id)

    def meter_id(self, site: str, gateway: str, meter: str) -> int | None:
        entry = self._meters.get((site, gateway), {}).get(meter)
        return None if entry is None else entry[0]

    def new_meter(self, site: str, gateway: str, meter: str) -> int:
        """Register a meter no gateway reported (an imported metering point); returns its id."""
        return self._meter(site, gateway, meter)[0]

    # ---- writing

    def write(
        self,
        messages: list[wire.ReadingsMessage],
        quarantined: Iterable[Quarantined] = (),
        imported: bool = False,
    ) -> StoreResult:
        """Store accepted messages and quarantined ones in one transaction.

        With raw readings in VictoriaMetrics they are sent there first, inside the
        transaction: a batch is committed (and acknowledged) only once the server took it,
        and sending it again after a failed commit is harmless (the server keeps a repeated
        sample once). There `imported` readings (a file's: no seqs to tell a repeat by)
        all count as stored."""
        ordered = sorted(messages, key=_LOCK_ORDER)
        stamps_of = [m.stamps_ms for m in ordered]
        with self.transaction():
            for message in ordered:
                self.register_gateway(message.site, message.gateway)
            repeats = self._track_seqs(ordered, stamps_of)
            if self.victoria is None:
                stored, total, readings, dirty = self._write_samples(ordered, stamps_of)
            else:
                counted = set() if imported else repeats
                stored, total, readings, dirty = self._write_victoria(ordered, stamps_of, counted)
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
                "duplicates": total - stored,
                "messages": len(messages),
                "quarantined": len(q),
                "readings": readings,
            }
            for entry in q:
                name = f"quarantined.{entry.reason}"
                counts[name] = counts.get(name, 0) + 1
            self._count(counts)
        return StoreResult(stored, total - stored)

    def _write_samples(
        self, ordered: list[wire.ReadingsMessage], stamps_of: list[list[int]]
    ) -> tuple[int, int, int, dict[int, int]]:
        """Insert the readings into `sample`; returns (values stored, values given,
        readings, the meters to refresh with each one's oldest reading)."""
        params: list[int | bytes | bytearray] = []  # meter id, ts, layout id, blob, ...
        dirty: dict[int, int] = {}
        extend = params.extend
        total = 0
        for message, stamps in zip(ordered, stamps_of, strict=True):
            gateway = (message.site, message.gateway)
            plans = self._plans.get(gateway)
            if plans is None:
                plans = self._plans[gateway] = {}
            for reading, ts in zip(message.readings, stamps, strict=True):
                values = reading.values
                numbers = tuple(values.values())
                total += len(numbers)
                # a meter's float32 readings in a layout it used before: one look-up and
                # two C calls, no per-value Python work
                plan = plans.get((reading.meter, tuple(values)))
                blob: bytes | None = None
                if plan is not None:
                    meter_id, pack, unpack, layout_id = plan
                    try:
                        blob = pack(*numbers)
                    except (OverflowError, struct.error):
                        blob = None
                    if blob is not None and unpack(blob) != numbers:
                        blob = None
                if blob is None:
                    meter_id, layout_id, blob = self._pack_slowly(ordered, gateway, reading)
                # a bytearray binds without sqlite3's adapter look-up, which bytes go through
                extend((meter_id, ts, layout_id, bytearray(blob)))
                first = dirty.get(meter_id)
                if first is None or ts < first:
                    dirty[meter_id] = ts
        stored = total
        # a reading already stored (a redelivery, or twice in one batch): the stored
        # values win; only the quantities it lacked are added, and only they count
        for (meter_id, ts), kept_out in self._insert_samples(params, ordered):
            stored += self._merge_sample(meter_id, ts, kept_out) - len(kept_out)
        return stored, total, len(params) // 4, dirty

    def _write_victoria(
        self,
        ordered: list[wire.ReadingsMessage],
        stamps_of: list[list[int]],
        repeats: set[int],
    ) -> tuple[int, int, int, dict[int, int]]:
        """Send the readings to VictoriaMetrics; returns what `_write_samples` does.

        The server cannot say which samples it had already: a message at or below its
        gateway's last seq that filled no gap (`repeats`, by position) counts as duplicates.
        """
        raw = self.victoria
        assert raw is not None
        lines: list[tuple[str, str, str, int, Mapping[str, float]]] = []
        dirty: dict[int, int] = {}
        new: set[tuple[str, str, str, str]] = set()  # series new to the server
        total = stored = 0
        for k, (message, stamps) in enumerate(zip(ordered, stamps_of, strict=True)):
            site, gateway = message.site, message.gateway
            known = self._meters.setdefault((site, gateway), {})
            for reading, ts in zip(message.readings, stamps, strict=True):
                values = reading.values
                registered = known.get(reading.meter)
                if registered is None or not registered[1].issuperset(values):
                    had = set() if registered is None else registered[1]
                    new.update((site, gateway, reading.meter, q) for q in values if q not in had)
                    self._register(ordered)
                    registered = known[reading.meter]
                meter_id = registered[0]
                lines.append((site, gateway, reading.meter, ts, values))
                total += len(values)
                if k not in repeats:
                    stored += len(values)
                if ts < dirty.get(meter_id, ts + 1):
                    dirty[meter_id] = ts
        raw.write(lines)
        if raw.cfg.readable_on_ack:
            stamps = [ts for _, _, _, ts, _ in lines]
            raw.make_readable(new, (min(stamps, default=0), max(stamps, default=0)))
        return stored, total, len(lines), dirty

    def _pack_slowly(
        self, ordered: list[wire.ReadingsMessage], gateway: tuple[str, str], reading: wire.Reading
    ) -> tuple[int, int, bytes]:
        """(meter id, layout id, blob) of a reading of a meter or layout new to this cache,
        or not all float32; its meter and quantities registered first."""
        known = self._meters.setdefault(gateway, {})
        registered = known.get(reading.meter)
        if registered is None or not registered[1].issuperset(reading.values):
            self._register(ordered)
            registered = known[reading.meter]
        layout, blob = packing.pack(reading.values)
        layout_id = self._layout_ids.get(layout) or self._layout_id(layout)
        if layout.codes.count("f") == len(layout.codes):
            fmt = layout.fmt
            plan = (registered[0], fmt.pack, fmt.unpack, layout_id)
            self._plans.setdefault(gateway, {})[(reading.meter, layout.quantities)] = plan
        return registered[0], layout_id, blob

    def _insert_samples(
        self, params: list[int | bytes | bytearray], ordered: list[wire.ReadingsMessage]
    ) -> list[tuple[tuple[int, int], Mapping[str, float]]]:
        """Insert (meter id, ts, layout id, blob) rows, many per statement, one a reading of
        `ordered`; returns the key and values of each row a stored reading kept out (usually
        none).

        One statement of many rows costs about half as much per row as executemany's one
        statement per row; chunk sizes are powers of two so few statements get prepared.
        A chunk where some row was refused is undone and inserted again with RETURNING,
        which names the rows that went in.
        """
        refused: list[tuple[tuple[int, int], Mapping[str, float]]] = []
        rows: list[Mapping[str, float]] = []  # each row's values, listed at the first refusal
        for part in _chunks(range(len(params) // 4), INSERT_CHUNK_ROWS):
            size, chunk = len(part), params[4 * part[0] : 4 * (part[-1] + 1)]
            self.db.execute("SAVEPOINT chunk")
            if self.db.execute(_rows_sql(_INSERT_SAMPLES, 4, size), chunk).rowcount < size:
                self.db.execute("ROLLBACK TO chunk")
                returning = _rows_sql(_INSERT_SAMPLES, 4, size, _INSERTED)
                inserted = set(self.db.execute(returning, chunk).fetchall())
                rows = rows or [r.values for m in ordered for r in m.readings]
                for k in part:
                    key = (int(params[4 * k]), int(params[4 * k + 1]))
                    if key in inserted:
                        inserted.discard(key)  # its first row went in; a repeat did not
                    else:
                        refused.append((key, rows[k]))
            self.db.execute("RELEASE chunk")
        return refused

    def _merge_sample(self, meter_id: int, ts: int, values: Mapping[str, float]) -> int:
        """A reading already stored: add the quantities it lacked (a stored value always
        wins, as for any redelivery); returns how many values were added."""
        row = self.db.execute(
            "SELECT layout, data FROM sample WHERE meter_id = ? AND ts = ?", (meter_id, ts)
        ).fetchone()
        if row is None:
            return 0
        layout_id, blob = row
        merged, added = packing.merge((self.layouts[layout_id], blob), values)
        if merged is None:
            return 0
        layout, data = merged
        new_id = self._layout_ids.get(layout) or self._layout_id(layout)
        self.db.execute(
            "UPDATE sample SET layout = ?, data = ? WHERE meter_id = ? AND ts = ?",
            (new_id, data, meter_id, ts),
        )
        return added

    def mark_dirty(self, dirty: dict[int, int], new: bool = True) -> None:
        """Mark meters for a refresh from these times on; `new=False` puts back marks a
        refresh took and did not finish, keeping when they were last set."""
        # in key order, as every writer locks these rows (no deadlock between collectors)
        marked = now_ms() if new else 0
        self._upsert(
            "INSERT INTO dirty (meter_id, from_ms, marked_ms)",
            "ON CONFLICT (meter_id) DO UPDATE SET from_ms = CASE WHEN excluded.from_ms < "
            "dirty.from_ms THEN excluded.from_ms ELSE dirty.from_ms END, marked_ms = CASE "
            "WHEN excluded.marked_ms > dirty.marked_ms THEN excluded.marked_ms "
            "ELSE dirty.marked_ms END",
            [(meter_id, from_ms, marked) for meter_id, from_ms in sorted(dirty.items())],
        )

    def _count(self, deltas: dict[str, int]) -> None:
        self._upsert(
            "INSERT INTO counter (name, value)",
            "ON CONFLICT (name) DO UPDATE SET value = counter.value + excluded.value",
            sorted((k, v) for k, v in deltas.items() if v),
        )

    def _upsert(self, head: str, tail: str, rows: list[tuple[object, ...]]) -> None:
        """Rows of distinct keys through `head` VALUES ... `tail`, many per statement."""
        for part in _chunks(rows):
            flat = [value for row in part for value in row]
            self.db.execute(_rows_sql(head, len(part[0]), len(part), tail), flat)

    def _track_seqs(
        self, messages: list[wire.ReadingsMessage], stamps_of: list[list[int]]
    ) -> set[int]:
        """Record seq gaps per gateway; a late (reordered) message closes its part of a gap.
        Returns the positions of the messages that did neither: repeats of stored ones.

        `messages` in lock order (site, gateway, seq), each with its readings' times. A
        gap's time span runs from the newest reading before it to the oldest after it.
        The gateways' last seqs come from the database, not a cache: other collectors on
        this database store the same gateways' batches. A jump waits in `gap_pending` for
        `gap_grace_ms` (the missing batches may be in flight at another collector) before
        `promote_gaps` makes it a gap; with no grace it is a gap at once. The whole batch
        reads and writes its gateways' rows in one statement each, not two per message.
        """
        state = self._lock_gateways(sorted({(m.site, m.gateway) for m in messages}))
        moved: dict[tuple[str, str], tuple[int, int]] = {}
        gaps: list[tuple[object, ...]] = []
        detected = now_ms()
        repeats: set[int] = set()
        for k, (message, stamps) in enumerate(zip(messages, stamps_of, strict=True)):
            key = (message.site, message.gateway)
            first_ts, last_ts = min(stamps), max(stamps)
            last, last_ms = state.get(key, (None, None))
            seq = message.seq
            if last is None or seq > last:
                if last is not None and seq > last + 1:
                    gaps.append((*key, last + 1, seq - 1, last_ms, first_ts, detected))
                state[key] = moved[key] = (seq, last_ts)
                continue
            # at or below the newest seq: a late message (within this batch, a gateway's
            # messages ascend, so its gap is one an earlier batch recorded) or a redelivery
            if not any(
                self._close_seq(table, key, seq, first_ts, last_ts)
                for table in ("gap_pending", "gap")
            ):
                repeats.add(k)
        table = "gap_pending" if self.gap_grace_ms > 0 else "gap"
        self.db.executemany(
            f"INSERT INTO {table} (site, gateway, from_seq, to_seq, after_ms, before_ms, "
            "detected_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
            gaps,
        )
        self.db.executemany(
            "UPDATE gateway SET last_seq = ?, last_seen_ms = ? WHERE site = ? AND gateway = ?",
            [(seq, ts, *key) for key, (seq, ts) in sorted(moved.items())],
        )
        return repeats

    def _lock_gateways(
        self, keys: list[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[int | None, int | None]]:
        """(last seq, last seen) of these gateways as last committed, their rows ours to the
        commit: SQLite's write lock is held since BEGIN IMMEDIATE; PostgreSQL locks the rows,
        in key order as every writer does (no deadlock between collectors)."""
        rows = self._locked(
            "SELECT site, gateway, last_seq, last_seen_ms FROM gateway", "site, gateway",
            keys, "site, gateway",
        )  # fmt: skip
        return {(site, gateway): (seq, seen) for site, gateway, seq, seen in rows}

    def _locked(
        self, select: str, key: str, keys: Sequence[tuple[object, ...]], order: str
    ) -> list[tuple[Any, ...]]:
        """The rows of `select` whose `key` columns hold one of `keys` (sorted), many keys a
        statement, in `order` (the same as the keys'): the order every writer takes them
        in, so on PostgreSQL, where they are locked (FOR UPDATE) until the commit, no two
        writers deadlock."""
        lock = " FOR UPDATE" if self.dialect == "postgres" else ""
        rows: list[tuple[Any, ...]] = []
        for part in _chunks(keys):
            where, flat = _where_in(key, part)
            rows += self.db.execute(f"{select} {where} ORDER BY {order}{lock}", flat).fetchall()
        return rows

    # how long (ms) a seq jump waits in gap_pending before it is a gap; the collector sets
    # it from ingest.gap_grace_s, other writers keep 0 (a gap at once)
    gap_grace_ms: int = 0

    def _close_seq(
        self, table: str, key: tuple[str, str], seq: int, first_ts: int, last_ts: int
    ) -> bool:
        """Take a late message's seq out of the missing range in `table` (gap or
        gap_pending) that holds it, splitting the range; False if none holds it."""
        # taken out in one statement: `promote_gaps` elsewhere may be moving it (on
        # PostgreSQL this waits for that, then finds it in `gap`)
        row = self.db.execute(
            f"DELETE FROM {table} WHERE site=? AND gateway=? AND from_seq<=? AND to_seq>=? "
            "RETURNING from_seq, to_seq, after_ms, before_ms, detected_ms",
            (*key, seq, seq),
        ).fetchone()
        if row is None:
            return False
        lo, hi, after_ms, before_ms, detected = row
        parts = [(lo, seq - 1, after_ms, first_ts), (seq + 1, hi, last_ts, before_ms)]
        # the parts keep their detection time: a split does not restart the grace
        self.db.executemany(
            f"INSERT INTO {table} (site, gateway, from_seq, to_seq, after_ms, before_ms, "
            "detected_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(*key, a, b, c, d, detected) for a, b, c, d in parts if a <= b],
        )
        return True

    def promote_gaps(self, now: int | None = None) -> int:
        """Make the seq ranges missing for longer than the grace gaps; returns how many.

        Safe from any number of collectors at once: each range is deleted from
        `gap_pending` by one of them (a row another is deleting is waited for, then gone)
        and that one adds exactly what it deleted.
        """
        cutoff = (now_ms() if now is None else now) - self.gap_grace_ms
        with self.transaction():
            moved = self.db.execute(
                "DELETE FROM gap_pending WHERE detected_ms <= ? RETURNING site, gateway, "
                "from_seq, to_seq, after_ms, before_ms, detected_ms",
                (cutoff,),
            ).fetchall()
            self.db.executemany(
                "INSERT INTO gap (site, gateway, from_seq, to_seq, after_ms, before_ms, "
                "detected_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                sorted(moved),
            )
        return len(moved)

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
            _STAT,
            sorted(
                (k, v if not isinstance(v, str) else None, v if isinstance(v, str) else None, now)
                for k, v in values.items()
            ),
        )

    def prune(self, retention_days: float, now: float | None = None, lookback_ms: int = 0) -> int:
        """Drop raw readings older than the retention (and old quarantine entries); returns
        how many values went.

        Readings a meter's rollups still need stay: nothing at or after its pending refresh
        (less `lookback_ms`, the counter context a refresh reads before it) is dropped. Each
        meter remembers up to when its raw readings are gone, so a later refresh never
        replaces a final rollup with one computed from what is left.
        """
        cutoff = int(((time.time() if now is None else now) - retention_days * 86400) * 1000)
        cutoff = quarter_floor(cutoff)
        pending = dict(self.db.execute("SELECT meter_id, from_ms FROM dirty").fetchall())
        pruned = 0
        # VictoriaMetrics drops raw readings by its own retention, which docs/scaling.md
        # sets beyond the oldest reading ingest accepts
        meters = [] if self.victoria is not None else self.db.execute("SELECT id FROM meter")
        with self.transaction():
            for (meter_id,) in list(meters):
                limit = cutoff
                if meter_id in pending:
                    limit = min(limit, quarter_floor(pending[meter_id]) - lookback_ms)
                gone = self.db.execute(
                    "DELETE FROM sample WHERE meter_id = ? AND ts < ? RETURNING layout",
                    (meter_id, limit),
                ).fetchall()
                if gone:
                    pruned += sum(len(self.layouts[lid].quantities) for (lid,) in gone)
                    self.db.execute(
                        f"UPDATE meter SET pruned_until_ms = {_max_with('pruned_until_ms')} "
                        "WHERE id = ?",
                        (limit, limit, meter_id),
                    )
            self.db.execute("DELETE FROM quarantine WHERE received_ms < ?", (cutoff,))
            self._count({"pruned": pruned})
        return pruned

    # ---- intervals

    def dirty_meters(self) -> list[int]:
        """Ids of the meters marked for a refresh, in key order (nothing taken)."""
        return [m for (m,) in self.db.execute("SELECT meter_id FROM dirty ORDER BY meter_id")]

    def take_dirty(
        self, meter_ids: list[int] | None = None, settled_ms: int | None = None
    ) -> list[DirtyMeter]:
        """Unmark these meters (default: all) and say from when each was stale. Within the
        caller's transaction, the marks come back if it is undone.

        `settled_ms` (from `settle`): a meter marked after it is returned, but stays marked
        as it was, since its newest readings may not be readable yet."""
        # a meter another collector marks meanwhile stays marked. On PostgreSQL the marks
        # are locked in meter order first, as ingest marks them: a DELETE locks rows in the
        # order it finds them, and ingest holding one while waiting for another would
        # deadlock with it
        lock = self.dialect == "postgres"
        rows: list[tuple[int, ...]] = []
        returning = "RETURNING meter_id, from_ms" + ("" if settled_ms is None else ", marked_ms")
        with self.transaction():
            if meter_ids is None:
                if lock:
                    self.db.execute("SELECT meter_id FROM dirty ORDER BY meter_id FOR UPDATE")
                rows = self.db.execute(f"DELETE FROM dirty {returning}").fetchall()
            keys = [(m,) for m in sorted(meter_ids or ())]
            if lock:
                self._locked("SELECT meter_id FROM dirty", "meter_id", keys, "meter_id")
            for part in _chunks(keys):
                where, flat = _where_in("meter_id", part)
                rows += self.db.execute(f"DELETE FROM dirty {where} {returning}", flat).fetchall()
            if settled_ms is not None:
                self._upsert(
                    "INSERT INTO dirty (meter_id, from_ms, marked_ms)",
                    "",
                    sorted(row for row in rows if row[2] > settled_ms),
                )
        return sorted(DirtyMeter(row[0], row[1]) for row in rows)

    def readings(self, meter_id: int, from_ms: int) -> packing.ReadingMatrix:
        """One meter's raw readings from `from_ms`, oldest first, as a matrix: what the
        refresh rolls up."""
        if self.victoria is not None:
            return next(self.readings_of({meter_id: from_ms}))[1]
        rows = self.db.execute(
            "SELECT ts, layout, data FROM sample WHERE meter_id = ? AND ts >= ? ORDER BY ts",
            (meter_id, from_ms),
        ).fetchall()
        return packing.matrix(rows, self.layouts)

    def readings_of(self, starts: Mapping[int, int]) -> Iterator[tuple[int, packing.ReadingMatrix]]:
        """(meter id, `readings` from its start) for each meter in `starts`, in its order:
        read as they are asked for, or with VictoriaMetrics all at the first, a request for
        many meters instead of one each."""
        if self.victoria is None:
            for meter_id, from_ms in starts.items():
                yield meter_id, self.readings(meter_id, from_ms)
            return
        keys = {meter_id: self.meter_key(meter_id) for meter_id in starts}
        found = self.victoria.matrices({key: starts[m] for m, key in keys.items() if key})
        for meter_id, key in keys.items():
            assert key is not None, meter_id
            yield meter_id, found[key]

    def pruned_until(self, meter_id: int) -> int | None:
        """Up to when this meter's raw readings have been pruned (None: never); with
        VictoriaMetrics, up to where its retention keeps them."""
        if self.victoria is not None:
            return quarter_floor(now_ms() - self.victoria.retention_ms())
        row = self.db.execute(
            "SELECT pruned_until_ms FROM meter WHERE id = ?", (meter_id,)
        ).fetchone()
        return None if row is None else row[0]

    def put_intervals(
        self, meter_id: int, rows: list[IntervalRow], final_before_ms: int | None = None
    ) -> None:
        """Replace a meter's interval rows; those starting before `final_before_ms` are only
        added where none is stored (their raw readings are partly gone)."""
        final = -(2**62) if final_before_ms is None else final_before_ms
        keep: list[tuple[object, ...]] = []
        replace: list[tuple[object, ...]] = []
        for start, kwh, estimated, export, export_estimated, mean_w, max_w in rows:
            # flags as integers: PostgreSQL takes no bool into an integer column
            row = (meter_id, start, kwh, int(estimated), export, int(export_estimated))
            (keep if start < final else replace).append((*row, mean_w, max_w))
        with self.transaction():
            self.db.executemany(f"INSERT OR IGNORE {_into(*_INTERVALS)}", keep)
            self.db.executemany(_replace(*_INTERVALS, "meter_id, start_ms"), replace)

    def put_rollups(
        self,
        meter_id: int,
        rows: Iterable[tuple[int, str, bytes]],
        final_before_ms: int | None = None,
    ) -> None:
        """Store (start ms, quantity list, blob) rollups of one meter, as `put_intervals`."""
        final = -(2**62) if final_before_ms is None else final_before_ms
        keep: list[tuple[int, int, int, bytes]] = []
        replace: list[tuple[int, int, int, bytes]] = []
        for start, names, blob in rows:
            layout_id = self.rollup_layout_id("15m:" + names)
            (keep if start < final else replace).append((meter_id, start, layout_id, blob))
        with self.transaction():
            self.db.executemany(f"INSERT OR IGNORE {_into(*_ROLLUPS)}", keep)
            self.db.executemany(_replace(*_ROLLUPS, "meter_id, start_ms"), replace)

    def set_meter_source(
        self, meter_id: int, source: str, resolution_ms: int, quantity: str
    ) -> None:
        """Record where a meter's history came from when no gateway sent it (an imported
        metering point), the coarsest resolution it came at, and a quantity it has."""
        # replace() finds the quantity where SQLite's instr would (PostgreSQL has strpos)
        self.db.execute(
            f"UPDATE meter SET source = ?, resolution_ms = {_max_with('resolution_ms')}, "
            "quantities = CASE WHEN replace(quantities, ?, '') <> quantities THEN quantities "
            "ELSE trim(quantities || ' ' || ?) END WHERE id = ?",
            (source, resolution_ms, resolution_ms, quantity, quantity, meter_id),
        )

    def put_energy_run(
        self,
        meter_id: int,
        layout_id: int,
        first_ms: int,
        numbers: str,
        scale: float,
        estimated: bytes,
        rollups: bytes,
        flagged: bool = False,
    ) -> int:
        """Add a run of one meter's consecutive quarter hours from `first_ms`: interval
        energy and its rollups (blobs of layout `layout_id`, end to end). A stored value
        is kept, except that a measured one replaces an estimate. Returns how many
        intervals changed. The caller holds the transaction.

        `numbers` is a JSON array, one number per quarter, that SQLite unrolls itself (a
        statement per run, not per row): the kWh times `scale`; when `flagged`, whole
        numbers, doubled, plus one where estimated (cheaper to unroll than `estimated`,
        which has a byte per quarter, 1 where estimated).
        """
        if self.dialect == "postgres":
            energy, flags = _unroll(numbers, scale, estimated, flagged)
            return self.put_energy_rows(meter_id, layout_id, first_ms, energy, flags, rollups)
        count = len(estimated)
        args: dict[str, object] = {
            "meter": meter_id,
            "first": first_ms,
            "last": first_ms + (count - 1) * QUARTER_MS,
            "step": QUARTER_MS,
            "numbers": numbers,
            "scale": scale,
            "flags": estimated,
            "blobs": rollups,
            "layout": layout_id,
            "size": len(rollups) // max(count, 1),
        }
        # a run stored already (an import run again) is read, not upserted row by row: two
        # range reads cost a tenth of that. Nothing changes when every quarter is there
        # and no stored estimate meets a measured value.
        on_grid = (
            "meter_id = :meter AND start_ms BETWEEN :first AND :last "
            "AND (start_ms - :first) % :step = 0"
        )
        measured_now = "substr(:flags, (start_ms - :first) / :step + 1, 1) = x'00'"
        intervals = self.db.execute(
            f"SELECT count(*), count(*) FILTER (WHERE estimated AND {measured_now}) "
            f"FROM interval_energy WHERE {on_grid}",
            args,
        ).fetchone()
        rollups_stored = self.db.execute(
            "SELECT count(*), count(*) FILTER (WHERE substr(data, :size, 1) = x'01' "
            f"AND layout = :layout AND {measured_now}) FROM rollup WHERE {on_grid}",
            args,
        ).fetchone()
        if intervals == rollups_stored == (count, 0):
            return 0
        kwh, flag = (
            ("(value >> 1) / :scale", "value & 1")
            if flagged
            else ("value / :scale", "substr(:flags, key + 1, 1) = x'01'")
        )
        changed = self.db.execute(
            "INSERT INTO interval_energy (meter_id, start_ms, energy_kwh, estimated, "
            f"mean_power_w, max_power_w) SELECT :meter, :first + key * :step, {kwh}, "
            f"{flag}, {kwh} * 3600000000.0 / :step, NULL "
            "FROM json_each(:numbers) WHERE true "
            "ON CONFLICT (meter_id, start_ms) DO UPDATE SET energy_kwh = excluded.energy_kwh, "
            "estimated = 0, mean_power_w = excluded.mean_power_w "
            "WHERE interval_energy.estimated AND NOT excluded.estimated",
            args,
        ).rowcount
        self.db.execute(
            "INSERT INTO rollup (meter_id, start_ms, layout, data) "
            "SELECT :meter, :first + key * :step, :layout, "
            "substr(:blobs, key * :size + 1, :size) FROM json_each(:numbers) WHERE true "
            "ON CONFLICT (meter_id, start_ms) DO UPDATE SET data = excluded.data "
            "WHERE rollup.layout = excluded.layout AND substr(rollup.data, :size, 1) = x'01' "
            "AND substr(excluded.data, :size, 1) = x'00'",
            args,
        )
        return int(changed)

    def put_energy_rows(
        self,
        meter_id: int,
        layout_id: int,
        first_ms: int,
        kwh: list[float],
        estimated: list[int],
        rollups: bytes,
    ) -> int:
        """`put_energy_run` on PostgreSQL, with the run's kWh and estimated flags (1 where
        estimated) as lists: the server unnests them as arrays, as SQLite does the JSON.

        Every quarter goes to the upserts, which change what they would after the check
        SQLite makes first (a run stored already changes nothing).
        """
        count = len(kwh)
        size = len(rollups) // max(count, 1)
        starts = [first_ms + k * QUARTER_MS for k in range(count)]
        # as SQLite computes it: kWh * 3600000000.0 / step, in doubles
        means = [v * 3600000000.0 / QUARTER_MS for v in kwh]
        changed = self.db.execute(
            "INSERT INTO interval_energy (meter_id, start_ms, energy_kwh, estimated, "
            "mean_power_w, max_power_w) SELECT ?, start_ms, kwh, flag, mean_w, NULL "
            "FROM unnest(?::bigint[], ?::float8[], ?::bigint[], ?::float8[]) "
            "AS run (start_ms, kwh, flag, mean_w) "
            "ON CONFLICT (meter_id, start_ms) DO UPDATE SET energy_kwh = excluded.energy_kwh, "
            "estimated = 0, mean_power_w = excluded.mean_power_w "
            "WHERE interval_energy.estimated <> 0 AND excluded.estimated = 0",
            (meter_id, starts, kwh, estimated, means),
        ).rowcount
        blobs = [rollups[k * size : (k + 1) * size] for k in range(count)]
        # the flag is a rollup's last byte (rollup.pack's counter layout)
        self.db.execute(
            "INSERT INTO rollup (meter_id, start_ms, layout, data) "
            "SELECT ?, start_ms, ?, data FROM unnest(?::bigint[], ?::bytea[]) "
            "AS run (start_ms, data) "
            "ON CONFLICT (meter_id, start_ms) DO UPDATE SET data = excluded.data "
            "WHERE rollup.layout = excluded.layout AND get_byte(rollup.data, ?) = 1 "
            "AND get_byte(excluded.data, ?) = 0",
            (meter_id, layout_id, starts, blobs, size - 1, size - 1),
        )
        return int(changed)

    @functools.cached_property
    def _rollup_layouts(self) -> dict[str, int]:
        return dict(
            self.db.execute("SELECT spec, id FROM layout WHERE spec LIKE '15m:%'").fetchall()
        )

    def rollup_layout_id(self, spec: str) -> int:
        """The id of a rollup layout ('15m:' and its quantity list), added when new."""
        return self._rollup_layouts.get(spec) or self._rollup_layout(spec)

    def _rollup_layout(self, spec: str) -> int:
        self.db.execute("INSERT OR IGNORE INTO layout (spec) VALUES (?)", (spec,))
        layout_id = int(
            self.db.execute("SELECT id FROM layout WHERE spec = ?", (spec,)).fetchone()[0]
        )
        self._rollup_layouts[spec] = layout_id
        return layout_id

    # ---- web: API tokens, opportunities and alerts

    def add_token(
        self, name: str, role: str, sites: list[str], digest: str, expires_ms: int | None = None
    ) -> int:
        """Store a token by its hash only; returns its id. None: valid until revoked."""
        (token_id,) = self.db.execute(
            "INSERT INTO token (name, role, sites, hash, created_ms, expires_ms) "
            "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (name, role, json.dumps(sorted(sites)), digest, now_ms(), expires_ms),
        ).fetchone()
        return int(token_id)

    def revoke_token(self, token_id: int) -> bool:
        """Revoke a live token; False if there is no such token or it was revoked before."""
        return bool(
            self.db.execute(
                "UPDATE token SET revoked_ms=? WHERE id=? AND revoked_ms IS NULL",
                (int(time.time() * 1000), token_id),
            ).rowcount
        )

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
            _OPPORTUNITY,
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
            _ALERT,
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
                _ALERT_STATE,
                (1, json.dumps(state), updated_ms),
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
        return bool(self.db.execute("DELETE FROM silence WHERE id = ?", (silence_id,)).rowcount)

    # ---- verified savings: measures and outdoor temperature

    def put_measure(self, row: MeasureRow) -> None:
        """Add a measure, or replace the one with its id."""
        self.db.execute(
            _MEASURE,
            (
                row.id,
                row.site,
                json.dumps(row.meters),
                row.kind,
                row.title,
                row.installed_from.isoformat(),
                None if row.installed_to is None else row.installed_to.isoformat(),
                row.investment_dkk,
                row.expected_kwh_year,
                row.opportunity_id,
                row.model,
                json.dumps(
                    [
                        {"start": e.start.isoformat(), "end": e.end.isoformat(), "label": e.label}
                        for e in row.exclusions
                    ]
                ),
                row.note,
                row.created_ms,
                row.updated_ms,
            ),
        )

    def remove_measure(self, measure_id: str) -> bool:
        """Delete a measure; False when there is none with that id."""
        return bool(self.db.execute("DELETE FROM measure WHERE id = ?", (measure_id,)).rowcount)

    def put_temperatures(self, site: str, start_ms: Iterable[int], celsius: Iterable[float]) -> int:
        """Store a site's hourly outdoor temperatures (arrays of equal length) in one
        transaction; returns how many were new or changed (the same values again change
        nothing)."""
        with self.transaction():
            # <>, not IS NOT: both sides are never NULL, and PostgreSQL's IS NOT takes none
            changed = self.db.executemany(
                "INSERT INTO temperature (site, start_ms, celsius) VALUES (?, ?, ?) "
                "ON CONFLICT (site, start_ms) DO UPDATE SET celsius = excluded.celsius "
                "WHERE temperature.celsius <> excluded.celsius",
                [(site, int(t), float(c)) for t, c in zip(start_ms, celsius, strict=True)],
            ).rowcount
        return int(changed)
