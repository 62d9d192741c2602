"""What the store keeps besides readings, on SQLite and PostgreSQL: a row written again
replaces the one with its key, a removal says whether there was one, tokens get their id,
notices wait for delivery, temperatures count only what changed."""

from __future__ import annotations

import dataclasses
from contextlib import closing
from dataclasses import dataclass
from datetime import date
from typing import Any

from collector.store import AlertRow, MeasureRow, OpportunityRow, Store
from collector.store.schema import connect
from collector.store.sql import Target
from sparwatt import wire
from tests.support.messages import NOW_MS, message


def rows(target: Target, sql: str) -> list[tuple[Any, ...]]:
    with closing(connect(target)) as db:
        return [tuple(row) for row in db.execute(sql).fetchall()]


@dataclass(frozen=True)
class Notice:
    receiver: str
    site: str
    body: bytes


def test_tokens_get_their_ids_and_are_revoked_once(db_target: Target) -> None:
    store = Store(db_target)
    first = store.add_token("ops", "admin", ["b", "a"], "hash-1")
    second = store.add_token("viewer", "read", ["a"], "hash-2", expires_ms=NOW_MS)
    assert second == first + 1
    assert store.revoke_token(first)
    assert not store.revoke_token(first)  # revoked before
    assert not store.revoke_token(second + 100)  # no such token
    got = rows(db_target, "SELECT id, sites, revoked_ms IS NULL, expires_ms FROM token ORDER BY id")
    assert [(i, s, bool(live), e) for i, s, live, e in got] == [
        (first, '["a", "b"]', False, None),
        (second, '["a"]', True, NOW_MS),
    ]
    store.close()


def test_opportunities_alerts_and_the_alert_state_are_replaced_by_key(db_target: Target) -> None:
    store = Store(db_target)
    store.save_opportunities(
        [
            OpportunityRow("o1", "s", "m1", "base_load", "open", {"kwh": 1}, NOW_MS),
            OpportunityRow("o2", "s", "m2", "base_load", "open", {"kwh": 2}, NOW_MS),
        ]
    )
    store.save_opportunities(
        [OpportunityRow("o1", "s", "m1", "base_load", "closed", {"kwh": 3}, NOW_MS + 1)]
    )
    assert rows(db_target, "SELECT id, status, data, updated_ms FROM opportunity ORDER BY id") == [
        ("o1", "closed", '{"kwh": 3}', NOW_MS + 1),
        ("o2", "open", '{"kwh": 2}', NOW_MS),
    ]

    def alert(state: str, resolved: int | None) -> AlertRow:
        return AlertRow("a1", "s", {"meter": "m1"}, state, "warning", "high", NOW_MS, resolved, {})

    store.save_alert_round({"round": 1}, [alert("firing", None)], NOW_MS, [Notice("r", "s", b"x")])
    store.save_alert_round({"round": 2}, [alert("resolved", NOW_MS + 5)], NOW_MS + 5)
    assert rows(db_target, "SELECT id, state, resolved_ms FROM alert") == [
        ("a1", "resolved", NOW_MS + 5)
    ]
    assert rows(db_target, "SELECT id, data, updated_ms FROM alert_state") == [
        (1, '{"round": 2}', NOW_MS + 5)
    ]
    store.close()


def test_a_notice_is_retried_until_delivered(db_target: Target) -> None:
    store = Store(db_target)
    store.save_alert_round({}, [], NOW_MS, [Notice("r1", "s", b"one"), Notice("r2", "s", b"two")])
    first, second = store.due_notices(NOW_MS)
    assert (first.receiver, first.body, first.attempts, first.due) == ("r1", b"one", 0, True)
    store.notice_failed(first.id, NOW_MS + 60_000, "receiver down " * 100)
    store.notice_delivered(second.id)
    [again] = store.due_notices(NOW_MS + 1)
    assert (again.id, again.attempts, again.due) == (first.id, 1, False)
    assert store.due_notices(NOW_MS + 60_000)[0].due
    assert len(rows(db_target, "SELECT last_error FROM notice")[0][0]) == 500
    store.close()


def test_silences_and_measures_are_removed_once(db_target: Target) -> None:
    store = Store(db_target)
    store.add_silence("s1", "site", None, NOW_MS, NOW_MS + 1, "works")
    measure = MeasureRow(
        "m1", "site", ["main"], "led", "LED", date(2024, 1, 1), None, 1000.0, None, None,
        "auto", [], None, NOW_MS, NOW_MS,
    )  # fmt: skip
    store.put_measure(measure)
    store.put_measure(dataclasses.replace(measure, title="LED lights"))
    assert rows(db_target, "SELECT id, title, installed_to FROM measure") == [
        ("m1", "LED lights", None)
    ]
    assert store.remove_silence("s1")
    assert not store.remove_silence("s1")
    assert store.remove_measure("m1")
    assert not store.remove_measure("m1")
    store.close()


def test_temperatures_count_what_is_new_or_changed(db_target: Target) -> None:
    store = Store(db_target)
    hours = [NOW_MS + k * 3_600_000 for k in range(3)]
    assert store.put_temperatures("site", hours, [1.0, 2.0, 3.0]) == 3
    assert store.put_temperatures("site", hours, [1.0, 2.5, 3.0]) == 1
    assert store.put_temperatures("site", hours, [1.0, 2.5, 3.0]) == 0
    assert rows(db_target, "SELECT celsius FROM temperature ORDER BY start_ms") == [
        (1.0,),
        (2.5,),
        (3.0,),
    ]
    store.close()


def test_gateway_status_health_and_stats_are_kept(db_target: Target) -> None:
    store = Store(db_target)
    store.write([message(1, [("m1", NOW_MS, {"power_w": 1.0})])])
    status = wire.StatusMessage(state=wire.GatewayState.ONLINE)
    store.set_status("site-a", "gw1", status)
    store.set_health("site-a", "gw1", {"cpu": 0.5})
    store.set_stats({"rate": 10.0, "error": "none", "gone": None})
    store.set_stats({"rate": 12.5})
    assert rows(db_target, "SELECT state, health FROM gateway") == [("online", '{"cpu": 0.5}')]
    assert rows(db_target, "SELECT name, value, text FROM stat ORDER BY name") == [
        ("error", None, "none"),
        ("gone", None, None),
        ("rate", 12.5, None),
    ]
    store.close()
