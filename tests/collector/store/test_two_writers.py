"""A collector writes through two connections (the ingest loop's and the evaluation jobs'),
and several collectors may share one PostgreSQL database.

SQLite lets one write transaction run at a time, PostgreSQL one per row; the other waits
instead of failing, so a savings scan or alert round saving its results never costs
ingest a batch. Collectors storing the same gateway's batches take turns on its row.
"""

from __future__ import annotations

import threading
import time
from contextlib import closing

from collector.store import Reader, Store
from collector.store.schema import connect
from collector.store.sql import Target
from devtools.postgres import Postgres
from sparwatt import wire
from tests.support.messages import NOW_MS, message


def test_a_second_writer_waits_for_the_first_and_both_commit(db_target: Target) -> None:
    ingest, evaluation = Store(db_target), Store(db_target)
    holding = threading.Event()
    done: list[float] = []

    def evaluation_job() -> None:
        holding.wait(5)
        started = time.monotonic()
        evaluation.set_stats({"scan_seconds": 1.5})  # a write while ingest holds the lock
        done.append(time.monotonic() - started)

    job = threading.Thread(target=evaluation_job)
    job.start()
    try:
        with ingest.transaction():
            # the row the job writes too: PostgreSQL locks rows, not the database
            ingest.set_stats({"ingest_readings_per_s": 10.0, "scan_seconds": 0.0})
            holding.set()
            time.sleep(0.5)  # the evaluation write must wait out this transaction
        job.join(10)
        assert done, "the second writer never finished"
        assert done[0] >= 0.3
        with Reader(db_target) as reader:
            stats = reader.stats()
        assert stats["scan_seconds"].value == 1.5
        assert stats["ingest_readings_per_s"].value == 10.0
    finally:
        ingest.close()
        evaluation.close()


def batch(seq: int, gateway: str) -> wire.ReadingsMessage:
    """Batch n of a gateway: three meters read at n s and n s + 0.5 s."""
    return message(
        seq,
        [
            (meter, NOW_MS + seq * 1000 + half, {"power_w": float(seq), "voltage_l1_v": 230.0})
            for meter in ("m1", "m2", "m3")
            for half in (0, 500)
        ],
        gateway=gateway,
    )


def test_two_stores_on_postgres_storing_overlapping_batches_store_each_value_once(
    postgres: Postgres,
) -> None:
    """Two collectors get overlapping runs of two gateways' batches (a redelivery after a
    reconnect goes to the other one), a few per transaction and in their own order, at the
    same time: every value is stored once, no seq is left missing, and neither waits for
    the other forever (a deadlock)."""
    url = postgres.create_database("two_stores_overlap")
    gateways = ("gw1", "gw2")
    Store(url).write([batch(1, gw) for gw in gateways])  # gateways, meters and layout exist
    shares = [list(range(2, 121)), list(range(60, 181))]
    stores = [Store(url), Store(url)]
    for store in stores:
        store.gap_grace_ms = 60_000
    go = threading.Barrier(2)
    failures: list[BaseException] = []

    def run(store: Store, seqs: list[int], order: int) -> None:
        go.wait(10)
        try:
            for k in range(0, len(seqs), 4):
                # one store gets gw1's batches first, the other gw2's, and newest first
                chunk = [batch(seq, gw) for seq in seqs[k : k + 4] for gw in gateways]
                store.write(chunk[::order])
        except BaseException as exc:  # reported by the test
            failures.append(exc)

    threads = [
        threading.Thread(target=run, args=(store, seqs, order))
        for store, seqs, order in zip(stores, shares, (1, -1), strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []
    for store in stores:
        store.close()

    overlap = 120 - 60 + 1
    per_batch = 3 * 2 * 2  # meters x readings x quantities
    with closing(connect(url)) as db:
        counters = dict(db.execute("SELECT name, value FROM counter").fetchall())
        (samples,) = db.execute("SELECT count(*) FROM sample").fetchone()
        (gaps,) = db.execute("SELECT count(*) FROM gap").fetchone()
        (pending,) = db.execute("SELECT count(*) FROM gap_pending").fetchone()
        last_seqs = db.execute("SELECT last_seq FROM gateway").fetchall()
    assert samples == 2 * 180 * 3 * 2
    assert (counters["stored"], counters["duplicates"]) == (
        2 * 180 * per_batch,
        2 * overlap * per_batch,
    )
    assert counters["messages"] == 2 * (1 + len(shares[0]) + len(shares[1]))
    assert (gaps, pending, last_seqs) == (0, 0, [(180,), (180,)])
