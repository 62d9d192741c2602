"""The running collector schedules savings scans and alert rounds from its config; scans and
rounds on each database engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collector import settings
from collector.evaluation.alert_rounds import AlertRounds
from collector.evaluation.inputs import load_inputs
from collector.evaluation.scheduler import EvaluationService, next_alert_round
from collector.intervals.energy import IntervalPolicy
from collector.intervals.refresh import refresh_intervals
from collector.store import Reader, Store, now_ms
from collector.store.sql import Target
from devtools.broker import Mosquitto
from sparwatt import wire
from sparwatt.errors import ConfigError
from tests.support.processes import (
    MqttRecorder,
    Processes,
    collector_cli,
    collector_config,
    wait_until,
)

Q_MS = 900_000
SITE = "plant"
ALERTS = """
default_receivers = ["dashboard"]
[rules.unusual_usage]
for = "0s"
[receivers.dashboard]
type = "mqtt"
"""
SITES = f'[sites.{SITE}]\nsector = "workshop"\n'


def seed(db: Target, end_ms: int, high_quarters: int) -> None:
    """Six weeks of a steady 2 kW meter up to `end_ms`; 12 kW in the last quarters."""
    store = Store(db)
    rng = np.random.default_rng(3)
    counter, readings = 1000.0, []
    start = end_ms - 6 * 7 * 96 * Q_MS
    for ts in range(start, end_ms + 1, Q_MS):
        if ts > start:
            kwh = 3.0 if ts > end_ms - high_quarters * Q_MS else 0.5
            counter += kwh * (1 + 0.02 * float(rng.standard_normal()))
        readings.append(
            wire.Reading(
                meter="press",
                ts=datetime.fromtimestamp(ts / 1000, UTC),
                values={"energy_import_kwh": round(counter, 4)},
            )
        )
    store.write(
        [
            wire.ReadingsMessage(
                site=SITE, gateway="gw1", seq=1, sent_at=datetime.now(UTC), readings=readings
            )
        ]
    )
    refresh_intervals(store, IntervalPolicy(max_gap_ms=7_200_000))
    store.close()


@pytest.mark.integration
def test_running_collector_publishes_unusual_usage_retained_on_its_schedule(
    tmp_path: Path, backend: Target, broker: Mosquitto, procs: Processes
) -> None:
    db = backend
    seed(db, now_ms() // Q_MS * Q_MS, high_quarters=2)
    (tmp_path / "alerts.toml").write_text(ALERTS)
    (tmp_path / "sites.toml").write_text(SITES)
    config = tmp_path / "collector.toml"
    config.write_text(
        collector_config(db, broker.port)
        + (
            '[evaluation]\nalerts_file = "alerts.toml"\nsites_file = "sites.toml"\n'
            "alerts_every_s = 1\nalerts_delay_s = 0\n"
        )
    )
    dashboard = MqttRecorder(broker.port, [wire.alerts_topic("+")], client_id="dashboard")
    try:
        collector = procs.spawn("collector", "collector.cli", "run", str(config))

        def announced() -> list[Any]:
            return [a for p in dashboard.payloads("/alerts") for a in p["alerts"]]  # type: ignore[attr-defined]

        found: list[Any] = wait_until(  # type: ignore[assignment]
            announced, 40, "an alert on sparwatt/v1/plant/alerts"
        )
        assert [a["labels"] for a in found][:1] == [
            {"alertname": "unusual_usage", "site": SITE, "meter": "press"}
        ]
        assert collector.poll() is None, procs.log("collector")
    finally:
        dashboard.stop()
    procs.stop(collector)
    assert collector.returncode == 0, procs.log("collector")
    with Reader(db) as reader:
        rows = reader.alerts(SITE)
        state = reader.alert_state()
    assert [(r.state, r.labels["alertname"]) for r in rows] == [("firing", "unusual_usage")]
    assert state is not None
    assert len(state["alerts"]) == 1


@pytest.mark.integration
def test_collector_refuses_to_start_with_a_bad_alerts_file(tmp_path: Path) -> None:
    (tmp_path / "alerts.toml").write_text("[rules.unusual_usage]\nz_treshold = 3\n")
    config = tmp_path / "collector.toml"
    config.write_text(
        f'[storage]\ndb = "{tmp_path / "x.db"}"\n\n[evaluation]\nalerts_file = "alerts.toml"\n'
    )
    run = collector_cli("run", str(config))
    assert run.returncode == 2
    assert "alerts.toml" in run.stderr
    assert "z_treshold" in run.stderr
    assert not (tmp_path / "x.db").exists()  # refused before any I/O


def test_missing_evaluation_file_is_named_at_start(tmp_path: Path) -> None:
    config = tmp_path / "collector.toml"
    config.write_text('[evaluation]\nsites_file = "nowhere.toml"\n')
    cfg = settings.load(config)
    with pytest.raises(ConfigError, match=r"nowhere\.toml"):
        load_inputs(cfg.evaluation)


@pytest.mark.parametrize("entry", ["site-a", "Site-A/m1", "site-a/m 1", "site-a/m1/x", "/m1"])
def test_a_dedicated_meter_must_name_a_site_and_meter_as_gateways_spell_them(
    tmp_path: Path, entry: str
) -> None:
    config = tmp_path / "collector.toml"
    config.write_text(f'[evaluation]\ndedicated_meters = ["site-a/ok", "{entry}"]\n')
    with pytest.raises(ConfigError) as err:
        settings.load(config)
    assert "evaluation.dedicated_meters" in str(err.value)
    assert repr(entry) in str(err.value)


@pytest.mark.parametrize(
    ("now", "every", "delay", "expected"),
    [
        (1000.0, 900.0, 60.0, 960.0 + 900.0),  # 16:40 past a boundary at 0: next is 15:00+01:00
        (959.0, 900.0, 60.0, 960.0),
        (960.0, 900.0, 60.0, 1860.0),  # a round that is due now is the previous one
        (12.5, 1.0, 0.0, 13.0),
    ],
)
def test_alert_rounds_are_a_delay_after_each_interval_closes(
    now: float, every: float, delay: float, expected: float
) -> None:
    assert next_alert_round(now, every, delay) == expected


def test_scheduler_runs_the_scan_nightly_and_alerts_each_interval(tmp_path: Path) -> None:
    (tmp_path / "alerts.toml").write_text(ALERTS)
    (tmp_path / "sites.toml").write_text(SITES)
    config = tmp_path / "collector.toml"
    config.write_text(
        f'[storage]\ndb = "{tmp_path / "x.db"}"\n\n[evaluation]\n'
        'alerts_file = "alerts.toml"\nsites_file = "sites.toml"\n'
        'scan_at = "03:15"\ntimezone = "Europe/Copenhagen"\n'
    )
    cfg = settings.load(config)
    Store(cfg.storage.db).close()
    published: list[tuple[str, bytes, bool]] = []
    service = EvaluationService(
        cfg,
        load_inputs(cfg.evaluation),
        publish=lambda t, p, r: published.append((t, p, r)),
    )
    service.start()
    try:
        jobs = {job.id: job for job in service._scheduler.get_jobs()}
    finally:
        service.stop()
    scan = jobs["savings-scan"].next_run_time
    assert (scan.hour, scan.minute, scan.tzinfo.key) == (3, 15, "Europe/Copenhagen")
    assert scan - datetime.now(UTC) <= timedelta(days=1)
    rounds = jobs["alert-round"].next_run_time
    assert rounds.timestamp() % 900 == 60
    assert rounds - datetime.now(UTC) <= timedelta(minutes=16)


def test_run_at_start_scans_at_once_and_runs_a_round_after_the_delay_then_keeps_the_schedule(
    tmp_path: Path, backend: Target
) -> None:
    db = backend
    seed(db, now_ms() // Q_MS * Q_MS, high_quarters=2)
    (tmp_path / "alerts.toml").write_text('[rules.unusual_usage]\nfor = "0s"\n')
    (tmp_path / "sites.toml").write_text(SITES)
    config = tmp_path / "collector.toml"
    config.write_text(
        f'[storage]\ndb = "{db}"\n\n[evaluation]\nalerts_file = "alerts.toml"\n'
        'sites_file = "sites.toml"\nrun_at_start = true\nalerts_delay_s = 1.5\n'
    )
    cfg = settings.load(config)
    service = EvaluationService(cfg, load_inputs(cfg.evaluation))

    def ran() -> dict[str, int] | None:
        """When each job last ran, once both have."""
        with Reader(db) as reader:
            stats = reader.stats()
        names = {job: f"job_{job}_runs" for job in ("scan", "alert_round")}
        if not all(name in stats for name in names.values()):
            return None
        return {job: stats[name].updated_ms for job, name in names.items()}

    started = now_ms()
    service.start()
    try:
        runs: dict[str, int] = wait_until(ran, 30, "a scan and an alert round")  # type: ignore[assignment]
        jobs = {job.id: job.next_run_time for job in service._scheduler.get_jobs()}
    finally:
        service.stop()
    assert runs["scan"] - started < 5000  # not at scan_at
    assert runs["alert_round"] - started >= 1500  # once the delay is over
    assert set(jobs) == {"savings-scan", "alert-round"}  # the schedule goes on as without it
    assert jobs["alert-round"].timestamp() % 900 == 1.5
    with Reader(db) as reader:
        assert [a.labels["alertname"] for a in reader.alerts(SITE)] == ["unusual_usage"]


def test_scan_without_meter_data_saves_nothing(tmp_path: Path, backend: Target) -> None:
    (tmp_path / "sites.toml").write_text(SITES)
    config = tmp_path / "collector.toml"
    config.write_text(f'[storage]\ndb = "{backend}"\n\n[evaluation]\nsites_file = "sites.toml"\n')
    cfg = settings.load(config)
    Store(cfg.storage.db).close()
    service = EvaluationService(cfg, load_inputs(cfg.evaluation))
    try:
        result = service.scan()
    finally:
        service.stop()
    assert result is not None
    assert (result.opened, result.updated, result.closed, result.errors) == ([], [], [], 0)
    with Reader(cfg.storage.db) as reader:
        assert reader.opportunities() == []


def test_meters_a_gateway_no_longer_lists_are_not_reported_silent(backend: Target) -> None:
    from collector.alerts import AlertsConfig
    from collector.alerts.channels import Dispatcher

    store = Store(backend)
    then = datetime.now(UTC) - timedelta(hours=2)
    store.write(
        [
            wire.ReadingsMessage(
                site=SITE,
                gateway="gw1",
                seq=1,
                sent_at=then,
                readings=[
                    wire.Reading(meter=m, ts=then, values={"voltage_l1_v": 230.0})
                    for m in ("a", "b")
                ],
            )
        ]
    )
    reader = Reader(backend)
    rounds = AlertRounds(AlertsConfig(), Dispatcher({}, lambda site: []), store, reader)

    def silent() -> list[str]:
        state = rounds.run(datetime.now(UTC)).state
        return sorted(
            r.labels["meter"]
            for r in state.alerts.values()
            if r.labels["alertname"] == "meter_silent"
        )

    try:
        assert silent() == ["a", "b"]
        store.set_status(
            SITE, "gw1", wire.StatusMessage(state=wire.GatewayState.ONLINE, meters=["a"])
        )
        assert silent() == ["a"]
    finally:
        reader.close()
        store.close()


def test_check_config_names_an_unreadable_receiver_secret(tmp_path: Path) -> None:
    (tmp_path / "alerts.toml").write_text(
        'default_receivers = ["mail"]\n[receivers.mail]\ntype = "email"\nhost = "localhost"\n'
        'username = "u"\npassword_file = "missing-password"\nsender = "a@example.com"\n'
        'recipients = ["b@example.com"]\n'
    )
    config = tmp_path / "collector.toml"
    config.write_text('[evaluation]\nalerts_file = "alerts.toml"\n')
    run = collector_cli("check-config", str(config))
    assert run.returncode == 2
    assert "receivers.mail.password_file" in run.stderr
