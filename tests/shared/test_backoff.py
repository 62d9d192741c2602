"""The one retry schedule every part of Sparwatt uses."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sparwatt.backoff import backoff_s


def test_pauses_double_from_the_first_and_stop_at_the_ceiling() -> None:
    assert [backoff_s(n, 0.5, 30.0) for n in range(9)] == [
        0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0,
    ]  # fmt: skip


def test_equal_jitter_keeps_half_the_pause_fixed() -> None:
    assert backoff_s(3, 1.0, 60.0, lambda: 0.0) == 4.0
    assert backoff_s(3, 1.0, 60.0, lambda: 1.0) == 8.0
    assert backoff_s(3, 1.0, 60.0, lambda: 0.5) == 6.0


@given(
    st.integers(min_value=-5, max_value=10_000),
    st.floats(min_value=1e-3, max_value=1e3),
    st.floats(min_value=1e-3, max_value=1e6),
    st.floats(min_value=0.0, max_value=1.0),
)
def test_a_pause_never_exceeds_the_ceiling_and_never_shrinks_with_more_retries(
    retry: int, first: float, ceiling: float, draw: float
) -> None:
    pause = backoff_s(retry, first, ceiling)
    assert 0 < pause <= max(ceiling, 0)
    assert backoff_s(retry + 1, first, ceiling) >= pause
    assert pause / 2 <= backoff_s(retry, first, ceiling, lambda: draw) <= pause
