"""Turn raw 16-bit register words into numbers in canonical units, and back (for simulators)."""

from __future__ import annotations

import math
import struct

from gateway.meter_maps import UNITS, WORDS, MeterMap, RegisterField

_STRUCT = {"u16": "H", "i16": "h", "u32": "I", "i32": "i", "u64": "Q", "i64": "q",
           "f32": "f", "f64": "d"}


def _ordered(words: list[int], word_order: str, byte_order: str) -> bytes:
    if word_order == "little":
        words = words[::-1]
    raw = b"".join(w.to_bytes(2, "big") for w in words)
    if byte_order == "little":
        raw = b"".join(raw[i + 1 : i + 2] + raw[i : i + 1] for i in range(0, len(raw), 2))
    return raw


def raw_value(words: list[int], data_type: str, word_order: str = "big",
              byte_order: str = "big") -> float:
    """The number the meter stored in these words, before scaling."""
    if len(words) != WORDS[data_type]:
        raise ValueError(f"{data_type} needs {WORDS[data_type]} words, got {len(words)}")
    (value,) = struct.unpack(">" + _STRUCT[data_type], _ordered(words, word_order, byte_order))
    return float(value)


def encode_raw(value: float, data_type: str, word_order: str = "big",
               byte_order: str = "big") -> list[int]:
    """Inverse of raw_value: the words a meter would hold for this raw number."""
    code = _STRUCT[data_type]
    packed = struct.pack(">" + code, value if code in "fd" else round(value))
    words = [int.from_bytes(packed[i : i + 2], "big") for i in range(0, len(packed), 2)]
    if byte_order == "little":
        words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    return words[::-1] if word_order == "little" else words


def factor(fld: RegisterField) -> float:
    """Fixed multiplier from raw number to the canonical unit."""
    return fld.scale * UNITS[fld.unit][1]


def field_value(meter: MeterMap, fld: RegisterField, words: list[int],
                exponent: int | None = None) -> float:
    raw = raw_value(words, fld.type, fld.word_order or meter.word_order,
                    fld.byte_order or meter.byte_order)
    value = raw * factor(fld)
    if exponent is not None:
        value *= 10.0 ** exponent
    return value


# Physical bounds in canonical units; a value outside is a garbage read, not a measurement.
_BOUNDS: dict[str, tuple[float, float]] = {
    "power_factor": (-1.05, 1.05), "frequency_hz": (0.0, 100.0),
}
_BOUND_SUFFIX: dict[str, tuple[float, float]] = {
    "_v": (0.0, 1.0e6), "_a": (-1.0e6, 1.0e6), "_kwh": (-1.0e12, 1.0e12),
    "_kvarh": (-1.0e12, 1.0e12),
}


def plausible(name: str, value: float) -> bool:
    """NaN, infinity, sentinels and physically impossible values never leave the gateway."""
    if not math.isfinite(value) or abs(value) >= 1.0e15:
        return False
    lo, hi = _BOUNDS.get(name) or next(
        (b for suffix, b in _BOUND_SUFFIX.items() if name.endswith(suffix)), (-1.0e12, 1.0e12))
    if name.startswith("power_factor"):
        lo, hi = _BOUNDS["power_factor"]
    return lo <= value <= hi
