"""sparwatt-demo: simulated meters -> gateways -> private Mosquitto -> collector, on one machine.

It starts with 13 months of history (devtools/demo_history.py): the office's main meter
arrives as an Eloverblik export through `sparwatt-collector import`, the other meters are
written into the 15-minute history directly. The collector scans it and runs an alert round
as it starts, then the simulated meters carry on live.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from collector.analysis.site_context import load_sites
from collector.evaluation.scheduler import JOBS, job_stat
from collector.store import Reader, Store, now_ms
from devtools import demo_history
from devtools.broker import BrokerError, Mosquitto, free_port, wait_for_port
from devtools.demo_history import (
    EXPORT,
    GATEWAY,
    IMPORTED,
    OFFICE_GSRN,
    PROBLEMS,
    SITES,
    TZ,
    History,
    Meter,
    imported,
    office_closures,
    plan_meters,
)
from devtools.utility_files import write_eloverblik_csv
from gateway import meter_maps
from sparwatt.timeutil import QUARTER_MS, from_ms
from sparwatt.wire import format_ts

# days each savings scan looks at: the detectors' 8-week baseline and 4 ordinary weeks after
# it, with room for the Christmas week
SCAN_DAYS = 120


def models_available() -> dict[str, frozenset[str]]:
    """Meter model -> the quantities its register map reads."""
    return {model: frozenset(m.quantities) for model, m in meter_maps.library().items()}


def _finished(proc: subprocess.Popen[str]) -> str:
    """The output of a collector command started earlier; CalledProcessError if it failed."""
    out, err = proc.communicate(timeout=120)
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, proc.args, out, err)
    return out


def sites_toml(now_ms: int) -> str:
    """The sites file: calendar, sector, fuse and prices of each site, and the office's
    metering point, whose Eloverblik export becomes the history of its gateway's meter 1."""
    history_from = datetime.fromtimestamp(demo_history.history_start_ms(now_ms, TZ) / 1000, TZ)
    today = datetime.fromtimestamp(now_ms / 1000, TZ).date()
    lines = [
        "# The demo's sites: config/sites.example.toml explains every key.",
        "[defaults]",
        'timezone = "Europe/Copenhagen"',
        "",
        "[defaults.holidays]",
        'country = "DK"',
        'categories = ["public"]',
        "",
        "[defaults.energy_price]",
        "spot_dkk_per_kwh = 0.75",
        "supplier_margin_dkk_per_kwh = 0.05",
        "taxes_dkk_per_kwh = 0.84",
    ]
    for site in SITES:
        hours = ", ".join(f'{day} = ["{span}"]' for day, span in site.opening_hours.items())
        lines += [
            "",
            f"[sites.{site.id}]",
            f'sector = "{site.sector}"',
            f"main_fuse_a = {site.main_fuse_a}",
            f"opening_hours = {{ {hours} }}",
        ]
    for start, end, note in office_closures(history_from.date(), today):
        lines += [
            "",
            "[[sites.office-park.closures]]",
            f"start = {start.isoformat()}",
            f"end = {end.isoformat()}",
            f'note = "{note}"',
        ]
    lines += [
        "",
        "[sites.office-park.metering_points]",
        f'"{OFFICE_GSRN}" = {{ meter = "meter-1", gateway = "{GATEWAY}" }}',
    ]
    return "\n".join(lines) + "\n"


ALERTS_TOML = """\
# The demo's alerting: config/alerts.example.toml explains every key.
default_receivers = ["dashboard"]

[expected]
slot_minutes = 15   # the simulated loads ramp up and down within the hour they open and close

[rules.unusual_usage]
for = "0s"          # tell at once: the demo shows what the history ended with

[rules.meter_silent]
for = "2m"          # the gateways start just after the collector

[receivers.dashboard]
type = "mqtt"       # retained on sparwatt/v1/<site>/alerts
"""


def write_configs(
    root: Path,
    broker_port: int,
    interval_s: float,
    web_port: int,
    meters: list[Meter],
    history_kwh: dict[tuple[str, str], float],
) -> list[dict[str, object]]:
    """Simulator, gateway and collector configs; a meter's counter starts where its history
    leaves off."""
    sim_lines = ["tick_s = 1.0"]
    launched = []
    for index, site in enumerate(SITES):
        port = free_port()
        sim_lines += ["[[servers]]", 'transport = "tcp"', 'host = "127.0.0.1"', f"port = {port}"]
        gw = [
            f'[gateway]\nsite = "{site.id}"\nid = "{GATEWAY}"\nstate_dir = "{root / site.id}"',
            f'[mqtt]\nhost = "127.0.0.1"\nport = {broker_port}\nprotocol = "v5"',
            "[outbox]\ncommit_interval_s = 1.0",
            "[health]\ninterval_s = 10",
            f'[[buses]]\nid = "main"\ntransport = "tcp"\nhost = "127.0.0.1"\nport = {port}\n'
            "timeout_s = 1.0",
        ]
        own = [m for m in meters if m.site == site.id]
        for unit, m in enumerate(own, start=1):
            start_kwh = 10000 * (index + 1) + 1000 * unit + history_kwh.get((m.site, m.meter), 0)
            sim_lines += [
                "[[servers.meters]]",
                f"unit = {unit}",
                f'model = "{m.model}"',
                f'profile = "{m.kind}"',
                f"peak_kw = {m.peak_kw}",
                f"seed = {m.seed}",
                f"start_kwh = {start_kwh:.3f}",
            ]
            gw.append(
                f'[[meters]]\nid = "{m.meter}"\nbus = "main"\nunit = {unit}\n'
                f'model = "{m.model}"\ninterval_s = {interval_s}'
            )
        (root / f"gateway-{site.id}.toml").write_text("\n\n".join(gw) + "\n")
        launched.append({"site": site.id, "port": port, "meters": len(own)})
    (root / "sim.toml").write_text("\n".join(sim_lines) + "\n")
    dedicated = ", ".join(f'"{m.site}/{m.meter}"' for m in meters if m.dedicated)
    (root / "collector.toml").write_text(
        f'[storage]\ndb = "{root / "sparwatt.db"}"\n\n[mqtt]\nhost = "127.0.0.1"\n'
        f'port = {broker_port}\nclient_id = "sparwatt-demo-collector"\n\n'
        # a short refresh (and lookback) so the first alert round can follow soon after
        "[intervals]\nrefresh_s = 3\nmax_gap_minutes = 30\n\n"
        f'[http]\nenabled = true\nhost = "127.0.0.1"\nport = {web_port}\n\n'
        '[evaluation]\nsites_file = "sites.toml"\nalerts_file = "alerts.toml"\n'
        f"scan_days = {SCAN_DAYS}                # 8 weeks of baseline + 4 more, Christmas or not\n"
        f"dedicated_meters = [{dedicated}]\n"
        "run_at_start = true            # a scan at once, an alert round alerts_delay_s later\n"
        "alerts_delay_s = 4             # above intervals.refresh_s\n"
    )
    return launched


class Demo:
    def __init__(self, root: Path, interval_s: float, history: bool = True) -> None:
        self.root = root
        self.interval_s = interval_s
        self.history = history
        self.children: list[subprocess.Popen[bytes]] = []
        self.broker: Mosquitto | None = None
        self.web_port = free_port()
        self.tokens: dict[str, str] = {}
        self.history_note = ""

    @property
    def db(self) -> Path:
        return self.root / "sparwatt.db"

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", *args], stdout=log, stderr=log, start_new_session=True
        )
        self.children.append(proc)
        return proc

    def start(self) -> list[dict[str, object]]:
        self.broker = Mosquitto(self.root / "broker").start()
        meters = plan_meters(models_available())
        now = now_ms()
        (self.root / "sites.toml").write_text(sites_toml(now))
        (self.root / "alerts.toml").write_text(ALERTS_TOML)
        Store(self.db).close()
        # no default login exists: the demo makes one consultant-wide and one company token
        first_site = SITES[0].id
        tokens = {
            "admin": self._cli_started("token", "add", "--json", "--role", "admin", "--name",
                                       "demo-admin"),
            first_site: self._cli_started("token", "add", "--json", "--role", "company", "--site",
                                          first_site, "--name", f"demo-{first_site}"),
        }  # fmt: skip
        started = time.monotonic()
        histories = (
            demo_history.build(meters, load_sites(self.root / "sites.toml"), PROBLEMS, now)
            if self.history
            else []
        )
        importing = self._export(histories)
        sites = write_configs(
            self.root,
            self.broker.port,
            self.interval_s,
            self.web_port,
            meters,
            demo_history.kwh_by_meter(histories),
        )
        # the simulator opens its ports while the history goes into the store
        self._spawn("sim", "gateway.sim.cli", "--config", str(self.root / "sim.toml"))
        self._store(histories, importing, started)
        for who, proc in tokens.items():
            self.tokens[who] = str(json.loads(_finished(proc))["token"])
        for site in sites:
            wait_for_port(int(site["port"]), 15)  # type: ignore[call-overload]
        self._spawn("collector", "collector.cli", "run", str(self.root / "collector.toml"))
        for site in sites:
            self._spawn(
                f"gateway-{site['site']}",
                "gateway.cli",
                "run",
                str(self.root / f"gateway-{site['site']}.toml"),
            )
        return sites

    def _export(self, histories: list[History]) -> subprocess.Popen[str] | None:
        """The office's main meter as its grid company's Eloverblik export, on its way into
        the store through `sparwatt-collector import` (None: no history)."""
        if not histories:
            return None
        h = imported(histories)
        export = self.root / EXPORT
        write_eloverblik_csv(export, h.start_ms, QUARTER_MS, {OFFICE_GSRN: np.round(h.kwh, 3)})
        return self._cli_started("import", str(export), "--sites", str(self.root / "sites.toml"))

    def _store(
        self,
        histories: list[History],
        importing: subprocess.Popen[str] | None,
        started: float,
    ) -> None:
        """The other meters' history into the store, then the import's end awaited."""
        if importing is None:
            return
        store = Store(self.db, synchronous="normal")
        try:
            for h in histories:
                if h is not imported(histories):
                    demo_history.write(store, h, GATEWAY, self.interval_s)
        finally:
            store.close()
        _finished(importing)
        quarters = sum(len(h.start_ms) for h in histories)
        self.history_note = (
            f"{len(histories)} meters x {demo_history.HISTORY_DAYS} days, {quarters:,} quarters "
            f"in {time.monotonic() - started:.1f} s ({'/'.join(IMPORTED)} from {EXPORT} "
            "through sparwatt-collector import)"
        )

    def _cli_started(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "collector.cli", *args, "--db", str(self.db)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def latest(self) -> list[dict[str, object]]:
        with Reader(self.db) as reader:
            rows = reader.latest()
        return [
            {"site": r.site, "meter": r.meter, "quantity": r.quantity, "value": r.value,
             "ts": format_ts(from_ms(r.ts_ms))}
            for r in rows
        ]  # fmt: skip

    def evaluated(self) -> str | None:
        """What the first scan and alert round left open; None until both have run."""
        with Reader(self.db) as reader:
            stats = reader.stats()
            if not all(stats.get(job_stat(job, "runs")) for job in JOBS):
                return None
            opportunities = reader.opportunities(None, "open")
            alerts = reader.alerts(None, since_ms=2**62)
        opportunities.sort(key=lambda o: -_figure(o.data, "annual_dkk"))
        total = sum(_figure(o.data, "annual_dkk") for o in opportunities)
        lines = [
            f"First savings scan: {len(opportunities)} opportunities open, {total:,.0f} DKK a "
            f"year (sparwatt-collector opportunities --db {self.db}):"
        ]
        for o in opportunities:
            payback = o.data.get("payback_years")
            lines.append(
                f"  {o.site}/{o.meter} {o.kind}: {_figure(o.data, 'annual_kwh'):,.0f} kWh and "
                f"{_figure(o.data, 'annual_dkk'):,.0f} DKK a year, payback "
                + (f"{payback:.1f} years" if isinstance(payback, int | float) else "-")
            )
        lines.append(f"Alerts open: {len(alerts)} (sparwatt-collector alerts --db {self.db})")
        lines += [f"  {a.site}: {a.summary}" for a in alerts]
        return "\n".join(lines)

    def stop(self) -> None:
        # gateways first so their last batches reach the collector, the broker last
        for proc in reversed(self.children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.children):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.broker:
            self.broker.stop()


def year_report(site: str) -> str:
    """The path of a site's report over the last 365 whole days."""
    last = datetime.now(TZ).date() - timedelta(days=1)
    return f"/sites/{site}/report?from={last - timedelta(days=364)}&to={last}"


def _figure(data: dict[str, object], key: str) -> float:
    """A number from an opportunity's stored figures; 0 where it has none."""
    value = data.get(key)
    return float(value) if isinstance(value, int | float) else 0.0


def table(rows: list[dict[str, object]]) -> str:
    wanted = ("power_w", "energy_import_kwh", "voltage_l1_v")
    by_meter: dict[tuple[str, str], dict[str, object]] = {}
    for r in rows:
        if r["quantity"] in wanted:
            by_meter.setdefault((str(r["site"]), str(r["meter"])), {})[str(r["quantity"])] = r
    lines = [f"{'site':<16} {'meter':<9} {'power kW':>9} {'energy kWh':>12} {'L1 V':>7}  ts"]
    for (site, meter), q in sorted(by_meter.items()):

        def value(name: str, scale: float = 1.0, q: dict[str, object] = q) -> str:
            row = q.get(name)
            return "-" if row is None else f"{float(row['value']) * scale:.2f}"  # type: ignore[index]

        ts = max(str(v["ts"]) for v in q.values())  # type: ignore[index]
        lines.append(
            f"{site:<16} {meter:<9} {value('power_w', 0.001):>9} "
            f"{value('energy_import_kwh'):>12} {value('voltage_l1_v'):>7}  {ts}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sparwatt-demo", description=__doc__)
    p.add_argument("--dir", type=Path, help="where to keep configs, logs and the database")
    p.add_argument("--interval", type=float, default=2.0, help="meter poll interval, seconds")
    p.add_argument("--duration", type=float, help="stop by itself after this many seconds")
    p.add_argument(
        "--no-history", action="store_true", help="start with an empty database, live data only"
    )
    args = p.parse_args(argv)
    root = args.dir or Path(tempfile.mkdtemp(prefix="sparwatt-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    demo = Demo(root.resolve(), args.interval, history=not args.no_history)
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        sites = demo.start()
    except (BrokerError, subprocess.CalledProcessError, OSError) as exc:
        detail = getattr(exc, "stderr", None) or ""
        print(f"sparwatt-demo: cannot start: {exc}\n{detail}".rstrip(), file=sys.stderr)
        demo.stop()
        return 1
    db = demo.db
    port = demo.broker.port if demo.broker else 0
    meters = sum(int(str(s["meters"])) for s in sites)
    history = demo.history_note or "none (--no-history): live data only"
    print(
        "\n".join(
            [
                f"Sparwatt demo running: {meters} simulated meters on {len(sites)} sites.",
                f"  history:   {history}",
                f"  broker:    mqtt://127.0.0.1:{port}",
                f"  watch:     mosquitto_sub -p {port} -t 'sparwatt/#' -v",
                f"  web:       http://127.0.0.1:{demo.web_port}/  log in with a token:",
                *[f"             {who:<14} {token}" for who, token in demo.tokens.items()],
                *(
                    [f"  a year:    http://127.0.0.1:{demo.web_port}{year_report(IMPORTED[0])}"]
                    if demo.history
                    else []
                ),
                f"  database:  {db}",
                f"  latest:    sparwatt-collector latest --db {db}",
                f"  export:    sparwatt-collector export --db {db} --site bakery-nord "
                "--from 2026-01-01 --to 2100-01-01",
                f"  configs and logs: {root}",
                "Press Ctrl-C to stop.",
                "",
            ]
        ),
        flush=True,
    )
    started = time.monotonic()
    summary: str | None = None
    next_table = started + 2.0
    try:
        while not stop and (args.duration is None or time.monotonic() - started < args.duration):
            time.sleep(0.2)
            if summary is None:
                with contextlib.suppress(sqlite3.Error):
                    summary = demo.evaluated()
                if summary is not None:
                    print(summary + "\n", flush=True)
            if time.monotonic() >= next_table and not stop:
                next_table = time.monotonic() + 2.0
                with contextlib.suppress(ValueError, sqlite3.Error):
                    print(table(demo.latest()) + "\n", flush=True)
    finally:
        print("stopping...", flush=True)
        demo.stop()
        print("stopped; data kept in", root, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
