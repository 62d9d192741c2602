"""The fleet page in headless Chromium: simulator -> two gateways -> Mosquitto -> collector.

One gateway is stopped cleanly (its retained status goes offline); on the other, one meter
stops answering. A consultant sees both on the fleet page and reads a meter through it.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from collector.store import Reader
from devtools.broker import Mosquitto
from tests.collector.web.test_browser import CHROMIUM, CHROMIUM_ARGS, _token, _up
from tests.support.fleet import gateway_with_failing_meter, sim_with_failing_meter
from tests.support.processes import (
    Processes,
    collector_config,
    free_port,
    gateway_config,
    wait_until,
)

pytestmark = pytest.mark.integration

SITE = "site-a"


def _gateways(db: Path) -> dict[str, tuple[str | None, dict[str, object]]]:
    """gateway -> (retained state, newest health report) as the collector stored them."""
    if not db.exists():
        return {}
    try:
        with Reader(db) as reader:
            return {g.gateway: (g.state, g.health or {}) for g in reader.gateways_of(SITE)}
    except Exception:  # the collector is still creating its schema
        return {}


def _m2_failing(db: Path) -> bool:
    state, health = _gateways(db).get("gw1", (None, {}))
    meters = health.get("meters")
    m2 = meters.get("m2") if isinstance(meters, dict) else None
    return state == "online" and isinstance(m2, dict) and m2.get("consecutive_failures", 0) > 0


def test_the_fleet_page_shows_a_stopped_gateway_offline_and_a_meter_that_stopped_answering(
    tmp_path: Path, broker: Mosquitto, procs: Processes
) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package")
    from playwright.sync_api import sync_playwright

    good, failing, second = free_port(), free_port(), free_port()
    sim = sim_with_failing_meter(good, failing, silent_after=4)
    sim += (
        f'[[servers]]\ntransport = "tcp"\nport = {second}\n'
        '[[servers.meters]]\nunit = 1\nmodel = "eastron-sdm630"\n'
    )
    procs.sim(sim, ports=[good, failing, second])
    db, http_port = tmp_path / "collector.db", free_port()
    cfg = tmp_path / "collector.toml"
    cfg.write_text(
        collector_config(
            db,
            broker.port,
            http_port=http_port,
        )
    )
    procs.spawn("collector", "collector.cli", "run", str(cfg))
    gw1, gw2 = tmp_path / "gw1.toml", tmp_path / "gw2.toml"
    gw1.write_text(
        gateway_with_failing_meter(tmp_path / "state-1", SITE, broker.port, good, failing)
    )
    gw2.write_text(
        gateway_config(
            tmp_path / "state-2",
            SITE,
            broker.port,
            second,
            [(1, "eastron-sdm630")],
            gateway_id="gw2",
        )
    )
    procs.spawn("gateway-1", "gateway.cli", "run", str(gw1))
    second_gateway = procs.spawn("gateway-2", "gateway.cli", "run", str(gw2))
    base = f"http://127.0.0.1:{http_port}"
    wait_until(lambda: _up(f"{base}/login"), 30, "the collector's web server")
    wait_until(lambda: _gateways(db).get("gw2", (None,))[0] == "online", 30, "gateway gw2 online")
    wait_until(lambda: _m2_failing(db), 30, "gw1's health reporting m2 failing")

    procs.stop(second_gateway)  # a clean stop: the gateway publishes its offline status
    assert second_gateway.returncode == 0, procs.log("gateway-2")
    wait_until(lambda: _gateways(db)["gw2"][0] == "offline", 15, "gw2's offline status stored")
    consultant = _token(db, "consultant", "Eva (consultant)", SITE)

    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            page.goto(f"{base}/login")
            page.fill("#token", consultant)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            page.click("header a[href='/fleet']")
            page.wait_for_url(f"{base}/fleet")

            offline = page.locator(f'tr[data-gateway="{SITE}/gw2"]')
            assert offline.get_attribute("data-state") == "offline"
            assert offline.locator("[data-field=state]").inner_text() == "offline"
            online = page.locator(f'tr[data-gateway="{SITE}/gw1"]')
            assert online.get_attribute("data-state") == "online"
            assert online.locator("[data-field=meters]").inner_text() == "1/2"
            assert "m2:" in online.locator("[data-field=errors]").inner_text()
            assert online.locator("[data-field=config-version]").inner_text() != ""

            stopped = page.locator(f'tr[data-meter="{SITE}/gw1/m2"]')
            assert stopped.get_attribute("data-state") == "failing"
            assert stopped.locator("[data-field=error]").inner_text().strip() not in ("", "-")
            answering = page.locator(f'tr[data-meter="{SITE}/gw1/m1"]')
            assert answering.get_attribute("data-state") == "ok"
            assert answering.locator("[data-field=success]").inner_text().endswith("%")
            assert page.locator("#fleet-tally [data-state=offline]").inner_text() == "1 offline"
            page.screenshot(path=str(artifacts / "web-fleet.png"), full_page=True)

            # "Read now": the gateway reads the meter on request; the answer shows inline
            assert page.locator("button.read-now").count() == 3
            answering.locator("button.read-now").click()
            result = answering.locator("output.read-result")
            wait_until(
                lambda: result.inner_text() not in ("", "reading..."), 20, "the read to answer"
            )
            text = result.inner_text()
            assert "power_w" in text, text
            assert "error" not in (result.get_attribute("class") or "")
            stopped.locator("button.read-now").click()
            failed = stopped.locator("output.read-result")
            wait_until(lambda: failed.inner_text() not in ("", "reading..."), 20, "the failed read")
            assert "error" in (failed.get_attribute("class") or ""), failed.inner_text()
            page.screenshot(path=str(artifacts / "web-fleet-read.png"), full_page=True)
        finally:
            browser.close()

    # the same rows through the API
    listed = httpx.get(
        f"{base}/api/fleet", headers={"Authorization": f"Bearer {consultant}"}, timeout=5
    ).json()
    assert {g["gateway"]: g["state"] for g in listed} == {"gw1": "online", "gw2": "offline"}
