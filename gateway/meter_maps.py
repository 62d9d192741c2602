"""The meter-map schema and the library of shipped meter models (gateway/meterlib/*.toml)."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sparwatt import configfile
from sparwatt.errors import ConfigError
from sparwatt.wire import QUANTITIES

DataType = Literal["u16", "i16", "u32", "i32", "u64", "i64", "f32", "f64"]
Order = Literal["big", "little"]
Function = Literal["input", "holding"]

WORDS: dict[str, int] = {
    "u16": 1,
    "i16": 1,
    "u32": 2,
    "i32": 2,
    "u64": 4,
    "i64": 4,
    "f32": 2,
    "f64": 4,
}

# Native unit -> (canonical unit, factor); a meter's unit must land on its quantity's unit.
UNITS: dict[str, tuple[str, float]] = {
    "V": ("V", 1.0),
    "kV": ("V", 1000.0),
    "A": ("A", 1.0),
    "mA": ("A", 0.001),
    "W": ("W", 1.0),
    "kW": ("W", 1000.0),
    "var": ("var", 1.0),
    "kvar": ("var", 1000.0),
    "VA": ("VA", 1.0),
    "kVA": ("VA", 1000.0),
    "Hz": ("Hz", 1.0),
    "Wh": ("kWh", 0.001),
    "kWh": ("kWh", 1.0),
    "MWh": ("kWh", 1000.0),
    "varh": ("kvarh", 0.001),
    "kvarh": ("kvarh", 1.0),
    "Mvarh": ("kvarh", 1000.0),
    "": ("", 1.0),
    "%": ("", 0.01),
}
REGISTER_BASES = {"input": (30001, 300001), "holding": (40001, 400001)}

# One 16-bit register as sent on the bus; strict, so TOML true or "0x10" is not taken for one.
Word = Annotated[int, Field(strict=True, ge=0, le=0xFFFF)]
# A value meaning "no reading", written as the unsigned number manuals print (8000h,
# 7FFFFFFFh) whatever the type's sign or the meter's word order.
Marker = Annotated[int, Field(strict=True)]


def _marker_problems(where: str, data_type: str, markers: list[int]) -> list[str]:
    if data_type in ("f32", "f64"):
        return [f"{where}: {data_type} registers take no markers (NaN is withheld anyway)"]
    bits = 16 * WORDS[data_type]
    out = []
    for index, marker in enumerate(markers):
        if marker < 0:
            out.append(
                f"{where}[{index}]: {marker} is negative; write the value its registers "
                f"hold, {marker & ((1 << bits) - 1):#x}"
            )
        elif marker >> bits:
            out.append(
                f"{where}[{index}]: {marker:#x} does not fit in {data_type} "
                f"({bits} bits, at most {(1 << bits) - 1:#x})"
            )
    return out


class RegisterField(BaseModel):
    """Where and how one quantity is stored in the meter."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    address: int = Field(ge=0, le=65535, description="0-based protocol address")
    register_no: int | None = Field(
        default=None, alias="register", description="the manual's 30001/40001-style number"
    )
    type: DataType
    unit: str
    scale: float = 1.0
    scale_register: int | None = Field(
        default=None, ge=0, le=65535, description="SunSpec-style i16 power-of-ten exponent"
    )
    function: Function | None = None
    word_order: Order | None = None
    byte_order: Order | None = None
    not_available: list[Marker] | None = Field(
        default=None, description="replaces the model's not_available list for this register"
    )

    @property
    def words(self) -> int:
        return WORDS[self.type]


class Identify(BaseModel):
    """A register whose value tells this model apart when scanning a bus."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    address: int = Field(ge=0, le=65535)
    function: Function = "holding"
    type: DataType = "u16"
    values: list[float] = Field(min_length=1)


class GoldenCase(BaseModel):
    """Register words taken from the manufacturer's document, and the reading they stand for."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    quantity: str
    words: list[Word] = Field(min_length=1, description="in bus order, lowest address first")
    scale_word: Word | None = Field(
        default=None, description="the word in the quantity's scale_register"
    )
    value: Annotated[float, Field(strict=True)] | None = Field(
        default=None, description="the reading in the quantity's canonical unit"
    )
    invalid: Annotated[bool, Field(strict=True)] = Field(
        default=False, description="the words mean the meter has no valid reading"
    )
    source: str = Field(min_length=10, description="document and section or example")

    @model_validator(mode="after")
    def _one_outcome(self) -> Self:
        if self.value is None and not self.invalid:
            raise ValueError("give the expected value, or invalid = true")
        if self.value is not None and self.invalid:
            raise ValueError("value and invalid = true exclude each other")
        return self


class MeterMap(BaseModel):
    """One meter model: its limits and the register of every quantity it offers."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    manufacturer: str
    model: str
    source: str = Field(min_length=10, description="the published document this map follows")
    function: Function = "input"
    word_order: Order = "big"
    byte_order: Order = "big"
    max_registers: int = Field(default=125, ge=1, le=125)
    max_gap: int = Field(default=10, ge=0, le=124)
    forbidden: list[tuple[int, int]] = Field(default_factory=list)
    pause_ms: int = Field(default=0, ge=0, le=5000)
    identify: Identify | None = None
    not_available: dict[DataType, list[Marker]] = Field(
        default_factory=dict, description="per data type, register values meaning no reading"
    )
    quantities: dict[str, RegisterField] = Field(min_length=1)
    golden: list[GoldenCase] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems: list[str] = []
        for start, end in self.forbidden:
            if not 0 <= start <= end <= 65535:
                problems.append(f"forbidden range [{start}, {end}] is not 0 <= start <= end")
        for data_type, markers in self.not_available.items():
            problems += _marker_problems(f"not_available.{data_type}", data_type, markers)
        for name, fld in self.quantities.items():
            problems += self._field_problems(name, fld)
        for index, case in enumerate(self.golden):
            problems += self._golden_problems(index, case)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _field_problems(self, name: str, fld: RegisterField) -> list[str]:
        out = []
        if name not in QUANTITIES:
            out.append(f"quantities.{name}: not a canonical quantity (see docs/quantities.md)")
            return out
        canonical, _ = UNITS.get(fld.unit, (None, 0.0))
        if canonical is None:
            out.append(f"quantities.{name}.unit: unknown unit {fld.unit!r}")
        elif canonical != QUANTITIES[name].unit:
            out.append(
                f"quantities.{name}.unit: {fld.unit!r} cannot convert to {QUANTITIES[name].unit!r}"
            )
        function = fld.function or self.function
        if fld.register_no is not None:
            bases = REGISTER_BASES[function]
            if all(fld.register_no - base != fld.address for base in bases):
                out.append(
                    f"quantities.{name}: register {fld.register_no} is address "
                    f"{fld.register_no - bases[0]} as a {function} register, "
                    f"but address says {fld.address}"
                )
        last = fld.address + fld.words - 1
        for start, end in self.forbidden:
            if fld.address <= end and last >= start:
                out.append(
                    f"quantities.{name}: registers {fld.address}-{last} overlap "
                    f"forbidden range [{start}, {end}]"
                )
        if fld.scale_register is not None and any(
            s <= fld.scale_register <= e for s, e in self.forbidden
        ):
            out.append(f"quantities.{name}.scale_register lies in a forbidden range")
        if fld.not_available is not None:
            out += _marker_problems(f"quantities.{name}.not_available", fld.type, fld.not_available)
        return out

    def _golden_problems(self, index: int, case: GoldenCase) -> list[str]:
        where = f"golden[{index}]"
        fld = self.quantities.get(case.quantity)
        if fld is None:
            return [f"{where}.quantity: {case.quantity!r} is not a quantity of this model"]
        out = []
        if len(case.words) != fld.words:
            out.append(
                f"{where}.words: {case.quantity} is {fld.type}, which takes "
                f"{fld.words} words, got {len(case.words)}"
            )
        if fld.scale_register is not None and case.scale_word is None:
            out.append(
                f"{where}.scale_word: {case.quantity} is scaled by register "
                f"{fld.scale_register}; give that register's word"
            )
        elif fld.scale_register is None and case.scale_word is not None:
            out.append(f"{where}.scale_word: {case.quantity} has no scale_register")
        return out

    def field_function(self, name: str) -> Function:
        return self.quantities[name].function or self.function

    def markers(self, name: str) -> list[int]:
        """Register values that mean this quantity has no reading."""
        fld = self.quantities[name]
        if fld.not_available is not None:
            return fld.not_available
        return self.not_available.get(fld.type, [])

    def scale_markers(self) -> list[int]:
        """Scale-register words that mean "no scale": a scale register holds an i16."""
        return self.not_available.get("i16", [])


def parse(data: dict[str, object], source: str) -> MeterMap:
    return configfile.validate(MeterMap, data, source)


def load_file(path: Path) -> MeterMap:
    return parse(configfile.read_toml(path), str(path))


@cache
def library() -> dict[str, MeterMap]:
    """Every shipped meter model by id."""
    models = {}
    for entry in sorted(resources.files("gateway.meterlib").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            meter = load_file(Path(str(entry)))
            if meter.id != entry.name.removesuffix(".toml"):
                raise ConfigError([f"{entry.name}: id {meter.id!r} must match file name"])
            models[meter.id] = meter
    return models
