"""The store with its raw readings in VictoriaMetrics: where the database says they are, which
server it will take, when a refresh may read, and what it reads back as its own."""

from __future__ import annotations

import http.server
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from collector.service import Collector
from collector.settings import Victoria
from collector.store import Reader, Store
from collector.store.sql import Target
from collector.store.victoria import VictoriaRaw, _days, _matrix
from devtools.postgres import Postgres
from devtools.victoria import VictoriaMetrics
from sparwatt.errors import SchemaError, VictoriaError
from sparwatt.timeutil import QUARTER_MS, now_ms
from tests.support.engines import victoria_settings
from tests.support.messages import config, good_stream, message


def test_a_database_keeps_its_server_and_takes_new_client_settings_for_it(
    tmp_path: Path, postgres: Postgres, victoria: VictoriaMetrics
) -> None:
    target = postgres.create_database("bound_server")
    store = Store(target)
    try:
        store.use_victoria(Victoria(url=victoria.url))
        # the same server, other client settings: taken, and what the next store opens
        store.use_victoria(Victoria(url=victoria.url + "/", timeout_ms=2000, settle_s=0.5))
        with pytest.raises(
            SchemaError, match=rf"at {re.escape(victoria.url)}/?, not at http://other"
        ):
            store.use_victoria(Victoria(url="http://other:8428"))
    finally:
        store.close()
    again = Store(target)
    try:
        assert again.victoria is not None
        assert (again.victoria.cfg.timeout_ms, again.victoria.cfg.settle_s) == (2000, 0.5)
    finally:
        again.close()


def test_a_database_that_keeps_raw_readings_itself_is_not_switched(tmp_path: Path) -> None:
    db = tmp_path / "sparwatt.db"
    store = Store(db)
    try:
        store.write([message(1, [("m1", now_ms() - 60_000, {"power_w": 1.0})])])
        with pytest.raises(SchemaError, match="copy --victoria"):
            store.use_victoria(Victoria(url="http://vm:8428"))
        assert store.victoria is None
    finally:
        store.close()


class _Refusing(http.server.BaseHTTPRequestHandler):
    """An authenticating proxy in front of the server, without the collector's credentials."""

    def do_POST(self) -> None:
        self.send_response(401)
        self.end_headers()
        self.wfile.write(b"unauthorized")

    do_GET = do_POST

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def refusing() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_server_that_refuses_the_readings_leaves_them_unacked_not_quarantined(
    postgres: Postgres, refusing: str
) -> None:
    target = postgres.create_database("refused")
    store = Store(target)
    store.use_victoria(Victoria(url=refusing))
    store.close()
    cfg = config(target).model_copy(deep=True)
    cfg = cfg.model_copy(
        update={"storage": cfg.storage.model_copy(update={"victoria": Victoria(url=refusing)})}
    )
    acked: list[int] = []

    class Source:
        def ack(self, batch: list[object]) -> None:
            acked.extend(getattr(item, "mid", 0) for item in batch)

    c = Collector(cfg, environ={}, source=Source())  # type: ignore[arg-type]
    from collector.ingest.subscriber import Incoming

    batch = [Incoming(t, p, k, 1) for k, (t, p) in enumerate(good_stream(2), start=1)]
    with pytest.raises(VictoriaError, match="401"):
        c.handle(batch)
    assert acked == []
    with Reader(target) as reader:
        assert reader.quarantine(10) == []
        assert reader.counters().get("stored", 0) == 0
    c.store.close()


def test_a_refresh_reads_what_was_marked_a_margin_before_the_flush() -> None:
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        return httpx.Response(200)

    http_client = httpx.Client(transport=httpx.MockTransport(answer))
    node = VictoriaRaw(Victoria(url="http://vm:8428", settle_s=0.2), http=http_client)
    before = time.time()
    settled = node.settle()
    assert asked == ["/internal/force_flush"]
    assert time.time() - before >= 0.4  # a margin before the flush and one after it
    assert settled is not None
    assert int(before * 1000) <= settled <= int(before * 1000) + 50
    # a cluster without storage nodes to flush: what is 15 s old, at once
    cluster = VictoriaRaw(
        Victoria(insert_url="http://i:8480", select_url="http://s:8481", settle_s=0.2),
        http=http_client,
    )
    started = time.monotonic()
    settled = cluster.settle()
    assert time.monotonic() - started < 0.1
    assert settled is not None
    assert settled <= int(time.time() * 1000) - 15_000
    assert asked == ["/internal/force_flush"]
    tests_node = VictoriaRaw(Victoria(url="http://vm:8428", readable_on_ack=True), http=http_client)
    assert tests_node.settle() is None  # every acknowledged batch is readable already


def test_a_quantity_in_two_series_is_one_column_and_the_first_value_stays() -> None:
    ts = np.array([1000, 2000], dtype=np.int64)
    matrix = _matrix(
        [
            ("power_w", ts, np.array([1.0, 2.0])),
            ("power_w", np.array([2000, 3000], dtype=np.int64), np.array([9.0, 3.0])),
            ("voltage_l1_v", ts, np.array([230.0, 231.0])),
        ]
    )
    assert matrix.quantities == ("power_w", "voltage_l1_v")
    assert matrix.ts.tolist() == [1000, 2000, 3000]
    assert matrix.values[:, 0].tolist() == [1.0, 2.0, 3.0]
    assert matrix.values[:2, 1].tolist() == [230.0, 231.0]


@pytest.mark.parametrize(
    ("flag", "days"), [("1", 31.0), ("2y", 730.0), ("400d", 400.0), ("10w", 70.0), ("48h", 2.0)]
)
def test_the_servers_retention_in_days(flag: str, days: float) -> None:
    assert _days(flag) == days


def test_history_older_than_the_servers_retention_is_final(
    postgres: Postgres, tmp_path: Path
) -> None:
    with VictoriaMetrics(tmp_path / "vm", dedup=True, retention="30d") as vm:
        target = postgres.create_database("retention")
        store = Store(target)
        try:
            store.use_victoria(Victoria(url=vm.url))
            store.write([message(1, [("m1", now_ms() - 60_000, {"power_w": 1.0})])])
            meter_id = store.meter_id("site-a", "gw1", "m1")
            assert meter_id is not None
            edge = store.pruned_until(meter_id)
            expected = now_ms() - 30 * 86_400_000
            assert edge is not None
            assert expected - QUARTER_MS <= edge <= expected
            assert store.victoria is not None
            assert store.victoria.problems(400) == [
                "VictoriaMetrics keeps readings 30 days (-retentionPeriod), fewer than ingest "
                "accepts (400, ingest.max_past_days): older ones are dropped on arrival"
            ]
        finally:
            store.close()


def test_a_server_without_the_dedup_flag_is_named_at_start(tmp_path: Path) -> None:
    with VictoriaMetrics(tmp_path / "vm", retention="2y") as vm:
        raw = VictoriaRaw(Victoria(url=vm.url))
        try:
            [problem] = raw.problems(400)
        finally:
            raw.close()
    assert "-dedup.minScrapeInterval=1ms" in problem


@pytest.mark.parametrize("backend", ["victoria+postgres"], indirect=True)
def test_a_sites_raw_readings_are_this_databases_meters_only(
    backend: Target, victoria: VictoriaMetrics
) -> None:
    ts = now_ms() - 60_000
    store = Store(backend)
    try:
        store.write([message(1, [("m1", ts, {"power_w": 1.0})])])
    finally:
        store.close()
    # another database's meter at a site of the same name, on the same server
    other = VictoriaRaw(victoria_settings(victoria))
    try:
        other.write([("site-a", "gw9", "m7", ts, {"power_w": 7.0})])
        other.make_readable([("site-a", "gw9", "m7", "power_w")], (ts, ts))
    finally:
        other.close()
    with Reader(backend) as reader:
        assert [(r.meter, r.value) for r in reader.raw("site-a", 0, 2**62)] == [("m1", 1.0)]
        assert [row.meter for row in reader.latest("site-a")] == ["m1"]


@pytest.mark.parametrize("backend", ["victoria+postgres"], indirect=True)
def test_redelivered_batches_count_as_duplicates_and_imported_ones_as_stored(
    backend: Target,
) -> None:
    ts = now_ms() - 3_600_000
    store = Store(backend)
    try:
        first = message(1, [("m1", ts, {"power_w": 1.0, "voltage_l1_v": 230.0})])
        assert store.write([first]).stored == 2
        assert (store.write([first]).stored, store.write([first]).duplicates) == (0, 2)
        # imported readings (a file's, seq 0), batch after batch: every one is stored
        imported = [message(0, [("m2", ts + k * 60_000, {"power_w": float(k)})]) for k in range(3)]
        assert store.write(imported[:1], imported=True).stored == 1
        assert store.write(imported[1:], imported=True).stored == 2
    finally:
        store.close()
    with Reader(backend) as reader:
        counters = reader.counters()
        assert (counters["stored"], counters["duplicates"]) == (5, 4)
        assert reader.reading_count() == 5
        assert len(list(reader.raw("site-a", 0, 2**62))) == 5
