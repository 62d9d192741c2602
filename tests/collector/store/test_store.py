"""The store, on SQLite and PostgreSQL: idempotent writes, seq gaps with their time span,
retention, migrations."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from collector import store as store_module
from collector.intervals.energy import IntervalPolicy
from collector.intervals.refresh import refresh_intervals
from collector.store import (
    DirtyMeter,
    GapRow,
    IntervalRow,
    Quarantined,
    Reader,
    SiteEnergyInterval,
    Store,
)
from collector.store import schema as store_schema
from collector.store.sql import Target, is_postgres
from sparwatt import wire
from tests.support.messages import NOW_MS, message

S = 1000  # ms


def test_redelivered_and_overlapping_messages_store_each_reading_once(db_target: Target) -> None:
    store = Store(db_target)
    first = message(
        1,
        [
            ("m1", NOW_MS, {"power_w": 1.0, "energy_import_kwh": 5.0}),
            ("m2", NOW_MS, {"power_w": 2.0}),
        ],
    )
    # the same meter/ts/quantity again, inside another batch, plus one new value
    overlap = message(2, [("m1", NOW_MS, {"power_w": 99.0, "voltage_l1_v": 230.0})])

    assert store.write([first]) == store_module.StoreResult(stored=3, duplicates=0)
    assert store.write([first, overlap]) == store_module.StoreResult(stored=1, duplicates=4)

    with Reader(store.path) as reader:
        rows = sorted((m, q, v) for _g, m, q, _ts, v in reader.raw("site-a", 0, 2**62))
        assert rows == [
            ("m1", "energy_import_kwh", 5.0),
            ("m1", "power_w", 1.0),
            ("m1", "voltage_l1_v", 230.0),
            ("m2", "power_w", 2.0),
        ]
        counters = reader.counters()
    assert (counters["stored"], counters["duplicates"], counters["messages"]) == (4, 4, 3)


def test_same_meter_and_time_on_another_gateway_or_site_is_another_reading(
    db_target: Target,
) -> None:
    store = Store(db_target)
    values = {"power_w": 1.0}
    result = store.write(
        [
            message(1, [("m1", NOW_MS, values)]),
            message(1, [("m1", NOW_MS, values)], gateway="gw2"),
            message(1, [("m1", NOW_MS, values)], site="site-b"),
        ]
    )
    assert result.stored == 3


def test_timestamps_are_stored_to_the_exact_millisecond(db_target: Target) -> None:
    store = Store(db_target)
    # .123 s and friends are not exact in binary floating point
    stamps = [NOW_MS + k for k in (1, 123, 999, 7_001, 86_400_123)]
    store.write([message(1, [("m1", ts, {"power_w": 1.0}) for ts in stamps])])
    with Reader(store.path) as reader:
        assert [ts for *_x, ts, _v in reader.raw("site-a", 0, 2**62)] == stamps


def test_seq_jump_records_a_gap_with_its_time_span_and_late_messages_split_it(
    db_target: Target,
) -> None:
    store = Store(db_target)

    def batch(seq: int) -> wire.ReadingsMessage:
        # readings of batch n at n*10 s and n*10 s + 5 s
        return message(
            seq,
            [
                ("m1", NOW_MS + seq * 10 * S, {"power_w": 1.0}),
                ("m1", NOW_MS + seq * 10 * S + 5 * S, {"power_w": 1.0}),
            ],
        )

    store.write([batch(1), batch(2), batch(7)])
    with Reader(store.path) as reader:
        assert reader.gaps() == [
            GapRow(
                site="site-a",
                gateway="gw1",
                from_seq=3,
                to_seq=6,
                after_ms=NOW_MS + 25 * S,
                before_ms=NOW_MS + 70 * S,
            )
        ]
    store.write([batch(4)])  # late: leaves 3 and 5-6 missing
    store.write([batch(4)])  # a redelivery changes nothing
    with Reader(store.path) as reader:
        spans = [(g.from_seq, g.to_seq, g.after_ms, g.before_ms) for g in reader.gaps()]
    assert spans == [
        (3, 3, NOW_MS + 25 * S, NOW_MS + 40 * S),
        (5, 6, NOW_MS + 45 * S, NOW_MS + 70 * S),
    ]
    store.write([batch(3), batch(5), batch(6)])
    with Reader(store.path) as reader:
        assert reader.gaps() == []


def test_gap_tracking_survives_a_restart(db_target: Target) -> None:
    Store(db_target).write([message(5, [("m1", NOW_MS, {"power_w": 1.0})])])
    store = Store(db_target)
    store.write([message(8, [("m1", NOW_MS + 60 * S, {"power_w": 1.0})])])
    with Reader(store.path) as reader:
        assert [(g.from_seq, g.to_seq, g.after_ms) for g in reader.gaps()] == [(6, 7, NOW_MS)]


def test_quarantine_keeps_reason_capped_payload_and_per_reason_counts(db_target: Target) -> None:
    store = Store(db_target)
    store.write(
        [],
        [
            Quarantined("t/1", "invalid_json", "payload: EOF", b"{", 1),
            Quarantined("t/2", "not_finite", "readings.0.values.power_w", b"x" * 16, 10_000_000),
            Quarantined("t/3", "invalid_json", "payload: EOF", b"", 0),
        ],
    )
    with Reader(store.path) as reader:
        assert reader.quarantine_by_reason() == {"invalid_json": 2, "not_finite": 1}
        newest = reader.quarantine(2, with_payload=True)
    assert [(q.topic, q.reason, q.size) for q in newest] == [
        ("t/3", "invalid_json", 0),
        ("t/2", "not_finite", 10_000_000),
    ]
    assert newest[1].payload == b"x" * 16


def test_prune_drops_old_raw_readings_but_keeps_intervals(db_target: Target) -> None:
    store = Store(db_target)
    now = time.time()
    old, recent = int((now - 40 * 86400) * 1000), int((now - 10 * 86400) * 1000)
    store.write([message(1, [("m1", old, {"power_w": 1.0}), ("m1", recent, {"power_w": 2.0})])])
    meter_id = store.meter_id("site-a", "gw1", "m1")
    assert meter_id is not None
    store.put_intervals(
        meter_id, [IntervalRow(old // 900_000 * 900_000, 1.0, False, None, False, None, None)]
    )

    # the readings' rollups are not computed yet: nothing may go
    assert store.prune(35, now=now) == 0
    refresh_intervals(store, IntervalPolicy())
    assert store.prune(35, now=now) == 1

    with Reader(store.path) as reader:
        assert [r.value for r in reader.raw("site-a", 0, 2**62)] == [2.0]
        # the old interval outlives its raw reading
        assert [i.mean_power_w for i in reader.intervals("site-a", 0, 2**62)] == [1.0, 2.0]
        (old_rollup,) = reader.rollups(meter_id, 0, recent // 900_000 * 900_000)
        assert old_rollup[1]["power_w"].mean == 1.0  # type: ignore[union-attr]


def test_a_version_1_database_is_migrated_at_start(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    db.executescript(store_schema._MIGRATIONS[1])
    db.execute("INSERT INTO schema_version VALUES (1)")
    db.execute("INSERT INTO meter (id, site, gateway, meter) VALUES (1, 'site-a', 'gw1', 'm1')")
    db.execute("INSERT INTO interval_energy VALUES (1, 0, 2.5, 0, 10.0, 12.0)")
    db.close()

    store = Store(path)

    assert store.schema_version() == store_module.SCHEMA_VERSION
    with Reader(path) as reader:
        assert list(reader.energy_intervals("site-a", 0, 1)) == [
            SiteEnergyInterval("gw1", "m1", 0, 2.5, 0, None, 0, 10.0, 12.0)
        ]


def test_a_database_from_a_newer_collector_is_refused(db_target: Target) -> None:
    Store(db_target).db.execute("INSERT INTO schema_version VALUES (999)")
    with pytest.raises(RuntimeError, match="newer than this collector"):
        Store(db_target)


def test_an_open_reader_does_not_block_the_writer(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    store.write([message(1, [("m1", NOW_MS, {"power_w": 1.0})])])
    with Reader(store.path) as reader:
        reader.db.execute("BEGIN")
        assert reader.reading_count() == 1  # holds a read snapshot from here on

        store.db.execute("PRAGMA busy_timeout=0")  # any wait would now be an error
        store.write([message(2, [("m1", NOW_MS + S, {"power_w": 2.0})])])

        assert reader.reading_count() == 1
        reader.db.execute("COMMIT")
        assert reader.reading_count() == 2


def poison_meter(store: Store) -> type[Exception]:
    """Make inserting a meter named 'poison' fail; returns the error it fails with."""
    if not is_postgres(store.path):
        store.db.execute(
            "CREATE TRIGGER poison BEFORE INSERT ON meter WHEN NEW.meter = 'poison' "
            "BEGIN SELECT RAISE(ABORT, 'poisoned meter'); END"
        )
        return sqlite3.IntegrityError
    from psycopg import errors

    store.db.execute(
        "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.meter = 'poison' THEN RAISE EXCEPTION 'poisoned meter'; END IF; "
        "RETURN NEW; END $$"
    )
    store.db.execute(
        "CREATE TRIGGER poison BEFORE INSERT ON meter FOR EACH ROW EXECUTE FUNCTION poison()"
    )
    return errors.RaiseException


def test_a_failed_write_rolls_back_everything_and_the_store_stays_usable(
    db_target: Target,
) -> None:
    store = Store(db_target)
    poisoned = poison_meter(store)
    good = message(1, [("m1", NOW_MS, {"power_w": 1.0})])
    bad = message(2, [("poison", NOW_MS, {"power_w": 1.0})])

    with pytest.raises(poisoned, match="poisoned"):
        store.write([good, bad])

    with Reader(store.path) as reader:
        assert reader.reading_count() == 0
        assert reader.counters() == {}
    store.write([good])
    with Reader(store.path) as reader:
        assert reader.reading_count() == 1
        assert reader.gateways()[0].last_seq == 1


def test_a_full_disk_fails_with_its_own_error_and_no_uncommitted_id_is_reused(
    tmp_path: Path,
) -> None:
    """SQLite undoes the transaction itself on SQLITE_FULL; the ids cached in it must go."""
    store = Store(tmp_path / "c.db")
    store.write([message(1, [("a", NOW_MS, {"power_w": 1.0})])])
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full
    big = message(2, [("b", NOW_MS + i, {"power_w": 2.0}) for i in range(2000)])
    with pytest.raises(sqlite3.OperationalError, match="full"):
        store.write([big])
    store.db.execute("PRAGMA max_page_count = 1000000")  # space again
    store.write([message(3, [("c", NOW_MS, {"voltage_l1_v": 230.0})])])
    store.write([big])  # the collector retries the batch
    with Reader(tmp_path / "c.db") as reader:
        latest = {(r.meter, r.quantity): r.value for r in reader.latest("site-a")}
        assert reader.reading_count() == 1 + 1 + 2000
    assert latest == {("a", "power_w"): 1.0, ("b", "power_w"): 2.0, ("c", "voltage_l1_v"): 230.0}
    store.close()


def test_a_transaction_left_open_by_a_failed_statement_does_not_block_later_writes(
    db_target: Target,
) -> None:
    store = Store(db_target)
    store.db.execute("BEGIN")  # as SQLite leaves it when it undoes only the failed statement
    store.db.execute("INSERT INTO counter VALUES ('half-done', 1)")
    assert store.write([message(1, [("a", NOW_MS, {"power_w": 1.0})])]).stored == 1
    meter_id = store.meter_id("site-a", "gw1", "a")
    assert meter_id is not None
    assert store.take_dirty() == [DirtyMeter(meter_id, NOW_MS)]
    with Reader(db_target) as reader:
        assert "half-done" not in reader.counters()
        assert reader.reading_count() == 1
    store.close()


def test_a_fleets_first_batch_registers_its_meters_in_a_few_statements(tmp_path: Path) -> None:
    """300 new meters (more than one statement's rows) with their quantities; a later
    reading with one more quantity extends only its meter's list."""
    store = Store(tmp_path / "c.db")
    statements: list[str] = []
    assert isinstance(store.db, sqlite3.Connection)
    store.db.set_trace_callback(statements.append)
    names = [f"m{k:03d}" for k in range(300)]
    two = {"power_w": 1.0, "voltage_l1_v": 230.0}
    store.write([message(1, [(m, NOW_MS, two) for m in names])])
    # not a registration and a look-up per meter: one of each per part (256 + 32 + 8 + 4)
    registering = [s for s in statements if s.startswith("INSERT OR IGNORE INTO meter")]
    looking_up = [s for s in statements if s.startswith("SELECT id, site, gateway, meter")]
    assert (len(registering), len(looking_up)) == (4, 4)
    store.db.set_trace_callback(None)
    store.write([message(2, [("m005", NOW_MS + 1000, {**two, "current_l1_a": 2.0})])])
    store.close()
    with Reader(tmp_path / "c.db") as reader:
        meters = {m.meter: m.quantities for m in reader.meters("site-a")}
    assert sorted(meters) == names
    assert meters["m005"] == ["current_l1_a", "power_w", "voltage_l1_v"]
    assert all(q == ["power_w", "voltage_l1_v"] for m, q in meters.items() if m != "m005")


def test_the_writer_syncs_each_commit_and_keeps_statement_journals_in_memory(
    tmp_path: Path,
) -> None:
    """WAL with a full sync: a commit (and so an ack) survives a power cut. The savepoints
    a batch's inserts run in journal to memory: a temporary file would take a write call
    for every few hundred bytes of it."""
    s = Store(tmp_path / "w.db")
    pragmas = {
        name: s.db.execute(f"PRAGMA {name}").fetchone()[0]
        for name in ("journal_mode", "synchronous", "temp_store")
    }
    assert pragmas == {"journal_mode": "wal", "synchronous": 2, "temp_store": 2}
    s.close()
