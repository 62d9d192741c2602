"""Putting credential changes into effect: the ACL rewritten, and Mosquitto reloaded.

Mosquitto re-reads its password file and ACL on SIGHUP and checks connected clients against
them again, so a revoked gateway is disconnected and refused from then on. That is why the
plain files are used rather than the dynamic-security plugin: the files are what the shipped
broker template and the by-hand script already use, they are easy to back up and to read,
and no admin password for the plugin's control topic has to live on the collector host.
"""

from __future__ import annotations

import os
import signal
import subprocess

from collector.provisioning import files
from collector.settings import Provisioning
from sparwatt import broker_acl
from sparwatt.errors import ProvisioningError

RELOAD_TIMEOUT_S = 30.0


def write_acl(p: Provisioning, password_text: str) -> None:
    text, _skipped = broker_acl.acl(
        broker_acl.users(password_text), p.admins, p.home_assistant_prefix
    )
    files.replace(p.acl_file, text)


def reload(p: Provisioning) -> str:
    """Make the broker re-read both files; how it was done, for the user."""
    if p.reload_pid_file is not None:
        text = files.read_text(p.reload_pid_file).strip()
        if not text.isdigit():
            raise ProvisioningError(f"{p.reload_pid_file}: no broker process id in it")
        try:
            os.kill(int(text), signal.SIGHUP)
        except ProcessLookupError:
            raise ProvisioningError(
                f"{p.reload_pid_file}: no process {text}; is the broker running?"
            ) from None
        except PermissionError:
            raise ProvisioningError(f"not allowed to signal broker process {text}") from None
        return f"SIGHUP to broker process {text}"
    command = p.reload_command or []
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=RELOAD_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProvisioningError(f"reload_command {command!r}: {exc}") from None
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise ProvisioningError(
            f"reload_command {command!r} exited {done.returncode}"
            + (f": {said[-1]}" if said else "")
        )
    return " ".join(command)
