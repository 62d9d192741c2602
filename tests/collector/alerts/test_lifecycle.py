"""Lifecycle: pending/firing/resolved, dedup, grouping per site, inhibition, silences, state."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from collector.alerts.inhibition import DEFAULT_INHIBIT_RULES, InhibitRule
from collector.alerts.lifecycle import AlertState, Status, advance
from collector.alerts.matchers import Matcher, parse_all
from collector.alerts.model import Condition, Severity
from collector.alerts.silences import Silence
from tests.support.alert_data import minutes, utc

T0 = utc(2025, 5, 6, 12)


def cond(alertname: str, site: str = "s1", for_s: float = 0.0, **labels: str) -> Condition:
    return Condition(
        {"alertname": alertname, "site": site, **labels},
        Severity.WARNING,
        f"{alertname} at {site}",
        {"x": 1},
        for_s,
    )


STEP = minutes(15)


def run(rounds: list[list[Condition]], silences=(), step=STEP, state=None):
    """Advance once per round; return the final state and the notifications of every round."""
    state = state or AlertState()
    sent = []
    for i, conditions in enumerate(rounds):
        result = advance(state, conditions, T0 + i * step, silences)
        state = result.state
        sent.append(result.notifications)
    return state, sent


def test_alert_is_pending_until_its_for_duration_then_fires_once():
    c = cond("unusual_usage", meter="m1", for_s=1800)
    state, sent = run([[c]] * 5)
    assert [len(n) for n in sent] == [0, 0, 1, 0, 0]
    assert sent[2][0].firing[0].labels["meter"] == "m1"
    assert state.alerts[c.fingerprint].status is Status.FIRING


def test_zero_for_fires_on_first_evaluation():
    _, sent = run([[cond("meter_silent", meter="m1")]])
    assert len(sent[0]) == 1


def test_resolve_notice_when_condition_ends():
    c = cond("meter_silent", meter="m1")
    state, sent = run([[c], [c], []])
    resolved = sent[2][0].resolved
    assert [a.status for a in resolved] == ["resolved"]
    assert resolved[0].ends_at == T0 + minutes(30)
    assert sent[2][0].open == []
    assert state.alerts == {}


def test_pending_alert_that_ends_is_never_notified():
    c = cond("unusual_usage", meter="m1", for_s=3600)
    _, sent = run([[c], [c], []])
    assert sent == [[], [], []]


def test_one_notification_per_site_with_all_new_alerts():
    a = cond("meter_silent", meter="m1")
    b = cond("meter_silent", meter="m2")
    other = cond("meter_silent", site="s2", meter="m1")
    _, sent = run([[a, b, other]])
    assert [n.site for n in sent[0]] == ["s1", "s2"]
    assert [x.labels["meter"] for x in sent[0][0].firing] == ["m1", "m2"]
    assert len(sent[0][0].open) == 2


def test_open_list_carries_earlier_alerts_of_the_site():
    a = cond("meter_silent", meter="m1")
    b = cond("meter_silent", meter="m2")
    _, sent = run([[a], [a, b]])
    assert [x.labels["meter"] for x in sent[1][0].firing] == ["m2"]
    assert [x.labels["meter"] for x in sent[1][0].open] == ["m1", "m2"]


def test_same_labels_are_one_alert_even_if_values_change():
    first = cond("unusual_usage", meter="m1")
    changed = Condition(first.labels, Severity.CRITICAL, "worse", {"x": 9})
    state, sent = run([[first], [changed]])
    assert [len(n) for n in sent] == [1, 0]
    (rec,) = state.alerts.values()
    assert rec.summary == "worse"
    assert rec.severity is Severity.CRITICAL


def test_gateway_offline_inhibits_meter_alerts_of_its_site_only():
    gw = cond("gateway_offline", gateway="gw1")
    m1 = cond("meter_silent", meter="m1")
    m_other = cond("meter_silent", site="s2", meter="m1")
    result = advance(AlertState(), [gw, m1, m_other], T0)
    by_site = {n.site: n for n in result.notifications}
    assert [a.labels["alertname"] for a in by_site["s1"].firing] == ["gateway_offline"]
    assert [a.labels["site"] for a in by_site["s2"].firing] == ["s2"]
    assert result.suppressed == {m1.fingerprint: "inhibited:gateway_offline"}


def test_pending_gateway_alert_does_not_inhibit():
    gw = cond("gateway_offline", gateway="gw1", for_s=600)
    m1 = cond("meter_silent", meter="m1")
    result = advance(AlertState(), [gw, m1], T0)
    assert [a.labels["alertname"] for a in result.notifications[0].firing] == ["meter_silent"]


def test_inhibited_alert_is_announced_when_the_gateway_returns():
    gw = cond("gateway_offline", gateway="gw1")
    m1 = cond("unusual_usage", meter="m1")
    _, sent = run([[gw, m1], [gw, m1], [m1], [m1]])
    assert [a.labels["alertname"] for a in sent[0][0].firing] == ["gateway_offline"]
    assert sent[1] == []
    assert [a.labels["alertname"] for a in sent[2][0].resolved] == ["gateway_offline"]
    assert [a.labels["alertname"] for a in sent[2][0].firing] == ["unusual_usage"]
    assert sent[3] == []


def test_silenced_alert_is_not_notified_inside_the_window():
    m1 = cond("unusual_usage", meter="m1")
    silence = Silence("shutdown", T0, T0 + minutes(30), parse_all(['site="s1"']))
    _, sent = run([[m1], [m1], [m1], [m1]], silences=[silence])
    assert sent[0] == sent[1] == []
    assert [a.labels["meter"] for a in sent[2][0].firing] == ["m1"]  # silence ended at T0+30
    assert sent[3] == []


def test_episode_inside_a_silence_is_never_notified():
    m1 = cond("unusual_usage", meter="m1")
    silence = Silence("shutdown", T0, T0 + minutes(60), parse_all(['meter=~"m.*"']))
    state, sent = run([[m1], [m1], []], silences=[silence])
    assert sent == [[], [], []]
    assert state.alerts == {}


def test_notified_alert_gets_its_resolve_notice_even_when_silenced_later():
    m1 = cond("meter_silent", meter="m1")
    silence = Silence("late", T0 + minutes(10), T0 + minutes(120), parse_all(['site="s1"']))
    _, sent = run([[m1], [m1], []], silences=[silence])
    assert len(sent[0][0].firing) == 1
    assert sent[1] == []
    assert len(sent[2][0].resolved) == 1


def test_silence_matchers_are_anchored_and_time_bounded():
    s = Silence("x", T0, T0 + timedelta(hours=1), parse_all(['meter=~"hall"']))
    assert s.mutes({"meter": "hall"}, T0)
    assert not s.mutes({"meter": "hall-2"}, T0)
    assert not s.mutes({"meter": "hall"}, T0 + timedelta(hours=1))  # end is exclusive
    assert not s.mutes({"meter": "hall"}, T0 - timedelta(seconds=1))


def test_matcher_syntax():
    m = Matcher.parse('meter!~"a\\"b|c"')
    assert (m.name, str(m.op), m.value) == ("meter", "!~", 'a"b|c')
    assert str(m) == 'meter!~"a\\"b|c"'
    with pytest.raises(ValueError, match="not of the form"):
        Matcher.parse("meter=hall")
    with pytest.raises(ValueError, match="bad regular expression"):
        Matcher.parse('meter=~"("')


def test_custom_inhibit_rule_with_equal_labels():
    rule = InhibitRule(
        parse_all(['alertname="gateway_offline"']),
        parse_all(['alertname="meter_silent"']),
        ("site", "gateway"),
    )
    gw = cond("gateway_offline", gateway="gw1")
    same_gw = cond("meter_silent", meter="m1", gateway="gw1")
    other_gw = cond("meter_silent", meter="m2", gateway="gw2")
    result = advance(AlertState(), [gw, same_gw, other_gw], T0, inhibit_rules=[rule])
    assert set(result.suppressed) == {same_gw.fingerprint}
    assert DEFAULT_INHIBIT_RULES  # the default rule is the site-wide one tested above


def test_state_survives_json_round_trip_without_resending():
    c = cond("unusual_usage", meter="m1", for_s=900)
    state, sent = run([[c], [c]])
    assert len(sent[1]) == 1
    restored = AlertState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored == state
    later = advance(restored, [c], T0 + minutes(30))
    assert later.notifications == []
    resolved = advance(later.state, [], T0 + minutes(45))
    assert len(resolved.notifications[0].resolved) == 1


def test_state_of_an_unknown_version_is_rejected():
    with pytest.raises(ValueError, match="version"):
        AlertState.from_dict({"version": 99, "alerts": {}})


def test_naive_time_is_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        advance(AlertState(), [], T0.replace(tzinfo=None))
