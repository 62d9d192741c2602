"""Deliver each site's notification to its receivers, containing every failure."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from collector.alerts.channels import Channel
from collector.alerts.errors import ChannelError
from collector.alerts.notification import Notification

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DispatchResult:
    delivered: int
    failed: int


class Dispatcher:
    """Sends notifications; a failing channel is logged once per notification and counted."""

    def __init__(
        self, channels: Mapping[str, Channel], route: Callable[[str], Sequence[str]]
    ) -> None:
        self._channels = dict(channels)
        self._route = route
        self.delivered: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()

    def send(self, notifications: Iterable[Notification]) -> DispatchResult:
        delivered = failed = 0
        for notification in notifications:
            receivers = self._route(notification.site)
            if not receivers:
                log.warning(
                    "alert notification has no receiver site=%s firing=%d resolved=%d",
                    notification.site,
                    len(notification.firing),
                    len(notification.resolved),
                )
            for name in receivers:
                if self._deliver(name, notification):
                    delivered += 1
                    self.delivered[name] += 1
                else:
                    failed += 1
                    self.failures[name] += 1
        return DispatchResult(delivered, failed)

    def _deliver(self, name: str, notification: Notification) -> bool:
        context = (name, notification.site, len(notification.firing), len(notification.resolved))
        channel = self._channels.get(name)
        if channel is None:
            log.error("alert receiver unknown receiver=%s site=%s firing=%d resolved=%d", *context)
            return False
        try:
            channel.send(notification)
        except ChannelError as exc:
            log.warning(
                "alert notification failed receiver=%s site=%s firing=%d resolved=%d error=%s",
                *context,
                exc.reason,
            )
            return False
        except Exception:
            # A bug in a channel must not stop the others or the evaluator; keep the trace.
            log.exception(
                "alert notification crashed receiver=%s site=%s firing=%d resolved=%d", *context
            )
            return False
        return True
