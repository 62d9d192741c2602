"""The alert rules take each site's calendar and fuse from the sites file, the same entry the
savings scan and the web pages read."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from collector.alerts.config import AlertsConfig
from collector.alerts.evaluator import AlertEvaluator, Observations
from collector.alerts.lifecycle import AlertState
from collector.alerts.model import MeterKey
from collector.analysis.frame import EPOCH, special_day_numbers
from collector.analysis.site_context import Sites, load_sites
from tests.support.alert_data import DAY_KW, NIGHT_KW, STEP, utc, weekly_grid, window

SITES_TOML = """
[defaults]
timezone = "Europe/Copenhagen"

[sites.workshop]
main_fuse_a = 63
closures = [{ start = 2025-05-30, end = 2025-05-30, note = "bridge day" }]

[sites.workshop.opening_hours]
mon = ["06:00-22:00"]
tue = ["06:00-22:00"]
wed = ["06:00-22:00"]
thu = ["06:00-22:00"]
fri = ["06:00-22:00"]

[sites.workshop.holidays]
country = "DK"
extra = [2025-12-24]

[sites.harbour]
timezone = "UTC"
"""
WORKSHOP, HARBOUR, UNLISTED = (
    MeterKey("workshop", "m1"),
    MeterKey("harbour", "m1"),
    MeterKey("elsewhere", "m1"),
)
HISTORY_END = utc(2025, 5, 25, 22)  # Monday 2025-05-26 00:00 in Copenhagen
PER_INTERVAL = STEP / 3600
MON_07 = 7  # hour-of-week slot of Monday 07:00


@pytest.fixture
def sites(tmp_path: Path) -> Sites:
    path = tmp_path / "sites.toml"
    path.write_text(SITES_TOML)
    return load_sites(path)


def _evaluator(sites: Sites) -> AlertEvaluator:
    return AlertEvaluator(AlertsConfig.model_validate({"expected": {"weeks": 4}}), sites)


def test_the_evaluators_calendar_for_a_site_is_its_entry_in_the_sites_file(sites: Sites) -> None:
    evaluator = _evaluator(sites)
    cal = evaluator.calendar("workshop", utc(2025, 5, 1), utc(2025, 6, 1))
    assert cal.tz == ZoneInfo("Europe/Copenhagen")
    assert date(2025, 5, 29) in cal.closed  # Ascension Day, a Danish public holiday
    assert date(2025, 5, 30) in cal.closed  # the closure
    assert date(2025, 12, 24) in cal.closed  # the company's own closed day
    assert date(2025, 5, 28) not in cal.closed
    assert cal.quiet_weekday == 6  # closed at weekends: a closed day looks like a Sunday
    # exactly the days the savings scan treats as special for the same site
    lo, hi = (date(2024, 1, 1) - EPOCH).days, (date(2026, 12, 31) - EPOCH).days
    scan_days = special_day_numbers(sites["workshop"], lo, hi)
    assert cal.closed == {EPOCH + timedelta(days=int(d)) for d in scan_days}
    assert evaluator.fuse_a("workshop") == 63

    assert evaluator.calendar("harbour", utc(2025, 5, 1), utc(2025, 6, 1)).tz == ZoneInfo("UTC")
    # a site the file does not list gets [defaults]; without a fuse there is no jump check
    other = evaluator.calendar("elsewhere", utc(2025, 5, 1), utc(2025, 6, 1))
    assert other.tz == ZoneInfo("Europe/Copenhagen")
    assert date(2025, 5, 30) not in other.closed
    assert evaluator.fuse_a("elsewhere") is None


def test_slots_of_the_week_are_each_sites_own_local_time(sites: Sites) -> None:
    evaluator = _evaluator(sites)
    history = weekly_grid(
        [HARBOUR, WORKSHOP], HISTORY_END - timedelta(weeks=4), HISTORY_END
    )  # the same working day in Copenhagen for both meters
    baseline = evaluator.build_baseline(history)
    harbour, workshop = baseline.rows_for((HARBOUR, WORKSHOP)).tolist()
    # Monday 07:00 is 09:00 in Copenhagen (working) but 07:00 in the workshop's own zone
    assert baseline.median[harbour, MON_07] == pytest.approx(DAY_KW * PER_INTERVAL, abs=0.05)
    assert baseline.median[workshop, MON_07] == pytest.approx(NIGHT_KW * PER_INTERVAL, abs=0.05)


def test_working_through_a_closure_of_the_sites_file_fires_unusual_usage(sites: Sites) -> None:
    evaluator = _evaluator(sites)
    now = utc(2025, 5, 30, 9)  # Friday 11:00 in Copenhagen: the workshop's bridge-day closure
    data = weekly_grid([WORKSHOP, UNLISTED], HISTORY_END - timedelta(weeks=4), now)
    baseline = evaluator.build_baseline(window(data, HISTORY_END - timedelta(weeks=4), HISTORY_END))
    recent = window(data, now - evaluator.recent_window, now)
    assert np.nanmean(recent.energy_kwh[:, -4:]) > DAY_KW * PER_INTERVAL * 0.9  # a working day
    conditions = evaluator.conditions(Observations(now=now, recent=recent), baseline, AlertState())
    fired = {c.labels["site"] for c in conditions if c.labels["alertname"] == "unusual_usage"}
    # scored against the workshop's Sunday; the same Friday is ordinary for a site not listed
    assert fired == {"workshop"}
