"""The bakery of synthetic.py in a database: both meters' history and the temperature,
imported from DMI's observations with the import command."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.cli.main import main
from collector.store import Store
from tests.collector.measures import synthetic


def bakery(directory: Path, **noise: float) -> tuple[Path, synthetic.Site]:
    site = synthetic.make_site(**noise)
    db = directory / "collector.db"
    store = Store(db)
    try:
        synthetic.store_history(store, site)
    finally:
        store.close()
    observations = directory / "temp_dry.csv"
    synthetic.write_dmi_csv(observations, site)
    assert main(["import", "--db", str(db), "--site", "bakery", str(observations)]) == 0
    return db, site


@pytest.fixture(scope="package")
def clean_bakery(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, synthetic.Site]:
    """Moderate noise: a baseline that passes Guideline 14."""
    return bakery(tmp_path_factory.mktemp("bakery"))


@pytest.fixture(scope="package")
def noisy_bakery(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, synthetic.Site]:
    """Hour-to-hour noise of 70 % and day-to-day of 45 %: no model passes the gates."""
    return bakery(tmp_path_factory.mktemp("noisy"), hour_noise=0.7, day_noise=0.45)
