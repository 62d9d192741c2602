"""Known readings for every quantity, and how closely a meter map can reproduce them."""

from __future__ import annotations

from gateway import decode
from gateway.meter_maps import MeterMap
from gateway.sim.device import scale_exponents

# Distinct per quantity, so a reading taken from the wrong register cannot pass for another.
KNOWN: dict[str, float] = {
    "voltage_l1_v": 231.2,
    "voltage_l2_v": 232.3,
    "voltage_l3_v": 233.4,
    "voltage_l1_l2_v": 400.5,
    "voltage_l2_l3_v": 401.6,
    "voltage_l3_l1_v": 402.7,
    "current_l1_a": 10.123,
    "current_l2_a": 11.234,
    "current_l3_a": 12.345,
    "current_n_a": 1.456,
    "power_l1_w": 1234.5,
    "power_l2_w": 2345.6,
    "power_l3_w": 3456.7,
    "power_w": 7036.8,
    "reactive_power_var": 812.3,
    "apparent_power_va": 7100.4,
    "power_factor": 0.951,
    "power_factor_l1": 0.961,
    "power_factor_l2": 0.972,
    "power_factor_l3": 0.983,
    "frequency_hz": 50.03,
    "energy_import_kwh": 123456.78,
    "energy_export_kwh": 2345.67,
    "reactive_energy_import_kvarh": 3456.78,
    "reactive_energy_export_kvarh": 456.78,
    "energy_import_l1_kwh": 40001.23,
    "energy_import_l2_kwh": 40002.34,
    "energy_import_l3_kwh": 40003.45,
}


def known_values(meter: MeterMap) -> dict[str, float]:
    """The known reading of every quantity this model offers."""
    return {name: KNOWN[name] for name in meter.quantities}


def tolerance(meter: MeterMap, name: str) -> float:
    """Largest honest difference between a known value and its reading through the map.

    Integer registers round to their resolution (half a step either way); floats keep the
    precision of their type.
    """
    fld = meter.quantities[name]
    value = KNOWN[name]
    if fld.type == "f32":
        return abs(value) * 2.0**-23
    if fld.type == "f64":
        return abs(value) * 2.0**-52
    step = decode.factor(fld)
    if fld.scale_register is not None:
        step *= 10.0 ** scale_exponents(meter, known_values(meter))[fld.scale_register]
    return step / 2 + abs(value) * 1e-12
