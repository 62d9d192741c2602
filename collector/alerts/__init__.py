"""Alerting, pure: expected-usage baselines, rules, silences and an Alertmanager-like lifecycle.

Delivering notices (webhook, e-mail, MQTT) is I/O and lives in `collector.alerts.channels`.
"""

from collector.alerts.config import AlertsConfig, load_alerts_config
from collector.alerts.evaluator import AlertEvaluator, Observations
from collector.alerts.expected import Baseline
from collector.alerts.lifecycle import AlertState, Evaluation, advance
from collector.alerts.model import (
    Condition,
    CounterSeries,
    GatewayStatus,
    IntervalGrid,
    MeterKey,
    Severity,
)
from collector.alerts.notification import AlertOut, Notification, OpenAlerts
from collector.alerts.silences import Silence

__all__ = [
    "AlertEvaluator",
    "AlertOut",
    "AlertState",
    "AlertsConfig",
    "Baseline",
    "Condition",
    "CounterSeries",
    "Evaluation",
    "GatewayStatus",
    "IntervalGrid",
    "MeterKey",
    "Notification",
    "Observations",
    "OpenAlerts",
    "Severity",
    "Silence",
    "advance",
    "load_alerts_config",
]
