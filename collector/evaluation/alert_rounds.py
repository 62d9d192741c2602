"""One alert round: observations from the store, evaluate, persist, queue notices."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, date, datetime, tzinfo

import numpy as np

from collector.alerts import (
    AlertEvaluator,
    AlertsConfig,
    AlertState,
    Baseline,
    CounterSeries,
    Evaluation,
    GatewayStatus,
    MeterKey,
    Observations,
    Silence,
)
from collector.alerts.channels import (
    Dispatcher,
)
from collector.alerts.lifecycle import AlertRecord, Status
from collector.alerts.matchers import Matcher, Op
from collector.analysis import Sites
from collector.evaluation.inputs import (
    interval_grid,
    meter_keys,
)
from collector.evaluation.notices import deliver_notices
from collector.store import AlertRow, Reader, SilenceRow, Store
from sparwatt.timeutil import QUARTER_MS, epoch_ms, from_ms

log = logging.getLogger(__name__)


def silences_of(rows: Iterable[SilenceRow]) -> list[Silence]:
    """Silences added from the CLI: a site, or one meter of it, for a time window."""
    out = []
    for row in rows:
        matchers = [Matcher("site", Op.EQ, row.site)]
        if row.meter:
            matchers.append(Matcher("meter", Op.EQ, row.meter))
        out.append(
            Silence(
                row.id,
                from_ms(row.starts_ms),
                from_ms(row.ends_ms),
                tuple(matchers),
                row.reason,
            )
        )
    return out


def alert_rows(before: AlertState, after: Evaluation, now: datetime) -> list[AlertRow]:
    """Rows of the `alert` table this round changed: firing ones, and the ones that ended."""
    rows = []
    for fp, rec in after.state.alerts.items():
        if rec.status is Status.FIRING:
            rows.append(_alert_row(fp, rec, None, muted=after.suppressed.get(fp)))
    for fp, rec in before.alerts.items():
        if fp in after.state.alerts or rec.status is not Status.FIRING:
            continue  # a pending alert that ends was never an alert
        rows.append(_alert_row(fp, rec, epoch_ms(now)))
    return rows


def _alert_row(
    fp: str, rec: AlertRecord, resolved_ms: int | None, muted: object = None
) -> AlertRow:
    """One alert as the `alert` table keeps it: firing, or resolved at `resolved_ms`."""
    data: dict[str, object] = {
        "values": dict(rec.values),
        "notified": rec.notified,
        "fired_ms": epoch_ms(rec.fired_at) if rec.fired_at else None,
    }
    if resolved_ms is None:
        data["muted"] = muted
    return AlertRow(
        id=f"{fp}-{epoch_ms(rec.active_since)}",
        site=rec.site,
        labels=dict(rec.labels),
        state="firing" if resolved_ms is None else "resolved",
        severity=str(rec.severity),
        summary=rec.summary,
        started_ms=epoch_ms(rec.active_since),
        resolved_ms=resolved_ms,
        data=data,
    )


class AlertRounds:
    """One alert round per call: observations from the store, evaluate, persist, dispatch."""

    def __init__(
        self,
        config: AlertsConfig,
        dispatcher: Dispatcher,
        store: Store,
        reader: Reader,
        *,
        sites: Sites | None = None,
        day_tz: tzinfo = UTC,
    ) -> None:
        self.evaluator = AlertEvaluator(config, sites)
        self.dispatcher = dispatcher
        self.store = store
        self.reader = reader
        self.day_tz = day_tz  # when a new day starts for relearning: scheduling, not a site
        self._baseline: tuple[tuple[date, tuple[MeterKey, ...]], Baseline] | None = None

    def baseline(self, now: datetime, keys: dict[int, MeterKey]) -> Baseline:
        """Expected usage, learnt once a day (in `day_tz`) or when the set of meters changes."""
        day = now.astimezone(self.day_tz).date()
        tag = (day, tuple(sorted(keys.values())))
        if self._baseline is None or self._baseline[0] != tag:
            end = epoch_ms(now) // QUARTER_MS * QUARTER_MS
            start = end - int(self.evaluator.history_window.total_seconds() * 1000)
            grid = interval_grid(self.reader, keys, start, end)
            self._baseline = (tag, self.evaluator.build_baseline(grid))
        return self._baseline[1]

    def read_meters(self) -> set[int]:
        """Meters a gateway still reads: those its retained status lists (all if none).

        A meter taken off a gateway would otherwise count as silent for ever.
        """
        listed: dict[tuple[str, str], set[str]] = {}
        for site in self.reader.sites():
            for g in self.reader.gateways_of(site):
                meters = (g.status or {}).get("meters")
                if isinstance(meters, list) and meters:
                    listed[(site, g.gateway)] = {str(m) for m in meters}
        return {
            i
            for i, site, gw, meter in self.reader.meter_index()
            if (site, gw) not in listed or meter in listed[(site, gw)]
        }

    def observations(self, now: datetime, keys: dict[int, MeterKey]) -> Observations:
        now_ms = epoch_ms(now)
        end = now_ms // QUARTER_MS * QUARTER_MS  # complete intervals only
        window_ms = int(self.evaluator.recent_window.total_seconds() * 1000)
        start = end - -(-window_ms // QUARTER_MS) * QUARTER_MS
        seen = self.reader.last_reading_ms(now_ms)
        read = self.read_meters()
        last_seen = {
            key: (from_ms(seen[i]) if i in seen else None) for i, key in keys.items() if i in read
        }
        gateways = [
            GatewayStatus(
                g.site,
                g.gateway,
                g.state == "online",
                from_ms(g.state_ms) if g.state_ms else None,
            )
            for g in self.reader.gateways()
            if g.state in ("online", "offline")
        ]
        window = int(self.evaluator.config.rules.counter_anomaly.window * 1000)
        samples: dict[int, list[tuple[int, float]]] = {}
        for meter_id, ts, value in self.reader.samples_of(
            "energy_import_kwh", now_ms - window, now_ms
        ):
            samples.setdefault(meter_id, []).append((ts, value))
        counters = {
            keys[i]: CounterSeries(
                np.array([t / 1000 for t, _ in rows]), np.array([v for _, v in rows])
            )
            for i, rows in samples.items()
            if i in keys
        }
        return Observations(
            now=now,
            recent=interval_grid(self.reader, keys, start, end),
            last_seen=last_seen,
            gateways=gateways,
            counters=counters,
        )

    def run(self, now: datetime) -> Evaluation:
        now = now.astimezone(UTC)
        keys = meter_keys(self.reader.meter_index())
        saved = self.reader.alert_state()
        state = AlertState.from_dict(saved) if saved else AlertState()
        silences = silences_of(self.reader.silences(after_ms=epoch_ms(now)))
        evaluation = self.evaluator.evaluate(
            state, self.observations(now, keys), self.baseline(now, keys), silences
        )
        # the notices are saved with the state that made them and sent after the commit:
        # a crash or a receiver that is down delays a notice, it never loses one
        self.store.save_alert_round(
            evaluation.state.to_dict(),
            alert_rows(state, evaluation, now),
            epoch_ms(now),
            self.dispatcher.notices(evaluation.notifications),
        )
        result = deliver_notices(self.store, self.dispatcher, epoch_ms(now))
        log.info(
            "alert round at=%s alerts=%d notifications=%d delivered=%d failed=%d "
            "pending=%d dropped=%d",
            now.isoformat(),
            len(evaluation.state.alerts),
            len(evaluation.notifications),
            result.delivered,
            result.failed,
            result.pending,
            result.dropped,
        )
        return evaluation
