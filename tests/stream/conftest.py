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
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from support import fixtures as shared
from support import world
from support.registry import Registry, build_registry, seed_state

HELD_OUT_DAY = world.HELD_OUT_DAY
REDIS_URL = os.environ.get("FRAUD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


# the fixtures this package shares with the other service tests (tests/support/fixtures.py)
transactions = shared.transactions
history = shared.history
_our_registry = shared._our_registry


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
def held_out(transactions: pd.DataFrame) -> pd.DataFrame:
    """The two held-out days, in time order."""
    return world.days_from(transactions, HELD_OUT_DAY, days=2)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory, history: pd.DataFrame) -> Registry:
    """A temporary MLflow store with the toy ``fraud_detector`` as ``champion``."""
    return build_registry(tmp_path_factory.mktemp("stream-mlflow"), history, experiment="stream-tests")


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory, history: pd.DataFrame) -> Path:
    """A state store seeded with the history (copied for each test)."""
    return seed_state(tmp_path_factory.mktemp("stream-state") / "template.db", history)


@pytest.fixture
def state_db(tmp_path: Path, seeded_template: Path) -> Path:
    """A fresh seeded state store for one test."""
    return Path(shutil.copyfile(seeded_template, tmp_path / "state.db"))
