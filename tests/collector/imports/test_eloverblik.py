"""Eloverblik files as companies download them: each row's exact kWh at its UTC interval."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from collector.imports import eloverblik
from sparwatt.errors import ConfigError

GSRN = "571313180400012345"
HEADER = "MålepunktsID;Fra_dato;Til_dato;Mængde;Måleenhed;Kvalitet;Type"


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def write(path: Path, rows: list[str], bom: bool = True) -> Path:
    body = "\r\n".join([HEADER, *rows]) + "\r\n"
    path.write_bytes(("\ufeff" if bom else "").encode() + body.encode("utf-8"))
    return path


def row(fra: str, til: str, kwh: str, quality: str = "Målt", gsrn: str = GSRN) -> str:
    return f"{gsrn};{fra};{til};{kwh};KWH;{quality};Tidsserie"


def by_start(path: Path) -> dict[int, tuple[float, bool]]:
    (point,) = eloverblik.read_csv(path).points
    h = point.history
    return {
        int(s): (float(k), bool(e)) for s, k, e in zip(h.start_ms, h.kwh, h.estimated, strict=True)
    }


def test_hourly_rows_across_the_autumn_change_keep_both_repeated_hours(tmp_path: Path) -> None:
    # 27 October 2024: 02:00-03:00 Danish time happens twice (CEST, then CET)
    path = write(
        tmp_path / "autumn.csv",
        [
            row("27-10-2024 01:00:00", "27-10-2024 02:00:00", "1,250"),
            row("27-10-2024 02:00:00", "27-10-2024 02:00:00", "2,5"),
            row("27-10-2024 02:00:00", "27-10-2024 03:00:00", "3,75", "Estimeret"),
            row("27-10-2024 03:00:00", "27-10-2024 04:00:00", "0,001"),
        ],
    )
    assert by_start(path) == {
        ms("2024-10-26T23:00"): (1.25, False),
        ms("2024-10-27T00:00"): (2.5, False),
        ms("2024-10-27T01:00"): (3.75, True),
        ms("2024-10-27T02:00"): (0.001, False),
    }
    assert eloverblik.read_csv(path).points[0].history.resolution_ms == 3_600_000


def test_quarter_hours_across_the_spring_change_have_no_gap(tmp_path: Path) -> None:
    # 31 March 2024: 02:00 Danish time does not exist; 01:45 is followed by 03:00
    path = write(
        tmp_path / "spring.csv",
        [
            row("31-03-2024 01:30", "31-03-2024 01:45", "0,5"),
            row("31-03-2024 01:45", "31-03-2024 03:00", "0,25"),
            row("31-03-2024 03:00", "31-03-2024 03:15", "0,125"),
        ],
        bom=False,
    )
    file = eloverblik.read_csv(path)
    assert file.points[0].gaps == 0
    assert file.points[0].history.resolution_ms == 900_000
    assert by_start(path) == {
        ms("2024-03-31T00:30"): (0.5, False),
        ms("2024-03-31T00:45"): (0.25, False),
        ms("2024-03-31T01:00"): (0.125, False),
    }


def test_a_time_the_clock_skips_is_an_error_naming_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bad.csv",
        [
            row("31-03-2024 01:00:00", "31-03-2024 02:00:00", "1"),
            row("31-03-2024 02:00:00", "31-03-2024 03:00:00", "1"),
        ],
    )
    with pytest.raises(ConfigError, match=r"bad\.csv:3: .*skip in spring"):
        eloverblik.read_csv(path)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (row("01-01-2024 00:00", "01-01-2024 01:00", "1,2,3"), r"x\.csv:3: quantity '1,2,3'"),
        (row("32-01-2024 00:00", "01-01-2024 01:00", "1"), r"x\.csv:3: Fra_dato '32-01-2024"),
        (f"{GSRN};01-01-2024 01:00;01-01-2024 02:00;1;KWH", r"x\.csv:3: no Kvalitet"),
        (f"{GSRN};01-01-2024 01:00;01-01-2024 02:00;1;KWH;Målt;T;x", r"x\.csv:3: 8 fields"),
        (row("01-01-2024 01:00", "01-01-2024 02:00", "1", "Gættet"), r"x\.csv:3: .*'Gættet'"),
        (row("01-01-2024 00:00", "01-01-2024 01:00", "2"), r"x\.csv:3: .*same interval as line 2"),
        (row("01-01-2024 01:00", "01-01-2024 02:00", "1", gsrn="12345"), r"x\.csv:3: .*18 digits"),
    ],
)
def test_a_malformed_line_names_file_line_and_reason(
    tmp_path: Path, line: str, message: str
) -> None:
    path = write(tmp_path / "x.csv", [row("01-01-2024 00:00", "01-01-2024 01:00", "1"), line])
    with pytest.raises(ConfigError, match=message):
        eloverblik.read_csv(path)


def test_rows_without_a_value_are_gaps_not_zeros(tmp_path: Path) -> None:
    path = write(
        tmp_path / "gaps.csv",
        [
            row("01-01-2024 00:00", "01-01-2024 01:00", "1"),
            row("01-01-2024 01:00", "01-01-2024 02:00", ""),
            row("01-01-2024 02:00", "01-01-2024 03:00", "0", "Ikke tilgængelig"),
            row("01-01-2024 03:00", "01-01-2024 04:00", "4"),
        ],
    )
    file = eloverblik.read_csv(path)
    assert file.empty_rows == 2
    assert file.points[0].gaps == 2
    assert sorted(by_start(path)) == [ms("2023-12-31T23:00"), ms("2024-01-01T02:00")]


def test_two_points_in_one_file_each_get_their_rows(tmp_path: Path) -> None:
    other = "571313180400099999"
    path = write(
        tmp_path / "two.csv",
        [
            row("01-06-2024 00:00", "01-06-2024 00:15", "1", gsrn=other),
            row("01-06-2024 00:00", "01-06-2024 01:00", "7"),
            row("01-06-2024 00:15", "01-06-2024 00:30", "2", gsrn=other),
        ],
    )
    points = {p.gsrn: p.history for p in eloverblik.read_csv(path).points}
    assert points[other].resolution_ms == 900_000
    assert points[other].kwh.tolist() == [1.0, 2.0]
    assert points[GSRN].resolution_ms == 3_600_000
    assert points[GSRN].start_ms.tolist() == [ms("2024-05-31T22:00")]


def test_a_file_that_is_not_an_export_says_so(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("a;b;c\n1;2;3\n")
    with pytest.raises(ConfigError, match=r"other\.csv:1: not an Eloverblik export"):
        eloverblik.read_csv(path)


def api_document(points: list[dict[str, str]], resolution: str = "PT15M") -> dict[str, object]:
    return {
        "result": [
            {
                "MyEnergyData_MarketDocument": {
                    "TimeSeries": [
                        {
                            "mRID": GSRN,
                            "measurement_Unit.name": "KWH",
                            "MarketEvaluationPoint": {"mRID": {"name": GSRN}},
                            "Period": [
                                {
                                    "resolution": resolution,
                                    "timeInterval": {
                                        "start": "2024-01-31T23:00:00Z",
                                        "end": "2024-02-01T23:00:00Z",
                                    },
                                    "Point": points,
                                }
                            ],
                        }
                    ]
                },
                "success": True,
            }
        ]
    }


def test_api_json_points_land_at_their_position(tmp_path: Path) -> None:
    path = tmp_path / "api.json"
    doc = api_document(
        [
            {"position": "1", "out_Quantity.quantity": "0.5", "out_Quantity.quality": "A04"},
            {"position": "3", "out_Quantity.quantity": "1.25", "out_Quantity.quality": "A03"},
        ]
    )
    path.write_text(json.dumps(doc))
    (point,) = eloverblik.read_json(path).points
    assert point.history.start_ms.tolist() == [ms("2024-01-31T23:00"), ms("2024-01-31T23:30")]
    assert point.history.kwh.tolist() == [0.5, 1.25]
    assert point.history.estimated.tolist() == [False, True]
    assert point.gaps == 1


def test_api_json_with_an_unknown_resolution_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "api.json"
    doc = api_document([{"position": "1", "out_Quantity.quantity": "1"}], resolution="P1D")
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"api\.json: .*resolution 'P1D'"):
        eloverblik.read_json(path)


def test_a_year_of_quarter_hours_reads_back_exactly(tmp_path: Path) -> None:
    """Every row of a year (both DST changes) at its UTC start, with its exact value."""
    starts = np.arange(ms("2023-12-31T23:00"), ms("2024-12-31T23:00"), 900_000)
    from devtools.utility_files import write_eloverblik_csv

    kwh = np.round(np.linspace(0.0, 9.999, len(starts)), 3)
    write_eloverblik_csv(tmp_path / "year.csv", starts, 900_000, {GSRN: kwh}, estimated_every=7)
    (point,) = eloverblik.read_csv(tmp_path / "year.csv").points
    assert point.history.start_ms.tolist() == starts.tolist()
    assert np.array_equal(point.history.kwh, kwh)
    assert point.history.estimated.sum() == len(starts[::7])


def test_a_file_parsed_in_parts_reads_as_one_and_names_the_true_line_of_a_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devtools.utility_files import write_eloverblik_csv

    starts = np.arange(ms("2024-10-20T00:00"), ms("2024-11-03T00:00"), 900_000)
    points = {
        f"5713131804000{i:05d}": np.round(np.arange(len(starts)) * 0.001 + i, 3) for i in range(6)
    }
    path = tmp_path / "parts.csv"
    write_eloverblik_csv(path, starts, 900_000, points)
    whole = eloverblik.read_csv(path)
    monkeypatch.setattr(eloverblik, "PARALLEL_BYTES", 1)
    monkeypatch.setattr(eloverblik, "MAX_PROCESSES", 3)
    parted = eloverblik.read_csv(path)
    assert [p.gsrn for p in parted.points] == list(points)
    for a, b in zip(whole.points, parted.points, strict=True):
        assert a.first_line == b.first_line
        assert a.history.start_ms.tolist() == b.history.start_ms.tolist()
        assert a.history.kwh.tolist() == b.history.kwh.tolist()
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    bad = len(lines) - 10
    lines[bad - 1] = lines[bad - 1].replace(";KWH;", ";KW;")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    with pytest.raises(ConfigError, match=rf"parts\.csv:{bad}: Måleenhed 'KW' is not kWh"):
        eloverblik.read_csv(path)


def test_a_blank_line_between_rows_carries_nothing_and_keeps_the_line_numbers(
    tmp_path: Path,
) -> None:
    first = row("01-01-2024 00:00", "01-01-2024 01:00", "1")
    path = write(
        tmp_path / "blank.csv", [first, "", row("01-01-2024 01:00", "01-01-2024 02:00", "2")]
    )
    assert sorted(by_start(path).values()) == [(1.0, False), (2.0, False)]
    late = write(
        tmp_path / "late.csv",
        [first, "", row("01-01-2024 01:00", "01-01-2024 02:00", "2", "Gættet")],
    )
    with pytest.raises(ConfigError, match=r"late\.csv:4: Kvalitet 'Gættet'"):
        eloverblik.read_csv(late)
