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
from collector.alerts.calendar import SiteCalendar, site_calendar
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
from collector.analysis.site_context import Sites

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
    """Runs the configured rules and the lifecycle; holds only config and a calendar cache.

    Each site's calendar (time zone, holidays, closures, opening hours) and fuse come from
    `sites`, the sites file; without a sites file every site gets what an empty entry would.
    """

    def __init__(self, config: AlertsConfig, sites: Sites | None = None) -> None:
        self.config = config
        self.sites = Sites() if sites is None else sites
        self.rule_failures: Counter[str] = Counter()
        self._calendars: dict[tuple[str, int, int], SiteCalendar] = {}
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

    def calendar(self, site: str, start: datetime, end: datetime) -> SiteCalendar:
        """The site's calendar from the sites file, covering whole years around [start, end)."""
        # whole years, one more on each side: local dates may cross a year end
        key = (site, start.year - 1, end.year + 1)
        if key not in self._calendars:
            ctx = self.sites.calendar_of(site)
            self._calendars[key] = site_calendar(ctx, date(key[1], 1, 1), date(key[2], 12, 31))
        return self._calendars[key]

    def fuse_a(self, site: str) -> float | None:
        """The site's main fuse from the sites file; None: no honest bound on counter jumps."""
        return self.sites.calendar_of(site).main_fuse_a

    def _calendars_for(self, grid: IntervalGrid) -> dict[str, SiteCalendar]:
        end = grid.start + timedelta(seconds=grid.n_intervals * grid.step_s)
        return {
            site: self.calendar(site, grid.start, end) for site in {k.site for k in grid.meters}
        }

    def build_baseline(self, history: IntervalGrid) -> Baseline:
        """Learn expected usage from history_window of data; call daily or when meters change."""
        return build_baseline(history, self._calendars_for(history), self.config.expected)

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
                calendars=self._calendars_for(obs.recent),
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
            return rules.counter_anomalies(obs.counters, self.fuse_a, now, r.counter_anomaly)

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
