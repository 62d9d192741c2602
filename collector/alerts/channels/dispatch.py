"""Route each site's notification to its receivers and deliver one notice, containing failures.

A notice is one notification for one receiver. The alert round saves its notices with its
state, then delivers them (`collector.evaluation`), so a receiver that is down gets them later.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from collector.alerts.channels.transports import Channel
from collector.alerts.notification import Notification
from sparwatt.errors import ChannelError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DispatchResult:
    delivered: int
    failed: int
    pending: int = 0  # still waiting for a receiver after this round
    dropped: int = 0  # given up on after the longest wait


@dataclass(frozen=True, slots=True)
class Failure:
    reason: str
    permanent: bool = False  # sending the same notice again cannot succeed


@dataclass(frozen=True, slots=True)
class Notice:
    receiver: str
    site: str
    body: bytes  # the notification as JSON


class Dispatcher:
    """Routes notifications to notices and sends notices; failures are logged and counted."""

    def __init__(
        self, channels: Mapping[str, Channel], route: Callable[[str], Sequence[str]]
    ) -> None:
        self._channels = dict(channels)
        self._route = route
        self.delivered: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()

    def notices(self, notifications: Iterable[Notification]) -> list[Notice]:
        """One notice for each receiver of each notification's site."""
        out: list[Notice] = []
        for notification in notifications:
            receivers = self._route(notification.site)
            if not receivers:
                log.warning(
                    "alert notification has no receiver site=%s firing=%d resolved=%d",
                    notification.site,
                    len(notification.firing),
                    len(notification.resolved),
                )
            body = notification.to_json()
            out.extend(Notice(name, notification.site, body) for name in receivers)
        return out

    def deliver(self, notice: Notice) -> Failure | None:
        """Send one notice: None once delivered, otherwise why not."""
        problem = self._send(notice)
        if problem is None:
            self.delivered[notice.receiver] += 1
        else:
            self.failures[notice.receiver] += 1
        return problem

    def _send(self, notice: Notice) -> Failure | None:
        try:
            notification = Notification.model_validate_json(notice.body)
        except ValidationError as exc:  # written by an older version, or damaged
            log.error(
                "alert notice unreadable receiver=%s site=%s: %s",
                notice.receiver,
                notice.site,
                exc.errors(include_url=False)[0]["msg"],
            )
            return Failure("unreadable notice", permanent=True)
        context = (
            notice.receiver,
            notice.site,
            len(notification.firing),
            len(notification.resolved),
        )
        channel = self._channels.get(notice.receiver)
        if channel is None:
            log.error("alert receiver unknown receiver=%s site=%s firing=%d resolved=%d", *context)
            return Failure("unknown receiver", permanent=True)
        try:
            channel.send(notification)
        except ChannelError as exc:
            log.warning(
                "alert notification failed receiver=%s site=%s firing=%d resolved=%d error=%s",
                *context,
                exc.reason,
            )
            return Failure(exc.reason, exc.permanent)
        except Exception as exc:
            # A bug in a channel must not stop the others or the evaluator; keep the trace.
            log.exception(
                "alert notification crashed receiver=%s site=%s firing=%d resolved=%d", *context
            )
            return Failure(f"{type(exc).__name__}: {exc}")
        return None
