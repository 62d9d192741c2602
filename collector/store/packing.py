"""Pack the values of one meter reading into a few bytes each, exactly and reversibly.

A reading's values are stored as one blob: each value in the narrowest form that gives the
same float64 back. Meters that speak IEEE float32 (Eastron, Janitza, Schneider) fit in
4 bytes a value; meters that send scaled integers (Carlo Gavazzi's V x 10, ABB's 0.01 kWh)
give decimal values that fit a scaled int32; anything else keeps its 8 bytes. The layout (which
quantity in which form) is the same reading after reading, so it is stored once and named by a
small id in each row.

Codes: "f" float32, "d" float64, "0".."6" int32 scaled by 10**-k.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

FLOAT32_MAX = 3.4e38
_SCALES = tuple(10.0**k for k in range(7))
_INT32 = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Layout:
    """Which quantities a blob holds, in order, and the form of each."""

    quantities: tuple[str, ...]
    codes: str

    @property
    def fmt(self) -> struct.Struct:
        return _struct(self.codes)

    def key(self) -> str:
        """The layout as one text, unique per layout (stored in the `layout` table)."""
        return ",".join(f"{q}:{c}" for q, c in zip(self.quantities, self.codes, strict=True))

    @staticmethod
    def from_key(key: str) -> Layout:
        pairs = [item.rpartition(":") for item in key.split(",")]
        return Layout(tuple(q for q, _, _ in pairs), "".join(c for _, _, c in pairs))


@lru_cache(maxsize=1024)
def _struct(codes: str) -> struct.Struct:
    return struct.Struct(
        "<" + "".join("d" if c == "d" else "f" if c == "f" else "i" for c in codes)
    )


@lru_cache(maxsize=64)
def float32_struct(n: int) -> struct.Struct:
    """The format of `n` float32 values."""
    return _all_float32(n)


@lru_cache(maxsize=64)
def _all_float32(n: int) -> struct.Struct:
    return struct.Struct(f"<{n}f")


def _code_of(value: float) -> str:
    """The narrowest exact form of one value."""
    if abs(value) <= FLOAT32_MAX and struct.unpack("<f", struct.pack("<f", value))[0] == value:
        return "f"
    if abs(value) > _INT32:
        return "d"
    for k, scale in enumerate(_SCALES):
        scaled = round(value * scale)
        if abs(scaled) <= _INT32 and scaled / scale == value:
            return str(k)
    return "d"


def pack(values: Mapping[str, float]) -> tuple[Layout, bytes]:
    """The layout and blob of one reading's values (in the mapping's order)."""
    names = tuple(values)
    numbers = tuple(values.values())
    whole = _all_float32(len(numbers))
    try:
        blob = whole.pack(*numbers)
    except (OverflowError, struct.error):
        blob = b""
    # the common case, all float32, costs two C calls and no per-value Python work
    if blob and whole.unpack(blob) == numbers:
        return Layout(names, "f" * len(numbers)), blob
    codes = "".join(_code_of(v) for v in numbers)
    stored = [
        v if c in "fd" else round(v * _SCALES[int(c)]) for v, c in zip(numbers, codes, strict=True)
    ]
    return Layout(names, codes), _struct(codes).pack(*stored)


def unpack(layout: Layout, blob: bytes) -> dict[str, float]:
    """The values a blob holds, by quantity."""
    raw = layout.fmt.unpack(blob)
    if layout.codes.count("f") == len(layout.codes):
        return dict(zip(layout.quantities, raw, strict=True))
    return {
        q: (float(v) if c in "fd" else v / _SCALES[int(c)])
        for q, c, v in zip(layout.quantities, layout.codes, raw, strict=True)
    }


def merge(
    first: tuple[Layout, bytes], second: Mapping[str, float]
) -> tuple[tuple[Layout, bytes] | None, int]:
    """Add the quantities of `second` that `first` lacks (the stored value wins, as for any
    redelivered reading). Returns the new packing, or None if nothing was added, and how many
    values were added."""
    kept = unpack(*first)
    added = {q: v for q, v in second.items() if q not in kept}
    if not added:
        return None, 0
    return pack({**kept, **added}), len(added)


def values_of(layout: Layout, blob: bytes, quantities: Sequence[str]) -> list[float | None]:
    """The listed quantities of one blob, None where it has none."""
    values = unpack(layout, blob)
    return [values.get(q) for q in quantities]


class ReadingMatrix(NamedTuple):
    """Many readings of one meter at once: times, the quantities, and a row of values per
    reading (NaN where a reading lacks a quantity), each value as `unpack` gives it."""

    ts: npt.NDArray[np.int64]
    quantities: tuple[str, ...]
    values: npt.NDArray[np.float64]


def matrix(rows: Sequence[tuple[int, int, bytes]], layouts: Mapping[int, Layout]) -> ReadingMatrix:
    """(ts, layout id, blob) rows, oldest first, decoded a layout at a time: one numpy view
    over the blobs of each layout instead of a Python call per reading and per value."""
    ts = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    ids = np.fromiter((row[1] for row in rows), dtype=np.int64, count=len(rows))
    used = list(dict.fromkeys(ids.tolist()))  # in order of first use
    names: dict[str, int] = {}
    for layout_id in used:
        for q in layouts[layout_id].quantities:
            names.setdefault(q, len(names))
    values = np.full((len(rows), len(names)), np.nan)
    for layout_id in used:
        layout = layouts[layout_id]
        # a meter's readings nearly always share one layout: then every row, no index
        index: slice | npt.NDArray[np.intp] = slice(None)
        blobs = [row[2] for row in rows]
        if len(used) > 1:
            index = np.flatnonzero(ids == layout_id)
            blobs = [blobs[i] for i in index.tolist()]
        raw = np.frombuffer(b"".join(blobs), dtype=_dtype(layout.codes))
        for field, (q, code) in enumerate(zip(layout.quantities, layout.codes, strict=True)):
            decoded = raw[f"v{field}"].astype(np.float64)
            if code not in "fd":  # the same division `unpack` does, value by value
                decoded = decoded / _SCALES[int(code)]
            values[index, names[q]] = decoded
    return ReadingMatrix(ts, tuple(names), values)


@lru_cache(maxsize=256)
def _dtype(codes: str) -> np.dtype[np.void]:
    """The blob layout as a numpy record: little-endian, packed like the struct format."""
    kinds = {"f": "<f4", "d": "<f8"}
    return np.dtype([(f"v{i}", kinds.get(c, "<i4")) for i, c in enumerate(codes)])
