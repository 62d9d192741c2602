"""Moving a collector's database: a SQLite collector's data copied into PostgreSQL reads back
identically through the web API, and the copy refuses what would lose or mix data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from collector.cli.main import main as collector_main
from collector.intervals.refresh import refresh_intervals
from collector.intervals.rollup import IntervalPolicy
from collector.settings import Victoria
from collector.store import Reader, Store
from collector.store.copy import TableCopy, copy_database
from collector.store.schema import connect
from collector.store.sql import Target
from collector.web import auth
from collector.web.app import create_app
from collector.web.context import WebContext
from devtools import seed
from devtools.postgres import Postgres
from devtools.victoria import VictoriaMetrics
from sparwatt.errors import ConfigError, SchemaError
from sparwatt.timeutil import QUARTER_MS
from tests.support.messages import message
from tests.support.processes import collector_cli

NOW_MS = 1_780_000_200_000 - 1_780_000_200_000 % QUARTER_MS
SITES = ["site-a", "site-b"]


def _fill(db: Path) -> str:
    """A collector's database with a bit of everything; returns an admin token."""
    store = Store(db)
    seed.seed(store, seed.Plan(sites=SITES, days=2), NOW_MS)
    # two hours of ten-second readings of several quantities, rolled up, with a seq gap
    start = NOW_MS - 2 * 3_600_000
    for seq, t in enumerate(range(start, NOW_MS, 60_000), start=1):
        if seq == 40:
            continue
        items = [
            (
                "m3",
                t + k * 10_000,
                {
                    "power_w": 1000.0 + (t // 60_000) % 17,
                    "energy_import_kwh": round(50.0 + (t - start) / 3_600_000, 3),
                    "power_factor": 0.78,
                    "current_l1_a": 12.5 + k,
                },
            )
            for k in range(6)
        ]
        store.write([message(seq, items, site="site-a", gateway="gw2")])
    refresh_intervals(store, IntervalPolicy())
    token = auth.new_token()
    store.add_token("admin", "admin", [], auth.digest(token))
    store.close()
    return token


PATHS = [
    "/api/sites",
    "/api/tokens",
    "/api/sites/site-a/meters",
    "/api/sites/site-a/latest",
    "/api/sites/site-a/gateways",
    "/api/sites/site-a/gaps",
    "/api/sites/site-a/opportunities",
    "/api/sites/site-a/alerts",
    f"/api/sites/site-a/series?step=15m&from={NOW_MS - 3 * 3_600_000}&to={NOW_MS}",
    f"/api/sites/site-b/series?step=1h&from={NOW_MS - 2 * 86_400_000}&to={NOW_MS}",
    f"/api/sites/site-a/meters/m3/rollups?from={NOW_MS - 3 * 3_600_000}&to={NOW_MS}",
    f"/api/sites/site-a/export.csv?interval=15m&from={NOW_MS - 3 * 3_600_000}&to={NOW_MS}",
    f"/api/sites/site-b/export.csv?from={NOW_MS - 86_400_000}&to={NOW_MS}",
]


def _answers(target: Path | str, token: str) -> Iterator[tuple[str, int, str]]:
    with TestClient(create_app(WebContext(db=target))) as client:
        for path in PATHS:
            got = client.get(path, headers={"Authorization": f"Bearer {token}"})
            yield path, got.status_code, got.text


def test_a_sqlite_collector_copied_to_postgresql_answers_the_api_identically(
    tmp_path: Path, postgres: Postgres
) -> None:
    source = tmp_path / "sparwatt.db"
    token = _fill(source)
    target = postgres.create_database("copy_target")

    copied = {t.table: t.rows for t in copy_database(source, target)}

    assert copied["sample"] > 100
    assert copied["rollup"] > 0
    assert copied["interval_energy"] > 0
    assert copied["gap"] == 1
    before = list(_answers(source, token))
    after = list(_answers(target, token))
    assert [(p, s) for p, s, _ in before] == [(p, 200) for p in PATHS]
    for (path, _, old), (_, _, new) in zip(before, after, strict=True):
        assert new == old, path
    # the API answered with the data, not with two empty answers
    rollups = json.loads(after[10][2])
    assert rollups["meter"] == "m3"
    factors = [
        q["power_factor"]["mean"]
        for point in rollups["points"]
        for q in point.values()
        if isinstance(q, dict) and q.get("power_factor", {}).get("mean") is not None
    ]
    assert factors
    assert factors == pytest.approx([0.78] * len(factors), abs=1e-6)


def test_a_sqlite_collector_copied_to_victoria_and_postgresql_answers_the_api_identically(
    tmp_path: Path, postgres: Postgres, victoria: VictoriaMetrics
) -> None:
    source = tmp_path / "sparwatt.db"
    token = _fill(source)
    target = postgres.create_database("copy_victoria")

    copied = {
        t.table: t.rows for t in copy_database(source, target, victoria=Victoria(url=victoria.url))
    }

    with Reader(source) as reader:
        values = reader.reading_count()
    # every value is in VictoriaMetrics, none in the new database's own table
    assert victoria.value_count() == values > 100
    assert copied["sample"] > 0
    db = connect(target)
    try:
        assert db.execute("SELECT COUNT(*) FROM sample").fetchone()[0] == 0
    finally:
        db.close()
    before = list(_answers(source, token))
    after = list(_answers(target, token))
    assert [(p, s) for p, s, _ in before] == [(p, 200) for p in PATHS]
    for (path, _, old), (_, _, new) in zip(before, after, strict=True):
        assert new == old, path
    # a collector on the copy keeps its readings there; one without the setting is told
    store = Store(target)
    try:
        assert store.victoria is not None
        with pytest.raises(SchemaError, match="VictoriaMetrics at"):
            store.use_victoria(None)
    finally:
        store.close()
    # readings already in VictoriaMetrics are not copied there again
    with pytest.raises(ConfigError, match="already"):
        copy_database(target, tmp_path / "again.db", victoria=Victoria(url=victoria.url))


def test_new_records_in_the_copy_get_new_ids(tmp_path: Path, postgres: Postgres) -> None:
    source = tmp_path / "sparwatt.db"
    _fill(source)
    target = postgres.create_database("copy_ids")
    copy_database(source, target)
    store = Store(target)
    try:
        before = {t.id for t in Reader(target).tokens()}
        new_id = store.add_token("late", "admin", [], auth.digest(auth.new_token()))
        meter_id = store.new_meter("site-c", "utility", "gsrn-1")
    finally:
        store.close()
    assert new_id not in before
    assert new_id > max(before)
    with Reader(target) as reader:
        ids = [m.meter_id for m in reader.meter_index()]
    assert ids.count(meter_id) == 1


def test_copy_refuses_a_target_that_holds_data_and_leaves_it_untouched(
    tmp_path: Path, postgres: Postgres
) -> None:
    source = tmp_path / "sparwatt.db"
    _fill(source)
    target = postgres.create_database("copy_busy")
    store = Store(target)
    store.add_token("there-first", "admin", [], auth.digest(auth.new_token()))
    store.close()

    with pytest.raises(ConfigError, match="not empty"):
        copy_database(source, target)

    db = connect(target)
    try:
        assert db.execute("SELECT COUNT(*) FROM token").fetchone()[0] == 1
        assert db.execute("SELECT COUNT(*) FROM sample").fetchone()[0] == 0
    finally:
        db.close()
    with pytest.raises(ConfigError, match="same database"):
        copy_database(source, source)


def test_copy_command_moves_a_database_and_says_what_it_copied(
    tmp_path: Path, postgres: Postgres
) -> None:
    source = tmp_path / "sparwatt.db"
    _fill(source)
    target = postgres.create_database("copy_cli")
    run = collector_cli("copy", "--db", str(source), "--to", target)
    assert run.returncode == 0, run.stderr
    assert "rows in" in run.stdout
    with Reader(source) as old, Reader(target) as new:
        assert new.counters() == old.counters()
        assert new.sites() == old.sites()
        assert list(new.raw("site-a", 0, 2**62)) == list(old.raw("site-a", 0, 2**62))

    again = collector_cli("copy", "--db", str(source), "--to", target)
    assert again.returncode != 0
    assert "not empty" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


def _samples(db: Target) -> tuple[int, set[int], set[int]]:
    """(samples, the layouts they use, the layouts there are)."""
    conn = connect(db)
    try:
        used = {int(r[0]) for r in conn.execute("SELECT DISTINCT layout FROM sample").fetchall()}
        have = {int(r[0]) for r in conn.execute("SELECT id FROM layout").fetchall()}
        count = int(conn.execute("SELECT COUNT(*) FROM sample").fetchone()[0])
    finally:
        conn.close()
    return count, used, have


def test_a_copy_is_of_one_moment_even_while_the_source_is_written(
    tmp_path: Path, db_target: Target
) -> None:
    source = db_target
    store = Store(source)
    store.write([message(1, [("m1", NOW_MS, {"power_w": 1.0})])])
    before = _samples(source)

    def write_meanwhile(done: TableCopy) -> None:
        if done.table == "layout":  # a new meter with a new layout, and its reading
            new = [("m9", NOW_MS, {"power_w": 2.0, "voltage_l1_v": 230.0})]
            store.write([message(2, new)])

    target = tmp_path / "copy.db"
    try:
        copy_database(source, target, write_meanwhile)
    finally:
        store.close()
    count, used, have = _samples(target)
    assert used <= have  # no reading whose layout was left behind
    assert (count, used, have) == before
    assert _samples(source)[0] == before[0] + 1


def test_copy_into_a_file_that_is_no_database_names_it(tmp_path: Path) -> None:
    source = tmp_path / "sparwatt.db"
    Store(source).close()
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database, but a page of notes that is long enough\n" * 20)
    with pytest.raises(ConfigError, match=r"notes\.txt"):
        copy_database(source, notes)
    with pytest.raises(ConfigError, match=str(tmp_path.name)):
        copy_database(source, tmp_path)  # a folder
    assert notes.read_text().startswith("not a database")


def test_copy_into_a_newer_collectors_database_is_refused_in_words(tmp_path: Path) -> None:
    source, target = tmp_path / "sparwatt.db", tmp_path / "newer.db"
    Store(source).close()
    Store(target).close()
    db = connect(target)
    db.execute("INSERT INTO schema_version VALUES (999)")
    db.close()
    with pytest.raises(ConfigError, match=r"newer\.db.*newer"):
        copy_database(source, target)


def test_copy_onto_itself_by_another_spelling_is_the_same_database(tmp_path: Path) -> None:
    source = tmp_path / "sparwatt.db"
    _fill(source)
    with pytest.raises(ConfigError, match="same database"):
        copy_database(source, tmp_path / "sub" / ".." / "sparwatt.db")


def test_copy_command_refuses_a_url_it_cannot_use_without_echoing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "sparwatt.db"
    Store(source).close()
    monkeypatch.chdir(tmp_path)
    for to in (
        "mysql://sparwatt:Tr0ub4dor@db.example/sparwatt",
        "postgresql+psycopg://u:Tr0ub4dor@h/db",
    ):
        assert collector_main(["copy", "--db", str(source), "--to", to]) != 0
        out, err = capsys.readouterr()
        assert "Tr0ub4dor" not in out + err
        assert "postgresql://" in err  # what it takes instead
        assert len(err.strip().splitlines()) == 1
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith("sparwatt.db")] == []


def test_copy_command_to_an_unreachable_server_is_one_line_without_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "sparwatt.db"
    Store(source).close()
    to = "postgresql://u:Tr0ub4dor@127.0.0.1:1/sparwatt"
    assert collector_main(["copy", "--db", str(source), "--to", to]) != 0
    out, err = capsys.readouterr()
    assert "Tr0ub4dor" not in out + err
    assert "127.0.0.1" in err
    assert len(err.strip().splitlines()) == 1
