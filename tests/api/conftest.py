"""Fixtures of the scoring-service tests.

One MLflow store per test session (a temporary SQLite file) holds a small model trained on simulated
transactions and exported like the training pipeline exports it; every app gets its own state store
seeded with the history before the held-out day.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import model_factory  # noqa: E402
from support import fixtures as shared  # noqa: E402
from support import world
from support.registry import Registry, build_registry  # noqa: E402
from support.serving import serving_config  # noqa: E402

from fraud_kedro.api import create_app, seed_history  # noqa: E402
from fraud_kedro.features import FeatureParams  # noqa: E402

HELD_OUT_DAY = world.HELD_OUT_DAY


# the fixtures this package shares with the other service tests (tests/support/fixtures.py)
transactions = shared.transactions
history = shared.history
_our_registry = shared._our_registry


@pytest.fixture(scope="session")
def held_out(transactions: pd.DataFrame) -> pd.DataFrame:
    """The held-out day (scored through the API in the parity test)."""
    return world.days_from(transactions, HELD_OUT_DAY, days=1)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory, history: pd.DataFrame) -> Registry:
    """A temporary MLflow store with ``fraud_detector`` version 1 as ``champion``
    (``registry["uri"]``, ``["root"]``, ``["estimator"]``, ``["champion"]``)."""
    return build_registry(tmp_path_factory.mktemp("mlflow"), history, experiment="api-tests")


_TEMPLATE: dict[str, Path] = {}


@pytest.fixture(scope="session")
def _seeded_template(tmp_path_factory: pytest.TempPathFactory, history: pd.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("state") / "template.db"
    seed_history(path, history, FeatureParams(**model_factory.FEATURE_PARAMS))
    _TEMPLATE["path"] = path
    return path


def seed_template(path: Path) -> Path:
    """Copy the seeded state store (last 37 days of the training data) to ``path``."""
    shutil.copyfile(_TEMPLATE["path"], path)
    return path


@pytest.fixture
def state_db(tmp_path: Path, _seeded_template: Path) -> Path:
    """A state store seeded with the last 37 days of the training data."""
    return seed_template(tmp_path / "state.db")


def make_config(registry: Registry, state_db: Path, **overrides) -> dict:
    """Settings of a test app (no background threads, shadow scored inline)."""
    return serving_config(registry["uri"], state_db, **overrides)


@pytest.fixture
def app(registry: dict, state_db: Path):
    """The app, without authentication."""
    app = create_app(make_config(registry, state_db))
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):
    """A test client of ``app``."""
    return app.test_client()
