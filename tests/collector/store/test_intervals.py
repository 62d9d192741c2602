"""Interval energy from raw counter readings: splitting, resets, wraps, gaps and power."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.intervals.energy import (
    IntervalPolicy,
    IntervalRecord,
    counter_intervals,
    implausible_jumps,
    merge,
    power_stats,
)

T0 = 1_704_067_200_000  # 2024-01-01T00:00Z, on an interval boundary
MIN = 60_000
QUARTER = 900_000


def exact(kwh: float) -> Any:
    """Equal up to float rounding of a few kWh-scale operations."""
    return pytest.approx(kwh, rel=1e-12, abs=1e-12)


def at(minutes: float) -> int:
    return T0 + round(minutes * MIN)


def energy(records: list[IntervalRecord]) -> dict[int, float | None]:
    """Interval energy keyed by minutes after T0."""
    return {(r.start_ms - T0) // MIN: r.energy_kwh for r in records}


def estimated(records: list[IntervalRecord]) -> dict[int, bool]:
    return {(r.start_ms - T0) // MIN: r.estimated for r in records}


def test_pair_spanning_a_boundary_is_split_pro_rata_by_time() -> None:
    records = counter_intervals([(at(10), 10.0), (at(25), 13.0)])

    assert energy(records) == {0: exact(1.0), 15: exact(2.0)}
    assert estimated(records) == {0: False, 15: False}
    assert [r.samples for r in records] == [1, 1]
    assert all(r.start_ms % QUARTER == 0 for r in records)


def test_sample_on_a_boundary_starts_the_next_interval_and_closes_the_last() -> None:
    records = counter_intervals([(at(0), 10.0), (at(15), 11.0), (at(30), 13.5)])

    assert energy(records) == {0: exact(1.0), 15: exact(2.5)}
    assert [r.samples for r in records] == [1, 1]
    assert not any(r.estimated for r in records)


def test_partial_first_and_last_intervals_report_their_measured_energy() -> None:
    records = counter_intervals([(at(5), 10.0), (at(12), 11.0), (at(20), 11.75)])

    assert energy(records) == {
        0: exact(1.0 + 0.75 * 3 / 8),
        15: exact(0.75 * 5 / 8),
    }
    assert [r.samples for r in records] == [2, 1]


def test_reset_to_zero_gives_no_energy_and_marks_its_interval_estimated() -> None:
    readings = [
        (at(1), 100.0),
        (at(5), 101.0),
        (at(8), 0.0),
        (at(12), 0.5),
        (at(15), 1.0),
        (at(25), 2.0),
    ]

    records = counter_intervals(readings)

    assert energy(records) == {0: exact(2.0), 15: exact(1.0)}
    assert estimated(records) == {0: True, 15: False}


def test_rollover_counts_through_the_wrap_point() -> None:
    policy = IntervalPolicy(rollover_values=(100_000.0,))

    records = counter_intervals([(at(1), 99_999.0), (at(10), 1.0)], policy)

    assert energy(records) == {0: exact(2.0)}
    assert estimated(records) == {0: False}


def test_rollover_uses_the_wrap_point_the_counter_was_below() -> None:
    policy = IntervalPolicy(rollover_values=(2**32 * 0.01, 99_999.9))

    records = counter_intervals([(at(1), 99_999.0), (at(5), 99_999.5), (at(10), 0.6)], policy)

    # Counters near 1e5 kWh carry about 1e-11 kWh of float resolution.
    assert energy(records) == {0: pytest.approx(0.5 + 0.4 + 0.6, rel=0, abs=1e-9)}


def test_drop_without_rollover_point_is_a_reset_not_a_wrap() -> None:
    records = counter_intervals([(at(1), 99_999.0), (at(10), 1.0), (at(14), 2.0)])

    assert energy(records) == {0: exact(1.0)}
    assert estimated(records) == {0: True}


def test_replaced_meter_starting_at_three_restarts_counting_without_a_wrap() -> None:
    policy = IntervalPolicy(rollover_values=(100_000.0,))
    readings = [(at(1), 4999.0), (at(5), 5000.0), (at(7), 3.0), (at(14), 4.0), (at(20), 5.0)]

    records = counter_intervals(readings, policy)

    # 00:14 -> 00:20 puts 1/6 kWh before the boundary.
    assert energy(records) == {
        0: exact(1.0 + 1.0 + 1 / 6),
        15: exact(5 / 6),
    }
    assert estimated(records) == {0: True, 15: False}


def test_interval_holding_nothing_but_a_replacement_has_no_energy() -> None:
    records = counter_intervals([(at(1), 5000.0), (at(5), 3.0)])

    assert energy(records) == {0: None}
    assert records[0].samples == 2


def test_bad_reading_the_counter_recovers_from_is_skipped() -> None:
    readings = [(at(1), 5000.0), (at(4), 0.0), (at(6), 2500.0), (at(10), 5001.5)]

    records = counter_intervals(readings)

    assert energy(records) == {0: exact(1.5)}
    assert estimated(records) == {0: False}
    assert records[0].samples == 2


def test_lasting_drop_is_a_replacement_even_if_it_is_small() -> None:
    readings = [(at(1), 5000.0), (at(5), 4000.0), (at(10), 4000.5), (at(20), 4001.5)]

    records = counter_intervals(readings)

    assert energy(records) == {0: exact(0.5 + 0.5), 15: exact(0.5)}
    assert estimated(records) == {0: True, 15: False}


def test_tiny_drop_is_float_noise_and_is_not_counted_twice() -> None:
    readings = [(at(1), 10.0), (at(5), 9.9995), (at(10), 10.5)]

    records = counter_intervals(readings)

    assert energy(records) == {0: exact(0.5)}
    assert estimated(records) == {0: False}
    assert records[0].samples == 3


def test_gap_longer_than_the_limit_leaves_covered_intervals_missing() -> None:
    readings = [(at(0), 10.0), (at(10), 11.0), (at(190), 20.0), (at(200), 21.0)]

    records = counter_intervals(readings)

    by_minute = energy(records)
    assert list(by_minute) == list(range(0, 210, 15))
    assert by_minute[0] == exact(1.0)
    assert by_minute[180] == exact(0.5)
    assert by_minute[195] == exact(0.5)
    assert all(by_minute[m] is None for m in range(15, 180, 15))
    assert not any(r.estimated for r in records)
    assert sum(r.samples for r in records) == 4


def test_short_gap_is_interpolated_and_intervals_without_readings_are_estimated() -> None:
    records = counter_intervals([(at(10), 10.0), (at(55), 19.0)])

    assert energy(records) == {
        0: exact(1.0),
        15: exact(3.0),
        30: exact(3.0),
        45: exact(2.0),
    }
    assert estimated(records) == {0: False, 15: True, 30: True, 45: False}
    assert [r.samples for r in records] == [1, 0, 0, 1]


def test_gap_of_exactly_the_limit_is_still_interpolated() -> None:
    policy = IntervalPolicy(max_gap_ms=30 * MIN)

    records = counter_intervals([(at(0), 0.0), (at(30), 3.0), (at(61), 4.0)], policy)

    assert energy(records) == {0: exact(1.5), 15: exact(1.5), 30: None, 45: None, 60: None}
    assert estimated(records) == {0: False, 15: True, 30: False, 45: False, 60: False}


def test_unsorted_input_with_duplicates_matches_clean_input() -> None:
    clean = [(at(m), 10.0 + 0.1 * m) for m in range(0, 60, 3)]
    messy = clean + clean[::4]
    random.Random(7).shuffle(messy)

    assert counter_intervals(messy) == counter_intervals(clean)


def test_duplicate_timestamp_keeps_the_higher_reading_whatever_the_order() -> None:
    first = counter_intervals([(at(1), 10.0), (at(5), 11.0), (at(5), 10.5), (at(9), 12.0)])
    second = counter_intervals([(at(1), 10.0), (at(5), 10.5), (at(5), 11.0), (at(9), 12.0)])

    assert first == second
    assert energy(first) == {0: exact(2.0)}
    assert first[0].samples == 3


@pytest.mark.parametrize("readings", [[], [(T0, 10.0)], [(T0, 10.0), (T0, 10.0)]])
def test_fewer_than_two_distinct_readings_give_no_intervals(
    readings: list[tuple[int, float]],
) -> None:
    assert counter_intervals(readings) == []


def test_implausible_jumps_lists_pairs_above_the_power_limit() -> None:
    readings = [(at(0), 10.0), (at(15), 11.0), (at(30), 61.0), (at(45), 0.0), (at(60), 1.0)]

    jumps = implausible_jumps(readings, max_power_w=100_000.0)

    assert jumps == [(at(15), at(30), exact(200_000.0))]


def test_implausible_jumps_do_not_change_interval_energy() -> None:
    records = counter_intervals([(at(0), 10.0), (at(15), 11.0), (at(30), 61.0)])

    assert energy(records) == {0: exact(1.0), 15: exact(50.0)}


def test_power_stats_give_sample_mean_max_and_count_per_interval() -> None:
    readings = [(at(14), 300.0), (at(1), 100.0), (at(7), 200.0), (at(15), 50.0), (at(29), 70.0)]

    stats = power_stats(readings)

    assert stats == {
        at(0): (exact(200.0), 300.0, 3),
        at(15): (exact(60.0), 70.0, 2),
    }
    assert power_stats([]) == {}


def test_merge_fills_power_into_energy_records_and_keeps_power_only_intervals() -> None:
    records = counter_intervals([(at(0), 10.0), (at(15), 11.0)])
    stats = {at(0): (4000.0, 4500.0, 3), at(30): (100.0, 120.0, 2)}

    merged = merge(records, stats)

    assert merged == [
        IntervalRecord(at(0), merged[0].energy_kwh, False, 4000.0, 4500.0, 1),
        IntervalRecord(at(30), None, False, 100.0, 120.0, 0),
    ]
    assert merged[0].energy_kwh == exact(1.0)


@st.composite
def monotone_counters(draw: st.DrawFn) -> list[tuple[int, float]]:
    steps = draw(
        st.lists(
            st.tuples(
                st.integers(min_value=1, max_value=2 * 3_600_000),
                st.floats(min_value=0.0, max_value=50.0, allow_subnormal=False),
            ),
            min_size=1,
            max_size=60,
        )
    )
    ts = draw(st.integers(min_value=T0 - 10 * QUARTER, max_value=T0 + 10 * QUARTER))
    value = draw(st.floats(min_value=0.0, max_value=1e6, allow_subnormal=False))
    readings = [(ts, value)]
    for gap_ms, rise in steps:
        ts += gap_ms
        value += rise
        readings.append((ts, value))
    return readings


@given(monotone_counters())
def test_monotone_counter_energy_sums_to_last_minus_first(
    readings: list[tuple[int, float]],
) -> None:
    records = counter_intervals(readings)

    assert all(r.energy_kwh is not None and r.energy_kwh >= 0 for r in records)
    total = sum(r.energy_kwh or 0.0 for r in records)
    assert total == pytest.approx(readings[-1][1] - readings[0][1], rel=1e-9, abs=1e-9)
    starts = [r.start_ms for r in records]
    assert starts == sorted(starts)
    assert all(s % QUARTER == 0 for s in starts)


@given(monotone_counters(), st.randoms(use_true_random=False))
def test_input_order_does_not_change_the_result(
    readings: list[tuple[int, float]], rng: random.Random
) -> None:
    shuffled = readings + readings[: len(readings) // 2]
    rng.shuffle(shuffled)

    assert counter_intervals(shuffled) == counter_intervals(readings)
