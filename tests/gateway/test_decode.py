"""Register words to numbers and back: every data type, word order and byte order."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import decode
from gateway.meter_maps import WORDS, MeterMap

ORDERS = ["big", "little"]
INT_RANGES = {
    "u16": (0, 2**16 - 1),
    "i16": (-(2**15), 2**15 - 1),
    "u32": (0, 2**32 - 1),
    "i32": (-(2**31), 2**31 - 1),
    "u64": (0, 2**64 - 1),
    "i64": (-(2**63), 2**63 - 1),
}
INT_TYPES = sorted(INT_RANGES)
FLOAT_WIDTH = {"f32": 32, "f64": 64}
word = st.integers(min_value=0, max_value=0xFFFF)
order = st.sampled_from(ORDERS)


def _words(data_type: str) -> st.SearchStrategy[list[int]]:
    n = WORDS[data_type]
    return st.lists(word, min_size=n, max_size=n)


@st.composite
def int_case(draw: st.DrawFn) -> tuple[str, int]:
    data_type = draw(st.sampled_from(INT_TYPES))
    lo, hi = INT_RANGES[data_type]
    return data_type, draw(st.integers(min_value=lo, max_value=hi))


@given(int_case(), order, order)
def test_integer_round_trips_through_words_in_every_order(
    case: tuple[str, int], word_order: str, byte_order: str
) -> None:
    data_type, value = case
    words = decode.encode_raw(value, data_type, word_order, byte_order)
    assert len(words) == WORDS[data_type]
    assert all(0 <= w <= 0xFFFF for w in words)
    # float() is exact up to 2**53; compare as integers so 64-bit values are checked too
    assert decode.raw_value(words, data_type, word_order, byte_order) == float(value)
    if abs(value) <= 2**53:
        assert int(decode.raw_value(words, data_type, word_order, byte_order)) == value


@given(st.sampled_from(["u16", "i16", "u32", "i32"]), order, order, st.data())
def test_words_round_trip_through_integer_value(
    data_type: str, word_order: str, byte_order: str, data: st.DataObject
) -> None:
    words = data.draw(_words(data_type))
    value = decode.raw_value(words, data_type, word_order, byte_order)
    assert decode.encode_raw(value, data_type, word_order, byte_order) == words


@given(st.sampled_from(["f32", "f64"]), order, order, st.data())
def test_float_round_trips_through_words_in_every_order(
    data_type: str, word_order: str, byte_order: str, data: st.DataObject
) -> None:
    value = data.draw(st.floats(width=FLOAT_WIDTH[data_type], allow_nan=False))
    words = decode.encode_raw(value, data_type, word_order, byte_order)
    assert len(words) == WORDS[data_type]
    back = decode.raw_value(words, data_type, word_order, byte_order)
    assert back == value
    assert math.copysign(1.0, back) == math.copysign(1.0, value)  # keeps -0.0


@given(st.sampled_from(["f32", "f64"]), order, order, st.data())
def test_float_nan_stays_nan(
    data_type: str, word_order: str, byte_order: str, data: st.DataObject
) -> None:
    words = decode.encode_raw(math.nan, data_type, word_order, byte_order)
    assert math.isnan(decode.raw_value(words, data_type, word_order, byte_order))


@given(st.sampled_from(sorted(WORDS)), st.data())
def test_word_order_reverses_words_and_byte_order_swaps_bytes(
    data_type: str, data: st.DataObject
) -> None:
    words = data.draw(_words(data_type))
    swapped = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    reference = decode.raw_value(words, data_type)
    if math.isnan(reference):
        return
    assert decode.raw_value(words[::-1], data_type, "little", "big") == reference
    assert decode.raw_value(swapped, data_type, "big", "little") == reference
    assert decode.raw_value(swapped[::-1], data_type, "little", "little") == reference


@pytest.mark.parametrize(
    ("value", "data_type", "word_order", "byte_order", "words"),
    [
        (230.0, "f32", "big", "big", [0x4366, 0x0000]),
        (230.0, "f32", "little", "big", [0x0000, 0x4366]),
        (230.0, "f32", "big", "little", [0x6643, 0x0000]),
        (230.0, "f32", "little", "little", [0x0000, 0x6643]),
        (-1.5, "f32", "big", "big", [0xBFC0, 0x0000]),
        (1.0, "f64", "big", "big", [0x3FF0, 0x0000, 0x0000, 0x0000]),
        (-1.0, "i16", "big", "big", [0xFFFF]),
        (-2.0, "i32", "big", "big", [0xFFFF, 0xFFFE]),
        (0x12345678, "u32", "big", "big", [0x1234, 0x5678]),
        (0x12345678, "u32", "little", "big", [0x5678, 0x1234]),
        (0x12345678, "u32", "big", "little", [0x3412, 0x7856]),
        (2301.0, "i32", "little", "big", [0x08FD, 0x0000]),  # Carlo Gavazzi 230.1 V, LSW first
        (-12345.0, "i32", "little", "big", [0xCFC7, 0xFFFF]),
        (123456789.0, "u64", "big", "big", [0x0000, 0x0000, 0x075B, 0xCD15]),
        (-1.0, "i64", "big", "big", [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF]),
        (2.0**63, "u64", "big", "big", [0x8000, 0x0000, 0x0000, 0x0000]),
    ],
)
def test_known_vectors_decode_and_encode(
    value: float, data_type: str, word_order: str, byte_order: str, words: list[int]
) -> None:
    assert decode.raw_value(words, data_type, word_order, byte_order) == value
    assert decode.encode_raw(value, data_type, word_order, byte_order) == words


def test_float32_rounds_to_single_precision() -> None:
    words = decode.encode_raw(0.1, "f32")
    (expected,) = struct.unpack(">f", struct.pack(">f", 0.1))
    assert decode.raw_value(words, "f32") == expected != 0.1


def test_encode_rounds_integers_to_nearest() -> None:
    assert decode.encode_raw(2.6, "u16") == [3]
    assert decode.encode_raw(-2.6, "i16") == [0xFFFD]


@pytest.mark.parametrize(("data_type", "given_words"), [("f32", 1), ("u16", 2), ("i64", 3)])
def test_wrong_number_of_words_is_refused(data_type: str, given_words: int) -> None:
    with pytest.raises(
        ValueError, match=f"^{data_type} needs {WORDS[data_type]} words, got {given_words}$"
    ):
        decode.raw_value([0] * given_words, data_type)


def test_out_of_range_integer_cannot_be_encoded() -> None:
    with pytest.raises(struct.error):
        decode.encode_raw(70000, "u16")


def _meter(**quantity: object) -> MeterMap:
    return MeterMap.model_validate(
        {
            "id": "t",
            "manufacturer": "m",
            "model": "m",
            "source": "a published manual",
            "word_order": "little",
            "quantities": {"power_w": quantity},
        }
    )


def test_field_value_applies_scale_unit_and_word_order() -> None:
    meter = _meter(address=0, type="i32", unit="kW", scale=0.1)
    fld = meter.quantities["power_w"]
    assert decode.factor(fld) == pytest.approx(100.0)
    # raw -15 (words LSW first) * 0.1 kW = -1.5 kW = -1500 W
    assert decode.field_value(meter, fld, [0xFFF1, 0xFFFF]) == pytest.approx(-1500.0)


def test_field_value_applies_scale_factor_exponent() -> None:
    meter = _meter(address=0, type="i16", unit="W", scale_register=1)
    fld = meter.quantities["power_w"]
    assert decode.field_value(meter, fld, [0xFB2E], exponent=-1) == pytest.approx(-123.4)
    assert decode.field_value(meter, fld, [1234], exponent=2) == pytest.approx(123400.0)


def test_field_word_order_overrides_the_meter_default() -> None:
    meter = _meter(address=0, type="u32", unit="W", word_order="big")
    assert decode.field_value(meter, meter.quantities["power_w"], [0x0001, 0x0000]) == 65536.0


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("power_w", 1500.0, True),
        ("power_w", math.nan, False),
        ("power_w", math.inf, False),
        ("voltage_l1_v", 3.4028234663852886e38, False),  # float32 "not available" sentinel
        ("voltage_l1_v", -5.0, False),
        ("power_factor", 0.95, True),
        ("power_factor_l2", -1.5, False),
        ("frequency_hz", 50.0, True),
        ("frequency_hz", 6553.5, False),
    ],
)
def test_plausible_rejects_sentinels_and_impossible_values(
    name: str, value: float, expected: bool
) -> None:
    assert decode.plausible(name, value) is expected
