"""Turn raw 16-bit register words into numbers in canonical units, and back (for simulators)."""

from __future__ import annotations

import dataclasses
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.meter_maps import UNITS, WORDS, MeterMap, RegisterField

_STRUCT = {
    "u16": "H",
    "i16": "h",
    "u32": "I",
    "i32": "i",
    "u64": "Q",
    "i64": "q",
    "f32": "f",
    "f64": "d",
}


def _ordered(words: list[int], word_order: str, byte_order: str) -> bytes:
    if word_order == "little":
        words = words[::-1]
    raw = b"".join(w.to_bytes(2, "big") for w in words)
    if byte_order == "little":
        raw = b"".join(raw[i + 1 : i + 2] + raw[i : i + 1] for i in range(0, len(raw), 2))
    return raw


def raw_value(
    words: list[int], data_type: str, word_order: str = "big", byte_order: str = "big"
) -> float:
    """The number the meter stored in these words, before scaling."""
    if len(words) != WORDS[data_type]:
        raise ValueError(f"{data_type} needs {WORDS[data_type]} words, got {len(words)}")
    (value,) = struct.unpack(">" + _STRUCT[data_type], _ordered(words, word_order, byte_order))
    return float(value)


def encode_raw(
    value: float, data_type: str, word_order: str = "big", byte_order: str = "big"
) -> list[int]:
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


def field_value(
    meter: MeterMap, fld: RegisterField, words: list[int], exponent: int | None = None
) -> float:
    raw = raw_value(
        words, fld.type, fld.word_order or meter.word_order, fld.byte_order or meter.byte_order
    )
    value = raw * factor(fld)
    if exponent is not None:
        value *= 10.0**exponent
    return value


# Physical bounds in canonical units; a value outside is a garbage read, not a measurement.
_BOUNDS: dict[str, tuple[float, float]] = {
    "power_factor": (-1.05, 1.05),
    "frequency_hz": (0.0, 100.0),
}
_BOUND_SUFFIX: dict[str, tuple[float, float]] = {
    "_v": (0.0, 1.0e6),
    "_a": (-1.0e6, 1.0e6),
    "_kwh": (-1.0e12, 1.0e12),
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
        (b for suffix, b in _BOUND_SUFFIX.items() if name.endswith(suffix)), (-1.0e12, 1.0e12)
    )


_TEN = tuple(10.0**k for k in range(40))


def _power_of_ten(step: float) -> int | None:
    power = math.log10(step)
    return round(power) if abs(power - round(power)) < 1e-9 else None


@dataclass(frozen=True, slots=True)
class Field:
    """One quantity's decoding, worked out once: where its words are and how to read them."""

    name: str
    function: str
    address: int
    words: int
    factor: float
    power: int | None  # factor == 10**power, when it is a power of ten
    scale_register: int | None
    low: float
    high: float
    little_words: bool
    little_bytes: bool
    pack: struct.Struct
    unpack: struct.Struct
    missing: frozenset[int]  # raw numbers, as unpacked, that mean "no reading"
    # scale-register word -> power of ten, for the words that are a scale; a lookup is cheaper
    # on the hot path than decoding the word and testing it against markers and a range
    exponents: Mapping[int, int] = dataclasses.field(compare=False)

    def raw(self, words: list[int] | tuple[int, ...]) -> int | float:
        if self.little_words:
            words = words[::-1]
        if self.little_bytes:
            words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
        number: int | float = self.unpack.unpack(self.pack.pack(*words))[0]
        return number

    def scaled(self, raw: int | float, exponent: int = 0) -> float:
        """raw x factor x 10**exponent; dividing by an exact power of ten keeps a scaled
        integer exact in decimal (2301 x 0.1 reads 230.1, not 230.10000000000002)."""
        if self.power is None:
            return raw * self.factor * 10.0**exponent
        power = self.power + exponent
        if -40 < power < 0:
            return raw / _TEN[-power]
        if 0 <= power < 40:
            return raw * _TEN[power]
        return raw * 10.0**power

    def accept(self, value: float) -> bool:
        return math.isfinite(value) and abs(value) < 1.0e15 and self.low <= value <= self.high


def _as_unpacked(marker: int, data_type: str) -> int:
    """A marker as struct unpacks its words: signed types read their top bit as the sign."""
    bits = 16 * WORDS[data_type]
    return marker - (1 << bits) if data_type.startswith("i") and marker >> (bits - 1) else marker


def compile_fields(meter: MeterMap, names: list[str]) -> list[Field]:
    """Decoding recipes for these quantities of a meter (the reader's hot path)."""
    out = []
    exponents = _exponents(frozenset(meter.scale_markers()))
    for name in names:
        fld = meter.quantities[name]
        low, high = bounds(name)
        missing = frozenset(_as_unpacked(m, fld.type) for m in meter.markers(name))
        out.append(
            Field(
                name,
                meter.field_function(name),
                fld.address,
                fld.words,
                factor(fld),
                _power_of_ten(factor(fld)),
                fld.scale_register,
                low,
                high,
                (fld.word_order or meter.word_order) == "little",
                (fld.byte_order or meter.byte_order) == "little",
                struct.Struct(f">{fld.words}H"),
                struct.Struct(">" + _STRUCT[fld.type]),
                missing,
                exponents,
            )
        )
    return out


# Real scale factors are small powers of ten; a word far outside is garbage, and a power
# beyond about +-308 would overflow the float arithmetic or silently read 0.
MAX_EXPONENT = 20


def _exponents(markers: frozenset[int]) -> dict[int, int]:
    """Scale-factor word -> its i16 exponent, for every word that is a real scale, not a marker."""
    words = {exponent & 0xFFFF: exponent for exponent in range(-MAX_EXPONENT, MAX_EXPONENT + 1)}
    return {word: exponent for word, exponent in words.items() if word not in markers}


def decode_fields(
    fields: list[Field], words: dict[str, dict[int, int]]
) -> tuple[dict[str, float], list[str]]:
    """(plausible values, names of implausible or unavailable ones) from the registers read,
    by function."""
    values: dict[str, float] = {}
    invalid: list[str] = []
    for f in fields:
        regs = words[f.function]
        raw = f.raw([regs[a] for a in range(f.address, f.address + f.words)])
        if raw in f.missing:
            invalid.append(f.name)
            continue
        exponent = 0 if f.scale_register is None else f.exponents.get(regs[f.scale_register])
        value = math.nan if exponent is None else f.scaled(raw, exponent)
        if f.accept(value):
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
    direct: struct.Struct | None  # unpacks the raw number straight from the block's bytes
    swapped: struct.Struct | None  # two words, low word first: (low, high) as integers
    scale: tuple[int, int] | None  # (block, offset) of its scale-factor register
    mul: float  # raw x mul / div applies the fixed factor exactly (one of them is 1)
    div: float


def _fixed(f: Field) -> tuple[float, float]:
    if f.power is None:
        return f.factor, 1.0
    return (_TEN[f.power], 1.0) if f.power >= 0 else (1.0, _TEN[-f.power])


def _direct(f: Field, data_type: str) -> struct.Struct | None:
    if f.words == 1:  # word order means nothing for one word
        return struct.Struct(("<" if f.little_bytes else ">") + _STRUCT[data_type])
    if not f.little_words and not f.little_bytes:
        return struct.Struct(">" + _STRUCT[data_type])
    return None


def _swapped(f: Field, data_type: str) -> struct.Struct | None:
    if f.words == 2 and f.little_words and not f.little_bytes and data_type in ("u32", "i32"):
        return struct.Struct(">H" + ("h" if data_type == "i32" else "H"))
    return None


def place_fields(
    meter: MeterMap, names: list[str], blocks: Sequence[tuple[str, int, int]]
) -> list[Placed] | None:
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
        data_type = meter.quantities[f.name].type
        out.append(
            Placed(
                f, at[0], at[1], _direct(f, data_type), _swapped(f, data_type), scale, *_fixed(f)
            )
        )
    return out


_SF = struct.Struct(">H")


def decode_placed(fields: list[Placed], buffers: list[bytes]) -> tuple[dict[str, float], list[str]]:
    """decode_fields for a round that read exactly its plan: unpacks straight from bytes.

    The reader's hot path, so it inlines Field.scaled and Field.accept; the bounds are finite,
    so the range test also turns away NaN and infinity.
    """
    values: dict[str, float] = {}
    invalid: list[str] = []
    for p in fields:
        f = p.field
        buf = buffers[p.block]
        if p.direct is not None:
            raw = p.direct.unpack_from(buf, p.offset)[0]
        elif p.swapped is not None:
            low, high = p.swapped.unpack_from(buf, p.offset)
            raw = high * 65536 + low
        else:
            raw = f.raw(f.pack.unpack_from(buf, p.offset))
        if f.missing and raw in f.missing:
            invalid.append(f.name)
            continue
        if p.scale is None:
            value = raw * p.mul / p.div
        else:
            exponent = f.exponents.get(_SF.unpack_from(buffers[p.scale[0]], p.scale[1])[0])
            if exponent is None:
                value = math.nan
            elif f.power is not None and -40 < f.power + exponent < 40:
                power = f.power + exponent
                value = raw / _TEN[-power] if power < 0 else raw * _TEN[power]
            else:
                value = f.scaled(raw, exponent)
        if f.low <= value <= f.high:
            values[f.name] = value
        else:
            invalid.append(f.name)
    return values, invalid
