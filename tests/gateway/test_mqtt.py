"""Store-and-forward against a real Mosquitto: broker outage, SIGKILL, full outbox, status."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from devtools.broker import Mosquitto
from tests.support.processes import (
    MqttRecorder,
    Processes,
    free_port,
    gateway_config,
    sim_config,
    wait_until,
)

pytestmark = pytest.mark.integration

SITE, GW = "acme", "gw1"
STATUS = f"sparwatt/v1/{SITE}/{GW}/status"


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker the test may stop and start again on the same port and folder."""
    b = Mosquitto(tmp_path / "broker").start()
    yield b
    b.stop()


@pytest.fixture
def recorder(own_broker: Mosquitto) -> Iterator[MqttRecorder]:
    r = MqttRecorder(own_broker.port, ["sparwatt/v1/#"])
    yield r
    r.stop()


class Rig:
    """A simulator with one meter and the gateway config that reads it every second."""

    def __init__(
        self, tmp_path: Path, procs: Processes, broker_port: int, outbox: str = ""
    ) -> None:
        self.procs = procs
        self.sim_port = free_port()
        self.served = tmp_path / "served.jsonl"
        procs.sim(
            sim_config([(self.sim_port, [(1, "eastron-sdm630")])]),
            served_log=self.served,
            ports=[self.sim_port],
        )
        self.state = tmp_path / "state"
        self.config = tmp_path / "gateway.toml"
        self.config.write_text(
            gateway_config(
                self.state,
                SITE,
                broker_port,
                self.sim_port,
                [(1, "eastron-sdm630")],
                gateway_id=GW,
                extra=outbox,
            )
        )
        self.runs = 0

    def start(self) -> None:
        self.runs += 1
        self.gateway = self.procs.spawn(
            f"gateway-{self.runs}", "gateway.cli", "run", str(self.config)
        )

    def outbox(self) -> tuple[int, list[int], int]:
        """(next_seq, seqs still in the outbox, dropped batches), read from the file."""
        path = self.state / "outbox.db"
        if not path.exists():
            return 0, [], 0
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            seqs = [s for (s,) in db.execute("SELECT seq FROM batch ORDER BY seq")]
        except sqlite3.OperationalError:  # schema not created yet
            return 0, [], 0
        finally:
            db.close()
        return int(meta["next_seq"]), seqs, int(meta["dropped_batches"])

    def served_snapshots(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.served.read_text().splitlines()]


def contiguous_up_to(seqs: list[int], last: int) -> bool:
    return set(range(last + 1)) <= set(seqs)


def overtaken(seqs: list[int]) -> bool:
    """Some seq arrived while a lower one has not yet."""
    return bool(seqs) and len(set(seqs)) < max(seqs) + 1


def assert_no_seq_reused(recorder: MqttRecorder) -> dict[int, dict[str, Any]]:
    """Every copy of a seq carries the same batch (QoS 1 may deliver one twice)."""
    by_seq: dict[int, dict[str, Any]] = {}
    for message in recorder.payloads("/readings"):
        seq = int(message["seq"])
        assert by_seq.setdefault(seq, message) == message, f"seq {seq} used for two batches"
    return by_seq


def statuses(recorder: MqttRecorder) -> list[dict[str, Any]]:
    return [json.loads(p) for t, p, _ in recorder.messages if t == STATUS]


def test_broker_outage_of_30_s_loses_no_batch_and_no_reading(
    tmp_path: Path, procs: Processes, own_broker: Mosquitto, recorder: MqttRecorder
) -> None:
    rig = Rig(tmp_path, procs, own_broker.port)
    rig.start()
    wait_until(lambda: len(recorder.seqs()) >= 3, 30, "three batches before the outage")
    born = statuses(recorder)[0]
    assert (born["state"], born["meters"]) == ("online", ["m1"])
    assert born["version"]

    own_broker.stop()
    outage_from = time.time()
    before = max(recorder.seqs())
    time.sleep(30)
    during_next_seq, during_seqs, _ = rig.outbox()
    assert rig.gateway.poll() is None
    assert during_next_seq > before + 20, "the gateway kept committing during the outage"
    own_broker.start()
    outage_to = time.time()

    wait_until(
        lambda: contiguous_up_to(recorder.seqs(), during_next_seq + 2),
        60,
        "every seq from before, during and after the outage",
    )
    # health goes at QoS 0 every 2 s: the first one after the reconnect may still be on its
    # way, or have been published before the recorder itself was back
    wait_until(
        lambda: any(h["mqtt"]["reconnects"] >= 1 for h in recorder.payloads("/health")),
        15,
        "a health message counting the reconnect",
    )
    procs.stop(rig.gateway)

    by_seq = assert_no_seq_reused(recorder)
    received = [r for m in by_seq.values() for r in m["readings"]]
    taken = [s for s in rig.served_snapshots() if outage_from + 1 < s["t"] < outage_to - 1]
    assert len(taken) >= 25
    for snapshot in taken:
        assert any(r["values"] == pytest.approx(snapshot["values"], rel=1e-6) for r in received), (
            f"reading served at t={snapshot['t']} never arrived"
        )
    healths = recorder.payloads("/health")
    assert healths[-1]["mqtt"]["reconnects"] >= 1
    assert healths[-1]["meters"]["m1"]["ok"] >= len(taken)
    assert during_seqs, "batches of the outage waited in the outbox"


def test_sigkill_while_draining_delivers_every_committed_batch_and_seq_continues(
    tmp_path: Path, procs: Processes, own_broker: Mosquitto, recorder: MqttRecorder
) -> None:
    rig = Rig(tmp_path, procs, own_broker.port, outbox="[outbox]\ndrain_per_s = 1\n")
    own_broker.stop()
    rig.start()  # offline: batches pile up in the outbox
    wait_until(lambda: rig.outbox()[0] >= 4, 30, "four batches committed while offline")
    own_broker.start()
    # the backlog drains at 1 batch/s while fresh batches go at once: a fresh seq arrives
    # while older ones are still missing
    wait_until(lambda: overtaken(recorder.seqs()), 30, "fresh batches overtaking the backlog")
    rig.gateway.send_signal(signal.SIGKILL)
    rig.gateway.wait(10)
    killed_at = time.time()
    next_seq, left, _ = rig.outbox()
    assert left, "the kill hit while committed batches were still undelivered"
    wait_until(
        lambda: any(s["state"] == "offline" for s in statuses(recorder)), 10, "the last will"
    )

    # the restarted gateway drains at full speed: the slow rate only kept a backlog for the kill
    rig.config.write_text(rig.config.read_text().replace("drain_per_s = 1\n", ""))
    rig.start()
    wait_until(
        lambda: contiguous_up_to(recorder.seqs(), next_seq + 2),
        60,
        "every committed batch and new ones after the restart",
    )
    by_seq = assert_no_seq_reused(recorder)
    for seq, message in by_seq.items():
        sent = datetime.fromisoformat(str(message["sent_at"])).timestamp()
        # batches below next_seq were committed by the killed process, the rest after it
        assert (sent <= killed_at) == (seq < next_seq), f"seq {seq} sent_at {message['sent_at']}"
    assert statuses(recorder)[-1]["state"] == "online"


def test_full_outbox_drops_the_oldest_batches_and_reports_the_count(
    tmp_path: Path, procs: Processes, own_broker: Mosquitto, recorder: MqttRecorder
) -> None:
    # one batch of one SDM630 reading is about 1.1 kB: the cap holds two
    rig = Rig(tmp_path, procs, own_broker.port, outbox="[outbox]\nmax_mb = 0.0025\n")
    rig.start()
    wait_until(recorder.seqs, 30, "first batch")
    own_broker.stop()
    wait_until(lambda: rig.outbox()[2] >= 2, 30, "two dropped batches")
    own_broker.start()
    next_seq, _, _ = rig.outbox()
    wait_until(lambda: max(recorder.seqs()) >= next_seq + 1, 30, "batches after the outage")
    _, _, dropped = rig.outbox()
    wait_until(
        lambda: any(
            h["outbox"]["dropped_batches"] == dropped for h in recorder.payloads("/health")
        ),
        10,
        f"health reporting {dropped} dropped batches",
    )
    procs.stop(rig.gateway)

    seqs = set(recorder.seqs())
    missing = sorted(set(range(max(seqs))) - seqs)
    assert missing, "the cap dropped batches"
    assert missing == list(range(missing[0], missing[-1] + 1)), "only the oldest went"
    assert all(s in seqs for s in range(missing[-1] + 1, max(seqs) + 1))
    # a dropped batch paho already held in flight may still arrive, never the reverse
    assert dropped >= len(missing)
    assert rig.outbox()[2] == dropped, "no drops once the broker was back"
    assert "outbox full: dropped" in procs.log("gateway-1")


def test_clean_stop_publishes_retained_offline_status(
    tmp_path: Path, procs: Processes, own_broker: Mosquitto, recorder: MqttRecorder
) -> None:
    rig = Rig(tmp_path, procs, own_broker.port)
    rig.start()
    wait_until(lambda: recorder.payloads("/health"), 30, "a health message")
    procs.stop(rig.gateway)
    assert rig.gateway.returncode == 0
    assert [s["state"] for s in statuses(recorder)] == ["online", "offline"]
    late = MqttRecorder(own_broker.port, [STATUS], client_id="late")
    try:
        wait_until(lambda: late.messages, 10, "the retained status")
        _topic, body, retained = late.messages[0]
        assert retained
        assert json.loads(body)["state"] == "offline"
    finally:
        late.stop()
    health = recorder.payloads("/health")[-1]
    meter = health["meters"]["m1"]
    assert {"ok", "failed", "missed", "last_latency_ms"} <= set(meter)
    assert {"depth", "oldest_age_s", "dropped_batches"} <= set(health["outbox"])
    assert health["uptime_s"] > 0
    assert "reconnects" in health["mqtt"]
