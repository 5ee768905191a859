"""Fixtures shared by the unit, data and integration tests.

Kept small on purpose: one small simulated raw table (session-scoped), the feature parameters of
``conf/base``, and a helper that copies the project into a temporary directory so that Kedro runs
never write into the work tree.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml
from support.project import ROOT
from support.project import copy_project as copy_project_to

from fraud_kedro.features import FeatureParams

PROJECT_ROOT = ROOT


def _conf(*parts: str) -> dict:
    return yaml.safe_load((PROJECT_ROOT / "conf" / Path(*parts)).read_text())


@pytest.fixture(scope="session")
def small_raw() -> pd.DataFrame:
    """Raw transactions of the ``small`` environment's simulation (about 50k rows, 90 days).

    Tests must not modify it: copy first.
    """
    from fraud_kedro.simulation import SimulationParams, simulate

    return simulate(SimulationParams(**_conf("small", "parameters.yml")["simulation"]))


@pytest.fixture(scope="session")
def feature_params_dict() -> dict:
    """The ``features`` parameters as Kedro passes them to the nodes (conf/base)."""
    return _conf("base", "parameters_data_processing.yml")["features"]


@pytest.fixture(scope="session")
def feature_params(feature_params_dict: dict) -> FeatureParams:
    """The ``features`` parameters, parsed."""
    return FeatureParams(**feature_params_dict)


@pytest.fixture(scope="session")
def copy_project() -> Callable[[Path], Path]:
    """A function that copies the project (conf without secrets, src, pyproject.toml and empty
    data layers) into a directory and returns it (``support.project.copy_project``)."""
    return copy_project_to


@pytest.fixture(scope="session", autouse=True)
def _mlflow_default_outside_the_work_tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """MLflow's default store is ``./mlflow.db`` of the working directory: a call that no fixture
    pointed anywhere lands in a throw-away store instead of the work tree. Fixtures point MLflow
    at their own stores (``support.registry.mlflow_uri``) and put this default back."""
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    if saved is None:
        stray = tmp_path_factory.mktemp("stray-mlflow") / "mlflow.db"
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{stray}"
    yield
    if saved is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)


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
