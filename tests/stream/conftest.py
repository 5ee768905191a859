"""Fixtures of the stream-worker tests: the real Redis, the API tests' toy model, a seeded store.

Redis: ``FRAUD_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``). Every test gets its own
stream names under a unique prefix (other jobs use the same server) and deletes them afterwards.
Without a Redis the tests skip, except under ``CI=true`` where that is a failure.

The model is the one the API tests export (``tests/api/model_factory.py``): a small gradient
boosting on simulated data, registered in a temporary MLflow store, so the tests stay fast.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

API_TESTS = Path(__file__).resolve().parents[1] / "api"
sys.path.insert(0, str(API_TESTS))

import model_factory  # noqa: E402
from simdata import simulate_transactions  # noqa: E402

from fraud_kedro.api import seed_history  # noqa: E402
from fraud_kedro.features import FeatureParams  # noqa: E402

HELD_OUT_DAY = pd.Timestamp("2018-05-25")
REDIS_URL = os.environ.get("FRAUD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis, or a skip (a failure under CI=true) when none answers."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        message = (
            f"no Redis at {REDIS_URL} ({exc}); start one (`redis-server --save '' &`) or set "
            "FRAUD_TEST_REDIS_URL"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return REDIS_URL


@pytest.fixture
def streams(redis_url: str) -> Iterator[dict[str, str]]:
    """Unique stream names for one test (deleted afterwards)."""
    import redis

    prefix = f"test-stream-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    names = {
        "transactions": f"{prefix}.transactions",
        "labels": f"{prefix}.labels",
        "scores": f"{prefix}.scores",
        "dead_letter": f"{prefix}.dead_letter",
        "group": f"{prefix}-group",
    }
    yield names
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="session")
def transactions() -> pd.DataFrame:
    """Simulated labelled transactions (60 days), as in the API tests."""
    return simulate_transactions(n_customers=300, n_terminals=400, n_days=60, seed=0)


@pytest.fixture(scope="session")
def history(transactions: pd.DataFrame) -> pd.DataFrame:
    """Everything before the held-out day (the model's training data and the seed)."""
    return transactions[transactions["timestamp"] < HELD_OUT_DAY].reset_index(drop=True)


@pytest.fixture(scope="session")
def held_out(transactions: pd.DataFrame) -> pd.DataFrame:
    """The held-out day, in time order."""
    day = transactions[
        (transactions["timestamp"] >= HELD_OUT_DAY)
        & (transactions["timestamp"] < HELD_OUT_DAY + pd.Timedelta(days=2))
    ]
    return day.sort_values(["timestamp", "transaction_id"]).reset_index(drop=True)


@pytest.fixture(autouse=True)
def _our_registry(request: pytest.FixtureRequest) -> Iterator[None]:
    """Point MLflow at this package's registry for the tests that use it."""
    if "registry" not in request.fixturenames:
        yield
        return
    import mlflow

    uri = request.getfixturevalue("registry")["uri"]
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    yield
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory, history: pd.DataFrame) -> Iterator[dict]:
    """A temporary MLflow store with the toy ``fraud_detector`` as ``champion``."""
    import mlflow

    root = tmp_path_factory.mktemp("stream-mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment_name="stream-tests")
    estimator = model_factory.train(history)
    version = model_factory.export_model(root / "v1", estimator)
    yield {"uri": uri, "root": root, "champion": version}
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory, history: pd.DataFrame) -> Path:
    """A state store seeded with the history (copied for each test)."""
    path = tmp_path_factory.mktemp("stream-state") / "template.db"
    seed_history(path, history, FeatureParams.from_dict(model_factory.FEATURE_PARAMS))
    return path


@pytest.fixture
def state_db(tmp_path: Path, seeded_template: Path) -> Path:
    """A fresh seeded state store for one test."""
    return Path(shutil.copyfile(seeded_template, tmp_path / "state.db"))
