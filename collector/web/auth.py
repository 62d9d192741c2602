"""API tokens: minting, hashing, and who may see which site.

A token is shown once when it is made; the database keeps only its sha256. Every request
looks its token up again, so a revoked token stops working at the next request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from collector.store import TokenHashRow
from sparwatt import wire
from sparwatt.errors import TokenError

PREFIX = "spw_"
COOKIE = "sparwatt_token"


class Role(StrEnum):
    ADMIN = "admin"  # every site, token list
    CONSULTANT = "consultant"  # the sites assigned to the token
    COMPANY = "company"  # exactly one site: its own


@dataclass(frozen=True, slots=True)
class Principal:
    """The holder of a valid token."""

    token_id: int
    name: str
    role: Role
    sites: frozenset[str]

    def may_see(self, site: str) -> bool:
        return self.role is Role.ADMIN or site in self.sites

    def visible(self, sites: list[str]) -> list[str]:
        return [s for s in sites if self.may_see(s)]


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_grant(role: Role, sites: list[str]) -> list[str]:
    """Validate the sites a new token of `role` is given; returns them deduplicated."""
    unique = sorted(set(sites))
    bad = [s for s in unique if not re.fullmatch(wire.ID_PATTERN, s)]
    if bad:
        raise TokenError(f"not a site id: {bad[0]!r}")
    if role is Role.ADMIN and unique:
        raise TokenError("an admin token sees every site; give it no --site")
    if role is Role.COMPANY and len(unique) != 1:
        raise TokenError("a company token needs exactly one --site (its own)")
    if role is Role.CONSULTANT and not unique:
        raise TokenError("a consultant token needs at least one --site")
    return unique


def principal_of(row: TokenHashRow | None, presented: str, now_ms: int) -> Principal | None:
    """The principal for a token row found by hash; None if absent, revoked, expired or of
    an unknown role."""
    if row is None or row.revoked_ms is not None:
        return None
    if row.expires_ms is not None and now_ms >= row.expires_ms:
        return None
    if not hmac.compare_digest(row.hash, digest(presented)):
        return None
    try:
        role = Role(row.role)
    except ValueError:
        return None
    return Principal(row.id, row.name, role, frozenset(row.sites))
