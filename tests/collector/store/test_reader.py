"""The reader's queries give the same rows, with the same Python types, on SQLite and on
PostgreSQL: each test fills one database of each engine with the same rows and reads them
back through `Reader`.

The rows are written with plain statements rather than through `Store`, so what is tested
here is the read side alone.
"""

from __future__ import annotations

import decimal
import json
import sqlite3
from collections.abc import Iterator
from datetime import date

import psycopg
import pytest

from collector.intervals import rollup as rollup_codec
from collector.intervals.rollup import CounterStats, GaugeStats
from collector.store import packing
from collector.store.reader import Reader
from collector.store.rows import (
    AlertRow,
    GapRow,
    GatewayRow,
    LatestRow,
    MeasureExclusion,
    MeasureRow,
    MeterEnergy,
    MeterRef,
    MeterRow,
    OpportunityRow,
    Quarantined,
    QuarantineRow,
    ReadingRow,
    SilenceRow,
    SiteEnergyInterval,
    SiteInterval,
    SiteTotal,
    Stat,
    TemperatureRow,
    TokenHashRow,
    TokenRow,
)
from collector.store.schema import apply_migrations, connect
from collector.store.sql import Connection, Target
from collector.store.writer import Store
from tests.support.messages import message

Q = 900_000  # a quarter hour, ms
DAY = 86_400_000
T0 = 1_699_999_200_000  # on a quarter
MAIN, SUB, OTHER = 1, 2, 3  # meter ids, in the order they are inserted

NEWER = {"power_w": 1500.5, "energy_import_kwh": 12345.67}  # float32, scaled int32
OLDER = {"power_w": 1400.25, "energy_import_kwh": 12345.5, "voltage_l1_v": 230.1}
SUB_READING = {"power_w": 250.0}
ROLLUP_VALUES: dict[str, rollup_codec.Stats] = {
    "energy_import_kwh": CounterStats(0.375, estimated=False),
    "power_w": GaugeStats(1450.5, 1400.25, 1500.5, 15),
}


def _layout_id(db: Connection, values: dict[str, float]) -> tuple[int, bytes]:
    layout, blob = packing.pack(values)
    db.execute("INSERT OR IGNORE INTO layout (spec) VALUES (?)", (layout.key(),))
    (layout_id,) = db.execute("SELECT id FROM layout WHERE spec = ?", (layout.key(),)).fetchone()
    return int(layout_id), blob


def _fill(db: Connection) -> None:
    """The same rows on either engine; floats chosen to sum exactly in any order."""
    ex = db.execute
    ex(
        "INSERT INTO gateway (site, gateway, registered_ms, last_seq, last_seen_ms, state, "
        "state_ms, status, health, health_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ("alpha", "gw1", 1000, 7, T0 + 5000, "online", T0, '{"version": "1.2"}',
         '{"cpu": 0.5}', T0 + 4500),
    )  # fmt: skip
    ex("INSERT INTO gateway (site, gateway, registered_ms) VALUES ('beta', 'gw2', 2000)")
    ex("INSERT INTO gateway (site, gateway, registered_ms) VALUES ('gamma', 'gw3', 3000)")
    for site, gateway, meter, quantities in (
        ("alpha", "gw1", "main", "energy_import_kwh power_w voltage_l1_v"),
        ("alpha", "gw1", "sub", "power_w"),
        ("beta", "gw2", "m1", "energy_import_kwh"),
    ):
        ex(
            "INSERT INTO meter (site, gateway, meter, quantities) VALUES (?, ?, ?, ?)",
            (site, gateway, meter, quantities),
        )
    ex("UPDATE meter SET source = 'eloverblik', resolution_ms = 3600000 WHERE id = ?", (OTHER,))

    for meter_id, ts, values in (
        (MAIN, T0, OLDER),
        (MAIN, T0 + 60_000, NEWER),
        (SUB, T0 + 30_000, SUB_READING),
    ):
        layout_id, blob = _layout_id(db, values)
        ex(
            "INSERT INTO sample (meter_id, ts, layout, data) VALUES (?, ?, ?, ?)",
            (meter_id, ts, layout_id, blob),
        )

    names, blob = rollup_codec.pack(rollup_codec.Rollup(T0, ROLLUP_VALUES))
    ex("INSERT INTO layout (spec) VALUES (?)", ("15m:" + names,))
    (rollup_layout,) = ex("SELECT id FROM layout WHERE spec = ?", ("15m:" + names,)).fetchone()
    for start in (T0, T0 + DAY):
        ex(
            "INSERT INTO rollup (meter_id, start_ms, layout, data) VALUES (?, ?, ?, ?)",
            (MAIN, start, rollup_layout, blob),
        )

    db.executemany(
        "INSERT INTO interval_energy (meter_id, start_ms, energy_kwh, estimated, export_kwh, "
        "export_estimated, mean_power_w, max_power_w) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (MAIN, T0, 0.375, 0, 0.0, 0, 1500.0, 1750.5),
            (MAIN, T0 + Q, 0.5, 1, None, 0, 2000.0, None),
            (SUB, T0, 0.125, 0, 0.25, 1, 500.0, 600.0),
            (OTHER, T0, 1.25, 1, None, 0, 5000.0, 5000.0),
            (OTHER, T0 + 4 * Q, None, 0, None, 0, None, None),
        ],
    )

    ex(
        "INSERT INTO gap (site, gateway, from_seq, to_seq, after_ms, before_ms, detected_ms) "
        "VALUES ('alpha', 'gw1', 3, 4, ?, ?, ?)",
        (T0 - 1000, T0 + 1000, T0 + 2000),
    )
    ex(
        "INSERT INTO gap (site, gateway, from_seq, to_seq, detected_ms) "
        "VALUES ('beta', 'gw2', 10, 12, ?)",
        (T0,),
    )

    db.executemany(
        "INSERT INTO quarantine (received_ms, topic, reason, detail, size, payload) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            (T0, "sparwatt/alpha/gw1/readings", "bad_json", "line 1", 3, b"{x\x00"),
            (T0 + 1, "sparwatt/beta/gw2/readings", "too_big", "over 1 MiB", 2_000_000, b"\xff"),
        ],
    )
    db.executemany(
        "INSERT INTO counter (name, value) VALUES (?, ?)",
        [
            ("stored", 5_000_000_000),  # past 32 bits: BIGINT on PostgreSQL
            ("pruned", 4_999_999_995),
            ("quarantined.bad_json", 1),
            ("quarantined.too_big", 1),
            ("messages", 3),
        ],
    )
    db.executemany(
        "INSERT INTO stat (name, value, text, updated_ms) VALUES (?, ?, ?, ?)",
        [("ingest_readings_per_s", 12.5, None, T0), ("sink_last_error", None, "refused", T0)],
    )

    db.executemany(
        "INSERT INTO token (name, role, sites, hash, created_ms, revoked_ms, expires_ms) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            ("ops", "admin", "[]", "h1", T0, None, None),
            ("acme", "viewer", '["alpha"]', "h2", T0 + 1, T0 + 2, T0 + DAY),
        ],
    )
    db.executemany(
        "INSERT INTO opportunity (id, site, meter, kind, status, data, updated_ms) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            ("o1", "alpha", "main", "base_load", "open", '{"kwh": 1.5}', T0),
            ("o2", "alpha", "sub", "peak", "closed", "{}", T0 + 1),
            ("o3", "beta", "m1", "base_load", "open", '{"kwh": 2}', T0 + 2),
        ],
    )
    db.executemany(
        "INSERT INTO alert (id, site, labels, state, severity, summary, started_ms, "
        "resolved_ms, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            ("a1", "alpha", '{"meter": "main"}', "firing", "warning", "high", T0, None, "{}"),
            ("a2", "alpha", "{}", "resolved", "info", "old", T0 - DAY, T0 - 10, '{"n": 1}'),
            ("a3", "beta", "{}", "resolved", "critical", "new", T0 + 5, T0 + 10, "{}"),
        ],
    )
    ex(
        "INSERT INTO alert_state (id, data, updated_ms) VALUES (1, ?, ?)",
        ('{"round": 4}', T0),
    )
    db.executemany(
        "INSERT INTO silence (id, site, meter, starts_ms, ends_ms, reason, created_ms) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            ("s1", "alpha", None, T0, T0 + DAY, "works", T0 - 1),
            ("s2", "beta", "m1", T0 - DAY, T0 - 1, "over", T0 - DAY),
            ("s3", "alpha", "main", T0 - 5, T0 + 5, "short", T0 - 6),
        ],
    )
    ex(
        f"INSERT INTO measure ({_MEASURE_COLUMNS}) VALUES ({', '.join('?' * 15)})",
        ("m-led", "alpha", '["main"]', "lighting", "LED", "2024-03-01", "2024-03-15", 12000.5,
         4000.0, "o1", "auto", '[{"start": "2024-05-01", "end": "2024-05-03", "label": "x"}]',
         "first", T0, T0 + 1),
    )  # fmt: skip
    ex(
        f"INSERT INTO measure ({_MEASURE_COLUMNS}) VALUES ({', '.join('?' * 15)})",
        ("m-hp", "beta", "[]", "heat_pump", "Heat pump", "2024-01-10", None, None, None, None,
         "hdd", "[]", None, T0, T0),
    )  # fmt: skip
    db.executemany(
        "INSERT INTO temperature (site, start_ms, celsius) VALUES (?, ?, ?)",
        [("alpha", T0 + h * 3_600_000, 4.5 - h) for h in range(3)] + [("beta", T0, -1.0)],
    )


_MEASURE_COLUMNS = (
    "id, site, meters, kind, title, installed_from, installed_to, investment_dkk, "
    "expected_kwh_year, opportunity_id, model, exclusions, note, created_ms, updated_ms"
)


@pytest.fixture
def filled(db_target: Target) -> Target:
    db = connect(db_target)
    try:
        apply_migrations(db, db_target)
        _fill(db)
    finally:
        db.close()
    return db_target


@pytest.fixture
def reader(filled: Target) -> Iterator[Reader]:
    with Reader(filled, sub_meters=["alpha/sub"]) as r:
        yield r


def _exact(value: object, kind: type) -> None:
    """`value` is of exactly `kind`: no Decimal, memoryview or bool where an int belongs."""
    assert type(value) is kind, (value, type(value))


# ---- readings


def test_latest_takes_each_quantity_from_the_newest_reading_that_has_it(reader: Reader) -> None:
    assert reader.latest() == [
        LatestRow("alpha", "gw1", "main", "energy_import_kwh", T0 + 60_000, 12345.67),
        LatestRow("alpha", "gw1", "main", "power_w", T0 + 60_000, 1500.5),
        LatestRow("alpha", "gw1", "main", "voltage_l1_v", T0, 230.1),
        LatestRow("alpha", "gw1", "sub", "power_w", T0 + 30_000, 250.0),
    ]
    assert reader.latest("beta") == []
    row = reader.latest("alpha")[0]
    _exact(row.ts_ms, int)
    _exact(row.value, float)


def test_latest_of_one_quantity_per_meter(reader: Reader) -> None:
    assert reader.latest_of("power_w") == [
        LatestRow("alpha", "gw1", "main", "power_w", T0 + 60_000, 1500.5),
        LatestRow("alpha", "gw1", "sub", "power_w", T0 + 30_000, 250.0),
    ]
    assert reader.latest_of("voltage_l1_v", "alpha") == [
        LatestRow("alpha", "gw1", "main", "voltage_l1_v", T0, 230.1)
    ]
    assert reader.latest_of("power_w", "beta") == []


def test_raw_gives_every_value_of_a_site_by_time_then_meter(reader: Reader) -> None:
    rows = list(reader.raw("alpha", T0, T0 + 60_000))  # the end is left out
    assert rows == [
        ReadingRow("gw1", "main", "energy_import_kwh", T0, 12345.5),
        ReadingRow("gw1", "main", "power_w", T0, 1400.25),
        ReadingRow("gw1", "main", "voltage_l1_v", T0, 230.1),
        ReadingRow("gw1", "sub", "power_w", T0 + 30_000, 250.0),
    ]
    _exact(rows[0].ts_ms, int)
    assert list(reader.raw("beta", 0, T0 + DAY)) == []


def test_samples_of_one_quantity_meter_by_meter_with_both_ends_included(reader: Reader) -> None:
    assert reader.samples_of("power_w", T0, T0 + 60_000) == [
        (MAIN, T0, 1400.25),
        (MAIN, T0 + 60_000, 1500.5),
        (SUB, T0 + 30_000, 250.0),
    ]
    assert reader.samples_of("voltage_l1_v", T0 + 1, T0 + DAY) == []


def test_last_reading_ms_up_to_a_time_inclusive(reader: Reader) -> None:
    assert reader.last_reading_ms(T0 + DAY) == {MAIN: T0 + 60_000, SUB: T0 + 30_000}
    assert reader.last_reading_ms(T0 + 30_000) == {MAIN: T0, SUB: T0 + 30_000}
    assert reader.last_reading_ms(T0 - 1) == {}
    for meter_id, ts in reader.last_reading_ms(T0 + DAY).items():
        _exact(meter_id, int)
        _exact(ts, int)


# ---- intervals and totals


def test_energy_intervals_by_start_then_meter_with_nulls_kept(reader: Reader) -> None:
    rows = list(reader.energy_intervals("alpha", T0, T0 + 2 * Q))
    assert rows == [
        SiteEnergyInterval("gw1", "main", T0, 0.375, 0, 0.0, 0, 1500.0, 1750.5),
        SiteEnergyInterval("gw1", "sub", T0, 0.125, 0, 0.25, 1, 500.0, 600.0),
        SiteEnergyInterval("gw1", "main", T0 + Q, 0.5, 1, None, 0, 2000.0, None),
    ]
    assert isinstance(rows[0], SiteEnergyInterval)
    for value, kind in zip(
        rows[1], (str, str, int, float, int, float, int, float, float), strict=True
    ):
        _exact(value, kind)


def test_intervals_and_site_intervals_give_import_energy_and_power(reader: Reader) -> None:
    expected = [
        SiteInterval("gw1", "main", T0, 0.375, 0, 1500.0, 1750.5),
        SiteInterval("gw1", "sub", T0, 0.125, 0, 500.0, 600.0),
        SiteInterval("gw1", "main", T0 + Q, 0.5, 1, 2000.0, None),
    ]
    assert list(reader.intervals("alpha", T0, T0 + 2 * Q)) == expected
    assert reader.site_intervals("alpha", T0, T0 + 2 * Q) == expected
    assert reader.site_intervals("alpha", T0 + Q, T0 + 2 * Q) == expected[2:]
    _exact(reader.site_intervals("alpha", T0, T0 + Q)[0].estimated, int)


def test_site_totals_sum_main_meters_and_leave_sub_meters_out(reader: Reader) -> None:
    totals = reader.site_totals("alpha", T0, T0 + 2 * Q)
    assert totals == [
        SiteTotal(T0, 0.375, 0, 1500.0, 1750.5),
        SiteTotal(T0 + Q, 0.5, 1, 2000.0, None),
    ]
    for value, kind in zip(totals[0], (int, float, int, float, float), strict=True):
        _exact(value, kind)
    assert reader.site_totals("beta", T0, T0 + 5 * Q) == [
        SiteTotal(T0, 1.25, 1, 5000.0, 5000.0),
        SiteTotal(T0 + 4 * Q, None, 0, None, None),  # no meter had a value: None, not 0
    ]


def test_site_totals_and_energy_by_site_count_every_meter_without_sub_meters(
    filled: Target,
) -> None:
    with Reader(filled) as reader:
        assert reader.site_totals("alpha", T0, T0 + Q) == [SiteTotal(T0, 0.5, 0, 2000.0, 2350.5)]
        assert reader.energy_by_site(T0, T0 + Q) == {"alpha": 0.5, "beta": 1.25}
        assert reader.in_site_total("alpha", "sub")


def test_energy_by_site_over_a_span(reader: Reader) -> None:
    by_site = reader.energy_by_site(T0, T0 + 5 * Q)
    assert by_site == {"alpha": 0.875, "beta": 1.25}
    _exact(by_site["alpha"], float)
    assert reader.energy_by_site(T0 + 4 * Q, T0 + 5 * Q) == {"beta": 0.0}  # a NULL energy
    assert reader.energy_by_site(T0 + DAY, T0 + 2 * DAY) == {}
    assert not reader.in_site_total("alpha", "sub")


def test_interval_energy_of_all_meters_or_one(reader: Reader) -> None:
    every = reader.interval_energy(T0, T0 + 2 * Q)
    assert sorted(every) == [
        MeterEnergy(MAIN, T0, 0.375, 1750.5),
        MeterEnergy(MAIN, T0 + Q, 0.5, None),
        MeterEnergy(SUB, T0, 0.125, 600.0),
        MeterEnergy(OTHER, T0, 1.25, 5000.0),
    ]
    assert reader.interval_energy(T0, T0 + 2 * Q, MAIN) == [
        MeterEnergy(MAIN, T0, 0.375, 1750.5),
        MeterEnergy(MAIN, T0 + Q, 0.5, None),
    ]
    for value, kind in zip(every[0], (int, int, float, float), strict=True):
        _exact(value, kind)


def test_rollups_unpack_their_statistics(reader: Reader) -> None:
    assert reader.rollups(MAIN, T0, T0 + 2 * DAY) == [
        (T0, ROLLUP_VALUES),
        (T0 + DAY, ROLLUP_VALUES),
    ]
    assert reader.rollups(MAIN, T0 + 1, T0 + DAY) == []
    assert reader.rollups(SUB, T0, T0 + 2 * DAY) == []


# ---- registry, status and quarantine


def test_gateways_with_their_status_and_health_parsed(reader: Reader) -> None:
    alpha = GatewayRow(
        "alpha", "gw1", 1000, 7, T0 + 5000, "online", T0,
        {"version": "1.2"}, {"cpu": 0.5}, T0 + 4500,
    )  # fmt: skip
    beta = GatewayRow("beta", "gw2", 2000, None, None, None, None, None, None, None)
    gamma = GatewayRow("gamma", "gw3", 3000, None, None, None, None, None, None, None)
    assert reader.gateways() == [alpha, beta, gamma]
    assert reader.gateways("beta") == [beta]
    assert reader.gateways_of("alpha") == [alpha]


def test_meters_sites_and_the_meter_index(reader: Reader) -> None:
    assert reader.meters("alpha") == [
        MeterRow("gw1", "main", ["energy_import_kwh", "power_w", "voltage_l1_v"]),
        MeterRow("gw1", "sub", ["power_w"]),
    ]
    assert reader.meters("beta") == [
        MeterRow("gw2", "m1", ["energy_import_kwh"], "eloverblik", 3_600_000)
    ]
    assert reader.sites() == ["alpha", "beta", "gamma"]
    assert reader.meter_index() == [
        MeterRef(MAIN, "alpha", "gw1", "main"),
        MeterRef(SUB, "alpha", "gw1", "sub"),
        MeterRef(OTHER, "beta", "gw2", "m1"),
    ]
    _exact(reader.meter_index()[0].meter_id, int)
    assert reader.resolutions() == {OTHER: 3_600_000}


def test_gaps_by_site_and_gateway(reader: Reader) -> None:
    assert reader.gaps() == [
        GapRow("alpha", "gw1", 3, 4, T0 - 1000, T0 + 1000),
        GapRow("beta", "gw2", 10, 12, None, None),
    ]
    assert reader.gaps("beta") == [GapRow("beta", "gw2", 10, 12, None, None)]


def test_counters_stats_and_reading_count(reader: Reader) -> None:
    counters = reader.counters()
    assert counters == {
        "stored": 5_000_000_000,
        "pruned": 4_999_999_995,
        "quarantined.bad_json": 1,
        "quarantined.too_big": 1,
        "messages": 3,
    }
    _exact(counters["stored"], int)
    assert reader.reading_count() == 5
    assert reader.stats() == {
        "ingest_readings_per_s": Stat(12.5, T0),
        "sink_last_error": Stat("refused", T0),
    }
    assert reader.alert_state() == {"round": 4}


def test_quarantine_newest_first_with_payload_bytes_only_when_asked(reader: Reader) -> None:
    assert reader.quarantine(10) == [
        QuarantineRow(2, T0 + 1, "sparwatt/beta/gw2/readings", "too_big", "over 1 MiB",
                      2_000_000),
        QuarantineRow(1, T0, "sparwatt/alpha/gw1/readings", "bad_json", "line 1", 3),
    ]  # fmt: skip
    newest = reader.quarantine(1, with_payload=True)
    assert [(row.id, row.payload) for row in newest] == [(2, b"\xff")]
    _exact(newest[0].payload, bytes)
    assert reader.quarantine(2, with_payload=True)[1].payload == b"{x\x00"
    assert reader.quarantine_by_reason() == {"bad_json": 1, "too_big": 1}


# ---- web: tokens, opportunities, alerts; evaluation: silences


def test_tokens_and_a_token_by_its_hash(reader: Reader) -> None:
    assert reader.tokens() == [
        TokenRow(1, "ops", "admin", [], T0, None, None),
        TokenRow(2, "acme", "viewer", ["alpha"], T0 + 1, T0 + 2, T0 + DAY),
    ]
    assert reader.token_by_hash("h2") == TokenHashRow(
        2, "acme", "viewer", ["alpha"], "h2", T0 + 2, T0 + DAY
    )
    assert reader.token_by_hash("nope") is None


def test_opportunities_filtered_by_site_and_status(reader: Reader) -> None:
    o1 = OpportunityRow("o1", "alpha", "main", "base_load", "open", {"kwh": 1.5}, T0)
    o2 = OpportunityRow("o2", "alpha", "sub", "peak", "closed", {}, T0 + 1)
    o3 = OpportunityRow("o3", "beta", "m1", "base_load", "open", {"kwh": 2}, T0 + 2)
    assert reader.opportunities() == [o1, o2, o3]
    assert reader.opportunities("alpha") == [o1, o2]
    assert reader.opportunities(status="open") == [o1, o3]
    assert reader.opportunities("alpha", "closed") == [o2]


def test_alerts_open_or_resolved_since_newest_first(reader: Reader) -> None:
    a1 = AlertRow("a1", "alpha", {"meter": "main"}, "firing", "warning", "high", T0, None, {})
    a2 = AlertRow("a2", "alpha", {}, "resolved", "info", "old", T0 - DAY, T0 - 10, {"n": 1})
    a3 = AlertRow("a3", "beta", {}, "resolved", "critical", "new", T0 + 5, T0 + 10, {})
    assert reader.alerts() == [a3, a1, a2]
    assert reader.alerts(since_ms=T0) == [a3, a1]
    assert reader.alerts("alpha", since_ms=T0 - 10) == [a1, a2]


def test_silences_ending_after_a_time_soonest_start_first(reader: Reader) -> None:
    s1 = SilenceRow("s1", "alpha", None, T0, T0 + DAY, "works", T0 - 1)
    s2 = SilenceRow("s2", "beta", "m1", T0 - DAY, T0 - 1, "over", T0 - DAY)
    s3 = SilenceRow("s3", "alpha", "main", T0 - 5, T0 + 5, "short", T0 - 6)
    assert reader.silences() == [s2, s3, s1]
    assert reader.silences(after_ms=T0) == [s3, s1]
    assert reader.silences("alpha", after_ms=T0 + 5) == [s1]


# ---- verified savings


def test_measures_with_dates_and_exclusions(reader: Reader) -> None:
    led = MeasureRow(
        id="m-led",
        site="alpha",
        meters=["main"],
        kind="lighting",
        title="LED",
        installed_from=date(2024, 3, 1),
        installed_to=date(2024, 3, 15),
        investment_dkk=12000.5,
        expected_kwh_year=4000.0,
        opportunity_id="o1",
        model="auto",
        exclusions=[MeasureExclusion(date(2024, 5, 1), date(2024, 5, 3), "x")],
        note="first",
        created_ms=T0,
        updated_ms=T0 + 1,
    )
    assert reader.measures("alpha") == [led]
    assert [m.id for m in reader.measures()] == ["m-led", "m-hp"]
    heat_pump = reader.measure("m-hp")
    assert heat_pump is not None
    assert (heat_pump.installed_to, heat_pump.investment_dkk, heat_pump.meters) == (None, None, [])
    assert reader.measure("none") is None


def test_temperatures_of_a_site_by_hour(reader: Reader) -> None:
    rows = reader.temperatures("alpha", T0, T0 + 2 * 3_600_000)
    assert rows == [TemperatureRow(T0, 4.5), TemperatureRow(T0 + 3_600_000, 3.5)]
    _exact(rows[0].celsius, float)
    assert reader.temperatures("beta", T0, T0 + 1) == [TemperatureRow(T0, -1.0)]


# ---- storage


def test_storage_figures_on_either_engine(reader: Reader, filled: Target) -> None:
    now = T0 + 2 * DAY
    figures = reader.storage(filled, now)
    for name in ("db_bytes", "raw_bytes", "rollup_bytes", "raw_values"):
        _exact(getattr(figures, name), int)
    assert figures.raw_bytes > 0
    assert figures.rollup_bytes > 0
    assert figures.db_bytes >= figures.raw_bytes + figures.rollup_bytes
    assert figures.raw_values == 5
    # main holds two days of readings, sub 30 s less; the history spans a day and a quarter
    assert figures.raw_days == pytest.approx((2 * DAY + 2 * DAY - 30_000) / 2 / DAY)
    assert figures.rollup_meter_days == pytest.approx(1 + 1 / 96)


def test_storage_of_an_empty_history(db_target: Target) -> None:
    db = connect(db_target)
    apply_migrations(db, db_target)
    db.close()
    with Reader(db_target) as reader:
        figures = reader.storage(db_target, T0)
    assert (figures.raw_values, figures.raw_days, figures.rollup_meter_days) == (0, 0.0, 0.0)
    assert figures.db_bytes > 0


# ---- the reader's own connection


def test_the_reader_cannot_write(reader: Reader) -> None:
    with pytest.raises((sqlite3.OperationalError, psycopg.errors.ReadOnlySqlTransaction)):
        reader.db.execute("DELETE FROM counter")
    assert reader.reading_count() == 5


def test_a_layout_added_after_the_reader_opened_is_read_on_first_use(
    reader: Reader, filled: Target
) -> None:
    db = connect(filled)
    try:
        layout_id, blob = _layout_id(db, {"frequency_hz": 50.0})
        db.execute(
            "INSERT INTO sample (meter_id, ts, layout, data) VALUES (?, ?, ?, ?)",
            (SUB, T0 + DAY, layout_id, blob),
        )
    finally:
        db.close()
    assert reader.samples_of("frequency_hz", T0, T0 + DAY) == [(SUB, T0 + DAY, 50.0)]


def test_no_value_comes_back_as_decimal_or_memoryview(reader: Reader, filled: Target) -> None:
    """Every row of every query holds plain Python values on both engines."""
    results: list[object] = [
        reader.latest(), list(reader.raw("alpha", 0, T0 + DAY)),
        list(reader.energy_intervals("alpha", 0, T0 + DAY)),
        reader.site_totals("alpha", 0, T0 + DAY),
        reader.energy_by_site(0, T0 + DAY), reader.interval_energy(0, T0 + DAY),
        reader.rollups(MAIN, 0, T0 + 2 * DAY), reader.samples_of("power_w", 0, T0 + DAY),
        reader.last_reading_ms(T0 + DAY), reader.gaps(), reader.gateways(), reader.counters(),
        reader.quarantine(5, with_payload=True), reader.tokens(), reader.opportunities(),
        reader.alerts(), reader.silences(), reader.measures(), reader.stats(),
        reader.temperatures("alpha", 0, T0 + DAY), reader.storage(filled, T0 + DAY),
        reader.meter_index(), reader.resolutions(), reader.reading_count(),
    ]  # fmt: skip
    text = repr(results)
    assert "Decimal" not in text
    assert "memoryview" not in text
    assert not any(isinstance(r, decimal.Decimal) for r in results)
    assert json.loads(json.dumps(reader.counters())) == reader.counters()


# ---- through the writer


def test_what_the_store_writes_reads_back_the_same_on_either_engine(db_target: Target) -> None:
    store = Store(db_target)
    try:
        store.write(
            [
                message(1, [("m1", T0, {"power_w": 1.5, "energy_import_kwh": 10.0})], "s", "g"),
                message(2, [("m1", T0 + 60_000, {"power_w": 2.5})], "s", "g"),
            ],
            [Quarantined("sparwatt/s/g/readings", "bad_json", "line 1", b"{", 1)],
        )
    finally:
        store.close()
    with Reader(db_target) as reader:
        assert reader.latest_of("power_w") == [
            LatestRow("s", "g", "m1", "power_w", T0 + 60_000, 2.5)
        ]
        assert list(reader.raw("s", T0, T0 + Q)) == [
            ReadingRow("g", "m1", "energy_import_kwh", T0, 10.0),
            ReadingRow("g", "m1", "power_w", T0, 1.5),
            ReadingRow("g", "m1", "power_w", T0 + 60_000, 2.5),
        ]
        assert reader.reading_count() == 3
        assert reader.quarantine_by_reason() == {"bad_json": 1}
        assert [(g.site, g.gateway, g.last_seq) for g in reader.gateways()] == [("s", "g", 2)]
