"""Exceptions of the alerting package.

    AlertsError            anything the alerting layer raises on purpose
     └── ChannelError      a receiver could not deliver one notification; the
                           dispatcher counts and logs it and never lets it reach
                           the evaluator

Configuration mistakes raise sparwatt.configfile.ConfigError (one line per problem).
"""

from __future__ import annotations


class AlertsError(Exception):
    """Base of every deliberate alerting error."""


class ChannelError(AlertsError):
    """Delivery through `channel` failed; `reason` is one line safe to log (no secrets).

    `permanent`: the receiver refused this notification for good (a webhook's 400, a mail
    server's 550), so sending it again cannot help.
    """

    def __init__(self, channel: str, reason: str, permanent: bool = False) -> None:
        super().__init__(f"{channel}: {reason}")
        self.channel = channel
        self.reason = reason
        self.permanent = permanent
