"""A virtual RS485 line: two linked pseudo-terminals made by socat, for simulated RTU buses."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class SerialPairError(RuntimeError):
    """socat is missing or did not open the pair."""


@contextmanager
def serial_pair(directory: Path, timeout_s: float = 5.0) -> Iterator[tuple[Path, Path]]:
    """Yield (meters_end, gateway_end): bytes written to one arrive at the other."""
    socat = shutil.which("socat")
    if socat is None:
        raise SerialPairError(
            "socat is not installed; RTU needs it for a virtual serial line (apt-get install socat)"
        )
    meters, gateway = directory / "rs485-meters", directory / "rs485-gateway"
    proc = subprocess.Popen(
        [socat, "-d", "-d", f"pty,raw,echo=0,link={meters}", f"pty,raw,echo=0,link={gateway}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout_s
        while not (meters.exists() and gateway.exists()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SerialPairError(f"socat did not open a pty pair in {directory}")
            time.sleep(0.02)
        yield meters, gateway
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
