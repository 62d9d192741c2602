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
