"""Raw readings in VictoriaMetrics: written as line protocol, read back per meter and as latest.

One reading becomes one line (measurement `sparwatt`, tags site/gateway/meter, a field per
quantity), which VictoriaMetrics keeps as one series per quantity, `sparwatt_<quantity>`.
Lines go through the InfluxDB sink's writer (collector/sinks/influx.py stays the only
influxdb-client user); reads use the Prometheus export and query APIs. A single node and a
cluster (vminsert and vmselect, one tenant) differ only in the URLs `endpoints` builds.

What the server must be told (docs/scaling.md):
  -dedup.minScrapeInterval=1ms  a reading delivered twice (MQTT redelivery, a replay, the sink
                                writing the same series) is kept once; without it both copies
                                are stored and every count, mean and increase sees them.
                                For one series and millisecond with different values, which
                                one stays is the server's choice (not "first wins" as in SQL).
  -retentionPeriod              longer than the oldest reading ingest accepts: older samples
                                are dropped on arrival while the write still succeeds.
A cluster needs the dedup flag on vmselect and vmstorage, the retention on vmstorage.

Exactness: the server keeps each value as a decimal of about 13 significant digits.
Values of up to 11 significant digits (every integer register scaled by a power of ten:
230.1 V, 12345.678 kWh), and of up to 13 above a million, come back as the same float64.
A float32 meter's values (Eastron, Janitza: 230.10000610351562) and any other float64 come
back within 1e-12; rounding a float32 one to float32 gives exactly what was written, so
name those quantities in `float32` when reading.

Visibility: a write is acknowledged before it can be read. A sample is readable within about
a second if the server already knows its series on a day the read covers; a new series (a
new meter or quantity), and a known one on a day it had no sample yet (each series, every
UTC midnight), only after about 10 seconds, when the server has indexed it. `flush()`
makes everything readable at once on a single node.
"""

from __future__ import annotations

import json
import re
import struct
import time
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Self
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator

from collector.settings import Influx
from collector.sinks.influx import ClientWriter, LineWriter, reading_line
from collector.store.rows import LatestRow
from sparwatt import wire
from sparwatt.errors import SinkWriteError, VictoriaError

MEASUREMENT = "sparwatt"
_PREFIX = MEASUREMENT + "_"
# the vocabulary's names only: the sink's 15-minute history (sparwatt_15m_*) shares the
# prefix and the tags
_NAMES = f'__name__=~"{_PREFIX}({"|".join(sorted(wire.QUANTITIES))})"'
# a request of 5000 readings of 28 values is about 5 MB, far below the server's 32 MB limit
_LINES_PER_REQUEST = 5000
_DAY_MS = 86_400_000
# samples more than two days ahead of the server's clock are refused on arrival, so looking
# that far ahead finds every reading it has; it also keeps an instant query clear of the
# server's latency offset, which moves an evaluation time within 30 s of now back by 30 s
_AHEAD_MS = 2 * _DAY_MS
_RECENT_MS = 3_600_000
_F32 = struct.Struct("<f")
_NO_FLOAT32: Mapping[tuple[str, str, str], Collection[str]] = MappingProxyType({})

Reading = tuple[str, str, str, int, Mapping[str, float]]  # site, gateway, meter, ts ms, values
SeriesKey = tuple[str, str, str, str]  # site, gateway, meter, quantity


class Victoria(BaseModel):
    """[storage.victoria]: a single node (`url`) or a cluster (`insert_url`, `select_url`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = Field(default=None, description="a single node, e.g. http://vm:8428")
    insert_url: str | None = Field(
        default=None, description="a cluster's vminsert, e.g. http://vminsert:8480"
    )
    select_url: str | None = Field(
        default=None, description="a cluster's vmselect, e.g. http://vmselect:8481"
    )
    tenant: str = Field(
        default="0",
        pattern=r"^[0-9]{1,10}(:[0-9]{1,10})?$",
        description="a cluster's accountID or accountID:projectID",
    )
    timeout_ms: int = Field(default=10_000, ge=100)

    @model_validator(mode="after")
    def _one_shape(self) -> Self:
        cluster = (self.insert_url, self.select_url)
        if self.url is not None and cluster != (None, None):
            raise ValueError("give url (a single node) or insert_url and select_url, not both")
        if self.url is None and None in cluster:
            raise ValueError(
                "give url (a single node) or both insert_url and select_url (a cluster)"
            )
        if self.url is not None and self.tenant != "0":
            raise ValueError("tenant is for a cluster: a single node has none")
        for name, value in (
            ("url", self.url),
            ("insert_url", cluster[0]),
            ("select_url", cluster[1]),
        ):
            if value is not None:
                _check_base(name, value)
        return self


def _check_base(name: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"{name} must be an http(s) URL without query, e.g. http://vm:8428")
    if re.search(r"/(insert|select)(/|$)", parts.path):
        raise ValueError(
            f"{name} is the server's base URL: /insert/<tenant>/ and /select/<tenant>/ are "
            "added from `tenant`"
        )


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where each request goes: all that differs between a single node and a cluster."""

    write_base: str  # given to influxdb-client, which appends /api/v2/write
    export: str
    query: str
    query_range: str
    series: str
    flush: str | None  # vmselect has no /internal/force_flush (a cluster's vmstorage has)

    @property
    def write(self) -> str:
        return f"{self.write_base}/api/v2/write"


def endpoints(cfg: Victoria) -> Endpoints:
    """The URLs of a single node or of one tenant of a cluster."""
    if cfg.url is not None:
        write_base = select = cfg.url.rstrip("/")
        flush: str | None = f"{select}/internal/force_flush"
    elif cfg.insert_url is not None and cfg.select_url is not None:
        write_base = f"{cfg.insert_url.rstrip('/')}/insert/{cfg.tenant}/influx"
        select = f"{cfg.select_url.rstrip('/')}/select/{cfg.tenant}/prometheus"
        flush = None
    else:
        raise ValueError("no VictoriaMetrics URL configured")
    return Endpoints(
        write_base,
        f"{select}/api/v1/export",
        f"{select}/api/v1/query",
        f"{select}/api/v1/query_range",
        f"{select}/api/v1/series",
        flush,
    )


class VictoriaRaw:
    """Writes meters' readings and reads them back, one VictoriaMetrics (node or tenant)."""

    def __init__(
        self, cfg: Victoria, writer: LineWriter | None = None, http: httpx.Client | None = None
    ) -> None:
        self.cfg = cfg
        self.endpoints = endpoints(cfg)
        # the bucket and org influxdb-client sends along are ignored by VictoriaMetrics
        self._writer = writer or ClientWriter(
            Influx(url=self.endpoints.write_base, timeout_ms=cfg.timeout_ms), None
        )
        self._http = http or httpx.Client(timeout=cfg.timeout_ms / 1000)

    def close(self) -> None:
        self._writer.close()
        self._http.close()

    def write(self, readings: Iterable[Reading]) -> int:
        """Send (site, gateway, meter, ts ms, values) readings; returns how many were sent.

        Raises VictoriaError when the server refuses or cannot be reached. Earlier requests of
        a large batch may have been taken then; sending the whole batch again is harmless, as
        the server keeps a repeated sample once. Success means the server holds the readings
        in memory: it writes them to disk within seconds, and drops (still with success)
        readings older than its retention or more than two days ahead of its clock.
        """
        lines = [
            reading_line(MEASUREMENT, site, gateway, meter, ts, values)
            for site, gateway, meter, ts, values in readings
            if values
        ]
        for start in range(0, len(lines), _LINES_PER_REQUEST):
            chunk = lines[start : start + _LINES_PER_REQUEST]
            try:
                self._writer.write(chunk)
            except SinkWriteError as exc:
                raise VictoriaError(
                    f"VictoriaMetrics at {self.endpoints.write} did not take {len(chunk)} "
                    f"readings: {exc}",
                    exc.retry,
                ) from None
        return len(lines)

    def readings(
        self,
        site: str,
        gateway: str,
        meter: str,
        from_ms: int,
        to_ms: int,
        float32: Collection[str] = (),
    ) -> list[tuple[int, dict[str, float]]]:
        """The meter's readings with from_ms <= ts < to_ms, oldest first, in one request.

        Quantities named in `float32` are rounded to float32 (see the module's docstring).
        """
        from_ms = max(from_ms, 0)  # the server keeps no sample before 1970
        if to_ms <= from_ms:
            return []
        params = {
            "match[]": _selector(site=site, gateway=gateway, meter=meter),
            "start": _seconds(from_ms),
            "end": _seconds(to_ms - 1),  # the export's end is inclusive
        }
        by_ts: dict[int, dict[str, float]] = {}
        for line in self._lines(self.endpoints.export, params):
            if not line:
                continue
            row = json.loads(line)
            quantity = row["metric"]["__name__"][len(_PREFIX) :]
            narrow = quantity in float32
            # a server without the dedup flag sends a repeated sample twice: by timestamp,
            # one stays
            for ts, value in zip(row["timestamps"], row["values"], strict=True):
                by_ts.setdefault(ts, {})[quantity] = _float32(value) if narrow else float(value)
        return sorted(by_ts.items())

    def latest(
        self,
        site: str | None = None,
        lookback_ms: int = 14 * _DAY_MS,
        float32: Mapping[tuple[str, str, str], Collection[str]] = _NO_FLOAT32,
    ) -> list[LatestRow]:
        """The newest value of each quantity of each meter (of one site, or all), by site,
        gateway, meter and quantity.

        Every series is looked at over the last hour; a series without a sample there (a
        silent meter, a quantity no longer read) over `lookback_ms`, and not at all if it has
        none there either. `float32` names each meter's float32 quantities by (site,
        gateway, meter).
        """
        now = int(time.time() * 1000)
        labels = {"site": site} if site else {}
        newest = self._newest(_selector(**labels), now, _RECENT_MS)
        if lookback_ms > _RECENT_MS:
            known = self._series(_selector(**labels), now - lookback_ms, now + _AHEAD_MS)
            missing = known - newest.keys()
            if missing:
                meters = sorted({meter for _, _, meter, _ in missing})
                older = self._newest(_selector(**labels, meters=meters), now, lookback_ms)
                newest.update((key, older[key]) for key in missing if key in older)
        return [
            LatestRow(s, g, m, q, ts, _float32(value) if q in float32.get((s, g, m), ()) else value)
            for (s, g, m, q), (ts, value) in sorted(newest.items())
        ]

    def flush(self) -> None:
        """Make everything written so far readable now, not on the server's schedule (for
        tests): a single node's /internal/force_flush. A cluster's vmselect has none."""
        if self.endpoints.flush is None:
            raise VictoriaError("flush() needs a single node: a cluster flushes on its own", False)
        self._get(self.endpoints.flush, {})

    # ---- requests

    def _newest(
        self, selector: str, now: int, window_ms: int
    ) -> dict[SeriesKey, tuple[int, float]]:
        """(ts, value) of each series' newest sample in [now - window_ms, now + _AHEAD_MS]."""
        # both rollups over one fetch of the samples, so a value and its time always belong
        # together (two queries could straddle a sample arriving)
        query = (
            'aggr_over_time(("last_over_time", "tlast_over_time"), '
            f"{selector}[{window_ms + _AHEAD_MS}ms]) keep_metric_names"
        )
        # nocache: a cached result would miss readings that arrive late with old timestamps
        # (a gateway catching up)
        params = {"query": query, "time": _seconds(now + _AHEAD_MS), "nocache": "1"}
        halves: dict[tuple[tuple[str, str], ...], dict[str, float]] = {}
        for item in self._get(self.endpoints.query, params)["data"]["result"]:
            metric = dict(item["metric"])
            rollup = metric.pop("rollup")
            halves.setdefault(tuple(sorted(metric.items())), {})[rollup] = float(item["value"][1])
        out: dict[SeriesKey, tuple[int, float]] = {}
        for labels, half in halves.items():
            if "last_over_time" not in half or "tlast_over_time" not in half:
                continue
            key = _key(dict(labels))
            ts = round(half["tlast_over_time"] * 1000)  # seconds with milliseconds: exact
            # a series may exist twice under labels this module does not set (e.g. a `db`
            # label some servers add from the write's bucket): the newest sample wins
            if key not in out or ts > out[key][0]:
                out[key] = (ts, half["last_over_time"])
        return out

    def _series(self, selector: str, start_ms: int, end_ms: int) -> set[SeriesKey]:
        params = {"match[]": selector, "start": _seconds(start_ms), "end": _seconds(end_ms)}
        return {_key(metric) for metric in self._get(self.endpoints.series, params)["data"]}

    def _get(self, url: str, params: Mapping[str, str]) -> Any:
        try:
            resp = self._http.get(url, params=params)
        except httpx.HTTPError as exc:
            raise _unreachable(url, exc) from None
        if resp.status_code >= 400:
            raise _refused(url, resp)
        return resp.json() if resp.content else None

    def _lines(self, url: str, params: Mapping[str, str]) -> Iterator[str]:
        try:
            with self._http.stream("GET", url, params=params) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise _refused(url, resp)
                yield from resp.iter_lines()
        except httpx.HTTPError as exc:
            raise _unreachable(url, exc) from None


def _unreachable(url: str, exc: Exception) -> VictoriaError:
    return VictoriaError(
        f"VictoriaMetrics at {url} could not be reached: {type(exc).__name__}: {exc}"[:400], True
    )


def _refused(url: str, resp: httpx.Response) -> VictoriaError:
    status = resp.status_code
    return VictoriaError(
        f"VictoriaMetrics at {url} answered HTTP {status}: {resp.text[:300]}",
        status in (408, 429) or status >= 500,
    )


def _selector(
    site: str | None = None,
    gateway: str | None = None,
    meter: str | None = None,
    meters: Collection[str] = (),
) -> str:
    """A series selector of raw readings; ids are checked against the wire's id pattern, so
    nothing in them can change the query."""
    parts = [_NAMES]
    for label, value in (("site", site), ("gateway", gateway), ("meter", meter)):
        if value is not None:
            parts.append(f'{label}="{_checked(value)}"')
    if meters:
        parts.append(f'meter=~"{"|".join(_checked(m) for m in meters)}"')
    return "{" + ",".join(parts) + "}"


def _checked(ident: str) -> str:
    if not re.fullmatch(wire.ID_PATTERN, ident):
        raise ValueError(f"not an id: {ident!r}")
    return ident


def _key(metric: Mapping[str, str]) -> SeriesKey:
    return (
        metric["site"],
        metric["gateway"],
        metric["meter"],
        metric["__name__"][len(_PREFIX) :],
    )


def _seconds(ms: int) -> str:
    """Unix seconds with milliseconds, as the APIs take them, formatted without float
    rounding."""
    return f"{ms // 1000}.{ms % 1000:03d}"


def _float32(value: float) -> float:
    """The float32 nearest to `value`, as a float64: a float32 reading read back within the
    server's precision (1e-12) is exactly the value written."""
    try:
        return float(_F32.unpack(_F32.pack(value))[0])
    except OverflowError:  # beyond float32's range: it was never one
        return float(value)
