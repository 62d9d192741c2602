"""Times and quantities decoded from a file's bytes: the same numbers as a text parse,
and anything of another shape refused rather than read differently."""

from __future__ import annotations

from datetime import datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.imports import ascii_fields

EPOCH = datetime(1970, 1, 1)
PAD = bytes(32)


def laid_out(fields: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fields one a line, after other fields as in an export, as the decoders see a
    file: its bytes, and where each field starts and how wide it is."""
    head = "571313180400012345;"
    data = "".join(f"{head}{f};\n" for f in fields).encode()
    at, width, offset = [], [], 0
    for f in fields:
        at.append(offset + len(head))
        width.append(len(f.encode()))
        offset += len(head) + len(f.encode()) + 2
    buf = np.frombuffer(data + PAD, np.uint8)
    return buf, np.array(at, np.int64), np.array(width, np.int64)


quantities = st.one_of(
    st.integers(0, 10**9).map(str),
    st.tuples(st.integers(0, 10**7), st.integers(1, 3), st.integers(0, 999)).map(
        lambda t: f"{t[0]},{t[2] % 10 ** t[1]:0{t[1]}d}"
    ),
    st.just(""),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(quantities, min_size=1, max_size=40))
def test_quantities_read_as_thousandths_exactly_as_a_decimal_parse(texts: list[str]) -> None:
    buf, at, width = laid_out(texts)
    milli = ascii_fields.thousandths(buf, at + width, width)
    assert milli is not None
    for text, got in zip(texts, milli.tolist(), strict=True):
        if text:
            assert got / 1000.0 == float(text.replace(",", "."))
        else:
            assert np.isnan(got)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from(["1,2,3", ",5", "5,", "1,2345", "-1", "1.5", "1e3", " 1", "1 ", "x"]),
        min_size=1,
        max_size=3,
    ),
    st.lists(quantities, max_size=5),
)
def test_a_quantity_of_another_shape_is_refused(bad: list[str], good: list[str]) -> None:
    buf, at, width = laid_out(good + bad)
    assert ascii_fields.thousandths(buf, at + width, width) is None


times = st.datetimes(datetime(1900, 1, 1), datetime(2199, 12, 31, 23, 59, 59))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(times, st.booleans()), min_size=1, max_size=40))
def test_local_times_read_as_milliseconds_since_local_midnight_1970(
    stamps: list[tuple[datetime, bool]],
) -> None:
    texts = [t.strftime("%d-%m-%Y %H:%M:%S" if s else "%d-%m-%Y %H:%M") for t, s in stamps]
    buf, at, width = laid_out(texts)
    got = ascii_fields.local_ms(buf, at, width)
    assert got is not None
    for (stamp, seconds), ms in zip(stamps, got.tolist(), strict=True):
        expected = stamp.replace(microsecond=0, second=stamp.second if seconds else 0)
        assert ms == (expected - EPOCH) // np.timedelta64(1, "ms").item()


def test_runs_of_one_date_read_the_same_as_each_line_alone() -> None:
    texts = [f"31-03-2024 {h:02d}:{m:02d}:00" for h in range(24) for m in (0, 15, 30, 45)]
    texts += ["01-04-2024 00:00:00", "29-02-2024 23:45:00"]
    buf, at, width = laid_out(texts)
    together = ascii_fields.local_ms(buf, at, width)
    alone = [ascii_fields.local_ms(buf, at[i : i + 1], width[i : i + 1]) for i in range(len(at))]
    assert together is not None
    assert together.tolist() == [int(a[0]) for a in alone if a is not None]


def test_a_time_that_is_not_on_the_calendar_or_clock_is_refused() -> None:
    for bad in [
        "29-02-2023 00:00:00", "31-04-2024 00:00:00", "00-01-2024 00:00:00",
        "01-13-2024 00:00:00", "01-01-2024 24:00:00", "01-01-2024 23:60:00",
        "01-01-2024 23:59:60", "01-01-2024T00:00:00", "2024-01-01 00:00:00",
        "01-01-2024 0:00:000", "1-01-2024 00:00:00",
    ]:  # fmt: skip
        buf, at, width = laid_out(["01-01-2024 00:00:00", bad])
        assert ascii_fields.local_ms(buf, at, width) is None, bad


def test_long_quantities_are_held_to_the_same_shape() -> None:
    for bad in [
        "1,234,567",
        "12345,6789",
        "123456789,",
        ",123456789",
        "1234567 89",
        "1234567890123",
    ]:
        buf, at, width = laid_out(["123456789,5", bad])
        assert ascii_fields.thousandths(buf, at + width, width) is None, bad
    buf, at, width = laid_out(["123456789,5", "99999999999", "0,001"])
    milli = ascii_fields.thousandths(buf, at + width, width)
    assert milli is not None
    assert milli.tolist() == [123456789500.0, 99999999999000.0, 1.0]
