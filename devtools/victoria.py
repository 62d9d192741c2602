"""A private VictoriaMetrics (Debian's victoria-metrics) for tests and benchmarks: it speaks
InfluxDB's v2 write API and the Prometheus query and export APIs."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

from devtools.broker import free_port, wait_for_port

VM_BINARY = "/usr/bin/victoria-metrics"


class VictoriaMetricsMissing(RuntimeError):
    """The server binary is not installed: a test that needs it fails, never skips."""


class VictoriaMetrics:
    """A single-node server in its own folder on a free port, stopped by `stop()`."""

    def __init__(
        self,
        root: Path,
        port: int | None = None,
        args: tuple[str, ...] = (),
        dedup: bool = False,
        retention: str | None = None,
    ) -> None:
        """`dedup` and `retention` set up the server as the store of raw readings needs it
        (collector/store/victoria.py): a reading delivered twice (same series, same
        millisecond) is kept once, and `retention` (e.g. "400d") bounds how old a reading may
        be: older ones are dropped on arrival without an error (the default is one month)."""
        if not Path(VM_BINARY).exists() and not shutil.which("victoria-metrics"):
            raise VictoriaMetricsMissing(
                f"{VM_BINARY} is missing: install it with apt-get install victoria-metrics"
            )
        self.root = root
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # more flags, e.g. -promscrape.config=FILE to scrape /metrics
        self.args = (
            *args,
            *(("-dedup.minScrapeInterval=1ms",) if dedup else ()),
            *((f"-retentionPeriod={retention}",) if retention else ()),
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> VictoriaMetrics:
        self.root.mkdir(parents=True, exist_ok=True)
        log = (self.root / "vm.log").open("ab")
        self.proc = subprocess.Popen(
            [
                shutil.which("victoria-metrics") or VM_BINARY,
                f"-httpListenAddr=127.0.0.1:{self.port}",
                f"-storageDataPath={self.root}/data",
                *self.args,
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        wait_for_port(self.port, 20)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def export(self) -> dict[tuple[str, str], dict[int, float]]:
        """(metric, meter) -> {ts ms: value} of everything sparwatt wrote."""
        # new series become searchable on the server's own schedule (~10 s) unless flushed
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10) as resp:
            resp.read()
        query = urllib.parse.urlencode({"match[]": '{__name__=~"sparwatt_.*"}'})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=10) as resp:
            out: dict[tuple[str, str], dict[int, float]] = {}
            for line in resp.read().decode().splitlines():
                row = json.loads(line)
                key = (row["metric"]["__name__"], row["metric"]["meter"])
                out.setdefault(key, {}).update(zip(row["timestamps"], row["values"], strict=True))
            return out

    def value_count(self) -> int:
        """How many values the server holds of everything sparwatt wrote."""
        self.flush()
        query = urllib.parse.urlencode({"match[]": '{__name__=~"sparwatt_.*"}'})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=30) as resp:
            return sum(len(json.loads(line)["values"]) for line in resp.read().splitlines())

    def data_bytes(self) -> int:
        """Bytes VictoriaMetrics keeps on disk for what it stores (its data folder)."""
        return sum(f.stat().st_size for f in (self.root / "data").rglob("*") if f.is_file())

    def flush(self) -> None:
        """Make what was written searchable and on disk now, not on the server's schedule."""
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=30) as resp:
            resp.read()

    def __enter__(self) -> VictoriaMetrics:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
