"""Files that are broken, odd or not files at all: each fault is one line naming the file,
the line (or the place in a JSON document) and the reason; odd but sound files read exactly."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from collector.cli.main import main
from collector.imports import eloverblik, readings
from sparwatt.errors import ConfigError
from tests.collector.imports.test_eloverblik import GSRN, HEADER, by_start, ms, row, write


def cli(*argv: str | Path) -> int:
    return main(["import", *map(str, argv)])


@pytest.mark.parametrize("blank_line", [False, True])  # the bytes reader, the CSV reader
def test_hourly_rows_among_quarter_hours_of_one_point_are_refused_at_their_line(
    tmp_path: Path, blank_line: bool
) -> None:
    rows = [
        row("01-01-2024 00:00", "01-01-2024 00:15", "1"),
        row("01-01-2024 00:15", "01-01-2024 00:30", "1"),
        row("01-01-2024 00:30", "01-01-2024 00:45", "1"),
        row("01-01-2024 00:45", "01-01-2024 01:00", "1"),
        row("01-01-2024 01:00", "01-01-2024 02:00", "4"),  # line 6: an hour's energy
        row("01-01-2024 02:00", "01-01-2024 03:00", "4"),
    ]
    path = write(tmp_path / "mixed.csv", [*rows, *([""] if blank_line else [])])
    with pytest.raises(ConfigError, match=r"mixed\.csv:6: .*60-minute interval among 15-minute"):
        eloverblik.read_csv(path)


def test_interval_lengths_across_both_clock_changes_are_their_resolution(
    tmp_path: Path,
) -> None:
    # local Til_dato - Fra_dato is 75 min at 01:45 in spring and -45 min at the first
    # 02:45 in autumn: still quarter hours
    path = write(
        tmp_path / "dst.csv",
        [
            row("31-03-2024 01:45", "31-03-2024 03:00", "1"),
            row("31-03-2024 03:00", "31-03-2024 03:15", "2"),
            row("27-10-2024 02:45", "27-10-2024 02:00", "3"),
            row("27-10-2024 02:00", "27-10-2024 02:15", "4"),
        ],
    )
    assert by_start(path) == {
        ms("2024-03-31T00:45"): (1.0, False),
        ms("2024-03-31T01:00"): (2.0, False),
        ms("2024-10-27T00:45"): (3.0, False),
        ms("2024-10-27T01:00"): (4.0, False),
    }


@pytest.mark.parametrize("amount", ["1.5", "NaN", "nan", "1,5e"])
def test_a_quantity_the_export_cannot_hold_names_its_line(tmp_path: Path, amount: str) -> None:
    path = write(
        tmp_path / "q.csv",
        [
            row("01-01-2024 00:00", "01-01-2024 01:00", "1"),
            row("01-01-2024 01:00", "01-01-2024 02:00", amount),
        ],
    )
    with pytest.raises(ConfigError, match=rf"q\.csv:3: quantity '{amount}' is not a number"):
        eloverblik.read_csv(path)


def test_rows_ending_in_a_semicolon_read_as_without_it(tmp_path: Path) -> None:
    path = write(
        tmp_path / "semi.csv",
        [
            row("01-01-2024 00:00", "01-01-2024 01:00", "1,5") + ";",
            row("01-01-2024 01:00", "01-01-2024 02:00", "2,25", "Estimeret") + ";",
        ],
    )
    assert by_start(path) == {
        ms("2023-12-31T23:00"): (1.5, False),
        ms("2024-01-01T00:00"): (2.25, True),
    }


def test_a_row_with_a_field_too_many_is_still_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path / "extra.csv",
        [
            row("01-01-2024 00:00", "01-01-2024 01:00", "1,5") + ";",
            row("01-01-2024 01:00", "01-01-2024 02:00", "2,25") + ";x",
        ],
    )
    with pytest.raises(ConfigError, match=r"extra\.csv:3: "):
        eloverblik.read_csv(path)


def _api(points: list[dict[str, object]], **series: object) -> dict[str, object]:
    one = {
        "MarketEvaluationPoint": {"mRID": {"name": GSRN}},
        "measurement_Unit.name": "KWH",
        "Period": [
            {"resolution": "PT1H", "timeInterval": {"start": "2023-12-31T23:00:00Z"},
             "Point": points},
        ],
    } | series  # fmt: skip
    return {"result": [{"MyEnergyData_MarketDocument": {"TimeSeries": [one]}}]}


def _point(position: object, quantity: object) -> dict[str, object]:
    return {"position": position, "out_Quantity.quantity": quantity, "out_Quantity.quality": "A04"}


@pytest.mark.parametrize(
    ("points", "series", "message"),
    [
        ([_point("1", "1"), _point("2", "NaN")], {}, r"Point\[1\]: quantity 'NaN' is not a number"),
        ([_point("1", "1"), _point("2", True)], {}, r"Point\[1\]: quantity True is not a number"),
        ([_point("0", "1")], {}, r"Point\[0\]: position '0' is not 1 or more"),
        (
            [_point("1", "1"), _point("1", "2")],
            {},
            r"Point\[1\]: .*same interval as result\[0\]\.TimeSeries\[0\]\.Period\[0\]\.Point\[0\]",
        ),
        ([_point("1", "-1")], {}, r"Point\[0\]: .*-1 kWh is not a plausible"),
        ([_point("1", "1")], {"measurement_Unit.name": "KVARH"}, r"unit 'KVARH' is not kWh"),
    ],
)
def test_api_json_faults_name_their_place_in_the_document(
    tmp_path: Path, points: list[dict[str, object]], series: dict[str, object], message: str
) -> None:
    path = tmp_path / "api.json"
    path.write_text(json.dumps(_api(points, **series)))
    with pytest.raises(ConfigError) as caught:
        eloverblik.read_json(path)
    (problem,) = caught.value.problems
    assert re.search(rf"^{re.escape(str(path))}: result\[0\]\.TimeSeries\[0\]", problem)
    assert re.search(message, problem), problem


def test_a_non_string_period_start_is_refused(tmp_path: Path) -> None:
    doc = _api([_point("1", "1")])
    doc["result"][0]["MyEnergyData_MarketDocument"]["TimeSeries"][0]["Period"][0][  # type: ignore[index]
        "timeInterval"
    ]["start"] = 5
    path = tmp_path / "api.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"Period\[0\]: start 5 is not a time"):
        eloverblik.read_json(path)


@pytest.mark.parametrize(
    "fmt", ["eloverblik-csv", "eloverblik-json", "csv", "jsonl", "energidataservice"]
)
@pytest.mark.parametrize("what", ["missing", "directory"])
def test_a_path_that_is_not_a_file_is_one_line_naming_it(
    tmp_path: Path, fmt: str, what: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nothing.csv"
    if what == "directory":
        path.mkdir()
    assert cli("--db", tmp_path / "c.db", "--format", fmt, path) == 2
    err = capsys.readouterr().err.strip()
    reason = "No such file or directory" if what == "missing" else "Is a directory"
    assert err == f"{path}: cannot read: {reason}"


@pytest.mark.parametrize(
    ("fmt", "data", "line"),
    [
        (
            "eloverblik-csv",
            f"{HEADER}\r\n{row('01-01-2024 00:00', '01-01-2024 01:00', '1')}\r\n".encode()
            + f"{GSRN};01-01-2024 01:00;01-01-2024 02:00;1;KWH;M\xe5lt;T\r\n".encode("latin-1"),
            3,
        ),
        (
            "csv",
            "ts,site,meter,power_w\n2024-01-01T00:00Z,b,m,1\n2024-01-01T00:01Z,b,m\xe9,1\n".encode(
                "latin-1"
            ),
            3,
        ),
        ("jsonl", '\n{"site": "b\xe9"}\n'.encode("latin-1"), 2),
    ],
)
def test_text_that_is_not_utf8_names_its_line(
    tmp_path: Path, fmt: str, data: bytes, line: int, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes(data)
    assert cli("--db", tmp_path / "c.db", "--format", fmt, path) == 2
    assert capsys.readouterr().err.strip() == f"{path}:{line}: not UTF-8 text"


def test_a_readings_csv_giving_one_value_twice_differently_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text(
        "ts,site,meter,quantity,value\n"
        "2024-01-01T00:00:00Z,bakery,m1,energy_import_kwh,5\n"
        "2024-01-01T00:00:00Z,bakery,m1,power_w,100\n"
        "2024-01-01T00:00:00+00:00,bakery,m1,energy_import_kwh,7\n"
    )
    with pytest.raises(ConfigError, match=r"r\.csv:4: energy_import_kwh of bakery/gw/m1 at "
                       r".* again, 7 after 5 on line 2"):  # fmt: skip
        readings.read_csv(path, "gw")


def test_a_readings_csv_repeating_a_value_exactly_reads_it_once(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text(
        "ts,site,meter,quantity,value\n"
        "2024-01-01T00:00:00Z,bakery,m1,energy_import_kwh,5\n"
        "2024-01-01T00:00:00Z,bakery,m1,energy_import_kwh,5.0\n"
    )
    file = readings.read_csv(path, "gw")
    assert file.values == 1
    assert file.messages[0].readings[0].values == {"energy_import_kwh": 5.0}
