"""Request planning: properties over random meter maps, and the shipped models' full reads."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import planner
from gateway.meter_maps import WORDS, MeterMap, library
from sparwatt.wire import QUANTITIES

NAMES = sorted(QUANTITIES)
TYPES = sorted(WORDS)
SHIPPED = sorted(library())


@dataclass(frozen=True)
class Case:
    meter: MeterMap
    wanted: list[str]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A valid map with non-overlapping fields, shared scale registers and forbidden ranges."""
    count = draw(st.integers(min_value=1, max_value=12))
    names = draw(st.lists(st.sampled_from(NAMES), min_size=count, max_size=count, unique=True))
    used: dict[str, set[int]] = {"input": set(), "holding": set()}
    quantities: dict[str, dict[str, object]] = {}
    scale_registers: list[int] = []
    default_fn = draw(st.sampled_from(["input", "holding"]))
    for name in names:
        data_type = draw(st.sampled_from(TYPES))
        fn = draw(st.sampled_from(["input", "holding"]))
        width = WORDS[data_type]
        address = draw(
            st.integers(min_value=0, max_value=400).filter(
                lambda a, fn=fn, width=width: used[fn].isdisjoint(range(a, a + width))
            )
        )
        used[fn].update(range(address, address + width))
        fld: dict[str, object] = {"address": address, "type": data_type, "unit": "", "function": fn}
        if QUANTITIES[name].unit:
            fld["unit"] = QUANTITIES[name].unit
        if draw(st.booleans()) and fn == "holding":
            if scale_registers and draw(st.booleans()):
                fld["scale_register"] = draw(st.sampled_from(scale_registers))
            else:
                sf = draw(
                    st.integers(min_value=0, max_value=400).filter(
                        lambda a: a not in used["holding"]
                    )
                )
                used["holding"].add(sf)
                scale_registers.append(sf)
                fld["scale_register"] = sf
        quantities[name] = fld
    occupied = used["input"] | used["holding"]
    forbidden = []
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        start = draw(st.integers(min_value=0, max_value=420))
        end = draw(st.integers(min_value=start, max_value=start + 15))
        if occupied.isdisjoint(range(start, end + 1)):
            forbidden.append((start, end))
    meter = MeterMap.model_validate(
        {
            "id": "random",
            "manufacturer": "m",
            "model": "m",
            "source": "generated for a test",
            "function": default_fn,
            "max_registers": draw(st.integers(min_value=4, max_value=125)),
            "max_gap": draw(st.integers(min_value=0, max_value=30)),
            "forbidden": forbidden,
            "quantities": quantities,
        }
    )
    wanted = draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
    return Case(meter, wanted)


def _covers(block: planner.Block, span: planner.Span) -> bool:
    return span.function == block.function and block.start <= span.start and span.end <= block.end


@settings(max_examples=300)
@given(cases())
def test_every_wanted_quantity_is_read_by_exactly_one_block(case: Case) -> None:
    blocks = planner.plan(case.meter, case.wanted)
    for name in case.wanted:
        fld = case.meter.quantities[name]
        fn = case.meter.field_function(name)
        holders = [b for b in blocks if any(s.name == name for s in b.spans)]
        assert len(holders) == 1
        assert holders[0].function == fn
        assert holders[0].start <= fld.address
        assert fld.address + fld.words - 1 <= holders[0].end
        if fld.scale_register is not None:
            assert any(b.function == fn and b.start <= fld.scale_register <= b.end for b in blocks)
    for block in blocks:
        assert all(_covers(block, s) for s in block.spans)


@settings(max_examples=300)
@given(cases(), st.none() | st.integers(min_value=1, max_value=125))
def test_no_block_exceeds_the_register_limit(case: Case, override: int | None) -> None:
    limit = min(override or case.meter.max_registers, case.meter.max_registers)
    for block in planner.plan(case.meter, case.wanted, max_registers=override):
        # a single value wider than a tiny override still has to be read in one piece
        alone = len(block.spans) == 1 and block.count == block.spans[0].words
        assert block.count <= limit or alone


@settings(max_examples=300)
@given(cases())
def test_no_block_touches_a_forbidden_range(case: Case) -> None:
    for block in planner.plan(case.meter, case.wanted):
        for start, end in case.meter.forbidden:
            assert block.end < start or block.start > end


@settings(max_examples=300)
@given(cases(), st.none() | st.integers(min_value=0, max_value=40))
def test_blocks_are_ordered_disjoint_and_bridge_only_allowed_gaps(
    case: Case, gap: int | None
) -> None:
    allowed = case.meter.max_gap if gap is None else gap
    blocks = planner.plan(case.meter, case.wanted, max_gap=gap)
    for fn in ("input", "holding"):
        mine = [b for b in blocks if b.function == fn]
        assert all(a.end < b.start for a, b in itertools.pairwise(mine))
    for block in blocks:
        spans = block.spans
        assert block.start == spans[0].start
        assert block.end == max(s.end for s in spans)
        for before, after in itertools.pairwise(spans):
            assert after.start > before.end
            assert after.start - before.end - 1 <= allowed


@settings(max_examples=300)
@given(cases(), st.data())
def test_breaks_start_new_blocks(case: Case, data: st.DataObject) -> None:
    spans = planner.spans_for(case.meter, case.wanted)
    chosen = data.draw(st.lists(st.sampled_from(spans), unique=True))
    breaks = frozenset((s.function, s.start) for s in chosen)
    blocks = planner.plan(case.meter, case.wanted, breaks=breaks)
    firsts = {(b.function, b.spans[0].start) for b in blocks}
    assert breaks <= firsts
    unbroken = planner.plan(case.meter, case.wanted)
    assert len(blocks) <= len(unbroken) + len(breaks)


@settings(max_examples=300)
@given(cases())
def test_split_point_halves_a_refused_block(case: Case) -> None:
    for block in planner.plan(case.meter, case.wanted):
        point = planner.split_point(block)
        if len(block.spans) < 2:
            assert point is None
            continue
        assert point is not None
        assert point == (block.function, block.spans[len(block.spans) // 2].start)
        replanned = planner.plan(case.meter, case.wanted, breaks=frozenset({point}))
        by_start = {(b.function, b.spans[0].start): b for b in replanned}
        half = len(block.spans) // 2
        # the first half is read alone; the second half leads the next block, which may
        # take on later spans now that its head moved forward
        assert by_start[(block.function, block.spans[0].start)].spans == block.spans[:half]
        assert by_start[point].spans[: len(block.spans) - half] == block.spans[half:]


def test_split_point_is_none_for_a_single_span() -> None:
    span = planner.Span("input", 10, 2, "power_w")
    assert planner.split_point(planner.Block("input", 10, 2, (span,))) is None


def test_scale_register_shared_by_two_quantities_is_read_once() -> None:
    meter = library()["sunspec-203"]
    spans = planner.spans_for(meter, ["power_l1_w", "power_l2_w"])
    assert [s.name for s in spans] == ["power_l1_w", "power_l2_w", planner.scale_key(40091)]


def test_sdm630_full_read_takes_at_most_three_requests() -> None:
    meter = library()["eastron-sdm630"]
    assert len(planner.plan(meter, meter.quantities)) <= 3


@pytest.mark.parametrize("model_id", SHIPPED)
def test_full_read_of_shipped_model_stays_within_its_limits(model_id: str) -> None:
    meter = library()[model_id]
    blocks = planner.plan(meter, meter.quantities)
    assert blocks
    for block in blocks:
        assert block.count <= meter.max_registers
        assert all(block.end < start or block.start > end for start, end in meter.forbidden)
    planned = {s.name for b in blocks for s in b.spans}
    assert set(meter.quantities) <= planned
