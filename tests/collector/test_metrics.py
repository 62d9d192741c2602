"""The collector's /metrics: Prometheus text that prometheus-client's own parser reads, with
the figures of what was ingested, for admin tokens only."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from collector.evaluation.inputs import Inputs
from collector.evaluation.scheduler import EvaluationService
from collector.ingest.subscriber import Incoming
from collector.service import Collector
from collector.settings import Influx
from collector.sinks.influx import InfluxSink
from collector.store import Reader, Store
from collector.web import auth
from collector.web.app import create_app
from collector.web.context import WebContext
from devtools.broker import Mosquitto
from sparwatt import wire
from tests.support.health import health
from tests.support.messages import NOW_MS, config, encoded, readings_topic
from tests.support.metrics import Samples, samples
from tests.support.processes import Processes, collector_config, free_port, wait_until


def one(found: Samples, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


class NullSource:
    def take(self, limit: int, wait_s: float) -> list[Incoming]:
        return []

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def ack(self, items: list[Incoming]) -> None: ...


class NeverWrites:
    """An InfluxDB that is down: every point stays in the sink's backlog."""

    def write(self, lines: list[str]) -> None:
        raise OSError("down")

    def close(self) -> None: ...


def status(state: str) -> bytes:
    return wire.encode_status(
        wire.StatusMessage(state=wire.GatewayState(state), version="0.1.0", meters=["m1"])
    )


def ingest(collector: Collector) -> None:
    """Three good messages (one of them twice), one broken, and a gateway's status and health."""
    first = encoded(1, [("m1", NOW_MS, {"power_w": 1.0, "energy_import_kwh": 2.0})])
    second = encoded(2, [("m1", NOW_MS + 1000, {"power_w": 1.5})])
    third = encoded(3, [("m2", NOW_MS + 1000, {"power_w": 7.0})], gateway="gw2")
    collector.handle(
        [
            Incoming(readings_topic(), first, 1, 1),
            Incoming(readings_topic(), second, 2, 1),
            Incoming(readings_topic(), second, 3, 1),  # redelivered: its value is a duplicate
            Incoming(readings_topic(gateway="gw2"), third, 4, 1),
            Incoming(readings_topic(), b"{broken", 5, 1),
            Incoming(wire.topic("site-a", "gw1", "status"), status("online"), 6, 1),
            Incoming(wire.topic("site-a", "gw1", "health"), json.dumps(health()).encode(), 7, 0),
            Incoming(wire.topic("site-a", "gw2", "status"), status("offline"), 8, 1),
        ]
    )


def add_tokens(db: Path) -> dict[str, str]:
    store = Store(db)
    tokens = {}
    for name, role, sites in (("admin", "admin", []), ("consultant", "consultant", ["site-a"])):
        tokens[name] = auth.new_token()
        store.add_token(name, role, sites, auth.digest(tokens[name]))
    store.close()
    return tokens


def test_metrics_show_what_was_ingested_quarantined_stored_and_timed(tmp_path: Path) -> None:
    cfg = config(tmp_path / "c.db")
    sink = InfluxSink(Influx.model_validate({"enabled": True}), NeverWrites())  # never started
    collector = Collector(cfg, environ={}, sink=sink, source=NullSource())
    ingest(collector)
    collector.publish_stats()
    evaluation = EvaluationService(cfg, Inputs())
    evaluation.run_job("scan", lambda: time.sleep(0.05))
    evaluation.run_job("scan", lambda: 1 / 0)
    evaluation.stop()
    tokens = add_tokens(cfg.storage.db)

    with TestClient(create_app(WebContext(db=cfg.storage.db))) as client:
        response = client.get("/metrics", headers={"Authorization": f"Bearer {tokens['admin']}"})
    db = cfg.storage.db
    on_disk = db.stat().st_size + Path(f"{db}-wal").stat().st_size
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)

    assert one(found, "sparwatt_collector_messages_total") == 4
    assert one(found, "sparwatt_collector_readings_total") == 4
    assert one(found, "sparwatt_collector_stored_values_total") == 4  # 2 + 1 + 1
    assert one(found, "sparwatt_collector_duplicate_values_total") == 1
    assert one(found, "sparwatt_collector_quarantined_messages_total", reason="invalid_json") == 1
    assert one(found, "sparwatt_collector_store_bytes") == on_disk
    assert one(found, "sparwatt_collector_sink_enabled") == 1
    assert one(found, "sparwatt_collector_sink_backlog_points") == 4  # one point per reading
    assert one(found, "sparwatt_collector_sink_written_points_total") == 0

    assert one(found, "sparwatt_collector_job_duration_seconds_count", job="scan") == 2
    assert 0.05 <= one(found, "sparwatt_collector_job_duration_seconds_sum", job="scan") < 5
    assert one(found, "sparwatt_collector_job_failures_total", job="scan") == 1
    assert not [key for key in found if ("job", "alert_round") in key[1]]  # never ran

    with Reader(db) as reader:
        rows = {(g.site, g.gateway): g for g in reader.gateways()}
    gw1, gw2 = rows[("site-a", "gw1")], rows[("site-a", "gw2")]
    assert gw1.health_ms is not None
    seen = "sparwatt_collector_gateway_last_seen_timestamp_seconds"
    assert (
        one(found, seen, site="site-a", gateway="gw1")
        == max(gw1.health_ms, gw1.state_ms or 0) / 1000
    )
    assert one(found, seen, site="site-a", gateway="gw2") == (gw2.state_ms or 0) / 1000
    state = "sparwatt_collector_gateway_state"
    assert one(found, state, site="site-a", gateway="gw1", state="online") == 1
    assert one(found, state, site="site-a", gateway="gw2", state="offline") == 1
    assert one(found, state, site="site-a", gateway="gw2", state="online") == 0
    assert (
        one(found, "sparwatt_collector_gateway_outbox_batches", site="site-a", gateway="gw1") == 3
    )
    failing = "sparwatt_collector_gateway_meters_failing"
    assert one(found, failing, site="site-a", gateway="gw1") == 1


def test_metrics_answer_only_admin_tokens_with_status_codes_not_the_login_page(
    tmp_path: Path,
) -> None:
    db = tmp_path / "c.db"
    Store(db).close()
    tokens = add_tokens(db)
    with TestClient(create_app(WebContext(db=db))) as client:
        missing = client.get("/metrics", follow_redirects=False)
        consultant = client.get(
            "/metrics", headers={"Authorization": f"Bearer {tokens['consultant']}"}
        )
        admin = client.get("/metrics", headers={"Authorization": f"Bearer {tokens['admin']}"})
        openmetrics = client.get(
            "/metrics",
            headers={
                "Authorization": f"Bearer {tokens['admin']}",
                "Accept": "application/openmetrics-text; version=1.0.0",
            },
        )
    assert (missing.status_code, missing.headers["www-authenticate"]) == (401, "Bearer")
    assert consultant.status_code == 403
    assert admin.status_code == 200
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.endswith("# EOF\n")


# ---- the collector process, fed through a real Mosquitto


@pytest.mark.integration
def test_a_running_collector_serves_metrics_of_what_came_through_the_broker(
    tmp_path: Path, broker: Mosquitto, procs: Processes
) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    db, port = tmp_path / "collector.db", free_port()
    cfg = tmp_path / "collector.toml"
    cfg.write_text(collector_config(db, broker.port, http_port=port))
    procs.spawn("collector", "collector.cli", "run", str(cfg))
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: _up(f"{base}/login"), 30, "the collector's web server")
    token = add_tokens(db)["admin"]

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="fake-gateway", protocol=MQTTProtocolVersion.MQTTv5
    )
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        sent: list[Any] = [
            client.publish(
                readings_topic(),
                encoded(seq, [("m1", NOW_MS + seq * 1000, {"power_w": float(seq)})]),
                qos=1,
            )
            for seq in range(1, 11)
        ]
        sent.append(client.publish(readings_topic(), b"not json", qos=1))
        sent.append(
            client.publish(wire.topic("site-a", "gw1", "status"), status("online"), 1, True)
        )
        sent.append(
            client.publish(wire.topic("site-a", "gw1", "health"), json.dumps(health()), qos=1)
        )
        for info in sent:
            info.wait_for_publish(timeout=10)
    finally:
        client.disconnect()
        client.loop_stop()

    def scrape() -> Samples:
        response = httpx.get(
            f"{base}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
        assert response.status_code == 200, response.text
        return samples(response.text)

    def complete() -> Samples | None:
        found = scrape()
        done = (
            found.get(("sparwatt_collector_stored_values_total", frozenset())) == 10
            and found.get(
                (
                    "sparwatt_collector_quarantined_messages_total",
                    frozenset({("reason", "invalid_json")}),
                )
            )
            == 1
            and found.get(
                (
                    "sparwatt_collector_gateway_state",
                    frozenset({("site", "site-a"), ("gateway", "gw1"), ("state", "online")}),
                )
            )
            == 1
        )
        return found if done else None

    found = wait_until(complete, 20, "the messages counted in /metrics")
    assert isinstance(found, dict)
    assert one(found, "sparwatt_collector_messages_total") == 10
    seen = one(
        found,
        "sparwatt_collector_gateway_last_seen_timestamp_seconds",
        site="site-a",
        gateway="gw1",
    )
    assert abs(seen - time.time()) < 30


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
