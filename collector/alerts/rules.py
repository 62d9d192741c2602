"""Alert rules: turn scores and observations into Conditions (labels, severity, summary, values)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime

import numpy as np

from collector.alerts.config import (
    CounterAnomalyRule,
    DataGapRule,
    GatewayOfflineRule,
    MeterSilentRule,
    UnusualUsageRule,
)
from collector.alerts.expected import UsageScores
from collector.alerts.model import (
    Condition,
    CounterSeries,
    GatewayStatus,
    IntervalGrid,
    MeterKey,
    require_utc,
)
from sparwatt.wire import format_ts

# Counters tick in steps of 0.01 kWh or so; over a few seconds one tick already looks like
# tens of kW. Judging power over at least a minute keeps resolution from reading as a jump.
_MIN_JUMP_SPAN_S = 60.0


def _ts(epoch_s: float) -> str:
    return format_ts(datetime.fromtimestamp(epoch_s, UTC))


def _meter_labels(alertname: str, key: MeterKey) -> dict[str, str]:
    return {"alertname": alertname, "site": key.site, "meter": key.meter}


def fuse_capacity_kw(fuse_a: float, voltage_v: float = 400.0) -> float:
    """Most a three-phase supply can deliver: sqrt(3) x line voltage x fuse current."""
    return math.sqrt(3) * voltage_v * fuse_a / 1000.0


def unusual_usage(scores: UsageScores, rule: UnusualUsageRule) -> list[Condition]:
    """Meters whose last `consecutive` intervals with data were all unusual."""
    held = scores.missing_tail * scores.step_s <= rule.hold_missing
    hits = np.flatnonzero((scores.run >= rule.consecutive) & held)
    per_hour = 3600.0 / scores.step_s
    out = []
    for row in hits.tolist():
        col = int(scores.last_index[row])
        run = int(scores.run[row])
        key = scores.meters[row]
        actual_kw = float(scores.energy[row, col]) * per_hour
        expected_kw = float(scores.median[row, col]) * per_hour
        deviation_kw = float(scores.deviation_kwh[row, col]) * per_hour
        z = float(scores.z[row, col])
        pct = deviation_kw / abs(expected_kw) * 100 if expected_kw else None
        minutes = run * scores.step_s // 60
        summary = (
            f"{key.meter} at {key.site}: {actual_kw:.1f} kW where {expected_kw:.1f} kW is "
            f"usual for this time of week (z={z:.1f}), {minutes} min in a row"
        )
        out.append(
            Condition(
                labels=_meter_labels("unusual_usage", key),
                severity=rule.severity,
                summary=summary,
                values={
                    "actual_kw": round(actual_kw, 3),
                    "expected_kw": round(expected_kw, 3),
                    "deviation_kw": round(deviation_kw, 3),
                    "deviation_pct": None if pct is None else round(pct, 1),
                    "z": round(z, 2),
                    "intervals": run,
                    "since": _ts(float(scores.starts_s[col - run + 1])),
                    "last_interval": _ts(float(scores.starts_s[col])),
                },
                for_s=rule.for_,
            )
        )
    return out


def meter_silent(
    last_seen: Mapping[MeterKey, datetime | None], now: datetime, rule: MeterSilentRule
) -> list[Condition]:
    """Meters with no reading for `rule.after`; None means never seen since start-up."""
    now = require_utc(now, "now")
    out = []
    for key, seen in last_seen.items():
        if seen is not None and (now - seen).total_seconds() < rule.after:
            continue
        if seen is None:
            summary = f"{key.meter} at {key.site} has sent no reading yet"
            values: dict[str, float | int | str | None] = {"last_seen": None}
        else:
            minutes = int((now - seen).total_seconds() // 60)
            summary = f"{key.meter} at {key.site} has sent no reading for {minutes} min"
            values = {"last_seen": format_ts(seen), "silent_min": minutes}
        out.append(
            Condition(_meter_labels("meter_silent", key), rule.severity, summary, values, rule.for_)
        )
    return out


def gateway_offline(gateways: Iterable[GatewayStatus], rule: GatewayOfflineRule) -> list[Condition]:
    """Gateways whose retained status says offline (their last will, or a clean shutdown)."""
    out = []
    for gw in gateways:
        if gw.online:
            continue
        since = format_ts(gw.since) if gw.since else None
        summary = f"gateway {gw.gateway} at {gw.site} is offline" + (
            f" since {since}" if since else ""
        )
        out.append(
            Condition(
                {"alertname": "gateway_offline", "site": gw.site, "gateway": gw.gateway},
                rule.severity,
                summary,
                {"since": since},
                rule.for_,
            )
        )
    return out


def counter_anomalies(
    counters: Mapping[MeterKey, CounterSeries],
    fuse_a: Callable[[str], float | None],
    now: datetime,
    rule: CounterAnomalyRule,
) -> list[Condition]:
    """Counter drops (reset, replacement) and jumps beyond the site fuse within `rule.window`."""
    since_s = require_utc(now, "now").timestamp() - rule.window
    out = []
    for key, series in counters.items():
        if len(series.kwh) < 2:
            continue
        step = np.diff(series.kwh)
        dt = np.diff(series.ts_s)
        recent = (series.ts_s[1:] >= since_s) & (dt > 0) & ~np.isnan(step)
        drops = np.flatnonzero(recent & (step < -rule.drop_tolerance_kwh))
        if drops.size:
            i = int(drops[-1])
            out.append(
                Condition(
                    _meter_labels("counter_reset", key),
                    rule.severity,
                    f"energy counter of {key.meter} at {key.site} went back from "
                    f"{series.kwh[i]:.2f} to {series.kwh[i + 1]:.2f} kWh "
                    "(reset or meter replaced)",
                    {
                        "at": _ts(float(series.ts_s[i + 1])),
                        "from_kwh": float(series.kwh[i]),
                        "to_kwh": float(series.kwh[i + 1]),
                        "events": int(drops.size),
                    },
                    rule.for_,
                )
            )
        amps = fuse_a(key.site)
        if amps is None:
            continue  # without the fuse size there is no honest upper bound
        limit_kw = fuse_capacity_kw(amps, rule.voltage_v) * rule.jump_margin
        span_h = np.maximum(dt, _MIN_JUMP_SPAN_S) / 3600.0
        jumps = np.flatnonzero(recent & (step > limit_kw * span_h))
        if jumps.size:
            i = int(jumps[-1])
            implied_kw = float(step[i] / span_h[i])
            out.append(
                Condition(
                    _meter_labels("counter_jump", key),
                    rule.severity,
                    f"energy counter of {key.meter} at {key.site} jumped {step[i]:.2f} kWh, "
                    f"{implied_kw:.0f} kW, more than the {amps:g} A fuse allows "
                    f"({limit_kw:.0f} kW)",
                    {
                        "at": _ts(float(series.ts_s[i + 1])),
                        "jump_kwh": float(step[i]),
                        "implied_kw": round(implied_kw, 1),
                        "limit_kw": round(limit_kw, 1),
                        "events": int(jumps.size),
                    },
                    rule.for_,
                )
            )
    return out


def data_gaps(recent: IntervalGrid, now: datetime, rule: DataGapRule) -> list[Condition]:
    """Missing intervals between the first and last interval with data inside `rule.window`.

    Leading gaps may be a meter added recently and trailing gaps are meter_silent's job.
    """
    now_s = require_utc(now, "now").timestamp()
    starts = recent.column_starts()
    cols = (starts + recent.step_s <= now_s) & (starts >= now_s - rule.window)
    have = ~np.isnan(recent.energy_kwh[:, cols])
    starts = starts[cols]
    n = have.shape[1]
    if n == 0:
        return []
    first = np.argmax(have, axis=1)
    last = n - 1 - np.argmax(have[:, ::-1], axis=1)
    idx = np.arange(n)[None, :]
    interior = ~have & (idx > first[:, None]) & (idx < last[:, None])
    missing = interior.sum(axis=1)
    out = []
    for row in np.flatnonzero(missing >= rule.min_missing).tolist():
        key = recent.meters[row]
        holes = np.flatnonzero(interior[row])
        # Longest run of consecutive missing columns, for the summary.
        breaks = np.flatnonzero(np.diff(holes) != 1)
        lengths = np.diff(np.concatenate(([-1], breaks, [len(holes) - 1])))
        longest_min = int(lengths.max()) * recent.step_s // 60
        count = int(missing[row])
        hours = rule.window / 3600
        out.append(
            Condition(
                _meter_labels("data_gap", key),
                rule.severity,
                f"{key.meter} at {key.site} is missing {count} interval(s) in the last "
                f"{hours:g} h (longest gap {longest_min} min)",
                {
                    "missing_intervals": count,
                    "longest_gap_min": longest_min,
                    "first_missing": _ts(float(starts[holes[0]])),
                },
                rule.for_,
            )
        )
    return out
