"""Deliver queued alert notices, each receiver's in order, with retries and a give-up age."""

from __future__ import annotations

import logging

from collector.alerts.channels import (
    Dispatcher,
    DispatchResult,
    Notice,
)
from collector.store import Store
from sparwatt.backoff import backoff_s

log = logging.getLogger(__name__)

# a notice its receiver refused waits 1 min, then 2, 4, ... up to an hour between tries,
# and is given up a day after its round
NOTICE_RETRY_MS, NOTICE_RETRY_MAX_MS, NOTICE_MAX_AGE_MS = 60_000, 3_600_000, 86_400_000


def deliver_notices(store: Store, dispatcher: Dispatcher, now_ms: int) -> DispatchResult:
    """Send the notices that are due, oldest first, each receiver's in order.

    A receiver's notices wait behind its oldest undelivered one, so a "resolved" never
    arrives before its "firing". A failed notice is tried again after a growing pause;
    after NOTICE_MAX_AGE_MS it is given up with an error in the log.
    """
    delivered = failed = dropped = 0
    waiting: set[str] = set()  # receivers with an older notice still undelivered
    for row in store.due_notices(now_ms):
        notice = Notice(row.receiver, row.site, row.body)
        if now_ms - row.created_ms > NOTICE_MAX_AGE_MS:
            log.error(
                "alert notice given up receiver=%s site=%s after %d attempt(s) over %.0f h",
                notice.receiver,
                notice.site,
                row.attempts,
                (now_ms - row.created_ms) / 3_600_000,
            )
            store.notice_delivered(row.id)
            dropped += 1
            continue
        if notice.receiver in waiting or not row.due:
            waiting.add(notice.receiver)
            continue
        failure = dispatcher.deliver(notice)
        if failure is None:
            store.notice_delivered(row.id)
            delivered += 1
        elif failure.permanent:
            log.error(
                "alert notice dropped receiver=%s site=%s: %s",
                notice.receiver,
                notice.site,
                failure.reason,
            )
            store.notice_delivered(row.id)  # never deliverable: not kept
            dropped += 1
        else:
            pause = int(backoff_s(row.attempts, NOTICE_RETRY_MS, NOTICE_RETRY_MAX_MS))
            store.notice_failed(row.id, now_ms + pause, failure.reason)
            waiting.add(notice.receiver)
            failed += 1
    pending = len(store.due_notices(now_ms))
    return DispatchResult(delivered, failed, pending, dropped)
