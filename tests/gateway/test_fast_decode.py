"""The reader's fast decoders agree with the reference decoder for every shipped map."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import decode, planner
from gateway.meter_maps import MeterMap, library

MODELS = sorted(library())


def _orders(meter: MeterMap, name: str) -> tuple[bool, bool]:
    fld = meter.quantities[name]
    return (
        (fld.word_order or meter.word_order) == "little",
        (fld.byte_order or meter.byte_order) == "little",
    )


def as_number(meter: MeterMap, name: str, words: list[int]) -> int:
    """The registers of a quantity as one unsigned number, most significant word first."""
    little_words, little_bytes = _orders(meter, name)
    if little_words:
        words = words[::-1]
    if little_bytes:
        words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    return int.from_bytes(b"".join(w.to_bytes(2, "big") for w in words), "big")


def as_words(meter: MeterMap, name: str, number: int) -> list[int]:
    """Inverse of as_number: the registers a meter holds for this unsigned number."""
    count = meter.quantities[name].words
    words = [(number >> (16 * (count - 1 - i))) & 0xFFFF for i in range(count)]
    little_words, little_bytes = _orders(meter, name)
    if little_bytes:
        words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    return words[::-1] if little_words else words


def reference(model: str, words: dict[str, dict[int, int]]) -> tuple[dict[str, float], list[str]]:
    """Markers, field_value and plausible, quantity by quantity: the slow, obvious way."""
    meter = library()[model]
    values, invalid = {}, []
    for name, fld in meter.quantities.items():
        regs = words[meter.field_function(name)]
        raw = [regs[a] for a in range(fld.address, fld.address + fld.words)]
        if as_number(meter, name, raw) in meter.markers(name):
            invalid.append(name)
            continue
        exponent = None
        if fld.scale_register is not None:
            sf = regs[fld.scale_register]
            exponent = sf - 0x10000 if sf & 0x8000 else sf
            if sf in meter.scale_markers() or abs(exponent) > decode.MAX_EXPONENT:
                invalid.append(name)
                continue
        value = decode.field_value(meter, fld, raw, exponent)
        if decode.plausible(name, value):
            values[name] = value
        else:
            invalid.append(name)
    return values, invalid


def same(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], rel=1e-12) for k in a)


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(MODELS),
    st.randoms(use_true_random=False),
    st.sampled_from([0, 10, 0x8000, 0xFFFD, 0x7FFF, 0x0015, 0xFFEC]),
    st.booleans(),
)
def test_fast_decoders_match_the_reference(
    model: str, rnd: object, scale_word: int, plant_markers: bool
) -> None:
    meter = library()[model]
    names = list(meter.quantities)
    blocks = planner.plan(meter, names)
    words: dict[str, dict[int, int]] = {"input": {}, "holding": {}}
    scale_registers = {f.scale_register for f in meter.quantities.values()}
    for block in blocks:
        regs = [rnd.randrange(0x10000) for _ in range(block.count)]  # type: ignore[attr-defined]
        for i in range(block.count):
            if block.start + i in scale_registers:
                regs[i] = scale_word
        words[block.function].update(zip(range(block.start, block.end + 1), regs, strict=True))
    if plant_markers:  # random words almost never hit one
        for name in names:
            if meter.markers(name) and rnd.random() < 0.5:  # type: ignore[attr-defined]
                marker = rnd.choice(meter.markers(name))  # type: ignore[attr-defined]
                fld = meter.quantities[name]
                held = words[meter.field_function(name)]
                for offset, w in enumerate(as_words(meter, name, marker)):
                    held[fld.address + offset] = w
    buffers = [
        struct.pack(f">{b.count}H", *(words[b.function][a] for a in range(b.start, b.end + 1)))
        for b in blocks
    ]
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


def _both_paths(meter: MeterMap, regs: dict[int, int]) -> list[tuple[dict[str, float], list[str]]]:
    """What decode_fields and decode_placed make of these input registers."""
    names = list(meter.quantities)
    start, end = min(regs), max(regs)
    block = [regs.get(a, 0) for a in range(start, end + 1)]
    placed = decode.place_fields(meter, names, [("input", start, len(block))])
    assert placed is not None
    return [
        decode.decode_fields(decode.compile_fields(meter, names), {"input": regs, "holding": {}}),
        decode.decode_placed(placed, [struct.pack(f">{len(block)}H", *block)]),
    ]


def _one_quantity_map(**extra: object) -> MeterMap:
    power = {"address": 0, "type": "i32", "unit": "W", "scale": 0.01}
    return MeterMap.model_validate(
        {
            "id": "acme-x1",
            "manufacturer": "Acme",
            "model": "X1",
            "source": "Acme X1 Modbus manual rev 1",
            "quantities": {"power_w": power},
            **extra,
        }
    )


@pytest.mark.parametrize(
    ("word_order", "byte_order", "marker_words", "neighbour_words"),
    [
        ("big", "big", [0x7FFF, 0xFFFF], [0x7FFF, 0xFFFE]),
        ("little", "big", [0xFFFF, 0x7FFF], [0xFFFE, 0x7FFF]),
        ("big", "little", [0xFF7F, 0xFFFF], [0xFF7F, 0xFEFF]),
        ("little", "little", [0xFFFF, 0xFF7F], [0xFEFF, 0xFF7F]),
    ],
)
def test_a_not_available_marker_is_withheld_in_every_word_and_byte_order(
    word_order: str, byte_order: str, marker_words: list[int], neighbour_words: list[int]
) -> None:
    meter = _one_quantity_map(
        word_order=word_order, byte_order=byte_order, not_available={"i32": [0x7FFFFFFF]}
    )
    for values, invalid in _both_paths(meter, dict(enumerate(marker_words))):
        assert (values, invalid) == ({}, ["power_w"])
    # one count below the marker is a reading like any other: 2147483646 x 0.01 W
    for values, invalid in _both_paths(meter, dict(enumerate(neighbour_words))):
        assert (values, invalid) == ({"power_w": 21474836.46}, [])


def test_a_register_marker_list_replaces_the_models_list_for_its_type() -> None:
    meter = _one_quantity_map(
        not_available={"i32": [0x7FFFFFFF]},
        quantities={
            "power_w": {"address": 0, "type": "i32", "unit": "W", "not_available": [0]},
        },
    )
    for values, invalid in _both_paths(meter, {0: 0x7FFF, 1: 0xFFFF}):
        assert (values, invalid) == ({"power_w": 2147483647.0}, [])
    for values, invalid in _both_paths(meter, {0: 0x0000, 1: 0x0000}):
        assert (values, invalid) == ({}, ["power_w"])


@pytest.mark.parametrize("scale_word", [0x8000, 0x7FFF, 0x0015, 0xFFEB])
def test_a_scale_word_far_outside_any_real_scale_is_withheld_not_a_crash(scale_word: int) -> None:
    # no i16 markers declared: 8000h is caught as a power of ten no meter uses
    meter = _one_quantity_map(
        quantities={"power_w": {"address": 0, "type": "i16", "unit": "W", "scale_register": 1}}
    )
    for values, invalid in _both_paths(meter, {0: 1234, 1: scale_word}):
        assert (values, invalid) == ({}, ["power_w"])
