"""One simulated meter: electrical state over time and its cumulative counters."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gateway.sim.profile import LoadProfile

SQRT3 = math.sqrt(3.0)


@dataclass
class SimulatedMeter:
    """Integrates power into counters so kWh only ever grows."""

    profile: LoadProfile
    start_kwh: float = 1000.0
    imbalance: tuple[float, float, float] = (0.36, 0.33, 0.31)
    _last_t: float | None = None
    _energy: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    _reactive: float = 0.0

    def values(self, t: float) -> dict[str, float]:
        """Every canonical quantity this meter knows, at epoch second t."""
        power = self.profile.power_w(t)
        pf = 0.93 + 0.04 * math.sin(t / 600.0 + self.profile.seed)
        self._advance(t, power, pf)
        volts = [230.0 + 1.5 * math.sin(t / 50.0 + k) for k in range(3)]
        phase_w = [power * share for share in self.imbalance]
        amps = [p / (v * pf) for p, v in zip(phase_w, volts, strict=True)]
        reactive = power * math.tan(math.acos(pf))
        out = {
            "power_w": power,
            "reactive_power_var": reactive,
            "apparent_power_va": power / pf,
            "power_factor": pf,
            "frequency_hz": 50.0 + 0.02 * math.sin(t / 13.0),
            "current_n_a": abs(amps[0] - amps[2]) * 0.5,
            "energy_import_kwh": self.start_kwh + sum(self._energy),
            "energy_export_kwh": 0.0,
            "reactive_energy_import_kvarh": self._reactive,
            "reactive_energy_export_kvarh": 0.0,
        }
        for k in range(3):
            n = k + 1
            out[f"voltage_l{n}_v"] = volts[k]
            out[f"voltage_l{n}_l{n % 3 + 1}_v"] = volts[k] * SQRT3
            out[f"current_l{n}_a"] = amps[k]
            out[f"power_l{n}_w"] = phase_w[k]
            out[f"power_factor_l{n}"] = pf
            out[f"energy_import_l{n}_kwh"] = self.start_kwh * self.imbalance[k] + self._energy[k]
        return out

    def _advance(self, t: float, power: float, pf: float) -> None:
        if self._last_t is not None and t > self._last_t:
            hours = (t - self._last_t) / 3600.0
            for k, share in enumerate(self.imbalance):
                self._energy[k] += power * share * hours / 1000.0
            self._reactive += power * math.tan(math.acos(pf)) * hours / 1000.0
        self._last_t = t if self._last_t is None else max(self._last_t, t)
