"""Read one meter once: run its plan on a bus, split refused blocks, decode the values."""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from dataclasses import dataclass, field

from gateway import decode, planner
from gateway.meter_maps import MeterMap
from gateway.modbus_io import BusClient
from sparwatt.errors import ReadError

log = logging.getLogger(__name__)


@dataclass
class ReadResult:
    values: dict[str, float]
    requests: int
    latency_s: float
    arrived: float  # epoch seconds when the last response arrived
    invalid: list[str] = field(default_factory=list)


@dataclass
class BusGate:
    """Exactly one outstanding request per bus, with the pause the bus needs between them."""

    client: BusClient
    pause_s: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    busy_since: float | None = None  # monotonic start of the request on the line, if any
    _last_unit: int | None = None
    _last_done: float = 0.0

    async def read(
        self, function: str, start: int, count: int, unit: int, meter_pause_s: float = 0.0
    ) -> list[int]:
        async with self.lock:
            wait = max(self.pause_s, meter_pause_s if unit != self._last_unit else 0.0)
            if wait > 0:
                remaining = self._last_done + wait - time.monotonic()
                if remaining > 0:
                    await asyncio.sleep(remaining)
            self.busy_since = time.monotonic()
            try:
                return await self.client.read(function, start, count, unit)  # type: ignore[arg-type]
            finally:
                self.busy_since = None
                self._last_unit = unit
                self._last_done = time.monotonic()


@dataclass
class _Round:
    """What one read of a meter has gathered so far."""

    requests: int = 0
    answered: bool = False
    silences: int = 0
    read: list[tuple[planner.Block, list[int]]] = field(default_factory=list)
    retried: set[tuple[str, int, int]] = field(default_factory=set)
    buffers: list[bytes] = field(default_factory=list)  # each block's bytes, in plan order
    clean: bool = True  # read exactly the plan, in order, without a retry or split

    def words(self) -> dict[str, dict[int, int]]:
        out: dict[str, dict[int, int]] = {"input": {}, "holding": {}}
        for block, regs in self.read:
            out[block.function].update(zip(range(block.start, block.end + 1), regs, strict=True))
        return out

    def holds(self, block: planner.Block) -> bool:
        if self.clean:
            return False  # nothing is read twice before a retry or split
        regs = self.words()[block.function]
        return all(a in regs for a in range(block.start, block.end + 1))


@dataclass
class MeterReader:
    """Plan state of one meter: learned block splits and quantities it does not have."""

    meter: MeterMap
    unit: int
    max_registers: int | None = None
    breaks: set[tuple[str, int]] = field(default_factory=set)
    # the breaks a refusal taught (exception 02): worth keeping across restarts, unlike one
    # learned from a block that went unanswered, which a noisy line can fake
    refused_breaks: set[tuple[str, int]] = field(default_factory=set)
    unavailable: set[str] = field(default_factory=set)
    alive: bool | None = None  # did the meter answer anything in its last read
    _plans: dict[tuple[str, ...], list[planner.Block]] = field(default_factory=dict)
    _decoders: dict[tuple[str, ...], list[decode.Field]] = field(default_factory=dict)
    _placements: dict[tuple[str, ...], list[decode.Placed] | None] = field(default_factory=dict)

    def plan(self, names: list[str]) -> list[planner.Block]:
        key = tuple(names)
        if key not in self._plans:
            wanted = [n for n in names if n not in self.unavailable]
            self._plans[key] = planner.plan(
                self.meter, wanted, max_registers=self.max_registers, breaks=frozenset(self.breaks)
            )
        return self._plans[key]

    def _placed(self, names: list[str]) -> list[decode.Placed] | None:
        key = tuple(names)
        if key not in self._placements:
            wanted = [n for n in names if n not in self.unavailable]
            blocks = [(b.function, b.start, b.count) for b in self.plan(names)]
            self._placements[key] = decode.place_fields(self.meter, wanted, blocks)
        return self._placements[key]

    def _fields(self, names: list[str]) -> list[decode.Field]:
        key = tuple(names)
        if key not in self._decoders:
            wanted = [n for n in names if n not in self.unavailable]
            self._decoders[key] = decode.compile_fields(self.meter, wanted)
        return self._decoders[key]

    def _learn(self, block: planner.Block, err: ReadError) -> bool:
        """Remember how to avoid a refused block; False when nothing smaller is possible."""
        point = planner.hole_split_point(block)
        if point is not None:
            self.breaks.add(point)
            if err.kind == "exception":
                self.refused_breaks.add(point)
            log.warning(
                "meter model=%s unit=%d: %s refused (%s); reading it in smaller parts",
                self.meter.id,
                self.unit,
                block.describe(),
                err,
            )
        elif err.kind == "exception":
            self.unavailable.update(s.name for s in block.spans)
            log.warning(
                "meter model=%s unit=%d: %s refused (%s); no longer reading %s",
                self.meter.id,
                self.unit,
                block.describe(),
                err,
                ", ".join(s.name for s in block.spans),
            )
        else:
            return False
        self._plans.clear()
        self._decoders.clear()
        self._placements.clear()
        return True

    async def read(self, gate: BusGate, names: list[str]) -> ReadResult:
        began = time.monotonic()
        rnd = _Round()
        # each failed attempt adds a split, drops a quantity or is one of 3 retries
        for _attempt in range(2 * len(names) + 8):
            try:
                for block in self.plan(names):
                    if rnd.holds(block):
                        continue  # read before a split in this same round
                    await self._fetch(gate, block, rnd)
                break
            except ReadError as err:
                if err.kind == "exception":
                    rnd.answered = True
                if not await self._recover(gate, block, err, rnd):
                    self.alive = rnd.answered
                    raise
        else:
            raise ReadError("exception", "meter keeps refusing after repeated splits")
        self.alive = True
        placed = self._placed(names) if rnd.clean else None
        if placed is not None:
            values, invalid = decode.decode_placed(placed, rnd.buffers)
        else:
            values, invalid = decode.decode_fields(self._fields(names), rnd.words())
        return ReadResult(values, rnd.requests, time.monotonic() - began, time.time(), invalid)

    async def _fetch(self, gate: BusGate, block: planner.Block, rnd: _Round) -> None:
        rnd.requests += 1
        regs = await gate.read(
            block.function, block.start, block.count, self.unit, self.meter.pause_ms / 1000
        )
        rnd.answered = True
        rnd.read.append((block, regs))
        if rnd.clean:
            rnd.buffers.append(struct.pack(f">{block.count}H", *regs))

    async def _recover(
        self, gate: BusGate, block: planner.Block, err: ReadError, rnd: _Round
    ) -> bool:
        """Decide whether a failed block is worth another attempt in this round."""
        rnd.clean = False
        if err.kind == "exception":
            return err.splittable and self._learn(block, err)
        if err.kind not in ("timeout", "connection"):
            return False
        if not rnd.answered and self.alive is False:
            return False  # silent last time too: fail fast, the poller backs off
        rnd.silences += 1
        if rnd.silences > 3:
            return False
        # A small request tells a silent meter from one that lost an answer or ignores
        # this block; it raises when the meter does not answer at all.
        span = block.spans[0]
        rnd.requests += 1
        try:
            await gate.read(
                span.function, span.start, span.words, self.unit, self.meter.pause_ms / 1000
            )
        except ReadError:
            self.alive = False
            raise
        rnd.answered = True
        key = (block.function, block.start, block.count)
        if key not in rnd.retried:
            rnd.retried.add(key)  # a lost answer or a dropped connection: try it once more
            return True
        return err.kind == "timeout" and self._learn(block, err)  # it ignores this block
