"""Turn the validated receivers of an AlertsConfig into channels and a routing dispatcher."""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Callable
from pathlib import Path

from collector.alerts.channels.dispatch import Dispatcher
from collector.alerts.channels.transports import (
    Channel,
    EmailChannel,
    MqttChannel,
    Publish,
    WebhookChannel,
)
from collector.alerts.config import AlertsConfig, EmailReceiver, MqttReceiver, WebhookReceiver
from sparwatt.errors import ConfigError


def _readable(path: Path | None, where: str, problems: list[str]) -> None:
    if path is not None and not os.access(path, os.R_OK):
        problems.append(f"{where}: cannot read {path}")


def build_channels(
    config: AlertsConfig,
    publish: Publish | None = None,
    sleep: Callable[[float], None] = time.sleep,
    source: str = "alerts config",
) -> dict[str, Channel]:
    """One channel per receiver; checks secret files now so a typo stops start-up, not a page."""
    problems: list[str] = []
    channels: dict[str, Channel] = {}
    for name, rx in config.receivers.items():
        where = f"{source}: receivers.{name}"
        if isinstance(rx, MqttReceiver):
            if publish is None:
                problems.append(f"{where}: an mqtt receiver needs the collector's MQTT client")
                continue
            channels[name] = MqttChannel(publish, name=name)
        elif isinstance(rx, WebhookReceiver):
            _readable(rx.bearer_token_file, f"{where}.bearer_token_file", problems)
            channels[name] = WebhookChannel(
                rx.url,
                timeout=rx.timeout,
                retries=rx.retries,
                backoff=rx.backoff,
                headers=rx.headers,
                bearer_token_file=rx.bearer_token_file,
                name=name,
                sleep=sleep,
            )
        elif isinstance(rx, EmailReceiver):
            _readable(rx.password_file, f"{where}.password_file", problems)
            context = None
            if rx.ca_file is not None:
                _readable(rx.ca_file, f"{where}.ca_file", problems)
                try:
                    context = ssl.create_default_context(cafile=str(rx.ca_file))
                except (ssl.SSLError, OSError) as exc:
                    problems.append(f"{where}.ca_file: not a usable CA file: {exc}")
            channels[name] = EmailChannel(
                rx.host,
                rx.port,
                starttls=rx.starttls,
                username=rx.username,
                password_file=rx.password_file,
                sender=rx.sender,
                recipients=rx.recipients,
                timeout=rx.timeout,
                ssl_context=context,
                name=name,
            )
    if problems:
        raise ConfigError(problems)
    return channels


def build_dispatcher(config: AlertsConfig, channels: dict[str, Channel]) -> Dispatcher:
    return Dispatcher(channels, config.receivers_for)
