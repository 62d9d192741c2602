"""`sparwatt-collector import --format temperature`: DMI's metObs observations and plain
ts,celsius files become hourly means per site; mistakes name the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collector.cli.main import main
from collector.imports import run, temperature
from collector.store import Reader, Store

T0 = "2025-01-06T10"  # an hour in UTC
T0_MS = 1_736_157_600_000


def feature(observed: str, value: object, parameter: str = "temp_dry", station: str = "06180"):  # type: ignore[no-untyped-def]
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [12.2, 55.6]},
        "id": "0f1e2d3c",
        "properties": {
            "created": "2025-01-06T10:15:02Z",
            "observed": observed,
            "parameterId": parameter,
            "stationId": station,
            "value": value,
        },
    }


def geojson(path: Path, features: list[object]) -> Path:
    doc = {"type": "FeatureCollection", "features": features, "numberReturned": len(features)}
    path.write_text(json.dumps(doc, indent=1))
    return path


def imported(db: Path, *argv: str | Path) -> int:
    return main(["import", "--db", str(db), *map(str, argv)])


def stored(db: Path, site: str = "bakery") -> list[tuple[int, float]]:
    with Reader(db) as reader:
        return [(t.start_ms, t.celsius) for t in reader.temperatures(site, 0, 2**62)]


def test_dmi_geojson_becomes_hourly_means_and_a_second_import_stores_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = geojson(
        tmp_path / "obs.json",
        [
            feature(f"{T0}:00:00Z", -1.0),
            feature(f"{T0}:10:00Z", -2.0),
            feature(f"{T0}:10:00Z", 81.0, parameter="humidity"),
            feature(f"{T0}:50:00Z", -3.0),
            feature("2025-01-06T11:00:00Z", 0.5),
            feature("2025-01-06T12:00:00+01:00", 7.0),  # the same hour, with an offset
        ],
    )
    db = tmp_path / "c.db"
    Store(db).close()
    assert run.detect(path) == "temperature"
    assert imported(db, "--site", "bakery", path) == 0
    out = capsys.readouterr().out
    assert "(dmi-geojson station 06180): 6 rows, 2 hours for bakery" in out
    assert "stored 2 hourly temperatures, 0 were already there" in out
    assert stored(db) == [(T0_MS, -2.0), (T0_MS + 3_600_000, 3.75)]
    assert imported(db, "--site", "bakery", "--json", path) == 0
    report = json.loads(capsys.readouterr().out)[0]
    assert report["stored"] == 0
    assert report["already_stored"] == 2
    assert report["station"] == "06180"
    assert report["other_rows"] == 1


def test_dmi_bulk_lines_and_a_plain_csv_are_read_and_a_dry_run_stores_nothing(
    tmp_path: Path,
) -> None:
    lines = tmp_path / "2025-01-06.txt"
    lines.write_text(
        "\n".join(json.dumps(feature(f"{T0}:{m:02d}:00Z", 1.0 + m / 10)) for m in (0, 10, 20))
        + "\n"
    )
    plain = tmp_path / "plain.csv"
    plain.write_text("ts,celsius\n2025-01-06T12:00:00Z,2.5\n2025-01-06 13:00,3.5\n")
    fahrenheit = tmp_path / "f.csv"
    fahrenheit.write_text("ts,fahrenheit\n2025-01-06T14:00:00Z,41\n")
    for path in (lines, plain, fahrenheit):
        assert run.detect(path) == "temperature"
    db = tmp_path / "c.db"
    Store(db).close()
    assert imported(db, "--site", "bakery", "--dry-run", lines) == 0
    assert stored(db) == []
    assert imported(db, "--site", "bakery", lines, plain, fahrenheit) == 0
    assert stored(db) == [
        (T0_MS, 2.0),
        (T0_MS + 2 * 3_600_000, 2.5),
        (T0_MS + 3 * 3_600_000, 3.5),
        (T0_MS + 4 * 3_600_000, 5.0),  # 41 F
    ]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.csv", "ts,celsius\n2025-01-06T10:00Z,1\n2025-01-06T11:00Z,warm\n",
         "a.csv:3: value 'warm' is not a number"),
        ("b.csv", "ts,celsius\n2025-01-06T10:00Z,1\nyesterday,2\n",
         "b.csv:3: time 'yesterday' is not ISO 8601"),
        ("c.csv", "ts,celsius\n2025-01-06T10:00Z,1\n2025-01-06T11:00Z,85\n",
         "c.csv:3: 85 C is not a plausible outdoor temperature"),
        ("d.csv", "observed,parameterId,stationId,value\n2025-01-06T10:00Z,temp_dry,06180,1\n"
         "2025-01-06T10:00Z,temp_dry,06181,2\n",
         "d.csv:3: station 06181 after station 06180 (line 2): one station per file"),
        ("e.csv", "observed,parameterId,value\n2025-01-06T10:00Z,humidity,80\n",
         "e.csv: no temp_dry observations with a value"),
        ("f.csv", "observed,parameterId,value\n2025-01-06T10:00Z,temp_dry\n",
         "f.csv:2: 2 fields, expected 3"),
    ],
)  # fmt: skip
def test_a_bad_temperature_file_names_its_line_and_stores_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    db = tmp_path / "c.db"
    Store(db).close()
    assert imported(db, "--site", "bakery", "--format", "temperature", path) == 2
    assert capsys.readouterr().err.strip() == f"{path.parent}/{message}"
    assert stored(db) == []


def test_a_geojson_feature_without_its_time_is_named(tmp_path: Path) -> None:
    path = geojson(tmp_path / "obs.json", [feature(f"{T0}:00:00Z", 1.0), {"properties": {}}])
    with pytest.raises(Exception, match=r"obs.json: feature 2: a feature needs properties"):
        temperature.read(path)


def test_temperatures_need_the_site_they_belong_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "t.csv"
    path.write_text("ts,celsius\n2025-01-06T10:00Z,1\n")
    assert imported(tmp_path / "c.db", path) == 2
    assert "a temperature file needs --site naming its site" in capsys.readouterr().err
