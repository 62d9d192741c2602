"""Programmes in the sites file: what is accepted, and one precise line per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.analysis import load_sites
from sparwatt.errors import ConfigError
from tests.collector.programmes.history import sites_file

CONFIG = Path(__file__).resolve().parents[3] / "config"


def test_the_example_sites_file_has_a_programme_of_its_own_sites() -> None:
    sites = load_sites(CONFIG / "sites.example.toml")
    programme = sites.programme("aarhus-2030")
    assert programme is not None
    assert programme.baseline_year == 2025
    assert (programme.target.co2, programme.target.energy) == (-0.20, -0.15)
    assert all(site in sites for site in programme.sites)


def test_a_site_may_take_part_in_several_programmes(tmp_path: Path) -> None:
    sites = load_sites(sites_file(tmp_path, 2025))
    assert list(sites.programmes) == ["aarhus-2030", "energy-only"]
    assert sites.programmes_of("office-harbour") == ["aarhus-2030", "energy-only"]
    assert sites.programmes_of("elsewhere") == []
    only_energy = sites.programme("energy-only")
    assert only_energy is not None
    assert (only_energy.target.energy, only_energy.target.co2) == (-0.10, None)
    assert sites.programme("nope") is None


def test_a_sites_file_without_programmes_has_none(tmp_path: Path) -> None:
    path = tmp_path / "sites.toml"
    path.write_text("[sites.a]\n")
    assert dict(load_sites(path).programmes) == {}


def _problems(tmp_path: Path, programme: str) -> list[str]:
    path = tmp_path / "sites.toml"
    path.write_text(f"[sites.bakery-north]\n[sites.office-harbour]\n\n{programme}")
    with pytest.raises(ConfigError) as err:
        load_sites(path)
    assert all(p.startswith(f"{path}: ") for p in err.value.problems)
    return err.value.problems


GOOD = 'name = "P"\nbaseline_year = 2025\n'


def test_an_unknown_site_is_named_with_its_programme(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        '[programmes.p1]\nsites = ["bakery-north", "bakery-sout"]\n'
        + GOOD
        + "target = { co2 = -0.2 }\n",
    )
    assert problems == [
        f"{tmp_path / 'sites.toml'}: programmes.p1.sites: no site 'bakery-sout' in [sites]"
    ]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("{ co2 = 0.20 }", "a target is a reduction"),
        ("{ energy = -1.5 }", "a target is a reduction"),
        ("{ co2 = 0.0 }", "a target is a reduction"),
        ("{}", "a target needs co2, energy or both"),
        ("{ co2 = -0.2, water = -0.1 }", "programmes.p1.target.water"),
        ('{ co2 = "twenty" }', "programmes.p1.target.co2"),
    ],
)
def test_a_bad_target_is_refused(tmp_path: Path, target: str, expected: str) -> None:
    problems = _problems(
        tmp_path, f'[programmes.p1]\nsites = ["bakery-north"]\n{GOOD}target = {target}\n'
    )
    assert len(problems) == 1
    assert expected in problems[0]
    assert "programmes.p1" in problems[0]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('sites = ["bakery-north"]\nname = "P"\nbaseline_year = 2025\n', "programmes.p1.target"),
        (
            'sites = ["bakery-north"]\n' + GOOD + "target = { co2 = -0.2 }\ncolour = 1\n",
            "programmes.p1.colour",
        ),
        ("sites = []\n" + GOOD + "target = { co2 = -0.2 }\n", "programmes.p1.sites"),
        (
            'sites = ["bakery-north", "bakery-north"]\n' + GOOD + "target = { co2 = -0.2 }\n",
            "listed twice",
        ),
        (
            'sites = ["bakery-north"]\nname = "P"\nbaseline_year = 1999\ntarget = { co2 = -0.2 }\n',
            "programmes.p1.baseline_year",
        ),
    ],
)
def test_a_programme_with_a_missing_or_unknown_key_is_refused(
    tmp_path: Path, body: str, expected: str
) -> None:
    problems = _problems(tmp_path, f"[programmes.p1]\n{body}")
    assert len(problems) == 1
    assert expected in problems[0]


def test_a_programme_id_must_be_a_valid_id(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        '[programmes."Aarhus 2030"]\nsites = ["bakery-north"]\n'
        + GOOD
        + "target = { co2 = -0.2 }\n",
    )
    assert len(problems) == 1
    assert "Aarhus 2030" in problems[0]
