"""Through AlertEvaluator: injected unusual usage fires, resolves, is inhibited and silenced."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from collector.alerts.config import AlertsConfig
from collector.alerts.evaluator import AlertEvaluator, Observations
from collector.alerts.lifecycle import AlertState, Status
from collector.alerts.matchers import parse_all
from collector.alerts.model import GatewayStatus, IntervalGrid, MeterKey
from collector.alerts.notification import Notification
from collector.alerts.silences import Silence
from tests.support.alert_data import STEP, minutes, utc, weekly_grid, window

S1M1, S1M2, S2M1 = MeterKey("s1", "m1"), MeterKey("s1", "m2"), MeterKey("s2", "m1")
HISTORY_END = utc(2025, 5, 4, 22)  # Monday 2025-05-05 00:00 local
ONSET = utc(2025, 5, 5, 23)  # Tuesday 01:00 local: night load of 2 kW is usual
OFF = ONSET + timedelta(hours=2)  # first normal interval again
STEP_TD = timedelta(seconds=STEP)
EXTRA_KWH = 10.0 * STEP / 3600  # +10 kW


def config(**rules: dict) -> AlertsConfig:
    return AlertsConfig.model_validate(
        {"expected": {"weeks": 4}, "rules": rules, "sites": {"s1": {}, "s2": {}}}
    )


@pytest.fixture(scope="module")
def data() -> IntervalGrid:
    grid = weekly_grid(
        [S1M1, S1M2, S2M1], HISTORY_END - timedelta(weeks=4), OFF + timedelta(days=1)
    )
    starts = grid.column_starts()
    episode = (starts >= ONSET.timestamp()) & (starts < OFF.timestamp())
    grid.energy_kwh[0, episode] += EXTRA_KWH  # s1/m1
    grid.energy_kwh[2, episode] += EXTRA_KWH  # s2/m1
    return grid


@pytest.fixture(scope="module")
def evaluator() -> AlertEvaluator:
    return AlertEvaluator(config())


@pytest.fixture(scope="module")
def baseline(data, evaluator):
    return evaluator.build_baseline(window(data, HISTORY_END - timedelta(weeks=4), HISTORY_END))


def simulate(
    evaluator: AlertEvaluator,
    data: IntervalGrid,
    baseline,
    *,
    offline: tuple[datetime, datetime] | None = None,
    silences: tuple[Silence, ...] = (),
    until: datetime = OFF + timedelta(hours=1),
) -> tuple[list[Notification], AlertState]:
    """One evaluation per interval end, like the collector's 15-minute loop."""
    state = AlertState()
    sent: list[Notification] = []
    now = ONSET - timedelta(hours=1)
    while now <= until:
        down = offline is not None and offline[0] <= now < offline[1]
        obs = Observations(
            now=now,
            recent=window(data, now - evaluator.recent_window, now),
            gateways=[
                GatewayStatus("s1", "gw1", online=not down),
                GatewayStatus("s2", "gw1", True),
            ],
        )
        result = evaluator.evaluate(state, obs, baseline, silences)
        state = result.state
        sent += result.notifications
        now += STEP_TD
    return sent, state


def events(sent: list[Notification], key: MeterKey, alertname: str = "unusual_usage"):
    """(time, 'firing'|'resolved') for one meter's alert across all notifications."""
    out = []
    for n in sent:
        for a in n.firing + n.resolved:
            if (
                a.labels.get("alertname") == alertname
                and (a.labels["site"], a.labels.get("meter")) == key
            ):
                out.append((n.ts, a.status))
    return out


def test_unusual_usage_fires_within_two_intervals_after_for_and_resolves(evaluator, data, baseline):
    sent, state = simulate(evaluator, data, baseline)
    for_ = timedelta(seconds=evaluator.config.rules.unusual_usage.for_)
    timeline = events(sent, S1M1)
    assert [status for _, status in timeline] == ["firing", "resolved"]  # never sent twice
    fired, resolved = timeline[0][0], timeline[1][0]
    assert ONSET + for_ < fired <= ONSET + for_ + 2 * STEP_TD
    assert OFF < resolved <= OFF + STEP_TD
    assert events(sent, S1M2) == []  # the normal meter stays quiet
    assert state.alerts == {}


def test_unusual_usage_is_inhibited_while_the_gateway_is_offline(evaluator, data, baseline):
    sent, _ = simulate(evaluator, data, baseline, offline=(ONSET - minutes(30), OFF + minutes(30)))
    gateway = [
        (n.ts, a.status)
        for n in sent
        for a in n.firing + n.resolved
        if a.labels["alertname"] == "gateway_offline"
    ]
    assert [s for _, s in gateway] == ["firing", "resolved"]
    assert gateway[0][0] <= ONSET  # fired after its 5 min, before the usage alert could
    assert events(sent, S1M1) == []  # muted for the whole episode
    assert [s for _, s in events(sent, S2M1)] == ["firing", "resolved"]  # other site unaffected


def test_alert_outliving_the_outage_is_announced_when_the_gateway_returns(
    evaluator, data, baseline
):
    back = ONSET + timedelta(hours=1)
    sent, _ = simulate(evaluator, data, baseline, offline=(ONSET - minutes(30), back))
    timeline = events(sent, S1M1)
    assert [s for _, s in timeline] == ["firing", "resolved"]
    assert timeline[0][0] == back


def test_unusual_usage_inside_a_silence_is_not_notified(evaluator, data, baseline):
    shutdown = Silence(
        "planned", ONSET - timedelta(hours=1), OFF + timedelta(hours=1), parse_all(['site="s1"'])
    )
    sent, _ = simulate(evaluator, data, baseline, silences=(shutdown,))
    assert events(sent, S1M1) == []
    assert [s for _, s in events(sent, S2M1)] == ["firing", "resolved"]


def test_silence_from_config_applies_too(data, baseline):
    cfg = config().model_copy(
        update={
            "silences": AlertsConfig.model_validate(
                {
                    "silences": [
                        {
                            "id": "planned",
                            "starts_at": ONSET - timedelta(hours=1),
                            "ends_at": OFF + timedelta(hours=1),
                            "matchers": ['meter="m1"'],
                        }
                    ]
                }
            ).silences
        }
    )
    sent, _ = simulate(AlertEvaluator(cfg), data, baseline)
    assert events(sent, S1M1) == events(sent, S2M1) == []


def test_missing_baseline_holds_firing_alerts_instead_of_resolving(evaluator, data, baseline):
    sent, state = simulate(evaluator, data, baseline, until=ONSET + timedelta(hours=1))
    assert [s for _, s in events(sent, S1M1)] == ["firing"]
    now = ONSET + timedelta(hours=1, minutes=15)
    obs = Observations(now=now, recent=window(data, now - evaluator.recent_window, now))
    held = evaluator.evaluate(state, obs, baseline=None)
    assert held.notifications == []
    assert {r.labels["meter"] for r in held.state.firing()} == {"m1"}
    again = evaluator.evaluate(held.state, replace(obs, now=now + STEP_TD), baseline)
    assert again.notifications == []


def test_crashing_rule_holds_its_alerts_and_is_counted(evaluator, data, baseline, caplog):
    sent, state = simulate(evaluator, data, baseline, until=ONSET + timedelta(hours=1))
    assert [s for _, s in events(sent, S1M1)] == ["firing"]
    broken = replace(baseline, step_s=60)  # score_usage refuses a mismatched step
    now = ONSET + timedelta(hours=1, minutes=15)
    obs = Observations(now=now, recent=window(data, now - evaluator.recent_window, now))
    before = evaluator.rule_failures["unusual_usage"]
    with caplog.at_level(logging.ERROR, logger="collector.alerts.evaluator"):
        result = evaluator.evaluate(state, obs, broken)
    assert result.notifications == []
    assert all(r.status is Status.FIRING for r in result.state.alerts.values())
    assert evaluator.rule_failures["unusual_usage"] == before + 1
    assert len(caplog.records) == 1
    assert "rule=unusual_usage" in caplog.records[0].getMessage()


def test_recent_window_covers_gap_and_hold_needs(evaluator):
    assert evaluator.recent_window >= timedelta(hours=24)
    assert evaluator.history_window == timedelta(weeks=4)
