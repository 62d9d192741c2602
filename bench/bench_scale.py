"""Scale, long form: gateways x SDM630 meters x 28 quantities, readings 10 s apart in simulated
time, into one collector and then into a group sharing the subscription with one member
killed (SIGKILL) mid-run and restarted: values/s and CPU per value. The baseline stores into
a SQLite file; the group into a private PostgreSQL server (--group-on postgresql, the
default), one SQLite file (--group-on sqlite), or raw readings into a private
VictoriaMetrics and the rest into PostgreSQL (--group-on victoria).

Run:  .venv/bin/python bench/bench_scale.py [--gateways 2000] [--meters 5] [--ticks 12]
          [--collectors 3] [--kill-at 0.4] [--down-s 5] [--grace-s 60] [--refresh-s 30]
          [--synchronous full|normal] [--group-on postgresql|sqlite|victoria] [--keep DIR]

The stream is made once by a publisher process of its own (devtools/load.py: every gateway's
readings message per tick, seq from 1) and published whole, as fast as QoS 1 allows, to a
fresh Mosquitto per run: first into one collector (the baseline), then into the group. Rates
run from the first publish to the last value committed. CPU is read from /proc for every
collector process (the killed member's two lives added up, the second one's start-up
included), the broker and the publisher.
Mosquitto deals a group's messages round-robin, to a member that is down as well (they wait
in its session), so each member stores 1/N of the messages; its rate is that share over the
run's wall time.

Afterwards the collectors stop cleanly, which runs their last interval refresh, and the
checks are printed: every published value read back once from each database, the counters,
the gaps (watched during the run too) and the 15-minute energy of the group against the
baseline's. The interval refresh and pruning run on a thread of their own beside ingest,
at one member of the group at a time.
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
from collections import deque
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_ingest import _cpu_s  # noqa: E402
from bench_shared_ingest import _probe, wait_subscribed  # noqa: E402

from collector.store import Reader, schema  # noqa: E402
from collector.store.rows import GapRow  # noqa: E402
from collector.store.sql import Target  # noqa: E402
from devtools.broker import Mosquitto  # noqa: E402
from devtools.load import connect, fleet, sent_values, ticks  # noqa: E402
from devtools.postgres import Postgres  # noqa: E402
from devtools.victoria import VictoriaMetrics  # noqa: E402

TICK_S = 10.0
QUANTITIES = 28
GROUP = "bench-scale"
EVERYTHING = (0, 2**62)  # a time range holding every reading
# publishes not yet acknowledged: paho's message ids wrap at 65,535, and one still in flight
# refuses a new message that draws it
OUTSTANDING = 30_000


def start_s(count: int) -> float:
    """Where the stream's simulated time starts: its middle on a quarter-hour boundary, its
    end an hour or more ago (the collector refuses readings from the future)."""
    middle = (time.time() - 3600 - count * TICK_S) // 900 * 900
    return middle - count // 2 * TICK_S


# ---- the publisher (a process of its own)


def run_publisher(gateways: int, meters: int, count: int, first_s: float) -> None:
    """Child process: make the stream, then publish it whole to each port read from stdin.

    Prints "ready" once the stream is made, and per port a JSON line: when the first
    publish went out, when the last PUBACK came, and the CPU that took.
    """
    stream = [m for tick in ticks(fleet(gateways, meters), first_s, TICK_S, count) for m in tick]
    print("ready", flush=True)
    for line in sys.stdin:
        client = connect("127.0.0.1", int(line))
        started, cpu = time.time(), time.process_time()
        infos: deque[mqtt.MQTTMessageInfo] = deque()
        for topic, payload in stream:
            if len(infos) == OUTSTANDING:
                infos.popleft().wait_for_publish(600)
            infos.append(client.publish(topic, payload, qos=1))
        for info in infos:
            info.wait_for_publish(600)
        done = time.time()
        client.disconnect()
        client.loop_stop()
        report = {"started": started, "done": done, "cpu_s": time.process_time() - cpu}
        print(json.dumps(report), flush=True)


class Publisher:
    def __init__(self, args: argparse.Namespace, first_s: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "_publish"]
            + [str(x) for x in (args.gateways, args.meters, args.ticks, first_s)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise SystemExit("the publisher did not start")

    def publish(self, port: int) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{port}\n")
        self.proc.stdin.flush()

    def report(self) -> dict[str, float]:
        assert self.proc.stdout is not None
        return dict(json.loads(self.proc.stdout.readline()))

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(60)


# ---- the collectors


def table_rows(db: Target, table: str) -> int:
    """Rows of a table the Reader has no query for (gap_pending, dirty)."""
    with closing(schema.connect(db, readonly=True)) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def _config(workdir: Path, name: str, db: Target, port: int, args: argparse.Namespace) -> Path:
    group = name.startswith("member")
    path = workdir / f"{name}.toml"
    path.write_text(
        f'[storage]\ndb = "{db}"\nsynchronous = "{args.synchronous}"\n\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\nclient_id = "{name}"\n'
        + (f'shared_group = "{GROUP}"\n' if group else "")
        + f"\n[ingest]\ngap_grace_s = {args.grace_s}\n"
        + f"\n[intervals]\nrefresh_s = {args.refresh_s}\n"
        + (
            f'\n[storage.victoria]\nurl = "{args.victoria_url}"\n'
            if group and args.victoria_url
            else ""
        )
    )
    return path


def _spawn(workdir: Path, name: str) -> subprocess.Popen[bytes]:
    log = (workdir / f"{name}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "collector.cli", "run", str(workdir / f"{name}.toml")],
        cwd=ROOT,
        stdout=log,
        stderr=log,
    )


def _killed_cpu_s(proc: subprocess.Popen[bytes]) -> float:
    """SIGKILL a process and return the CPU it used: read once it is a zombie, before the
    wait that reaps it (a zombie keeps its CPU times)."""
    before = _cpu_s(proc.pid)
    proc.send_signal(signal.SIGKILL)
    stat = Path(f"/proc/{proc.pid}/stat")
    for _ in range(500):
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
                before = _cpu_s(proc.pid)
                break
        except OSError:
            break
        time.sleep(0.002)
    proc.wait()
    return before


@dataclass
class Run:
    label: str
    db: Target
    seconds: float = 0.0  # first publish to the last value committed
    cpu_s: list[float] = field(default_factory=list)  # per member (a killed one's lives added)
    broker_cpu_s: float = 0.0
    publisher_cpu_s: float = 0.0
    stop_s: float = 0.0  # SIGTERM to exit: the last interval refresh
    kill: str = ""
    gaps_seen: set[GapRow] = field(default_factory=set)
    complete: bool = True


def run(
    label: str,
    workdir: Path,
    publisher: Publisher,
    args: argparse.Namespace,
    members: int,
    db: Target | None = None,
) -> Run:
    """One run on a fresh broker: `members` collectors (1: the baseline, without a group),
    on `db` (by default a new SQLite file)."""
    workdir.mkdir()
    db = db or workdir / "collector.db"
    result = Run(label, db)
    with Mosquitto(workdir / "broker") as broker:
        assert broker.process is not None
        names = ["single"] if members == 1 else [f"member-{k}" for k in range(1, members + 1)]
        for name in names:
            _config(workdir, name, db, broker.port, args)
        # the first makes the database; the others open it once it is there
        procs = [_spawn(workdir, names[0])]
        try:
            _probe(broker.port, db, QUANTITIES, names[0])
            procs += [_spawn(workdir, n) for n in names[1:]]
            wait_subscribed(workdir, names)
            total = args.gateways * args.meters * args.ticks * QUANTITIES
            watch = Reader(db)
            target = watch.counters().get("stored", 0) + total
            cpu = [_cpu_s(p.pid) for p in procs]
            broker_cpu = _cpu_s(broker.process.pid)
            victim = 1  # member-2 of a group
            kill_at = target - total + args.kill_at * total if members > 1 else None
            back_at: float | None = None
            lost_cpu = 0.0
            publisher.publish(broker.port)
            began = time.monotonic()
            stored, progress, last_look = 0, began, 0.0
            while stored < target:
                time.sleep(0.05)
                if publisher.proc.poll() is not None:
                    raise SystemExit("the publisher failed")
                now = time.monotonic()
                count = watch.counters().get("stored", 0)
                if count > stored:
                    stored, progress = count, now
                elif now - progress > args.stall_s:
                    result.complete = False
                    break
                if now - last_look > 1.0:
                    # a gap that a late batch closes again leaves no trace: watch throughout
                    last_look = now
                    result.gaps_seen.update(watch.gaps())
                if kill_at is not None and stored >= kill_at:
                    kill_at = None
                    lost_cpu = _killed_cpu_s(procs[victim]) - cpu[victim]
                    back_at = now + args.down_s
                    result.kill = (
                        f"{names[victim]} killed {now - began:.1f} s in, at "
                        f"{(stored - target + total) / total:.0%} of the values stored"
                    )
                if back_at is not None and now >= back_at:
                    back_at = None
                    procs[victim], cpu[victim] = _spawn(workdir, names[victim]), 0.0
                    result.kill += f", back after {args.down_s:g} s with the same client id"
            if result.kill:
                result.kill += f"; the last value stored {time.monotonic() - began:.1f} s in"
            end = time.time()
            times = publisher.report()
            result.seconds = end - times["started"]
            result.cpu_s = [_cpu_s(p.pid) - c for p, c in zip(procs, cpu, strict=True)]
            if members > 1:
                result.cpu_s[victim] += lost_cpu
            result.broker_cpu_s = _cpu_s(broker.process.pid) - broker_cpu
            result.publisher_cpu_s = times["cpu_s"]
            # the seqs a late member held close within moments of its queue arriving
            deadline = time.monotonic() + args.grace_s
            while table_rows(db, "gap_pending") and time.monotonic() < deadline:
                time.sleep(0.2)
            result.gaps_seen.update(watch.gaps())
            watch.close()
        finally:
            stop = time.monotonic()
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                p.wait(900)
            result.stop_s = time.monotonic() - stop
    return result


# ---- the checks


@dataclass
class Checks:
    stored: int
    duplicates: int
    readings: int
    gaps: int
    pending: int
    dirty: int
    quarantined: int
    raw_bytes: int  # raw readings with their index, as the engine reports its pages
    history_bytes: int  # the 15-minute history (rollups and interval energy)
    quarters: float  # meter-quarters of history
    values_equal: bool = True
    bad_sites: list[str] = field(default_factory=list)


def check(run_: Run) -> Checks:
    with Reader(run_.db) as reader:
        count = reader.counters()
        disk = reader.storage(run_.db, int(time.time() * 1000))
        return Checks(
            raw_bytes=disk.raw_bytes,
            history_bytes=disk.rollup_bytes,
            quarters=disk.rollup_meter_days * 96,
            stored=count.get("stored", 0),
            duplicates=count.get("duplicates", 0),
            readings=count.get("readings", 0),
            gaps=len(reader.gaps()),
            pending=table_rows(run_.db, "gap_pending"),
            dirty=table_rows(run_.db, "dirty"),
            quarantined=count.get("quarantined", 0),
        )


def compare(
    args: argparse.Namespace, first_s: float, runs: list[Run], found: list[Checks]
) -> tuple[int, int]:
    """Read every site back from each database against the stream made again (it is the
    same for the same gateways); returns (interval rows, sites whose group intervals
    differ from the baseline's)."""
    readers = [Reader(r.db) for r in runs]
    intervals = differing = 0
    try:
        for gw in fleet(args.gateways, args.meters):
            messages = [m for tick in ticks([gw], first_s, TICK_S, args.ticks) for m in tick]
            sent = sorted(v[1:] for _topic, payload in messages for v in sent_values(payload))
            for reader, checks in zip(readers, found, strict=True):
                stored = sorted(
                    (meter, quantity, ts, value)
                    for _g, meter, quantity, ts, value in reader.raw(gw.site, *EVERYTHING)
                )
                if stored != sent:
                    checks.values_equal = False
                    checks.bad_sites.append(gw.site)
            energy = [list(r.energy_intervals(gw.site, *EVERYTHING)) for r in readers]
            intervals += len(energy[0])
            differing += any(e != energy[0] for e in energy[1:])
    finally:
        for reader in readers:
            reader.close()
    return intervals, differing


# ---- the report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gateways", type=int, default=2000)
    p.add_argument("--meters", type=int, default=5, help="meters per gateway")
    p.add_argument("--ticks", type=int, default=12, help="readings per meter, 10 s apart")
    p.add_argument("--collectors", type=int, default=3, help="members of the group")
    p.add_argument(
        "--kill-at", type=float, default=0.4, help="share of the values stored at the kill"
    )
    p.add_argument("--down-s", type=float, default=5.0, help="how long the member stays dead")
    p.add_argument("--grace-s", type=float, default=60.0, help="ingest.gap_grace_s")
    p.add_argument("--refresh-s", type=float, default=30.0, help="intervals.refresh_s")
    p.add_argument("--synchronous", choices=["full", "normal"], default="full")
    p.add_argument(
        "--group-on",
        choices=["sqlite", "postgresql", "victoria"],
        default="postgresql",
        help="the group's database: one SQLite file, a private PostgreSQL server, or that "
        "with the raw readings in a private VictoriaMetrics",
    )
    p.add_argument(
        "--stall-s", type=float, default=300.0, help="give up when nothing is stored this long"
    )
    p.add_argument(
        "--keep", type=Path, help="a new folder to keep the databases and logs in (else deleted)"
    )
    args = p.parse_args()
    if args.collectors < 2:
        p.error("--collectors: a group has at least 2 members")
    first_s = start_s(args.ticks)
    readings = args.gateways * args.meters * args.ticks
    values = readings * QUANTITIES
    with tempfile.TemporaryDirectory(prefix="sparwatt-bench-") as tmp:
        workdir = Path(tmp)
        if args.keep is not None:
            args.keep.mkdir(parents=True)
            workdir = args.keep
        publisher = Publisher(args, first_s)
        server = Postgres(workdir / "postgres") if args.group_on != "sqlite" else None
        vm = None
        if args.group_on == "victoria":
            vm = VictoriaMetrics(workdir / "victoria", dedup=True, retention="100y")
        args.victoria_url = vm.url if vm else None
        engine = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(
            args.group_on, "VictoriaMetrics + PostgreSQL"
        )
        try:
            one = run("one collector on SQLite", workdir / "single", publisher, args, 1)
            db = server.start().create_database("sparwatt") if server else None
            vm_cpu = 0.0
            if vm is not None:
                assert vm.start().proc is not None
                vm_cpu = _cpu_s(vm.proc.pid)
            group = run(
                f"{args.collectors} sharing on {engine}",
                workdir / "group",
                publisher,
                args,
                args.collectors,
                db,
            )
            if vm is not None:
                assert vm.proc is not None
                vm_cpu = _cpu_s(vm.proc.pid) - vm_cpu
                vm.flush()
            found = [check(one), check(group)]
            intervals, differing = compare(args, first_s, [one, group], found)
        finally:
            publisher.close()
            if server is not None:
                server.stop()
            if vm is not None:
                vm.stop()

    print(
        f"stream: {args.gateways:,} gateways x {args.meters} meters x {QUANTITIES} values, "
        f"{args.ticks} readings each {TICK_S:g} s apart = {values:,} values in "
        f"{args.gateways * args.ticks:,} messages, QoS 1, synchronous={args.synchronous}, "
        f"gap_grace_s={args.grace_s:g}, refresh_s={args.refresh_s:g}"
    )
    for r in (one, group):
        rate = values / r.seconds
        cpu = sum(r.cpu_s)
        vs = "" if r is one else f" ({rate * one.seconds / values:.2f} x one collector)"
        print(
            f"{r.label}{' (baseline)' if r is one else ''}: {rate:12,.0f} values/s in total"
            f"{vs}; collector CPU {cpu:.2f} s = {cpu / values * 1e6:.3f} us per value"
            + ("" if r is one else f" ({cpu / sum(one.cpu_s):.2f} x)")
            + f"; Mosquitto {r.broker_cpu_s:.2f} s, publisher {r.publisher_cpu_s:.2f} s"
            + (f", VictoriaMetrics {vm_cpu:.2f} s" if r is group and vm is not None else "")
            + ("" if r.complete else f"; INCOMPLETE: nothing stored for {args.stall_s:g} s")
        )
        if r.kill:
            print(f"    {r.kill}")
        if len(r.cpu_s) > 1:
            n = len(r.cpu_s)
            for k, used in enumerate(r.cpu_s, 1):
                print(
                    f"    process {k}: {rate / n:12,.0f} values/s (1/{n} of the messages), "
                    f"CPU {used:.2f} s = {used / (values / n) * 1e6:.3f} us per value"
                    + (" (both lives)" if k == 2 else "")
                )
    for r, c in zip((one, group), found, strict=True):
        expected = values + QUANTITIES  # and the probe's one reading
        print(
            f"{r.label}: stored {c.stored:,} values "
            f"({'each published value once' if c.stored == expected else 'NOT ' + str(expected)}"
            f"), duplicates {c.duplicates:,} (consistent: "
            f"{'yes' if c.stored + c.duplicates == c.readings * QUANTITIES else 'NO'}); read back "
            + (
                "equal to the published stream"
                if c.values_equal
                else f"DIFFERENT at {len(c.bad_sites)} sites, e.g. {c.bad_sites[:3]}"
            )
            + f"; gaps {c.gaps} (gap rows seen during the run: {len(r.gaps_seen)}), "
            f"pending {c.pending}; quarantined {c.quarantined}; meters left unrefreshed "
            f"{c.dirty}; last interval refresh at stop {r.stop_s:.1f} s"
        )
    for r, c in zip((one, group), found, strict=True):
        print(
            f"disk, {r.label}: raw readings {c.raw_bytes / max(c.stored, 1):.1f} bytes a value "
            f"({c.raw_bytes / 1e6:,.1f} MB), 15-minute history "
            f"{c.history_bytes / max(c.quarters, 1):,.0f} bytes a meter-quarter "
            f"({c.history_bytes / 1e6:,.1f} MB)"
        )
    print(
        f"interval energy: {intervals:,} 15-minute rows of one collector; the group's "
        + ("equal" if not differing else f"DIFFERENT at {differing} sites")
    )
    print(
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (other work on the "
        "machine lowers the rates, not the CPU figures)"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_publish":
        g, m, n = (int(a) for a in sys.argv[2:5])
        run_publisher(g, m, n, float(sys.argv[5]))
    else:
        main()
