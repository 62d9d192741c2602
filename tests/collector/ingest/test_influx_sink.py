"""The optional InfluxDB sink: batching, backoff, bounded buffer, and a real v2 write API.

The integration tests run VictoriaMetrics, which speaks InfluxDB's v2 write API and reads
back through /api/v1/export. A missing binary fails them: it never skips.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector import cli
from collector.ingest.subscriber import Incoming
from collector.service import Collector
from collector.settings import Influx
from collector.sinks.influx import ClientWriter, InfluxSink, to_lines
from devtools.victoria import VictoriaMetrics, VictoriaMetricsMissing
from sparwatt.errors import SinkWriteError
from tests.support.messages import NOW_MS, config, encoded, message, readings_topic
from tests.support.processes import wait_until

FAST: dict[str, Any] = {
    "flush_interval_ms": 10,
    "retry_initial_ms": 10,
    "retry_max_ms": 50,
    "max_buffer_points": 1000,
    "batch_size": 100,
}


def fast(**settings: Any) -> Influx:
    """Sink settings with short timers, so retries take milliseconds."""
    return Influx.model_validate({"enabled": True, **FAST, **settings})


class FlakyWriter:
    """Fails the first `failures` writes, then keeps every batch it is given."""

    def __init__(self, failures: int = 0, retry: bool = True) -> None:
        self.failures = failures
        self.retry = retry
        self.batches: list[list[str]] = []
        self.attempts = 0
        self.lock = threading.Lock()

    def write(self, lines: list[str]) -> None:
        with self.lock:
            self.attempts += 1
            if self.attempts <= self.failures:
                raise SinkWriteError("HTTP 503: unavailable", self.retry)
            self.batches.append(lines)

    def close(self) -> None: ...

    @property
    def lines(self) -> list[str]:
        return [line for batch in self.batches for line in batch]


def batch_of(n: int, first_ms: int = NOW_MS) -> list[Any]:
    return [message(k + 1, [("m1", first_ms + k * 1000, {"power_w": float(k)})]) for k in range(n)]


def test_readings_become_one_line_per_reading_with_millisecond_timestamps() -> None:
    msg = message(1, [("m1", NOW_MS + 7, {"power_w": 1.5, "energy_import_kwh": 1e20})])
    assert to_lines("sparwatt", [msg]) == [
        f"sparwatt,site=site-a,gateway=gw1,meter=m1 power_w=1.5,energy_import_kwh=1e+20 "
        f"{NOW_MS + 7}"
    ]


def test_failed_writes_are_retried_with_backoff_until_everything_is_written() -> None:
    writer = FlakyWriter(failures=3)
    sink = InfluxSink(fast(), writer)
    sink.start()
    sink.submit(batch_of(250))

    wait_until(lambda: sink.stats().backlog == 0, 10, "the backlog to drain", every_s=0.01)
    sink.stop()

    assert sorted(writer.lines) == sorted(to_lines("sparwatt", batch_of(250)))
    stats = sink.stats()
    assert (stats.written, stats.failures, stats.dropped) == (250, 3, 0)
    assert stats.last_error == "HTTP 503: unavailable"
    assert max(len(b) for b in writer.batches) <= 100


def test_a_full_buffer_drops_the_oldest_points_and_counts_them() -> None:
    writer = FlakyWriter(failures=10**9)
    sink = InfluxSink(fast(), writer)  # holds 1000 points
    sink.start()
    for k in range(5):
        sink.submit(batch_of(300, first_ms=NOW_MS + k * 1_000_000))

    stats = sink.stats()
    assert (stats.backlog, stats.dropped) == (1000, 500)
    sink.stop(flush_s=0)


def test_a_batch_the_server_refuses_for_good_is_dropped_not_retried_forever() -> None:
    writer = FlakyWriter(failures=1, retry=False)
    sink = InfluxSink(fast(), writer)
    sink.start()
    sink.submit(batch_of(50))
    wait_until(lambda: sink.stats().backlog == 0, 10, "the refused batch to go", every_s=0.01)
    sink.submit(batch_of(5))
    wait_until(lambda: sink.stats().written == 5, 10, "the next batch", every_s=0.01)
    sink.stop()
    assert (sink.stats().dropped, writer.attempts) == (50, 2)


# ---- against a real server speaking the InfluxDB v2 write API


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    vm = VictoriaMetrics(tmp_path / "vm").start()
    yield vm
    vm.stop()


def exported_points(vm: VictoriaMetrics) -> int:
    try:
        return sum(len(series) for series in vm.export().values())
    except OSError:
        return 0


@pytest.mark.integration
def test_every_accepted_reading_reaches_the_v2_write_api_with_its_tags(
    tmp_path: Path, victoria: VictoriaMetrics
) -> None:
    cfg = config(
        tmp_path / "c.db", influxdb={"enabled": True, "url": victoria.url, "flush_interval_ms": 50}
    )
    c = Collector(cfg, environ={"SPARWATT_INFLUX_TOKEN": "t0ken"}, source=_NullSource())
    assert c.sink is not None
    c.sink.start()
    c.handle(
        [
            Incoming(
                readings_topic(),
                encoded(
                    1,
                    [
                        ("m1", NOW_MS, {"power_w": 1500.25, "energy_import_kwh": 12.5}),
                        ("m2", NOW_MS + 1, {"power_w": -3.0}),
                    ],
                ),
                1,
                1,
            ),
            Incoming(readings_topic(), b"{broken", 2, 1),
        ]
    )

    wait_until(lambda: exported_points(victoria) >= 3, 20, "points in VictoriaMetrics")
    c.sink.stop()

    assert victoria.export() == {
        ("sparwatt_power_w", "m1"): {NOW_MS: 1500.25},
        ("sparwatt_energy_import_kwh", "m1"): {NOW_MS: 12.5},
        ("sparwatt_power_w", "m2"): {NOW_MS + 1: -3.0},
    }


@pytest.mark.integration
def test_while_influx_is_down_ingest_goes_on_and_the_backlog_drains_when_it_is_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vm = VictoriaMetrics(tmp_path / "vm")  # not started yet: nothing listens on its port
    influx = fast(url=vm.url)
    sink = InfluxSink(influx, ClientWriter(influx, None))
    cfg = config(tmp_path / "c.db", influxdb=influx.model_dump())
    c = Collector(cfg, environ={}, sink=sink, source=_NullSource())
    sink.start()
    c.handle(
        [
            Incoming(
                readings_topic(),
                encoded(k, [("m1", NOW_MS + k * 1000, {"power_w": float(k)})]),
                k,
                1,
            )
            for k in range(1, 301)
        ]
    )
    wait_until(lambda: sink.stats().failures >= 2, 20, "failed writes")
    c.publish_stats()

    assert cli.main(["status", "--json", "--db", str(cfg.storage.db)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["stored"] == 300  # SQLite took everything while the sink could not
    assert status["sink"]["backlog"] == 300
    assert "Connection refused" in status["sink"]["last_error"]

    vm.start()
    try:
        wait_until(lambda: sink.stats().backlog == 0, 30, "the backlog to drain")
        wait_until(lambda: exported_points(vm) >= 300, 20, "all points in VictoriaMetrics")
        assert vm.export() == {
            ("sparwatt_power_w", "m1"): {NOW_MS + k * 1000: float(k) for k in range(1, 301)}
        }
    finally:
        sink.stop()
        vm.stop()


class _NullSource:
    def __init__(self) -> None:
        import queue

        self.inbox: queue.Queue[Incoming] = queue.Queue()

    def take(self, limit: int, wait_s: float) -> list[Incoming]:
        return []

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def ack(self, items: list[Incoming]) -> None: ...


def test_a_missing_victoria_metrics_binary_fails_the_run_instead_of_skipping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("devtools.victoria.VM_BINARY", str(tmp_path / "nowhere"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(VictoriaMetricsMissing, match="apt-get install victoria-metrics"):
        VictoriaMetrics(tmp_path)


@pytest.mark.integration
def test_the_15_minute_history_reaches_victoria_metrics_when_asked_for(
    tmp_path: Path, victoria: VictoriaMetrics
) -> None:
    cfg = config(
        tmp_path / "c.db",
        influxdb={"enabled": True, "url": victoria.url, "flush_interval_ms": 50, "rollups": True},
    )
    c = Collector(cfg, environ={"SPARWATT_INFLUX_TOKEN": "t0ken"}, source=_NullSource())
    assert c.sink is not None
    c.sink.start()
    start = NOW_MS // 900_000 * 900_000 - 2 * 900_000
    readings = [
        ("m1", start + k * 60_000, {"current_l1_a": 10.0 + k % 15, "energy_import_kwh": k * 0.1})
        for k in range(30)
    ]
    c.handle([Incoming(readings_topic(), encoded(1, readings), 1, 1)])
    c.refresh_intervals()

    def history() -> dict[tuple[str, str], dict[int, float]]:
        return {k: v for k, v in victoria.export().items() if k[0].startswith("sparwatt_15m")}

    wait_until(lambda: len(history()) >= 5, 20, "the 15-minute history in VictoriaMetrics")
    c.sink.stop()
    got = history()
    assert got[("sparwatt_15m_current_l1_a_mean", "m1")] == {start: 17.0, start + 900_000: 17.0}
    assert got[("sparwatt_15m_current_l1_a_count", "m1")] == {start: 15.0, start + 900_000: 15.0}
    assert got[("sparwatt_15m_current_l1_a_max", "m1")][start] == 24.0
    energy = got[("sparwatt_15m_energy_import_kwh_energy", "m1")]
    assert energy[start] == pytest.approx(1.5)  # 0.1 kWh a minute for 15 minutes
