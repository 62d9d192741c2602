"""Shared ingest: N collectors in one MQTT v5 shared subscription on one SQLite file, against
one collector on the same stream in the same run.

Both rates run from the publisher's first publish to the last reading committed; the
publisher is a process of its own. CPU is read from /proc for each collector process and
the broker. Mosquitto deals a group's messages round-robin, so each collector of the group
stores 1/N of the messages; its rate is its share over the same wall time.

Run:  .venv/bin/python bench/bench_shared_ingest.py [--collectors 3] [--gateways 20]
          [--messages 4000] [--readings 20] [--values 28] [--synchronous full|normal]
On SQLite every commit holds the one write lock: the group gains where receiving and
validating (a little over half of a collector's CPU per reading) run beside another's commit,
and loses to the lock hand-over and to the processes competing for the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_ingest import QUANTITIES, _client, _committed, _cpu_s  # noqa: E402

from devtools.broker import Mosquitto  # noqa: E402
from sparwatt.wire import format_ts  # noqa: E402

GROUP = "bench"


def stream(gateways: int, messages: int, readings: int, values: int) -> list[tuple[str, bytes]]:
    """The benchmark's messages, the same on every call: gateways take turns, each with its
    own seq from 1 and `readings` meters per message (one reading each)."""
    t0 = (int(time.time()) - 86_400) * 1000
    names = QUANTITIES[:values]
    out = []
    for i in range(messages):
        gw, seq = i % gateways, i // gateways + 1
        ts = format_ts(datetime.fromtimestamp((t0 + seq * 1000) / 1000, UTC))
        body = {
            "schema": 1,
            "site": f"site-{gw:04d}",
            "gateway": "gw1",
            "seq": seq,
            "sent_at": ts,
            "readings": [
                {"meter": f"m{j}", "ts": ts, "values": dict.fromkeys(names, 1000.0 + seq + j)}
                for j in range(readings)
            ],
        }
        out.append((f"sparwatt/v1/site-{gw:04d}/gw1/readings", json.dumps(body).encode()))
    return out


def run_publisher(port: int, gateways: int, messages: int, readings: int, values: int) -> None:
    """Child process: publish the stream at QoS 1 and report when it started."""
    data = stream(gateways, messages, readings, values)
    client = _client("bench-publisher", port)
    client.loop_start()  # type: ignore[attr-defined]
    started, cpu = time.time(), time.process_time()
    infos = [client.publish(t, p, qos=1) for t, p in data]  # type: ignore[attr-defined]
    for info in infos:
        info.wait_for_publish(120)
    print(json.dumps({"started": started, "cpu_s": time.process_time() - cpu}), flush=True)
    client.disconnect()  # type: ignore[attr-defined]
    client.loop_stop()  # type: ignore[attr-defined]


@dataclass
class Run:
    seconds: float  # first publish to last reading committed
    cpu_s: list[float]  # per collector process
    broker_cpu_s: float
    publisher_cpu_s: float
    gaps: int
    duplicates: int


def _start(
    workdir: Path, name: str, db: Path, port: int, args: argparse.Namespace, group: bool
) -> subprocess.Popen[bytes]:
    cfg = workdir / f"{name}.toml"
    cfg.write_text(
        f'[storage]\ndb = "{db}"\nsynchronous = "{args.synchronous}"\n\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\nclient_id = "{name}"\n'
        + (f'shared_group = "{GROUP}"\n' if group else "")
        + "\n[intervals]\nrefresh_s = 3600\n"
    )
    log = (workdir / f"{name}.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "collector.cli", "run", str(cfg)],
        cwd=ROOT,
        stdout=log,
        stderr=log,
    )


def _probe(port: int, db: Path | str, values: int, what: str) -> None:
    """Publish one reading of the stream's layout until it is committed: the session is up
    (and the packing layout exists before the other collectors open the database)."""
    client = _client("bench-probe", port)
    client.loop_start()  # type: ignore[attr-defined]
    topic, body = stream(1, 1, 1, values)[0]
    probe = json.loads(body)
    probe["site"], probe["seq"] = "probe", 0
    deadline = time.monotonic() + 60
    while _committed(db) < 1:
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start; see its log")
        client.publish(  # type: ignore[attr-defined]
            topic.replace("site-0000", "probe"), json.dumps(probe), qos=1
        )
        time.sleep(0.2)
    client.loop_stop()  # type: ignore[attr-defined]
    client.disconnect()  # type: ignore[attr-defined]


def wait_subscribed(workdir: Path, names: list[str]) -> None:
    """Until every collector's log says it subscribed, then a moment for start-up work."""
    deadline = time.monotonic() + 60
    while not all("subscribed to" in (workdir / f"{n}.log").read_text() for n in names):
        if time.monotonic() > deadline:
            raise SystemExit(f"the collectors did not all subscribe; see {workdir}")
        time.sleep(0.1)
    time.sleep(1.0)  # let start-up work settle


def bench(
    port: int, broker_pid: int, workdir: Path, args: argparse.Namespace, collectors: int
) -> Run:
    group = collectors > 1
    db = workdir / f"{'shared' if group else 'single'}.db"
    names = [f"{'member' if group else 'single'}-{k}" for k in range(1, collectors + 1)]
    procs = [_start(workdir, names[0], db, port, args, group)]
    try:
        _probe(port, db, args.values, names[0])
        procs += [_start(workdir, n, db, port, args, group) for n in names[1:]]
        wait_subscribed(workdir, names)
        base = _committed(db)
        total = args.messages * args.readings
        cpu = [_cpu_s(p.pid) for p in procs]
        broker_cpu = _cpu_s(broker_pid)
        pub = subprocess.run(
            [sys.executable, __file__, "_publish", str(port)]
            + [str(x) for x in (args.gateways, args.messages, args.readings, args.values)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=600,
            check=True,
        )
        times = json.loads(pub.stdout.strip().splitlines()[-1])
        while _committed(db) < base + total:
            time.sleep(0.01)
        end = time.time()
        cpu = [_cpu_s(p.pid) - c for p, c in zip(procs, cpu, strict=True)]
        broker_cpu = _cpu_s(broker_pid) - broker_cpu
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(60)
    con = sqlite3.connect(db)
    try:
        gaps = con.execute("SELECT (SELECT COUNT(*) FROM gap) + (SELECT COUNT(*) FROM gap_pending)")
        duplicates = con.execute("SELECT value FROM counter WHERE name = 'duplicates'")
        found_gaps, dup = gaps.fetchone()[0], duplicates.fetchone()
    finally:
        con.close()
    return Run(
        end - times["started"], cpu, broker_cpu, times["cpu_s"], found_gaps, dup[0] if dup else 0
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--collectors", type=int, default=3, help="processes in the group")
    p.add_argument("--gateways", type=int, default=20)
    p.add_argument("--messages", type=int, default=4000)
    p.add_argument("--readings", type=int, default=20, help="readings (meters) per message")
    p.add_argument("--values", type=int, default=28, help="quantities per reading (1..28)")
    p.add_argument("--synchronous", choices=["full", "normal"], default="full")
    args = p.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="sparwatt-bench-") as tmp,
        Mosquitto(Path(tmp) / "broker") as broker,
    ):
        assert broker.process is not None
        pid = broker.process.pid
        one = bench(broker.port, pid, Path(tmp), args, 1)
        group = bench(broker.port, pid, Path(tmp), args, args.collectors)
    readings = args.messages * args.readings
    values = readings * args.values
    print(
        f"stream: {args.messages:,} messages from {args.gateways} gateways x {args.readings} "
        f"readings x {args.values} values = {values:,} values, QoS 1, "
        f"synchronous={args.synchronous}"
    )
    for label, run in (("one collector (baseline)", one), (f"{args.collectors} sharing", group)):
        rate = values / run.seconds
        cpu = sum(run.cpu_s)
        print(
            f"{label}: {rate:12,.0f} values/s in total ({readings / run.seconds:,.0f} "
            f"readings/s); collector CPU {cpu:.2f} s = {cpu / values * 1e6:.3f} us per value; "
            f"Mosquitto {run.broker_cpu_s:.2f} s, publisher {run.publisher_cpu_s:.2f} s; "
            f"gaps {run.gaps}, duplicate values {run.duplicates}"
        )
        if len(run.cpu_s) > 1:
            share = rate / len(run.cpu_s)
            for k, c in enumerate(run.cpu_s, 1):
                print(
                    f"    process {k}: {share:12,.0f} values/s (1/{len(run.cpu_s)} of the "
                    f"messages), CPU {c:.2f} s = {c / (values / len(run.cpu_s)) * 1e6:.3f} us "
                    "per value"
                )
    print(
        f"group / one collector: {one.seconds / group.seconds:.2f} x the rate, "
        f"{sum(group.cpu_s) / sum(one.cpu_s):.2f} x the collector CPU; load average "
        f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (other work on the machine "
        "lowers the rates, not the CPU figures)"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_publish":
        run_publisher(*(int(a) for a in sys.argv[2:7]))
    else:
        main()
