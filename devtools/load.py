"""Publish as N gateways with M Eastron SDM630 meters each, without Modbus, at a chosen pace.

Every gateway sends one readings message per poll interval holding one reading of each of
its meters: the 28 quantities an SDM630 gives, float32 as the meter sends them, values from
the simulator's company load profiles (gateway/sim). Seq numbers run per gateway from 1, as a
gateway's outbox numbers them, so a collector's gap detection sees a real stream.

Run:  .venv/bin/python bench/load_generator.py --port 1883 --gateways 2000 --meters 5 \\
          --interval-s 10 --duration-s 60
Prints what it sent and the rate it kept; exits 1 if it fell behind the pace.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from gateway.sim.meter import SimulatedMeter
from gateway.sim.profile import LoadProfile, ProfileKind
from sparwatt import wire
from sparwatt.timeutil import epoch_ms

KINDS: tuple[ProfileKind, ...] = ("office", "production", "retail", "cold-store", "compressor")
_F32 = struct.Struct("<f")


def f32(value: float) -> float:
    """The value as the meter's float32 register holds it."""
    return float(_F32.unpack(_F32.pack(value))[0])


def _float32(values: dict[str, float]) -> dict[str, float]:
    return {q: f32(v) for q, v in values.items()}


@dataclass
class Gateway:
    site: str
    gateway: str
    meters: list[SimulatedMeter]
    seq: int = 0

    def message(self, t_s: float) -> tuple[str, bytes]:
        """The next readings message, one reading per meter at epoch second `t_s`."""
        self.seq += 1
        ts = wire.format_ts(wire_time(t_s))
        body = {
            "schema": wire.SCHEMA_VERSION,
            "site": self.site,
            "gateway": self.gateway,
            "seq": self.seq,
            "sent_at": ts,
            "readings": [
                {
                    "meter": f"m{k}",
                    "ts": ts,
                    "values": {q: f32(v) for q, v in m.values(t_s).items()},
                }
                for k, m in enumerate(self.meters, 1)
            ],
        }
        return wire.topic(self.site, self.gateway, "readings"), json.dumps(body).encode()


def wire_time(t_s: float) -> datetime:
    return datetime.fromtimestamp(round(t_s, 3), UTC)


def fleet(gateways: int, meters: int) -> list[Gateway]:
    out = []
    for g in range(gateways):
        sims = [
            SimulatedMeter(
                LoadProfile(KINDS[(g + k) % len(KINDS)], 15.0 + (g * 7 + k) % 60, seed=g * 100 + k)
            )
            for k in range(meters)
        ]
        out.append(Gateway(f"site-{g:05d}", "gw1", sims))
    return out


def ticks(
    gateways: list[Gateway], start_s: float, tick_s: float, count: int
) -> Iterator[list[tuple[str, bytes]]]:
    """`count` polls of every gateway, `tick_s` apart in simulated time from epoch second
    `start_s`: each as every gateway's next readings message (topic, payload)."""
    for tick in range(count):
        t_s = start_s + tick * tick_s
        yield [gw.message(t_s) for gw in gateways]


def sent_values(payload: bytes) -> Iterator[tuple[str, str, str, int, float]]:
    """(site, meter, quantity, epoch ms, value) of every value a readings message carries."""
    body = json.loads(payload)
    for reading in body["readings"]:
        ts_ms = epoch_ms(datetime.fromisoformat(reading["ts"]))
        for quantity, value in reading["values"].items():
            yield body["site"], reading["meter"], quantity, ts_ms, value


@dataclass(frozen=True)
class Result:
    messages: int
    readings: int
    values: int
    seconds: float
    behind_s: float  # how late the last tick started against its schedule


def run(
    client: mqtt.Client,
    gateways: list[Gateway],
    interval_s: float,
    duration_s: float,
    start_s: float | None = None,
) -> Result:
    """Publish every gateway's message once per interval, spread evenly over it, at QoS 1."""
    ticks = max(1, int(duration_s / interval_s))
    t0 = time.monotonic()
    epoch0 = time.time() if start_s is None else start_s
    messages = readings = values = 0
    behind = 0.0
    pending: list[mqtt.MQTTMessageInfo] = []
    for tick in range(ticks):
        for i, gw in enumerate(gateways):
            due = t0 + tick * interval_s + interval_s * i / len(gateways)
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            else:
                behind = max(behind, -wait)
            topic, payload = gw.message(epoch0 + tick * interval_s)
            pending.append(client.publish(topic, payload, qos=1))
            messages += 1
            readings += len(gw.meters)
            values += len(gw.meters) * 28
        pending = [p for p in pending if not p.is_published()]
    for info in pending:
        info.wait_for_publish(timeout=60)
    return Result(messages, readings, values, time.monotonic() - t0, behind)


def connect(host: str, port: int) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="sparwatt-load", protocol=MQTTProtocolVersion.MQTTv5
    )
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(host, port)
    client.loop_start()
    return client


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--gateways", type=int, default=100)
    p.add_argument("--meters", type=int, default=5, help="meters per gateway")
    p.add_argument("--interval-s", type=float, default=10.0, help="poll interval")
    p.add_argument("--duration-s", type=float, default=60.0)
    args = p.parse_args()
    client = connect(args.host, args.port)
    try:
        result = run(client, fleet(args.gateways, args.meters), args.interval_s, args.duration_s)
    finally:
        client.loop_stop()
        client.disconnect()
    print(
        f"sent {result.messages:,} messages, {result.readings:,} readings, {result.values:,} "
        f"values in {result.seconds:.1f} s: {result.values / result.seconds:,.0f} values/s "
        f"(pace {args.gateways * args.meters * 28 / args.interval_s:,.0f}); "
        f"at most {result.behind_s:.2f} s behind schedule"
    )
    return 0 if result.behind_s < args.interval_s else 1


if __name__ == "__main__":
    sys.exit(main())
