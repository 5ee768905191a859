"""No model or no registry at start, and bad models on reload.

``tests/api/test_models.py`` covers, in one process: a missing alias at start then an admin reload,
and a corrupt or failing model through ``/admin/reload``. Here: the same start under a real gunicorn
(``/health`` 200, ``/ready`` 503, one clear log line per worker, no crash loop, and the alias poll
brings the model in), a registry that cannot be reached at all, and bad models arriving through the
alias poll (a corrupt pickle, artifacts deleted from the store), which must leave the old one serving.
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from pathlib import Path

import pytest

from . import harness


def _alias() -> str:
    return f"r{uuid.uuid4().hex[:10]}"


@pytest.mark.slow
def test_no_model_at_start_under_gunicorn_no_crash_loop_then_the_poll_brings_it(
    tmp_path: Path, registry: harness.Registry, seeded_template: Path, world: harness.World
) -> None:
    alias = _alias()  # does not exist yet
    db = tmp_path / "state.db"
    shutil.copyfile(seeded_template, db)
    env = harness.server_env(
        registry, db, FRAUD_MODEL_URI=f"models:/fraud_detector@{alias}", FRAUD_MODEL_POLL_SECONDS="1"
    )
    with harness.Gunicorn(tmp_path / "srv", env, workers=2) as server:
        server.start(wait=None)
        workers = server.wait_workers(2)
        assert harness.wait_until(lambda: server.log().count("MODEL NOT LOADED") >= 2, timeout=60), (
            server.log()
        )
        assert server.call("GET", "/health", key=None).status == 200
        ready = server.call("GET", "/ready", key=None)
        assert ready.status == 503 and ready.body["ready"] is False
        assert "model not loaded" in ready.body["reasons"][0] and alias in ready.body["reasons"][0]
        body = harness.TxStream(world.future, id_offset=950_000_000_000).take(1)[0]
        score = server.call("POST", "/score", body)
        assert score.status == 503 and score.body["details"][0]["field"] == "model"
        assert score.headers.get("retry-after")
        line = next(ln for ln in server.log().splitlines() if "MODEL NOT LOADED" in ln)
        assert "ERROR" in line and alias in line and "/ready" in line
        time.sleep(3)  # several polls fail: still the same two workers, no restarts
        assert server.workers() == workers and server.proc.poll() is None
        assert server.log().count("Booting worker") == 2

        registry.point(alias, registry.champion)
        assert harness.wait_until(lambda: server.call("GET", "/ready", key=None).status == 200, timeout=20)
        # both workers have it once each poll ran (at most a second apart)
        time.sleep(1.5)
        replies = [
            server.call("POST", "/score", b)
            for b in harness.TxStream(world.future, id_offset=951_000_000_000).take(6)
        ]
        assert [r.status for r in replies] == [200] * 6
        assert server.workers() == workers


def test_registry_unreachable_at_start(
    state_db: Path, make_app, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """MLFLOW_TRACKING_URI points at a server that is down: the app starts without a model."""
    port = harness.free_port()  # nothing listens there
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    started = time.monotonic()
    with caplog.at_level(logging.ERROR):
        app = make_app(state_db, tracking_uri=f"http://127.0.0.1:{port}")
    assert time.monotonic() - started < 60
    client = app.test_client()
    assert client.get("/health").status_code == 200
    ready = client.get("/ready")
    assert ready.status_code == 503 and "model not loaded" in ready.get_json()["reasons"][0]
    messages = [r.getMessage() for r in caplog.records if "MODEL NOT LOADED" in r.getMessage()]
    assert messages, [r.getMessage() for r in caplog.records]
    body = {
        "transaction_id": 1,
        "timestamp": "2018-05-25T12:00:00",
        "customer_id": 1,
        "terminal_id": 1,
        "amount": 1.0,
    }
    assert client.post("/score", json=body, headers={"X-API-Key": harness.API_KEY}).status_code == 503


@pytest.fixture(scope="module")
def bad_versions(registry: harness.Registry) -> dict[str, str]:
    """A version whose model pickle is garbage, and one whose artifacts were deleted from the store."""
    from mlflow import MlflowClient

    corrupt = registry.export("corrupt", alias=None, corrupt=True)
    gone = registry.export("gone", alias=None)
    client = MlflowClient(tracking_uri=registry.uri, registry_uri=registry.uri)
    with harness.mlflow_uri(registry.uri):
        source = client.get_model_version("fraud_detector", gone).source  # models:/<model id>
        location = client.get_logged_model(source.removeprefix("models:/")).artifact_location
    shutil.rmtree(location.removeprefix("file://"))
    return {"corrupt": corrupt, "gone": gone}


@pytest.mark.parametrize("bad", ["corrupt", "gone"])
def test_a_bad_model_through_the_alias_poll_leaves_the_old_one_serving(
    state_db: Path,
    make_app,
    registry: harness.Registry,
    bad_versions: dict[str, str],
    world: harness.World,
    bad: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    alias = _alias()
    registry.point(alias, registry.champion)
    app = make_app(state_db, model_uri=f"models:/fraud_detector@{alias}")
    client = app.test_client()
    headers = {"X-API-Key": harness.API_KEY}
    rows = harness.TxStream(world.future, id_offset=960_000_000_000 + 10_000 * len(bad)).take(2)
    assert client.post("/score", json=rows[0], headers=headers).status_code == 200

    registry.point(alias, bad_versions[bad])
    with harness.mlflow_uri(registry.uri), caplog.at_level(logging.ERROR):
        outcomes = app.extensions["fraud"].watcher.poll_once()
    assert [o.status for o in outcomes] == ["failed"]
    assert outcomes[0].previous_version == registry.champion
    assert any("still serving version" in r.getMessage() for r in caplog.records)
    assert client.get("/ready").status_code == 200
    scored = client.post("/score", json=rows[1], headers=headers)
    assert scored.status_code == 200
    assert scored.get_json()["model"]["version"] == registry.champion
    assert app.extensions["fraud"].champion.last_error

    registry.point(alias, registry.champion)  # the alias is put back: nothing to reload
    with harness.mlflow_uri(registry.uri):
        assert [o.status for o in app.extensions["fraud"].watcher.poll_once()] == ["unchanged"]
