"""Queries for commands, the web layer and the evaluation; never blocks the writer (WAL)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

from collector.store.rows import (
    AlertRow,
    GapRow,
    GatewayRow,
    JsonObject,
    LatestRow,
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
    TokenHashRow,
    TokenRow,
)
from collector.store.schema import connect

# Site totals leave out the meters in `sub_meters`: they sit behind a main meter that
# already counts their energy.
# (an uncorrelated subquery: SQLite evaluates it once per statement, not once per row)
_OUTSIDE_TOTALS = (
    "m.id NOT IN (SELECT id FROM meter WHERE (site || '/' || meter) IN "
    "(SELECT value FROM json_each(?)))"
)

_Row = TypeVar("_Row", bound=tuple[Any, ...])


@functools.cache
def _maker(cls: type[_Row]) -> Callable[[tuple[Any, ...]], _Row]:
    """Builds `cls` (a NamedTuple) from SQLite rows without the Python call per row that
    `cls._make` costs; each query's column list already fixes the length it checks."""
    return cast(Callable[[tuple[Any, ...]], _Row], functools.partial(tuple.__new__, cls))


def _json(text: str | None) -> JsonObject | None:
    return cast(JsonObject, json.loads(text)) if text else None


class Reader:
    """Read-only queries on their own connection, so they never block ingest.

    `sub_meters` ("site/meter") are meters behind a main meter of the same site: shown on
    their own, left out of every site total.
    """

    def __init__(self, path: Path, sub_meters: Iterable[str] = ()) -> None:
        self.db = connect(path, readonly=True)
        self.sub_meters = frozenset(sub_meters)
        self._sub_meters_json = json.dumps(sorted(self.sub_meters))

    def in_site_total(self, site: str, meter: str) -> bool:
        return f"{site}/{meter}" not in self.sub_meters

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _each(self, cls: type[_Row], sql: str, args: Sequence[object] = ()) -> Iterator[_Row]:
        return map(_maker(cls), self.db.execute(sql, args))

    def _all(self, cls: type[_Row], sql: str, args: Sequence[object] = ()) -> list[_Row]:
        return list(self._each(cls, sql, args))

    def latest(self, site: str | None = None) -> list[LatestRow]:
        sql = (
            "SELECT m.site, m.gateway, m.meter, s.quantity, r.ts, r.value FROM series s "
            "JOIN meter m ON m.id = s.meter_id "
            "JOIN reading r ON r.series = s.id AND r.ts = "
            "(SELECT MAX(ts) FROM reading WHERE series = s.id) "
            + ("WHERE m.site = ? " if site else "")
            + "ORDER BY m.site, m.gateway, m.meter, s.quantity"
        )
        return [LatestRow(*row) for row in self.db.execute(sql, (site,) if site else ())]

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
        yield from self._each(
            ReadingRow,
            "SELECT m.gateway, m.meter, s.quantity, r.ts, r.value FROM reading r "
            "JOIN series s ON s.id = r.series JOIN meter m ON m.id = s.meter_id "
            "WHERE m.site = ? AND r.ts >= ? AND r.ts < ? ORDER BY r.ts, m.meter, s.quantity",
            (site, from_ms, to_ms),
        )

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

    def reading_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM reading").fetchone()[0])

    # ---- web: sites, meters, tokens, opportunities and alerts

    def sites(self) -> list[str]:
        return [
            row[0]
            for row in self.db.execute(
                "SELECT site FROM gateway UNION SELECT site FROM meter ORDER BY 1"
            )
        ]

    def meters(self, site: str) -> list[MeterRow]:
        rows = self.db.execute(
            "SELECT m.gateway, m.meter, group_concat(s.quantity, ' ') FROM meter m "
            "LEFT JOIN series s ON s.meter_id = m.id WHERE m.site = ? "
            "GROUP BY m.id ORDER BY m.gateway, m.meter",
            (site,),
        )
        return [MeterRow(g, m, sorted((q or "").split())) for g, m, q in rows]

    def latest_of(self, quantity: str, site: str | None = None) -> list[LatestRow]:
        """Newest value of one quantity per meter (of one site, or all)."""
        sql = (
            "SELECT m.site, m.gateway, m.meter, r.ts, r.value FROM series s "
            "JOIN meter m ON m.id = s.meter_id "
            "JOIN reading r ON r.series = s.id AND r.ts = "
            "(SELECT MAX(ts) FROM reading WHERE series = s.id) WHERE s.quantity = ? "
            + ("AND m.site = ? " if site else "")
            + "ORDER BY m.site, m.gateway, m.meter"
        )
        args = (quantity, site) if site else (quantity,)
        return [
            LatestRow(s, g, m, quantity, ts, value)
            for s, g, m, ts, value in self.db.execute(sql, args)
        ]

    def energy_by_site(self, from_ms: int, to_ms: int) -> dict[str, float]:
        """Interval energy per site over [from_ms, to_ms)."""
        return {
            site: kwh or 0.0
            for site, kwh in self.db.execute(
                "SELECT m.site, SUM(i.energy_kwh) FROM meter m JOIN interval_energy i "
                "ON i.meter_id = m.id AND i.start_ms >= ? AND i.start_ms < ? "
                f"WHERE {_OUTSIDE_TOTALS} GROUP BY m.site",
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

    def quarter_means(
        self, meter_id: int, quantity: str, from_ms: int, to_ms: int, absolute: bool = False
    ) -> list[tuple[int, float]]:
        """(interval start ms, mean) of one meter's gauge per 15-minute interval; plain pairs,
        read straight into numpy."""
        value = "ABS(r.value)" if absolute else "r.value"
        return self.db.execute(
            f"SELECT (r.ts / 900000) * 900000 AS q, AVG({value}) FROM series s "
            "JOIN reading r ON r.series = s.id WHERE s.meter_id = ? AND s.quantity = ? "
            "AND r.ts >= ? AND r.ts < ? GROUP BY q",
            (meter_id, quantity, from_ms, to_ms),
        ).fetchall()

    def last_reading_ms(self, until_ms: int) -> dict[int, int]:
        """Newest reading time per meter, of any quantity, up to `until_ms` inclusive."""
        out: dict[int, int] = {}
        for meter_id, ts in self.db.execute(
            "SELECT s.meter_id, (SELECT MAX(ts) FROM reading WHERE series = s.id AND ts <= ?)"
            " FROM series s",
            (until_ms,),
        ):
            if ts is not None and ts > out.get(meter_id, -1):
                out[meter_id] = ts
        return out

    def samples_of(self, quantity: str, from_ms: int, to_ms: int) -> list[tuple[int, int, float]]:
        """(meter id, ts ms, value) of one quantity for every meter, oldest first; plain
        triples, read straight into numpy."""
        return self.db.execute(
            "SELECT s.meter_id, r.ts, r.value FROM series s JOIN reading r ON r.series = s.id "
            "WHERE s.quantity = ? AND r.ts >= ? AND r.ts <= ? ORDER BY s.meter_id, r.ts",
            (quantity, from_ms, to_ms),
        ).fetchall()

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
            f"WHERE m.site = ? AND i.start_ms >= ? AND i.start_ms < ? AND {_OUTSIDE_TOTALS} "
            "GROUP BY i.start_ms ORDER BY i.start_ms",
            (site, from_ms, to_ms, self._sub_meters_json),
        )
