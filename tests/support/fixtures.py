"""Fixtures of the service test packages (``tests/api``, ``tests/stream``), imported by their
conftests: the toy world and MLflow pointed at the package's own ``registry`` fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

from support import world
from support.registry import mlflow_uri


@pytest.fixture(scope="session")
def transactions() -> pd.DataFrame:
    """Simulated labelled transactions (60 days)."""
    return world.transactions()


@pytest.fixture(scope="session")
def history(transactions: pd.DataFrame) -> pd.DataFrame:
    """What the model was trained on and the store is seeded with: everything before the
    held-out day."""
    return world.before(transactions, world.HELD_OUT_DAY)


@pytest.fixture(autouse=True)
def _our_registry(request: pytest.FixtureRequest) -> Iterator[None]:
    """Point MLflow at this package's ``registry`` for each test that uses it (other test packages
    of the same session point it elsewhere); put back what was there after the test."""
    if "registry" not in request.fixturenames:
        yield
        return
    with mlflow_uri(request.getfixturevalue("registry").uri):
        yield
