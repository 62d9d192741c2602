"""What every web request works with: the database, time zone, live hub and clock, and the
token the caller presented."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import Request

from collector.store import Reader
from collector.web import auth
from collector.web.live import LiveHub

HERE = Path(__file__).resolve().parent


@dataclass
class WebContext:
    """What every request needs: the database, the time zone, the live hub, a clock."""

    db: Path
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Copenhagen"))
    hub: LiveHub = field(default_factory=LiveHub)
    secure_cookie: bool = False
    clock: Callable[[], float] = time.time
    sub_meters: frozenset[str] = frozenset()  # "site/meter", left out of site totals
    _local: threading.local = field(default_factory=threading.local)

    def reader(self) -> Reader:
        """A read-only connection per worker thread (sqlite connections stay in one thread)."""
        reader = getattr(self._local, "reader", None)
        if reader is None:
            reader = Reader(self.db, self.sub_meters)
            self._local.reader = reader
        return reader

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def authenticate(self, presented: str | None) -> auth.Principal | None:
        """Look the token up now; nothing is cached, so revocation and expiry are immediate."""
        if not presented or not presented.startswith(auth.PREFIX) or len(presented) > 200:
            return None
        return auth.principal_of(
            self.reader().token_by_hash(auth.digest(presented)), presented, self.now_ms()
        )


def presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(auth.COOKIE)


def ctx_of(request: Request) -> WebContext:
    return request.app.state.ctx  # type: ignore[no-any-return]
