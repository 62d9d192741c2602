"""Broker files replaced whole and under a lock, keeping their owner and mode."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from sparwatt.errors import ProvisioningError

NEW_FILE_MODE = 0o640  # Mosquitto reads these after dropping root, as its own group


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside `path`: two admins adding gateways at the same time
    must not each write a password file without the other's entry."""
    lock = path.with_name(f".{path.name}.lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ProvisioningError(f"{lock}: cannot lock: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_text(path: Path) -> str:
    """The file's text; empty when it does not exist yet."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise ProvisioningError(f"{path}: cannot read: {exc.strerror}") from None


def replace(path: Path, text: str) -> None:
    """Write `text` to `path` atomically, with the old file's owner and mode (a new file:
    0640 with the folder's group), so the broker never reads half a file."""
    tmp = path.with_name(f".{path.name}.new")
    try:
        try:
            st = path.stat()
            mode, uid, gid = st.st_mode & 0o777, st.st_uid, st.st_gid
        except FileNotFoundError:
            mode, uid, gid = NEW_FILE_MODE, -1, path.parent.stat().st_gid
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if os.geteuid() == 0:
            os.chown(tmp, uid, gid)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ProvisioningError(f"{path}: cannot write: {exc.strerror}") from None
