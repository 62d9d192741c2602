"""The gateway's optional metrics listener: its health figures in Prometheus text format."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry

from devtools.broker import Mosquitto
from gateway import metrics
from gateway.settings import Metrics
from sparwatt.errors import ConfigError
from tests.support.fleet import gateway_with_failing_meter, sim_with_failing_meter
from tests.support.health import health
from tests.support.metrics import Samples, samples
from tests.support.processes import ROOT, MqttRecorder, Processes, free_port, wait_until

GW = {"site": "site-a", "gateway": "gw1"}


def one(found: Samples, name: str, **labels: str) -> float:
    return found[(name, frozenset({**GW, **labels}.items()))]


def exposition(report: dict[str, Any]) -> Samples:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics.HealthCollector(lambda: report))
    return samples(generate_latest(registry).decode())


def test_every_figure_of_a_health_report_becomes_a_sample_with_its_value() -> None:
    found = exposition(health())
    polls = "sparwatt_gateway_meter_polls_total"
    assert one(found, polls, meter="main", result="ok") == 98
    assert one(found, polls, meter="main", result="failed") == 2
    assert one(found, polls, meter="hall", result="failed") == 30
    assert one(found, polls, meter="hall", result="skipped") == 5
    assert one(found, "sparwatt_gateway_meter_requests_total", meter="main") == 196
    assert one(found, "sparwatt_gateway_meter_consecutive_failures", meter="hall") == 30
    assert one(found, "sparwatt_gateway_meter_latency_seconds", meter="main") == 0.0415
    assert one(found, "sparwatt_gateway_outbox_batches") == 3
    assert one(found, "sparwatt_gateway_outbox_bytes") == 4000
    assert one(found, "sparwatt_gateway_outbox_oldest_age_seconds") == 12.5
    assert one(found, "sparwatt_gateway_outbox_dropped_batches_total") == 0
    assert one(found, "sparwatt_gateway_mqtt_connected") == 1
    assert one(found, "sparwatt_gateway_mqtt_published_total") == 100
    assert one(found, "sparwatt_gateway_uptime_seconds") == 120
    assert one(found, "sparwatt_gateway_info", version="0.1.0", config_version="0123456789ab") == 1


def test_a_meter_not_polled_yet_has_counts_of_zero_and_no_latency() -> None:
    report = health(meters={"new": {"ok": 0, "failed": 0, "last_latency_ms": None}})
    report["outbox"]["oldest_age_s"] = None
    found = exposition(report)
    assert one(found, "sparwatt_gateway_meter_polls_total", meter="new", result="ok") == 0
    assert not [k for k in found if k[0] == "sparwatt_gateway_meter_latency_seconds"]
    assert one(found, "sparwatt_gateway_outbox_oldest_age_seconds") == 0  # nothing waits


def test_the_listener_serves_over_http_and_reads_the_figures_on_the_event_loop() -> None:
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    threads: list[str] = []

    def report() -> dict[str, Any]:
        threads.append(threading.current_thread().name)
        return health()

    listener = metrics.serve(("127.0.0.1", 0), loop, report)
    assert listener is not None
    try:
        response = httpx.get(f"http://127.0.0.1:{listener.port}/metrics", timeout=5)
    finally:
        listener.stop()
        loop.call_soon_threadsafe(loop.stop)
        runner.join(5)
        loop.close()
    assert response.status_code == 200
    assert one(samples(response.text), "sparwatt_gateway_mqtt_connected") == 1
    assert threads == [runner.name]  # where the outbox's SQLite connection lives


def test_a_taken_port_is_one_clear_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError) as err:
            metrics.MetricsListener("127.0.0.1", port, health)
    assert err.value.problems == [
        f"metrics: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]


@pytest.mark.parametrize(
    ("listen", "address"),
    [("127.0.0.1:9108", ("127.0.0.1", 9108)), ("[::1]:9108", ("::1", 9108)), (None, None)],
)
def test_listen_addresses_are_host_and_port(
    listen: str | None, address: tuple[str, int] | None
) -> None:
    assert Metrics(listen=listen).address() == address


@pytest.mark.parametrize("listen", ["9108", "localhost", "127.0.0.1:0", "127.0.0.1:70000", ":1"])
def test_a_bad_listen_address_is_refused_at_start(listen: str) -> None:
    with pytest.raises(ValueError, match="listen"):
        Metrics(listen=listen)


# ---- a gateway process polling a simulator, one meter of which stops answering


@pytest.mark.integration
def test_a_running_gateway_serves_its_polls_failures_and_queue_as_its_health_reports_them(
    tmp_path: Path, broker: Mosquitto, procs: Processes
) -> None:
    good, failing, port = free_port(), free_port(), free_port()
    procs.sim(sim_with_failing_meter(good, failing, silent_after=4), ports=[good, failing])
    cfg = tmp_path / "gw.toml"
    cfg.write_text(
        gateway_with_failing_meter(
            tmp_path / "state",
            "site-a",
            broker.port,
            good,
            failing,
            extra=f'[metrics]\nlisten = "127.0.0.1:{port}"\n',
        )
    )
    recorder = MqttRecorder(broker.port, ["sparwatt/v1/site-a/gw1/health"])
    try:
        gateway = procs.spawn("gateway", "gateway.cli", "run", str(cfg))

        def scrape() -> Samples | None:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
            except httpx.HTTPError:
                return None
            return samples(response.text)

        def failing_reported() -> tuple[Samples, dict[str, Any]] | None:
            reports = recorder.payloads("/health")
            if not reports or reports[-1]["meters"]["m2"]["consecutive_failures"] < 1:
                return None
            found = scrape()
            return None if found is None else (found, reports[-1])

        got = wait_until(failing_reported, 25, "a health report with m2 failing")
        assert isinstance(got, tuple)
        found, report = got
    finally:
        recorder.stop()

    polls = "sparwatt_gateway_meter_polls_total"
    for meter in ("m1", "m2"):
        stats = report["meters"][meter]
        for result in ("ok", "failed"):
            # the scrape came after the report: counters only grow
            assert one(found, polls, meter=meter, result=result) >= stats[result]
    assert one(found, polls, meter="m1", result="ok") >= 1
    assert one(found, polls, meter="m2", result="failed") >= 1
    assert one(found, "sparwatt_gateway_meter_consecutive_failures", meter="m2") >= 1
    assert one(found, "sparwatt_gateway_meter_consecutive_failures", meter="m1") == 0
    assert one(found, "sparwatt_gateway_meter_latency_seconds", meter="m1") > 0
    assert one(found, "sparwatt_gateway_mqtt_connected") == 1
    assert one(found, "sparwatt_gateway_uptime_seconds") >= report["uptime_s"]
    assert ("sparwatt_gateway_outbox_batches", frozenset(GW.items())) in found
    info = {"version": report["version"], "config_version": report.get("config_version") or ""}
    assert one(found, "sparwatt_gateway_info", **info) == 1

    procs.stop(gateway)
    assert gateway.returncode == 0, procs.log("gateway")


@pytest.mark.integration
def test_a_gateway_whose_metrics_port_is_taken_stops_with_one_line_and_exit_2(
    tmp_path: Path, broker: Mosquitto
) -> None:
    bus = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = tmp_path / "gw.toml"
        cfg.write_text(
            gateway_with_failing_meter(
                tmp_path / "state",
                "site-a",
                broker.port,
                bus,
                bus,
                extra=f'[metrics]\nlisten = "127.0.0.1:{port}"\n',
            )
        )
        done = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "run", str(cfg)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"metrics: cannot listen on 127.0.0.1:{port}: Address already in use"
    )
    assert "Traceback" not in done.stderr
