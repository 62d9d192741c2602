"""Job leases, on SQLite and PostgreSQL: one holder per round across the collectors on a
database; a dead holder's lease expires; a round that is done is not run again."""

from __future__ import annotations

import multiprocessing
import sqlite3

import pytest
from psycopg import errors

from collector.store import Store
from collector.store.leases import Leases, holder_id, is_busy
from collector.store.sql import Target

MIN = 60_000


class Clock:
    def __init__(self, now: int = 1_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def db(db_target: Target) -> Target:
    Store(db_target).close()
    return db_target


def test_only_one_collector_takes_a_round_and_a_done_round_is_not_taken_again(db: Target) -> None:
    clock = Clock()
    a, b = Leases(db, "a", clock), Leases(db, "b", clock)
    assert a.take("alert_round", 900_000, 5 * MIN) is not None
    assert b.take("alert_round", 900_000, 5 * MIN) is None
    a.release("alert_round", 900_000)
    assert b.take("alert_round", 900_000, 5 * MIN) is None  # done: the round fired late at b
    assert a.take("alert_round", 900_000, 5 * MIN) is None  # and at a again
    clock.now += 15 * MIN
    # the next round, whoever comes first
    assert b.take("alert_round", 1_800_000, 5 * MIN) is not None
    assert a.holder_of("alert_round") == ("b", clock.now + 5 * MIN)


def test_a_dead_holders_lease_expires_and_another_collector_takes_the_job(db: Target) -> None:
    clock = Clock()
    dead, alive = Leases(db, "dead", clock), Leases(db, "alive", clock)
    assert dead.take("intervals", clock.now, MIN) is not None  # then killed: never given back
    clock.now += MIN - 1
    assert alive.take("intervals", clock.now, MIN) is None
    clock.now += 1
    assert alive.take("intervals", clock.now, MIN) is not None
    assert not dead.keep("intervals", MIN)  # no longer its own
    assert alive.keep("intervals", 10 * MIN)
    assert alive.holder_of("intervals") == ("alive", clock.now + 10 * MIN)


def test_work_of_its_own_round_only_waits_for_a_run_elsewhere_to_end(db: Target) -> None:
    clock = Clock()
    a, b = Leases(db, "a", clock), Leases(db, "b", clock)
    assert a.take("intervals", None, MIN) == clock.now
    assert b.take("intervals", None, MIN) is None  # a is refreshing
    a.release("intervals", clock.now)
    assert b.take("intervals", None, MIN) == clock.now  # the same millisecond: still runs
    b.release("intervals", clock.now)
    assert a.run("intervals", None, MIN, lambda: "again") == (True, "again")


def test_jobs_lease_independently(db: Target) -> None:
    a, b = Leases(db, "a"), Leases(db, "b")
    assert a.take("scan", 1, MIN) is not None
    assert b.take("alert_round", 1, MIN) is not None
    assert a.holder_of("never") is None


def test_run_gives_the_lease_back_even_when_the_round_fails(db: Target) -> None:
    clock = Clock()
    a, b = Leases(db, "a", clock), Leases(db, "b", clock)

    def broken() -> int:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        a.run("scan", 1, 60 * MIN, broken)
    clock.now += 1
    assert b.run("scan", 2, 60 * MIN, lambda: 7) == (True, 7)  # not blocked for an hour
    assert a.run("scan", 2, 60 * MIN, lambda: 8) == (False, None)  # round 2 is done


def test_run_repeats_work_that_another_collectors_commit_overtook(db: Target) -> None:
    tries: list[int] = []

    def overtaken_once() -> str:
        tries.append(1)
        if len(tries) == 1:
            raise sqlite3.OperationalError("database is locked")
        return "done"

    leases = Leases(db, "a")
    assert leases.run("intervals", 1, MIN, overtaken_once, busy_retry_s=2) == (True, "done")
    assert len(tries) == 2
    assert is_busy(sqlite3.OperationalError("database is locked"))
    assert not is_busy(sqlite3.OperationalError("no such table: x"))
    assert not is_busy(ValueError("locked"))


def test_postgres_lock_conflicts_are_busy_and_other_errors_are_not() -> None:
    for busy in (errors.DeadlockDetected, errors.SerializationFailure, errors.LockNotAvailable):
        assert is_busy(busy("another collector"))
    assert not is_busy(errors.UniqueViolation("duplicate key"))
    assert not is_busy(errors.UndefinedTable("no such table"))


def test_the_holder_names_the_process() -> None:
    assert holder_id("collector-1").startswith("collector-1@")
    assert holder_id("collector-1") != holder_id("collector-2")


def _take(target: Target, name: str, go: object, results: object) -> None:
    leases = Leases(target, holder_id(name))
    go.wait()  # type: ignore[attr-defined]
    taken = leases.take("alert_round", 900_000, MIN) is not None
    results.put((name, taken))  # type: ignore[attr-defined]
    leases.close()


def test_of_four_processes_taking_one_round_at_once_exactly_one_gets_it(db: Target) -> None:
    context = multiprocessing.get_context("spawn")
    go, results = context.Event(), context.Queue()
    workers = [
        context.Process(target=_take, args=(db, f"collector-{k}", go, results)) for k in range(4)
    ]
    for worker in workers:
        worker.start()
    go.set()
    got = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(30)
    assert sum(taken for _name, taken in got) == 1


def test_work_is_not_run_again_once_another_collector_has_taken_the_lease(db: Target) -> None:
    clock = Clock()
    a, b = Leases(db, "a", clock), Leases(db, "b", clock)
    tries: list[str] = []

    def overtaken_after_the_lease_ran_out() -> str:
        tries.append("a")
        if len(tries) == 1:
            clock.now += 2 * MIN  # a's lease ran out while it worked, and b took the job
            assert b.take("intervals", 2, MIN) is not None
            raise sqlite3.OperationalError("database is locked")
        return "done"

    with pytest.raises(sqlite3.OperationalError, match="locked"):
        a.run("intervals", 1, MIN, overtaken_after_the_lease_ran_out, busy_retry_s=2)
    assert tries == ["a"]  # never alongside b
    assert a.holder_of("intervals") == ("b", clock.now + MIN)
