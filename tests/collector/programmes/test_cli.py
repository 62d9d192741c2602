"""`sparwatt-collector programme list | report` on a store with two whole years of history."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from collector import cli
from collector.store import Store
from tests.collector.programmes.history import local_ms, sites_file, write_constant

# 2024 is a leap year: 366 days of quarter hours against 2025's 365
Q2024, Q2025 = 366 * 96, 365 * 96


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("programme-cli")
    sites = sites_file(folder, 2024)
    store = Store(folder / "collector.db")
    write_constant(store, "bakery-north", local_ms(2024), local_ms(2025), 1.0)
    write_constant(store, "bakery-north", local_ms(2025), local_ms(2026), 0.75)
    write_constant(store, "office-harbour", local_ms(2024), local_ms(2026), 2.0)
    write_constant(store, "late-bakery", local_ms(2024, 6, 1), local_ms(2026), 1.0)
    store.close()
    return sites, folder / "collector.db"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_names_every_programme_with_its_targets(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    sites, db = files
    code, out, _ = run(capsys, "programme", "list", "--sites", str(sites), "--db", str(db))
    assert code == 0
    assert out.splitlines()[0] == (
        "aarhus-2030: Aarhus energy partnership, baseline 2024, target co2 -20 %, "
        "energy -15 %; 3 companies: bakery-north, office-harbour, late-bakery"
    )
    code, out, _ = run(capsys, "programme", "list", "--sites", str(sites), "--json")
    rows = json.loads(out)
    assert [r["id"] for r in rows] == ["aarhus-2030", "energy-only"]
    assert rows[1]["target"] == {"co2": None, "energy": -0.1}


def test_report_of_a_finished_year_writes_the_partnership_csv(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    sites, db = files
    out_csv = tmp_path / "aarhus-2025.csv"
    code, out, err = run(
        capsys,
        "programme", "report", "aarhus-2030", "--year", "2025",
        "--sites", str(sites), "--db", str(db), "--csv", str(out_csv),
    )  # fmt: skip
    assert code == 0, err
    assert "2025 whole year against the same period of 2024" in out
    assert f"CSV written to {out_csv}" in out
    lines = {line.split()[0]: line for line in out.splitlines()[2:] if line.strip()}
    # 26,280 kWh in 2025 against 35,136 in 2024: -25.2 %, 168 % of the -15 % target
    assert lines["bakery-north"].split()[1:5] == ["35,136", "26,280", "-25.2", "%"]
    assert "168 %" in lines["bakery-north"]
    assert "no full baseline year" not in lines["bakery-north"]
    assert "baseline year 2024 has data for 58 %" in lines["late-bakery"]  # 214 of 366 days
    with out_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["Company"] for r in rows] == [
        "bakery-north",
        "office-harbour",
        "late-bakery",
        "Total",
    ]
    bakery, office, late, total = rows
    assert bakery["Energy baseline period (kWh)"] == f"{Q2024:.3f}"  # all of 2024
    assert bakery["Energy year (kWh)"] == f"{Q2025 * 0.75:.3f}"
    assert bakery["Energy change (%)"] == f"{(Q2025 * 0.75 / Q2024 - 1) * 100:.2f}"
    assert bakery["Baseline to (exclusive)"] == "2025-01-01 00:00"
    assert bakery["Coverage year (%)"] == "100.0"
    assert office["Energy change (%)"] == f"{(Q2025 / Q2024 - 1) * 100:.2f}"
    assert late["Energy change (%)"] == ""
    assert late["Coverage whole baseline year (%)"] == f"{(214 * 96) / Q2024 * 100:.1f}"
    assert total["Status"] == "2 of 3 companies compared"
    assert total["Energy baseline period (kWh)"] == f"{3 * Q2024:.3f}"
    assert total["Energy year (kWh)"] == f"{2.75 * Q2025:.3f}"
    assert total["Verified savings energy (kWh/year)"] == ""


def test_report_json_holds_every_figure(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    sites, db = files
    code, out, _ = run(
        capsys,
        "programme", "report", "aarhus-2030", "--year", "2025",
        "--sites", str(sites), "--db", str(db), "--json",
    )  # fmt: skip
    assert code == 0
    data = json.loads(out)
    assert data["complete"] is True
    assert [c["site"] for c in data["companies"]] == [
        "bakery-north",
        "office-harbour",
        "late-bakery",
    ]
    assert data["companies"][0]["figures"]["energy_change"] == pytest.approx(
        Q2025 * 0.75 / Q2024 - 1
    )
    assert data["companies"][0]["verified_kwh_year"] is None
    assert data["total"]["compared"] == 2
    assert [s["name"] for s in data["sectors"]] == ["bakery", "office"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["nope"],
            "programme 'nope': not in the sites file (programmes: aarhus-2030, energy-only)",
        ),
        (["aarhus-2030", "--year", "2023"], "--year 2023: 2023 is before the baseline year 2024"),
        (["aarhus-2030", "--year", "2999"], "--year 2999: 2999 has not begun yet"),
    ],
)
def test_a_report_that_cannot_be_made_is_one_line_and_exit_2(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    sites, db = files
    code, out, err = run(
        capsys, "programme", "report", *argv, "--sites", str(sites), "--db", str(db)
    )
    assert code == 2
    assert err.strip() == message
    assert out == ""


def test_programmes_need_a_sites_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "collector.toml"
    config.write_text(f'[storage]\ndb = "{tmp_path / "c.db"}"\n')
    code, _, err = run(capsys, "programme", "list", "--config", str(config))
    assert code == 2
    assert "programmes need evaluation.sites_file" in err


def test_every_programme_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["programme"], ["programme", "list"], ["programme", "report"]):
        with pytest.raises(SystemExit) as done:
            cli.main([*argv, "--help"])
        assert done.value.code == 0
        assert "usage:" in capsys.readouterr().out
