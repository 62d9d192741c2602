"""The simulator lays values into registers as the meter's manual says, and misbehaves on cue."""

from __future__ import annotations

import asyncio
import math

import pytest

from gateway import decode
from gateway.meter_maps import library
from gateway.sim.device import Faults, FixedValues, MeterRegisters, scale_exponents
from gateway.sim.known import known_values

INPUT, HOLDING = 4, 3


def registers(
    model: str, values: dict[str, float] | None = None, faults: Faults | None = None
) -> MeterRegisters:
    meter = library()[model]
    return MeterRegisters(
        unit=1,
        meter_map=meter,
        meter=FixedValues(values or known_values(meter)),
        faults=faults or Faults(),
    )


def read(regs: MeterRegisters, fc: int, address: int, count: int) -> list[int] | int:
    """What the device answers: the words, or the exception code."""
    memory = [0] * (address + count)
    code = asyncio.run(regs.action(fc, 0, address, count, memory, None))
    return int(code) if code is not None else memory[address:]


# Register words worked out by hand from the manuals' encodings.
HAND = [
    ("eastron-sdm630", {"voltage_l1_v": 230.0}, INPUT, 0, [0x4366, 0x0000]),
    ("carlo-gavazzi-em24", {"voltage_l1_v": 230.1}, INPUT, 0, [0x08FD, 0x0000]),  # LSW first
    ("carlo-gavazzi-em340", {"power_w": -1234.5}, INPUT, 40, [0xCFC7, 0xFFFF]),
    (
        "abb-b23",
        {"energy_import_kwh": 1234567.89},
        HOLDING,
        20480,
        [0x0000, 0x0000, 0x075B, 0xCD15],
    ),
    ("schneider-iem3155", {"power_w": 1500.0}, HOLDING, 3059, [0x3FC0, 0x0000]),  # kW
    ("janitza-umg96rm", {"energy_import_kwh": 1.0}, HOLDING, 19068, [0x447A, 0x0000]),  # Wh
    ("eastron-sdm120", {"voltage_l1_v": 230.0}, INPUT, 0, [0x4366, 0x0000]),
    ("eastron-sdm72d", {"energy_import_kwh": 1000.0}, INPUT, 72, [0x447A, 0x0000]),
    # -123.4 W as -12340 x 10^-2: W at 40087, W_SF at 40091
    ("sunspec-203", {"power_w": -123.4}, HOLDING, 40087, [0xCFCC, 0, 0, 0, 0xFFFE]),
]


@pytest.mark.parametrize(("model", "values", "fc", "address", "words"), HAND)
def test_simulator_serves_the_words_the_manual_prescribes(
    model: str, values: dict[str, float], fc: int, address: int, words: list[int]
) -> None:
    assert read(registers(model, values), fc, address, len(words)) == words


def test_quantities_sharing_a_scale_register_get_one_exponent_that_fits_them_all() -> None:
    meter = library()["sunspec-203"]
    values = {"voltage_l1_v": 231.2, "voltage_l1_l2_v": 400.5, "power_w": 7036.8}
    regs = registers("sunspec-203", values)
    (sf,) = read(regs, HOLDING, 40084, 1)  # type: ignore[misc]
    assert sf == scale_exponents(meter, values)[40084] & 0xFFFF
    exponent = sf - 0x10000 if sf & 0x8000 else sf
    for name in ("voltage_l1_v", "voltage_l1_l2_v"):
        fld = meter.quantities[name]
        words = read(regs, HOLDING, fld.address, 1)
        assert isinstance(words, list)
        assert decode.field_value(meter, fld, words, exponent) == pytest.approx(values[name])


def test_identify_register_inside_a_value_answers_its_code_only_when_read_alone() -> None:
    # Carlo Gavazzi: 000Bh is the model code read alone, and V L3-L1's high word in a block.
    meter = library()["carlo-gavazzi-em24"]
    regs = registers("carlo-gavazzi-em24")
    assert meter.identify is not None
    assert read(regs, INPUT, 11, 1) == [int(meter.identify.values[-1])]
    words = read(regs, INPUT, 10, 2)
    assert isinstance(words, list)
    fld = meter.quantities["voltage_l3_l1_v"]
    assert decode.field_value(meter, fld, words) == pytest.approx(402.7)


def test_exception_fault_refuses_every_request_touching_its_range() -> None:
    regs = registers("eastron-sdm630", faults=Faults(exceptions=((20, 29, 2),)))
    assert read(regs, INPUT, 0, 20) != 2
    assert read(regs, INPUT, 28, 4) == 2
    assert read(regs, INPUT, 0, 80) == 2
    assert regs.refused == 2


def test_nan_fault_serves_not_a_number_and_refuses_integer_registers() -> None:
    regs = registers("eastron-sdm630", faults=Faults(nan=frozenset({"power_w"})))
    words = read(regs, INPUT, 52, 2)
    assert isinstance(words, list)
    assert math.isnan(decode.raw_value(words, "f32"))
    with pytest.raises(ValueError, match="float"):
        registers("abb-b23", faults=Faults(nan=frozenset({"power_w"})))


def test_silent_fault_answers_n_requests_then_never_again() -> None:
    regs = registers("eastron-sdm630", faults=Faults(silent_after=1))

    async def two_requests() -> tuple[bool, bool]:
        first = asyncio.create_task(regs.action(INPUT, 0, 0, 2, [0, 0], None))
        second = asyncio.create_task(regs.action(INPUT, 0, 0, 2, [0, 0], None))
        for _ in range(5):
            await asyncio.sleep(0)
        done = first.done(), second.done()
        second.cancel()
        return done

    assert asyncio.run(two_requests()) == (True, False)


def test_simulator_config_builds_fixed_values_and_faults() -> None:
    from gateway.sim.cli import registers as build
    from gateway.sim.config import SimMeter

    meter = SimMeter.model_validate(
        {
            "unit": 2,
            "model": "eastron-sdm630",
            "values": {"power_w": 1234.5},
            "faults": {"exceptions": [[40, 49, 2]], "silent_after": 10, "nan": ["frequency_hz"]},
        }
    )
    regs = build(meter, 1.0, None)
    assert regs.faults == Faults(
        exceptions=((40, 49, 2),), silent_after=10, nan=frozenset({"frequency_hz"})
    )
    words = read(regs, INPUT, 52, 2)
    assert isinstance(words, list)
    assert decode.raw_value(words, "f32") == 1234.5
    assert read(regs, INPUT, 0, 80) == 2
