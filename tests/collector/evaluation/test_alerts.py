"""Alert rounds on the stored data, delivered over a real broker, SMTP server and webhook.

The collector runs for real (MQTT subscriber, ingest, interval refresh); the test writes
meter readings into its database the way ingest would and drives alert rounds itself with
an injected clock, one round a minute after each 15-minute interval closes. The database is
a SQLite file or a PostgreSQL database.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiosmtpd.controller import Controller

from collector import settings
from collector.evaluation.inputs import load_inputs
from collector.evaluation.scheduler import EvaluationService
from collector.intervals.energy import IntervalPolicy
from collector.intervals.refresh import refresh_intervals
from collector.service import Collector
from collector.store import Reader, Store, now_ms
from collector.store.sql import Target
from devtools.broker import Mosquitto, free_port
from sparwatt import wire
from tests.support.engines import sqlite_backend_only
from tests.support.processes import MqttRecorder, collector_cli, collector_config, wait_until

pytestmark = pytest.mark.integration

Q_MS = 900_000
Q = timedelta(minutes=15)
DELAY = timedelta(seconds=60)
SITE, GATEWAY = "plant", "gw1"
METERS = ("hall", "press")
NORMAL_KWH = 0.5  # 2 kW every quarter of the week
HIGH_KWH = 3.0  # 12 kW: a press left running
ALERTS_TOML = """
default_receivers = ["dashboard", "hook", "mail"]

[rules.unusual_usage]
for = "15m"

[receivers.dashboard]
type = "mqtt"

[receivers.hook]
type = "webhook"
url = "{url}"
retries = 0

[receivers.mail]
type = "email"
host = "127.0.0.1"
port = {smtp_port}
starttls = false
sender = "sparwatt@example.com"
recipients = ["energy@example.com"]
"""


class Hook:
    """A local HTTP receiver that keeps every JSON body posted to it, or answers 503 to
    everything (counting the refusals) while `down` is set."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.down = False
        self.refused = 0
        bodies, hook = self.bodies, self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if hook.down:
                    hook.refused += 1
                    self.send_response(503)
                else:
                    bodies.append(body)
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/sparwatt"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Inbox:
    """aiosmtpd handler keeping every accepted message."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(BytesParser().parsebytes(envelope.content))
        return "250 OK"


@dataclass
class Plant:
    """One site with two meters whose counters the test moves forward quarter by quarter."""

    store: Store
    reader: Reader
    t0: datetime  # first quarter the test controls; history ends here
    counters: dict[str, float] = field(default_factory=lambda: dict.fromkeys(METERS, 1000.0))
    seq: int = 0
    written_to: datetime | None = None

    def write(self, until: datetime, kwh: dict[str, float], rng: np.random.Generator) -> None:
        """Counter readings at every quarter boundary after `written_to` up to `until`."""
        ts = self.written_to + Q if self.written_to else until
        readings = []
        while ts <= until:
            if self.written_to is not None:  # the energy of the quarter ending at ts
                for meter in METERS:
                    self.counters[meter] += kwh[meter] * (1 + 0.02 * rng.standard_normal())
            readings += [
                wire.Reading(
                    meter=m, ts=ts, values={"energy_import_kwh": round(self.counters[m], 4)}
                )
                for m in METERS
            ]
            self.written_to = ts
            ts += Q
        if readings:
            self.seq += 1
            self.store.write(
                [
                    wire.ReadingsMessage(
                        site=SITE, gateway=GATEWAY, seq=self.seq, sent_at=until, readings=readings
                    )
                ]
            )


@dataclass
class Rig:
    plant: Plant
    service: EvaluationService
    hook: Hook
    inbox: Inbox
    mqtt: MqttRecorder
    broker: Mosquitto
    db: Target
    rng: np.random.Generator

    def quarter(self, k: int, press_kwh: float) -> Any:
        """Close quarter k-1 (press at `press_kwh`) and run the round a minute later."""
        end = self.plant.t0 + k * Q
        self.plant.write(end, {"hall": NORMAL_KWH, "press": press_kwh}, self.rng)
        start_ms = int((end - Q).timestamp() * 1000)

        def refreshed() -> bool:
            rows = self.plant.reader.interval_energy(start_ms, start_ms + Q_MS)
            return sum(1 for _m, _s, kwh, _w in rows if kwh is not None) == len(METERS)

        wait_until(refreshed, 20, f"the collector's intervals of quarter {k}", every_s=0.05)
        return self.service.alert_round(end + DELAY)

    def sent(self, alertname: str, status: str = "firing") -> list[dict[str, Any]]:
        return [
            a
            for body in self.hook.bodies
            for a in body[status]
            if a["labels"]["alertname"] == alertname
        ]

    def publish_status(self, state: str) -> None:
        status = wire.StatusMessage(state=wire.GatewayState(state))
        self.mqtt.client.publish(
            wire.topic(SITE, GATEWAY, "status"), wire.encode_status(status), qos=1, retain=True
        )

        def stored() -> bool:
            return any(g.state == state for g in self.plant.reader.gateways())

        wait_until(stored, 20, f"gateway state {state} in the store")


@pytest.fixture
def rig(tmp_path: Path, backend: Target, broker: Mosquitto) -> Iterator[Rig]:
    db = backend
    rng = np.random.default_rng(11)
    # a day ahead of the wall clock, so silences for the test's times are in the future
    t0 = datetime.fromtimestamp((now_ms() // Q_MS + 96) * Q_MS / 1000, UTC)
    store = Store(db)
    plant = Plant(store, Reader(db), t0, written_to=t0 - timedelta(weeks=6, days=1))
    while plant.written_to is not None and plant.written_to < t0:  # six ordinary weeks
        plant.write(
            min(plant.written_to + timedelta(days=1), t0), dict.fromkeys(METERS, NORMAL_KWH), rng
        )
    refresh_intervals(store, IntervalPolicy(max_gap_ms=7_200_000))

    config_path = tmp_path / "collector.toml"
    config_path.write_text(collector_config(db, broker.port))
    collector = Collector(settings.load(config_path))
    stop = threading.Event()
    runner = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    runner.start()
    hook, inbox = Hook(), Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    (tmp_path / "alerts.toml").write_text(ALERTS_TOML.format(url=hook.url, smtp_port=smtp.port))
    eval_path = tmp_path / "evaluation.toml"
    eval_path.write_text(
        collector_config(db, broker.port) + '[evaluation]\nalerts_file = "alerts.toml"\n'
    )
    eval_config = settings.load(eval_path)
    service = EvaluationService(
        eval_config,
        load_inputs(eval_config.evaluation),
        publish=collector.source.publish,
    )  # type: ignore[attr-defined]
    recorder = MqttRecorder(broker.port, [wire.alerts_topic("+")], client_id="dashboard")
    wait_until(
        collector.source.connected.is_set,
        20,  # type: ignore[attr-defined]
        "the collector's MQTT session",
    )
    try:
        yield Rig(plant, service, hook, inbox, recorder, broker, db, rng)
    finally:
        recorder.stop()
        service.stop()
        stop.set()
        runner.join(30)
        smtp.stop()
        hook.close()
        plant.reader.close()
        store.close()


def _alerts_on_mqtt(rig: Rig) -> list[list[str]]:
    """The alertnames of each retained open-alerts message the dashboard got, in order."""
    return [
        [a["labels"]["alertname"] for a in p["alerts"]]  # type: ignore[index, union-attr]
        for p in rig.mqtt.payloads("/alerts")
    ]


# on SQLite: the channels are the point here; a collector's alert rounds on VictoriaMetrics
# + PostgreSQL publish unusual usage in tests/collector/evaluation/test_service.py
@sqlite_backend_only
def test_unusual_usage_fires_once_on_every_channel_and_resolves(rig: Rig) -> None:
    for k in (1, 2):
        rig.quarter(k, NORMAL_KWH)
    assert rig.hook.bodies == []  # six normal weeks and two normal quarters: all quiet
    # the press runs on from t = t0 + 30 min: the round after quarter 3 sees one unusual
    # interval, the next two in a row (pending), and after for = 15 min it fires, at
    # t + for + 2 intervals (+ the round's minute of delay)
    first_bad, fired_at = 3, None
    for k in range(first_bad, first_bad + 6):
        rig.quarter(k, HIGH_KWH)
        if fired_at is None and rig.sent("unusual_usage"):
            fired_at = k
    assert fired_at == first_bad + 2

    # exactly one firing notice per channel, however many rounds it stays on
    (alert,) = rig.sent("unusual_usage")
    assert alert["labels"] == {"alertname": "unusual_usage", "site": SITE, "meter": "press"}
    assert alert["values"]["actual_kw"] > 10
    assert [m["Subject"] for m in rig.inbox.messages] == [f"[Sparwatt] {SITE}: 1 firing"]
    assert "press" in rig.inbox.messages[0].get_payload()
    wait_until(lambda: _alerts_on_mqtt(rig), 20, "the open alerts on MQTT")
    assert _alerts_on_mqtt(rig) == [["unusual_usage"]]
    late = MqttRecorder(rig.broker.port, [wire.alerts_topic(SITE)], client_id="late-dashboard")
    try:
        wait_until(lambda: late.messages, 20, "the retained open alerts")
        topic, payload, retained = late.messages[0]
        assert (topic, retained) == (wire.alerts_topic(SITE), True)
        assert json.loads(payload)["alerts"][0]["labels"]["meter"] == "press"
    finally:
        late.stop()

    # the press is switched off: one resolve notice on every channel, then silence
    end = first_bad + 6
    rig.quarter(end, NORMAL_KWH)
    for k in range(end + 1, end + 3):
        rig.quarter(k, NORMAL_KWH)
    assert len(rig.hook.bodies) == 2
    (resolved,) = rig.sent("unusual_usage", "resolved")
    assert resolved["fingerprint"] == alert["fingerprint"]
    assert rig.hook.bodies[1]["open"] == []
    assert [m["Subject"] for m in rig.inbox.messages][1:] == [f"[Sparwatt] {SITE}: 1 resolved"]
    wait_until(lambda: len(_alerts_on_mqtt(rig)) >= 2, 20, "the all-clear on MQTT")
    assert _alerts_on_mqtt(rig) == [["unusual_usage"], []]

    # the alert table keeps the episode for the CLI and the web pages
    run = collector_cli("alerts", "--db", str(rig.db), "--json")
    assert run.returncode == 0, run.stderr
    (row,) = json.loads(run.stdout)
    assert (row["state"], row["labels"]["meter"]) == ("resolved", "press")
    assert row["resolved_ms"] is not None


@sqlite_backend_only
def test_offline_gateway_inhibits_meter_alerts_until_it_is_back(rig: Rig) -> None:
    rig.quarter(1, NORMAL_KWH)
    rig.publish_status("offline")  # retained, as the gateway's last will leaves it
    for k in range(2, 7):
        rig.quarter(k, HIGH_KWH)
    assert [a["labels"]["gateway"] for a in rig.sent("gateway_offline")] == [GATEWAY]
    assert rig.sent("unusual_usage") == []  # firing by now, but the gateway alert covers it
    assert all("1 firing" in m["Subject"] for m in rig.inbox.messages)
    assert len(rig.inbox.messages) == 1

    rig.publish_status("online")
    rig.quarter(7, HIGH_KWH)
    # the gateway alert ends and the usage alert, still firing, is announced now
    assert [a["labels"]["alertname"] for a in rig.sent("gateway_offline", "resolved")] == [
        "gateway_offline"
    ]
    assert [a["labels"]["meter"] for a in rig.sent("unusual_usage")] == ["press"]


@sqlite_backend_only
def test_silence_window_mutes_the_alert_and_its_end_announces_it(rig: Rig) -> None:
    t0 = rig.plant.t0
    add = collector_cli(
        "silence",
        "add",
        "--db",
        str(rig.db),
        "--site",
        SITE,
        "--meter",
        "press",
        "--from",
        t0.isoformat(),
        "--to",
        (t0 + 6 * Q).isoformat(),
        "--reason",
        "press trial run",
        "--json",
    )
    assert add.returncode == 0, add.stderr
    silence_id = json.loads(add.stdout)["id"]
    listed = collector_cli("silence", "list", "--db", str(rig.db), "--json")
    assert [s["id"] for s in json.loads(listed.stdout)] == [silence_id]

    for k in range(1, 6):  # fires at the round after quarter 3, inside the silence
        rig.quarter(k, HIGH_KWH)
    assert rig.hook.bodies == []
    assert rig.inbox.messages == []
    with Reader(rig.db) as reader:
        rows = reader.alerts(SITE)
    assert [(r.state, r.data["muted"]) for r in rows] == [("firing", f"silenced:{silence_id}")]

    rig.quarter(6, HIGH_KWH)  # the round at t0 + 90 min + 1 min is after the silence
    assert [a["labels"]["meter"] for a in rig.sent("unusual_usage")] == ["press"]
    assert len(rig.inbox.messages) == 1


@sqlite_backend_only
def test_removed_silence_no_longer_listed(backend: Target) -> None:
    db = backend
    Store(db).close()
    t0 = datetime.now(UTC) + timedelta(days=1)
    add = collector_cli(
        "silence",
        "add",
        "--db",
        str(db),
        "--site",
        SITE,
        "--from",
        t0.isoformat(),
        "--to",
        (t0 + Q).isoformat(),
        "--reason",
        "x",
        "--json",
    )
    silence_id = json.loads(add.stdout)["id"]
    gone = collector_cli("silence", "remove", silence_id, "--db", str(db))
    assert gone.returncode == 0, gone.stderr
    listed = collector_cli("silence", "list", "--db", str(db), "--json")
    assert json.loads(listed.stdout) == []
    again = collector_cli("silence", "remove", silence_id, "--db", str(db))
    assert again.returncode == 1
    bad = collector_cli(
        "silence",
        "add",
        "--db",
        str(db),
        "--site",
        SITE,
        "--from",
        t0.isoformat(),
        "--to",
        t0.isoformat(),
        "--reason",
        "x",
    )
    assert bad.returncode == 2
    assert "not after" in bad.stderr


def _pending(db: Target) -> list[str]:
    store = Store(db)
    try:
        return [n.receiver for n in store.due_notices(2**62)]
    finally:
        store.close()


@sqlite_backend_only
def test_a_receiver_that_is_down_gets_its_notices_later_in_order(rig: Rig) -> None:
    rig.hook.down = True
    for k in (1, 2):
        rig.quarter(k, NORMAL_KWH)
    for k in range(3, 6):  # fires after the round of quarter 5, as in the test above
        rig.quarter(k, HIGH_KWH)
    assert rig.hook.refused == 1
    assert [m["Subject"] for m in rig.inbox.messages] == [f"[Sparwatt] {SITE}: 1 firing"]
    assert _pending(rig.db) == ["hook"]  # kept for the hook only: mail and MQTT got theirs

    for k in range(6, 9):  # switched off: resolved, and that notice queues behind the first
        rig.quarter(k, NORMAL_KWH)
        # each round tries the oldest notice again; the newer one waits behind it
        assert rig.hook.refused == k - 4
    assert len(rig.inbox.messages) == 2
    assert _pending(rig.db) == ["hook", "hook"]

    rig.hook.down = False
    rig.quarter(9, NORMAL_KWH)
    assert [(len(b["firing"]), len(b["resolved"])) for b in rig.hook.bodies] == [(1, 0), (0, 1)]
    assert (
        rig.sent("unusual_usage")[0]["fingerprint"]
        == rig.sent("unusual_usage", "resolved")[0]["fingerprint"]
    )
    assert _pending(rig.db) == []
    rig.quarter(10, NORMAL_KWH)
    assert len(rig.hook.bodies) == 2  # delivered once each
