"""sparwatt-collector query commands on a populated database: latest, status, export, quarantine;
on each database engine."""

from __future__ import annotations

import csv
import io
import json
from contextlib import closing
from pathlib import Path

import pytest

from collector import cli
from collector.intervals.energy import IntervalPolicy
from collector.intervals.refresh import refresh_intervals
from collector.store import Quarantined, Store
from collector.store.schema import SCHEMA_VERSION
from collector.store.sql import Target
from tests.support.messages import NOW_MS, iso, message

MIN = 60_000


@pytest.fixture
def db(backend: Target) -> Target:
    store = Store(backend)
    store.write(
        [
            message(
                1,
                [
                    (
                        "main",
                        NOW_MS + m * MIN,
                        {
                            "energy_import_kwh": 100.0 + m / 10,
                            "energy_export_kwh": 5.0,
                            "power_w": 6000.0,
                        },
                    )
                    for m in (0, 5, 10, 15, 30)
                ],
            ),
            message(4, [("main", NOW_MS + 31 * MIN, {"power_w": 1.0})]),
        ],
        [
            Quarantined(
                "sparwatt/v1/site-a/gw1/readings",
                "not_finite",
                "readings.0.values.power_w",
                b'{"power_w": NaN}',
                16,
            ),
            Quarantined("sparwatt/v1/site-a/gw1/readings", "invalid_json", "EOF", b"{", 1),
        ],
    )
    refresh_intervals(store, IntervalPolicy())
    store.close()
    return backend


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_latest_shows_the_newest_value_of_each_quantity(
    db: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "latest", "--db", str(db), "--json")
    rows = {r["quantity"]: (r["value"], r["ts"]) for r in json.loads(out)}
    assert code == 0
    assert rows == {
        "energy_import_kwh": (103.0, iso(NOW_MS + 30 * MIN)),
        "energy_export_kwh": (5.0, iso(NOW_MS + 30 * MIN)),
        "power_w": (1.0, iso(NOW_MS + 31 * MIN)),
    }
    code, out, _ = run(capsys, "latest", "--db", str(db))
    assert "energy_import_kwh" in out
    assert "103.000" in out


def test_status_reports_counts_quarantine_by_reason_gaps_and_sink(
    db: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "status", "--db", str(db), "--json")
    data = json.loads(out)
    assert code == 0
    assert (data["stored"], data["duplicates"], data["messages"], data["readings"]) == (16, 0, 2, 6)
    assert data["quarantined"] == {"invalid_json": 1, "not_finite": 1}
    assert [(g["from_seq"], g["to_seq"]) for g in data["gaps"]] == [(2, 3)]
    assert (data["ingest_readings_per_s"], data["sink"]) == (None, None)

    code, out, _ = run(capsys, "status", "--db", str(db))
    assert "quarantined: invalid_json=1, not_finite=1" in out
    assert "gap site-a/gw1 seq 2-3" in out
    assert "collector not running" in out


def test_status_shows_database_size_bytes_per_value_and_the_projection(
    db: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "collector.toml"
    cfg.write_text(f'[storage]\ndb = "{db}"\nraw_retention_days = 70\n')
    code, out, _ = run(capsys, "status", "--config", str(cfg), "--json")
    assert code == 0
    storage = json.loads(out)["storage"]
    assert storage["raw_values"] == 16
    if storage["raw_in"]:  # raw readings in VictoriaMetrics: its retention, not ours
        assert storage["raw_in"].startswith("VictoriaMetrics at http://127.0.0.1:")
        assert storage["db_bytes"] >= storage["rollup_bytes"] > 0
        assert storage["projected_raw_bytes"] is None
        code, out, _ = run(capsys, "status", "--config", str(cfg))
        assert f"raw readings: in {storage['raw_in']} (" in out
        return
    assert storage["db_bytes"] >= storage["raw_bytes"] + storage["rollup_bytes"] > 0
    assert storage["raw_bytes_per_value"] == pytest.approx(storage["raw_bytes"] / 16)
    per_day = storage["raw_values"] / storage["raw_days"]
    assert storage["projected_raw_bytes"] == pytest.approx(
        storage["raw_bytes_per_value"] * per_day * 70
    )
    code, out, _ = run(capsys, "status", "--config", str(cfg))
    assert "bytes per value" in out
    assert "projected raw readings at 70 days' retention" in out


def test_export_of_intervals_carries_import_export_and_power(
    db: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys,
        "export",
        "--db",
        str(db),
        "--site",
        "site-a",
        "--from",
        iso(NOW_MS),
        "--to",
        iso(NOW_MS + 60 * MIN),
    )
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0
    assert [
        (r["start"], r["energy_import_kwh"], r["energy_export_kwh"], r["mean_power_w"])
        for r in rows
    ] == [
        (iso(NOW_MS), "1.5", "0.0", "6000.0"),
        (iso(NOW_MS + 15 * MIN), "1.5", "0.0", "6000.0"),
        (iso(NOW_MS + 30 * MIN), "", "", "3000.5"),
    ]

    code, out, _ = run(
        capsys,
        "export",
        "--db",
        str(db),
        "--site",
        "site-a",
        "--from",
        iso(NOW_MS),
        "--to",
        iso(NOW_MS + 15 * MIN),
        "--format",
        "json",
    )
    assert json.loads(out)[0]["energy_import_kwh"] == pytest.approx(1.5, rel=1e-12)


def test_raw_export_lists_every_stored_value_in_the_window(
    db: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys,
        "export",
        "--db",
        str(db),
        "--site",
        "site-a",
        "--interval",
        "raw",
        "--from",
        iso(NOW_MS),
        "--to",
        iso(NOW_MS + 10 * MIN),
        "--format",
        "json",
    )
    rows = json.loads(out)
    assert code == 0
    assert len(rows) == 6
    assert rows[0] == {
        "gateway": "gw1",
        "meter": "main",
        "quantity": "energy_export_kwh",
        "ts": iso(NOW_MS),
        "value": 5.0,
    }


def test_quarantine_lists_the_newest_first_and_honours_the_limit(
    db: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "quarantine", "--db", str(db), "--limit", "1", "--json", "--payload")
    [row] = json.loads(out)
    assert code == 0
    assert (row["reason"], row["payload"], row["size"]) == ("invalid_json", "{", 1)
    code, out, _ = run(capsys, "quarantine", "--db", str(db))
    assert out.index("invalid_json") < out.index("not_finite")


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "--db", "/nonexistent/c.db"],
        ["export", "--site", "site-a", "--from", "yesterday", "--to", "2026-01-01"],
        ["export", "--site", "site-a", "--from", "2026-01-02", "--to", "2026-01-01"],
        ["quarantine", "--limit", "0"],
    ],
)
def test_bad_usage_is_one_line_and_exit_code_2(
    db: Target, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    if "--db" not in argv:
        argv = [*argv, "--db", str(db)]
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "command", ["run", "check-config", "latest", "status", "export", "quarantine"]
)
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    assert command in capsys.readouterr().out


@pytest.mark.parametrize("command", ["status", "latest", "quarantine"])
def test_a_database_no_collector_has_made_yet_is_named_in_one_line(
    db_target: Target, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A SQLite file that is not there, or a PostgreSQL database without the store's tables."""
    code, out, err = run(capsys, command, "--db", str(db_target))
    assert (code, out) == (2, "")
    assert err.strip().splitlines() == [f"{db_target}: no database yet (has the collector run?)"]


def test_a_database_a_newer_collector_made_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "newer.db"
    Store(path).close()
    import sqlite3

    with closing(sqlite3.connect(path)) as raw, raw:
        raw.execute("INSERT INTO schema_version VALUES (999)")
    argv = ["token", "add", "--db", str(path), "--name", "x", "--role", "admin"]
    code, out, err = run(capsys, *argv)
    assert (code, out) == (1, "")
    assert err.strip().splitlines() == [
        f"sparwatt-collector: {path}: database schema 999 is newer than this collector knows "
        f"({SCHEMA_VERSION}); upgrade the collector"
    ]
