"""Who is asking and which sites they may see: the one check every page and API route uses."""

from __future__ import annotations

from typing import Annotated

from fastapi import HTTPException, Path, Request

from collector.web import auth
from collector.web.context import WebContext, ctx_of, presented_token
from sparwatt import wire

SiteId = Annotated[
    str, Path(pattern=wire.ID_PATTERN, examples=["acme-foods"], description="site id")
]


def caller(request: Request) -> auth.Principal | None:
    """The holder of the presented token, looked up now (revocation and expiry are immediate)."""
    return ctx_of(request).authenticate(presented_token(request))


def visible_site(ctx: WebContext, who: auth.Principal, site: str) -> str:
    """The site if it exists and the caller may see it; 404 alike for both failures, so a
    caller learns nothing about sites that are not theirs."""
    if not who.may_see(site) or site not in ctx.reader().sites():
        raise HTTPException(404, "site not found")
    return site
