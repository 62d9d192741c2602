"""`sparwatt-collector import`: mapping, dry run, idempotence, and nothing half-stored."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from collector.cli.main import main
from collector.store import Reader
from collector.store.history import EnergyHistory, MeterHistory, write_energy
from collector.store.writer import Store
from devtools.utility_files import write_eloverblik_csv

GSRN = "571313180400012345"
T0 = 1_704_063_600_000  # 2024-01-01 00:00 Danish time
Q, H = 900_000, 3_600_000


@pytest.fixture
def sites(tmp_path: Path) -> Path:
    path = tmp_path / "sites.toml"
    path.write_text(
        f'[sites.bakery]\nsector = "bakery"\n[sites.bakery.metering_points]\n'
        f'"{GSRN}" = {{ meter = "grid" }}\n'
    )
    return path


def export(path: Path, days: int = 2, step: int = Q, every: int = 0) -> np.ndarray:
    starts = np.arange(T0, T0 + days * 86_400_000, step, dtype=np.int64)
    kwh = np.round(1.0 + (np.arange(len(starts)) % 17) / 8, 3)
    write_eloverblik_csv(path, starts, step, {GSRN: kwh}, estimated_every=every)
    return kwh


def cli(*argv: str | Path) -> int:
    return main(["import", *map(str, argv)])


def energy(db: Path) -> list[tuple[int, float, bool]]:
    with Reader(db) as reader:
        return [
            (i.start_ms, i.energy_kwh, i.estimated)
            for i in reader.intervals("bakery", 0, 2**62)
            if i.energy_kwh is not None
        ]


def test_an_export_lands_on_its_mapped_meter_and_twice_stores_nothing_twice(
    tmp_path: Path, sites: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "c.db"
    kwh = export(tmp_path / "e.csv")
    assert cli("--db", db, "--sites", sites, tmp_path / "e.csv") == 0
    assert "stored 192 values, 0 were already there" in capsys.readouterr().out
    rows = energy(db)
    assert [r[1] for r in rows] == kwh.tolist()
    assert [r[0] for r in rows] == list(range(T0, T0 + 2 * 86_400_000, Q))
    with Reader(db) as reader:
        (meter,) = reader.meters("bakery")
        assert (meter.gateway, meter.meter, meter.quantities) == (
            "utility", "grid", ["energy_import_kwh"]
        )  # fmt: skip
        rollups = reader.rollups(reader.meter_index()[0].meter_id, 0, 2**62)
        assert [r[1]["energy_import_kwh"].energy for r in rollups] == kwh.tolist()
    assert cli("--db", db, "--sites", sites, "--json", tmp_path / "e.csv") == 0
    (report,) = json.loads(capsys.readouterr().out)
    assert (report["stored"], report["already_stored"]) == (0, 192)
    assert energy(db) == rows


def test_hourly_data_is_spread_over_its_quarters_and_the_meter_says_hourly(
    tmp_path: Path, sites: Path
) -> None:
    db = tmp_path / "c.db"
    kwh = export(tmp_path / "h.csv", step=H)
    assert cli("--db", db, "--sites", sites, tmp_path / "h.csv") == 0
    rows = energy(db)
    assert len(rows) == 4 * len(kwh)
    assert [r[1] for r in rows[:4]] == [kwh[0] / 4] * 4
    assert sum(r[1] for r in rows) == pytest.approx(kwh.sum())
    with Reader(db) as reader:
        (meter,) = reader.meters("bakery")
        assert (meter.source, meter.resolution_ms) == ("eloverblik", H)


def test_dry_run_reports_period_gaps_and_estimates_and_stores_nothing(
    tmp_path: Path, sites: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "c.db"
    export(tmp_path / "e.csv", days=1, every=10)
    assert cli("--db", db, "--sites", sites, "--dry-run", "--json", tmp_path / "e.csv") == 0
    (report,) = json.loads(capsys.readouterr().out)
    (point,) = report["points"]
    assert point == {
        "gsrn": GSRN,
        "site": "bakery",
        "meter": "utility/grid",
        "resolution_minutes": 15,
        "first": "2023-12-31T23:00:00.000Z",
        "last": "2024-01-01T22:45:00.000Z",
        "values": 96,
        "gaps": 0,
        "estimated": 10,
        "kwh": point["kwh"],
    }
    assert not db.exists()


def test_a_dry_run_with_a_sites_file_needs_no_config_or_database(
    tmp_path: Path, sites: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a consultant checks a customer's download on a laptop with no collector installed
    monkeypatch.chdir(tmp_path)
    export(tmp_path / "e.csv", days=1)
    assert cli("--sites", sites, "--dry-run", "--json", tmp_path / "e.csv") == 0
    (report,) = json.loads(capsys.readouterr().out)
    assert [(p["gsrn"], p["values"]) for p in report["points"]] == [(GSRN, 96)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.csv", "sites.toml"]  # no database


def test_an_unmapped_point_names_its_line_and_command_line_mapping_takes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "c.db"
    export(tmp_path / "e.csv", days=1)
    empty = tmp_path / "sites.toml"
    empty.write_text("[sites.bakery]\n")
    assert cli("--db", db, "--sites", empty, tmp_path / "e.csv") == 2
    assert f"e.csv:2: metering point {GSRN}: not mapped" in capsys.readouterr().err
    assert (
        cli("--db", db, "--sites", empty, "--site", "bakery", "--meter", "main", tmp_path / "e.csv")
        == 0
    )
    with Reader(db) as reader:
        assert [m.meter for m in reader.meters("bakery")] == ["main"]


def test_a_file_failing_on_its_last_line_stores_none_of_its_rows(
    tmp_path: Path, sites: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "c.db"
    export(tmp_path / "e.csv", days=3)
    with (tmp_path / "e.csv").open("a", encoding="utf-8") as f:
        f.write(f"{GSRN};04-01-2024 00:00:00;04-01-2024 00:15:00;abc;KWH;Målt;Tidsserie\r\n")
    assert cli("--db", db, "--sites", sites, tmp_path / "e.csv") == 2
    assert "e.csv:290: quantity 'abc' is not a number" in capsys.readouterr().err
    assert not db.exists() or energy(db) == []


def test_measured_values_replace_estimates_on_a_later_import(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    starts = np.arange(T0, T0 + 4 * Q, Q, dtype=np.int64)
    first = EnergyHistory(starts, np.array([1.0, 2.0, 3.0, 4.0]), np.array([0, 1, 1, 0], bool), Q)
    assert (
        write_energy(store, [MeterHistory("bakery", "utility", "grid", "eloverblik", first)]).stored
        == 4
    )
    later = EnergyHistory(starts, np.array([9.0, 2.5, 3.0, 9.0]), np.array([0, 0, 1, 0], bool), Q)
    result = write_energy(store, [MeterHistory("bakery", "utility", "grid", "eloverblik", later)])
    assert (result.stored, result.kept) == (1, 3)
    store.close()
    assert [(e, est) for _s, e, est in energy(tmp_path / "c.db")] == [
        (1.0, False), (2.5, False), (3.0, True), (4.0, False)
    ]  # fmt: skip
    with Reader(tmp_path / "c.db") as reader:
        rollups = reader.rollups(reader.meter_index()[0].meter_id, 0, 2**62)
        assert [r[1]["energy_import_kwh"].energy for r in rollups] == [1.0, 2.5, 3.0, 4.0]


def test_readings_csv_long_and_wide_and_jsonl_go_through_the_wire_contract(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "c.db"
    long = tmp_path / "long.csv"
    long.write_text(
        "ts,site,meter,quantity,value,gateway\n"
        "2024-01-01T00:00:00Z,bakery,m1,energy_import_kwh,100.0,gw1\n"
        "2024-01-01T00:00:00Z,bakery,m1,power_w,4000,gw1\n"
        "2024-01-01T00:15:00Z,bakery,m1,energy_import_kwh,101.0,gw1\n"
        "2024-01-01T00:30:00Z,bakery,m1,energy_import_kwh,102.5,gw1\n"
    )
    wide = tmp_path / "wide.csv"
    wide.write_text(
        "ts,site,meter,power_factor,current_l1_a\n"
        "2024-01-01T00:00:00+01:00,bakery,m2,0.81,12.5\n"
        "2024-01-01T00:10:00+01:00,bakery,m2,0.79,\n"
    )
    message = {
        "schema": 1, "site": "bakery", "gateway": "gw1", "seq": 7,
        "sent_at": "2024-01-01T01:00:00Z",
        "readings": [{"meter": "m1", "ts": "2024-01-01T00:45:00Z",
                      "values": {"energy_import_kwh": 103.0}}],
    }  # fmt: skip
    lines = tmp_path / "msgs.jsonl"
    lines.write_text(json.dumps(message) + "\n\n")
    assert cli("--db", db, "--gateway", "gw1", long, wide, lines) == 0
    out = capsys.readouterr().out
    for stored in (4, 3, 1):
        assert f"stored {stored} values" in out
    with Reader(db) as reader:
        raw = {(r.meter, r.quantity, r.ts_ms): r.value for r in reader.raw("bakery", 0, 2**62)}
        assert raw[("m2", "power_factor", T0 + 600_000)] == pytest.approx(0.79)
        assert raw[("m1", "energy_import_kwh", 1_704_069_900_000)] == 103.0
        kwh = [i.energy_kwh for i in reader.intervals("bakery", 0, 2**62) if i.meter == "m1"]
        assert kwh == [1.0, 1.5, 0.5]  # the history is computed at once
    assert cli("--db", db, "--gateway", "gw1", long) == 0
    assert "stored 0 values, 4 were already there" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ts,site,meter,quantity,value\n2024-01-01T00:00Z,b,m,volts,1\n", r"r\.csv:2: .*volts"),
        ("ts,site,meter,quantity,value\nyesterday,b,m,power_w,1\n", r"r\.csv:2: ts 'yesterday'"),
        (
            "ts,site,meter,power_w\n2024-01-01T00:00Z,b,m,1\n2024-01-01T00:01Z,b,m,x\n",
            r"r\.csv:3: power_w 'x'",
        ),
        ("ts,site,meter,watts\n", r"r\.csv:1: unknown quantities \['watts'\]"),
    ],
)
def test_a_bad_readings_row_names_its_line(
    tmp_path: Path, text: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "r.csv").write_text(text)
    assert cli("--db", tmp_path / "c.db", tmp_path / "r.csv") == 2
    import re

    assert re.search(message, capsys.readouterr().err)


def test_a_message_with_a_seq_no_database_holds_names_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ts = "2024-01-01T00:00:00.000Z"
    line = {"schema": 1, "site": "b", "gateway": "g", "sent_at": ts,
            "readings": [{"meter": "m", "ts": ts, "values": {"power_w": 1.0}}]}  # fmt: skip
    good, bad = dict(line, seq=2**63 - 1), dict(line, seq=2**63)
    (tmp_path / "r.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    assert cli("--db", tmp_path / "c.db", tmp_path / "r.jsonl") == 2
    err = capsys.readouterr().err
    assert "r.jsonl:2:" in err
    assert "seq" in err
    assert "Traceback" not in err
    with Reader(tmp_path / "c.db") as reader:  # the good first line is not stored either
        assert reader.reading_count() == 0


def test_an_energi_data_service_download_is_checked_and_described_not_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prices = tmp_path / "DayAheadPrices.csv"
    prices.write_bytes(
        "\ufeffTimeUTC;TimeDK;PriceArea;DayAheadPriceEUR;DayAheadPriceDKK\r\n"
        "2025-10-01 00:15;2025-10-01 02:15;DK1;80,1;598,25\r\n"
        "2025-10-01 00:00;2025-10-01 02:00;DK1;80,0;597,75\r\n"
        "2025-10-01 00:00;2025-10-01 02:00;DK2;90,0;672,00\r\n".encode()
    )
    assert cli("--db", tmp_path / "c.db", "--json", prices) == 0
    (report,) = json.loads(capsys.readouterr().out)
    assert report["sites_key"] == "energy_price.spot_hourly_csv"
    assert report["areas"]["DK1"]["rows"] == 2
    assert report["areas"]["DK1"]["mean"] == pytest.approx(0.598)
    assert report["areas"]["DK2"]["first"] == "2025-10-01T00:00:00.000Z"
    with Reader(tmp_path / "c.db") as reader:
        assert reader.meter_index() == []
    broken = tmp_path / "CO2Emis.csv"
    broken.write_text("Minutes5UTC;Minutes5DK;PriceArea;CO2Emission\n2025-01-01 00:00;x;DK1;abc\n")
    assert cli("--db", tmp_path / "c.db", broken) == 2
    assert "bad number 'abc' in CO2Emission" in capsys.readouterr().err
