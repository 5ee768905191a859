"""Fixtures shared by the unit, data and integration tests.

Kept small on purpose: one small simulated raw table (session-scoped), the feature parameters of
``conf/base``, and a helper that copies the project into a temporary directory so that Kedro runs
never write into the work tree.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml

from fraud_kedro.features import FeatureParams

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_LAYERS = (
    "01_raw",
    "02_intermediate",
    "03_primary",
    "04_feature",
    "05_model_input",
    "06_models",
    "07_model_output",
    "08_reporting",
)


def _conf(*parts: str) -> dict:
    return yaml.safe_load((PROJECT_ROOT / "conf" / Path(*parts)).read_text())


@pytest.fixture(scope="session")
def small_raw() -> pd.DataFrame:
    """Raw transactions of the ``small`` environment's simulation (about 50k rows, 90 days).

    Tests must not modify it: copy first.
    """
    from fraud_kedro.pipelines.simulation.nodes import simulate_transactions

    return simulate_transactions(_conf("small", "parameters.yml")["simulation"])


@pytest.fixture(scope="session")
def feature_params_dict() -> dict:
    """The ``features`` parameters as Kedro passes them to the nodes (conf/base)."""
    return _conf("base", "parameters_data_processing.yml")["features"]


@pytest.fixture(scope="session")
def feature_params(feature_params_dict: dict) -> FeatureParams:
    """The ``features`` parameters, parsed."""
    return FeatureParams.from_dict(feature_params_dict)


@pytest.fixture(scope="session")
def copy_project() -> Callable[[Path], Path]:
    """A function that copies the project (conf without secrets, src, pyproject.toml and empty
    data layers) into a directory and returns it."""

    def copy(dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
        shutil.copy2(PROJECT_ROOT / "pyproject.toml", dest / "pyproject.toml")
        shutil.copytree(PROJECT_ROOT / "src", dest / "src", ignore=ignore)
        shutil.copytree(
            PROJECT_ROOT / "conf",
            dest / "conf",
            ignore=lambda folder, names: names if Path(folder).name == "local" else ignore(folder, names),
        )
        for layer in DATA_LAYERS:
            (dest / "data" / layer).mkdir(parents=True, exist_ok=True)
        return dest

    return copy


# ---- a real PostgreSQL (tests/postgres_support.py) -------------------------------------------


@pytest.fixture(scope="session")
def postgres_databases():
    """The run's test databases on ``FRAUD_TEST_POSTGRES_URL`` (all dropped at the end)."""
    from postgres_support import PostgresDatabases, admin_url, require_server

    databases = PostgresDatabases(admin_url())
    require_server(databases)
    yield databases
    databases.drop_all()


@pytest.fixture
def postgres_url(postgres_databases) -> str:
    """URL of a fresh, empty PostgreSQL database of this test run."""
    return postgres_databases.fresh()
