"""Mosquitto password-file entries, hashed exactly as `mosquitto_passwd` 2.x hashes them.

Hashing here rather than calling `mosquitto_passwd -b` keeps the password off every command
line (where `ps` shows it to any user on the host) and lets one locked, atomic rewrite carry
the change; Mosquitto checks the `$7$` form (PBKDF2-SHA512) itself.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets

ITERATIONS = 101  # mosquitto_passwd's default for "$7$" (sha512-pbkdf2)
SALT_BYTES = 12


def new_password() -> str:
    """32 random URL-safe characters: nobody types it, it travels in the bundle."""
    return secrets.token_urlsafe(24)


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS)
    return f"$7${ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def with_user(text: str, user: str, encoded: str) -> str:
    """The password file with `user`'s entry set: replaced where it was, else appended."""
    entry, lines, placed = f"{user}:{encoded}", [], False
    for line in text.splitlines():
        if _name(line) != user:
            lines.append(line)
        elif not placed:
            lines.append(entry)
            placed = True
    if not placed:
        lines.append(entry)
    return "\n".join(lines) + "\n"


def without_user(text: str, user: str) -> str:
    lines = [line for line in text.splitlines() if _name(line) != user]
    return "\n".join(lines) + "\n" if lines else ""


def _name(line: str) -> str:
    return line.partition(":")[0].strip()
