"""The reader's fast decoders agree with the reference decoder for every shipped map."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import decode, planner
from gateway.meter_maps import library

MODELS = sorted(library())


def reference(model: str, words: dict[str, dict[int, int]]) -> tuple[dict[str, float], list[str]]:
    """field_value and plausible, quantity by quantity: the slow, obvious way."""
    meter = library()[model]
    values, invalid = {}, []
    for name, fld in meter.quantities.items():
        regs = words[meter.field_function(name)]
        raw = [regs[a] for a in range(fld.address, fld.address + fld.words)]
        exponent = None
        if fld.scale_register is not None:
            sf = regs[fld.scale_register]
            if sf == 0x8000:
                invalid.append(name)
                continue
            exponent = sf - 0x10000 if sf & 0x8000 else sf
        value = decode.field_value(meter, fld, raw, exponent)
        if decode.plausible(name, value):
            values[name] = value
        else:
            invalid.append(name)
    return values, invalid


def same(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], rel=1e-12) for k in a)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(MODELS),
    st.randoms(use_true_random=False),
    st.sampled_from([0, 10, 0x8000, 0xFFFD]),
)
def test_fast_decoders_match_the_reference(model: str, rnd: object, scale_word: int) -> None:
    meter = library()[model]
    names = list(meter.quantities)
    blocks = planner.plan(meter, names)
    words: dict[str, dict[int, int]] = {"input": {}, "holding": {}}
    buffers = []
    scale_registers = {f.scale_register for f in meter.quantities.values()}
    for block in blocks:
        regs = [rnd.randrange(0x10000) for _ in range(block.count)]  # type: ignore[attr-defined]
        for i in range(block.count):
            if block.start + i in scale_registers:
                regs[i] = scale_word
        words[block.function].update(zip(range(block.start, block.end + 1), regs, strict=True))
        buffers.append(struct.pack(f">{block.count}H", *regs))
    want_values, want_invalid = reference(model, words)
    got_values, got_invalid = decode.decode_fields(decode.compile_fields(meter, names), words)
    assert same(got_values, want_values)
    assert sorted(got_invalid) == sorted(want_invalid)
    placed = decode.place_fields(meter, names, [(b.function, b.start, b.count) for b in blocks])
    assert placed is not None
    got_values, got_invalid = decode.decode_placed(placed, buffers)
    assert same(got_values, want_values)
    assert sorted(got_invalid) == sorted(want_invalid)


def test_place_fields_refuses_a_plan_that_lacks_a_quantity() -> None:
    meter = library()["eastron-sdm630"]
    assert decode.place_fields(meter, ["power_w"], [("input", 0, 10)]) is None


def test_scaled_integer_reads_print_as_the_meter_shows_them() -> None:
    meter = library()["carlo-gavazzi-em340"]
    fields = decode.compile_fields(meter, ["voltage_l2_l3_v", "current_l1_a"])
    words = {"input": {8: 3989, 9: 0, 12: 5432, 13: 0}, "holding": {}}
    values, _ = decode.decode_fields(fields, words)
    assert values == {"voltage_l2_l3_v": 398.9, "current_l1_a": 5.432}
