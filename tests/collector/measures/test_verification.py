"""Verification of recorded measures through the store: the known saving found within 10 %,
no savings from a baseline that fails its gates, and never an exception for want of data."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

from collector.analysis.site_context import SiteContext, Sites
from collector.evaluation.verification import describe, summary, verify
from collector.store import MeasureExclusion, MeasureRow, Reader, Store
from tests.collector.measures import synthetic

_ids = (f"{n:08x}" for n in itertools.count(0xA0))


def measure(db: Path, **changes: object) -> MeasureRow:
    """A base-load measure on both meters of the bakery, stored."""
    fields: dict[str, object] = {
        "id": next(_ids),
        "site": "bakery",
        "meters": ["grid", "ovens"],
        "kind": "baseload",
        "title": "Ventilation off at night",
        "installed_from": synthetic.INSTALLED,
        "installed_to": None,
        "investment_dkk": 25_000.0,
        "expected_kwh_year": 40_000.0,
        "opportunity_id": None,
        "model": "auto",
        "exclusions": [],
        "note": None,
        "created_ms": 0,
        "updated_ms": 0,
        **changes,
    }
    row = MeasureRow(**fields)  # type: ignore[arg-type]
    store = Store(db)
    try:
        store.put_measure(row)
    finally:
        store.close()
    return row


def test_a_base_load_cut_verifies_within_10_percent_with_the_truth_in_the_interval(
    clean_bakery: tuple[Path, synthetic.Site],
) -> None:
    db, site = clean_bakery
    row = measure(db)
    with Reader(db) as reader:
        result = verify(reader, Sites(), row, synthetic.NOW_MS)
    assert result.status == "verified", result.savings.reasons
    assert result.temperature
    b, s = result.baseline, result.savings
    assert b.model == "caltrack_hourly"
    assert "outdoor temperature given" in b.model_reason
    assert b.fit is not None
    assert b.fit.cvrmse < 0.30
    assert abs(b.fit.nmbe) < 0.10
    assert s.period == s.period.__class__(synthetic.INSTALLED, dt.date(2025, 6, 30), "reporting")
    f = s.figures
    assert f is not None
    truth = site.true_avoided_kwh(synthetic.INSTALLED, dt.date(2025, 6, 30))
    assert abs(f.avoided_kwh - truth) <= 0.10 * truth
    assert f.low_kwh <= truth <= f.high_kwh
    assert f.significant
    assert f.expected_kwh_per_year == 40_000.0
    assert f.dkk_per_year is not None
    assert f.dkk_per_year > 0
    assert f.co2_kg_per_year is not None
    assert f.co2_kg_per_year > 0
    cum = result.cumulative()
    assert cum is not None
    assert cum.avoided_kwh[-1] == f.avoided_kwh or abs(cum.avoided_kwh[-1] - f.avoided_kwh) < 1e-6
    assert cum.low_kwh[-1] < f.avoided_kwh < cum.high_kwh[-1]
    assert abs(cum.high_kwh[-1] - f.high_kwh) < 0.02 * f.uncertainty_kwh
    shown = describe(result)
    assert shown["baseline"]["fit"]["cvrmse_ok"]
    assert shown["baseline"]["fit"]["nmbe_ok"]
    assert len(shown["cumulative"]) == 181
    assert summary(result)["status"] == "verified"


def test_the_time_of_week_model_asked_for_also_finds_the_saving(
    clean_bakery: tuple[Path, synthetic.Site],
) -> None:
    """The measure's model choice reaches the baseline; an excluded installation period
    moves the reporting period's start."""
    db, site = clean_bakery
    works = MeasureExclusion(dt.date(2024, 6, 1), dt.date(2024, 6, 14), "roof works")
    row = measure(db, model="time_of_week", installed_to=dt.date(2025, 1, 15), exclusions=[works])
    with Reader(db) as reader:
        result = verify(reader, Sites(), row, synthetic.NOW_MS)
    assert result.baseline.model == "time_of_week"
    assert result.baseline.model_reason == "time_of_week model chosen by the caller"
    assert result.baseline.exclusions[0].label == "roof works"
    assert result.savings.period.start == dt.date(2025, 1, 15)
    assert result.status == "verified"
    f = result.savings.figures
    assert f is not None
    truth = site.true_avoided_kwh(dt.date(2025, 1, 15), dt.date(2025, 6, 30))
    # heating follows the weather, which this model does not see: the estimate is looser
    assert abs(f.avoided_kwh - truth) <= 0.5 * truth


def test_a_too_noisy_site_fails_its_baseline_and_claims_nothing(
    noisy_bakery: tuple[Path, synthetic.Site],
) -> None:
    db, _site = noisy_bakery
    row = measure(db)
    with Reader(db) as reader:
        result = verify(reader, Sites(), row, synthetic.NOW_MS)
    assert result.status == "baseline_failed"
    assert result.baseline.status == "failed"
    assert result.baseline.fit is not None
    assert result.baseline.fit.cvrmse > 0.30
    assert any("CV(RMSE)" in r and "ASHRAE Guideline 14" in r for r in result.baseline.reasons)
    assert result.savings.status == "baseline_failed"
    assert result.savings.figures is None
    assert result.cumulative() is None
    shown = describe(result)
    assert shown["baseline"]["fit"]["cvrmse_ok"] is False
    assert shown["savings"]["figures"] is None
    assert shown["cumulative"] == []


def test_a_meter_without_data_gives_insufficient_data_not_an_error(
    clean_bakery: tuple[Path, synthetic.Site], tmp_path: Path
) -> None:
    db, _site = clean_bakery
    store = Store(db)
    store.new_meter("bakery", "gw1", "freezer")  # registered, never a reading
    store.close()
    with Reader(db) as reader:
        empty = verify(reader, Sites(), measure(db, meters=["freezer"]), synthetic.NOW_MS)
        gone = verify(reader, Sites(), measure(db, meters=["grid", "sold"]), synthetic.NOW_MS)
    for result in (empty, gone):
        assert result.status == "insufficient_data"
        assert result.baseline.status == "insufficient_data"
        assert result.savings.figures is None
    assert "meter freezer: no interval energy stored in the period" in empty.notes
    assert "meter sold: not in the database" in gone.notes
    assert any("days have data" in r for r in empty.baseline.reasons)


def test_a_measure_still_to_come_has_its_baseline_but_no_savings_yet(
    clean_bakery: tuple[Path, synthetic.Site],
) -> None:
    db, _site = clean_bakery
    row = measure(db, installed_from=dt.date(2025, 6, 20), installed_to=dt.date(2025, 7, 10))
    with Reader(db) as reader:
        result = verify(reader, Sites(), row, synthetic.NOW_MS)
    assert result.baseline.status == "ok"
    assert result.status == "not_started"
    assert result.savings.figures is None
    assert "the reporting period starts on 2025-07-10" in result.savings.reasons[0]


def test_the_sites_file_gives_the_calendar_prices_and_co2(
    clean_bakery: tuple[Path, synthetic.Site],
) -> None:
    """A flat CO2 factor and the site's prices value the avoided energy."""
    db, _site = clean_bakery
    row = measure(db)
    ctx = SiteContext.model_validate(
        {
            "co2": {"g_per_kwh": 100.0},
            "energy_price": {"spot_dkk_per_kwh": 1.0, "taxes_dkk_per_kwh": 0.0,
                             "supplier_margin_dkk_per_kwh": 0.0},
            "grid_tariff": {"winter": {"lavlast": 0, "hoejlast": 0, "spidslast": 0},
                            "summer": {"lavlast": 0, "hoejlast": 0, "spidslast": 0}},
        }
    )  # fmt: skip
    with Reader(db) as reader:
        result = verify(reader, Sites({"bakery": ctx}), row, synthetic.NOW_MS)
    f = result.savings.figures
    assert f is not None
    assert f.dkk is not None
    assert f.co2_kg is not None
    assert abs(f.dkk - f.avoided_kwh) < 1e-6 * f.avoided_kwh  # 1 DKK/kWh, every hour
    assert abs(f.co2_kg - f.avoided_kwh * 0.1) < 1e-6 * f.avoided_kwh
