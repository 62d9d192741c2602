"""`sparwatt-collector measure add | list | edit | remove | verify`, and every mistake as one
line naming the option, exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from collector.cli.main import main
from collector.store import Reader, Store
from collector.store.history import EnergyHistory, MeterHistory, write_energy
from tests.collector.measures import synthetic

Q = 900_000
T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Two meters at the bakery with a day of history, one at the dairy, an opportunity."""
    path = tmp_path / "c.db"
    store = Store(path)
    starts = T0 + np.arange(96, dtype=np.int64) * Q
    history = EnergyHistory(starts, np.full(96, 1.25), np.zeros(96, dtype=bool), Q)
    write_energy(
        store,
        [
            MeterHistory("bakery", "utility", "grid", "eloverblik", history),
            MeterHistory("bakery", "gw1", "ovens", "eloverblik", history),
            MeterHistory("dairy", "utility", "grid", "eloverblik", history),
        ],
    )
    store.put_opportunity("bakery-baseload", "bakery", "grid", "baseload", "open", {})
    store.close()
    return path


def cli(db: Path, *argv: str) -> int:
    return main(["measure", *argv, "--db", str(db)])


ADD = [
    "add", "--site", "bakery", "--meter", "grid", "--meter", "ovens", "--kind", "baseload",
    "--title", "Ventilation off at night", "--installed", "2026-03-01",
    "--investment-dkk", "25000", "--expected-kwh-year", "43800",
    "--exclude", "2026-07-01:2026-07-21:summer-closure",
]  # fmt: skip


def added(db: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert cli(db, *(argv or ADD), "--json") == 0, capsys.readouterr().err
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


def test_add_list_edit_and_remove_a_measure(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = added(db, capsys, *ADD, "--opportunity", "bakery-baseload", "--note", "a timer")
    assert (m["opportunity_id"], m["note"]) == ("bakery-baseload", "a timer")
    assert m["meters"] == ["grid", "ovens"]
    assert m["exclusions"] == [
        {"start": "2026-07-01", "end": "2026-07-21", "label": "summer-closure"}
    ]
    assert (m["installed_from"], m["installed_to"], m["model"]) == ("2026-03-01", None, "auto")
    assert (m["investment_dkk"], m["expected_kwh_year"]) == (25_000.0, 43_800.0)
    measure_id = str(m["id"])

    assert cli(db, "list") == 0
    listed = capsys.readouterr().out
    assert f"{measure_id}  bakery  2026-03-01  baseload: Ventilation off at night" in listed
    assert "expected 43,800 kWh/yr" in listed

    assert cli(db, "edit", measure_id, "--title", "Ventilation on a timer", "--installed-to",
               "2026-03-14", "--model", "time_of_week", "--clear", "exclusions") == 0  # fmt: skip
    capsys.readouterr()
    with Reader(db) as reader:
        row = reader.measure(measure_id)
    assert row is not None
    assert row.title == "Ventilation on a timer"
    assert str(row.installed_to) == "2026-03-14"
    assert row.model == "time_of_week"
    assert row.exclusions == []
    assert row.meters == ["grid", "ovens"]
    assert row.created_ms <= row.updated_ms

    assert cli(db, "list", "--site", "dairy", "--json") == 0
    assert json.loads(capsys.readouterr().out) == []
    assert cli(db, "remove", measure_id) == 0
    assert f"measure {measure_id} removed" in capsys.readouterr().out
    assert cli(db, "remove", measure_id) == 1
    assert cli(db, "list") == 0
    assert "no measures recorded" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--meter", "freezer"], "--meter: no meter 'freezer' at site bakery (its meters: grid, "
         "ovens)"),
        (["--kind", "lights"], "--kind: unknown kind 'lights'; one of: baseload,"),
        (["--installed", "2026-02-30"], "--installed: Input should be a valid date"),
        (["--installed-to", "2026-02-01"], "--installed-to: 2026-02-01 is before the "
         "installation starts (2026-03-01)"),
        (["--investment-dkk", "-5"], "--investment-dkk: Input should be greater than or equal "
         "to 0 (got '-5')"),
        (["--expected-kwh-year", "lots"], "--expected-kwh-year: Input should be a valid number"),
        (["--model", "neural"], "--model: Input should be 'auto', 'caltrack_hourly', "
         "'caltrack_daily' or 'time_of_week' (got 'neural')"),
        (["--exclude", "2026-07-21:2026-07-01:x"], "--exclude #1 end: ends on 2026-07-01, "
         "before it starts on 2026-07-21"),
        (["--exclude", "July"], "--exclude 'July': expected START:END[:LABEL] with ISO dates"),
        (["--opportunity", "other-site-thing"], "--opportunity: no opportunity "
         "'other-site-thing' at site bakery"),
        (["--site", "dairy"], "--meter: no meter 'ovens' at site dairy (its meters: grid)"),
        (["--title", " "], "--title: String should have at least 1 character"),
    ],
)  # fmt: skip
def test_a_bad_measure_is_refused_with_one_line_naming_the_option(
    db: Path, capsys: pytest.CaptureFixture[str], change: list[str], message: str
) -> None:
    argv = list(ADD)
    at = argv.index(change[0]) if change[0] in argv and change[0] != "--meter" else -1
    if at >= 0:
        argv[at + 1] = change[1]
    else:
        argv += change
    assert cli(db, *argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"measure add: {message}"), err[0]
    with Reader(db) as reader:
        assert reader.measures() == []


def test_several_mistakes_give_one_line_each(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(db, "add", "--site", "bakery", "--meter", "grid", "--kind", "x", "--title", "t",
               "--installed", "soon", "--investment-dkk", "-1") == 2  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert [line.split(":")[1].strip() for line in err] == [
        "--kind",
        "--installed",
        "--investment-dkk",
    ]


def test_edit_checks_the_whole_measure_again_and_unknown_ids_fail(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    measure_id = str(added(db, capsys)["id"])
    assert cli(db, "edit", measure_id, "--installed-to", "2026-01-01") == 2
    assert capsys.readouterr().err.startswith("measure edit: --installed-to: 2026-01-01 is before")
    assert cli(db, "edit", "00000000", "--title", "x") == 1
    assert cli(db, "verify", "00000000") == 1
    assert "measure 00000000: no such measure" in capsys.readouterr().err


def test_verify_prints_the_model_the_gates_and_the_savings_next_to_expected(
    clean_bakery: tuple[Path, synthetic.Site],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = tmp_path / "bakery.db"
    shutil.copy(clean_bakery[0], db)
    measure_id = str(
        added(
            db,
            capsys,
            *ADD[: ADD.index("--installed") + 1],
            "2025-01-01",
            "--expected-kwh-year",
            "40000",
        )["id"]
    )
    monkeypatch.setattr("collector.cli.measures.now_ms", lambda: synthetic.NOW_MS)
    assert cli(db, "verify", measure_id) == 0
    out = capsys.readouterr().out
    assert "model: caltrack_hourly: outdoor temperature given" in out
    assert "ASHRAE Guideline 14 (hourly, n=" in out
    assert "(limit 30%) pass; NMBE" in out
    assert "(limit +/-10%) pass" in out
    assert "reporting 2025-01-01 .. 2025-06-30: verified" in out
    assert "90% interval" in out
    assert "verified per year:" in out
    assert "DKK" in out
    assert "kg CO2" in out
    assert "expected per year: 40,000 kWh (realisation" in out
    assert cli(db, "verify", measure_id, "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "verified"
    assert shown["savings"]["figures"]["expected_kwh_per_year"] == 40_000.0
    assert shown["cumulative"][-1]["day"] == "2025-06-30"


def test_verify_of_a_failed_baseline_shows_its_figures_and_claims_nothing(
    noisy_bakery: tuple[Path, synthetic.Site],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = tmp_path / "noisy.db"
    shutil.copy(noisy_bakery[0], db)
    measure_id = str(added(db, capsys, *ADD[: ADD.index("--installed") + 1], "2025-01-01")["id"])
    monkeypatch.setattr("collector.cli.measures.now_ms", lambda: synthetic.NOW_MS)
    assert cli(db, "verify", measure_id) == 0
    out = capsys.readouterr().out
    assert "baseline 2024-01-02 .. 2024-12-31: failed" in out
    assert "(limit 30%) FAIL" in out
    assert "exceeds the 30% limit for hourly models (ASHRAE Guideline 14)" in out
    assert "no savings claimed" in out
    assert "verified per year" not in out
