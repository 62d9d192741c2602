"""Fields of a text file decoded in place from its bytes with array operations: local
times written DD-MM-YYYY HH:MM[:SS], and decimal-comma quantities.

Each decoder takes the file's bytes (padded at the end, so a window may reach past the
last line) and where each line's field is; it returns None when a field is not of its
shape, and never accepts one that utility.parse_local_times or the CSV reader would
read differently. Eight-character fields are decoded as one 64-bit word each, several
digits per arithmetic operation (bytes in file order, the first in the lowest bits).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sparwatt.timeutil import DAY_MS

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Chars = npt.NDArray[np.uint8]
Words = npt.NDArray[np.uint64]

NUMBER_CHARS = 12  # longest quantity taken: 10**12 kWh stays exact in thousandths
_COMMA, _DASH, _SPACE, _COLON, _ZERO = b",- :0"
_DATE_DIGITS = [0, 1, 3, 4, 6, 7, 8, 9, 11, 12, 14, 15, 17, 18]
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int32)
_POW10 = 10 ** np.arange(18, dtype=np.int64)
_PLACES = 10.0 ** np.arange(NUMBER_CHARS - 1, -1, -1)  # exact: sums stay below 2**53
_LOW7 = np.uint64(0x7F7F_7F7F_7F7F_7F7F)
_HIGH_NIBBLES = np.uint64(0xF0F0_F0F0_F0F0_F0F0)
_LOW_NIBBLES = np.uint64(0x0F0F_0F0F_0F0F_0F0F)
_SIXES = np.uint64(0x0606_0606_0606_0606)
_ZEROS = np.uint64(0x3030_3030_3030_3030)
_COMMAS = np.uint64(0x2C2C_2C2C_2C2C_2C2C)
# the top w bytes of a word (a right-aligned field of w characters), for w = 0..8
_TOP = np.array([0, *(((1 << 8 * w) - 1) << 8 * (8 - w) for w in range(1, 9))], np.uint64)
# HH:MM:SS: the colons, and the bytes that must be digits
_CLOCK_COLONS = np.uint64(0x0000_3A00_003A_0000)
_CLOCK_COLON_BYTES = np.uint64(0x0000_FF00_00FF_0000)
_CLOCK_DIGITS = np.uint64(0xFFFF_00FF_FF00_FFFF)


def windows(buf: Chars, at: Ints, width: int) -> Chars:
    """`width` bytes from each of `at`, one row each."""
    out: Chars = np.lib.stride_tricks.sliding_window_view(buf, width)[at]
    return out


def words(buf: Chars, at: Ints) -> Words:
    """The eight bytes from each of `at` as one 64-bit word each."""
    out: Words = windows(buf, at, 8).view(np.uint64).ravel()
    return out


def local_ms(buf: Chars, at: Ints, width: Ints) -> Ints | None:
    """'DD-MM-YYYY HH:MM[:SS]' at `at` (`width` 16 or 19) as ms since 1970-01-01 local
    midnight; None if one is not such a time."""
    if not np.isin(width, (16, 19)).all():
        return None
    if len(at) > 1 and (width == 19).all():
        return _local_ms_by_day(buf, at)
    chars = windows(buf, at, 19)
    chars[width == 16, 16:] = (_COLON, _ZERO, _ZERO)
    shape = (
        (chars[:, 2] == _DASH)
        & (chars[:, 5] == _DASH)
        & (chars[:, 10] == _SPACE)
        & (chars[:, 13] == _COLON)
        & (chars[:, 16] == _COLON)
    )
    digits = chars[:, _DATE_DIGITS] - np.uint8(_ZERO)  # other bytes wrap to 10 and above
    if not (shape.all() and (digits <= 9).all()):
        return None
    d = digits.astype(np.int32)
    day = d[:, 0] * 10 + d[:, 1]
    month = d[:, 2] * 10 + d[:, 3]
    year = d[:, 4] * 1000 + d[:, 5] * 100 + d[:, 6] * 10 + d[:, 7]
    hour = d[:, 8] * 10 + d[:, 9]
    minute = d[:, 10] * 10 + d[:, 11]
    second = d[:, 12] * 10 + d[:, 13]
    if not ((month >= 1) & (month <= 12)).all():
        return None
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _MONTH_DAYS[month] + (leap & (month == 2))
    if not (
        (day >= 1) & (day <= month_days) & (hour <= 23) & (minute <= 59) & (second <= 59)
    ).all():
        return None
    # days from the civil date (proleptic Gregorian, as numpy's datetime64; years counted
    # from March so the leap day comes last)
    y = (year - (month <= 2)).astype(np.int64)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    days = era * 146_097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719_468
    clock = ((hour * 60 + minute) * 60 + second).astype(np.int64) * 1000
    out: Ints = days * DAY_MS + clock
    return out


def _local_ms_by_day(buf: Chars, at: Ints) -> Ints | None:
    """19-character times: the date read once per run of lines with the same date, the
    clock (HH:MM:SS, one word) on every line."""
    head = windows(buf, at, 24).view(np.uint64)  # DD-MM-YY, YY HH:MM, :SS and beyond
    date, rest = head[:, 0], head[:, 1] & np.uint64(0xFF_FFFF)  # through the space
    change = (date[1:] != date[:-1]) | (rest[1:] != rest[:-1])
    runs = np.flatnonzero(np.concatenate(([True], change)))
    first = local_ms(buf, at[runs], np.full(len(runs), 16))  # the date; HH:MM checked again
    clock = (head[:, 1] >> np.uint64(24)) | (head[:, 2] << np.uint64(40))  # bytes 11 to 18
    digits = clock & _CLOCK_DIGITS
    if first is None or not (
        ((clock & _CLOCK_COLON_BYTES) == _CLOCK_COLONS).all()
        and ((digits & _HIGH_NIBBLES) == (_ZEROS & _CLOCK_DIGITS)).all()
        and ((((digits & _LOW_NIBBLES) + _SIXES) & _HIGH_NIBBLES) == 0).all()
    ):
        return None
    # the two digits of hour, minute and second, each as one number (bytes 0, 3 and 6)
    d = digits & _LOW_NIBBLES
    pairs = d * np.uint64(10) + (d >> np.uint64(8))
    hour = (pairs & np.uint64(0xFF)).astype(np.int64)
    minute = ((pairs >> np.uint64(24)) & np.uint64(0xFF)).astype(np.int64)
    second = ((pairs >> np.uint64(48)) & np.uint64(0xFF)).astype(np.int64)
    if not ((hour <= 23) & (minute <= 59) & (second <= 59)).all():
        return None
    day = first // DAY_MS * DAY_MS
    out: Ints = (
        np.repeat(day, np.diff(np.append(runs, len(at))))
        + ((hour * 60 + minute) * 60 + second) * 1000
    )
    return out


def thousandths(buf: Chars, end: Ints, width: Ints) -> Floats | None:
    """Decimal-comma quantities of `width` characters ending at `end` (each at least
    NUMBER_CHARS bytes into `buf`), in thousandths (NaN where empty): digits with at most
    one comma and one to three decimals after it, as the CSV reader takes them; None if
    one is anything else."""
    if (width > NUMBER_CHARS).any():
        return None
    if (width > 8).any():
        return _thousandths_long(buf, end, width)
    top = _TOP[width]
    word = (words(buf, end - 8) & top) | (_ZEROS & ~top)  # leading zeros: the same number
    flip = word ^ _COMMAS
    comma = ~(((flip & _LOW7) + _LOW7) | flip | _LOW7)  # the top bit of each comma byte
    commas = np.bitwise_count(comma)
    at = (np.bitwise_count(comma - np.uint64(1)) >> np.uint64(3)).astype(np.int64)
    decimals = np.where(commas > 0, 7 - at, 0)
    digits = word + (comma >> np.uint64(7)) * np.uint64(4)  # the comma as a zero
    if not (
        (commas <= 1).all()
        and ((commas == 0) | ((decimals >= 1) & (decimals <= 3) & (at > 8 - width))).all()
        and ((digits & _HIGH_NIBBLES) == _ZEROS).all()
        and ((((digits & _LOW_NIBBLES) + _SIXES) & _HIGH_NIBBLES) == 0).all()
    ):
        return None
    d = digits & _LOW_NIBBLES
    d = (d * np.uint64(10) + (d >> np.uint64(8))) & np.uint64(0x00FF_00FF_00FF_00FF)
    d = (d * np.uint64(100) + (d >> np.uint64(16))) & np.uint64(0x0000_FFFF_0000_FFFF)
    d = (d * np.uint64(10_000) + (d >> np.uint64(32))) & np.uint64(0xFFFF_FFFF)
    return _split(d.astype(np.int64), decimals, width)


def _thousandths_long(buf: Chars, end: Ints, width: Ints) -> Floats | None:
    """`thousandths` for fields of up to NUMBER_CHARS characters, a byte at a time."""
    chars = windows(buf, end - NUMBER_CHARS, NUMBER_CHARS)
    inside = np.arange(NUMBER_CHARS) >= (NUMBER_CHARS - width)[:, None]
    digits = chars - np.uint8(_ZERO)  # other bytes wrap to 10 and above
    is_digit = (digits <= 9) & inside
    comma = (chars == _COMMA) & inside
    last = NUMBER_CHARS - 1
    if not (
        ((is_digit | comma) == inside).all()
        and (comma.sum(axis=1) <= 1).all()
        and not comma[:, : last - 3].any()
        and not comma[:, last].any()
        and not (comma[:, last - 3 : last] & ~is_digit[:, last - 4 : last - 1]).any()
    ):
        return None
    whole = (np.where(is_digit, digits, 0).astype(np.float64) @ _PLACES).astype(np.int64)
    decimals = np.where(comma.any(axis=1), last - comma.argmax(axis=1), 0)
    return _split(whole, decimals, width)


def _split(whole: Ints, decimals: Ints, width: Ints) -> Floats:
    """Thousandths from the digits read as one integer with the comma as a zero digit."""
    below = _POW10[decimals]
    milli = np.where(
        decimals > 0, whole // (below * 10) * 1000 + whole % below * _POW10[3 - decimals],
        whole * 1000,
    )  # fmt: skip
    out: Floats = milli.astype(np.float64)
    out[width == 0] = np.nan
    return out
