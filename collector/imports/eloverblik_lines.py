"""Eloverblik export lines of the usual shape read straight from their bytes.

A general CSV reader makes a Python string of every date and word, which costs more than
everything else an import does to a value. The export's lines have one shape: an 18-digit
GSRN, two DD-MM-YYYY HH:MM[:SS] times, a decimal-comma quantity and three words. Where
every line of a range has that shape, its columns are read here with array operations;
where one does not (quotes, blank lines, other layouts, words or numbers not known here),
`read` returns None and the general reader takes the range, so it alone decides what is
a fault and names it. What is read here is exactly what the general reader would give.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from collector.imports import ascii_fields as fields
from collector.imports.utility import minutes

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Chars = npt.NDArray[np.uint8]

BLOCK_BYTES = 4 << 20  # small enough that a block's arrays reuse memory, not map it anew
SEPARATORS = 6  # seven fields
_GSRN = 18
_WORDS = 32  # bytes of the unit and quality words (and their separators) taken here
_SHORTEST = _GSRN + SEPARATORS + 2 * 16 + 1  # bytes of a line of the usual shape, at least
_PAD = bytes(32)  # the windows of the last line may reach past its end
_SEMI, _NL, _CR, _QUOTE, _ZERO = b';\n\r"0'
_POW10 = 10 ** np.arange(_GSRN, dtype=np.int64)


@dataclass
class Parsed:
    """The rows of a file, or of a byte range of it, as columns."""

    gsrns: list[str]  # by code
    cols: dict[str, Any]  # code, fra (local wall-clock ms), kwh, est, line, span (minutes)
    lengths: dict[int, int]  # per point code, Til_dato - Fra_dato of its first row
    rows: int
    empty: int


def read(
    path: Path,
    start: int,
    end: int,
    units: Mapping[str, float],
    qualities: Mapping[str, int],
    chunk_rows: int,
) -> Parsed | None:
    """Lines in bytes [start, end) of the file (whole lines, after the header), numbered
    from 2 as if they followed the header; None when one of them is not of the usual
    shape. `units` maps a unit word to its kWh scale, `qualities` a quality word to 0
    (measured), 1 (estimated) or 2 (no value); `chunk_rows` is the general reader's
    chunk, whose first rows it checks Til_dato on."""
    if sys.byteorder != "little":  # the fields are read as little-endian words
        return None
    state = _State(_Words(units, qualities), chunk_rows, (end - start) // _SHORTEST + 1)
    for block in _blocks(path, start, end):
        if not state.add(block):
            return None
    return state.parsed()


def _blocks(path: Path, start: int, end: int) -> Iterator[bytes]:
    """The range in pieces of whole lines, each ending with a newline."""
    with path.open("rb") as handle:
        handle.seek(start)
        left, carry = end - start, b""
        while left > 0:
            piece = handle.read(min(BLOCK_BYTES, left))
            if not piece:
                break
            left -= len(piece)
            cut = piece.rfind(b"\n") + 1
            if cut == 0 and left > 0:
                carry += piece
                continue
            block, carry = carry + piece[:cut], piece[cut:]
            if block:
                yield block
        if carry:
            yield carry + b"\n"  # a last line without a line break


class _Words:
    """Unit and quality words, each distinct pair decoded once, as the general reader
    takes them (stripped, any case): the unit's kWh scale and the quality (0 measured,
    1 estimated, 2 no value)."""

    def __init__(self, units: Mapping[str, float], qualities: Mapping[str, int]) -> None:
        self.units, self.qualities = units, qualities
        self.known: dict[tuple[bytes, bytes], tuple[float, float] | None] = {}

    def value(self, unit: bytes, quality: bytes) -> tuple[float, float] | None:
        key = (unit, quality)
        if key not in self.known:
            try:
                scale = self.units.get(unit.decode("utf-8").strip().lower())
                code = self.qualities.get(quality.decode("utf-8").strip().lower())
            except UnicodeDecodeError:
                scale = code = None
            self.known[key] = None if scale is None or code is None else (scale, code)
        return self.known[key]


class _State:
    """What the blocks of one range have given so far, in columns of room enough for
    the most lines the range can hold (the pages of the room not used are never
    touched, so they cost no memory)."""

    def __init__(self, words: _Words, chunk_rows: int, room: int) -> None:
        self.words = words
        self.chunk_rows = chunk_rows
        self.codes: dict[int, int] = {}  # GSRN as a number -> code, in order of appearance
        self.chunks: dict[int, set[int]] = {}  # the general reader's chunks -> their GSRNs
        self.lengths: dict[int, int] = {}
        self.cols: dict[str, Any] = {
            "code": np.empty(room, np.int64),
            "fra": np.empty(room, np.int64),
            "kwh": np.empty(room, np.float64),
            "est": np.empty(room, np.bool_),
            "span": np.empty(room, np.int16),
        }
        self.rows = self.empty = 0

    def parsed(self) -> Parsed:
        # codes as the general reader hands them out: chunk by chunk of its rows, in
        # the order of the GSRNs (it sorts a chunk's categories)
        final: dict[int, int] = {}
        for chunk in sorted(self.chunks):
            for gsrn in sorted(self.chunks[chunk]):
                final.setdefault(gsrn, len(final))
        remap = np.array([final[g] for g in self.codes] or [0], dtype=np.int64)
        cols = {k: v[: self.rows] for k, v in self.cols.items()}
        cols["code"] = remap[cols["code"]]
        cols["line"] = np.arange(2, self.rows + 2, dtype=np.int64)
        lengths = {int(remap[code]): length for code, length in self.lengths.items()}
        gsrns = [f"{g:0{_GSRN}d}" for g in final]
        return Parsed(gsrns, cols, lengths, self.rows, self.empty)

    def add(self, data: bytes) -> bool:
        """Read one block of whole lines; False if a line is not of the usual shape."""
        if _QUOTE in data:  # quoted fields: the general reader's rules
            return False
        buf = np.frombuffer(data + _PAD, np.uint8)
        found = np.flatnonzero((buf == _SEMI) | (buf == _NL))
        n = len(found) // (SEPARATORS + 1)
        if len(found) != n * (SEPARATORS + 1):
            return False
        marks = found.reshape(n, SEPARATORS + 1)
        ends = marks[:, -1]
        # each group of seven marks is one line: six separators, then its newline
        if int(np.count_nonzero(buf[marks] == _NL)) != n or not (buf[ends] == _NL).all():
            return False
        starts = np.empty(n, np.int64)
        starts[0], starts[1:] = 0, ends[:-1] + 1
        if not (marks[:, 0] - starts == _GSRN).all():
            return False
        cr = buf[ends - 1] == _CR
        # a carriage return anywhere but before a newline ends a line for the general reader
        if int(np.count_nonzero(buf == _CR)) != int(np.count_nonzero(cr)):
            return False
        if not (marks[:, SEPARATORS - 1] < ends - cr).all():
            return False
        width = np.diff(marks[:, :SEPARATORS], axis=1) - 1  # of fields 1 to 5
        code = self._codes(buf, starts)
        fra = fields.local_ms(buf, marks[:, 0] + 1, width[:, 0])
        milli = fields.thousandths(buf, marks[:, 3], width[:, 2])
        words = self._words(buf, marks[:, 3] + 1, width[:, 3], width[:, 4])
        if code is None or fra is None or milli is None or words is None:
            return False
        til = fields.local_ms(buf, marks[:, 1] + 1, width[:, 1])
        if til is None:
            return False
        self._lengths(code, fra, til)
        scale, quality = words
        kwh = milli / 1000.0 * scale
        kwh[quality == 2] = np.nan
        self.empty += int(np.isnan(kwh).sum())
        rows = slice(self.rows, self.rows + n)
        for key, value in (
            ("code", code), ("fra", fra), ("kwh", kwh), ("est", quality == 1),
            ("span", minutes(til - fra)),
        ):  # fmt: skip
            self.cols[key][rows] = value
        self.rows += n
        return True

    def _codes(self, buf: Chars, starts: Ints) -> Ints | None:
        """Each line's point code, in the order the points appear (`parsed` puts them in
        the general reader's order)."""
        head = fields.windows(buf, starts, 24).view(np.uint64)
        head[:, 2] &= np.uint64(0xFFFF)  # the GSRN's last two digits, not what follows
        change = (head[1:] != head[:-1]).any(axis=1)
        runs = np.flatnonzero(np.concatenate(([True], change)))
        digits = fields.windows(buf, starts[runs], _GSRN).astype(np.int64) - _ZERO
        if not ((digits >= 0) & (digits <= 9)).all():
            return None
        numbers = (digits @ _POW10[::-1]).tolist()
        chunks = ((self.rows + runs) // self.chunk_rows).tolist()
        for chunk, gsrn in zip(chunks, numbers, strict=True):
            self.chunks.setdefault(chunk, set()).add(gsrn)
        run_codes = np.array(
            [self.codes.setdefault(g, len(self.codes)) for g in numbers], dtype=np.int64
        )
        return np.repeat(run_codes, np.diff(np.append(runs, len(starts))))

    def _words(
        self, buf: Chars, at: Ints, unit_width: Ints, quality_width: Ints
    ) -> tuple[Floats, Floats] | None:
        """Each line's unit (as its kWh scale) and quality (as 0/1/2), from `at`."""
        if (unit_width + quality_width + 2 > _WORDS).any():
            return None
        # lines whose next bytes are the same have the same words (each ends at a
        # separator); where only what follows them differs, they are looked up again
        window = fields.windows(buf, at, _WORDS)
        keys = window.view(np.uint64)
        change = (keys[1:] != keys[:-1]).any(axis=1)
        runs = np.flatnonzero(np.concatenate(([True], change)))
        values = []
        for r in runs.tolist():
            unit, rest = int(unit_width[r]), window[r].tobytes()
            found = self.words.value(rest[:unit], rest[unit + 1 : unit + 1 + quality_width[r]])
            if found is None:
                return None
            values.append(found)
        per_run = np.array(values, dtype=np.float64)
        lengths = np.diff(np.append(runs, len(at)))
        return np.repeat(per_run[:, 0], lengths), np.repeat(per_run[:, 1], lengths)

    def _lengths(self, code: Ints, fra: Ints, til: Ints) -> None:
        """Each point's interval length from its first row (where a point starts, and the
        first row of each of the general reader's chunks, as that reader takes it)."""
        first = -self.rows % self.chunk_rows
        chunk_starts = np.arange(first, len(code), self.chunk_rows)
        point_starts = np.flatnonzero(np.diff(code, prepend=-1))
        check = np.union1d(point_starts, chunk_starts)
        for i in check.tolist():
            self.lengths.setdefault(int(code[i]), int(til[i]) - int(fra[i]))
