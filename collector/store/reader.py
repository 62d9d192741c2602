"""Queries for commands, the web layer and the evaluation; never blocks the writer (WAL)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from collector.store.schema import connect

# Site totals leave out the meters in `sub_meters`: they sit behind a main meter that
# already counts their energy.
# (an uncorrelated subquery: SQLite evaluates it once per statement, not once per row)
_OUTSIDE_TOTALS = (
    "m.id NOT IN (SELECT id FROM meter WHERE (site || '/' || meter) IN "
    "(SELECT value FROM json_each(?)))"
)


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

    def latest(self, site: str | None = None) -> list[dict[str, Any]]:
        sql = (
            "SELECT m.site, m.gateway, m.meter, s.quantity, r.ts, r.value FROM series s "
            "JOIN meter m ON m.id = s.meter_id "
            "JOIN reading r ON r.series = s.id AND r.ts = "
            "(SELECT MAX(ts) FROM reading WHERE series = s.id) "
            + ("WHERE m.site = ? " if site else "")
            + "ORDER BY m.site, m.gateway, m.meter, s.quantity"
        )
        keys = ("site", "gateway", "meter", "quantity", "ts_ms", "value")
        return [
            dict(zip(keys, row, strict=True))
            for row in self.db.execute(sql, (site,) if site else ())
        ]

    def counters(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT name, value FROM counter").fetchall())

    def stats(self) -> dict[str, tuple[float | str | None, int]]:
        """Runtime figures: name -> (value, updated epoch ms)."""
        return {
            name: (text if value is None else value, updated)
            for name, value, text, updated in self.db.execute(
                "SELECT name, value, text, updated_ms FROM stat"
            )
        }

    def quarantine(self, limit: int, with_payload: bool = False) -> list[dict[str, Any]]:
        keys = ["id", "received_ms", "topic", "reason", "detail", "size"]
        if with_payload:
            keys.append("payload")
        cols = ", ".join(keys)
        return [
            dict(zip(keys, row, strict=True))
            for row in self.db.execute(
                f"SELECT {cols} FROM quarantine ORDER BY id DESC LIMIT ?", (limit,)
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

    def gaps(self, site: str | None = None) -> list[dict[str, Any]]:
        keys = ("site", "gateway", "from_seq", "to_seq", "after_ms", "before_ms")
        sql = "SELECT site, gateway, from_seq, to_seq, after_ms, before_ms FROM gap "
        sql += ("WHERE site = ? " if site else "") + "ORDER BY site, gateway, from_seq"
        return [
            dict(zip(keys, r, strict=True)) for r in self.db.execute(sql, (site,) if site else ())
        ]

    def gateways(self) -> list[dict[str, Any]]:
        keys = ("site", "gateway", "last_seq", "last_seen_ms", "state", "state_ms", "health")
        out = []
        for row in self.db.execute(
            "SELECT site, gateway, last_seq, last_seen_ms, state, "
            "state_ms, health FROM gateway ORDER BY site, gateway"
        ):
            entry = dict(zip(keys, row, strict=True))
            entry["health"] = json.loads(entry["health"]) if entry["health"] else None
            out.append(entry)
        return out

    def raw(self, site: str, from_ms: int, to_ms: int) -> Iterator[tuple[Any, ...]]:
        """(gateway, meter, quantity, ts ms, value) of one site, by time."""
        yield from self.db.execute(
            "SELECT m.gateway, m.meter, s.quantity, r.ts, r.value FROM reading r "
            "JOIN series s ON s.id = r.series JOIN meter m ON m.id = s.meter_id "
            "WHERE m.site = ? AND r.ts >= ? AND r.ts < ? ORDER BY r.ts, m.meter, s.quantity",
            (site, from_ms, to_ms),
        )

    def intervals(self, site: str, from_ms: int, to_ms: int) -> Iterator[tuple[Any, ...]]:
        """(gateway, meter, start ms, import kWh, estimated, mean W, max W), by start."""
        for g, m, s, e, est, _x, _xest, mp, xp in self.energy_intervals(site, from_ms, to_ms):
            yield g, m, s, e, est, mp, xp

    def energy_intervals(self, site: str, from_ms: int, to_ms: int) -> Iterator[tuple[Any, ...]]:
        """(gateway, meter, start ms, import kWh, est, export kWh, est, mean W, max W)."""
        yield from self.db.execute(
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

    def meters(self, site: str) -> list[dict[str, Any]]:
        keys = ("gateway", "meter", "quantities")
        rows = self.db.execute(
            "SELECT m.gateway, m.meter, group_concat(s.quantity, ' ') FROM meter m "
            "LEFT JOIN series s ON s.meter_id = m.id WHERE m.site = ? "
            "GROUP BY m.id ORDER BY m.gateway, m.meter",
            (site,),
        )
        return [dict(zip(keys, (g, m, sorted((q or "").split())), strict=True)) for g, m, q in rows]

    def latest_of(self, quantity: str, site: str | None = None) -> list[dict[str, Any]]:
        """Newest value of one quantity per meter (of one site, or all)."""
        keys = ("site", "gateway", "meter", "ts_ms", "value")
        sql = (
            "SELECT m.site, m.gateway, m.meter, r.ts, r.value FROM series s "
            "JOIN meter m ON m.id = s.meter_id "
            "JOIN reading r ON r.series = s.id AND r.ts = "
            "(SELECT MAX(ts) FROM reading WHERE series = s.id) WHERE s.quantity = ? "
            + ("AND m.site = ? " if site else "")
            + "ORDER BY m.site, m.gateway, m.meter"
        )
        args = (quantity, site) if site else (quantity,)
        return [dict(zip(keys, row, strict=True)) for row in self.db.execute(sql, args)]

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

    def gateways_of(self, site: str) -> list[dict[str, Any]]:
        keys = (
            "gateway",
            "registered_ms",
            "last_seq",
            "last_seen_ms",
            "state",
            "state_ms",
            "status",
            "health",
        )
        out = []
        for row in self.db.execute(
            "SELECT gateway, registered_ms, last_seq, last_seen_ms, state, state_ms, status, "
            "health FROM gateway WHERE site = ? ORDER BY gateway",
            (site,),
        ):
            entry = dict(zip(keys, row, strict=True))
            for key in ("status", "health"):
                entry[key] = json.loads(entry[key]) if entry[key] else None
            out.append(entry)
        return out

    def token_by_hash(self, digest: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT id, name, role, sites, hash, revoked_ms, expires_ms FROM token WHERE hash = ?",
            (digest,),
        ).fetchone()
        if row is None:
            return None
        keys = ("id", "name", "role", "sites", "hash", "revoked_ms", "expires_ms")
        entry = dict(zip(keys, row, strict=True))
        entry["sites"] = json.loads(entry["sites"])
        return entry

    def tokens(self) -> list[dict[str, Any]]:
        keys = ("id", "name", "role", "sites", "created_ms", "revoked_ms", "expires_ms")
        out = []
        for row in self.db.execute(
            "SELECT id, name, role, sites, created_ms, revoked_ms, "
            "expires_ms FROM token ORDER BY id"
        ):
            entry = dict(zip(keys, row, strict=True))
            entry["sites"] = json.loads(entry["sites"])
            out.append(entry)
        return out

    def opportunities(
        self, site: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        keys = ("id", "site", "meter", "kind", "status", "data", "updated_ms")
        clauses = [c for c, v in (("site = ?", site), ("status = ?", status)) if v is not None]
        sql = (
            "SELECT id, site, meter, kind, status, data, updated_ms FROM opportunity "
            + ("WHERE " + " AND ".join(clauses) + " " if clauses else "")
            + "ORDER BY id"
        )
        out = []
        for row in self.db.execute(sql, [v for v in (site, status) if v is not None]):
            entry = dict(zip(keys, row, strict=True))
            entry["data"] = json.loads(entry["data"])
            out.append(entry)
        return out

    def alerts(self, site: str | None = None, since_ms: int = 0) -> list[dict[str, Any]]:
        """Open alerts and those resolved since `since_ms`, newest first."""
        keys = (
            "id",
            "site",
            "labels",
            "state",
            "severity",
            "summary",
            "started_ms",
            "resolved_ms",
            "data",
        )
        sql = (
            "SELECT id, site, labels, state, severity, summary, started_ms, resolved_ms, "
            "data FROM alert WHERE (resolved_ms IS NULL OR resolved_ms >= ?) "
            + ("AND site = ? " if site else "")
            + "ORDER BY started_ms DESC, id"
        )
        out = []
        for row in self.db.execute(sql, (since_ms, site) if site else (since_ms,)):
            entry = dict(zip(keys, row, strict=True))
            entry["labels"] = json.loads(entry["labels"])
            entry["data"] = json.loads(entry["data"])
            out.append(entry)
        return out

    def site_intervals(self, site: str, from_ms: int, to_ms: int) -> list[tuple[Any, ...]]:
        """(gateway, meter, start ms, import kWh, estimated, mean W, max W) of one site."""
        return self.db.execute(
            "SELECT m.gateway, m.meter, i.start_ms, i.energy_kwh, i.estimated, i.mean_power_w, "
            "i.max_power_w FROM meter m JOIN interval_energy i ON i.meter_id = m.id "
            "WHERE m.site = ? AND i.start_ms >= ? AND i.start_ms < ? "
            "ORDER BY i.start_ms, m.gateway, m.meter",
            (site, from_ms, to_ms),
        ).fetchall()

    # ---- evaluation: inputs of savings scans and alert rounds

    def meter_index(self) -> list[tuple[int, str, str, str]]:
        """(meter id, site, gateway, meter) of every known meter."""
        return self.db.execute(
            "SELECT id, site, gateway, meter FROM meter ORDER BY site, meter, gateway"
        ).fetchall()

    def interval_energy(
        self, from_ms: int, to_ms: int, meter_id: int | None = None
    ) -> list[tuple[int, int, float | None, float | None]]:
        """(meter id, start ms, import kWh, max W) over [from_ms, to_ms), of one meter or all."""
        if meter_id is None:
            return self.db.execute(
                "SELECT meter_id, start_ms, energy_kwh, max_power_w FROM interval_energy "
                "WHERE start_ms >= ? AND start_ms < ?",
                (from_ms, to_ms),
            ).fetchall()
        return self.db.execute(
            "SELECT meter_id, start_ms, energy_kwh, max_power_w FROM interval_energy "
            "WHERE meter_id = ? AND start_ms >= ? AND start_ms < ? ORDER BY start_ms",
            (meter_id, from_ms, to_ms),
        ).fetchall()

    def quarter_means(
        self, meter_id: int, quantity: str, from_ms: int, to_ms: int, absolute: bool = False
    ) -> list[tuple[int, float]]:
        """(interval start ms, mean) of one meter's gauge per 15-minute interval."""
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
        """(meter id, ts ms, value) of one quantity for every meter, oldest first."""
        return self.db.execute(
            "SELECT s.meter_id, r.ts, r.value FROM series s JOIN reading r ON r.series = s.id "
            "WHERE s.quantity = ? AND r.ts >= ? AND r.ts <= ? ORDER BY s.meter_id, r.ts",
            (quantity, from_ms, to_ms),
        ).fetchall()

    def alert_state(self) -> dict[str, Any] | None:
        row = self.db.execute("SELECT data FROM alert_state WHERE id = 1").fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def silences(self, site: str | None = None, after_ms: int = 0) -> list[dict[str, Any]]:
        """Silences ending after `after_ms`, soonest start first."""
        keys = ("id", "site", "meter", "starts_ms", "ends_ms", "reason", "created_ms")
        sql = (
            "SELECT id, site, meter, starts_ms, ends_ms, reason, created_ms FROM silence "
            "WHERE ends_ms > ? " + ("AND site = ? " if site else "") + "ORDER BY starts_ms, id"
        )
        return [
            dict(zip(keys, row, strict=True))
            for row in self.db.execute(sql, (after_ms, site) if site else (after_ms,))
        ]

    def site_totals(self, site: str, from_ms: int, to_ms: int) -> list[tuple[Any, ...]]:
        """Per 15-minute start, summed over the site's meters (not its sub-meters): (start ms,
        kWh, any estimated, mean W, max W); None where no meter had a value."""
        return self.db.execute(
            "SELECT i.start_ms, SUM(i.energy_kwh), MAX(i.estimated), SUM(i.mean_power_w), "
            "SUM(i.max_power_w) FROM meter m JOIN interval_energy i ON i.meter_id = m.id "
            f"WHERE m.site = ? AND i.start_ms >= ? AND i.start_ms < ? AND {_OUTSIDE_TOTALS} "
            "GROUP BY i.start_ms ORDER BY i.start_ms",
            (site, from_ms, to_ms, self._sub_meters_json),
        ).fetchall()
