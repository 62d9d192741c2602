"""Synthetic sites for tests, benchmarks and demos of the web pages.

Writes through `Store` like the collector does: one readings batch per site (so meters and
live values exist), 15-minute intervals with an office-like load shape, gateway status,
and a few opportunities and alerts per site.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime

from collector.store import IntervalRow, Store
from sparwatt import wire
from sparwatt.timeutil import DAY_MS, QUARTER_MS


@dataclass(frozen=True)
class Plan:
    sites: list[str]
    meters_per_site: int = 2
    days: float = 3.0
    peak_kw: float = 40.0
    gateway: str = "gw1"
    opportunities: bool = True
    alerts: bool = True


def power_w(start_ms: int, peak_kw: float, rng: random.Random) -> float:
    """Office-like: 20 % base all the time, full load on weekday daytime (UTC)."""
    t = datetime.fromtimestamp(start_ms / 1000, UTC)
    open_ = t.weekday() < 5 and 6 <= t.hour < 16
    share = 0.2 + (0.8 if open_ else 0.0)
    return peak_kw * 1000 * share * (1 + 0.05 * math.sin(start_ms / 3.7e6) + rng.gauss(0, 0.02))


def seed(store: Store, plan: Plan, now_ms: int, rng_seed: int = 1) -> None:
    rng = random.Random(rng_seed)
    now = datetime.fromtimestamp(now_ms / 1000, UTC)
    end = now_ms - now_ms % QUARTER_MS
    start = end - int(plan.days * DAY_MS) // QUARTER_MS * QUARTER_MS
    for s, site in enumerate(plan.sites):
        meters = [f"m{i + 1}" for i in range(plan.meters_per_site)]
        store.register_gateway(site, plan.gateway)
        store.write(
            [
                wire.ReadingsMessage(
                    site=site,
                    gateway=plan.gateway,
                    seq=1,
                    sent_at=now,
                    readings=[
                        wire.Reading(
                            meter=m,
                            ts=now,
                            values={
                                # a meter's register: tenths of a watt
                                "power_w": round(power_w(now_ms, plan.peak_kw, rng), 1),
                                "energy_import_kwh": 1000.0 + i,
                            },
                        )
                        for i, m in enumerate(meters)
                    ],
                )
            ]
        )
        store.set_status(site, plan.gateway, wire.StatusMessage(state=wire.GatewayState.ONLINE))
        for meter in meters:
            meter_id = store.meter_id(site, plan.gateway, meter)
            assert meter_id is not None
            rows: list[IntervalRow] = []
            for t in range(start, end, QUARTER_MS):
                p = power_w(t, plan.peak_kw, rng)
                rows.append(IntervalRow(t, p / 4000, False, None, False, p, p * 1.1))
            store.put_intervals(meter_id, rows)
        if plan.opportunities:
            for k, (kind, payback) in enumerate((("baseload", 2.5), ("offhours", 0.8))):
                store.put_opportunity(
                    f"{site}-{kind}",
                    site,
                    meters[0],
                    kind,
                    "open",
                    {
                        "action": f"Reduce {kind} on {meters[0]}",
                        "annual_kwh": 12000.0 / (k + 1),
                        "annual_dkk": 18000.0 / (k + 1),
                        "annual_kg_co2": 720.0 / (k + 1),
                        "investment_dkk": 18000.0 / (k + 1) * payback,
                        "payback_years": payback,
                        "lifetime_years": 10.0,
                        "rentabel": True,
                        "assumptions": {"price_dkk_per_kwh": 1.5, "co2_g_per_kwh": 60},
                    },
                    updated_ms=now_ms,
                )
        if plan.alerts and s % 2 == 0:
            store.put_alert(
                f"{site}-night",
                site,
                {"alertname": "high_night_load", "site": site},
                "firing",
                "warning",
                f"Night load on {site} is 40 % above normal",
                now_ms - 3_600_000,
            )
