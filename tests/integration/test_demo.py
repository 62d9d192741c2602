"""The README's demo command without history: readings from every simulated meter soon, a
company token that sees its own site only, clean Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def test_demo_shows_every_meter_within_30_s_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "devtools.demo", "--dir", str(root), "--no-history"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    started = time.monotonic()
    seen: set[tuple[str, str]] = set()
    header = ""
    meters = 0
    try:
        while time.monotonic() - started < 30 and (not meters or len(seen) < meters):
            line = proc.stdout.readline()
            if not line:
                break
            header += (
                line
                if any(k in line for k in ("database:", "broker:", "web:", "spw_", "history:"))
                else ""
            )
            running = re.match(r"^Sparwatt demo running: (\d+) simulated meters", line)
            meters = int(running.group(1)) if running else meters
            m = re.match(r"^(\S+)\s+(meter-\d)\s+(\d+\.\d+)\s+(\d+\.\d+)", line)
            if m:
                seen.add((m.group(1), m.group(2)))
        elapsed = time.monotonic() - started
        assert meters == 7
        assert len(seen) == meters, f"saw only {sorted(seen)} after {elapsed:.1f} s"
        assert "history:   none" in header
        assert "sparwatt.db" in header
        assert "mqtt://127.0.0.1:" in header
        web = re.search(r"web:\s+(http://127\.0\.0\.1:\d+/)", header)
        token = re.search(r"bakery-nord\s+(spw_\S+)", header)
        assert web
        assert token
        request = urllib.request.Request(
            f"{web.group(1)}api/sites", headers={"Authorization": f"Bearer {token.group(1)}"}
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            sites = [s["site"] for s in json.loads(answer.read())]
        assert sites == ["bakery-nord"], "a company token sees its own site only"
        assert _processes_mentioning(str(root)), "demo children should be running"
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=40)
    assert proc.returncode == 0
    assert "stopped" in out
    assert _processes_mentioning(str(root)) == []
