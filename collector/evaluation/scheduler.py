"""Run savings scans and alert rounds on APScheduler threads beside ingest.

The analysis (`collector.analysis`) and alerting (`collector.alerts`) layers are pure; the
modules of this package read what they need from the store, call them, persist what they
return and hand notices to the channels. Running them on scheduler threads means neither a
scan nor a slow webhook or mail server ever holds up ingest.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from collector.alerts import (
    Evaluation,
)
from collector.alerts.channels import (
    Dispatcher,
    build_channels,
    build_dispatcher,
)
from collector.alerts.channels.transports import Publish
from collector.evaluation.alert_rounds import AlertRounds
from collector.evaluation.inputs import (
    Inputs,
)
from collector.evaluation.savings import ScanResult, refresh_opportunities
from collector.settings import CollectorConfig
from collector.store import Reader, Store
from collector.store.leases import Leases, holder_id
from collector.store.sql import Target
from sparwatt.timeutil import epoch_ms

log = logging.getLogger(__name__)

# the scheduled jobs whose runs are counted and timed in the stat table (read by /metrics)
JOBS = ("scan", "alert_round")


def job_stat(job: str, figure: str) -> str:
    """The stat name of one figure of one job: `job_scan_runs`, ..."""
    return f"job_{job}_{figure}"


def next_alert_round(now_s: float, every_s: float, delay_s: float) -> float:
    """Epoch seconds of the next round: `delay_s` after the next multiple of `every_s`."""
    return (math.floor((now_s - delay_s) / every_s) + 1) * every_s + delay_s


def alert_round_due(now_s: float, every_s: float, delay_s: float) -> float:
    """Epoch seconds of the round due at `now_s` (the newest on the schedule): what names
    the round at every collector that runs the schedule."""
    return next_alert_round(now_s, every_s, delay_s) - every_s


def scan_due(now: datetime, scan_at: str, tz: ZoneInfo) -> datetime:
    """The nightly scan due at `now`: the newest `scan_at` in `tz` at or before it."""
    hour, minute = (int(x) for x in scan_at.split(":"))
    local = now.astimezone(tz)
    due = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if due > local:
        due = (local - timedelta(days=1)).replace(hour=hour, minute=minute)
    return due


# how long a job's lease lasts: longer than a round takes, so a live holder keeps it, and for
# alert rounds shorter than the schedule, so a dead holder does not cost the next round
SCAN_LEASE_S = 3600.0
ROUND_LEASE_SHARE = 0.8
OTHER_LEASE_S = 600.0


class EvaluationService:
    """Nightly savings scans and alert rounds on scheduler threads, on their own connection."""

    def __init__(
        self, config: CollectorConfig, inputs: Inputs, publish: Publish | None = None
    ) -> None:
        self.settings = config.evaluation
        self.db_path: Target = config.storage.db
        self.inputs = inputs
        self.dispatcher: Dispatcher | None = None
        if inputs.alerts is not None:
            channels = build_channels(
                inputs.alerts, publish=publish, source=str(self.settings.alerts_file)
            )
            self.dispatcher = build_dispatcher(inputs.alerts, channels)
        self._lock = threading.Lock()  # one job at a time on the connection
        self._holder = holder_id(config.mqtt.client_id)
        self._leases: Leases | None = None
        self._lease_ms = {
            "scan": round(SCAN_LEASE_S * 1000),
            "alert_round": round(ROUND_LEASE_SHARE * self.settings.alerts_every_s * 1000),
        }
        self._store: Store | None = None
        self._reader: Reader | None = None
        self._rounds: AlertRounds | None = None
        self._scheduler: Any = None

    def open(self) -> None:
        if self._store is None:
            self._store = Store(self.db_path)
            self._reader = Reader(self.db_path)
            self._leases = Leases(self.db_path, self._holder)
            if self.inputs.alerts is not None and self.dispatcher is not None:
                self._rounds = AlertRounds(
                    self.inputs.alerts,
                    self.dispatcher,
                    self._store,
                    self._reader,
                    sites=self.inputs.sites,
                    day_tz=ZoneInfo(self.settings.timezone),
                )

    def scan(self, now_ms: int | None = None) -> ScanResult | None:
        """One savings scan now (the nightly job and `opportunities --refresh`)."""
        if self.inputs.sites is None:
            return None
        self.open()
        assert self._store is not None
        assert self._reader is not None
        with self._lock:
            return refresh_opportunities(
                self._store,
                self._reader,
                self.inputs.sites,
                self.settings,
                epoch_ms(datetime.now(UTC)) if now_ms is None else now_ms,
            )

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
            scheduler.add_job(
                self.run_job,
                "cron",
                args=["scan", self.scan, self._scan_due],
                hour=hour,
                minute=minute,
                id="savings-scan",
                coalesce=True,
                max_instances=1,
                misfire_grace_time=3600,
            )
        if self.inputs.alerts is not None:
            every, delay = self.settings.alerts_every_s, self.settings.alerts_delay_s
            first = next_alert_round(datetime.now(UTC).timestamp(), every, delay)
            scheduler.add_job(
                self.run_job,
                "interval",
                args=["alert_round", self.alert_round, self._round_due],
                seconds=every,
                start_date=datetime.fromtimestamp(first, UTC),
                id="alert-round",
                coalesce=True,
                max_instances=1,
                misfire_grace_time=int(every),
            )
        if self.settings.run_at_start:
            # one run of each as the collector starts, the alert round once the interval
            # refresh has had its delay; the schedules above go on as they are
            now = datetime.now(UTC)
            if self.inputs.sites is not None:
                scheduler.add_job(
                    self.run_job,
                    "date",
                    args=["scan", self.scan],
                    run_date=now,
                    id="savings-scan-at-start",
                    misfire_grace_time=None,
                )
            if self.inputs.alerts is not None:
                scheduler.add_job(
                    self.run_job,
                    "date",
                    args=["alert_round", self.alert_round],
                    run_date=now + timedelta(seconds=self.settings.alerts_delay_s),
                    id="alert-round-at-start",
                    misfire_grace_time=None,
                )
        scheduler.start()
        self._scheduler = scheduler
        log.info(
            "evaluation scheduled scan=%s alerts=%s",
            self.inputs.sites is not None,
            self.inputs.alerts is not None,
        )

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        if self._store is not None and self._reader is not None:
            self._store.close()
            self._reader.close()
            self._store = self._reader = None
        if self._leases is not None:
            self._leases.close()
            self._leases = None

    def _scan_due(self, now: datetime) -> int:
        return epoch_ms(scan_due(now, self.settings.scan_at, ZoneInfo(self.settings.timezone)))

    def _round_due(self, now: datetime) -> int:
        every, delay = self.settings.alerts_every_s, self.settings.alerts_delay_s
        return round(alert_round_due(now.timestamp(), every, delay) * 1000)

    def run_job(
        self, job: str, work: Callable[[], object], due: Callable[[datetime], int] | None = None
    ) -> None:
        """Run one scheduled job: a failure is logged, never raised; every run is counted
        and timed (`/metrics`), persisted so the counts outlive a restart.

        The job runs only if this collector takes its lease for the round (`due`: the
        round's scheduled time in epoch ms; none: a round of its own, which only waits
        for a run of the job elsewhere to end); a collector that took it runs it instead.
        """
        self.open()
        assert self._leases is not None
        round_ms = None if due is None else due(datetime.now(UTC))
        ttl = self._lease_ms.get(job, round(OTHER_LEASE_S * 1000))
        try:
            taken = self._leases.take(job, round_ms, ttl)
        except Exception:
            log.exception("cannot take the lease of evaluation job %s; round skipped", job)
            return
        if taken is None:
            log.info("evaluation job %s round=%s runs at another collector", job, round_ms)
            return
        started = time.monotonic()
        failed = False
        try:
            work()
        except Exception:
            failed = True
            log.exception("evaluation job %s failed", job)
        finally:
            self._give_back(job, taken)
        try:
            self._record(job, time.monotonic() - started, failed)
        except Exception:
            log.exception("cannot record the run of evaluation job %s", job)

    def _give_back(self, job: str, round_ms: int) -> None:
        assert self._leases is not None
        try:
            self._leases.release(job, round_ms)
        except Exception:  # it expires on its own
            log.exception("cannot give back the lease of evaluation job %s", job)

    def _record(self, job: str, seconds: float, failed: bool) -> None:
        self.open()
        assert self._store is not None
        assert self._reader is not None
        with self._lock:
            stats = self._reader.stats()

            def prior(figure: str) -> float:
                stat = stats.get(job_stat(job, figure))
                return float(stat.value) if stat and isinstance(stat.value, int | float) else 0.0

            with self._store.transaction():
                self._store.set_stats(
                    {
                        job_stat(job, "runs"): prior("runs") + 1,
                        job_stat(job, "failures"): prior("failures") + int(failed),
                        job_stat(job, "seconds_total"): prior("seconds_total") + seconds,
                        job_stat(job, "last_seconds"): seconds,
                    }
                )


def service(
    config: CollectorConfig, inputs: Inputs, publish: Publish | None = None
) -> EvaluationService | None:
    """The service if the config names a sites or alerts file (ConfigError: bad receivers)."""
    if inputs.sites is None and inputs.alerts is None:
        return None
    return EvaluationService(config, inputs, publish)
