"""Sectors with fewer than min_peers sites: a site is judged against its own history, and a
peer's figure is never a yardstick below zero."""

from __future__ import annotations

import datetime as dt
import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from collector.analysis import Opportunity, offhours, peers, scan
from collector.analysis.frame import Frame
from collector.analysis.site_context import SiteContext

BENCH = Path(__file__).resolve().parents[3] / "bench" / "ground_truth.py"
XMAS = ((dt.date(2025, 12, 22), dt.date(2025, 12, 31)),)
BASE_TOLERANCE = 0.05  # base-load step: the floor is measured directly, before and after
CREEP_TOLERANCE = 0.10  # slow creep: sized against the season of a single peer
PEER_PATH_TOLERANCE = 0.05  # own history against the same portfolio with min_peers = 1


def _ground_truth() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ground_truth", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["ground_truth"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def portfolio() -> Any:
    gt = _ground_truth()
    specs = [  # three sectors of two sites: each site has one peer, min_peers is 2
        # an office whose night floor goes from about 4.8 to 10.8 kW at the start of April
        gt.SiteSpec(
            "office-a", "g1", {"base_step": 0.283}, XMAS, sector="office", annual_kwh=186_000
        ),
        gt.SiteSpec("office-b", "g1", {}, XMAS, sector="office", annual_kwh=170_000),
        # a cold store whose use creeps up 14 % from March to November
        gt.SiteSpec("cold-a", "cold", {"creep": 0.14}, annual_kwh=400_000),
        gt.SiteSpec("cold-b", "cold", {}, annual_kwh=350_000),
        # a clean clinic next to a clinic that cut its opening-hours use by 30 % in August
        gt.SiteSpec("clinic-a", "g1", {}, XMAS, sector="clinic"),
        gt.SiteSpec("clinic-b", "g1", {"step": -0.3}, XMAS, sector="clinic"),
    ]
    return gt.build(specs, dt.date(2025, 1, 1), 365, seed=7)


def _with_min_peers(contexts: dict[str, SiteContext], n: int) -> dict[str, SiteContext]:
    return {
        site: ctx.model_copy(
            update={"thresholds": ctx.thresholds.model_copy(update={"min_peers": n})}
        )
        for site, ctx in contexts.items()
    }


def _by_site(opps: list[Opportunity]) -> dict[str, dict[str, Opportunity]]:
    out: dict[str, dict[str, Opportunity]] = {}
    for o in opps:
        out.setdefault(o.site, {})[o.kind] = o
    return out


@pytest.fixture(scope="module")
def own_history(portfolio: Any) -> dict[str, dict[str, Opportunity]]:
    return _by_site(scan(portfolio.series, portfolio.contexts))


@pytest.fixture(scope="module")
def peer_path(portfolio: Any) -> dict[str, dict[str, Opportunity]]:
    contexts = _with_min_peers(portfolio.contexts, 1)
    return _by_site(scan(portfolio.series, contexts))


def _truth(portfolio: Any, site: str, kind: str) -> float:
    [t] = [t for t in portfolio.truth if t.site == site and t.kind == kind]
    return float(t.annual_kwh)


def _priced(o: Opportunity) -> None:
    assert o.annual_dkk > 0
    assert o.annual_kg_co2 > 0
    assert o.investment_dkk > 0
    assert math.isfinite(o.payback_years)


def test_base_load_step_with_one_sector_peer_is_found_against_own_history(
    portfolio: Any,
    own_history: dict[str, dict[str, Opportunity]],
    peer_path: dict[str, dict[str, Opportunity]],
) -> None:
    found = own_history["office-a"]
    assert set(found) == {"baseload"}  # the rise of the floor is not counted again as drift
    o = found["baseload"]
    assert o.annual_kwh == pytest.approx(
        _truth(portfolio, "office-a", "baseload"), rel=BASE_TOLERANCE
    )
    assert o.annual_kwh == pytest.approx(38_000, rel=0.05)
    assert o.annual_kwh == pytest.approx(
        peer_path["office-a"]["baseload"].annual_kwh, rel=PEER_PATH_TOLERANCE
    )
    assert o.evidence["expected_from"] == "own history + few peers' season"
    assert o.evidence["base_kw_before"] == pytest.approx(4.8, abs=0.4)
    assert o.evidence["base_kw_after"] == pytest.approx(10.8, abs=0.4)
    assert o.evidence["change_date"].startswith("2025-04")
    _priced(o)


def test_creep_of_a_cold_store_with_one_sector_peer_is_found_against_own_history(
    portfolio: Any,
    own_history: dict[str, dict[str, Opportunity]],
    peer_path: dict[str, dict[str, Opportunity]],
) -> None:
    found = own_history["cold-a"]
    assert set(found) == {"drift"}
    o = found["drift"]
    assert o.annual_kwh == pytest.approx(_truth(portfolio, "cold-a", "drift"), rel=CREEP_TOLERANCE)
    assert o.annual_kwh == pytest.approx(
        peer_path["cold-a"]["drift"].annual_kwh, rel=PEER_PATH_TOLERANCE
    )
    assert o.evidence["shape"] == "gradual"
    assert o.evidence["rise"] == pytest.approx(0.14, abs=0.02)
    _priced(o)


def test_clean_sites_next_to_a_changed_peer_get_no_opportunity(
    own_history: dict[str, dict[str, Opportunity]],
    peer_path: dict[str, dict[str, Opportunity]],
) -> None:
    for site in ("office-b", "cold-b", "clinic-a"):
        assert own_history.get(site, {}) == {}, site
    # with the single peer as yardstick, the changed office's off-hours share is no excuse
    # to flag its clean neighbour either
    assert peer_path.get("office-b", {}) == {}


def test_a_yardstick_from_peers_is_never_below_zero() -> None:
    values = {"a": -0.053, "b": -0.01, "c": 0.2}
    sector = dict.fromkeys(values, "office")
    assert peers.median_of_others(values, sector, 1) == pytest.approx(
        {"a": 0.095, "b": 0.0735, "c": 0.0}
    )
    assert peers.median_of_others({"a": 0.1, "b": -0.2}, {"a": "x", "b": "x"}, 1)["a"] == 0.0
    assert peers.usable(-0.053) is None
    assert peers.usable(0.0) is None
    assert peers.usable(float("nan")) is None
    assert peers.usable(0.1) == 0.1


def test_offhours_is_not_judged_against_a_negative_yardstick(portfolio: Any) -> None:
    [main] = [s for s in portfolio.series if s.site == "office-b" and s.role == "main"]
    ctx = portfolio.contexts["office-b"]
    ratio = offhours.features(Frame(main, ctx)).ratio
    assert 0 < ratio < ctx.thresholds.offhours_expected_alone
    assert offhours.detect(main, ctx, peer_ratio=-0.053) == []
    assert offhours.detect(main, ctx, peer_ratio=0.0) == []
    assert np.isfinite(ratio)
