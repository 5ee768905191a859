"""Cold start: a worker fills its history cache and predicts once before it takes traffic."""

from __future__ import annotations

from conftest import make_config

from fraud_kedro.api import create_app
from fraud_kedro.store import open_store


def test_create_app_warms_the_worker_without_logging_anything(registry, state_db):
    before = open_store(state_db).count("prediction_log")
    app = create_app(make_config(registry, state_db))
    state = app.extensions["fraud"]
    assert state._history is not None and len(state._history) > 0  # loaded before any request
    assert open_store(state_db).count("prediction_log") == before == 0
    assert app.test_client().get("/ready").status_code == 200


def test_warm_up_can_be_switched_off(registry, state_db):
    app = create_app(make_config(registry, state_db, warm_up=False))
    assert app.extensions["fraud"]._history is None
