"""Outbox throughput: readings per second through SQLite to a real Mosquitto, and CPU per
reading with the outbox on versus publishing directly (the baseline), in one run.

    .venv/bin/python bench/bench_outbox.py [--readings 30000] [--per-commit 200] [--json]

Each round stands for one commit interval of a busy gateway: `--per-commit` readings become
messages of up to `--per-message` readings. With the outbox they are committed (one SQLite
transaction, WAL, synchronous=FULL, acked batches deleted in the same transaction) and the
forwarder publishes them; without it they are encoded and published at once. A round
starts when fewer than `--window` messages wait for their PUBACK, so both modes run at the
pace the broker acknowledges. CPU is this process (main thread and paho's thread); the
broker's CPU is not counted. Readings are built before the clock starts.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.broker import Mosquitto
from gateway.outbox import NewBatch, Outbox
from gateway.publisher import Publisher
from gateway.service import Forwarder, PublisherLink
from gateway.settings import Mqtt
from sparwatt import wire

TOPIC = wire.topic("bench", "gw1", "readings")
QUANTITIES = [
    "power_w",
    "power_l1_w",
    "power_l2_w",
    "power_l3_w",
    "voltage_l1_v",
    "voltage_l2_v",
    "voltage_l3_v",
    "current_l1_a",
    "current_l2_a",
    "current_l3_a",
    "power_factor",
    "frequency_hz",
    "energy_import_kwh",
    "energy_export_kwh",
]


def readings(n: int) -> list[dict[str, object]]:
    ts = wire.format_ts(datetime.now(UTC))
    return [
        {
            "meter": f"m{i % 32}",
            "ts": ts,
            "values": {q: 1000.0 + i + k / 7 for k, q in enumerate(QUANTITIES)},
        }
        for i in range(n)
    ]


def builder(chunk: list[dict[str, object]]) -> Callable[[int], bytes]:
    def build(seq: int) -> bytes:
        return wire.encode_readings(
            wire.ReadingsMessage.model_validate(
                {
                    "schema": 1,
                    "site": "bench",
                    "gateway": "gw1",
                    "seq": seq,
                    "sent_at": datetime.now(UTC),
                    "readings": chunk,
                }
            )
        )

    return build


def connect(port: int, name: str, on_ack: Callable[[int, bool], None]) -> Publisher:
    publisher = Publisher(
        Mqtt(host="127.0.0.1", port=port),
        client_id=f"bench-{name}",
        password=None,
        will=(f"bench/{name}/status", b"offline"),
        birth=lambda: (f"bench/{name}/status", b"online"),
        on_ack=on_ack,
        max_inflight=100,
    )
    publisher.start()
    if not publisher.connected.wait(10):
        raise SystemExit(f"bench: cannot connect to the broker on port {port}")
    return publisher


def run(
    mode: str,
    port: int,
    state_dir: Path,
    data: list[dict[str, object]],
    per_commit: int,
    per_message: int,
    window: int,
) -> dict[str, float]:
    acks: deque[tuple[int, bool]] = deque()
    outbox = forwarder = None
    if mode == "outbox":
        outbox = Outbox(state_dir / f"outbox-{time.monotonic_ns()}.db", 10**10, 10**9)
        forwarder = Forwarder(outbox, None, TOPIC, rate_per_s=10_000)  # type: ignore[arg-type]
        publisher = connect(port, mode, forwarder.on_ack)
        forwarder.link = PublisherLink(publisher)
    else:
        publisher = connect(port, mode, lambda mid, ok: acks.append((mid, ok)))
    expected = -(-len(data) // per_message)
    acked = sent = seq = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for start in range(0, len(data), per_commit):
        commit = data[start : start + per_commit]
        chunks = [commit[i : i + per_message] for i in range(0, len(commit), per_message)]
        while sent - acked > window:
            time.sleep(0.0005)
            if forwarder is not None:
                forwarder.take_acks()
                acked += len(forwarder.acked)
                outbox.flush(acked=forwarder.flushed())  # type: ignore[union-attr]
            else:
                while acks:
                    acks.popleft()
                    acked += 1
        if forwarder is not None:
            forwarder.take_acks()
            done = forwarder.flushed()
            acked += len(done)
            outbox.flush([NewBatch(builder(c), len(c)) for c in chunks], done)  # type: ignore[union-attr]
            forwarder.deleted(done)
            forwarder.step()
        else:
            for chunk in chunks:
                publisher.publish(TOPIC, builder(chunk)(seq))
                seq += 1
        sent += len(chunks)
    while acked < expected:
        time.sleep(0.0005)
        if forwarder is not None:
            forwarder.take_acks()
            done = forwarder.flushed()
            acked += len(done)
            outbox.flush(acked=done)  # type: ignore[union-attr]
            forwarder.step()
        else:
            while acks:
                acks.popleft()
                acked += 1
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    publisher.stop()
    if outbox is not None:
        assert outbox.stats().depth == 0, "every batch acknowledged and deleted"
        outbox.close()
    return {
        "readings": len(data),
        "messages": expected,
        "seconds": round(wall, 3),
        "readings_per_s": round(len(data) / wall),
        "cpu_s": round(cpu, 3),
        "cpu_us_per_reading": round(cpu / len(data) * 1e6, 2),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--readings", type=int, default=30_000)
    p.add_argument("--per-commit", type=int, default=200, help="readings per commit round")
    p.add_argument("--per-message", type=int, default=50, help="readings per MQTT message")
    p.add_argument("--window", type=int, default=50, help="messages awaiting PUBACK at most")
    p.add_argument(
        "--repeat", type=int, default=3, help="alternate runs; the best of each mode counts"
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        help="where the outbox file goes (default: a "
        "temporary folder; use the SD card to measure it)",
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    data = readings(args.readings)
    state_dir = args.state_dir or Path(tempfile.mkdtemp(prefix="sparwatt-bench-"))
    results: dict[str, dict[str, float]] = {}
    with Mosquitto() as broker:
        for _ in range(args.repeat):
            for mode in ("direct", "outbox"):  # alternated, so drift hits both alike
                r = run(
                    mode,
                    broker.port,
                    state_dir,
                    data,
                    args.per_commit,
                    args.per_message,
                    args.window,
                )
                if mode not in results or r["cpu_s"] < results[mode]["cpu_s"]:
                    results[mode] = r
    overhead = results["outbox"]["cpu_us_per_reading"] - results["direct"]["cpu_us_per_reading"]
    report = {
        "params": {k: v for k, v in vars(args).items() if k != "json"}
        | {"state_dir": str(state_dir)},
        **results,
        "outbox_cpu_overhead_us_per_reading": round(overhead, 2),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"{args.readings} readings, {args.per_commit} per commit, {args.per_message} per "
        f"message, outbox in {state_dir}; best of {args.repeat}"
    )
    print(f"{'mode':<22}{'readings/s':>12}{'CPU us/reading':>16}{'wall s':>9}")
    for mode, label in (("direct", "direct (baseline)"), ("outbox", "through the outbox")):
        r = results[mode]
        print(f"{label:<22}{r['readings_per_s']:>12}{r['cpu_us_per_reading']:>16}{r['seconds']:>9}")
    print(f"outbox costs {overhead:+.2f} us CPU per reading over publishing directly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
