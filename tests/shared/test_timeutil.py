"""Epoch milliseconds from datetimes: the batch conversion agrees with the exact one."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter

from sparwatt import wire
from sparwatt.timeutil import epoch_ms, epochs_ms

_PARSE = TypeAdapter(wire.Timestamp)


def test_parsed_wire_timestamps_in_any_offset() -> None:
    texts = [
        "2026-03-29T00:59:59.999Z",
        "2026-03-29T03:00:00.001+02:00",
        "2026-10-25T02:30:00.500+01:00",
        "1999-12-31T23:59:59.123456-05:30",
        "2026-11-30T02:00:54.100Z",
    ]
    stamps = [_PARSE.validate_python(t) for t in texts]
    assert epochs_ms(stamps) == [epoch_ms(ts) for ts in stamps]
    assert epochs_ms(stamps)[0] == 1_774_745_999_999


def test_zones_with_daylight_saving_and_fixed_offsets_mixed() -> None:
    copenhagen = ZoneInfo("Europe/Copenhagen")
    start = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    stamps = [
        (start + timedelta(minutes=17 * i, microseconds=999 * i)).astimezone(zone)
        for i in range(400)
        for zone in (UTC, copenhagen, timezone(timedelta(hours=-3)))
    ]
    assert epochs_ms(stamps) == [epoch_ms(ts) for ts in stamps]
    # the same instant in three zones is one epoch value
    assert len(set(epochs_ms(stamps[:3]))) == 1


def test_before_the_epoch() -> None:
    ts = datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    assert epochs_ms([ts]) == [epoch_ms(ts)] == [-1]


def test_first_zone_with_daylight_saving() -> None:
    # stamps sharing one zone object whose offset changes (here across the spring change)
    # must not be subtracted as if the offset were fixed
    copenhagen = ZoneInfo("Europe/Copenhagen")
    start = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)
    stamps = [(start + timedelta(minutes=20 * i)).astimezone(copenhagen) for i in range(12)]
    assert epochs_ms(stamps) == [epoch_ms(ts) for ts in stamps]
    assert epochs_ms(stamps)[-1] - epochs_ms(stamps)[0] == 11 * 20 * 60_000


def test_empty() -> None:
    assert epochs_ms([]) == []


def test_microseconds_floor_to_the_millisecond_on_both_sides_of_the_epoch() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        us = rng.randrange(-(2**50), 2**52)  # about 1934 to 2112, any microsecond
        offset = timezone(timedelta(minutes=rng.randrange(-14 * 60, 14 * 60 + 1)))
        ts = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)).astimezone(offset)
        parsed = _PARSE.validate_python(ts.isoformat())
        assert epochs_ms([ts]) == [epoch_ms(ts)] == [us // 1000]
        assert epochs_ms([parsed, ts]) == [us // 1000] * 2
