"""End-to-end ingest rate: publisher -> Mosquitto -> collector -> committed in SQLite.

Compared, in one run and on the same broker, with a bare paho subscriber that only counts
the same stream. Both rates run from the first publish to the last message counted (bare)
or committed (collector), with the publisher in its own process.

Run:  .venv/bin/python bench/bench_ingest.py [--messages 2000] [--readings 100] [--values 1..28]
          [--against REV [--rounds 3]]
Targets: collector >= 0.5 x the bare rate, >= 100,000 readings/s (batches of 100) and
>= 250,000 stored values/s. With --against, the collector of git revision REV (its storage
layout and write path) runs the same stream on the same broker, in turns with this one, and
the ratio of the two rates is printed: the packed layout's target was 250,000 values/s where
one row per value reached 270,000, a ratio of at least 0.93.
A reading is one meter at one instant (one entry of a batch's "readings"); with --values N
each carries N quantities, packed into one stored row (docs/storage.md).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools.broker import Mosquitto  # noqa: E402
from sparwatt.wire import format_ts  # noqa: E402


def _sdm630_quantities() -> list[str]:
    """The 28 quantities a simulated Eastron SDM630 reports, power and energy first."""
    from gateway.sim.meter import SimulatedMeter
    from gateway.sim.profile import LoadProfile

    names = list(SimulatedMeter(LoadProfile("office", 20.0, seed=1)).values(0))
    first = ["power_w", "energy_import_kwh"]
    return first + [q for q in names if q not in first]


QUANTITIES = _sdm630_quantities()
TARGET_RATIO, TARGET_RATE, TARGET_VALUES = 0.5, 100_000, 250_000
TARGET_AGAINST = 250_000 / 270_000


def stream(messages: int, readings: int, values: int) -> list[tuple[str, bytes]]:
    """The benchmark's messages, the same on every call (one gateway, ten meters)."""
    t0 = (int(time.time()) - 86_400) * 1000
    names = QUANTITIES[:values]
    out = []
    for i in range(messages):
        batch = []
        for j in range(readings):
            ts = format_ts(datetime.fromtimestamp((t0 + (i * readings + j) * 100) / 1000, UTC))
            batch.append(
                {
                    "meter": f"m{j % 10}",
                    "ts": ts,
                    "values": dict.fromkeys(names, 1000.0 + i + j / 8),
                }
            )
        body = {
            "schema": 1,
            "site": "bench",
            "gateway": "gw1",
            "seq": i + 1,
            "sent_at": batch[-1]["ts"],
            "readings": batch,
        }
        out.append(("sparwatt/v1/bench/gw1/readings", json.dumps(body).encode()))
    return out


def _client(name: str, port: int) -> object:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=name, protocol=MQTTProtocolVersion.MQTTv5
    )
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    return client


def run_publisher(port: int, messages: int, readings: int, values: int) -> None:
    """Child process: publish the stream at QoS 1 and report the first publish time."""
    data = stream(messages, readings, values)
    client = _client("bench-publisher", port)
    client.loop_start()  # type: ignore[attr-defined]
    started, cpu = time.time(), time.process_time()
    infos = [client.publish(t, p, qos=1) for t, p in data]  # type: ignore[attr-defined]
    for info in infos:
        info.wait_for_publish(60)
    print(
        json.dumps({"started": started, "done": time.time(), "cpu_s": time.process_time() - cpu}),
        flush=True,
    )
    client.disconnect()  # type: ignore[attr-defined]
    client.loop_stop()  # type: ignore[attr-defined]


def run_bare(port: int, messages: int) -> None:
    """Child process: subscribe at QoS 1 and count; report when the last message came."""
    import threading

    client = _client("bench-bare", port)
    seen = [0]
    done = threading.Event()
    first: list[float] = []

    def on_message(*_: object) -> None:
        if not first:
            first.append(time.time())
        seen[0] += 1
        if seen[0] == messages:
            done.set()

    client.on_message = on_message  # type: ignore[attr-defined]
    client.subscribe("sparwatt/v1/+/+/readings", qos=1)  # type: ignore[attr-defined]
    client.loop_start()  # type: ignore[attr-defined]
    time.sleep(0.5)
    cpu = time.process_time()
    print("ready", flush=True)
    done.wait(600)
    print(
        json.dumps(
            {
                "last": time.time(),
                "first": first[0],
                "rss_kb": _peak_rss_kb(os.getpid()),
                "cpu_s": time.process_time() - cpu,
            }
        ),
        flush=True,
    )
    client.loop_stop()  # type: ignore[attr-defined]


def _cpu_s(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, text=True, cwd=ROOT)


def publish(port: int, args: argparse.Namespace) -> dict[str, float]:
    pub = _spawn(
        __file__, "_publish", str(port), str(args.messages), str(args.readings), str(args.values)
    )
    out, _ = pub.communicate(timeout=600)
    return json.loads(out.strip().splitlines()[-1])


def bench_bare(
    port: int, args: argparse.Namespace, broker_pid: int
) -> tuple[float, int, float, float, float]:
    bare = _spawn(__file__, "_bare", str(port), str(args.messages))
    try:
        assert bare.stdout is not None
        assert bare.stdout.readline().strip() == "ready"
        broker_cpu = _cpu_s(broker_pid)
        times = publish(port, args)
        result = json.loads(bare.communicate(timeout=600)[0].strip().splitlines()[-1])
    finally:
        if bare.poll() is None:
            bare.kill()
        broker_cpu = _cpu_s(broker_pid) - broker_cpu
    total = args.messages * args.readings
    return (
        total / (result["last"] - times["started"]),
        result["rss_kb"],
        result["cpu_s"],
        times["cpu_s"],
        broker_cpu,
    )


def _committed(db: Path | str) -> int:
    """Readings the collector has committed (0 while its database is not there yet); `db`
    a SQLite file or a PostgreSQL URL."""
    from collector.store.schema import connect

    try:
        con = connect(db, readonly=True)
        try:
            row = con.execute("SELECT value FROM counter WHERE name='readings'").fetchone()
        finally:
            con.close()
    except Exception:  # no database, or no schema yet
        return 0
    return int(row[0]) if row else 0


def run_stages(messages: int, readings: int, values: int, batch: int, synchronous: str) -> None:
    """Child process: the collector's two stages on the same stream, one thread, no MQTT.

    Validation (contract models plus ingest rules) and storage (rows, SQLite, commit) are
    timed separately, batch by batch as the collector runs them.
    """
    from collector import service
    from collector.ingest import check as ingest
    from collector.settings import Ingest
    from collector.store import Store

    data = stream(messages, readings, values)
    rules = Ingest()
    with tempfile.TemporaryDirectory(prefix="sparwatt-bench-") as tmp:
        store = Store(Path(tmp) / "stages.db", synchronous=synchronous)  # type: ignore[arg-type]
        service.tune_gc()
        check_s = store_s = 0.0
        for i in range(0, len(data), batch):
            with service.batch_gc():
                t0 = time.process_time()
                accepted = [ingest.check(t, p, rules, set()) for t, p in data[i : i + batch]]
                t1 = time.process_time()
                store.write(accepted)  # type: ignore[arg-type]
                check_s, store_s = check_s + t1 - t0, store_s + time.process_time() - t1
            del accepted
        store.close()
    print(json.dumps({"check_s": check_s, "store_s": store_s}), flush=True)


def stages(args: argparse.Namespace) -> dict[str, float]:
    child = _spawn(
        __file__,
        "_stages",
        str(args.messages),
        str(args.readings),
        str(args.values),
        str(args.batch_messages),
        args.synchronous,
    )
    out, _ = child.communicate(timeout=600)
    return json.loads(out.strip().splitlines()[-1])


def bench_collector(
    port: int, workdir: Path, args: argparse.Namespace, root: Path = ROOT
) -> tuple[float, int, float, float]:
    """The collector's rate, peak RSS, lag and CPU; `root` the source tree it runs from."""
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "bench.db"
    cfg = workdir / "collector.toml"
    cfg.write_text(
        f'[storage]\ndb = "{db}"\nsynchronous = "{args.synchronous}"\n\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\nclient_id = "bench-{workdir.name}"\n'
        f"\n[ingest]\nbatch_messages = {args.batch_messages}\n"
        f"[intervals]\nrefresh_s = 3600\n"
    )
    log = (workdir / "collector.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "collector.cli", "run", str(cfg), "--log-level", "WARNING"],
        cwd=root,
        stdout=log,
        stderr=log,
    )
    try:
        # a one-reading probe (seq 0) proves the session is up before the stream starts
        client = _client("bench-probe", port)
        client.loop_start()  # type: ignore[attr-defined]
        probe = json.loads(stream(1, 1, 1)[0][1])
        probe["seq"] = 0
        deadline = time.monotonic() + 30
        while _committed(db) < 1:
            if time.monotonic() > deadline:
                raise SystemExit(f"collector did not start; see {workdir}/collector.log")
            client.publish(
                "sparwatt/v1/bench/gw1/readings",  # type: ignore[attr-defined]
                json.dumps(probe),
                qos=1,
            )
            time.sleep(0.2)
        client.loop_stop()  # type: ignore[attr-defined]
        time.sleep(0.5)  # let start-up work (imports, first refresh) settle
        base = _committed(db)
        total = args.messages * args.readings
        cpu = _cpu_s(proc.pid)
        times = publish(port, args)
        while _committed(db) < base + total:
            time.sleep(0.01)
        end = time.time()
        cpu = _cpu_s(proc.pid) - cpu
        rss = _peak_rss_kb(proc.pid)
        return total / (end - times["started"]), rss, end - times["done"], cpu
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def _source_of(rev: str, where: Path) -> Path:
    """The source tree of a git revision of this repository, unpacked into `where`."""
    where.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
    return where


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--readings", type=int, default=100, help="readings per message")
    p.add_argument(
        "--values",
        type=int,
        default=1,
        choices=range(1, len(QUANTITIES) + 1),
        metavar="1..28",
        help="quantities per reading (an SDM630 reports 28)",
    )
    p.add_argument("--batch-messages", type=int, default=500, help="collector commit batch")
    p.add_argument("--synchronous", choices=["full", "normal"], default="full")
    p.add_argument("--against", metavar="REV", help="also run the collector of this git revision")
    p.add_argument("--rounds", type=int, help="collector runs (each, in turns); 3 with --against")
    args = p.parse_args()
    rounds = args.rounds or (3 if args.against else 1)
    theirs: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="sparwatt-bench-") as tmp,
        Mosquitto(Path(tmp) / "broker") as broker,
    ):
        assert broker.process is not None
        bare, bare_rss, bare_cpu, pub_cpu, broker_cpu = bench_bare(
            broker.port, args, broker.process.pid
        )
        other = _source_of(args.against, Path(tmp) / "against") if args.against else None
        runs = []
        for k in range(rounds):
            runs.append(bench_collector(broker.port, Path(tmp) / f"ours{k}", args))
            if other is not None:
                theirs.append(bench_collector(broker.port, Path(tmp) / f"theirs{k}", args, other))
        ours, rss, lag, cpu = sorted(runs)[len(runs) // 2]  # the median run by rate
    cost = stages(args)
    total = args.messages * args.readings
    ratio = ours / bare
    print(
        f"stream: {args.messages} messages x {args.readings} readings x {args.values} "
        f"values = {total:,} readings ({total * args.values:,} stored values), QoS 1"
    )
    print(
        f"bare paho subscriber (baseline): {bare:12,.0f} readings/s   peak RSS "
        f"{bare_rss / 1024:.0f} MiB   CPU {bare_cpu:.2f} s "
        f"({total / max(bare_cpu, 1e-9):,.0f} readings per CPU-second)"
    )
    print(
        f"collector, committed in SQLite:  {ours:12,.0f} readings/s   peak RSS "
        f"{rss / 1024:.0f} MiB   CPU {cpu:.2f} s ({total / max(cpu, 1e-9):,.0f} readings "
        f"per CPU-second; {ours * args.values:,.0f} values/s; "
        f"{lag:.2f} s behind the publisher's last PUBACK)"
    )
    # Wall time cannot beat the CPU the whole pipeline needs spread over every core, so this
    # bounds the ratio any collector with this CPU cost could reach on this machine.
    cores = os.cpu_count() or 1
    needed = pub_cpu + broker_cpu + cpu
    ceiling = (total / bare) / (needed / cores)
    print(
        f"CPU of the whole pipeline: publisher {pub_cpu:.2f} s + Mosquitto {broker_cpu:.2f} s "
        f"(baseline run) + collector {cpu:.2f} s = {needed:.2f} s; spread perfectly over "
        f"{cores} cores that takes {needed / cores:.2f} s, against {total / bare:.2f} s for "
        f"the bare subscriber: ceiling {ceiling:.2f} x the bare rate at this CPU cost"
    )
    us = 1e6 / total
    receive, check, store = bare_cpu * us, cost["check_s"] * us, cost["store_s"] * us
    print(
        f"CPU per reading by stage (one thread): receive {receive:.2f} us (bare subscriber) + "
        f"validate {check:.2f} us (contract models and ingest rules) + store {store:.2f} us "
        f"(rows, SQLite, commit) = {receive + check + store:.2f} us; the target leaves "
        f"{total / (TARGET_RATIO * bare) / total * 1e6:.2f} us per reading of wall time"
    )
    load = os.getloadavg()[0]
    print(
        f"load average during the run: {load:.2f} on {os.cpu_count()} cores "
        "(other work on the machine lowers the wall-clock rates, not the CPU figures)"
    )
    print(
        f"collector / bare: {ratio:.2f} (target >= {TARGET_RATIO}: "
        f"{'met' if ratio >= TARGET_RATIO else 'NOT met'}); collector rate target "
        f"{TARGET_RATE:,} readings/s: {'met' if ours >= TARGET_RATE else 'NOT met'}; "
        f"values/s target {TARGET_VALUES:,}: "
        f"{'met' if ours * args.values >= TARGET_VALUES else 'NOT met'}"
    )
    if theirs:
        against, _, _, their_cpu = sorted(theirs)[len(theirs) // 2]
        ratio = ours / against
        for name, done in (("this collector", runs), (f"revision {args.against}", theirs)):
            print(
                f"{name}, {rounds} runs in turns: "
                + ", ".join(f"{r:,.0f} readings/s ({c:.2f} s CPU)" for r, _, _, c in done)
            )
        print(
            f"median against median: {ours:,.0f} / {against:,.0f} = {ratio:.2f} "
            f"(target >= {TARGET_AGAINST:.2f}: {'met' if ratio >= TARGET_AGAINST else 'NOT met'}); "
            f"CPU a reading {cpu * us:.2f} us against {their_cpu * us:.2f} us"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_publish":
        run_publisher(*(int(a) for a in sys.argv[2:6]))
    elif len(sys.argv) > 1 and sys.argv[1] == "_stages":
        m, r, v, b = (int(a) for a in sys.argv[2:6])
        run_stages(m, r, v, b, sys.argv[6])
    elif len(sys.argv) > 1 and sys.argv[1] == "_bare":
        run_bare(int(sys.argv[2]), int(sys.argv[3]))
    else:
        main()
