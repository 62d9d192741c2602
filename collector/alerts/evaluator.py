"""One evaluation round: run every enabled rule on the observations, then advance the lifecycle.

No I/O and no wall clock: the collector's coordinator passes the time, the data and the
previous state in, persists the returned state and hands the notifications to a Dispatcher.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from collector.alerts import rules
from collector.alerts.closed_days import closed_days
from collector.alerts.config import AlertsConfig
from collector.alerts.expected import Baseline, build_baseline, score_usage
from collector.alerts.lifecycle import AlertState, Evaluation, advance
from collector.alerts.model import (
    Condition,
    CounterSeries,
    GatewayStatus,
    IntervalGrid,
    MeterKey,
    require_utc,
)
from collector.alerts.silences import Silence

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Observations:
    """What the collector knows at `now`. None means "not available this round"."""

    now: datetime
    recent: IntervalGrid | None = None  # at least `AlertEvaluator.recent_window` long
    last_seen: Mapping[MeterKey, datetime | None] | None = None  # every expected meter
    gateways: Sequence[GatewayStatus] | None = None
    counters: Mapping[MeterKey, CounterSeries] | None = None


class _Unavailable(Exception):
    """A rule's input is missing this round."""


class AlertEvaluator:
    """Runs the configured rules and the lifecycle; holds only config and a holiday cache."""

    def __init__(self, config: AlertsConfig) -> None:
        self.config = config
        self.rule_failures: Counter[str] = Counter()
        self._closed: dict[tuple[int, ...], frozenset[date]] = {}
        self._silences = config.silence_list()
        self._inhibit = config.inhibit_rules()

    @property
    def recent_window(self) -> timedelta:
        """How much recent interval data each round needs."""
        r = self.config.rules
        step = 900.0
        usage = r.unusual_usage.hold_missing + (r.unusual_usage.consecutive + 1) * step
        return timedelta(seconds=max(r.data_gap.window + step, usage))

    @property
    def history_window(self) -> timedelta:
        """How much history build_baseline uses."""
        return timedelta(weeks=self.config.expected.weeks)

    def closed_days(self, start: datetime, end: datetime) -> frozenset[date]:
        years = tuple(range(start.year - 1, end.year + 2))  # local dates may cross a year end
        if years not in self._closed:
            self._closed[years] = closed_days(self.config.calendar, years)
        return self._closed[years]

    def _closed_for(self, grid: IntervalGrid) -> frozenset[date]:
        end = grid.start + timedelta(seconds=grid.n_intervals * grid.step_s)
        return self.closed_days(grid.start, end)

    def build_baseline(self, history: IntervalGrid) -> Baseline:
        """Learn expected usage from history_window of data; call daily or when meters change."""
        return build_baseline(
            history, self._closed_for(history), self.config.calendar.tz, self.config.expected
        )

    def conditions(
        self, obs: Observations, baseline: Baseline | None, state: AlertState
    ) -> list[Condition]:
        """All rules' conditions; a rule lacking input or crashing holds its known alerts."""
        now = require_utc(obs.now, "now")
        r = self.config.rules

        def unusual() -> list[Condition]:
            if obs.recent is None or baseline is None:
                raise _Unavailable
            scores = score_usage(
                obs.recent,
                baseline,
                closed=self._closed_for(obs.recent),
                tz=self.config.calendar.tz,
                expected=self.config.expected,
                rule=r.unusual_usage,
                now=now,
            )
            return rules.unusual_usage(scores, r.unusual_usage)

        def silent() -> list[Condition]:
            if obs.last_seen is None:
                raise _Unavailable
            return rules.meter_silent(obs.last_seen, now, r.meter_silent)

        def offline() -> list[Condition]:
            if obs.gateways is None:
                raise _Unavailable
            return rules.gateway_offline(obs.gateways, r.gateway_offline)

        def counters() -> list[Condition]:
            if obs.counters is None:
                raise _Unavailable
            return rules.counter_anomalies(obs.counters, self.config.fuse_a, now, r.counter_anomaly)

        def gaps() -> list[Condition]:
            if obs.recent is None:
                raise _Unavailable
            return rules.data_gaps(obs.recent, now, r.data_gap)

        plan: list[tuple[bool, tuple[str, ...], Callable[[], list[Condition]]]] = [
            (r.unusual_usage.enabled, ("unusual_usage",), unusual),
            (r.meter_silent.enabled, ("meter_silent",), silent),
            (r.gateway_offline.enabled, ("gateway_offline",), offline),
            (r.counter_anomaly.enabled, ("counter_reset", "counter_jump"), counters),
            (r.data_gap.enabled, ("data_gap",), gaps),
        ]
        out: list[Condition] = []
        for enabled, names, run in plan:
            if not enabled:
                continue
            try:
                out += run()
            except _Unavailable:
                out += _held(state, names, self._for_of(names[0]))
            except Exception:
                # Dropping the rule's conditions would resolve its alerts and page people
                # with false all-clears; holding them is the safe failure.
                self.rule_failures[names[0]] += 1
                log.exception("alert rule failed rule=%s; holding its alerts", names[0])
                out += _held(state, names, self._for_of(names[0]))
        return out

    def _for_of(self, alertname: str) -> float:
        r = self.config.rules
        return {
            "unusual_usage": r.unusual_usage.for_,
            "meter_silent": r.meter_silent.for_,
            "gateway_offline": r.gateway_offline.for_,
            "counter_reset": r.counter_anomaly.for_,
            "data_gap": r.data_gap.for_,
        }[alertname]

    def evaluate(
        self,
        state: AlertState,
        obs: Observations,
        baseline: Baseline | None = None,
        silences: Sequence[Silence] = (),
    ) -> Evaluation:
        """One round; `silences` are added to the ones in the config (e.g. from the web UI)."""
        conditions = self.conditions(obs, baseline, state)
        return advance(
            state,
            conditions,
            obs.now,
            silences=(*self._silences, *silences),
            inhibit_rules=self._inhibit,
        )


def _held(state: AlertState, names: tuple[str, ...], for_s: float) -> list[Condition]:
    """Re-assert the known alerts of a rule that could not run, unchanged."""
    return [
        Condition(rec.labels, rec.severity, rec.summary, rec.values, for_s)
        for rec in state.alerts.values()
        if rec.labels.get("alertname") in names
    ]
