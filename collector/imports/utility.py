"""A utility's metering-point data, whatever file it came in: validated per point into the
interval energy the store takes, with what a dry run reports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from collector.store.history import RESOLUTIONS, EnergyHistory
from sparwatt.errors import ConfigError
from sparwatt.timeutil import DAY_MS

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
GSRN_DIGITS = 18
MAX_KWH_PER_HOUR = 1_000_000.0  # 1 GW for an hour: a number beyond any company connection
MAX_MINUTES = np.iinfo(np.int16).max  # interval lengths are kept in minutes as int16
_DIGIT, _DASH, _SPACE, _COLON, _T = 48, 45, 32, 58, 84


@dataclass(frozen=True)
class PointSeries:
    """One metering point of a file: its energy and where its rows were."""

    gsrn: str
    history: EnergyHistory
    first_line: int
    gaps: int  # intervals missing between the first and the last


@dataclass(frozen=True)
class UtilityFile:
    path: str
    format: str
    points: list[PointSeries]
    rows: int
    empty_rows: int  # rows without a quantity (DataHub has no value for them)

    @property
    def values(self) -> int:
        return sum(len(p.history.start_ms) for p in self.points)


def fail(path: str, line: int | None, reason: str) -> ConfigError:
    return ConfigError([f"{path}:{line}: {reason}" if line else f"{path}: {reason}"])


def minutes(length_ms: Ints) -> npt.NDArray[np.int16]:
    """Interval lengths (Til_dato - Fra_dato, local wall-clock ms) in whole minutes."""
    out: npt.NDArray[np.int16] = np.clip(length_ms // 60_000, -MAX_MINUTES, MAX_MINUTES).astype(
        np.int16
    )
    return out


def _char_matrix(text: npt.NDArray[np.object_]) -> npt.NDArray[np.int16]:
    """Strings as an (n, 19) matrix of character codes, zero-padded; codes above 255 as 255."""
    n = len(text)
    try:
        joined = "".join(text)
    except TypeError:  # a missing value among them
        joined = ""
    width = len(joined) // n if n else 19
    if n and width in (16, 19) and len(joined) == n * width and joined.isascii():
        chars = np.frombuffer(joined.encode("ascii"), np.uint8).reshape(n, width)
    else:
        wide = np.array([t if isinstance(t, str) else "" for t in text], dtype="U19")
        chars = np.minimum(wide.view(np.uint32).reshape(n, 19), 255).astype(np.uint8)
    out = np.zeros((n, 19), dtype=np.int16)
    out[:, : chars.shape[1]] = chars
    return out


def parse_local_times(text: npt.NDArray[np.object_]) -> tuple[Ints, Bools]:
    """'DD-MM-YYYY HH:MM[:SS]' or 'YYYY-MM-DD[ T]HH:MM[:SS]' as ms since 1970-01-01 local
    midnight; the second array marks strings that are not such a time."""
    chars = _char_matrix(text)
    digit = chars - _DIGIT
    day_first = chars[:, 2] == _DASH
    # column positions of day, month and year digits in each layout
    layout = np.where(
        day_first[:, None], np.array([0, 1, 3, 4, 6, 7, 8, 9]), np.array([8, 9, 5, 6, 0, 1, 2, 3])
    ) if not day_first.all() else np.array([0, 1, 3, 4, 6, 7, 8, 9])[None, :]  # fmt: skip
    date = np.take_along_axis(digit, np.broadcast_to(layout, (len(text), 8)), axis=1)
    has_seconds = chars[:, 16] == _COLON
    clock = digit[:, [11, 12, 14, 15, 17, 18]] * np.where(
        has_seconds[:, None], 1, [1, 1, 1, 1, 0, 0]
    )
    day = date[:, 0] * 10 + date[:, 1]
    month = date[:, 2] * 10 + date[:, 3]
    year = date[:, 4].astype(np.int64) * 1000 + date[:, 5] * 100 + date[:, 6] * 10 + date[:, 7]
    hour = clock[:, 0] * 10 + clock[:, 1]
    minute = clock[:, 2] * 10 + clock[:, 3]
    second = clock[:, 4] * 10 + clock[:, 5]
    seps = np.where(
        day_first,
        (chars[:, 5] == _DASH),
        (chars[:, 4] == _DASH) & (chars[:, 7] == _DASH),
    )
    ok = (
        ((date >= 0) & (date <= 9)).all(axis=1)
        & ((clock >= 0) & (clock <= 9)).all(axis=1)
        & seps
        & ((chars[:, 10] == _SPACE) | (chars[:, 10] == _T))
        & (chars[:, 13] == _COLON)
        & (has_seconds | (chars[:, 16] == 0))
        & (month >= 1)
        & (month <= 12)
        & (day >= 1)
        & (hour <= 23)
        & (minute <= 59)
        & (second <= 59)
    )
    month_index = np.where(ok, (year - 1970) * 12 + month - 1, 0)
    first_day = month_index.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    next_first = (month_index + 1).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    ok &= day <= next_first - first_day
    days = first_day + day - 1
    naive = days * DAY_MS + ((hour * 60 + minute) * 60 + second).astype(np.int64) * 1000
    return np.where(ok, naive, 0), ~ok


def point_series(
    path: str,
    gsrn: str,
    starts: Ints,
    kwh: Floats,
    estimated: Bools,
    lines: Ints,
    resolution_ms: int,
    places: Callable[[int], str] | None = None,
) -> PointSeries:
    """One point's rows (any order) checked and sorted: on its grid, once each, in range.
    `lines` are the rows' lines in the file, or with `places` what it names a row by."""

    def fault(i: int, reason: str) -> ConfigError:
        if places is None:
            return fail(path, int(lines[i]), reason)
        return fail(path, None, f"{places(int(lines[i]))}: {reason}")

    def named(i: int) -> str:
        return f"line {int(lines[i])}" if places is None else places(int(lines[i]))

    if not (len(gsrn) == GSRN_DIGITS and gsrn.isdigit()):
        raise fault(0, f"metering point id {gsrn!r} is not 18 digits (GSRN)")
    if resolution_ms not in RESOLUTIONS:
        raise fault(0, f"metering point {gsrn}: intervals of {resolution_ms / 60_000:g} minutes; "
                    "only 15-minute and hourly data are taken")  # fmt: skip
    if len(starts) > 1 and not (np.diff(starts) > 0).all():  # in order already: no copies
        order = np.argsort(starts, kind="stable")
        starts, kwh, estimated, lines = starts[order], kwh[order], estimated[order], lines[order]
    off_grid = np.flatnonzero(starts % resolution_ms)
    if len(off_grid):
        i = int(off_grid[0])
        raise fault(i, f"metering point {gsrn}: interval does not start on the "
                    f"{resolution_ms // 60_000}-minute grid")  # fmt: skip
    twice = np.flatnonzero(np.diff(starts) == 0)
    if len(twice):
        i = int(twice[0])
        raise fault(i + 1, f"metering point {gsrn}: the same interval as {named(i)}")
    # NaN compares false both ways: it is not a plausible energy either
    bad = np.flatnonzero(~((kwh >= 0) & (kwh <= MAX_KWH_PER_HOUR * resolution_ms / 3_600_000)))
    if len(bad):
        i = int(bad[0])
        raise fault(i, f"metering point {gsrn}: quantity {kwh[i]:g} kWh is not a plausible "
                    "interval energy")  # fmt: skip
    span = (int(starts[-1]) - int(starts[0])) // resolution_ms + 1 if len(starts) else 0
    return PointSeries(
        gsrn,
        EnergyHistory(starts, kwh, estimated, resolution_ms),
        int(lines.min()) if len(lines) else 0,
        span - len(starts),
    )
