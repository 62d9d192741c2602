"""Tell systemd we are ready and alive (sd_notify), when it asked us to."""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def notify(state: str, environ: dict[str, str] | None = None) -> bool:
    """Send one sd_notify datagram; False when not started by systemd with NOTIFY_SOCKET."""
    address = (environ if environ is not None else os.environ).get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:  # systemd went away or the socket is wrong: the service runs on
        log.warning("sd_notify %s to %s failed: %s", state, address, exc)
        return False
    return True


def watchdog_interval_s(environ: dict[str, str] | None = None) -> float | None:
    """Half of WatchdogSec, the ping period systemd recommends; None without a watchdog."""
    usec = (environ if environ is not None else os.environ).get("WATCHDOG_USEC")
    return int(usec) / 2_000_000 if usec else None
