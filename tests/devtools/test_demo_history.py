"""The demo's history: 13 months of every meter, each problem where the story puts it, and
the savings scan and the alert rules finding each one with their default thresholds."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest

from collector.alerts import (
    AlertEvaluator,
    AlertState,
    IntervalGrid,
    MeterKey,
    Observations,
    load_alerts_config,
)
from collector.analysis import MeterSeries, Sites, load_sites, scan_report
from collector.intervals.rollup import CounterStats, GaugeStats, unpack
from devtools import demo, demo_history
from devtools.demo_history import History
from sparwatt.timeutil import DAY_MS, QUARTER_MS

# a Wednesday, 11:07 in Copenhagen: the office is open, the cold store's surge is on
NOW = int(datetime(2026, 11, 25, 10, 7, 30, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Sites:
    path = tmp_path_factory.mktemp("demo") / "sites.toml"
    path.write_text(demo.sites_toml(NOW))
    return load_sites(path)


@pytest.fixture(scope="module")
def histories(sites: Sites) -> dict[tuple[str, str], History]:
    meters = demo_history.plan_meters(demo.models_available())
    built = demo_history.build(meters, sites, demo_history.PROBLEMS, NOW)
    return {(h.meter.site, h.meter.meter): h for h in built}


def _local(h: History) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local date (days since 1970), weekday and hour of each quarter."""
    day, quarter = demo_history._local(h.start_ms, demo_history.TZ)
    return day, (day + 3) % 7, quarter // 4


def _days(*dates: date) -> np.ndarray:
    return np.array([(d - demo_history.EPOCH).days for d in dates])


def test_every_meter_has_13_months_of_quarters_up_to_now(
    histories: dict[tuple[str, str], History],
) -> None:
    assert len(histories) == sum(len(s.meters) for s in demo_history.SITES) == 7
    for h in histories.values():
        assert np.all(np.diff(h.start_ms) == QUARTER_MS)
        assert h.start_ms[-1] <= NOW < h.start_ms[-1] + QUARTER_MS  # the quarter under way
        first = datetime.fromtimestamp(h.start_ms[0] / 1000, demo_history.TZ)
        assert (first.date(), first.hour, first.minute) == (date(2025, 10, 25), 0, 0)
        assert (NOW - h.start_ms[0]) / DAY_MS >= 395  # 13 months
        assert np.all(h.kw > 0)
        assert h.kwh[-1] == pytest.approx(h.kw[-1] * 7.5 / 60)  # 7.5 minutes of it so far


def test_history_ends_at_the_level_the_live_meter_draws(
    histories: dict[tuple[str, str], History],
) -> None:
    # no season or day-to-day spread left at the end: live and history meet
    h = histories[("bakery-nord", "meter-2")]
    profile_now = h.meter.profile.power_w(h.start_ms[-1] / 1000 + 225) / 1000
    assert h.kw[-1] == pytest.approx(profile_now + 2.5, rel=1e-4)  # with the compressor's leak


def test_the_office_ventilation_runs_through_the_nights_of_the_last_24_days(
    histories: dict[tuple[str, str], History],
) -> None:
    office = histories[("office-park", "meter-1")]
    _day, weekday, hour = _local(office)
    since = office.start_ms >= NOW - 24 * DAY_MS
    night = (hour < 5) & (weekday < 5)
    before = office.kw[night & ~since & (office.start_ms >= NOW - 60 * DAY_MS)].mean()
    assert office.kw[night & since].mean() - before == pytest.approx(6.0, abs=0.6)
    midday = (hour >= 9) & (hour < 11) & (weekday < 5)
    recent = office.start_ms >= NOW - 60 * DAY_MS
    after, earlier = office.kw[midday & since].mean(), office.kw[midday & recent & ~since].mean()
    assert after == pytest.approx(earlier, rel=0.05)  # open hours as they were
    other = histories[("office-park", "meter-2")]
    assert other.kw[night & since].mean() == pytest.approx(other.kw[night & ~since].mean(), rel=0.1)


def test_the_office_left_everything_on_in_its_week_off_but_not_at_christmas(
    histories: dict[tuple[str, str], History],
) -> None:
    closures = demo_history.office_closures(date(2025, 1, 1), date(2026, 11, 25))
    start, end, _ = next(c for c in closures if c[2] == demo_history.HOLIDAY)
    assert (start.weekday(), (end - start).days) == (0, 4)
    assert (date(2026, 11, 25) - start).days in range(42, 49)
    office = histories[("office-park", "meter-1")]
    day, weekday, hour = _local(office)
    midday = (hour >= 9) & (hour < 11)
    week_off = (day >= _days(start)[0]) & (day <= _days(end)[0])
    christmas = np.isin(day, _days(date(2025, 12, 29), date(2025, 12, 30)))  # Mon, Tue
    working = (weekday < 5) & ~week_off & (office.start_ms >= NOW - 60 * DAY_MS)
    sunday = weekday == 6
    assert office.kw[midday & week_off].mean() == pytest.approx(
        office.kw[midday & working].mean(), rel=0.08
    )
    assert office.kw[midday & christmas].mean() == pytest.approx(
        office.kw[midday & sunday & (office.start_ms < NOW - 300 * DAY_MS)].mean(), rel=0.1
    )
    other = histories[("office-park", "meter-2")]  # the other feed was switched off
    assert other.kw[midday & week_off].mean() < 0.3 * other.kw[midday & working].mean()


def test_public_holidays_draw_the_sunday_load(
    histories: dict[tuple[str, str], History],
) -> None:
    bakery = histories[("bakery-nord", "meter-1")]
    day, weekday, hour = _local(bakery)
    midday = (hour >= 10) & (hour < 14)
    christmas_day = day == _days(date(2025, 12, 25))[0]  # a Thursday
    thursdays = (weekday == 3) & ~christmas_day & (day < _days(date(2026, 2, 1))[0])
    assert bakery.kw[midday & christmas_day].mean() < 0.5 * bakery.kw[midday & thursdays].mean()


def test_the_bakery_compressor_leaks_for_the_last_150_days(
    histories: dict[tuple[str, str], History],
) -> None:
    compressor = histories[("bakery-nord", "meter-2")]
    assert compressor.meter.dedicated
    assert compressor.meter.kind == "compressor"
    _day, weekday, hour = _local(compressor)
    night = (hour < 4) & (weekday < 5)
    leaking = compressor.start_ms >= NOW - 150 * DAY_MS
    assert compressor.kw[night & ~leaking].mean() == pytest.approx(0.75, rel=0.1)
    assert compressor.kw[night & leaking].mean() == pytest.approx(3.25, rel=0.1)
    main = histories[("bakery-nord", "meter-1")]  # behind which the compressor sits
    assert main.kw[night & leaking].mean() - main.kw[night & ~leaking].mean() == pytest.approx(
        2.5, abs=0.6
    )


def test_the_cold_store_runs_at_a_power_factor_of_078(
    histories: dict[tuple[str, str], History],
) -> None:
    for meter, pf in (("meter-1", 0.78), ("meter-2", 0.93), ("meter-3", 0.93)):
        h = histories[("cold-store-syd", meter)]
        assert np.average(h.pf, weights=h.kwh) == pytest.approx(pf, abs=0.01)
        assert h.pf.max() <= 1.0


def test_the_cold_store_freezer_surges_in_the_last_hour_and_a_half(
    histories: dict[tuple[str, str], History],
) -> None:
    h = histories[("cold-store-syd", "meter-2")]
    week = 7 * 96
    last = slice(len(h.kw) - 7, len(h.kw))  # 90 minutes and the quarter under way
    above = h.kw[last] - h.kw[last.start - week : last.stop - week]
    assert above.min() > 12  # 20 kW, give or take the spread of days and quarters
    before = h.kw[-12:-7] - h.kw[-12 - week : -7 - week]
    assert abs(before).max() < 8


def test_rollups_decode_to_the_history_with_what_each_model_reports(
    histories: dict[tuple[str, str], History],
) -> None:
    cases = [
        (("cold-store-syd", "meter-1"), True),
        (("office-park", "meter-2"), True),
        (("cold-store-syd", "meter-3"), False),  # the Janitza reads no power factor
    ]
    for key, model_has_pf in cases:
        h = histories[key]
        rows = demo_history.rollup_rows(h, poll_s=2.0)
        assert len(rows) == len(h.start_ms)
        start, names, blob = rows[-100]
        stats = unpack(names, blob)
        assert start == h.start_ms[-100]
        assert ("power_factor" in stats) is model_has_pf
        assert set(stats) <= set(h.meter.quantities)
        energy = stats["energy_import_kwh"]
        assert isinstance(energy, CounterStats)
        assert energy.energy == pytest.approx(h.kwh[-100])
        power = stats["power_w"]
        assert isinstance(power, GaugeStats)
        assert power.mean == pytest.approx(h.kw[-100] * 1000, rel=1e-6)
        assert power.count == 450
        phases = [q for q in stats if q.startswith("current_l")]
        assert len(phases) == (1 if key == ("office-park", "meter-2") else 3)


def _series(h: History, imported: bool) -> MeterSeries:
    """What the collector's scan reads for the meter: its complete quarters of the window,
    with power factor, reactive energy, currents and voltages where the model has them."""
    end = NOW // QUARTER_MS * QUARTER_MS
    keep = (h.start_ms >= end - demo.SCAN_DAYS * DAY_MS) & (h.start_ms < end)
    sl = slice(int(np.argmax(keep)), int(np.argmax(keep)) + int(keep.sum()))
    role = "dedicated" if h.meter.dedicated else "main"
    kwh = h.kwh[sl]
    if imported:  # an Eloverblik export brings energy only
        return MeterSeries(h.meter.site, h.meter.meter, role, h.start_ms[sl], kwh)
    columns = demo_history._columns(h, 2.0)
    extra: dict[str, np.ndarray] = {"max_power_w": h.kw[sl] * 1000 * demo_history.PEAK}
    if "power_factor" in columns:
        extra["power_factor"] = columns["power_factor"][0][sl]
    if "reactive_energy_import_kvarh" in columns:
        extra["reactive_kvarh"] = columns["reactive_energy_import_kvarh"][0][sl]
    if "current_l3_a" in columns:
        extra["currents_a"] = np.stack([columns[f"current_l{k}_a"][0][sl] for k in (1, 2, 3)], 1)
        extra["voltages_v"] = np.stack([columns[f"voltage_l{k}_v"][0][sl] for k in (1, 2, 3)], 1)
    return MeterSeries(h.meter.site, h.meter.meter, role, h.start_ms[sl], kwh, **extra)


def test_the_scan_finds_each_problem_with_its_default_thresholds_and_nothing_else(
    histories: dict[tuple[str, str], History], sites: Sites
) -> None:
    series = [_series(h, key == demo_history.IMPORTED) for key, h in histories.items()]
    report = scan_report(series, sites, NOW)
    assert report.errors == 0
    found = {(o.site, o.meter, o.kind): o for o in report.opportunities}
    assert set(found) == {
        ("office-park", "meter-1", "baseload"),
        ("office-park", "meter-1", "standby"),
        ("bakery-nord", "meter-2", "night_load"),
        ("cold-store-syd", "meter-1", "power_factor"),
    }
    for o in found.values():
        assert o.annual_dkk > 0
        assert 0 < o.payback_years < 5
        assert o.rentabel
    base = found[("office-park", "meter-1", "baseload")]
    assert base.evidence["excess_kw"] == pytest.approx(6.0, rel=0.15)
    assert found[("bakery-nord", "meter-2", "night_load")].evidence[
        "off_hours_median_kw"
    ] == pytest.approx(3.25, rel=0.1)
    assert found[("cold-store-syd", "meter-1", "power_factor")].evidence[
        "power_factor"
    ] == pytest.approx(0.78, abs=0.01)


def test_the_demo_alerts_find_the_surge_and_nothing_else(
    histories: dict[tuple[str, str], History], sites: Sites, tmp_path: Path
) -> None:
    (tmp_path / "alerts.toml").write_text(demo.ALERTS_TOML)
    evaluator = AlertEvaluator(load_alerts_config(tmp_path / "alerts.toml"), sites)
    keys = tuple(MeterKey(*key) for key in histories)
    # the complete quarters before NOW, as an alert round reads them
    energy = np.stack([h.kwh[:-1] for h in histories.values()])
    start = datetime.fromtimestamp(int(next(iter(histories.values())).start_ms[0]) / 1000, UTC)
    grid = IntervalGrid(keys, start, energy)
    now = datetime.fromtimestamp(NOW / 1000, UTC)
    result = evaluator.evaluate(
        AlertState(), Observations(now, recent=grid), evaluator.build_baseline(grid)
    )
    assert [dict(a.labels) for a in result.state.firing()] == [
        {"alertname": "unusual_usage", "site": "cold-store-syd", "meter": "meter-2"}
    ]


def test_the_week_off_keeps_clear_of_christmas() -> None:
    closures = demo_history.office_closures(date(2025, 1, 1), date(2027, 2, 3))
    week = next(c for c in closures if c[2] == demo_history.HOLIDAY)
    assert all(week[1] < s or week[0] > e for s, e, note in closures if note == "Christmas")
