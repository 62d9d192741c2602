"""Alert notices kept in the store until their receiver takes them: backoff, order, give-up."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.alerts import Notification
from collector.alerts.channels import Dispatcher
from collector.evaluation.notices import (
    NOTICE_MAX_AGE_MS,
    NOTICE_RETRY_MAX_MS,
    NOTICE_RETRY_MS,
    deliver_notices,
)
from collector.store import Store
from sparwatt.errors import ChannelError

T0 = 1_790_000_000_000


class Flaky:
    """A receiver that refuses while `down`, and keeps what it takes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.down = True
        self.got: list[str] = []
        self.tries = 0

    def send(self, notification: Notification) -> None:
        self.tries += 1
        if self.down:
            raise ChannelError(self.name, "HTTP 503")
        self.got.append(notification.headline())


def _note(site: str, ts_ms: int) -> Notification:
    return Notification(site=site, ts=datetime.fromtimestamp(ts_ms / 1000, UTC))


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    store = Store(tmp_path / "c.db")
    yield store
    store.close()


def _queue(store: Store, dispatcher: Dispatcher, at_ms: int, *sites: str) -> None:
    notices = dispatcher.notices([_note(site, at_ms) for site in sites])
    store.save_alert_round({}, [], at_ms, notices)


def test_a_refused_notice_waits_longer_each_time_and_holds_back_newer_ones(store: Store) -> None:
    hook = Flaky("hook")
    dispatcher = Dispatcher({"hook": hook}, lambda site: ["hook"])
    _queue(store, dispatcher, T0, "first")
    assert deliver_notices(store, dispatcher, T0).failed == 1
    _queue(store, dispatcher, T0 + 1, "second")
    # not due yet: nothing is tried, and the newer notice waits behind it
    result = deliver_notices(store, dispatcher, T0 + NOTICE_RETRY_MS - 1)
    assert (result.delivered, result.failed, result.pending, hook.tries) == (0, 0, 2, 1)
    assert deliver_notices(store, dispatcher, T0 + NOTICE_RETRY_MS).failed == 1
    # the second pause is twice the first
    assert deliver_notices(store, dispatcher, T0 + 3 * NOTICE_RETRY_MS - 1).failed == 0
    assert deliver_notices(store, dispatcher, T0 + 3 * NOTICE_RETRY_MS).failed == 1
    assert hook.tries == 3
    hook.down = False
    result = deliver_notices(store, dispatcher, T0 + 3 * NOTICE_RETRY_MS + NOTICE_RETRY_MAX_MS)
    assert (result.delivered, result.pending) == (2, 0)
    assert hook.got == ["first: no change", "second: no change"]


def test_other_receivers_do_not_wait_for_one_that_is_down(store: Store) -> None:
    hook, mail = Flaky("hook"), Flaky("mail")
    mail.down = False
    dispatcher = Dispatcher({"hook": hook, "mail": mail}, lambda site: ["hook", "mail"])
    _queue(store, dispatcher, T0, "a", "b")
    result = deliver_notices(store, dispatcher, T0)
    assert (result.delivered, result.failed, result.pending) == (2, 1, 2)
    assert mail.got == ["a: no change", "b: no change"]
    assert hook.tries == 1  # b's notice for the hook waits behind a's


def test_a_notice_is_given_up_after_a_day_with_an_error(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    hook = Flaky("hook")
    dispatcher = Dispatcher({"hook": hook}, lambda site: ["hook"])
    _queue(store, dispatcher, T0, "plant")
    deliver_notices(store, dispatcher, T0)
    with caplog.at_level(logging.ERROR, logger="collector.evaluation"):
        result = deliver_notices(store, dispatcher, T0 + NOTICE_MAX_AGE_MS + 1)
    assert (result.dropped, result.pending, hook.tries) == (1, 0, 1)
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "given up receiver=hook site=plant after 1 attempt(s)" in record.getMessage()


def test_a_notice_for_a_receiver_no_longer_configured_is_dropped_at_once(store: Store) -> None:
    old = Dispatcher({"gone": Flaky("gone")}, lambda site: ["gone"])
    _queue(store, old, T0, "plant")
    now = Dispatcher({}, lambda site: [])
    result = deliver_notices(store, now, T0)
    assert (result.dropped, result.pending) == (1, 0)


def test_a_notice_refused_for_good_is_dropped_and_the_next_one_goes_out(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    class Picky:
        name = "hook"

        def __init__(self) -> None:
            self.got: list[str] = []

        def send(self, notification: Notification) -> None:
            if notification.site == "bad":
                raise ChannelError("hook", "POST http://x refused: HTTP 400", permanent=True)
            self.got.append(notification.site)

    hook = Picky()
    dispatcher = Dispatcher({"hook": hook}, lambda site: ["hook"])
    _queue(store, dispatcher, T0, "bad", "good")
    with caplog.at_level(logging.ERROR, logger="collector.evaluation"):
        result = deliver_notices(store, dispatcher, T0)
    assert (result.delivered, result.dropped, result.pending) == (1, 1, 0)
    assert hook.got == ["good"]
    assert "alert notice dropped receiver=hook site=bad: POST http://x refused: HTTP 400" in (
        caplog.text
    )
