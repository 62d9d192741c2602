"""Expected usage: slot medians and MADs, modified z-scores, floors, holidays, trailing runs."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from collector.alerts.calendar import SiteCalendar, site_calendar
from collector.alerts.config import ExpectedConfig, UnusualUsageRule
from collector.alerts.expected import Z_SCALE, build_baseline, local_slots, modified_z, score_usage
from collector.alerts.model import IntervalGrid, MeterKey
from collector.analysis.site_context import SiteContext
from tests.support.alert_data import (
    DAY_KW,
    NIGHT_KW,
    STEP,
    TZ,
    WEEKEND_KW,
    utc,
    weekly_grid,
    window,
)

METERS = [MeterKey("s1", "m1"), MeterKey("s1", "m2")]
HISTORY_START = utc(2025, 3, 2, 23)  # Monday 2025-03-03 00:00 local
HISTORY_END = HISTORY_START + timedelta(weeks=6)  # Monday 2025-04-14 00:00 local (CEST)
PER_INTERVAL = STEP / 3600
MON_10 = 10  # hour-of-week slot of Monday 10:00
SAT_10 = 5 * 24 + 10


def _cal(closed=frozenset(), **kw) -> dict[str, SiteCalendar]:
    """The calendar of site s1 (the one every test meter belongs to)."""
    return {"s1": SiteCalendar(TZ, frozenset(closed), **kw)}


def _scores(recent, baseline, now, closed=frozenset(), **cfg):
    rule = UnusualUsageRule(**cfg)
    return score_usage(recent, baseline, calendars=_cal(closed), rule=rule, now=now)


@pytest.fixture(scope="module")
def history() -> IntervalGrid:
    return weekly_grid(METERS, HISTORY_START, HISTORY_END + timedelta(days=7))


@pytest.fixture(scope="module")
def baseline(history):
    return build_baseline(
        window(history, HISTORY_START, HISTORY_END), _cal(), ExpectedConfig(weeks=6)
    )


def test_baseline_median_follows_the_weekly_pattern(baseline):
    assert baseline.median.shape == (2, 168)
    assert baseline.median[0, MON_10] == pytest.approx(DAY_KW * PER_INTERVAL, abs=0.03)
    assert baseline.median[0, 3] == pytest.approx(NIGHT_KW * PER_INTERVAL, abs=0.03)
    assert baseline.median[1, SAT_10] == pytest.approx(WEEKEND_KW * PER_INTERVAL, abs=0.03)
    # 6 weeks x 4 quarter-hours of Monday 10:00
    assert baseline.samples[0, MON_10] == 24


def test_baseline_mad_matches_the_noise_level(baseline):
    # For Gaussian noise the MAD is 0.6745 sigma.
    assert baseline.mad[0, MON_10] == pytest.approx(Z_SCALE * 0.05, rel=0.35)


def test_modified_z_score_of_a_known_sample():
    # Slot values 1,2,3,4,100: median 3, absolute deviations 2,1,0,1,97 -> MAD 1.
    start = utc(2025, 1, 5, 23)  # Monday 00:00 local
    energy = np.full((1, 5 * 7 * 96), np.nan)
    for week, value in enumerate([1.0, 2.0, 3.0, 4.0, 100.0]):
        energy[0, week * 7 * 96] = value  # Monday 00:00 of each week
    grid = IntervalGrid((METERS[0],), start, energy, STEP)
    base = build_baseline(grid, _cal(), ExpectedConfig(weeks=5, slot_minutes=15))
    assert base.median[0, 0] == 3.0
    assert base.mad[0, 0] == 1.0
    z, mad_eff = modified_z(
        np.array([10.0]), base.median[0, :1], base.mad[0, :1], UnusualUsageRule()
    )
    assert z[0] == pytest.approx(0.6745 * 7 / 1)
    assert mad_eff[0] == 1.0


def test_mad_floor_keeps_a_flat_series_from_exploding():
    rule = UnusualUsageRule(mad_floor_kwh=0.025, mad_floor_pct=5)
    z, mad_eff = modified_z(np.array([0.52]), np.array([0.5]), np.array([0.0]), rule)
    assert mad_eff[0] == pytest.approx(0.025)
    assert z[0] == pytest.approx(0.6745 * 0.02 / 0.025)
    # The relative floor wins for large medians.
    z, mad_eff = modified_z(np.array([10.5]), np.array([10.0]), np.array([0.0]), rule)
    assert mad_eff[0] == pytest.approx(0.5)


def test_slots_are_local_time_across_the_dst_change():
    winter = int(utc(2025, 3, 24, 7).timestamp())  # Monday 08:00 CET
    summer = int(utc(2025, 3, 31, 6).timestamp())  # Monday 08:00 CEST
    slots, _ = local_slots(np.array([winter, summer]), SiteCalendar(TZ, frozenset()), 60)
    assert slots.tolist() == [8, 8]


def test_normal_week_is_not_unusual(history, baseline):
    now = HISTORY_END + timedelta(days=2)
    recent = window(history, now - timedelta(days=1), now)
    scores = _scores(recent, baseline, now)
    assert not scores.unusual.any()
    assert scores.run.tolist() == [0, 0]


def test_injected_night_load_is_unusual_and_runs_are_counted(history, baseline):
    now = HISTORY_END + timedelta(days=1, hours=1)  # Tuesday 03:00 local
    recent = window(history, now - timedelta(hours=6), now)
    recent.energy_kwh[0, -3:] += 8.0 * PER_INTERVAL  # +8 kW for the last 45 minutes
    scores = _scores(recent, baseline, now)
    assert scores.unusual[0, -3:].all()
    assert not scores.unusual[0, :-3].any()
    assert scores.run.tolist() == [3, 0]
    assert scores.z[0, -1] > 20


def test_small_absolute_deviation_is_ignored_even_with_a_huge_z(history, baseline):
    now = HISTORY_END + timedelta(days=1, hours=1)
    recent = window(history, now - timedelta(hours=2), now)
    recent.energy_kwh[0, -2:] += 0.2  # +0.8 kW: z is large, but below the 1 kW floor
    scores = _scores(recent, baseline, now)
    assert scores.z[0, -1] > 3.5
    assert not scores.unusual[0].any()


def test_percentage_floor_ignores_a_small_relative_change(history, baseline):
    now = HISTORY_END + timedelta(days=1, hours=8)  # Tuesday 10:00 local, 10 kW usual
    recent = window(history, now - timedelta(hours=2), now)
    recent.energy_kwh[0, -2:] += 0.5  # +2 kW = +20 %: above the kW floor, below 30 %
    scores = _scores(recent, baseline, now, mad_floor_kwh=0.01, mad_floor_pct=0)
    assert scores.z[0, -1] > 3.5
    assert not scores.unusual[0].any()
    looser = _scores(
        recent, baseline, now, mad_floor_kwh=0.01, mad_floor_pct=0, min_deviation_pct=10
    )
    assert looser.unusual[0, -2:].all()


def test_an_interval_still_filling_is_not_scored(history, baseline):
    now = HISTORY_END + timedelta(days=1, hours=1, minutes=5)
    recent = window(history, now - timedelta(hours=2, minutes=5), now + timedelta(minutes=10))
    scores = _scores(recent, baseline, now)
    assert scores.starts_s[-1] + STEP <= now.timestamp()


def test_missing_tail_holds_the_run(history, baseline):
    now = HISTORY_END + timedelta(days=1, hours=1)
    recent = window(history, now - timedelta(hours=6), now)
    recent.energy_kwh[0, -5:-2] += 2.0
    recent.energy_kwh[0, -2:] = np.nan
    scores = _scores(recent, baseline, now)
    assert scores.run[0] == 3
    assert scores.missing_tail[0] == 2


def test_closed_days_are_the_sites_holidays_extra_days_and_closures():
    ctx = SiteContext(
        holidays={"extra": [date(2025, 12, 24)]},
        closures=[{"start": date(2025, 7, 14), "end": date(2025, 7, 16)}],
    )
    days = site_calendar(ctx, date(2025, 1, 1), date(2025, 12, 31)).closed
    assert {date(2025, 12, 25), date(2025, 4, 21), date(2025, 6, 9)} <= days  # DK public
    assert date(2025, 12, 31) not in days  # an optional holiday, not asked for
    assert {date(2025, 12, 24), date(2025, 7, 14), date(2025, 7, 15), date(2025, 7, 16)} <= days


def test_holidays_kept_as_sunday_fall_in_sundays_slots():
    ctx = SiteContext(holidays={"treat_as": "sunday"}, opening_hours={"sun": ["10:00-16:00"]})
    cal = site_calendar(ctx, date(2025, 1, 1), date(2025, 12, 31))
    assert date(2025, 4, 21) in cal.as_sunday
    assert date(2025, 4, 21) not in cal.closed
    easter_monday_11 = int(utc(2025, 4, 21, 9).timestamp())
    slots, closed = local_slots(np.array([easter_monday_11]), cal, 60)
    assert slots.tolist() == [6 * 24 + 11]
    assert not closed.any()


def test_holidays_are_excluded_from_the_baseline():
    # Four Mondays; two are holidays with the plant closed (night load all day).
    start = utc(2025, 4, 13, 22)  # Monday 2025-04-14 00:00 CEST
    meters = [METERS[0]]
    grid = weekly_grid(meters, start, start + timedelta(weeks=4))
    holidays_ = {date(2025, 4, 21), date(2025, 4, 28)}
    starts = grid.column_starts()
    for day in holidays_:
        first = int((utc(day.year, day.month, day.day) - timedelta(hours=2)).timestamp())
        cols = (starts >= first) & (starts < first + 86400)
        grid.energy_kwh[0, cols] = NIGHT_KW * PER_INTERVAL
    cfg = ExpectedConfig(weeks=4, min_weeks=2)
    kept = build_baseline(grid, _cal(holidays_), cfg)
    mixed = build_baseline(grid, _cal(), cfg)
    assert kept.samples[0, MON_10] == 8
    assert kept.median[0, MON_10] == pytest.approx(DAY_KW * PER_INTERVAL, abs=0.05)
    assert mixed.samples[0, MON_10] == 16
    assert mixed.median[0, MON_10] < DAY_KW * PER_INTERVAL * 0.7


def test_holiday_is_scored_like_a_sunday(baseline):
    # Easter Monday: a machine left running at weekday level is unusual for a closed day.
    now = utc(2025, 4, 21, 9)  # 11:00 local
    start = now - timedelta(hours=2)
    recent = IntervalGrid(tuple(METERS), start, np.full((2, 8), DAY_KW * PER_INTERVAL), STEP)
    closed = frozenset({date(2025, 4, 21)})
    assert _scores(recent, baseline, now, closed=closed).unusual[:, -2:].all()
    assert not _scores(recent, baseline, now).unusual.any()  # as a plain Monday: normal


def test_closed_day_is_scored_against_the_sites_quietest_weekday(baseline):
    # A site closed on Saturdays but open on Sundays: a closed day should look like Saturday.
    now = utc(2025, 4, 21, 9)  # Easter Monday 11:00 local
    recent = IntervalGrid(
        tuple(METERS), now - timedelta(hours=2), np.full((2, 8), 1.0 * PER_INTERVAL), STEP
    )
    cal = {"s1": SiteCalendar(TZ, frozenset({date(2025, 4, 21)}), quiet_weekday=5)}
    scores = score_usage(recent, baseline, calendars=cal, rule=UnusualUsageRule(), now=now)
    assert scores.median[0, -1] == baseline.median[0, SAT_10]  # 10:45 on a Saturday


def test_empty_recent_grid_scores_nothing(baseline):
    now = HISTORY_END + timedelta(days=1)
    recent = IntervalGrid(tuple(METERS), now, np.empty((2, 0)), STEP)
    scores = _scores(recent, baseline, now)
    assert scores.run.tolist() == [0, 0]
    assert scores.last_index.tolist() == [-1, -1]


def test_thin_history_is_not_scored():
    start = utc(2025, 3, 2, 23)
    grid = weekly_grid([METERS[0]], start, start + timedelta(weeks=6))
    grid.energy_kwh[0, : 4 * 7 * 96] = np.nan  # only the last two weeks have data
    base = build_baseline(grid, _cal(), ExpectedConfig(weeks=6, min_weeks=3))
    assert np.isnan(base.median).all()
