"""What every web request works with: the database, the sites file, live hub and clock, and
the token the caller presented."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import Request

from collector.analysis.site_context import SiteContext, Sites
from collector.ingest.remote import Requests
from collector.store import Reader
from collector.store.sql import Target
from collector.web import auth
from collector.web.live import LiveHub

HERE = Path(__file__).resolve().parent


@dataclass
class WebContext:
    """What every request needs: the database, the sites file, the live hub, a clock."""

    db: Target  # a SQLite file or a PostgreSQL URL
    # each site's time zone, opening hours, holidays and closures; None: no sites file
    sites: Sites | None = None
    hub: LiveHub = field(default_factory=LiveHub)
    secure_cookie: bool = False
    clock: Callable[[], float] = time.time
    sub_meters: frozenset[str] = frozenset()  # "site/meter", left out of site totals
    remote: Requests | None = None  # requests to gateways; None: no broker link (tests)
    _local: threading.local = field(default_factory=threading.local)
    _no_file: Sites = field(default_factory=Sites, repr=False)

    def site_context(self, site: str) -> SiteContext | None:
        """The site's entry in the sites file; None when it has none (or there is no file)."""
        return None if self.sites is None else self.sites.context(site)

    def site_tz(self, site: str) -> ZoneInfo:
        """A site's own time zone: its entry, else the sites file's [defaults]."""
        return ZoneInfo((self.sites or self._no_file).calendar_of(site).timezone)

    @property
    def default_tz(self) -> ZoneInfo:
        """The time zone of a site the sites file does not list."""
        return ZoneInfo((self.sites or self._no_file).defaults.timezone)

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
