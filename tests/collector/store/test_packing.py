"""Reading values packed into a blob come back exactly, in as few bytes as they allow."""

from __future__ import annotations

import math
import struct

from hypothesis import given
from hypothesis import strategies as st

from collector.store.packing import Layout, matrix, merge, pack, unpack
from sparwatt.wire import QUANTITIES

NAMES = list(QUANTITIES)


def f32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def test_float32_meter_values_take_four_bytes_each() -> None:
    values = {name: f32(230.1 + i) for i, name in enumerate(NAMES)}
    layout, blob = pack(values)
    assert layout.codes == "f" * len(NAMES)
    assert len(blob) == 4 * len(NAMES)
    assert unpack(layout, blob) == values


def test_scaled_decimal_values_take_four_bytes_and_come_back_exactly() -> None:
    values = {"voltage_l1_v": 230.1, "energy_import_kwh": 123456.78, "power_factor": -0.873}
    layout, blob = pack(values)
    assert layout.codes == "123"  # V x10, kWh x100, PF x1000
    assert len(blob) == 12
    assert unpack(layout, blob) == values


def test_a_value_with_no_short_exact_form_keeps_eight_bytes() -> None:
    values = {"power_w": 1 / 3, "frequency_hz": f32(50.0)}
    layout, blob = pack(values)
    assert layout.codes == "df"
    assert len(blob) == 12
    assert unpack(layout, blob) == values


def test_layout_key_round_trips() -> None:
    layout = Layout(("power_w", "energy_import_kwh"), "f2")
    assert Layout.from_key(layout.key()) == layout


def test_merge_adds_only_quantities_the_stored_reading_lacks() -> None:
    stored = pack({"power_w": 1000.0, "voltage_l1_v": 230.0})
    merged, added = merge(stored, {"power_w": 999.0, "current_l1_a": 4.5})
    assert added == 1
    assert merged is not None
    assert unpack(*merged) == {"power_w": 1000.0, "voltage_l1_v": 230.0, "current_l1_a": 4.5}
    assert merge(stored, {"power_w": 5.0}) == (None, 0)


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@given(
    st.dictionaries(
        st.sampled_from(NAMES),
        finite
        | st.floats(width=32, allow_nan=False, allow_infinity=False)
        | st.decimals(
            min_value=-1e6, max_value=1e6, places=2, allow_nan=False, allow_infinity=False
        ).map(float),
        min_size=1,
    )
)
def test_any_finite_values_come_back_exactly(values: dict[str, float]) -> None:
    layout, blob = pack(values)
    back = unpack(layout, blob)
    assert back == values
    assert list(back) == list(values)
    assert all(
        a == b and str(a) == str(b) for a, b in zip(back.values(), values.values(), strict=True)
    )


@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(sorted(QUANTITIES)[:6]),
            st.floats(allow_nan=False, allow_infinity=False, width=64)
            | st.decimals(-99999, 99999, places=2).map(float)
            | st.floats(-1e6, 1e6, width=32),
            min_size=1,
            max_size=4,
        ),
        min_size=1,
        max_size=12,
    )
)
def test_many_readings_decode_at_once_as_one_by_one(readings: list[dict[str, float]]) -> None:
    """The refresh's matrix holds what `unpack` gives, reading by reading, whatever mix of
    layouts the readings have; NaN where a reading lacks a quantity."""
    ids: dict[Layout, int] = {}
    rows = []
    for ts, values in enumerate(readings):
        layout, blob = pack(values)
        rows.append((ts * 10_000, ids.setdefault(layout, len(ids) + 1), blob))
    layouts = {i: layout for layout, i in ids.items()}

    got = matrix(rows, layouts)

    assert got.ts.tolist() == [row[0] for row in rows]
    for r, (_, layout_id, blob) in enumerate(rows):
        one = unpack(layouts[layout_id], blob)
        for c, quantity in enumerate(got.quantities):
            if quantity in one:
                assert got.values[r, c] == one[quantity]
            else:
                assert math.isnan(got.values[r, c])
        assert set(one) <= set(got.quantities)
