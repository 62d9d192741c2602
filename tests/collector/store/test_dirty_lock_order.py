"""A refresh takes its group's dirty marks in the order ingest marks them (meter id), so a
refresh and another collector's ingest on one PostgreSQL database never deadlock."""

from __future__ import annotations

import threading
import time
import uuid
from contextlib import closing
from typing import Any

import psycopg

from collector.intervals.refresh import policy_of, refresh_intervals
from collector.settings import Intervals
from collector.store import Store
from devtools.postgres import Postgres
from tests.support.messages import NOW_MS, message

S = 1000
# more meters than one marking statement holds (256), so ingest's marks take two
METERS = [f"m{k:04d}" for k in range(257)]
# meters with marks of their own: a dirty table of realistic size
OTHERS = [f"m{k:04d}" for k in range(257, 3000)]


def _lock_waiters(url: str) -> int:
    with closing(psycopg.connect(url, autocommit=True)) as db:
        row = db.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_refresh_and_ingest_marking_the_same_meters_do_not_deadlock(
    postgres: Postgres,
) -> None:
    url = postgres.create_database(f"review_dirty_{uuid.uuid4().hex[:12]}")
    seed = Store(url)
    seed.write([message(1, [(m, NOW_MS, {"power_w": 1.0}) for m in METERS + OTHERS])])
    first = seed.meter_id("site-a", "gw1", METERS[0])
    last = seed.meter_id("site-a", "gw1", METERS[-1])
    assert first is not None
    assert last is not None
    assert first < last
    seed.take_dirty()
    # marked at different times: the table keeps the rows in another order than their ids
    seed.mark_dirty({last: NOW_MS})
    seed.mark_dirty({first: NOW_MS})
    seed.mark_dirty({seed.meter_id("site-a", "gw1", m) or 0: NOW_MS for m in OTHERS})
    seed.close()

    ingest, refresher = Store(url), Store(url)
    marked_some, resume = threading.Event(), threading.Event()
    real = ingest.db.execute
    seen: list[str] = []

    def paused_after_first_marks(sql: str, parameters: Any = (), /) -> Any:
        out = real(sql, parameters)
        if sql.startswith("INSERT INTO dirty") and not seen:
            seen.append(sql)
            marked_some.set()
            resume.wait(30)
        return out

    ingest.db.execute = paused_after_first_marks  # type: ignore[method-assign]
    errors: list[BaseException] = []

    def run(work: Any) -> None:
        try:
            work()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    batch = [message(2, [(m, NOW_MS + S, {"power_w": 2.0}) for m in METERS])]
    writer = threading.Thread(target=run, args=(lambda: ingest.write(batch),))
    writer.start()
    assert marked_some.wait(30)
    policy = policy_of(Intervals())
    refresh = threading.Thread(target=run, args=(lambda: refresh_intervals(refresher, policy),))
    refresh.start()
    deadline = time.monotonic() + 10
    while _lock_waiters(url) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    resume.set()
    writer.join(30)
    refresh.join(30)
    ingest.close()
    refresher.close()
    # the refresh waits for the batch (or the batch for the refresh): both succeed
    assert errors == []
