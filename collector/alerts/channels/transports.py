"""Delivery of notifications: retained MQTT state, webhook POST and e-mail.

Every channel raises ChannelError (with a message safe to log) and nothing else; the
dispatcher contains it.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from collector.alerts.notification import AlertOut, Notification, OpenAlerts
from sparwatt.backoff import backoff_s
from sparwatt.errors import ChannelError
from sparwatt.wire import alerts_topic, format_ts

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes, bool], None]  # (topic, payload, retain)


class Channel(Protocol):
    name: str

    def send(self, notification: Notification) -> None: ...


def read_secret(path: Path, channel: str, what: str) -> str:
    """Read a secret file at send time, so rotating it needs no restart."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ChannelError(channel, f"cannot read {what} {path}: {exc.strerror}") from None


class MqttChannel:
    """Publishes a site's open alerts, retained, so a dashboard sees them on connect."""

    def __init__(self, publish: Publish, name: str = "mqtt") -> None:
        self.name = name
        self._publish = publish

    def send(self, notification: Notification) -> None:
        topic = alerts_topic(notification.site)
        try:
            self._publish(topic, OpenAlerts.of(notification).to_json(), True)
        except Exception as exc:
            raise ChannelError(self.name, f"publish to {topic} failed: {exc}") from exc


# answers that will not change for the same body; 401 and 403 may, once the token file is
# fixed, and a redirect once the URL is
# a retry within one delivery never waits longer than this; later rounds retry the rest
MAX_RETRY_PAUSE_S = 30.0
_REFUSED_FOR_GOOD = frozenset({400, 404, 405, 410, 413, 415, 422})


class WebhookChannel:
    """POSTs the notification as JSON; retries connection errors, timeouts, 429 and 5xx."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 1.0,
        headers: Mapping[str, str] | None = None,
        bearer_token_file: Path | None = None,
        name: str = "webhook",
        sleep: Callable[[float], None] = time.sleep,
        client: httpx.Client | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.retries = retries
        self.backoff = backoff
        self._headers = {"Content-Type": "application/json", **(headers or {})}
        self._token_file = bearer_token_file
        self._sleep = sleep
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)
        # Webhook URLs often carry a token in the path; logs only ever show the host.
        parts = urlsplit(url)
        self._where = f"{parts.scheme}://{parts.netloc}"

    def send(self, notification: Notification) -> None:
        headers = dict(self._headers)
        if self._token_file is not None:
            token = read_secret(self._token_file, self.name, "bearer_token_file")
            headers["Authorization"] = f"Bearer {token}"
        body = notification.to_json()
        attempts = self.retries + 1
        problem = ""
        for attempt in range(attempts):
            if attempt:
                self._sleep(backoff_s(attempt - 1, self.backoff, MAX_RETRY_PAUSE_S))
            try:
                response = self._client.post(self.url, content=body, headers=headers)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if response.is_success:
                return
            problem = f"HTTP {response.status_code}"
            if response.status_code in _REFUSED_FOR_GOOD:
                # the receiver rejects this request; sending it again will not help
                raise ChannelError(
                    self.name, f"POST {self._where} refused: {problem}", permanent=True
                )
            if response.status_code < 500 and response.status_code not in (408, 429):
                break  # a redirect, or 401/403 until the token file is fixed: next round
        raise ChannelError(
            self.name, f"POST {self._where} failed after {attempt + 1} attempt(s): {problem}"
        )

    def close(self) -> None:
        self._client.close()


def _line(alert: AlertOut) -> str:
    return f"- [{alert.severity}] {alert.title}: {alert.summary}"


def render_email(
    notification: Notification, sender: str, recipients: Sequence[str]
) -> EmailMessage:
    """Plain-text mail: what fired, what resolved, how much is still open at the site."""
    lines = [f"Sparwatt alerts for site {notification.site} at {format_ts(notification.ts)}", ""]
    if notification.firing:
        lines += [f"FIRING ({len(notification.firing)})", *map(_line, notification.firing), ""]
    if notification.resolved:
        lines += [f"RESOLVED ({len(notification.resolved)})"]
        lines += [f"{_line(a)} (started {format_ts(a.starts_at)})" for a in notification.resolved]
        lines.append("")
    lines.append(f"Open alerts at {notification.site} now: {len(notification.open)}")
    message = EmailMessage()
    message["Subject"] = f"[Sparwatt] {notification.headline()}"
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(notification.ts)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content("\n".join(lines) + "\n")
    return message


class EmailChannel:
    """Sends one mail per notification over SMTP; STARTTLS is required when configured."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        starttls: bool,
        username: str | None,
        password_file: Path | None,
        sender: str,
        recipients: Sequence[str],
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        name: str = "email",
    ) -> None:
        if (username is None) != (password_file is None):
            raise ValueError("username and password_file go together")
        self.name = name
        self.host = host
        self.port = port
        self.starttls = starttls
        self.username = username
        self.password_file = password_file
        self.sender = sender
        self.recipients = list(recipients)
        self.timeout = timeout
        self._ssl = ssl_context

    def send(self, notification: Notification) -> None:
        message = render_email(notification, self.sender, self.recipients)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.ehlo()
                if self.starttls:
                    # Raises SMTPNotSupportedError if the server does not offer it: never
                    # fall back to sending in clear.
                    smtp.starttls(context=self._ssl or ssl.create_default_context())
                    smtp.ehlo()
                if self.username is not None and self.password_file is not None:
                    password = read_secret(self.password_file, self.name, "password_file")
                    smtp.login(self.username, password)
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            raise ChannelError(
                self.name,
                f"smtp {self.host}:{self.port}: {type(exc).__name__}: {exc}",
                permanent=_refused_for_good(exc),
            ) from None


def _refused_for_good(exc: Exception) -> bool:
    """A 5xx reply to the recipients or to the message itself: the same mail would be
    refused again. A refused sender, login or TLS handshake is a setting that may be fixed
    meanwhile, so those are tried again."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPDataError):
        return exc.smtp_code >= 500
    return False
