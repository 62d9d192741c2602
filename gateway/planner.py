"""Plan the fewest Modbus read requests that fetch a meter's wanted quantities.

Pure functions: no I/O. The poller keeps the learned breaks for each meter and
asks for a new plan when a block fails.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from gateway.meter_maps import WORDS, Function, MeterMap


@dataclass(frozen=True, slots=True)
class Span:
    """Registers one quantity (or one scale-factor register) occupies."""

    function: Function
    start: int
    words: int
    name: str  # quantity name, or "sf:<address>" for a scale-factor register

    @property
    def end(self) -> int:
        return self.start + self.words - 1


@dataclass(frozen=True, slots=True)
class Block:
    """One read request: `count` registers from `start`."""

    function: Function
    start: int
    count: int
    spans: tuple[Span, ...] = field(default=())

    @property
    def end(self) -> int:
        return self.start + self.count - 1

    def describe(self) -> str:
        return f"{self.function} {self.start}..{self.end} ({self.count} registers)"


def scale_key(address: int) -> str:
    return f"sf:{address}"


def spans_for(meter: MeterMap, names: Iterable[str]) -> list[Span]:
    spans: dict[tuple[str, int], Span] = {}
    for name in names:
        fld = meter.quantities[name]
        fn = meter.field_function(name)
        spans[(fn, fld.address)] = Span(fn, fld.address, WORDS[fld.type], name)
        if fld.scale_register is not None:
            key = (fn, fld.scale_register)
            spans.setdefault(key, Span(fn, fld.scale_register, 1, scale_key(fld.scale_register)))
    return sorted(spans.values(), key=lambda s: (s.function, s.start))


def _gap_allowed(meter: MeterMap, first: int, last: int, max_gap: int) -> bool:
    if last - first + 1 > max_gap:
        return False
    return all(last < start or first > end for start, end in meter.forbidden)


def plan(
    meter: MeterMap,
    names: Iterable[str],
    *,
    max_registers: int | None = None,
    max_gap: int | None = None,
    breaks: frozenset[tuple[str, int]] = frozenset(),
) -> list[Block]:
    """Group spans into blocks within the meter's limits; `breaks` force a new block."""
    limit = min(max_registers or meter.max_registers, meter.max_registers)
    gap = meter.max_gap if max_gap is None else max_gap
    blocks: list[Block] = []
    current: list[Span] = []
    for span in spans_for(meter, names):
        if current:
            head, tail = current[0], current[-1]
            fits = (
                span.function == head.function
                and span.end - head.start + 1 <= limit
                and span.start > tail.end
                and (
                    span.start == tail.end + 1
                    or _gap_allowed(meter, tail.end + 1, span.start - 1, gap)
                )
                and (span.function, span.start) not in breaks
            )
            if not fits:
                blocks.append(_block(current))
                current = []
        current.append(span)
    if current:
        blocks.append(_block(current))
    return blocks


def _block(spans: list[Span]) -> Block:
    start = spans[0].start
    end = max(s.end for s in spans)
    return Block(spans[0].function, start, end - start + 1, tuple(spans))


def split_point(block: Block) -> tuple[str, int] | None:
    """Where to break a block the meter refused; None when it holds one span only."""
    if len(block.spans) < 2:
        return None
    middle = block.spans[len(block.spans) // 2]
    return (middle.function, middle.start)


def hole_split_point(block: Block) -> tuple[str, int] | None:
    """Where to break a block refused with "illegal address": at its widest unread gap.

    A meter that refuses a block it should hold usually refuses a hole the map bridges, so
    breaking at the widest gap tends to need one split where halving needs several. Without
    gaps it halves, like split_point.
    """
    if len(block.spans) < 2:
        return None
    widest, at = 0, len(block.spans) // 2
    for index in range(1, len(block.spans)):
        gap = block.spans[index].start - block.spans[index - 1].end - 1
        if gap > widest:
            widest, at = gap, index
    return (block.function, block.spans[at].start)
