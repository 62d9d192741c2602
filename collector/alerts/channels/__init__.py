"""Delivering alert notices: webhook, e-mail and MQTT channels, and the dispatcher that
sends each notice to its receivers (the only I/O of the alerting layer)."""

from collector.alerts.channels.dispatch import Dispatcher, DispatchResult, Failure, Notice
from collector.alerts.channels.factory import build_channels, build_dispatcher
from collector.alerts.channels.transports import (
    Channel,
    EmailChannel,
    MqttChannel,
    Publish,
    WebhookChannel,
)

__all__ = [
    "Channel",
    "DispatchResult",
    "Dispatcher",
    "EmailChannel",
    "Failure",
    "MqttChannel",
    "Notice",
    "Publish",
    "WebhookChannel",
    "build_channels",
    "build_dispatcher",
]
