"""Fixtures of the scoring-service tests.

One MLflow store per test session (a temporary SQLite file) holds a small model trained on simulated
transactions and exported like the training pipeline exports it; every app gets its own state store
seeded with the history before the held-out day.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import model_factory  # noqa: E402
from simdata import simulate_transactions  # noqa: E402

from fraud_kedro.api import create_app, seed_history  # noqa: E402
from fraud_kedro.features import FeatureParams  # noqa: E402

HELD_OUT_DAY = pd.Timestamp("2018-05-25")


@pytest.fixture(scope="session")
def transactions() -> pd.DataFrame:
    """Simulated labelled transactions (60 days)."""
    return simulate_transactions(n_customers=300, n_terminals=400, n_days=60, seed=0)


@pytest.fixture(scope="session")
def history(transactions: pd.DataFrame) -> pd.DataFrame:
    """What the model was trained on: everything before the held-out day."""
    return transactions[transactions["timestamp"] < HELD_OUT_DAY].reset_index(drop=True)


@pytest.fixture(scope="session")
def held_out(transactions: pd.DataFrame) -> pd.DataFrame:
    """The held-out day (scored through the API in the parity test)."""
    day = transactions[
        (transactions["timestamp"] >= HELD_OUT_DAY)
        & (transactions["timestamp"] < HELD_OUT_DAY + pd.Timedelta(days=1))
    ]
    return day.sort_values(["timestamp", "transaction_id"]).reset_index(drop=True)


@pytest.fixture(autouse=True)
def _our_registry(request: pytest.FixtureRequest) -> Iterator[None]:
    """Point MLflow at this package's registry for each test that uses it (other test packages
    of the same session point it elsewhere)."""
    if "registry" not in request.fixturenames:
        yield
        return
    import mlflow

    uri = request.getfixturevalue("registry")["uri"]
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    yield
    if previous is not None:
        os.environ["MLFLOW_TRACKING_URI"] = previous


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory, history: pd.DataFrame) -> Iterator[dict]:
    """A temporary MLflow store with ``fraud_detector`` version 1 as ``champion``."""
    import mlflow

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment_name="api-tests")
    estimator = model_factory.train(history)
    version = model_factory.export_model(root / "v1", estimator)
    yield {"uri": uri, "root": root, "estimator": estimator, "champion": version}
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous


_TEMPLATE: dict[str, Path] = {}


@pytest.fixture(scope="session")
def _seeded_template(tmp_path_factory: pytest.TempPathFactory, history: pd.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("state") / "template.db"
    seed_history(path, history, FeatureParams.from_dict(model_factory.FEATURE_PARAMS))
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


def make_config(registry: dict, state_db: Path, **overrides) -> dict:
    """Settings of a test app (no background threads, shadow scored inline)."""
    return {
        "model_uri": "models:/fraud_detector@champion",
        "tracking_uri": registry["uri"],
        "state_db": str(state_db),
        "seed_path": "",
        "model_poll_seconds": 0,
        "model_sync_seconds": 0,
        "shadow_after_response": False,
        "api_keys": (),
        **overrides,
    }


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
