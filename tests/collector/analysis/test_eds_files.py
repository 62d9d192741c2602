"""Energi Data Service downloads used as they come: prices and CO2 per 15-minute interval for
the site's price area, and one precise line per broken file."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from collector.analysis import hourly
from collector.analysis.co2 import co2_per_interval
from collector.analysis.money import spot_price
from collector.analysis.site_context import SiteContext, load_sites
from sparwatt.errors import ConfigError, SiteConfigError

BOM = "\ufeff"

# DayAheadPrices as the Danish site downloads it: ';', decimal comma, BOM, newest row first,
# times without 'T' or zone. Hourly until 2025-09-30 22:00 UTC (midnight Danish time), then
# per 15 minutes; DK1 has no price for 22:30.
DAY_AHEAD_DA = BOM + (
    "TimeUTC;TimeDK;PriceArea;DayAheadPriceEUR;DayAheadPriceDKK\n"
    "2025-09-30 22:45;2025-10-01 00:45;DK2;76,370000;570,000000\n"
    "2025-09-30 22:45;2025-10-01 00:45;DK1;-1,670000;-12,500000\n"
    "2025-09-30 22:30;2025-10-01 00:30;DK2;77,710000;580,000000\n"
    "2025-09-30 22:30;2025-10-01 00:30;DK1;;\n"
    "2025-09-30 22:15;2025-10-01 00:15;DK2;79,050000;590,000000\n"
    "2025-09-30 22:15;2025-10-01 00:15;DK1;64,310000;480,000000\n"
    "2025-09-30 22:00;2025-10-01 00:00;DK2;80,390000;600,100000\n"
    "2025-09-30 22:00;2025-10-01 00:00;DK1;67,160000;501,250000\n"
    "2025-09-30 21:00;2025-09-30 23:00;DK2;87,090000;650,000000\n"
    "2025-09-30 21:00;2025-09-30 23:00;DK1;78,660000;587,100000\n"
    "2025-09-30 20:00;2025-09-30 22:00;DK2;93,790000;700,000000\n"
    "2025-09-30 20:00;2025-09-30 22:00;DK1;82,050000;612,340000\n"
)

# the same prices as the API returns them
DAY_AHEAD_JSON = json.dumps(
    {
        "total": 12,
        "filters": '{"PriceArea":["DK1","DK2"]}',
        "dataset": "DayAheadPrices",
        "records": [
            {
                "TimeUTC": f"2025-09-30T{utc}:00",
                "TimeDK": f"{dk}:00",
                "PriceArea": area,
                "DayAheadPriceDKK": dkk,
                "DayAheadPriceEUR": None if dkk is None else round(dkk / 7.46, 2),
            }
            for utc, dk, area, dkk in [
                ("22:45", "2025-10-01T00:45", "DK2", 570.0),
                ("22:45", "2025-10-01T00:45", "DK1", -12.5),
                ("22:30", "2025-10-01T00:30", "DK2", 580.0),
                ("22:30", "2025-10-01T00:30", "DK1", None),
                ("22:15", "2025-10-01T00:15", "DK2", 590.0),
                ("22:15", "2025-10-01T00:15", "DK1", 480.0),
                ("22:00", "2025-10-01T00:00", "DK2", 600.1),
                ("22:00", "2025-10-01T00:00", "DK1", 501.25),
                ("21:00", "2025-09-30T23:00", "DK2", 650.0),
                ("21:00", "2025-09-30T23:00", "DK1", 587.1),
                ("20:00", "2025-09-30T22:00", "DK2", 700.0),
                ("20:00", "2025-09-30T22:00", "DK1", 612.34),
            ]
        ],
    }
)

# Elspotprices from the English site: ',' and decimal point, no BOM; hourly, more areas than
# Denmark's. DK2 has no 12:00 row, so 12:00-13:00 takes the flat spot.
ELSPOT_EN = (
    "HourUTC,HourDK,PriceArea,SpotPriceDKK,SpotPriceEUR\n"
    "2025-01-15 13:00,2025-01-15 14:00,DK2,905.200000,121.340000\n"
    "2025-01-15 12:00,2025-01-15 13:00,DK1,610.000000,81.770000\n"
    "2025-01-15 11:00,2025-01-15 12:00,SE3,300.100000,40.230000\n"
    "2025-01-15 11:00,2025-01-15 12:00,DK2,800.500000,107.310000\n"
    "2025-01-15 11:00,2025-01-15 12:00,DK1,745.870000,99.980000\n"
    "2025-01-15 10:00,2025-01-15 11:00,SE3,310.000000,41.550000\n"
    "2025-01-15 10:00,2025-01-15 11:00,DK2,790.000000,105.900000\n"
    "2025-01-15 10:00,2025-01-15 11:00,DK1,690.120000,92.510000\n"
)

# CO2Emis (g/kWh every 5 minutes) in the three forms; DK1 has no value for 10:20
_CO2_ROWS = [
    ("10:25", "DK2", "60"),
    ("10:25", "DK1", "95,5"),
    ("10:20", "DK2", "51"),
    ("10:20", "DK1", ""),
    ("10:15", "DK2", "43"),
    ("10:15", "DK1", "90"),
    ("10:10", "DK2", "42"),
    ("10:10", "DK1", "126"),
    ("10:05", "DK2", "41"),
    ("10:05", "DK1", "110"),
    ("10:00", "DK2", "40"),
    ("10:00", "DK1", "100"),
]


def _dk(utc: str) -> str:
    return f"{int(utc[:2]) + 1:02d}{utc[2:]}"  # CET in March


CO2_DA = (
    BOM
    + "Minutes5UTC;Minutes5DK;PriceArea;CO2Emission\n"
    + "".join(f"2025-03-04 {utc};2025-03-04 {_dk(utc)};{area};{g}\n" for utc, area, g in _CO2_ROWS)
)
CO2_EN = "Minutes5UTC,Minutes5DK,PriceArea,CO2Emission\n" + "".join(
    f"2025-03-04 {utc},2025-03-04 {_dk(utc)},{area},{g.replace(',', '.')}\n"
    for utc, area, g in _CO2_ROWS
)
CO2_JSON = json.dumps(
    {
        "total": len(_CO2_ROWS),
        "dataset": "CO2Emis",
        "records": [
            {
                "Minutes5UTC": f"2025-03-04T{utc}:00",
                "Minutes5DK": f"2025-03-04T{_dk(utc)}:00",
                "PriceArea": area,
                "CO2Emission": float(g.replace(",", ".")) if g else None,
            }
            for utc, area, g in _CO2_ROWS
        ],
    }
)


def quarters(start_utc: str, n: int) -> np.ndarray:
    t0 = int(pd.Timestamp(start_utc, tz="UTC").value // 1_000_000)
    return t0 + np.arange(n, dtype=np.int64) * 900_000


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


def price_ctx(path: Path, area: str) -> SiteContext:
    return SiteContext(
        price_area=area, energy_price={"spot_dkk_per_kwh": 9.0, "spot_hourly_csv": path}
    )


@pytest.mark.parametrize(("name", "text"), [("da.csv", DAY_AHEAD_DA), ("api.json", DAY_AHEAD_JSON)])
def test_day_ahead_prices_across_the_15_minute_switch_in_dkk_per_kwh_for_the_sites_area(
    tmp_path: Path, name: str, text: str
) -> None:
    path = write(tmp_path, name, text)
    ms = quarters("2025-09-30 20:00", 13)  # to 23:00 UTC
    dk1 = spot_price(ms, price_ctx(path, "DK1"))
    assert list(dk1) == [0.61234] * 4 + [0.5871] * 4 + [0.50125, 0.48, 9.0, -0.0125, 9.0]
    dk2 = spot_price(ms, price_ctx(path, "DK2"))
    assert list(dk2) == [0.7] * 4 + [0.65] * 4 + [0.6001, 0.59, 0.58, 0.57, 9.0]


def test_elspotprices_hourly_with_comma_and_decimal_point_price_all_four_quarters(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "elspot.csv", ELSPOT_EN)
    ms = quarters("2025-01-15 10:00", 17)  # to 14:00 UTC
    dk1 = spot_price(ms, price_ctx(path, "DK1"))
    assert list(dk1) == [0.69012] * 4 + [0.74587] * 4 + [0.61] * 4 + [9.0] * 5
    dk2 = spot_price(ms, price_ctx(path, "DK2"))
    assert list(dk2) == [0.79] * 4 + [0.8005] * 4 + [9.0] * 4 + [0.9052] * 4 + [9.0]


@pytest.mark.parametrize(
    ("name", "text"), [("da.csv", CO2_DA), ("en.csv", CO2_EN), ("api.json", CO2_JSON)]
)
def test_5_minute_co2_is_averaged_to_the_quarter_in_g_per_kwh(
    tmp_path: Path, name: str, text: str
) -> None:
    path = write(tmp_path, name, text)
    ms = quarters("2025-03-04 10:00", 3)
    dk1 = SiteContext(price_area="DK1", co2={"g_per_kwh": 60, "hourly_csv": path})
    # 10:15 has 90 and 95.5 (10:20 is empty): their mean, not a mean stretched over 10:20
    assert list(co2_per_interval(ms, dk1.co2)) == [112.0, 92.75, 60.0]
    dk2 = SiteContext(price_area="DK2", co2={"g_per_kwh": 60, "hourly_csv": path})
    assert list(co2_per_interval(ms, dk2.co2)) == [41.0, 154 / 3, 60.0]


def test_a_bare_list_of_records_reads_like_the_api_answer(tmp_path: Path) -> None:
    records = json.loads(DAY_AHEAD_JSON)["records"]
    path = write(tmp_path, "records.json", json.dumps(records))
    ms = quarters("2025-09-30 22:00", 4)
    assert list(spot_price(ms, price_ctx(path, "DK2"))) == [0.6001, 0.59, 0.58, 0.57]


def test_values_left_empty_are_skipped_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, "co2.json", CO2_JSON)
    with caplog.at_level(logging.WARNING, logger="collector.analysis.hourly"):
        dk1 = hourly.load(path, "g_per_kwh", "CO2 series", "DK1")
    assert (dk1.layout, dk1.skipped, len(dk1.starts)) == ("CO2Emis", 1, 5)
    assert "skipped=1" in caplog.text
    assert str(path) in caplog.text
    assert hourly.load(path, "g_per_kwh", "CO2 series", "DK2").skipped == 0


def test_the_projects_own_layout_needs_no_price_area_and_ignores_it(tmp_path: Path) -> None:
    path = write(tmp_path, "spot.csv", "ts,dkk_per_kwh\n2025-01-15T10:00:00Z,0.5\n")
    ms = quarters("2025-01-15 10:00", 5)
    assert list(spot_price(ms, price_ctx(path, "DK2"))) == [0.5] * 4 + [9.0]
    assert hourly.load(path, "dkk_per_kwh", "spot price").layout == "ts,dkk_per_kwh"


def test_sites_share_one_download_each_reading_its_own_area(tmp_path: Path) -> None:
    write(tmp_path, "DayAheadPrices.csv", DAY_AHEAD_DA)
    write(tmp_path, "CO2Emis.json", CO2_JSON)
    path = write(
        tmp_path,
        "sites.toml",
        '[defaults]\nprice_area = "DK1"\n'
        '[defaults.energy_price]\nspot_hourly_csv = "DayAheadPrices.csv"\n'
        '[defaults.co2]\nhourly_csv = "CO2Emis.json"\n'
        '[sites.west]\nsector = "office"\n'
        '[sites.east]\nsector = "office"\nprice_area = "DK2"\n',
    )
    sites = load_sites(path)
    assert (sites["west"].price_area, sites["east"].price_area) == ("DK1", "DK2")
    assert sites.defaults.price_area == "DK1"
    ms = quarters("2025-09-30 22:00", 2)
    assert list(spot_price(ms, sites["west"])) == [0.50125, 0.48]
    assert list(spot_price(ms, sites["east"])) == [0.6001, 0.59]
    co2_ms = quarters("2025-03-04 10:00", 1)
    assert list(co2_per_interval(co2_ms, sites["east"].co2)) == [41.0]


def test_a_price_area_outside_denmark_is_refused_naming_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "sites.toml", '[sites.a]\nprice_area = "SE3"\n')
    with pytest.raises(ConfigError) as err:
        load_sites(path)
    (line,) = err.value.problems
    assert line.startswith(f"{path}: sites.a.price_area")
    assert "'SE3'" in line


def _sites_problem(tmp_path: Path, key: str, name: str, text: str, area: str | None) -> str:
    series = write(tmp_path, name, text)
    section, file_key = key.split(".")
    area_line = f'price_area = "{area}"\n' if area else ""
    path = write(
        tmp_path,
        "sites.toml",
        f'[sites.a]\nsector = "office"\n{area_line}[sites.a.{section}]\n{file_key} = "{name}"\n',
    )
    with pytest.raises(ConfigError) as err:
        load_sites(path)
    (line,) = err.value.problems
    prefix = f"{path}: sites.a.{key}: {series}: "
    assert line.startswith(prefix)
    return line.removeprefix(prefix)


SPOT = "energy_price.spot_hourly_csv"
CO2 = "co2.hourly_csv"
DA_HEAD = "TimeUTC;TimeDK;PriceArea;DayAheadPriceEUR;DayAheadPriceDKK\n"


@pytest.mark.parametrize(
    ("key", "name", "text", "area", "problem"),
    [
        (
            SPOT,
            "dk1-only.csv",
            DA_HEAD + "2025-10-01 10:00;2025-10-01 12:00;DK1;80,1;597,5\n",
            "DK2",
            "spot price series has no rows for price area DK2; the file has DK1",
        ),
        (
            SPOT,
            "no-area.csv",
            DAY_AHEAD_DA,
            None,
            "spot price series is Energi Data Service's DayAheadPrices with the price areas "
            "DK1, DK2; set price_area for the site",
        ),
        (
            SPOT,
            "bad-number.csv",
            DA_HEAD + "2025-10-01 10:00;2025-10-01 12:00;DK1;80,1;597,5\n"
            "2025-10-01 10:15;2025-10-01 12:15;DK1;80,1;5x7,5\n",
            "DK1",
            "bad row in spot price series CSV: row 3: bad number '5x7,5' in DayAheadPriceDKK",
        ),
        (
            SPOT,
            "bad-time.csv",
            DA_HEAD + "2025-10-01 24:00;2025-10-02 02:00;DK1;80,1;597,5\n",
            "DK1",
            "bad row in spot price series CSV: row 2: bad timestamp '2025-10-01 24:00' in TimeUTC",
        ),
        (
            SPOT,
            "short-row.csv",
            DA_HEAD + "2025-10-01 10:00;2025-10-01 12:00;DK1\n",
            "DK1",
            "bad row in spot price series CSV: row 2: 3 field(s) where the header has 5, so no "
            "DayAheadPriceDKK",
        ),
        (
            SPOT,
            "odd-minute.csv",
            DA_HEAD + "2025-10-01 10:05;2025-10-01 12:05;DK1;80,1;597,5\n",
            "DK1",
            "bad row in spot price series CSV: row 2 does not start on a quarter hour",
        ),
        (
            SPOT,
            "elspot-quarter.csv",
            "HourUTC,HourDK,PriceArea,SpotPriceDKK,SpotPriceEUR\n"
            "2025-01-15 10:15,2025-01-15 11:15,DK1,690.12,92.51\n",
            "DK1",
            "bad row in spot price series CSV: row 2 does not start on a whole hour",
        ),
        (
            SPOT,
            "eur-only.csv",
            "TimeUTC;TimeDK;PriceArea;DayAheadPriceEUR\n"
            "2025-10-01 10:00;2025-10-01 12:00;DK1;80,1\n",
            "DK1",
            "spot price series CSV looks like Energi Data Service's DayAheadPrices but has no "
            "column DayAheadPriceDKK",
        ),
        (
            SPOT,
            "co2-as-price.csv",
            CO2_DA,
            "DK1",
            "spot price series CSV is Energi Data Service's CO2Emis, which is not a spot price "
            "series",
        ),
        (
            SPOT,
            "unknown.csv",
            "time;area;price\n2025-10-01 10:00;DK1;1\n",
            "DK1",
            "spot price series CSV needs exactly the columns ts,dkk_per_kwh, or those of an "
            "Energi Data Service download (DayAheadPrices: TimeUTC, PriceArea, "
            "DayAheadPriceDKK; Elspotprices: HourUTC, PriceArea, SpotPriceDKK); found: time, "
            "area, price",
        ),
        (
            CO2,
            "missing-key.json",
            json.dumps(
                {
                    "records": [
                        {
                            "Minutes5UTC": "2025-03-04T10:00:00",
                            "PriceArea": "DK1",
                            "CO2Emission": 9,
                        },
                        {"Minutes5UTC": "2025-03-04T10:05:00", "PriceArea": "DK1"},
                    ]
                }
            ),
            "DK1",
            "bad record in CO2 series JSON: records[1]: missing key CO2Emission",
        ),
        (
            CO2,
            "text-value.json",
            json.dumps(
                {
                    "records": [
                        {
                            "Minutes5UTC": "2025-03-04T10:00:00",
                            "PriceArea": "DK2",
                            "CO2Emission": 9,
                        },
                        {
                            "Minutes5UTC": "2025-03-04T10:00:00",
                            "PriceArea": "DK1",
                            "CO2Emission": "n/a",
                        },
                    ]
                }
            ),
            "DK1",
            "bad record in CO2 series JSON: records[1]: bad number 'n/a' in CO2Emission",
        ),
        (
            CO2,
            "bad-time.json",
            json.dumps(
                {
                    "records": [
                        {"Minutes5UTC": "04-03-2025 10:00", "PriceArea": "DK1", "CO2Emission": 9}
                    ]
                }
            ),
            "DK1",
            "bad record in CO2 series JSON: records[0]: bad timestamp '04-03-2025 10:00' in "
            "Minutes5UTC",
        ),
        (
            CO2,
            "odd-minute.json",
            json.dumps(
                {
                    "records": [
                        {"Minutes5UTC": "2025-03-04T10:02:00", "PriceArea": "DK1", "CO2Emission": 9}
                    ]
                }
            ),
            "DK1",
            "bad record in CO2 series JSON: records[0] does not start on a 5-minute mark",
        ),
        (
            CO2,
            "empty.json",
            '{"total": 0, "dataset": "CO2Emis", "records": []}',
            "DK1",
            "CO2 series JSON has no records (a list under 'records')",
        ),
    ],
)
def test_a_broken_download_is_refused_naming_file_row_and_reason(
    tmp_path: Path, key: str, name: str, text: str, area: str | None, problem: str
) -> None:
    assert _sites_problem(tmp_path, key, name, text, area) == problem


def test_the_per_interval_reader_names_the_file_too(tmp_path: Path) -> None:
    path = write(tmp_path, "dk1.csv", DA_HEAD + "2025-10-01 10:00;x;DK1;80,1;nan\n")
    with pytest.raises(SiteConfigError) as err:
        spot_price(quarters("2025-10-01 10:00", 1), price_ctx(path, "DK1"))
    assert str(err.value) == (
        f"{path}: bad row in spot price CSV: row 2: 'nan' in DayAheadPriceDKK is not a finite "
        "number"
    )
