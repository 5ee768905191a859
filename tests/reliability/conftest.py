"""Fixtures of the reliability tests: one registry and one seeded state store per session (built like
``tests/api`` builds them, see ``harness.py``), apps on a fresh copy of the store, a shared gunicorn.

MLflow's global tracking URI is saved and restored around every test (``create_app`` sets it), so
nothing here leaks into the other suites.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.registry import kept_mlflow_uri
from support.serving import serving_config

from . import harness


@pytest.fixture(scope="session")
def world() -> harness.World:
    """Simulated transactions: 53 days of history, then 7 days to score."""
    return harness.simulate_world()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory, world: harness.World) -> harness.Registry:
    """A temporary MLflow store with ``fraud_detector`` version 1 as ``champion``."""
    return harness.build_registry(tmp_path_factory.mktemp("mlflow"), world.history, experiment="reliability")


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory, world: harness.World) -> Path:
    return harness.seed_state(tmp_path_factory.mktemp("state") / "template.db", world.history)


@pytest.fixture
def state_db(tmp_path: Path, seeded_template: Path) -> Path:
    """A fresh copy of the seeded state store."""
    path = tmp_path / "state.db"
    shutil.copyfile(seeded_template, path)
    return path


@pytest.fixture(autouse=True)
def _restore_mlflow_uri() -> Iterator[None]:
    """``create_app`` points MLflow's global URI at its registry: put the previous one back."""
    with kept_mlflow_uri():
        yield


def app_config(registry: harness.Registry, state_db: Path, **overrides: Any) -> dict[str, Any]:
    """Settings of an in-process app (no background threads, one API key)."""
    return serving_config(
        registry.uri, state_db, **{"api_keys": harness.API_KEY, "admin_keys": harness.ADMIN_KEY, **overrides}
    )


@pytest.fixture
def make_app(registry: harness.Registry) -> Callable[..., Any]:
    """``make_app(state_db, **overrides)``: a Flask app of the service."""
    from fraud_kedro.api import create_app

    def make(state_db: Path, **overrides: Any) -> Any:
        # create_app points MLflow at the registry; _restore_mlflow_uri puts it back after the test
        app = create_app(app_config(registry, state_db, **overrides))
        app.config["TESTING"] = True
        return app

    return make


@pytest.fixture(scope="session")
def server(
    tmp_path_factory: pytest.TempPathFactory, registry: harness.Registry, seeded_template: Path
) -> Iterator[harness.Gunicorn]:
    """gunicorn with two sync workers on a free port, started like ``make serve``; shared by the
    worker-kill, disk-full and request-size tests (each one works with whatever workers are alive)."""
    workdir = tmp_path_factory.mktemp("gunicorn")
    db = workdir / "state.db"
    shutil.copyfile(seeded_template, db)
    srv = harness.Gunicorn(workdir, harness.server_env(registry, db), workers=2)
    srv.db = db  # type: ignore[attr-defined]
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
