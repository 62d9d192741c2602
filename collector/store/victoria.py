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

Exactness: the server keeps each value as a decimal of 12 or 13 significant digits, cut
off rather than rounded (75.000732421875 comes back as 75.0007324218). Values of up to 11
significant digits (every integer register scaled by a power of ten: 230.1 V,
12345.678 kWh), and of up to 13 above a million, come back as the same float64. A float32
meter's values (Eastron, Janitza: 230.10000610351562) and any other float64 come back
within 1e-11 of what was written. A value read back within 2e-11 of a float32 that has
more significant digits than the server keeps is taken as that float32 (`_snapped`), which
gives a float32 meter's values back exactly as written; a float32 the server could keep
whole would have come back whole, so a value near one is a decimal of its own. The digits count from
the largest value of a block of a series' samples: a value a hundred thousand times
smaller than its neighbours (a few watts in a series of hundreds of kilowatts) keeps only
7 of them, and may come back as another float32 or off by 1e-12 of the block's largest.
Meters' series keep within a few decades; 1,680,000 simulated SDM630 values
(bench/bench_scale.py's stream) all came back exactly.

Visibility: a write is acknowledged before it can be read. A sample is readable within about
a second if the server already knows its series on a day the read covers; a new series (a
new meter or quantity), and a known one on a day it had no sample yet (each series, every
UTC midnight), only after about 10 seconds, when the server has indexed it. `flush()`
makes every sample of a known series readable at once; a new series still takes up to
about a second after it (measured on a single node), which `settle()` waits out and
`make_readable()` polls for.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt

from collector.settings import Influx, Victoria
from collector.sinks.influx import ClientWriter, LineWriter, reading_line
from collector.store.packing import ReadingMatrix
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
_SNAP = 2e-11  # relative: more than the server's 12 digits may cut off (module docstring)
# how far back a meter's newest reading is looked for (a silent meter's last word)
_SILENT_MS = 400 * _DAY_MS
# meters named in one series query: its URL stays short
_METERS_PER_QUERY = 200
# meters read in one export start within this of each other
_SPREAD_MS = 6 * 3_600_000
# without a flush, how long the server may take to make a write readable (new series)
_UNFLUSHED_MS = 15_000
# a cluster answers from the storage nodes it reaches unless told to fail instead: a
# meter missing from a partial answer would look silent
_WHOLE = {"deny_partial_response": "1"}

Reading = tuple[str, str, str, int, Mapping[str, float]]  # site, gateway, meter, ts ms, values
SeriesKey = tuple[str, str, str, str]  # site, gateway, meter, quantity
MeterKey = tuple[str, str, str]  # site, gateway, meter
_Series = tuple[str, "npt.NDArray[np.int64]", "npt.NDArray[np.float64]"]  # quantity, ts, values


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where each request goes: all that differs between a single node and a cluster."""

    write_base: str  # given to influxdb-client, which appends /api/v2/write
    export: str
    query: str
    query_range: str
    series: str
    flush: tuple[str, ...]  # vmselect has no /internal/force_flush (a cluster's vmstorage has)
    metrics: str | None  # a single node's own figures

    @property
    def write(self) -> str:
        return f"{self.write_base}/api/v2/write"


def endpoints(cfg: Victoria) -> Endpoints:
    """The URLs of a single node or of one tenant of a cluster."""
    nodes = [url.rstrip("/") for url in cfg.flush_urls]
    metrics = None
    if cfg.url is not None:
        write_base = select = metrics = cfg.url.rstrip("/")
        nodes.insert(0, select)
    elif cfg.insert_url is not None and cfg.select_url is not None:
        write_base = f"{cfg.insert_url.rstrip('/')}/insert/{cfg.tenant}/influx"
        select = f"{cfg.select_url.rstrip('/')}/select/{cfg.tenant}/prometheus"
    else:
        raise ValueError("no VictoriaMetrics URL configured")
    return Endpoints(
        write_base,
        f"{select}/api/v1/export",
        f"{select}/api/v1/query",
        f"{select}/api/v1/query_range",
        f"{select}/api/v1/series",
        tuple(f"{node}/internal/force_flush" for node in nodes),
        None if metrics is None else f"{metrics}/metrics",
    )


class VictoriaRaw:
    """Writes meters' readings and reads them back, one VictoriaMetrics (node or tenant)."""

    def __init__(
        self, cfg: Victoria, writer: LineWriter | None = None, http: httpx.Client | None = None
    ) -> None:
        self.cfg = cfg
        self.endpoints = endpoints(cfg)
        # made at the first write: readers (commands, pages) never need influxdb-client
        self._writer = writer
        self._http = http or httpx.Client(timeout=cfg.timeout_ms / 1000)
        self._retention_ms: int | None = None

    def _lines_out(self) -> LineWriter:
        if self._writer is None:
            # the bucket and org influxdb-client sends along are ignored by VictoriaMetrics
            self._writer = ClientWriter(
                Influx(url=self.endpoints.write_base, timeout_ms=self.cfg.timeout_ms), None
            )
        return self._writer

    def close(self) -> None:
        if self._writer is not None:
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
                self._lines_out().write(chunk)
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
    ) -> list[tuple[int, dict[str, float]]]:
        """The meter's readings with from_ms <= ts < to_ms, oldest first, in one request."""
        by_ts: dict[int, dict[str, float]] = {}
        # a server without the dedup flag sends a repeated sample twice: by timestamp, one
        # stays
        for (_, _, _, quantity), stamps, values in self._meter(
            site, gateway, meter, from_ms, to_ms
        ):
            for ts, value in zip(stamps.tolist(), values.tolist(), strict=True):
                by_ts.setdefault(ts, {})[quantity] = value
        return sorted(by_ts.items())

    def matrices(self, starts: Mapping[tuple[str, str, str], int]) -> dict[MeterKey, ReadingMatrix]:
        """Each meter's readings from its start on, as the refresh takes them (a column per
        quantity, a row per reading time, NaN where a reading lacks the quantity), in one
        request for up to `_METERS_PER_QUERY` meters whose starts are close (`_by_start`)
        rather than one each."""
        series: dict[MeterKey, list[_Series]] = {key: [] for key in starts}
        for part in _by_start(starts):
            params = {
                "match[]": _meters_selector(part),
                "start": _seconds(max(0, min(starts[k] for k in part))),
                "end": _seconds(int(time.time() * 1000) + _AHEAD_MS),
            }
            # the selector may match a meter of one site under another's name: left out here
            for (site, gateway, meter, quantity), stamps, values in self._export(params):
                start = starts.get((site, gateway, meter))
                if start is not None:
                    keep = stamps >= start
                    series[(site, gateway, meter)].append((quantity, stamps[keep], values[keep]))
        return {key: _matrix(found) for key, found in series.items()}

    def _meter(
        self, site: str, gateway: str, meter: str, from_ms: int, to_ms: int
    ) -> Iterator[tuple[SeriesKey, npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
        from_ms = max(from_ms, 0)  # the server keeps no sample before 1970
        if to_ms <= from_ms:
            return iter(())
        params = {
            "match[]": _selector(site=site, gateway=gateway, meter=meter),
            "start": _seconds(from_ms),
            "end": _seconds(to_ms - 1),  # the export's end is inclusive
        }
        return self._export(params)

    def site_readings(
        self, site: str, from_ms: int, to_ms: int
    ) -> list[tuple[str, str, int, dict[str, float]]]:
        """(gateway, meter, ts, values) of one site's readings in [from_ms, to_ms), by time
        and meter."""
        if to_ms <= max(from_ms, 0):
            return []
        params = {
            "match[]": _selector(site=site),
            "start": _seconds(max(from_ms, 0)),
            "end": _seconds(to_ms - 1),
        }
        by_key: dict[tuple[int, str, str], dict[str, float]] = {}
        for (_, gateway, meter, quantity), stamps, values in self._export(params):
            for ts, value in zip(stamps.tolist(), values.tolist(), strict=True):
                by_key.setdefault((ts, meter, gateway), {})[quantity] = value
        return [(g, m, ts, v) for (ts, m, g), v in sorted(by_key.items())]

    def samples(
        self, quantity: str, from_ms: int, to_ms: int
    ) -> list[tuple[tuple[str, str, str], int, float]]:
        """((site, gateway, meter), ts, value) of one quantity with from_ms <= ts <= to_ms."""
        if quantity not in wire.QUANTITIES or to_ms < max(from_ms, 0):
            return []
        params = {
            "match[]": "{" + f'__name__="{_PREFIX}{quantity}"' + "}",
            "start": _seconds(max(from_ms, 0)),
            "end": _seconds(to_ms),
        }
        found: dict[tuple[MeterKey, int], float] = {}
        for (site, gateway, meter, _), stamps, values in self._export(params):
            key = (site, gateway, meter)
            for ts, value in zip(stamps.tolist(), values.tolist(), strict=True):
                found.setdefault((key, ts), value)  # a second series of it: one value stays
        return [(key, ts, value) for (key, ts), value in found.items()]

    def last_times(self, until_ms: int, meters: Collection[MeterKey]) -> dict[MeterKey, int]:
        """Each of these meters' newest reading time up to `until_ms` (within `_SILENT_MS`).

        Every meter is looked at over the hour before; only those without a reading there
        (a silent meter) over the whole span; `_METERS_PER_QUERY` meters a query. Near the
        present the server's latency offset would hide the newest half minute, so the
        instant query then runs two days ahead and a newer reading counts as `until_ms`: the
        meter was reading then.
        """
        now = int(time.time() * 1000)
        at = now + _AHEAD_MS if until_ms > now - 60_000 else until_ms
        wanted = set(meters)
        out: dict[MeterKey, int] = {}
        for window in (_RECENT_MS, _SILENT_MS):
            for part in _parts(sorted(wanted - out.keys())):
                found = self._last_times(_meters_selector(part), at, until_ms, window)
                out.update((key, ts) for key, ts in found.items() if key in wanted)
        return out

    def _last_times(
        self, selector: str, at: int, until_ms: int, window_ms: int
    ) -> dict[tuple[str, str, str], int]:
        query = (
            f"max by (site, gateway, meter) (tlast_over_time({selector}"
            f"[{window_ms + at - until_ms}ms]))"
        )
        params = {"query": query, "time": _seconds(at), "nocache": "1", **_WHOLE}
        out = {}
        for item in self._get(self.endpoints.query, params)["data"]["result"]:
            m = item["metric"]
            ts = min(until_ms, round(float(item["value"][1]) * 1000))
            out[(m["site"], m["gateway"], m["meter"])] = ts
        return out

    def settle(self) -> int | None:
        """Make what was acknowledged so far readable; returns the time (ms) before which
        everything acknowledged can now be read (None: all of it, `readable_on_ack`).

        With a flush (a single node, or a cluster's `flush_urls`): what was marked before
        now, after waiting `settle_s` (for collectors on other hosts, whose clocks may be
        that much behind), a flush, and `settle_s` more (for new series). Without one, what
        was marked `_UNFLUSHED_MS` ago: the server's own schedule.
        """
        if self.cfg.readable_on_ack:
            return None
        started = int(time.time() * 1000)
        if not self.endpoints.flush:
            return started - max(round(self.cfg.settle_s * 1000), _UNFLUSHED_MS)
        time.sleep(self.cfg.settle_s)
        self.flush()
        time.sleep(self.cfg.settle_s)
        return started

    def make_readable(self, series: Collection[SeriesKey], span: tuple[int, int]) -> None:
        """After a write (`readable_on_ack`): flush, and wait (at most `settle_s`, polling)
        until these series, new to the server, can be found over `span` (the write's first
        and last reading time, ms)."""
        self.flush()
        deadline = time.monotonic() + self.cfg.settle_s
        wanted = set(series)
        while wanted and time.monotonic() < deadline:
            for part in _parts(sorted({key[:3] for key in wanted})):
                wanted -= self._series(_meters_selector(part), *span)
            if wanted:
                time.sleep(0.02)

    def flags(self) -> dict[str, str] | None:
        """A single node's command-line flags (its /flags page); None for a cluster."""
        if self.endpoints.metrics is None:
            return None
        base = self.endpoints.metrics.removesuffix("/metrics")
        try:
            resp = self._http.get(f"{base}/flags")
        except httpx.HTTPError as exc:
            raise _unreachable(f"{base}/flags", exc) from None
        if resp.status_code >= 400:
            raise _refused(f"{base}/flags", resp)
        out = {}
        for line in resp.text.splitlines():
            name, sep, value = line.partition("=")
            if sep and name.startswith("-"):
                out[name[1:]] = value.strip('"')
        return out

    def retention_ms(self) -> int:
        """How long the server keeps readings: `retention_days`, else what a single node
        says, else its default month. Asked once."""
        if self._retention_ms is None:
            self._retention_ms = self._retention_of(
                None if self.cfg.retention_days is not None else self.flags()
            )
        return self._retention_ms

    def _retention_of(self, flags: Mapping[str, str] | None) -> int:
        days = self.cfg.retention_days
        if days is None:
            days = _days((flags or {}).get("retentionPeriod", "1"))
        return round(days * _DAY_MS)

    def problems(self, max_past_days: float) -> list[str]:
        """What a single node's flags get wrong for raw readings (none known: a cluster)."""
        flags = self.flags()
        if flags is None:
            return []
        if self._retention_ms is None:  # from the flags just read, not a second request
            self._retention_ms = self._retention_of(flags)
        out = []
        if flags.get("dedup.minScrapeInterval") != "1ms":
            out.append(
                "VictoriaMetrics runs without -dedup.minScrapeInterval=1ms: a reading "
                "delivered twice is kept twice and counted twice"
            )
        days = self.retention_ms() / _DAY_MS
        if days < max_past_days:
            out.append(
                f"VictoriaMetrics keeps readings {days:g} days (-retentionPeriod), fewer than "
                f"ingest accepts ({max_past_days:g}, ingest.max_past_days): older ones are "
                "dropped on arrival"
            )
        return out

    def data_bytes(self) -> int | None:
        """Bytes the server keeps on disk (a single node's own figure; None for a cluster)."""
        if self.endpoints.metrics is None:
            return None
        total = 0.0
        try:
            resp = self._http.get(self.endpoints.metrics)
        except httpx.HTTPError:
            return None  # a figure for `status`: away is no error there
        if resp.status_code >= 400:
            return None
        for line in resp.text.splitlines():
            if line.startswith("vm_data_size_bytes{"):
                total += float(line.rsplit(" ", 1)[1])
        return int(total)

    def latest(
        self,
        expected: Mapping[MeterKey, Collection[str]],
        site: str | None = None,
        lookback_ms: int = 14 * _DAY_MS,
    ) -> list[LatestRow]:
        """The newest value of each quantity of each `expected` meter (of one site, or all),
        by site, gateway, meter and quantity. `expected` holds each meter's quantities as the
        database knows them: the server may hold other databases' meters, and listing its
        series instead would meet its -search.maxSeries in a large fleet.

        Every meter is looked at over the last hour; an expected series without a sample
        there (a silent meter, a quantity no longer read) over `lookback_ms`, and not at all
        if it has none there either.
        """
        now = int(time.time() * 1000)
        meters = sorted(k for k in expected if site is None or k[0] == site)
        newest: dict[SeriesKey, tuple[int, float]] = {}
        for part in _parts(meters):
            found = self._newest(_meters_selector(part), now, _RECENT_MS)
            newest.update((key, v) for key, v in found.items() if key[:3] in expected)
        missing: set[SeriesKey] = set()
        if lookback_ms > _RECENT_MS:
            missing = {(*meter, q) for meter in meters for q in expected[meter]} - newest.keys()
        for part in _parts(sorted({key[:3] for key in missing})):
            older = self._newest(_meters_selector(part), now, lookback_ms)
            newest.update((key, older[key]) for key in missing if key in older)
        return [
            LatestRow(s, g, m, q, ts, value) for (s, g, m, q), (ts, value) in sorted(newest.items())
        ]

    def flush(self) -> None:
        """Make every sample written so far to a known series readable now, not on the
        server's schedule: /internal/force_flush of a single node, or of each vmstorage in
        `flush_urls` (a cluster's vmselect has none; without them it flushes on its own)."""
        for url in self.endpoints.flush:
            self._get(url, {})

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
        params = {"query": query, "time": _seconds(now + _AHEAD_MS), "nocache": "1", **_WHOLE}
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
                out[key] = (ts, _snap(half["last_over_time"]))
        return out

    def _export(
        self, params: Mapping[str, str]
    ) -> Iterator[tuple[SeriesKey, npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
        """Each series' (key, times, values as read back: see `_snapped`)."""
        for line in self._lines(self.endpoints.export, params):
            if line:
                row = json.loads(line)
                stamps = np.asarray(row["timestamps"], dtype=np.int64)
                yield _key(row["metric"]), stamps, _snapped(np.asarray(row["values"], np.float64))

    def _series(self, selector: str, start_ms: int, end_ms: int) -> set[SeriesKey]:
        params = {
            "match[]": selector,
            "start": _seconds(start_ms),
            "end": _seconds(end_ms),
            **_WHOLE,
        }
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


def _matrix(series: list[_Series]) -> ReadingMatrix:
    """One meter's series (quantity, times, values) as one matrix, quantities by name. A
    quantity in several series (labels this module does not set) is one column: at a time
    in more than one, the first series' value stays."""
    by_quantity: dict[str, list[_Series]] = {}
    for found in series:
        if len(found[1]):
            by_quantity.setdefault(found[0], []).append(found)
    if not by_quantity:
        return ReadingMatrix(np.empty(0, np.int64), (), np.empty((0, 0)))
    names = sorted(by_quantity)
    columns = []
    for q in names:
        stamps = np.concatenate([t for _, t, _ in by_quantity[q]])
        values = np.concatenate([v for _, _, v in by_quantity[q]])
        stamps, first = np.unique(stamps, return_index=True)
        columns.append((stamps, values[first]))
    ts = np.unique(np.concatenate([stamps for stamps, _ in columns]))
    out = np.full((len(ts), len(names)), np.nan)
    for column, (stamps, values) in enumerate(columns):
        out[np.searchsorted(ts, stamps), column] = values
    return ReadingMatrix(ts, tuple(names), out)


def _days(retention: str) -> float:
    """-retentionPeriod in days: a number of months, or with h, d, w or y."""
    units = {"h": 1 / 24, "d": 1.0, "w": 7.0, "y": 365.0}
    try:
        if retention[-1:] in units:
            return float(retention[:-1]) * units[retention[-1]]
        return float(retention) * 31
    except ValueError:
        return 31.0  # unreadable: the server's default month


def _parts(meters: Sequence[MeterKey]) -> Iterator[Sequence[MeterKey]]:
    """Meters `_METERS_PER_QUERY` at a time: a selector's URL stays short."""
    for first in range(0, len(meters), _METERS_PER_QUERY):
        yield meters[first : first + _METERS_PER_QUERY]


def _by_start(starts: Mapping[MeterKey, int]) -> Iterator[list[MeterKey]]:
    """Meters in groups of up to `_METERS_PER_QUERY` whose starts lie within `_SPREAD_MS`:
    one meter's old backfill is not read for all the others."""
    part: list[MeterKey] = []
    for key in sorted(starts, key=lambda k: (starts[k], k)):
        if part and (len(part) == _METERS_PER_QUERY or starts[key] - starts[part[0]] > _SPREAD_MS):
            yield part
            part = []
        part.append(key)
    if part:
        yield part


def _meters_selector(meters: Collection[MeterKey]) -> str:
    """A selector of these meters' series (maybe of more: every combination of their
    sites, gateways and names; readers keep only theirs)."""
    return _selector(
        sites=sorted({k[0] for k in meters}),
        gateways=sorted({k[1] for k in meters}),
        meters=sorted({k[2] for k in meters}),
    )


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
    sites: Collection[str] = (),
    gateways: Collection[str] = (),
) -> str:
    """A series selector of raw readings; ids are checked against the wire's id pattern, so
    nothing in them can change the query."""
    parts = [_NAMES]
    for label, value in (("site", site), ("gateway", gateway), ("meter", meter)):
        if value is not None:
            parts.append(f'{label}="{_checked(value)}"')
    for label, values in (("site", sites), ("gateway", gateways), ("meter", meters)):
        if values:
            parts.append(f'{label}=~"{"|".join(_checked(v) for v in values)}"')
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


def _snapped(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Values as read back, each replaced by the float32 it was cut from, if any: the
    float32 within `_SNAP` of it that has more significant digits than the server keeps
    (one it could keep would have come back whole, so a value near such a float32 is a
    decimal of its own: 56667088.001 kWh is not 56667088.0)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        narrow = values.astype(np.float32).astype(np.float64)  # beyond float32: inf
        near = (narrow != values) & (np.abs(narrow - values) <= _SNAP * np.abs(values))
        # the float32 scaled to 11 significant digits before the point: a fraction left
        # means more digits (exact: a float32 times 10**k for k <= 12 fits a double)
        scaled = narrow * 10.0 ** (10 - np.floor(np.log10(np.abs(narrow))))
        long = scaled != np.round(scaled)
    return np.where(near & long, narrow, values)


def _snap(value: float) -> float:
    """`_snapped` for one value."""
    return float(_snapped(np.array([value], dtype=np.float64))[0])
