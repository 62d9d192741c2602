"""Savings scans and alert rounds on the stored data: inputs built from the store, then run.

The analysis (`collector.analysis`) and alerting (`collector.alerts`) layers are pure; this
module reads what they need from SQLite, calls them, persists what they return and hands
notifications to the channels. `EvaluationService` schedules both on APScheduler threads,
so neither a scan nor a slow webhook or mail server ever holds up ingest.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from collector.alerts import (
    AlertEvaluator,
    AlertsConfig,
    AlertState,
    Baseline,
    CounterSeries,
    Dispatcher,
    DispatchResult,
    Evaluation,
    GatewayStatus,
    IntervalGrid,
    MeterKey,
    Notice,
    Observations,
    Silence,
    build_channels,
    build_dispatcher,
    load_alerts_config,
)
from collector.alerts.channels import Publish
from collector.alerts.lifecycle import Status
from collector.alerts.matchers import Matcher, Op
from collector.analysis import MeterSeries, Opportunity, SiteContext, load_sites, reconcile
from collector.analysis import scan_report as run_scan
from collector.settings import CollectorConfig
from collector.settings import Evaluation as EvaluationSettings
from collector.store import Reader, Store

log = logging.getLogger(__name__)

Q_MS = 900_000
# a notice its receiver refused waits 1 min, then 2, 4, ... up to an hour between tries,
# and is given up a day after its round
NOTICE_RETRY_MS, NOTICE_RETRY_MAX_MS, NOTICE_MAX_AGE_MS = 60_000, 3_600_000, 86_400_000
GAUGES = {"power_factor": ("power_factor",),
          "currents_a": ("current_l1_a", "current_l2_a", "current_l3_a"),
          "voltages_v": ("voltage_l1_v", "voltage_l2_v", "voltage_l3_v")}


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(frozen=True)
class Inputs:
    """The validated evaluation files; None where the collector config names none."""

    sites: dict[str, SiteContext] | None = None
    alerts: AlertsConfig | None = None


def load_inputs(settings: EvaluationSettings) -> Inputs:
    """Read and validate the sites and alerts files; raises ConfigError naming the key."""
    sites = load_sites(settings.sites_file) if settings.sites_file else None
    alerts = load_alerts_config(settings.alerts_file) if settings.alerts_file else None
    return Inputs(sites, alerts)


def meter_keys(index: Iterable[tuple[int, str, str, str]]) -> dict[int, MeterKey]:
    """Meter id -> (site, meter); a meter name two gateways of a site share gets 'gw:' first."""
    rows = list(index)
    taken: dict[tuple[str, str], int] = {}
    for _id, site, _gw, meter in rows:
        taken[(site, meter)] = taken.get((site, meter), 0) + 1
    return {meter_id: MeterKey(site, meter if taken[(site, meter)] == 1 else f"{gw}:{meter}")
            for meter_id, site, gw, meter in rows}


# ---- savings opportunities


@dataclass(frozen=True)
class ScanResult:
    opened: list[Opportunity]
    updated: list[Opportunity]
    closed: list[Opportunity]
    errors: int


def load_series(reader: Reader, sites: Iterable[str], now_ms: int, days: int,
                dedicated: Iterable[str] = ()) -> list[MeterSeries]:
    """One MeterSeries per meter of `sites` over the last `days` of complete intervals."""
    wanted = set(sites)
    roles = set(dedicated)
    end = now_ms // Q_MS * Q_MS
    start = end - days * 96 * Q_MS
    out = []
    # one meter at a time: a portfolio's 91 days of rows never sit in memory as tuples
    for meter_id, key in sorted(meter_keys(reader.meter_index()).items()):
        if key.site not in wanted:
            continue
        rows = [row for row in reader.interval_energy(start, end, meter_id)
                if row[2] is not None]
        if not rows:
            continue
        grid = np.arange(rows[0][1], end, Q_MS, dtype=np.int64)
        kwh = _on_grid(grid, [(s, e) for _m, s, e, _w in rows])
        extra: dict[str, np.ndarray] = {}
        max_w = _on_grid(grid, [(s, w) for _m, s, _e, w in rows])
        if np.isfinite(max_w).any():
            extra["max_power_w"] = max_w
        for name, quantities in GAUGES.items():
            columns = [_on_grid(grid, reader.quarter_means(
                meter_id, quantity, int(grid[0]), end, absolute=name == "power_factor"))
                for quantity in quantities]
            if any(np.isfinite(c).any() for c in columns):
                extra[name] = columns[0] if len(columns) == 1 else np.stack(columns, axis=1)
        role = "dedicated" if f"{key.site}/{key.meter}" in roles else "main"
        out.append(MeterSeries(key.site, key.meter, role, grid, kwh, **extra))
    return out


def _on_grid(grid: np.ndarray, rows: Sequence[tuple[int, float | None]]) -> np.ndarray:
    """Values of (start ms, value) rows at their place on a 15-minute grid, NaN elsewhere."""
    out = np.full(len(grid), np.nan)
    if rows and len(grid):
        starts = np.array([s for s, _ in rows], dtype=np.int64)
        values = np.array([np.nan if v is None else v for _, v in rows], dtype=float)
        col = (starts - grid[0]) // Q_MS
        ok = (col >= 0) & (col < len(grid))
        out[col[ok]] = values[ok]
    return out


def _finite(value: Any) -> Any:
    """JSON has no infinity: an endless payback is stored as null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _stored(row: dict[str, Any]) -> Opportunity | None:
    try:
        return Opportunity(**row["data"])
    except TypeError:
        log.warning("stored opportunity unreadable id=%s; it is treated as new", row["id"])
        return None


def refresh_opportunities(store: Store, reader: Reader, contexts: dict[str, SiteContext],
                          settings: EvaluationSettings, now_ms: int) -> ScanResult:
    """Scan the sites in `contexts`, reconcile with the stored opportunities and save them."""
    series = load_series(reader, contexts, now_ms, settings.scan_days, settings.dedicated_meters)
    report = run_scan(series, contexts, now_ms)
    previous = [o for o in map(_stored, reader.opportunities()) if o is not None]
    opened, updated, closed = reconcile(previous, report.opportunities, now_ms)
    store.save_opportunities(
        [(o.id, o.site, o.meter, o.kind, o.status,
          {k: _finite(v) for k, v in dataclasses.asdict(o).items()})
         for o in (*opened, *updated, *closed)], now_ms)
    log.info("savings scan meters=%d opened=%d updated=%d closed=%d errors=%d", len(series),
             len(opened), len(updated), len(closed), report.errors)
    return ScanResult(opened, updated, closed, report.errors)


# ---- alert rounds


def silences_of(rows: Iterable[dict[str, Any]]) -> list[Silence]:
    """Silences added from the CLI: a site, or one meter of it, for a time window."""
    out = []
    for row in rows:
        matchers = [Matcher("site", Op.EQ, row["site"])]
        if row["meter"]:
            matchers.append(Matcher("meter", Op.EQ, row["meter"]))
        out.append(Silence(row["id"], _at(row["starts_ms"]), _at(row["ends_ms"]),
                           tuple(matchers), row["reason"]))
    return out


def alert_rows(before: AlertState, after: Evaluation, now: datetime) -> list[dict[str, Any]]:
    """Rows of the `alert` table this round changed: firing ones, and the ones that ended."""
    rows = []
    for fp, rec in after.state.alerts.items():
        if rec.status is not Status.FIRING:
            continue
        rows.append({"alert_id": f"{fp}-{_ms(rec.active_since)}", "site": rec.site,
                     "labels": dict(rec.labels), "state": "firing",
                     "severity": str(rec.severity), "summary": rec.summary,
                     "started_ms": _ms(rec.active_since),
                     "data": {"values": dict(rec.values), "notified": rec.notified,
                              "fired_ms": _ms(rec.fired_at) if rec.fired_at else None,
                              "muted": after.suppressed.get(fp)}})
    for fp, rec in before.alerts.items():
        if fp in after.state.alerts or rec.status is not Status.FIRING:
            continue  # a pending alert that ends was never an alert
        rows.append({"alert_id": f"{fp}-{_ms(rec.active_since)}", "site": rec.site,
                     "labels": dict(rec.labels), "state": "resolved",
                     "severity": str(rec.severity), "summary": rec.summary,
                     "started_ms": _ms(rec.active_since), "resolved_ms": _ms(now),
                     "data": {"values": dict(rec.values), "notified": rec.notified,
                              "fired_ms": _ms(rec.fired_at) if rec.fired_at else None}})
    return rows


def interval_grid(reader: Reader, keys: dict[int, MeterKey], start_ms: int,
                  end_ms: int) -> IntervalGrid:
    """Import energy of every meter in `keys` on one 15-minute axis, NaN where missing."""
    order = sorted(keys, key=lambda i: keys[i])
    n = max(0, (end_ms - start_ms) // Q_MS)
    grid = np.arange(start_ms, start_ms + n * Q_MS, Q_MS, dtype=np.int64)
    energy = np.full((len(order), n), np.nan)
    for row, meter_id in enumerate(order):
        energy[row] = _on_grid(grid, [(s, kwh) for _m, s, kwh, _w in reader.interval_energy(
            start_ms, start_ms + n * Q_MS, meter_id)])
    return IntervalGrid(tuple(keys[i] for i in order), _at(start_ms), energy)


class AlertRounds:
    """One alert round per call: observations from the store, evaluate, persist, dispatch."""

    def __init__(self, config: AlertsConfig, dispatcher: Dispatcher, store: Store,
                 reader: Reader) -> None:
        self.evaluator = AlertEvaluator(config)
        self.dispatcher = dispatcher
        self.store = store
        self.reader = reader
        self._baseline: tuple[tuple[date, tuple[MeterKey, ...]], Baseline] | None = None

    def baseline(self, now: datetime, keys: dict[int, MeterKey]) -> Baseline:
        """Expected usage, learnt once a (local) day or when the set of meters changes."""
        day = now.astimezone(self.evaluator.config.calendar.tz).date()
        tag = (day, tuple(sorted(keys.values())))
        if self._baseline is None or self._baseline[0] != tag:
            end = _ms(now) // Q_MS * Q_MS
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
                meters = (g["status"] or {}).get("meters")
                if meters:
                    listed[(site, g["gateway"])] = set(meters)
        return {i for i, site, gw, meter in self.reader.meter_index()
                if (site, gw) not in listed or meter in listed[(site, gw)]}

    def observations(self, now: datetime, keys: dict[int, MeterKey]) -> Observations:
        now_ms = _ms(now)
        end = now_ms // Q_MS * Q_MS  # complete intervals only
        window_ms = int(self.evaluator.recent_window.total_seconds() * 1000)
        start = end - -(-window_ms // Q_MS) * Q_MS
        seen = self.reader.last_reading_ms(now_ms)
        read = self.read_meters()
        last_seen = {key: (_at(seen[i]) if i in seen else None) for i, key in keys.items()
                     if i in read}
        gateways = [GatewayStatus(g["site"], g["gateway"], g["state"] == "online",
                                  _at(g["state_ms"]) if g["state_ms"] else None)
                    for g in self.reader.gateways() if g["state"] in ("online", "offline")]
        window = int(self.evaluator.config.rules.counter_anomaly.window * 1000)
        samples: dict[int, list[tuple[int, float]]] = {}
        for meter_id, ts, value in self.reader.samples_of("energy_import_kwh",
                                                          now_ms - window, now_ms):
            samples.setdefault(meter_id, []).append((ts, value))
        counters = {keys[i]: CounterSeries(np.array([t / 1000 for t, _ in rows]),
                                           np.array([v for _, v in rows]))
                    for i, rows in samples.items() if i in keys}
        return Observations(now=now, recent=interval_grid(self.reader, keys, start, end),
                            last_seen=last_seen, gateways=gateways, counters=counters)

    def run(self, now: datetime) -> Evaluation:
        now = now.astimezone(UTC)
        keys = meter_keys(self.reader.meter_index())
        saved = self.reader.alert_state()
        state = AlertState.from_dict(saved) if saved else AlertState()
        silences = silences_of(self.reader.silences(after_ms=_ms(now)))
        evaluation = self.evaluator.evaluate(state, self.observations(now, keys),
                                             self.baseline(now, keys), silences)
        # the notices are saved with the state that made them and sent after the commit:
        # a crash or a receiver that is down delays a notice, it never loses one
        self.store.save_alert_round(evaluation.state.to_dict(),
                                    alert_rows(state, evaluation, now), _ms(now),
                                    [(n.receiver, n.site, n.body) for n in
                                     self.dispatcher.notices(evaluation.notifications)])
        result = deliver_notices(self.store, self.dispatcher, _ms(now))
        log.info("alert round at=%s alerts=%d notifications=%d delivered=%d failed=%d "
                 "pending=%d dropped=%d", now.isoformat(), len(evaluation.state.alerts),
                 len(evaluation.notifications), result.delivered, result.failed,
                 result.pending, result.dropped)
        return evaluation

def deliver_notices(store: Store, dispatcher: Dispatcher, now_ms: int) -> DispatchResult:
    """Send the notices that are due, oldest first, each receiver's in order.

    A receiver's notices wait behind its oldest undelivered one, so a "resolved" never
    arrives before its "firing". A failed notice is tried again after a growing pause;
    after NOTICE_MAX_AGE_MS it is given up with an error in the log.
    """
    delivered = failed = dropped = 0
    waiting: set[str] = set()  # receivers with an older notice still undelivered
    for row in store.due_notices(now_ms):
        notice = Notice(row["receiver"], row["site"], bytes(row["body"]))
        if now_ms - row["created_ms"] > NOTICE_MAX_AGE_MS:
            log.error("alert notice given up receiver=%s site=%s after %d attempt(s) "
                      "over %.0f h", notice.receiver, notice.site, row["attempts"],
                      (now_ms - row["created_ms"]) / 3_600_000)
            store.notice_delivered(row["id"])
            dropped += 1
            continue
        if notice.receiver in waiting or not row["due"]:
            waiting.add(notice.receiver)
            continue
        failure = dispatcher.deliver(notice)
        if failure is None:
            store.notice_delivered(row["id"])
            delivered += 1
        elif failure.permanent:
            log.error("alert notice dropped receiver=%s site=%s: %s", notice.receiver,
                      notice.site, failure.reason)
            store.notice_delivered(row["id"])  # never deliverable: not kept
            dropped += 1
        else:
            pause = min(NOTICE_RETRY_MS * 2 ** row["attempts"], NOTICE_RETRY_MAX_MS)
            store.notice_failed(row["id"], now_ms + pause, failure.reason)
            waiting.add(notice.receiver)
            failed += 1
    pending = len(store.due_notices(now_ms))
    return DispatchResult(delivered, failed, pending, dropped)


# ---- scheduling


def next_alert_round(now_s: float, every_s: float, delay_s: float) -> float:
    """Epoch seconds of the next round: `delay_s` after the next multiple of `every_s`."""
    return (math.floor((now_s - delay_s) / every_s) + 1) * every_s + delay_s


class EvaluationService:
    """Nightly savings scans and alert rounds on scheduler threads, on their own connection."""

    def __init__(self, config: CollectorConfig, inputs: Inputs,
                 publish: Publish | None = None) -> None:
        self.settings = config.evaluation
        self.db_path: Path = config.storage.db
        self.inputs = inputs
        self.dispatcher: Dispatcher | None = None
        if inputs.alerts is not None:
            channels = build_channels(inputs.alerts, publish=publish,
                                      source=str(self.settings.alerts_file))
            self.dispatcher = build_dispatcher(inputs.alerts, channels)
        self._lock = threading.Lock()  # one job at a time on the connection
        self._store: Store | None = None
        self._reader: Reader | None = None
        self._rounds: AlertRounds | None = None
        self._scheduler: Any = None

    def open(self) -> None:
        if self._store is None:
            self._store = Store(self.db_path)
            self._reader = Reader(self.db_path)
            if self.inputs.alerts is not None and self.dispatcher is not None:
                self._rounds = AlertRounds(self.inputs.alerts, self.dispatcher, self._store,
                                           self._reader)

    def scan(self, now_ms: int | None = None) -> ScanResult | None:
        """One savings scan now (the nightly job and `opportunities --refresh`)."""
        if self.inputs.sites is None:
            return None
        self.open()
        assert self._store is not None
        assert self._reader is not None
        with self._lock:
            return refresh_opportunities(self._store, self._reader, self.inputs.sites,
                                         self.settings,
                                         _ms(datetime.now(UTC)) if now_ms is None else now_ms)

    def alert_round(self, now: datetime | None = None) -> Evaluation | None:
        if self.inputs.alerts is None:
            return None
        self.open()
        assert self._rounds is not None
        with self._lock:
            return self._rounds.run(datetime.now(UTC) if now is None else now)

    def start(self) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self.open()
        tz = ZoneInfo(self.settings.timezone)
        scheduler = BackgroundScheduler(timezone=tz)
        if self.inputs.sites is not None:
            hour, minute = (int(x) for x in self.settings.scan_at.split(":"))
            scheduler.add_job(self._guarded, "cron", args=[self.scan], hour=hour, minute=minute,
                              id="savings-scan", coalesce=True, max_instances=1,
                              misfire_grace_time=3600)
        if self.inputs.alerts is not None:
            every, delay = self.settings.alerts_every_s, self.settings.alerts_delay_s
            first = next_alert_round(datetime.now(UTC).timestamp(), every, delay)
            scheduler.add_job(self._guarded, "interval", args=[self.alert_round], seconds=every,
                              start_date=datetime.fromtimestamp(first, UTC), id="alert-round",
                              coalesce=True, max_instances=1, misfire_grace_time=int(every))
        scheduler.start()
        self._scheduler = scheduler
        log.info("evaluation scheduled scan=%s alerts=%s", self.inputs.sites is not None,
                 self.inputs.alerts is not None)

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        if self._store is not None and self._reader is not None:
            self._store.close()
            self._reader.close()
            self._store = self._reader = None

    @staticmethod
    def _guarded(job: Any) -> None:
        try:
            job()
        except Exception:
            log.exception("evaluation job %s failed", getattr(job, "__name__", job))


def service(config: CollectorConfig, inputs: Inputs,
            publish: Publish | None = None) -> EvaluationService | None:
    """The service if the config names a sites or alerts file (ConfigError: bad receivers)."""
    if inputs.sites is None and inputs.alerts is None:
        return None
    return EvaluationService(config, inputs, publish)

