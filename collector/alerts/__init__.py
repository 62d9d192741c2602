"""Alerting: expected-usage baselines, rules, an Alertmanager-like lifecycle and channels."""

from collector.alerts.channels import Channel, EmailChannel, MqttChannel, WebhookChannel
from collector.alerts.config import AlertsConfig, load_alerts_config
from collector.alerts.dispatch import Dispatcher, DispatchResult, Failure, Notice
from collector.alerts.errors import AlertsError, ChannelError
from collector.alerts.evaluator import AlertEvaluator, Observations
from collector.alerts.expected import Baseline
from collector.alerts.factory import build_channels, build_dispatcher
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
    "AlertsError",
    "Baseline",
    "Channel",
    "ChannelError",
    "Condition",
    "CounterSeries",
    "DispatchResult",
    "Dispatcher",
    "EmailChannel",
    "Evaluation",
    "Failure",
    "GatewayStatus",
    "IntervalGrid",
    "MeterKey",
    "MqttChannel",
    "Notice",
    "Notification",
    "Observations",
    "OpenAlerts",
    "Severity",
    "Silence",
    "WebhookChannel",
    "advance",
    "build_channels",
    "build_dispatcher",
    "load_alerts_config",
]
