"""The database's shape: the migrations applied at start, and how connections are opened.

The migrations are written for SQLite; a PostgreSQL database takes the same ones with the
column types spelled its way (`_postgres_ddl`), so both engines have one schema history.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from collector.store import packing
from collector.store.sql import (
    Connection,
    PgConnection,
    Target,
    describe,
    dialect_of,
    is_postgres,
)
from sparwatt.errors import SchemaError

SCHEMA_VERSION = 12

_MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE gateway (
    site TEXT NOT NULL, gateway TEXT NOT NULL,
    registered_ms INTEGER NOT NULL, last_seq INTEGER, last_seen_ms INTEGER,
    state TEXT, state_ms INTEGER, status TEXT, health TEXT,
    PRIMARY KEY (site, gateway)
);
CREATE TABLE meter (
    id INTEGER PRIMARY KEY, site TEXT NOT NULL, gateway TEXT NOT NULL, meter TEXT NOT NULL,
    UNIQUE (site, gateway, meter)
);
CREATE TABLE series (
    id INTEGER PRIMARY KEY, meter_id INTEGER NOT NULL REFERENCES meter(id),
    quantity TEXT NOT NULL, UNIQUE (meter_id, quantity)
);
CREATE TABLE reading (
    series INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (series, ts)
) WITHOUT ROWID;
CREATE TABLE interval_energy (
    meter_id INTEGER NOT NULL, start_ms INTEGER NOT NULL,
    energy_kwh REAL, estimated INTEGER NOT NULL, mean_power_w REAL, max_power_w REAL,
    PRIMARY KEY (meter_id, start_ms)
) WITHOUT ROWID;
CREATE TABLE dirty (meter_id INTEGER PRIMARY KEY, from_ms INTEGER NOT NULL);
CREATE TABLE gap (
    id INTEGER PRIMARY KEY, site TEXT NOT NULL, gateway TEXT NOT NULL,
    from_seq INTEGER NOT NULL, to_seq INTEGER NOT NULL,
    after_ms INTEGER, before_ms INTEGER, detected_ms INTEGER NOT NULL
);
CREATE INDEX gap_by_gateway ON gap (site, gateway, from_seq);
CREATE TABLE quarantine (
    id INTEGER PRIMARY KEY, received_ms INTEGER NOT NULL, topic TEXT NOT NULL,
    reason TEXT NOT NULL, detail TEXT NOT NULL, size INTEGER NOT NULL, payload BLOB
);
CREATE TABLE counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
""",
    # export energy beside import; runtime figures (ingest rate, sink backlog) for `status`
    2: """
ALTER TABLE interval_energy ADD COLUMN export_kwh REAL;
ALTER TABLE interval_energy ADD COLUMN export_estimated INTEGER NOT NULL DEFAULT 0;
CREATE TABLE stat (name TEXT PRIMARY KEY, value REAL, text TEXT, updated_ms INTEGER NOT NULL);
CREATE INDEX quarantine_by_time ON quarantine (received_ms);
""",
    # API tokens (hashed), savings opportunities and alerts, shown by the web layer
    3: """
CREATE TABLE token (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, sites TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE, created_ms INTEGER NOT NULL, revoked_ms INTEGER
);
CREATE TABLE opportunity (
    id TEXT PRIMARY KEY, site TEXT NOT NULL, meter TEXT NOT NULL, kind TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'closed')), data TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX opportunity_by_site ON opportunity (site, status);
CREATE TABLE alert (
    id TEXT PRIMARY KEY, site TEXT NOT NULL, labels TEXT NOT NULL, state TEXT NOT NULL,
    severity TEXT NOT NULL, summary TEXT NOT NULL, started_ms INTEGER NOT NULL,
    resolved_ms INTEGER, data TEXT NOT NULL
);
CREATE INDEX alert_by_site ON alert (site, started_ms);
""",
    # the alert lifecycle's state between rounds, and silences added from the CLI
    4: """
CREATE TABLE alert_state (
    id INTEGER PRIMARY KEY CHECK (id = 1), data TEXT NOT NULL, updated_ms INTEGER NOT NULL
);
CREATE TABLE silence (
    id TEXT PRIMARY KEY, site TEXT NOT NULL, meter TEXT, starts_ms INTEGER NOT NULL,
    ends_ms INTEGER NOT NULL, reason TEXT NOT NULL, created_ms INTEGER NOT NULL
);
""",
    # tokens may end on their own: a company's access for the length of its review
    5: """
ALTER TABLE token ADD COLUMN expires_ms INTEGER;
""",
    # alert notifications waiting for their receiver: saved with the round that made them,
    # deleted once delivered, retried with backoff while the receiver fails
    6: """
CREATE TABLE notice (
    id INTEGER PRIMARY KEY, receiver TEXT NOT NULL, site TEXT NOT NULL, body BLOB NOT NULL,
    created_ms INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_ms INTEGER NOT NULL, last_error TEXT
);
CREATE INDEX notice_by_receiver ON notice (receiver, id);
""",
    # when the collector last received each gateway's health report: the fleet view calls a
    # gateway silent after three of its health intervals without one
    7: """
ALTER TABLE gateway ADD COLUMN health_ms INTEGER;
""",
    # raw readings packed one row per meter reading (about 5 bytes a value instead of 26; keyed
    # by meter and time, so a meter's readings sit together and no second index is needed),
    # and 15-minute rollups of every quantity kept for good (see collector/intervals/rollup.py)
    8: """
CREATE TABLE layout (id INTEGER PRIMARY KEY, spec TEXT NOT NULL UNIQUE);
CREATE TABLE sample (
    meter_id INTEGER NOT NULL, ts INTEGER NOT NULL, layout INTEGER NOT NULL,
    data BLOB NOT NULL, PRIMARY KEY (meter_id, ts)
) WITHOUT ROWID;
CREATE TABLE rollup (
    id INTEGER PRIMARY KEY, meter_id INTEGER NOT NULL, start_ms INTEGER NOT NULL,
    layout INTEGER NOT NULL, data BLOB NOT NULL
);
CREATE UNIQUE INDEX rollup_by_meter ON rollup (meter_id, start_ms);
ALTER TABLE meter ADD COLUMN quantities TEXT NOT NULL DEFAULT '';
ALTER TABLE meter ADD COLUMN pruned_until_ms INTEGER;
""",
    # rollups keyed by (meter, start) like raw readings: one B-tree instead of a table and
    # its index; and where a meter's history came from when no gateway sent it (a utility's
    # metering point, imported) with the resolution it was measured at
    9: """
CREATE TABLE rollup_by_key (
    meter_id INTEGER NOT NULL, start_ms INTEGER NOT NULL, layout INTEGER NOT NULL,
    data BLOB NOT NULL, PRIMARY KEY (meter_id, start_ms)
) WITHOUT ROWID;
INSERT INTO rollup_by_key SELECT meter_id, start_ms, layout, data FROM rollup;
DROP TABLE rollup;
ALTER TABLE rollup_by_key RENAME TO rollup;
ALTER TABLE meter ADD COLUMN source TEXT;
ALTER TABLE meter ADD COLUMN resolution_ms INTEGER;
""",
    # measures a company took, recorded by its consultant so their savings can be verified
    # against a baseline (meters: a JSON list of meter names at the site; installed_from and
    # installed_to: ISO dates, the latter ending an installation period; exclusions: a JSON
    # list of {start, end, label} non-routine events), and hourly outdoor temperature per site
    10: """
CREATE TABLE measure (
    id TEXT PRIMARY KEY, site TEXT NOT NULL, meters TEXT NOT NULL, kind TEXT NOT NULL,
    title TEXT NOT NULL, installed_from TEXT NOT NULL, installed_to TEXT,
    investment_dkk REAL, expected_kwh_year REAL, opportunity_id TEXT,
    model TEXT NOT NULL DEFAULT 'auto', exclusions TEXT NOT NULL DEFAULT '[]', note TEXT,
    created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL
);
CREATE INDEX measure_by_site ON measure (site, installed_from);
CREATE TABLE temperature (
    site TEXT NOT NULL, start_ms INTEGER NOT NULL, celsius REAL NOT NULL,
    PRIMARY KEY (site, start_ms)
) WITHOUT ROWID;
""",
    # several collectors on one database (docs/scaling.md): seqs missing for less than the
    # grace time (ingest.gap_grace_s; perhaps in flight at another collector) wait here and
    # become `gap` rows once it is over; and one lease per scheduled job, so a round runs
    # once across the collectors (holder, until when, the round it runs, the newest done)
    11: """
CREATE TABLE gap_pending (
    id INTEGER PRIMARY KEY, site TEXT NOT NULL, gateway TEXT NOT NULL,
    from_seq INTEGER NOT NULL, to_seq INTEGER NOT NULL,
    after_ms INTEGER, before_ms INTEGER, detected_ms INTEGER NOT NULL
);
CREATE INDEX gap_pending_by_gateway ON gap_pending (site, gateway, from_seq);
CREATE INDEX gap_pending_by_time ON gap_pending (detected_ms);
CREATE TABLE lease (
    name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_ms INTEGER NOT NULL,
    round_ms INTEGER NOT NULL, done_ms INTEGER
);
""",
    # raw readings kept in VictoriaMetrics (its connection settings as JSON), so every
    # collector and command on this database reads them there; and when a refresh mark was
    # last set: a refresh that cannot yet read a reading marked after its flush keeps it
    12: """
CREATE TABLE timeseries (
    id INTEGER PRIMARY KEY CHECK (id = 1), engine TEXT NOT NULL, settings TEXT NOT NULL
);
ALTER TABLE dirty ADD COLUMN marked_ms INTEGER NOT NULL DEFAULT 0;
""",
}


INSERT_SAMPLE = "INSERT INTO sample (meter_id, ts, layout, data) VALUES (?, ?, ?, ?)"


def _pack_readings(db: sqlite3.Connection) -> None:
    """Migration 8's data step: one row per (series, ts) becomes one row per meter reading.

    Every value moves exactly (see packing), and every meter is marked for a rollup of all
    it still has raw.
    """
    layouts: dict[str, int] = {}
    quantities: dict[int, set[str]] = {}
    batch: list[tuple[int, int, int, bytes]] = []

    def flush_reading(meter_id: int, ts: int, values: dict[str, float]) -> None:
        layout, blob = packing.pack(values)
        key = layout.key()
        if key not in layouts:
            layouts[key] = int(
                db.execute("INSERT INTO layout (spec) VALUES (?)", (key,)).lastrowid or 0
            )
        quantities.setdefault(meter_id, set()).update(values)
        batch.append((meter_id, ts, layouts[key], blob))
        if len(batch) >= 10_000:
            db.executemany(
                "INSERT INTO sample (meter_id, ts, layout, data) VALUES (?,?,?,?)", batch
            )
            batch.clear()

    current: tuple[int, int] | None = None
    values: dict[str, float] = {}
    for meter_id, ts, quantity, value in db.execute(
        "SELECT s.meter_id, r.ts, s.quantity, r.value FROM reading r "
        "JOIN series s ON s.id = r.series ORDER BY s.meter_id, r.ts, s.id"
    ):
        if (meter_id, ts) != current:
            if current is not None:
                flush_reading(*current, values)
            current, values = (meter_id, ts), {}
        values[quantity] = value
    if current is not None:
        flush_reading(*current, values)
    db.executemany(INSERT_SAMPLE, batch)
    for meter_id, names in db.execute(
        "SELECT meter_id, group_concat(quantity, ' ') FROM series GROUP BY meter_id"
    ).fetchall():
        quantities.setdefault(meter_id, set()).update(names.split())
    db.executemany(
        "UPDATE meter SET quantities = ? WHERE id = ?",
        [(" ".join(sorted(q)), m) for m, q in quantities.items()],
    )
    db.execute(
        "INSERT INTO dirty SELECT meter_id, MIN(ts) FROM sample GROUP BY meter_id "
        "ON CONFLICT (meter_id) DO UPDATE SET from_ms = MIN(from_ms, excluded.from_ms)"
    )
    db.execute("DROP TABLE reading")
    db.execute("DROP TABLE series")


# steps that move data, run in their migration's transaction after its SQL; SQLite only:
# every PostgreSQL database was born after them, with nothing for them to move
_DATA_STEPS: dict[int, Callable[[sqlite3.Connection], None]] = {8: _pack_readings}

# SQLite's column types as PostgreSQL spells them: 64-bit integers (times are epoch ms),
# doubles, byte strings, identity keys for SQLite's rowid aliases
_PG_TYPES = [
    (re.compile(r"\bINTEGER PRIMARY KEY\b"), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
    # byte order, as SQLite compares: the same sort and the same uniqueness on both engines,
    # whatever locale the server was set up with
    (re.compile(r"\bTEXT\b"), 'TEXT COLLATE "C"'),
    (re.compile(r"\)\s*WITHOUT ROWID"), ")"),
]

# taken by whichever collector migrates a PostgreSQL database, for the transaction
_MIGRATION_LOCK = 0x5350_4D49  # "SPMI"


def _postgres_ddl(statement: str) -> str:
    for pattern, replacement in _PG_TYPES:
        statement = pattern.sub(replacement, statement)
    return statement


def connect(
    path: Target, readonly: bool = False, synchronous: Literal["full", "normal"] = "full"
) -> Connection:
    """A connection to the store's database: a SQLite file, or a PostgreSQL URL."""
    if is_postgres(path):
        return PgConnection(str(path), readonly=readonly)
    path = Path(path)
    if readonly:
        db = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
        db.execute("PRAGMA busy_timeout=5000")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # first: switching to WAL waits for the lock like any other statement
        db.execute("PRAGMA busy_timeout=5000")
        db.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before we ack it to the broker, even across a power cut
        db.execute(f"PRAGMA synchronous={synchronous.upper()}")
        db.execute("PRAGMA cache_size=-65536")  # 64 MiB: B-tree inserts stay in memory
        # the statement journal of a batch's savepoints in memory, not in a temporary
        # file written a few hundred bytes a call
        db.execute("PRAGMA temp_store=MEMORY")
    return db


def create(path: Path) -> None:
    """Build a new database beside its final name and move it in whole, so a reader that
    finds the file always finds the schema too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = path.with_name(f"{path.name}.new-{os.getpid()}")
    fresh.unlink(missing_ok=True)
    Path(f"{fresh}-journal").unlink(missing_ok=True)
    db = sqlite3.connect(fresh, isolation_level=None)
    try:
        # WAL from birth: turning it on later needs the database to itself, which fails
        # when collectors start together
        db.execute("PRAGMA journal_mode=WAL")
        apply_migrations(db, fresh)
    finally:
        db.close()
    try:
        # a link, not a rename: of collectors started together on no database, the first
        # one's stays and the others open it
        os.link(fresh, path)
    except FileExistsError:
        pass
    except OSError:  # a file system without hard links
        fresh.replace(path)
    finally:
        fresh.unlink(missing_ok=True)


def apply_migrations(db: Connection, path: Target, up_to: int | None = None) -> None:
    """Bring the schema up to date (or to version `up_to`, for tests of an upgrade)."""
    postgres = dialect_of(db) == "postgres"
    if postgres:
        # several collectors starting together: one makes the table, the others wait
        db.execute("BEGIN")
        try:
            db.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
            db.execute("COMMIT")
        except Exception:
            # e.g. no right to create tables: the connection must not stay in a failed
            # transaction, where every later statement would fail and hide why
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    else:
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
    current = row[0] or 0
    newest = max(_MIGRATIONS)
    if current > newest:
        raise SchemaError(
            f"{describe(path)}: database schema {current} is newer than this "
            f"collector knows ({newest}); upgrade the collector"
        )
    for version in sorted(v for v in _MIGRATIONS if current < v <= (up_to or newest)):
        # IMMEDIATE, then the version again: collectors started together on one database
        # take turns, and each step runs once
        db.execute("BEGIN IMMEDIATE")
        try:
            if postgres:
                db.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
            done = db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0
            if done >= version:
                db.execute("COMMIT")
                continue
            for statement in _MIGRATIONS[version].split(";"):
                if statement.strip():
                    db.execute(_postgres_ddl(statement) if postgres else statement)
            if version in _DATA_STEPS and isinstance(db, sqlite3.Connection):
                _DATA_STEPS[version](db)
            elif version == 8:  # the tables the data step empties, empty here from birth
                db.execute("DROP TABLE reading")
                db.execute("DROP TABLE series")
            db.execute("INSERT INTO schema_version VALUES (?)", (version,))
            db.execute("COMMIT")
        except Exception:
            if db.in_transaction:  # SQLite undoes it itself on disk full or I/O error
                db.execute("ROLLBACK")
            raise
