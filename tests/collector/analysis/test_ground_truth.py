"""A small ground truth (6 sites, 8 weeks) scored like bench/ground_truth.py."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from collector.analysis import scan

BENCH = Path(__file__).resolve().parents[3] / "bench" / "ground_truth.py"


@pytest.fixture(scope="module")
def gt() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ground_truth", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["ground_truth"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_small_ground_truth_meets_precision_recall_and_size(gt: ModuleType) -> None:
    easter = ((dt.date(2025, 4, 22), dt.date(2025, 4, 25)),)  # a closure after Easter
    specs = [  # two sectors of three sites, so every site has two peers
        gt.SiteSpec("a", "g1", {"baseload": 0.25}),
        gt.SiteSpec("b", "g1", {"offhours": 0.6, "leak": 0.25}, compressor=True),
        gt.SiteSpec("c", "g1"),
        gt.SiteSpec(
            "d", "g3", {"standby": 0.5, "peak_shift": 0.5, "pf": 0.8, "imbalance": 0.3}, easter
        ),
        gt.SiteSpec("e", "g3"),
        gt.SiteSpec("f", "g3"),
    ]
    pf = gt.build(specs, dt.date(2025, 3, 31), 56, seed=3)
    scores, on_clean = gt.evaluate(scan(pf.series, pf.contexts), pf)
    assert on_clean == []
    assert {k for k, s in scores.items() if s.tp} == {
        "baseload",
        "offhours",
        "night_load",
        "standby",
        "peak_shift",
        "power_factor",
        "phase_imbalance",
    }
    for kind, s in scores.items():
        assert s.precision >= 0.9, kind
        assert s.recall >= 0.9, kind
        for site, truth, estimate in s.errors:
            assert estimate == pytest.approx(truth, rel=0.15), (kind, site)
