"""Where a database's raw readings live: in the database itself (the default) or in
VictoriaMetrics, as the database records (table `timeseries`), so every collector and
command on it reads them in the same place whatever config it was started with.

Everything else (registry, gaps, the 15-minute history, records) stays in the database:
the history is recomputed when late readings arrive, and VictoriaMetrics cannot replace a
stored sample (docs/scaling.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from collector.store.sql import Connection

if TYPE_CHECKING:
    from collector.settings import Victoria
    from collector.store.victoria import VictoriaRaw

ENGINE = "victoria-metrics"


def settings_of(db: Connection) -> Victoria | None:
    """The VictoriaMetrics this database keeps its raw readings in (None: itself)."""
    from collector.settings import Victoria

    row = db.execute("SELECT engine, settings FROM timeseries WHERE id = 1").fetchone()
    if row is None:
        return None
    return Victoria.model_validate_json(row[1])


def bind(db: Connection, cfg: Victoria) -> None:
    """Record (or move) the database's raw readings to `cfg`."""
    db.execute("DELETE FROM timeseries WHERE id = 1")
    db.execute(
        "INSERT INTO timeseries (id, engine, settings) VALUES (1, ?, ?)",
        (ENGINE, cfg.model_dump_json()),
    )


def open_raw(cfg: Victoria) -> VictoriaRaw:
    # imported here: the module reads the config's models, which import this package
    from collector.store.victoria import VictoriaRaw

    return VictoriaRaw(cfg)


def open_bound(db: Connection) -> VictoriaRaw | None:
    """A client of the VictoriaMetrics the database names, if it names one."""
    cfg = settings_of(db)
    return None if cfg is None else open_raw(cfg)


def server(cfg: Victoria) -> tuple[str | None, ...]:
    """What names the server and tenant the readings are in (the rest are client settings)."""
    return tuple(
        None if url is None else url.rstrip("/")
        for url in (cfg.url, cfg.insert_url, cfg.select_url, cfg.tenant)
    )


def where(cfg: Victoria) -> str:
    """The server, as a message names it."""
    return cfg.url or f"{cfg.insert_url} (tenant {cfg.tenant})"
