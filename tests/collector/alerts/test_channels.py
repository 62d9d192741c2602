"""Channels: MQTT with a fake publish, webhook against a real local HTTP server, dispatch."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from collector.alerts.channels.dispatch import Dispatcher, Failure
from collector.alerts.channels.transports import MqttChannel, WebhookChannel
from collector.alerts.lifecycle import AlertState, advance
from collector.alerts.model import Condition, Severity
from collector.alerts.notification import Notification
from sparwatt.errors import ChannelError
from tests.support.alert_data import notification, utc

T0 = utc(2025, 5, 6, 12)


def resolved_notification() -> Notification:
    cond = Condition(
        {"alertname": "meter_silent", "site": "s1", "meter": "m1"}, Severity.WARNING, "x"
    )
    first = advance(AlertState(), [cond], T0)
    (n,) = advance(first.state, [], T0.replace(minute=15)).notifications
    return n


# --- MQTT ---------------------------------------------------------------------------------


def test_mqtt_channel_publishes_open_alerts_retained_on_the_site_topic():
    calls: list[tuple[str, bytes, bool]] = []
    MqttChannel(lambda topic, payload, retain: calls.append((topic, payload, retain))).send(
        notification()
    )
    ((topic, payload, retain),) = calls
    assert topic == "sparwatt/v1/s1/alerts"
    assert retain is True
    body = json.loads(payload)
    assert body["schema"] == 1
    assert body["site"] == "s1"
    assert body["ts"] == "2025-05-06T12:00:00.000Z"
    assert [a["labels"]["meter"] for a in body["alerts"]] == ["m1"]
    assert body["alerts"][0]["status"] == "firing"


def test_mqtt_channel_publishes_an_empty_list_when_the_last_alert_resolves():
    calls: list[tuple[str, bytes, bool]] = []
    MqttChannel(lambda *args: calls.append(args)).send(resolved_notification())
    assert json.loads(calls[0][1])["alerts"] == []
    assert calls[0][2] is True


def test_mqtt_publish_error_becomes_channel_error():
    def broken(topic: str, payload: bytes, retain: bool) -> None:
        raise OSError("not connected")

    with pytest.raises(ChannelError, match="not connected"):
        MqttChannel(broken).send(notification())


# --- Webhook against a real HTTP server ---------------------------------------------------


class Receiver:
    """A local HTTP server that answers with scripted status codes and records requests."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output clean

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/sparwatt"

    def __enter__(self) -> Receiver:
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sleeps() -> list[float]:
    return []


_OPEN: list[WebhookChannel] = []


def webhook(url: str, sleeps: list[float], **kwargs) -> WebhookChannel:
    # Sleeps are recorded instead of slept, so backoff is asserted without waiting.
    channel = WebhookChannel(url, timeout=2.0, backoff=0.5, sleep=sleeps.append, **kwargs)
    _OPEN.append(channel)
    return channel


@pytest.fixture(autouse=True)
def _close_webhooks() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


@pytest.mark.integration
def test_webhook_posts_the_notification_as_json(sleeps):
    with Receiver([200]) as rx:
        webhook(rx.url, sleeps, headers={"X-Sparwatt": "1"}).send(notification())
    ((headers, body),) = rx.requests
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Sparwatt"] == "1"
    payload = json.loads(body)
    assert payload["site"] == "s1"
    assert [a["labels"]["meter"] for a in payload["firing"]] == ["m1"]
    assert payload["resolved"] == []
    assert sleeps == []


@pytest.mark.integration
def test_webhook_retries_after_a_500_with_backoff(sleeps):
    with Receiver([500, 503, 200]) as rx:
        webhook(rx.url, sleeps, retries=3).send(notification())
    assert len(rx.requests) == 3
    assert rx.requests[0][1] == rx.requests[2][1]  # the same body every time
    assert sleeps == [0.5, 1.0]


@pytest.mark.integration
def test_webhook_gives_up_after_its_retries(sleeps):
    with Receiver([500, 500, 500]) as rx, pytest.raises(ChannelError, match="3 attempt") as err:
        webhook(rx.url, sleeps, retries=2).send(notification())
    assert "HTTP 500" in str(err.value)
    assert "/hooks" not in str(err.value)  # paths may hold tokens; only the host is shown
    assert len(rx.requests) == 3


@pytest.mark.integration
@pytest.mark.parametrize(
    ("status", "permanent"),
    [(400, True), (404, True), (413, True), (401, False), (403, False), (302, False)],
)
def test_webhook_does_not_retry_a_client_error_now(sleeps, status: int, permanent: bool):
    """Sent once either way; only answers that cannot change drop the notice for good."""
    with Receiver([status]) as rx, pytest.raises(ChannelError, match=f"HTTP {status}") as err:
        webhook(rx.url, sleeps, retries=3).send(notification())
    assert len(rx.requests) == 1
    assert err.value.permanent is permanent


@pytest.mark.integration
def test_webhook_sends_the_bearer_token_from_its_file(sleeps, tmp_path: Path):
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    with Receiver([200]) as rx:
        webhook(rx.url, sleeps, bearer_token_file=token).send(notification())
    assert rx.requests[0][0]["Authorization"] == "Bearer s3cret"


def send_all(dispatcher: Dispatcher, notifications: list[Notification]) -> list[Failure | None]:
    """Route, then deliver each notice: None for delivered, else the problem."""
    return [dispatcher.deliver(n) for n in dispatcher.notices(notifications)]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.integration
def test_unreachable_webhook_is_logged_once_counted_and_contained(sleeps, caplog):
    url = f"http://127.0.0.1:{_closed_port()}/x"
    calls: list[tuple[str, bytes, bool]] = []
    dispatcher = Dispatcher(
        {"hook": webhook(url, sleeps, retries=2), "mqtt": MqttChannel(lambda *a: calls.append(a))},
        lambda site: ["hook", "mqtt"],
    )
    with caplog.at_level(logging.DEBUG, logger="collector.alerts"):
        outcome = send_all(dispatcher, [notification()])
    assert outcome[1] is None
    assert outcome[0] is not None
    assert "ConnectError" in outcome[0].reason
    assert not outcome[0].permanent  # the receiver may be back later
    assert dispatcher.failures["hook"] == 1
    assert dispatcher.delivered["mqtt"] == 1
    assert len(calls) == 1  # the other receiver still got it
    (record,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    message = record.getMessage()
    assert "receiver=hook" in message
    assert "site=s1" in message
    assert "ConnectError" in message


def test_dispatcher_contains_a_channel_bug(caplog):
    class Buggy:
        name = "buggy"

        def send(self, notification: Notification) -> None:
            raise KeyError("oops")

    dispatcher = Dispatcher({"buggy": Buggy()}, lambda site: ["buggy"])
    with caplog.at_level(logging.ERROR, logger="collector.alerts"):
        outcome = send_all(dispatcher, [notification()])
    assert outcome == [Failure("KeyError: 'oops'")]
    assert dispatcher.failures["buggy"] == 1
    assert len(caplog.records) == 1


def test_dispatcher_routes_by_site():
    got: dict[str, list[str]] = {"a": [], "b": []}

    class Recorder:
        def __init__(self, name: str) -> None:
            self.name = name

        def send(self, n: Notification) -> None:
            got[self.name].append(n.site)

    routes = {"s1": ["a"], "s2": ["a", "b"]}
    dispatcher = Dispatcher({"a": Recorder("a"), "b": Recorder("b")}, lambda s: routes[s])
    assert send_all(dispatcher, [notification("s1"), notification("s2")]) == [None] * 3
    assert got == {"a": ["s1", "s2"], "b": ["s2"]}


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    before = threading.active_count()
    yield
    assert threading.active_count() <= before
