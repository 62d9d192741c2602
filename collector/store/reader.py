"""Queries for commands, the web layer and the evaluation; never blocks the writer (SQLite's
WAL, PostgreSQL's snapshots).

One statement serves both engines wherever they agree; the few phrases they spell apart are
chosen by dialect when the reader opens, so a SQLite reader runs exactly the SQL it did."""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any, TypeVar, cast

from collector.intervals import rollup as rollup_codec
from collector.intervals.rollup import Stats
from collector.store import packing, timeseries
from collector.store.rows import (
    AlertRow,
    GapRow,
    GatewayRow,
    JsonObject,
    LatestRow,
    MeasureExclusion,
    MeasureRow,
    MeterEnergy,
    MeterRef,
    MeterRow,
    OpportunityRow,
    QuarantineRow,
    ReadingRow,
    SilenceRow,
    SiteEnergyInterval,
    SiteInterval,
    SiteTotal,
    Stat,
    StorageFigures,
    TemperatureRow,
    TokenHashRow,
    TokenRow,
)
from collector.store.schema import connect
from collector.store.sql import Dialect, Target, dialect_of

# Site totals leave out the meters in `sub_meters`: they sit behind a main meter that
# already counts their energy. The list is bound as one JSON text, which each engine
# unrolls with its own table function.
# (an uncorrelated subquery: evaluated once per statement, not once per row)
_OUTSIDE_TOTALS: dict[Dialect, str] = {
    "sqlite": "m.id NOT IN (SELECT id FROM meter WHERE (site || '/' || meter) IN "
    "(SELECT value FROM json_each(?)))",
    "postgres": "m.id NOT IN (SELECT id FROM meter WHERE (site || '/' || meter) IN "
    "(SELECT value FROM jsonb_array_elements_text(CAST(? AS jsonb))))",
}

_Row = TypeVar("_Row", bound=tuple[Any, ...])

# how far back a meter's newest readings are looked for in VictoriaMetrics
_SILENT_MS = 400 * 86_400_000


@functools.cache
def _maker(cls: type[_Row]) -> Callable[[tuple[Any, ...]], _Row]:
    """Builds `cls` (a NamedTuple) from the driver's row tuples without the Python call per
    row that `cls._make` costs; each query's column list already fixes the length it checks."""
    return cast(Callable[[tuple[Any, ...]], _Row], functools.partial(tuple.__new__, cls))


def _json(text: str | None) -> JsonObject | None:
    return cast(JsonObject, json.loads(text)) if text else None


class Reader:
    """Read-only queries on their own connection, so they never block ingest.

    `sub_meters` ("site/meter") are meters behind a main meter of the same site: shown on
    their own, left out of every site total.
    """

    def __init__(self, target: Target, sub_meters: Iterable[str] = ()) -> None:
        self.db = connect(target, readonly=True)
        self.dialect = dialect_of(self.db)
        self._outside_totals = _OUTSIDE_TOTALS[self.dialect]
        self._layouts = self._load_layouts()
        self._rollup_layouts: dict[int, str] = {}
        self.sub_meters = frozenset(sub_meters)
        self._sub_meters_json = json.dumps(sorted(self.sub_meters))
        (version,) = self.db.execute("SELECT MAX(version) FROM schema_version").fetchone()
        # raw readings in VictoriaMetrics when the database says so (an older schema: never)
        self.victoria = timeseries.open_bound(self.db) if (version or 0) >= 12 else None

    def in_site_total(self, site: str, meter: str) -> bool:
        return f"{site}/{meter}" not in self.sub_meters

    def close(self) -> None:
        self.db.close()
        if self.victoria is not None:
            self.victoria.close()

    def _meter_ids(self) -> dict[tuple[str, str, str], int]:
        return {
            (site, gateway, meter): meter_id
            for meter_id, site, gateway, meter in self.db.execute(
                "SELECT id, site, gateway, meter FROM meter"
            )
        }

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _each(self, cls: type[_Row], sql: str, args: Sequence[object] = ()) -> Iterator[_Row]:
        return map(_maker(cls), self.db.execute(sql, args))

    def _all(self, cls: type[_Row], sql: str, args: Sequence[object] = ()) -> list[_Row]:
        return list(self._each(cls, sql, args))

    def latest(self, site: str | None = None) -> list[LatestRow]:
        """The newest value of each quantity of each meter."""
        return [
            LatestRow(meter_site, gateway, meter, q, ts, value)
            for meter_site, gateway, meter, newest in self._newest(site)
            for q, (ts, value) in sorted(newest.items())
        ]

    def _newest(
        self, site: str | None
    ) -> Iterator[tuple[str, str, str, dict[str, tuple[int, float]]]]:
        """Per meter, (ts, value) of each quantity's newest reading: the newest readings are
        read back until every quantity the meter has reported is found (or 200 readings)."""
        if self.victoria is not None:
            yield from self._newest_victoria(site)
            return
        meters = self.db.execute(
            "SELECT id, site, gateway, meter, quantities FROM meter "
            + ("WHERE site = ? " if site else "")
            + "ORDER BY site, gateway, meter",
            (site,) if site else (),
        ).fetchall()
        for meter_id, meter_site, gateway, meter, quantities in meters:
            wanted = set(quantities.split())
            newest: dict[str, tuple[int, float]] = {}
            for ts, layout_id, blob in self.db.execute(
                "SELECT ts, layout, data FROM sample WHERE meter_id = ? ORDER BY ts DESC LIMIT 200",
                (meter_id,),
            ):
                for q, v in self._unpack(layout_id, blob).items():
                    newest.setdefault(q, (ts, v))
                if wanted.issubset(newest):
                    break
            if newest:
                yield meter_site, gateway, meter, newest

    def _newest_victoria(
        self, site: str | None
    ) -> Iterator[tuple[str, str, str, dict[str, tuple[int, float]]]]:
        assert self.victoria is not None
        # the meters of this database (the server may hold others) and their quantities
        expected = {
            (s, g, m): quantities.split()
            for s, g, m, quantities in self.db.execute(
                "SELECT site, gateway, meter, quantities FROM meter"
                + (" WHERE site = ?" if site else ""),
                (site,) if site else (),
            )
        }
        by_meter: dict[tuple[str, str, str], dict[str, tuple[int, float]]] = {}
        for row in self.victoria.latest(expected, site, lookback_ms=_SILENT_MS):
            key = (row.site, row.gateway, row.meter)
            by_meter.setdefault(key, {})[row.quantity] = (row.ts_ms, row.value)
        for key, newest in sorted(by_meter.items()):
            yield *key, newest

    def _unpack(self, layout_id: int, blob: bytes) -> dict[str, float]:
        layout = self._layouts.get(layout_id)
        if layout is None:  # written since this reader last looked
            self._layouts = self._load_layouts()
            layout = self._layouts[layout_id]
        return packing.unpack(layout, blob)

    def _load_layouts(self) -> dict[int, packing.Layout]:
        return {
            layout_id: packing.Layout.from_key(spec)
            for layout_id, spec in self.db.execute("SELECT id, spec FROM layout")
            if ":" in spec and not spec.startswith("15m:")
        }

    def counters(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT name, value FROM counter").fetchall())

    def stats(self) -> dict[str, Stat]:
        """Runtime figures by name."""
        return {
            name: Stat(text if value is None else value, updated)
            for name, value, text, updated in self.db.execute(
                "SELECT name, value, text, updated_ms FROM stat"
            )
        }

    def quarantine(self, limit: int, with_payload: bool = False) -> list[QuarantineRow]:
        """The newest rejected messages first; payloads only when asked for."""
        payload = "payload" if with_payload else "NULL"
        return [
            QuarantineRow(*row)
            for row in self.db.execute(
                f"SELECT id, received_ms, topic, reason, detail, size, {payload} FROM quarantine "
                "ORDER BY id DESC LIMIT ?",
                (limit,),
            )
        ]

    def quarantine_by_reason(self) -> dict[str, int]:
        """Rejected messages per reason since the database was created (outlives pruning)."""
        prefix = "quarantined."
        return {
            name[len(prefix) :]: value
            for name, value in self.db.execute(
                "SELECT name, value FROM counter WHERE name LIKE 'quarantined.%' ORDER BY name"
            )
        }

    def gaps(self, site: str | None = None) -> list[GapRow]:
        sql = "SELECT site, gateway, from_seq, to_seq, after_ms, before_ms FROM gap "
        sql += ("WHERE site = ? " if site else "") + "ORDER BY site, gateway, from_seq"
        return [GapRow(*row) for row in self.db.execute(sql, (site,) if site else ())]

    def gateways(self, site: str | None = None) -> list[GatewayRow]:
        """Every gateway, or one site's, by site and name."""
        rows = self.db.execute(
            "SELECT site, gateway, registered_ms, last_seq, last_seen_ms, state, state_ms, "
            "status, health, health_ms FROM gateway "
            + ("WHERE site = ? " if site else "")
            + "ORDER BY site, gateway",
            (site,) if site else (),
        )
        return [
            GatewayRow(s, g, reg, seq, seen, state, state_ms, _json(status), _json(health), hms)
            for s, g, reg, seq, seen, state, state_ms, status, health, hms in rows
        ]

    def raw(self, site: str, from_ms: int, to_ms: int) -> Iterator[ReadingRow]:
        """Every stored value of one site, by time."""
        if self.victoria is not None:
            ids = self._meter_ids()  # the server may hold another database's meters
            for gateway, meter, ts, values in self.victoria.site_readings(site, from_ms, to_ms):
                if (site, gateway, meter) not in ids:
                    continue
                for quantity, value in sorted(values.items()):
                    yield ReadingRow(gateway, meter, quantity, ts, value)
            return
        rows = self.db.execute(
            "SELECT m.gateway, m.meter, s.ts, s.layout, s.data FROM sample s "
            "JOIN meter m ON m.id = s.meter_id "
            "WHERE m.site = ? AND s.ts >= ? AND s.ts < ? ORDER BY s.ts, m.meter",
            (site, from_ms, to_ms),
        )
        for gateway, meter, ts, layout_id, blob in rows:
            for quantity, value in sorted(self._unpack(layout_id, blob).items()):
                yield ReadingRow(gateway, meter, quantity, ts, value)

    def intervals(self, site: str, from_ms: int, to_ms: int) -> Iterator[SiteInterval]:
        """One site's 15-minute import energy and power per meter, by start."""
        for g, m, s, e, est, _x, _xest, mp, xp in self.energy_intervals(site, from_ms, to_ms):
            yield SiteInterval(g, m, s, e, est, mp, xp)

    def energy_intervals(self, site: str, from_ms: int, to_ms: int) -> Iterator[SiteEnergyInterval]:
        """One site's 15-minute import and export energy and power per meter, by start."""
        yield from self._each(
            SiteEnergyInterval,
            "SELECT m.gateway, m.meter, i.start_ms, i.energy_kwh, i.estimated, i.export_kwh, "
            "i.export_estimated, i.mean_power_w, i.max_power_w FROM interval_energy i "
            "JOIN meter m ON m.id = i.meter_id "
            "WHERE m.site = ? AND i.start_ms >= ? AND i.start_ms < ? ORDER BY i.start_ms, m.meter",
            (site, from_ms, to_ms),
        )

    def storage(self, target: Target, now_ms: int) -> StorageFigures:
        """Disk taken by the database, by raw readings and by the history (see `_sizes`)."""
        db_bytes, raw, history = self._sizes(target)
        raw_span = rollup_span = 0.0
        meters = 0
        # raw readings in VictoriaMetrics: its own disk (a single node's figure), and no
        # span (the server's retention keeps them)
        if self.victoria is not None:
            raw = self.victoria.data_bytes() or 0
        for (meter_id,) in self.db.execute("SELECT id FROM meter").fetchall():
            (oldest,) = self.db.execute(
                "SELECT MIN(ts) FROM sample WHERE meter_id = ?", (meter_id,)
            ).fetchone()
            first, last = self.db.execute(
                "SELECT MIN(start_ms), MAX(start_ms) FROM rollup WHERE meter_id = ?", (meter_id,)
            ).fetchone()
            if oldest is not None:
                raw_span += (now_ms - oldest) / 86_400_000
                meters += 1
            if first is not None:
                rollup_span += (last - first) / 86_400_000 + 1 / 96
        return StorageFigures(
            db_bytes=db_bytes,
            raw_bytes=raw,
            rollup_bytes=history,
            raw_values=self.reading_count(),
            raw_days=raw_span / meters if meters else 0.0,
            rollup_meter_days=rollup_span,
            raw_in=None
            if self.victoria is None
            else f"VictoriaMetrics at {timeseries.where(self.victoria.cfg)}",
        )

    def _sizes(self, target: Target) -> tuple[int, int, int]:
        """Bytes of (the database, raw readings, the history), indexes included.

        SQLite: its page accounting (this reads every page: a second or so per gigabyte).
        PostgreSQL: each table's size with its indexes and TOAST.
        """
        if self.dialect == "postgres":
            raw, rollups, intervals = self.db.execute(
                "SELECT pg_total_relation_size('sample'), pg_total_relation_size('rollup'), "
                "pg_total_relation_size('interval_energy')"
            ).fetchone()
            return self.database_bytes(target), int(raw), int(rollups) + int(intervals)
        sizes = dict(
            self.db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
        )
        raw = sum(v for k, v in sizes.items() if k.startswith("sample"))
        history = sum(v for k, v in sizes.items() if k.startswith(("rollup", "interval_energy")))
        return self.database_bytes(target), raw, history

    def database_bytes(self, target: Target) -> int:
        """The database on disk: a SQLite file and its write-ahead log, or a PostgreSQL
        database (whose write-ahead log is the server's, shared by its databases)."""
        if self.dialect == "postgres":
            return int(self.db.execute("SELECT pg_database_size(current_database())").fetchone()[0])
        path = Path(target)
        files = [path, path.with_name(path.name + "-wal")]
        total = 0
        for file in files:
            with contextlib.suppress(FileNotFoundError):
                total += file.stat().st_size
        return total

    def reading_count(self) -> int:
        """Values kept raw now: all stored, less those pruned."""
        counters = self.counters()
        return counters.get("stored", 0) - counters.get("pruned", 0)

    def sites(self) -> list[str]:
        return [
            row[0]
            for row in self.db.execute(
                "SELECT site FROM gateway UNION SELECT site FROM meter ORDER BY 1"
            )
        ]

    def meters(self, site: str) -> list[MeterRow]:
        rows = self.db.execute(
            "SELECT gateway, meter, quantities, source, resolution_ms FROM meter WHERE site = ? "
            "ORDER BY gateway, meter",
            (site,),
        )
        return [MeterRow(g, m, sorted(q.split()), src, res) for g, m, q, src, res in rows]

    def latest_of(self, quantity: str, site: str | None = None) -> list[LatestRow]:
        """Newest value of one quantity per meter (of one site, or all)."""
        return [
            LatestRow(meter_site, gateway, meter, quantity, *newest[quantity])
            for meter_site, gateway, meter, newest in self._newest(site)
            if quantity in newest
        ]

    def energy_by_site(self, from_ms: int, to_ms: int) -> dict[str, float]:
        """Interval energy per site over [from_ms, to_ms)."""
        return {
            site: kwh or 0.0
            for site, kwh in self.db.execute(
                "SELECT m.site, SUM(i.energy_kwh) FROM meter m JOIN interval_energy i "
                "ON i.meter_id = m.id AND i.start_ms >= ? AND i.start_ms < ? "
                f"WHERE {self._outside_totals} GROUP BY m.site",
                (from_ms, to_ms, self._sub_meters_json),
            )
        }

    def gateways_of(self, site: str) -> list[GatewayRow]:
        """One site's gateways, by name."""
        return self.gateways(site)

    def token_by_hash(self, digest: str) -> TokenHashRow | None:
        row = self.db.execute(
            "SELECT id, name, role, sites, hash, revoked_ms, expires_ms FROM token WHERE hash = ?",
            (digest,),
        ).fetchone()
        if row is None:
            return None
        i, name, role, sites, hashed, revoked_ms, expires_ms = row
        return TokenHashRow(i, name, role, json.loads(sites), hashed, revoked_ms, expires_ms)

    def tokens(self) -> list[TokenRow]:
        return [
            TokenRow(i, name, role, json.loads(sites), created_ms, revoked_ms, expires_ms)
            for i, name, role, sites, created_ms, revoked_ms, expires_ms in self.db.execute(
                "SELECT id, name, role, sites, created_ms, revoked_ms, "
                "expires_ms FROM token ORDER BY id"
            )
        ]

    def opportunities(
        self, site: str | None = None, status: str | None = None
    ) -> list[OpportunityRow]:
        clauses = [c for c, v in (("site = ?", site), ("status = ?", status)) if v is not None]
        sql = (
            "SELECT id, site, meter, kind, status, data, updated_ms FROM opportunity "
            + ("WHERE " + " AND ".join(clauses) + " " if clauses else "")
            + "ORDER BY id"
        )
        return [
            OpportunityRow(i, s, meter, kind, state, json.loads(data), updated_ms)
            for i, s, meter, kind, state, data, updated_ms in self.db.execute(
                sql, [v for v in (site, status) if v is not None]
            )
        ]

    def alerts(self, site: str | None = None, since_ms: int = 0) -> list[AlertRow]:
        """Open alerts and those resolved since `since_ms`, newest first."""
        sql = (
            "SELECT id, site, labels, state, severity, summary, started_ms, resolved_ms, "
            "data FROM alert WHERE (resolved_ms IS NULL OR resolved_ms >= ?) "
            + ("AND site = ? " if site else "")
            + "ORDER BY started_ms DESC, id"
        )
        return [
            AlertRow(i, s, json.loads(labels), state, level, text, start, end, json.loads(data))
            for i, s, labels, state, level, text, start, end, data in self.db.execute(
                sql, (since_ms, site) if site else (since_ms,)
            )
        ]

    def site_intervals(self, site: str, from_ms: int, to_ms: int) -> list[SiteInterval]:
        """One site's 15-minute import energy and power per meter, by start and meter."""
        return self._all(
            SiteInterval,
            "SELECT m.gateway, m.meter, i.start_ms, i.energy_kwh, i.estimated, i.mean_power_w, "
            "i.max_power_w FROM meter m JOIN interval_energy i ON i.meter_id = m.id "
            "WHERE m.site = ? AND i.start_ms >= ? AND i.start_ms < ? "
            "ORDER BY i.start_ms, m.gateway, m.meter",
            (site, from_ms, to_ms),
        )

    # ---- evaluation: inputs of savings scans and alert rounds

    def meter_index(self) -> list[MeterRef]:
        """Every known meter."""
        return self._all(
            MeterRef, "SELECT id, site, gateway, meter FROM meter ORDER BY site, meter, gateway"
        )

    def resolutions(self) -> dict[int, int]:
        """Meter id -> resolution of meters with an imported history (others: 15 minutes)."""
        return dict(
            self.db.execute("SELECT id, resolution_ms FROM meter WHERE resolution_ms IS NOT NULL")
        )

    def interval_energy(
        self, from_ms: int, to_ms: int, meter_id: int | None = None
    ) -> list[MeterEnergy]:
        """Import energy and peak power over [from_ms, to_ms), of one meter or all."""
        if meter_id is None:
            return self._all(
                MeterEnergy,
                "SELECT meter_id, start_ms, energy_kwh, max_power_w FROM interval_energy "
                "WHERE start_ms >= ? AND start_ms < ?",
                (from_ms, to_ms),
            )
        return self._all(
            MeterEnergy,
            "SELECT meter_id, start_ms, energy_kwh, max_power_w FROM interval_energy "
            "WHERE meter_id = ? AND start_ms >= ? AND start_ms < ? ORDER BY start_ms",
            (meter_id, from_ms, to_ms),
        )

    def rollups(
        self, meter_id: int, from_ms: int, to_ms: int
    ) -> list[tuple[int, dict[str, Stats]]]:
        """(interval start ms, statistics by quantity) of one meter's 15-minute rollups."""
        return [
            (start, self._rollup(layout_id, blob))
            for start, layout_id, blob in self.db.execute(
                "SELECT start_ms, layout, data FROM rollup WHERE meter_id = ? AND start_ms >= ? "
                "AND start_ms < ? ORDER BY start_ms",
                (meter_id, from_ms, to_ms),
            )
        ]

    def _rollup(self, layout_id: int, blob: bytes) -> dict[str, Stats]:
        names = self._rollup_layouts.get(layout_id)
        if names is None:
            self._rollup_layouts = dict(
                self.db.execute("SELECT id, substr(spec, 5) FROM layout WHERE spec LIKE '15m:%'")
            )
            names = self._rollup_layouts[layout_id]
        return rollup_codec.unpack(names, blob)

    def last_reading_ms(self, until_ms: int) -> dict[int, int]:
        """Newest reading time per meter up to `until_ms` inclusive."""
        if self.victoria is not None:
            ids = self._meter_ids()
            return {ids[key]: ts for key, ts in self.victoria.last_times(until_ms, ids).items()}
        out: dict[int, int] = {}
        for (meter_id,) in self.db.execute("SELECT id FROM meter").fetchall():
            (ts,) = self.db.execute(
                "SELECT MAX(ts) FROM sample WHERE meter_id = ? AND ts <= ?", (meter_id, until_ms)
            ).fetchone()
            if ts is not None:
                out[meter_id] = ts
        return out

    def samples_of(self, quantity: str, from_ms: int, to_ms: int) -> list[tuple[int, int, float]]:
        """(meter id, ts ms, value) of one quantity for every meter, oldest first."""
        if self.victoria is not None:
            ids = self._meter_ids()
            found = self.victoria.samples(quantity, from_ms, to_ms)
            return sorted((ids[key], ts, v) for key, ts, v in found if key in ids)
        out = []
        # meter by meter: each is a range of the (meter, ts) key; a time range alone is not
        for (meter_id,) in self.db.execute("SELECT id FROM meter ORDER BY id").fetchall():
            for ts, layout_id, blob in self.db.execute(
                "SELECT ts, layout, data FROM sample WHERE meter_id = ? AND ts >= ? AND ts <= ? "
                "ORDER BY ts",
                (meter_id, from_ms, to_ms),
            ):
                value = self._unpack(layout_id, blob).get(quantity)
                if value is not None:
                    out.append((meter_id, ts, value))
        return out

    def alert_state(self) -> JsonObject | None:
        row = self.db.execute("SELECT data FROM alert_state WHERE id = 1").fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def silences(self, site: str | None = None, after_ms: int = 0) -> list[SilenceRow]:
        """Silences ending after `after_ms`, soonest start first."""
        sql = (
            "SELECT id, site, meter, starts_ms, ends_ms, reason, created_ms FROM silence "
            "WHERE ends_ms > ? " + ("AND site = ? " if site else "") + "ORDER BY starts_ms, id"
        )
        return [
            SilenceRow(*row)
            for row in self.db.execute(sql, (after_ms, site) if site else (after_ms,))
        ]

    def site_totals(self, site: str, from_ms: int, to_ms: int) -> list[SiteTotal]:
        """Per 15-minute start, summed over the site's meters (not its sub-meters)."""
        return self._all(
            SiteTotal,
            "SELECT i.start_ms, SUM(i.energy_kwh), MAX(i.estimated), SUM(i.mean_power_w), "
            "SUM(i.max_power_w) FROM meter m JOIN interval_energy i ON i.meter_id = m.id "
            f"WHERE m.site = ? AND i.start_ms >= ? AND i.start_ms < ? AND {self._outside_totals} "
            "GROUP BY i.start_ms ORDER BY i.start_ms",
            (site, from_ms, to_ms, self._sub_meters_json),
        )

    # ---- verified savings: measures and outdoor temperature

    def measures(self, site: str | None = None) -> list[MeasureRow]:
        """Every measure, or one site's, by site and installation date."""
        sql = (
            f"SELECT {_MEASURE_COLUMNS} FROM measure "
            + ("WHERE site = ? " if site else "")
            + "ORDER BY site, installed_from, id"
        )
        return [_measure(row) for row in self.db.execute(sql, (site,) if site else ())]

    def measure(self, measure_id: str) -> MeasureRow | None:
        row = self.db.execute(
            f"SELECT {_MEASURE_COLUMNS} FROM measure WHERE id = ?", (measure_id,)
        ).fetchone()
        return None if row is None else _measure(row)

    def temperatures(self, site: str, from_ms: int, to_ms: int) -> list[TemperatureRow]:
        """A site's hourly outdoor temperatures starting in [from_ms, to_ms), by time."""
        return self._all(
            TemperatureRow,
            "SELECT start_ms, celsius FROM temperature WHERE site = ? AND start_ms >= ? "
            "AND start_ms < ? ORDER BY start_ms",
            (site, from_ms, to_ms),
        )


_MEASURE_COLUMNS = (
    "id, site, meters, kind, title, installed_from, installed_to, investment_dkk, "
    "expected_kwh_year, opportunity_id, model, exclusions, note, created_ms, updated_ms"
)


def _measure(row: tuple[Any, ...]) -> MeasureRow:
    (i, site, meters, kind, title, first, last, dkk, kwh, opp, model, excl, note, c, u) = row
    return MeasureRow(
        id=i,
        site=site,
        meters=list(json.loads(meters)),
        kind=kind,
        title=title,
        installed_from=date.fromisoformat(first),
        installed_to=None if last is None else date.fromisoformat(last),
        investment_dkk=dkk,
        expected_kwh_year=kwh,
        opportunity_id=opp,
        model=model,
        exclusions=[
            MeasureExclusion(
                date.fromisoformat(e["start"]), date.fromisoformat(e["end"]), e.get("label", "")
            )
            for e in json.loads(excl)
        ],
        note=note,
        created_ms=c,
        updated_ms=u,
    )
