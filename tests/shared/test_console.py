"""Command-line conventions shared by every Sparwatt command."""

from __future__ import annotations

import subprocess
import sys


def test_meters_piped_into_a_closed_reader_exits_quietly() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "meters", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.close()
    _, err = proc.communicate(timeout=30)
    assert b"Traceback" not in err
    assert b"BrokenPipe" not in err
