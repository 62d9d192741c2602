"""A collector writes through two connections: the ingest loop's and the evaluation jobs'.

SQLite lets one write transaction run at a time; the other waits (busy_timeout) instead of
failing, so a savings scan or alert round saving its results never costs ingest a batch.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from collector.store import Reader, Store


def test_a_second_writer_waits_for_the_first_and_both_commit(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    ingest, evaluation = Store(db), Store(db)
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
            ingest.set_stats({"ingest_readings_per_s": 10.0})
            holding.set()
            time.sleep(0.5)  # the evaluation write must wait out this transaction
        job.join(10)
        assert done, "the second writer never finished"
        assert done[0] >= 0.3
        with Reader(db) as reader:
            stats = reader.stats()
        assert stats["scan_seconds"].value == 1.5
        assert stats["ingest_readings_per_s"].value == 10.0
    finally:
        ingest.close()
        evaluation.close()
