"""Scheduled jobs of several collectors on one database: each round runs at one of them."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collector import settings
from collector.evaluation.inputs import Inputs, load_inputs
from collector.evaluation.scheduler import EvaluationService, alert_round_due, scan_due
from collector.store import Reader, Store
from collector.store.leases import Leases
from tests.support.messages import config

CPH = ZoneInfo("Europe/Copenhagen")


def scheduler(db: Path, client_id: str) -> EvaluationService:
    cfg = config(db, mqtt={"client_id": client_id})
    return EvaluationService(cfg, Inputs())


def test_two_schedulers_on_one_database_run_a_round_once(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    Store(db).close()
    first, second = scheduler(db, "collector-1"), scheduler(db, "collector-2")
    runs: list[str] = []
    go = threading.Barrier(2)

    def fire(service: EvaluationService, name: str) -> None:
        def work() -> None:
            runs.append(name)
            time.sleep(0.2)  # the other fires while this one runs

        go.wait()
        service.run_job("alert_round", work, due=lambda _now: 900_000)

    threads = [
        threading.Thread(target=fire, args=(first, "1")),
        threading.Thread(target=fire, args=(second, "2")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # the same round again later (a late fire after a restart): already done
    first.run_job("alert_round", lambda: runs.append("late"), due=lambda _now: 900_000)
    second.run_job("alert_round", lambda: runs.append("next"), due=lambda _now: 1_800_000)
    first.stop()
    second.stop()

    assert len(runs) == 2
    assert runs[0] in {"1", "2"}
    assert runs[1] == "next"
    with Reader(db) as reader:
        assert reader.stats()["job_alert_round_runs"].value == 2  # counted where it ran


def test_a_round_of_a_collector_that_died_holding_it_waits_for_the_lease_to_expire(
    tmp_path: Path,
) -> None:
    db = tmp_path / "c.db"
    Store(db).close()
    dead = Leases(db, "collector-1@host:1")
    assert dead.take("alert_round", 900_000, 60_000)  # and then the process was killed
    alive = scheduler(db, "collector-2")
    runs: list[int] = []
    alive.run_job("alert_round", lambda: runs.append(1), due=lambda _now: 1_800_000)
    assert runs == []  # the lease has most of a minute left
    dead.db.execute("UPDATE lease SET expires_ms = 0")  # that minute is over
    alive.run_job("alert_round", lambda: runs.append(2), due=lambda _now: 1_800_000)
    alive.stop()
    dead.close()
    assert runs == [2]


def test_the_scheduled_jobs_name_their_round_by_when_it_was_due(tmp_path: Path) -> None:
    (tmp_path / "alerts.toml").write_text('[rules.unusual_usage]\nfor = "0s"\n')
    (tmp_path / "sites.toml").write_text('[sites.plant]\nsector = "workshop"\n')
    path = tmp_path / "collector.toml"
    path.write_text(
        f'[storage]\ndb = "{tmp_path / "x.db"}"\n\n[evaluation]\n'
        'alerts_file = "alerts.toml"\nsites_file = "sites.toml"\n'
    )
    cfg = settings.load(path)
    Store(cfg.storage.db).close()
    service = EvaluationService(cfg, load_inputs(cfg.evaluation))
    service.start()
    try:
        jobs = {job.id: job.args for job in service._scheduler.get_jobs()}
    finally:
        service.stop()
    assert jobs["savings-scan"][2] == service._scan_due
    assert jobs["alert-round"][2] == service._round_due


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (960.0, 960.0),  # due now
        (1000.0, 960.0),  # fired late
        (1859.0, 960.0),
        (1860.0, 1860.0),
    ],
)
def test_an_alert_round_is_named_by_its_time_on_the_schedule(now: float, expected: float) -> None:
    assert alert_round_due(now, 900.0, 60.0) == expected


def test_a_scan_is_named_by_the_night_it_belongs_to() -> None:
    def at(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=CPH)

    night = at("2026-03-10T02:30:00")
    assert scan_due(at("2026-03-10T02:30:00"), "02:30", CPH) == night
    assert scan_due(at("2026-03-10T03:29:59").astimezone(UTC), "02:30", CPH) == night
    assert scan_due(at("2026-03-11T02:29:00"), "02:30", CPH) == night
