"""The simulator's own config: which servers to open and which meters sit on each."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway import meter_maps
from gateway.sim.profile import ProfileKind
from sparwatt import configfile


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SimFaults(_Model):
    """Misbehaviour for fault training and tests (see gateway.sim.device.Faults)."""

    exceptions: list[tuple[int, int, int]] = Field(
        default_factory=list, description="[first, last, code]: requests touching it get code"
    )
    ignored: list[tuple[int, int]] = Field(
        default_factory=list, description="[first, last]: requests touching it get no answer"
    )
    silent_after: int | None = Field(default=None, ge=0)
    drop_after: int | None = Field(default=None, ge=0)
    nan: list[str] = Field(default_factory=list)


class SimMeter(_Model):
    unit: int = Field(ge=1, le=247)
    model: str
    profile: ProfileKind = "office"
    peak_kw: float = Field(default=40.0, gt=0)
    start_kwh: float = Field(default=1000.0, ge=0)
    seed: int = 1
    values: dict[str, float] | None = Field(
        default=None, description="serve these fixed values instead of a load profile"
    )
    faults: SimFaults = SimFaults()

    @field_validator("model")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in meter_maps.library():
            raise ValueError(f"unknown meter model {value!r}")
        return value


class SimServer(_Model):
    transport: Literal["tcp", "rtu", "rtu-over-tcp"] = "tcp"
    host: str = "127.0.0.1"
    port: int = Field(default=5020, ge=0, le=65535)
    device: str | None = None
    baud: int = 9600
    meters: list[SimMeter] = Field(min_length=1)

    @model_validator(mode="after")
    def _units(self) -> Self:
        units = [m.unit for m in self.meters]
        if len(set(units)) != len(units):
            raise ValueError("unit ids on one server must be unique")
        if self.transport == "rtu" and not self.device:
            raise ValueError("transport 'rtu' needs device")
        return self


class SimConfig(_Model):
    tick_s: float = Field(default=1.0, gt=0)
    servers: list[SimServer] = Field(min_length=1)


def load(path: Path) -> SimConfig:
    return configfile.load(SimConfig, path)
