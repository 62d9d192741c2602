"""The Grafana dashboard (config/grafana/sparwatt.json): well-formed, and every panel query
returns data from a real VictoriaMetrics fed as in production.

The feed: simulator -> gateway (metrics listener on) -> Mosquitto -> collector (InfluxDB sink
into VictoriaMetrics, /metrics, alert rounds every second), and VictoriaMetrics scraping the
collector's /metrics with an admin token and the gateway's listener, as Prometheus would.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from collector.store import Store
from collector.web import auth
from devtools.broker import Mosquitto
from devtools.victoria import VictoriaMetrics
from tests.support.fleet import gateway_with_failing_meter, sim_with_failing_meter
from tests.support.processes import ROOT, Processes, collector_config, free_port, wait_until

DASHBOARD = ROOT / "config" / "grafana" / "sparwatt.json"
# Grafana's own variables, as it would fill them for a short time range
BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}
# the dashboard's variables: one site, every meter (its "All" is the regex .*)
CHOSEN = {"site": "site-a", "meter": ".*"}
GRID_COLUMNS = 24


def load() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row keeps its panels inside


def targets(dashboard: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(p["title"], t) for p in panels(dashboard) for t in p.get("targets", [])]


def substitute(expr: str, values: dict[str, str]) -> str:
    """The expression as Grafana sends it: $name and ${name} replaced, longest names first."""
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", values[name])
        expr = re.sub(rf"\${re.escape(name)}(?![A-Za-z0-9_])", lambda _m, n=name: values[n], expr)
    return expr


# ---- the file itself


def test_the_dashboard_is_json_with_unique_ids_and_a_tidy_grid() -> None:
    dashboard = load()
    assert dashboard["uid"] == "sparwatt-overview"
    assert dashboard["title"]
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for panel in panels(dashboard):
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= GRID_COLUMNS, panel["title"]
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine


def test_every_query_uses_the_datasource_variable_and_only_known_variables() -> None:
    dashboard = load()
    defined = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "site", "meter"} <= defined
    found = targets(dashboard)
    assert len(found) >= 15
    for title, target in found:
        assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, title
        assert target["expr"].strip(), title
        used = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", target["expr"]))
        assert used <= defined | set(BUILTINS), f"{title}: unknown variables {used}"
        left = substitute(target["expr"], {**CHOSEN, **BUILTINS})
        assert "$" not in left, f"{title}: {left}"


def test_the_variables_read_labels_of_the_sinks_layout() -> None:
    # the InfluxDB sink writes measurement "sparwatt" with one field per quantity; a
    # Prometheus-style store names it sparwatt_<field> with site, gateway and meter labels
    variables = {v["name"]: v for v in load()["templating"]["list"]}
    assert variables["site"]["query"]["query"] == "label_values(sparwatt_power_w, site)"
    assert "sparwatt_power_w" in variables["meter"]["query"]["query"]
    assert variables["datasource"]["query"] == "prometheus"


# ---- against a real VictoriaMetrics

ALERTS = 'default_receivers = ["dashboard"]\n[receivers.dashboard]\ntype = "mqtt"\n'


def scrape_config(folder: Path, collector_port: int, gateway_port: int, token_file: Path) -> Path:
    path = folder / "scrape.yml"
    path.write_text(
        "scrape_configs:\n"
        "  - job_name: sparwatt-collector\n"
        "    scrape_interval: 1s\n"
        "    authorization:\n"
        f"      credentials_file: {token_file}\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{collector_port}']\n"
        "  - job_name: sparwatt-gateway\n"
        "    scrape_interval: 1s\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{gateway_port}']\n"
    )
    return path


def has_data(vm: VictoriaMetrics, expr: str, instant: bool) -> bool:
    now = time.time()
    if instant:
        url = f"{vm.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr, "time": now})
    else:
        url = f"{vm.url}/api/v1/query_range?" + urllib.parse.urlencode(
            {"query": expr, "start": now - 300, "end": now, "step": 5}
        )
    body = httpx.get(url, timeout=10).json()
    assert body["status"] == "success", f"{expr}: {body}"
    for series in body["data"]["result"]:
        points = [series["value"]] if instant else series["values"]
        if any(value not in ("NaN", "+Inf", "-Inf") for _ts, value in points):
            return True
    return False


@pytest.mark.integration
def test_every_panel_query_returns_data_from_victoria_metrics(
    tmp_path: Path, broker: Mosquitto, procs: Processes
) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    good, failing = free_port(), free_port()
    http_port, metrics_port = free_port(), free_port()
    db = tmp_path / "collector.db"
    store = Store(db)
    token = auth.new_token()
    store.add_token("prometheus", "admin", [], auth.digest(token))
    store.close()
    token_file = tmp_path / "scrape-token"
    token_file.write_text(token + "\n")
    scrape = scrape_config(tmp_path, http_port, metrics_port, token_file)
    vm = VictoriaMetrics(
        tmp_path / "vm",
        args=(
            f"-promscrape.config={scrape}",
            "-search.latencyOffset=0s",  # recent samples are what this test has
            "-search.disableCache",
        ),
    ).start()
    try:
        procs.sim(sim_with_failing_meter(good, failing, silent_after=4), ports=[good, failing])
        (tmp_path / "alerts.toml").write_text(ALERTS)
        cfg = tmp_path / "collector.toml"
        cfg.write_text(
            collector_config(
                db,
                broker.port,
                http_port=http_port,
                extra=(
                    f'[influxdb]\nenabled = true\nurl = "{vm.url}"\nflush_interval_ms = 200\n\n'
                    '[evaluation]\nalerts_file = "alerts.toml"\n'
                    "alerts_every_s = 1\nalerts_delay_s = 0\n"
                ),
            )
        )
        procs.spawn(
            "collector", "collector.cli", "run", str(cfg), env={"SPARWATT_INFLUX_TOKEN": "t0ken"}
        )
        gw = tmp_path / "gw.toml"
        gw.write_text(
            gateway_with_failing_meter(
                tmp_path / "state",
                "site-a",
                broker.port,
                good,
                failing,
                extra=f'[metrics]\nlisten = "127.0.0.1:{metrics_port}"\n',
            )
        )
        procs.spawn("gateway", "gateway.cli", "run", str(gw))

        # one message the collector quarantines, so the quarantine panel has a series
        publisher = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="bad-sender", protocol=MQTTProtocolVersion.MQTTv5
        )
        publisher.connect("127.0.0.1", broker.port)
        publisher.loop_start()
        try:
            wait_until(lambda: _stored(db), 30, "readings stored by the collector")
            publisher.publish(
                "sparwatt/v1/site-a/gw1/readings", b"{broken", qos=1
            ).wait_for_publish(10)
        finally:
            publisher.disconnect()
            publisher.loop_stop()

        dashboard = load()
        queries = [
            (title, substitute(t["expr"], {**CHOSEN, **BUILTINS}), bool(t.get("instant")))
            for title, t in targets(dashboard)
        ]
        missing: list[str] = []

        def all_answer() -> bool:
            vm.flush()
            missing[:] = [
                f"{title}: {expr}"
                for title, expr, instant in queries
                if not has_data(vm, expr, instant)
            ]
            return not missing

        try:
            wait_until(all_answer, 45, "every panel query to return data", every_s=1.0)
        except AssertionError:
            raise AssertionError(
                "queries without data:\n"
                + "\n".join(missing)
                + "\n--- collector\n"
                + procs.log("collector")[-2000:]
                + "\n--- vm\n"
                + (tmp_path / "vm" / "vm.log").read_text()[-2000:]
            ) from None
    finally:
        procs.stop_all()  # first: a collector whose InfluxDB went away waits to flush
        vm.stop()


def _stored(db: Path) -> bool:
    from collector.store import Reader

    try:
        with Reader(db) as reader:
            return bool(reader.latest_of("power_w", "site-a"))
    except Exception:  # the collector is still creating its schema
        return False
