"""Raw readings in VictoriaMetrics (collector/store/victoria.py): the URLs of a single node and
of a cluster, and, against a real single-node server (Debian's victoria-metrics, started with
the flags the store needs), readings written and read back exactly, once, in time order.

The cluster's code path runs against the same server through a small proxy that answers only
on vminsert's and vmselect's paths. A missing binary fails these tests: it never skips.
"""

from __future__ import annotations

import http.server
import json
import math
import random
import re
import struct
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest

from collector.store.rows import LatestRow
from collector.store.victoria import Reading, Victoria, VictoriaRaw, endpoints
from devtools.victoria import VictoriaMetrics
from sparwatt import wire
from sparwatt.errors import SinkWriteError, VictoriaError

QUANTITIES = sorted(wire.QUANTITIES)  # all 28
MINUTE = 60_000
HOUR = 3_600_000
DAY = 86_400_000


def base_ms() -> int:
    """A whole second an hour ago: inside the server's retention and clear of its clock."""
    return (int(time.time()) - 3600) * 1000


def f32(x: float) -> float:
    """x as a float32 meter would send it: the nearest float32, widened to float64."""
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


# ---- URLs and config (no server)


def test_a_single_node_takes_every_request_under_its_own_url() -> None:
    ends = endpoints(Victoria(url="http://vm:8428/"))
    assert (ends.write_base, ends.write) == ("http://vm:8428", "http://vm:8428/api/v2/write")
    assert ends.export == "http://vm:8428/api/v1/export"
    assert ends.query == "http://vm:8428/api/v1/query"
    assert ends.query_range == "http://vm:8428/api/v1/query_range"
    assert ends.series == "http://vm:8428/api/v1/series"
    assert ends.flush == ("http://vm:8428/internal/force_flush",)
    assert ends.metrics == "http://vm:8428/metrics"


def test_a_cluster_writes_through_vminsert_and_reads_through_vmselect_for_its_tenant() -> None:
    ends = endpoints(
        Victoria(
            insert_url="http://vminsert:8480", select_url="https://vmselect:8481/", tenant="42:7"
        )
    )
    assert ends.write_base == "http://vminsert:8480/insert/42:7/influx"
    assert ends.write == "http://vminsert:8480/insert/42:7/influx/api/v2/write"
    assert ends.export == "https://vmselect:8481/select/42:7/prometheus/api/v1/export"
    assert ends.query == "https://vmselect:8481/select/42:7/prometheus/api/v1/query"
    assert ends.query_range == "https://vmselect:8481/select/42:7/prometheus/api/v1/query_range"
    assert ends.series == "https://vmselect:8481/select/42:7/prometheus/api/v1/series"
    assert (ends.flush, ends.metrics) == ((), None)
    # its storage nodes, when named, are flushed one by one
    ends = endpoints(
        Victoria(
            insert_url="http://i:8480",
            select_url="http://s:8481",
            flush_urls=["http://vmstorage-1:8482/", "http://vmstorage-2:8482"],
        )
    )
    assert ends.flush == (
        "http://vmstorage-1:8482/internal/force_flush",
        "http://vmstorage-2:8482/internal/force_flush",
    )


def test_a_cluster_behind_a_path_prefix_keeps_it() -> None:
    ends = endpoints(Victoria(insert_url="http://lb/vm-insert", select_url="http://lb/vm-select"))
    assert ends.write == "http://lb/vm-insert/insert/0/influx/api/v2/write"
    assert ends.export == "http://lb/vm-select/select/0/prometheus/api/v1/export"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "give url"),
        ({"url": "http://vm:8428", "insert_url": "http://i:8480"}, "not both"),
        ({"insert_url": "http://i:8480"}, "both insert_url and select_url"),
        ({"url": "http://vm:8428", "tenant": "3"}, "tenant is for a cluster"),
        ({"url": "vm:8428"}, "url must be an http"),
        ({"url": "http://vm:8428?x=1"}, "without query"),
        (
            {"insert_url": "http://i:8480/insert/0/", "select_url": "http://s:8481"},
            "insert_url is the server's base URL",
        ),
        (
            {"insert_url": "http://i:8480", "select_url": "http://s:8481/select/0/prometheus"},
            "select_url is the server's base URL",
        ),
        ({"insert_url": "http://i", "select_url": "http://s", "tenant": "a"}, "tenant"),
        ({"url": "http://vm:8428", "flush_urls": ["vmstorage:8482"]}, "flush_urls must be"),
        (
            {"insert_url": "http://i", "select_url": "http://s", "readable_on_ack": True},
            "readable_on_ack needs a single node",
        ),
        ({"url": "http://vm:8428", "settle_s": -1}, "greater than or equal"),
        ({"url": "http://sparwatt:secret@vm:8428"}, "url must not hold credentials"),
        ({"url": "http://vm:8428", "retention_days": 0}, "greater than 0"),
    ],
)
def test_the_config_names_one_server_shape(settings: dict[str, str], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        Victoria.model_validate(settings)


class RecordingWriter:
    """A LineWriter that keeps the lines, or fails like the sink's writer does."""

    def __init__(self, error: SinkWriteError | None = None) -> None:
        self.batches: list[list[str]] = []
        self.error = error

    def write(self, lines: list[str]) -> None:
        if self.error:
            raise self.error
        self.batches.append(lines)

    def close(self) -> None: ...


def test_a_reading_is_one_line_with_a_field_per_quantity() -> None:
    writer = RecordingWriter()
    raw = VictoriaRaw(Victoria(url="http://vm:8428"), writer)
    sent = raw.write(
        [
            ("site-a", "gw1", "m1", 1_700_000_000_123, {"power_w": 1.5, "energy_import_kwh": 1e20}),
            ("site-a", "gw1", "m2", 1_700_000_000_124, {}),  # nothing to write
        ]
    )
    assert sent == 1
    assert writer.batches == [
        [
            "sparwatt,site=site-a,gateway=gw1,meter=m1 power_w=1.5,energy_import_kwh=1e+20 "
            "1700000000123"
        ]
    ]


def test_large_batches_go_in_requests_of_5000_readings() -> None:
    writer = RecordingWriter()
    raw = VictoriaRaw(Victoria(url="http://vm:8428"), writer)
    assert raw.write(("s", "g", "m", k, {"power_w": 1.0}) for k in range(12_001)) == 12_001
    assert [len(batch) for batch in writer.batches] == [5000, 5000, 2001]


@pytest.mark.parametrize("retry", [True, False])
def test_a_refused_write_is_the_modules_own_error_and_says_whether_to_retry(retry: bool) -> None:
    writer = RecordingWriter(SinkWriteError("HTTP 400: cannot parse line", retry))
    raw = VictoriaRaw(Victoria(url="http://vm:8428"), writer)
    with pytest.raises(VictoriaError) as caught:
        raw.write([("s", "g", "m", 1, {"power_w": 1.0})])
    assert str(caught.value) == (
        "VictoriaMetrics at http://vm:8428/api/v2/write did not take 1 readings: "
        "HTTP 400: cannot parse line"
    )
    assert caught.value.retry is retry


def test_a_flush_asks_every_node_that_can_and_a_cluster_without_them_none() -> None:
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(200)

    http = httpx.Client(transport=httpx.MockTransport(answer))
    cluster = Victoria(insert_url="http://i:8480", select_url="http://s:8481")
    VictoriaRaw(cluster, RecordingWriter(), http).flush()
    assert asked == []
    nodes = cluster.model_copy(update={"flush_urls": ["http://st1:8482", "http://st2:8482"]})
    VictoriaRaw(nodes, RecordingWriter(), http).flush()
    assert asked == ["http://st1:8482/internal/force_flush", "http://st2:8482/internal/force_flush"]


def test_ids_that_could_change_a_query_are_refused_before_any_request() -> None:
    raw = VictoriaRaw(Victoria(url="http://vm:8428"), RecordingWriter())
    with pytest.raises(ValueError, match="not an id"):
        raw.readings("s", "g", 'm1",site=~".*', 0, 1000)


# ---- against a real server


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    vm = VictoriaMetrics(tmp_path / "vm", dedup=True, retention="100d").start()
    yield vm
    vm.stop()


@pytest.fixture
def raw(victoria: VictoriaMetrics) -> Iterator[VictoriaRaw]:
    store = VictoriaRaw(Victoria(url=victoria.url))
    yield store
    store.close()


def decimal_readings(meters: list[str], first_ms: int, count: int) -> list[Reading]:
    """Readings of all 28 quantities as meters with scaled integer registers give them:
    decimals of up to 12 significant digits, negative, zero, tiny and large."""
    rnd = random.Random(7)
    out: list[Reading] = []
    for meter in meters:
        energy = rnd.randint(10**8, 10**11)  # Wh: 100 MWh and more as kWh with 3 decimals
        for k in range(count):
            values: dict[str, float] = {}
            for n, q in enumerate(QUANTITIES):
                if wire.QUANTITIES[q].kind is wire.Kind.COUNTER:
                    energy += rnd.randint(0, 5000)
                    values[q] = (energy + n) / 1000
                else:
                    digits = n % 4  # 0..3 decimals, as the register's scale says
                    values[q] = rnd.randint(-(10**8), 10**8) / 10**digits
            values["power_factor"] = rnd.choice((0.0, -0.001, 1.0, 0.987))
            out.append(("site-a", "gw1", meter, first_ms + k * 10_000, values))
    return out


def known(readings: list[Reading]) -> dict[tuple[str, str, str], set[str]]:
    """Each written meter's quantities, as the database would know them."""
    out: dict[tuple[str, str, str], set[str]] = {}
    for site, gateway, meter, _, values in readings:
        out.setdefault((site, gateway, meter), set()).update(values)
    return out


def expected(readings: list[Reading], meter: str) -> list[tuple[int, dict[str, float]]]:
    return [(ts, dict(values)) for _, _, m, ts, values in readings if m == meter]


@pytest.mark.integration
def test_readings_of_28_quantities_of_several_meters_read_back_exactly(raw: VictoriaRaw) -> None:
    first = base_ms()
    readings = decimal_readings(["m1", "m2", "m3"], first, 60)
    assert raw.write(readings) == 180
    raw.flush()

    for meter in ("m1", "m2", "m3"):
        got = raw.readings("site-a", "gw1", meter, first, first + HOUR)
        assert got == expected(readings, meter)  # float64 ==, not approx
        assert all(len(values) == 28 for _, values in got)


@pytest.mark.integration
def test_the_window_is_from_inclusive_to_exclusive_to_the_millisecond(raw: VictoriaRaw) -> None:
    first = base_ms() + 999  # a millisecond the seconds' fraction cannot hit exactly
    raw.write([("s", "g", "m", first + k, {"power_w": float(k)}) for k in range(5)])
    raw.flush()
    assert raw.readings("s", "g", "m", first + 1, first + 3) == [
        (first + 1, {"power_w": 1.0}),
        (first + 2, {"power_w": 2.0}),
    ]
    assert raw.readings("s", "g", "m", first + 3, first + 3) == []


def stored_samples(vm: VictoriaMetrics, meter: str) -> int:
    """Samples the server holds for a meter, counted from its export as sent (no merging)."""
    resp = httpx.get(
        f"{vm.url}/api/v1/export", params={"match[]": f'{{meter="{meter}"}}', "start": "0"}
    )
    return sum(len(json.loads(line)["timestamps"]) for line in resp.text.splitlines())


@pytest.mark.integration
def test_a_redelivered_batch_is_kept_once(victoria: VictoriaMetrics, raw: VictoriaRaw) -> None:
    first = base_ms()
    readings = decimal_readings(["m1"], first, 20)
    raw.write(readings)
    raw.write(readings)  # the broker delivers the batch again
    raw.write(readings[5:8])  # and a replay part of it once more
    raw.flush()

    assert raw.readings("site-a", "gw1", "m1", first, first + HOUR) == expected(readings, "m1")
    assert stored_samples(victoria, "m1") == 20 * 28


@pytest.mark.integration
def test_without_the_dedup_flag_the_server_keeps_both_copies(tmp_path: Path) -> None:
    vm = VictoriaMetrics(tmp_path / "vm").start()
    try:
        raw = VictoriaRaw(Victoria(url=vm.url))
        ts = base_ms()
        raw.write([("s", "g", "m1", ts, {"power_w": 5.0})])
        raw.write([("s", "g", "m1", ts, {"power_w": 5.0})])
        raw.flush()
        assert stored_samples(vm, "m1") == 2  # why the store's servers need the flag
        assert raw.readings("s", "g", "m1", 0, ts + 1) == [(ts, {"power_w": 5.0})]
        raw.close()
    finally:
        vm.stop()


@pytest.mark.integration
def test_batches_written_out_of_order_read_back_in_time_order(raw: VictoriaRaw) -> None:
    first = base_ms()
    readings = [("s", "g", "m1", first + k * 1000, {"power_w": float(k)}) for k in range(30)]
    raw.write(readings[20:])
    raw.write(list(reversed(readings[:10])))
    raw.write(readings[10:20])
    raw.flush()
    assert raw.readings("s", "g", "m1", first, first + HOUR) == [
        (first + k * 1000, {"power_w": float(k)}) for k in range(30)
    ]


@pytest.mark.integration
def test_another_meters_reading_at_the_same_millisecond_is_its_own(raw: VictoriaRaw) -> None:
    ts = base_ms() + 1
    raw.write(
        [
            ("s", "g", "m1", ts, {"power_w": 1.0, "voltage_l1_v": 230.0}),
            ("s", "g", "m2", ts, {"power_w": 2.0}),
            ("s", "g2", "m1", ts, {"power_w": 3.0}),  # same meter id behind another gateway
            ("s2", "g", "m1", ts, {"power_w": 4.0}),  # and on another site
        ]
    )
    raw.flush()
    window = (ts, ts + 1)
    assert raw.readings("s", "g", "m1", *window) == [(ts, {"power_w": 1.0, "voltage_l1_v": 230.0})]
    assert raw.readings("s", "g", "m2", *window) == [(ts, {"power_w": 2.0})]
    assert raw.readings("s", "g2", "m1", *window) == [(ts, {"power_w": 3.0})]
    assert raw.readings("s2", "g", "m1", *window) == [(ts, {"power_w": 4.0})]


@pytest.mark.integration
def test_quantities_a_meter_reports_later_join_its_readings(raw: VictoriaRaw) -> None:
    first = base_ms()
    raw.write([("s", "g", "m1", first, {"power_w": 1.0})])
    raw.flush()
    raw.write(
        [
            ("s", "g", "m1", first + 1000, {"power_w": 2.0, "energy_import_kwh": 10.5}),
            ("s", "g", "m1", first + 2000, {"voltage_l1_v": 229.9}),
        ]
    )
    raw.flush()
    assert raw.readings("s", "g", "m1", first, first + HOUR) == [
        (first, {"power_w": 1.0}),
        (first + 1000, {"power_w": 2.0, "energy_import_kwh": 10.5}),
        (first + 2000, {"voltage_l1_v": 229.9}),
    ]


@pytest.mark.integration
def test_values_of_up_to_11_significant_digits_read_back_exactly_at_any_magnitude(
    raw: VictoriaRaw,
) -> None:
    first = base_ms()
    rnd = random.Random(11)
    magnitudes = dict(zip(QUANTITIES, range(-9, 13), strict=False))  # 1e-9 .. 1e12
    readings: list[Reading] = []
    for k in range(100):
        values = {}
        for q, exponent in magnitudes.items():
            digits = rnd.randint(1, 11)
            mantissa = rnd.randrange(10 ** (digits - 1), 10**digits) * rnd.choice((1, -1))
            values[q] = float(f"{mantissa}e{exponent - digits + 1}")
        readings.append(("s", "g", "m1", first + k, values))
    raw.write(readings)
    raw.flush()
    assert raw.readings("s", "g", "m1", first, first + HOUR) == expected(readings, "m1")


@pytest.mark.integration
def test_float32_readings_come_back_exactly(raw: VictoriaRaw) -> None:
    first = base_ms()
    rnd = random.Random(3)
    # every magnitude a meter gives, from milli to mega, each quantity within a decade of
    # its own as a meter's are: below a million the server keeps only 12 digits of some (a
    # current of 75.000732421875 A)
    scale = {q: 10.0 ** rnd.randint(-3, 6) for q in QUANTITIES}
    values = [{q: f32(rnd.uniform(-10, 10) * scale[q]) for q in QUANTITIES} for _ in range(200)]
    scale["current_l1_a"] = 10.0
    values[0]["current_l1_a"] = 75.000732421875
    readings: list[Reading] = [("s", "g", "m1", first + k * 1000, v) for k, v in enumerate(values)]
    raw.write(readings)
    raw.flush()
    assert raw.readings("s", "g", "m1", first, first + HOUR) == expected(readings, "m1")


@pytest.mark.integration
def test_what_the_server_cannot_keep_exactly_comes_back_within_1e_11(raw: VictoriaRaw) -> None:
    ts = base_ms()
    sent = {
        "voltage_l1_v": f32(230.1),  # 230.10000610351562, as a float32 meter sends it
        "power_w": 92742.6596633,  # 12 digits, an odd number of them decimals
        "power_factor": 0.1 + 0.2,  # 0.30000000000000004
        "current_l1_a": f32(75.000732421875),  # cut to 75.0007324218 by the server
        # within 2e-11 of the float32 56667088.0, which the server would keep whole
        "energy_import_kwh": 56667088.001,
    }
    raw.write([("s", "g", "m1", ts, sent)])
    raw.flush()

    (_, got), *_ = raw.readings("s", "g", "m1", ts, ts + 1)
    # the server keeps 230.1000061035; within 2e-11 of a float32 with more digits than it
    # keeps, it is read as that float32
    assert got == {
        "voltage_l1_v": 230.10000610351562,
        "power_w": 92742.65966329,
        "power_factor": 0.3,
        "current_l1_a": 75.000732421875,
        "energy_import_kwh": 56667088.001,
    }
    assert got == pytest.approx(sent, rel=1e-11)


@pytest.mark.integration
def test_latest_is_each_quantitys_newest_value_of_each_meter(raw: VictoriaRaw) -> None:
    now = int(time.time() * 1000)
    written: list[Reading] = [
        ("site-a", "gw1", "m1", now - 5 * MINUTE, {"power_w": 1.0, "voltage_l1_v": 230.0}),
        ("site-a", "gw1", "m1", now - 4 * MINUTE, {"power_w": 2.0}),
        # a gateway clock ahead of ours, within what ingest accepts
        ("site-a", "gw1", "m1", now + 2 * MINUTE, {"power_w": 3.0}),
        # a quantity last read two hours ago
        ("site-a", "gw1", "m1", now - 2 * HOUR, {"energy_export_kwh": 5.5}),
        # a meter silent for three days
        ("site-a", "gw1", "m2", now - 3 * DAY - 1, {"energy_import_kwh": 99.25}),
        ("site-a", "gw1", "m2", now - 3 * DAY, {"energy_import_kwh": 100.75}),
        # float32 values, restored exactly
        ("site-a", "gw2", "m1", now - MINUTE, {"current_l1_a": f32(5.3)}),
        # silent for longer than the lookback: not shown
        ("site-a", "gw1", "m3", now - 20 * DAY, {"power_w": 9.0}),
        ("site-b", "gw9", "m1", now - MINUTE, {"power_w": 7.0}),
    ]
    raw.write(written)
    raw.flush()
    meters = known(written)

    assert raw.latest(meters, "site-a") == [
        LatestRow("site-a", "gw1", "m1", "energy_export_kwh", now - 2 * HOUR, 5.5),
        LatestRow("site-a", "gw1", "m1", "power_w", now + 2 * MINUTE, 3.0),
        LatestRow("site-a", "gw1", "m1", "voltage_l1_v", now - 5 * MINUTE, 230.0),
        LatestRow("site-a", "gw1", "m2", "energy_import_kwh", now - 3 * DAY, 100.75),
        LatestRow("site-a", "gw2", "m1", "current_l1_a", now - MINUTE, f32(5.3)),
    ]
    assert [row.site for row in raw.latest(meters)].count("site-b") == 1
    assert [(r.meter, r.quantity) for r in raw.latest(meters, "site-a", lookback_ms=HOUR)] == [
        ("m1", "power_w"),
        ("m1", "voltage_l1_v"),
        ("m1", "current_l1_a"),
    ]


@pytest.mark.integration
def test_a_stopped_server_is_a_clear_error_worth_retrying(victoria: VictoriaMetrics) -> None:
    raw = VictoriaRaw(Victoria(url=victoria.url, timeout_ms=2000))
    victoria.stop()

    with pytest.raises(VictoriaError) as caught:
        raw.write([("s", "g", "m1", base_ms(), {"power_w": 1.0})])
    assert str(caught.value).startswith(
        f"VictoriaMetrics at {victoria.url}/api/v2/write did not take 1 readings: "
    )
    assert "Connection refused" in str(caught.value)
    assert caught.value.retry

    with pytest.raises(VictoriaError) as read:
        raw.readings("s", "g", "m1", 0, base_ms())
    assert str(read.value).startswith(
        f"VictoriaMetrics at {victoria.url}/api/v1/export could not be reached: ConnectError"
    )
    assert read.value.retry
    raw.close()


# ---- a cluster's paths, against the same server


class ClusterProxy:
    """Answers only on vminsert's and vmselect's paths for one tenant, passing each request
    on to a single node without the cluster's prefix; keeps the paths it was asked for."""

    def __init__(self, target: str, tenant: str) -> None:
        self.paths: list[str] = []
        routes = re.compile(
            rf"^/(insert/{re.escape(tenant)}/influx|select/{re.escape(tenant)}/prometheus)/"
        )
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._forward(None)

            def do_POST(self) -> None:
                self._forward(self.rfile.read(int(self.headers.get("Content-Length", 0))))

            def _forward(self, body: bytes | None) -> None:
                proxy.paths.append(self.path.partition("?")[0])
                match = routes.match(self.path)
                if not match:
                    self.send_error(404)
                    return
                url = target + self.path[match.end() - 1 :]
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type",)}
                request = urllib.request.Request(url, body, headers)
                try:
                    with urllib.request.urlopen(request, timeout=10) as resp:
                        status, data = resp.status, resp.read()
                except urllib.error.HTTPError as exc:
                    status, data = exc.code, exc.read()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None: ...

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.integration
def test_the_cluster_paths_carry_writes_and_reads(victoria: VictoriaMetrics) -> None:
    proxy = ClusterProxy(victoria.url, "7:3")
    raw = VictoriaRaw(Victoria(insert_url=proxy.url, select_url=proxy.url, tenant="7:3"))
    try:
        first = base_ms()
        readings = decimal_readings(["m1"], first, 5)
        raw.write(readings)
        victoria.flush()  # the node behind the proxy; vmselect has no flush of its own

        assert raw.readings("site-a", "gw1", "m1", first, first + HOUR) == expected(readings, "m1")
        newest = readings[-1]
        assert [(r.quantity, r.ts_ms, r.value) for r in raw.latest(known(readings), "site-a")] == [
            (q, newest[3], newest[4][q]) for q in QUANTITIES
        ]
        # waits (through the series list) until the series can be found
        raw.make_readable({("site-a", "gw1", "m1", q) for q in QUANTITIES}, (first, newest[3]))
        assert set(proxy.paths) == {
            "/insert/7:3/influx/api/v2/write",
            "/select/7:3/prometheus/api/v1/export",
            "/select/7:3/prometheus/api/v1/query",
            "/select/7:3/prometheus/api/v1/series",
        }
    finally:
        raw.close()
        proxy.close()


@pytest.mark.integration
def test_each_meters_last_reading_time_up_to_a_moment(raw: VictoriaRaw) -> None:
    now = int(time.time() * 1000)
    raw.write(
        [
            ("s", "g", "busy", now - 2 * MINUTE, {"power_w": 1.0}),
            ("s", "g", "busy", now - MINUTE, {"voltage_l1_v": 230.0}),
            ("s", "g", "busy", now - 10_000, {"power_w": 1.5}),
            ("s", "g", "quiet", now - 3 * DAY, {"power_w": 2.0}),
            ("s", "g", "quiet", now - 3 * DAY - MINUTE, {"power_w": 2.0}),
            ("s", "g", "later", now - 5 * DAY, {"power_w": 3.0}),
            ("s", "g", "later", now - 2 * DAY, {"power_w": 3.0}),
        ]
    )
    raw.flush()
    time.sleep(1.2)  # new series: readable about a second after a flush

    meters = [("s", "g", m) for m in ("busy", "quiet", "later", "never")]
    assert raw.last_times(now, meters) == {
        ("s", "g", "busy"): now - 10_000,
        ("s", "g", "quiet"): now - 3 * DAY,
        ("s", "g", "later"): now - 2 * DAY,
    }
    # as of four days ago: the busy and quiet meters had not read yet
    assert raw.last_times(now - 4 * DAY, meters) == {("s", "g", "later"): now - 5 * DAY}
    assert raw.last_times(now - 90_000, meters)[("s", "g", "busy")] == now - 2 * MINUTE
    # only the meters asked about
    assert raw.last_times(now, meters[1:2]) == {("s", "g", "quiet"): now - 3 * DAY}
    # within the server's latency offset of now, a reading after the moment counts as the
    # moment: the meter was reading then
    assert raw.last_times(now - 30_000, meters)[("s", "g", "busy")] == now - 30_000


@pytest.mark.integration
def test_many_meters_readings_come_back_in_one_request_each_from_its_own_start(
    raw: VictoriaRaw,
) -> None:
    first = base_ms()
    readings: list[Reading] = [
        (site, "g", "main", first + k * 10_000, {"power_w": float(k), "energy_import_kwh": k / 8})
        for site in ("a", "b", "c")
        for k in range(6)
    ]
    readings.append(("a", "g", "main", first + 15_000, {"voltage_l1_v": 230.1}))
    raw.write(readings)
    raw.flush()
    time.sleep(1.2)  # new series: readable about a second after a flush

    got = raw.matrices({("a", "g", "main"): first, ("b", "g", "main"): first + 30_000})

    assert set(got) == {("a", "g", "main"), ("b", "g", "main")}  # not c, of the same name
    a, b = got[("a", "g", "main")], got[("b", "g", "main")]
    assert a.quantities == ("energy_import_kwh", "power_w", "voltage_l1_v")
    assert a.ts.tolist() == sorted([first + k * 10_000 for k in range(6)] + [first + 15_000])
    power = [v for v in a.values[:, 1].tolist() if not math.isnan(v)]
    assert power == [float(k) for k in range(6)]
    assert b.ts.tolist() == [first + k * 10_000 for k in range(3, 6)]
    assert b.values.tolist() == [[k / 8, float(k)] for k in range(3, 6)]
    # the reading with the voltage alone lacks the others: NaN there, as in the database
    row = a.ts.tolist().index(first + 15_000)
    assert a.values[row, 2] == 230.1
    assert all(math.isnan(v) for v in a.values[row, :2])
