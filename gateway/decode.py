"""Turn raw 16-bit register words into numbers in canonical units, and back (for simulators)."""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

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
    lo, hi = bounds(name)
    return lo <= value <= hi


def bounds(name: str) -> tuple[float, float]:
    """The plausible range of a quantity in its canonical unit."""
    if name.startswith("power_factor"):
        return _BOUNDS["power_factor"]
    return _BOUNDS.get(name) or next(
        (b for suffix, b in _BOUND_SUFFIX.items() if name.endswith(suffix)), (-1.0e12, 1.0e12))


@dataclass(frozen=True, slots=True)
class Field:
    """One quantity's decoding, worked out once: where its words are and how to read them."""

    name: str
    function: str
    address: int
    words: int
    factor: float
    scale_register: int | None
    low: float
    high: float
    little_words: bool
    little_bytes: bool
    pack: struct.Struct
    unpack: struct.Struct
    digits: int | None  # decimals of an integer register's resolution (a power of ten)

    def value(self, words: list[int]) -> float:
        if self.little_words:
            words = words[::-1]
        if self.little_bytes:
            words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
        return float(self.unpack.unpack(self.pack.pack(*words))[0]) * self.factor


def _digits(data_type: str, step: float) -> int | None:
    """Decimals that print a scaled integer exactly: 0.1 V steps give 230.1, not 230.10000001."""
    if data_type.startswith("f"):
        return None
    power = math.log10(step)
    return -round(power) if abs(power - round(power)) < 1e-9 else None


def _rounded(f: Field, value: float, exponent: int = 0) -> float:
    return value if f.digits is None else round(value, f.digits - exponent)


def compile_fields(meter: MeterMap, names: list[str]) -> list[Field]:
    """Decoding recipes for these quantities of a meter (the reader's hot path)."""
    out = []
    for name in names:
        fld = meter.quantities[name]
        low, high = bounds(name)
        out.append(Field(
            name, meter.field_function(name), fld.address, fld.words, factor(fld),
            fld.scale_register, low, high, (fld.word_order or meter.word_order) == "little",
            (fld.byte_order or meter.byte_order) == "little",
            struct.Struct(f">{fld.words}H"), struct.Struct(">" + _STRUCT[fld.type]),
            _digits(fld.type, factor(fld))))
    return out


def decode_fields(fields: list[Field], words: dict[str, dict[int, int]]
                  ) -> tuple[dict[str, float], list[str]]:
    """(plausible values, names of implausible ones) from the registers read, by function."""
    values: dict[str, float] = {}
    invalid: list[str] = []
    for f in fields:
        regs = words[f.function]
        value = f.value([regs[a] for a in range(f.address, f.address + f.words)])
        if f.scale_register is not None:
            sf = regs[f.scale_register]
            if sf == 0x8000:  # SunSpec "not implemented"
                invalid.append(f.name)
                continue
            exponent = sf - 0x10000 if sf & 0x8000 else sf
            value = _rounded(f, value * 10.0**exponent, exponent)
        else:
            value = _rounded(f, value)
        if math.isfinite(value) and abs(value) < 1.0e15 and f.low <= value <= f.high:
            values[f.name] = value
        else:
            invalid.append(f.name)
    return values, invalid


@dataclass(frozen=True, slots=True)
class Placed:
    """A quantity located in a plan: which block's bytes hold it, and at what offset."""

    field: Field
    block: int
    offset: int  # bytes into the block
    direct: struct.Struct | None  # one unpack straight from the block's bytes, if possible
    scale: tuple[int, int] | None  # (block, offset) of its scale-factor register


def _direct(f: Field, data_type: str) -> struct.Struct | None:
    if f.words == 1:  # word order means nothing for one word
        return struct.Struct(("<" if f.little_bytes else ">") + _STRUCT[data_type])
    if not f.little_words and not f.little_bytes:
        return struct.Struct(">" + _STRUCT[data_type])
    return None


def place_fields(meter: MeterMap, names: list[str],
                 blocks: Sequence[tuple[str, int, int]]) -> list[Placed] | None:
    """Locate each quantity in the (function, start, count) blocks of a plan; None if one
    is missing."""

    def where(function: str, address: int, words: int) -> tuple[int, int] | None:
        for index, (fn, start, count) in enumerate(blocks):
            if fn == function and start <= address and address + words <= start + count:
                return index, 2 * (address - start)
        return None

    out = []
    for f in compile_fields(meter, names):
        at = where(f.function, f.address, f.words)
        scale = None if f.scale_register is None else where(f.function, f.scale_register, 1)
        if at is None or (f.scale_register is not None and scale is None):
            return None
        out.append(Placed(f, at[0], at[1], _direct(f, meter.quantities[f.name].type), scale))
    return out


_I16 = struct.Struct(">h")


def decode_placed(fields: list[Placed], buffers: list[bytes]
                  ) -> tuple[dict[str, float], list[str]]:
    """decode_fields for a round that read exactly its plan: unpacks straight from bytes."""
    values: dict[str, float] = {}
    invalid: list[str] = []
    for p in fields:
        f = p.field
        buf = buffers[p.block]
        if p.direct is not None:
            value = p.direct.unpack_from(buf, p.offset)[0] * f.factor
        else:
            value = f.value(list(f.pack.unpack_from(buf, p.offset)))
        if p.scale is not None:
            exponent = _I16.unpack_from(buffers[p.scale[0]], p.scale[1])[0]
            if exponent == -0x8000:  # SunSpec "not implemented"
                invalid.append(f.name)
                continue
            value = _rounded(f, value * 10.0**exponent, exponent)
        elif f.digits is not None:
            value = round(value, f.digits)
        if math.isfinite(value) and abs(value) < 1.0e15 and f.low <= value <= f.high:
            values[f.name] = value
        else:
            invalid.append(f.name)
    return values, invalid
