"""sparwatt-demo: simulated meters -> gateways -> private Mosquitto -> collector, on one machine."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devtools.broker import BrokerError, Mosquitto, free_port, wait_for_port

SITES = [
    ("bakery-nord", "production", ["eastron-sdm630", "eastron-sdm120", "carlo-gavazzi-em24"]),
    ("office-park", "office", ["abb-b23", "eastron-sdm630"]),
    (
        "cold-store-syd",
        "cold-store",
        ["janitza-umg96rm", "schneider-iem3155", "carlo-gavazzi-em340"],
    ),
]


def _models_available() -> set[str]:
    out = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "meters", "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {m["id"] for m in json.loads(out)}


def plan_sites(available: set[str]) -> list[tuple[str, str, list[str]]]:
    """Three sites of two or three meters; falls back to the SDM630 for models not shipped."""
    return [
        (site, profile, [m if m in available else "eastron-sdm630" for m in models])
        for site, profile, models in SITES
    ]


def write_configs(
    root: Path, broker_port: int, interval_s: float, web_port: int
) -> list[dict[str, object]]:
    sites = plan_sites(_models_available())
    sim_lines = ["tick_s = 1.0"]
    launched = []
    for index, (site, profile, models) in enumerate(sites):
        port = free_port()
        sim_lines += ["[[servers]]", 'transport = "tcp"', 'host = "127.0.0.1"', f"port = {port}"]
        gw = [
            f'[gateway]\nsite = "{site}"\nid = "gw1"\nstate_dir = "{root / site}"',
            f'[mqtt]\nhost = "127.0.0.1"\nport = {broker_port}\nprotocol = "v5"',
            "[outbox]\ncommit_interval_s = 1.0",
            "[health]\ninterval_s = 10",
            f'[[buses]]\nid = "main"\ntransport = "tcp"\nhost = "127.0.0.1"\nport = {port}\n'
            "timeout_s = 1.0",
        ]
        for unit, model in enumerate(models, start=1):
            kind = "compressor" if (profile == "production" and unit == 3) else profile
            sim_lines += [
                "[[servers.meters]]",
                f"unit = {unit}",
                f'model = "{model}"',
                f'profile = "{kind}"',
                f"peak_kw = {30 + 25 * unit + 10 * index}",
                f"seed = {index * 10 + unit}",
                f"start_kwh = {10000 * (index + 1) + 1000 * unit}",
            ]
            gw.append(
                f'[[meters]]\nid = "meter-{unit}"\nbus = "main"\nunit = {unit}\n'
                f'model = "{model}"\ninterval_s = {interval_s}'
            )
        (root / f"gateway-{site}.toml").write_text("\n\n".join(gw) + "\n")
        launched.append({"site": site, "port": port, "meters": len(models)})
    (root / "sim.toml").write_text("\n".join(sim_lines) + "\n")
    (root / "collector.toml").write_text(
        f'[storage]\ndb = "{root / "sparwatt.db"}"\n\n[mqtt]\nhost = "127.0.0.1"\n'
        f'port = {broker_port}\nclient_id = "sparwatt-demo-collector"\n\n'
        "[intervals]\nrefresh_s = 10\n\n"
        f'[http]\nenabled = true\nhost = "127.0.0.1"\nport = {web_port}\n'
    )
    return launched


class Demo:
    def __init__(self, root: Path, interval_s: float) -> None:
        self.root = root
        self.interval_s = interval_s
        self.children: list[subprocess.Popen[bytes]] = []
        self.broker: Mosquitto | None = None
        self.web_port = free_port()
        self.tokens: dict[str, str] = {}

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", *args], stdout=log, stderr=log, start_new_session=True
        )
        self.children.append(proc)
        return proc

    def start(self) -> list[dict[str, object]]:
        self.broker = Mosquitto(self.root / "broker").start()
        sites = write_configs(self.root, self.broker.port, self.interval_s, self.web_port)
        # no default login exists: the demo makes one consultant-wide and one company token
        self.tokens["admin"] = self._token("--role", "admin", "--name", "demo-admin")
        first = str(sites[0]["site"])
        self.tokens[first] = self._token(
            "--role", "company", "--site", first, "--name", f"demo-{first}"
        )
        self._spawn("sim", "gateway.sim.cli", "--config", str(self.root / "sim.toml"))
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

    def _token(self, *args: str) -> str:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "collector.cli",
                "token",
                "add",
                "--json",
                "--db",
                str(self.root / "sparwatt.db"),
                *args,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return str(json.loads(out.stdout)["token"])

    def latest(self) -> list[dict[str, object]]:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "collector.cli",
                "latest",
                "--json",
                "--db",
                str(self.root / "sparwatt.db"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        return json.loads(out.stdout) if out.returncode == 0 else []

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
    args = p.parse_args(argv)
    root = args.dir or Path(tempfile.mkdtemp(prefix="sparwatt-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    demo = Demo(root.resolve(), args.interval)
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        sites = demo.start()
    except (BrokerError, subprocess.CalledProcessError, OSError) as exc:
        print(f"sparwatt-demo: cannot start: {exc}", file=sys.stderr)
        demo.stop()
        return 1
    db = root / "sparwatt.db"
    port = demo.broker.port if demo.broker else 0
    meters = sum(int(str(s["meters"])) for s in sites)
    print(
        "\n".join(
            [
                f"Sparwatt demo running: {meters} simulated meters on {len(sites)} sites.",
                f"  broker:    mqtt://127.0.0.1:{port}",
                f"  watch:     mosquitto_sub -p {port} -t 'sparwatt/#' -v",
                f"  web:       http://127.0.0.1:{demo.web_port}/  log in with a token:",
                *[f"             {who:<14} {token}" for who, token in demo.tokens.items()],
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
    try:
        while not stop and (args.duration is None or time.monotonic() - started < args.duration):
            for _ in range(10):
                if stop:
                    break
                time.sleep(0.2)
            if not stop:
                with contextlib.suppress(ValueError):
                    print(table(demo.latest()) + "\n", flush=True)
    finally:
        print("stopping...", flush=True)
        demo.stop()
        print("stopped; data kept in", root, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
