"""Model swap (admin reload, alias poll, other workers), failed loads, no model at start, shadow."""

from __future__ import annotations

import threading
import uuid

import model_factory
import pytest
from conftest import make_config
from mlflow import MlflowClient
from test_scoring import as_body

from fraud_kedro.api import create_app, read_prediction_log
from fraud_kedro.api.model_loader import ModelHolder, ModelLoadError
from fraud_kedro.api.service import in_share

ADMIN = {"X-API-Key": "admin-key"}


@pytest.fixture(scope="module")
def versions(registry, history) -> dict[str, str]:
    """More versions of fraud_detector: another good one, a corrupt one, one that cannot score."""
    other = model_factory.train(history.iloc[: len(history) // 2], seed=1, max_iter=15)
    return {
        "good": registry.champion,
        "other": registry.export("other", estimator=other, threshold=0.2, alias=None),
        "corrupt": registry.export("corrupt", alias=None, corrupt=True),
        "broken": registry.export("broken", alias=None, func=model_factory.broken_predict),
    }


def point(alias: str, version: str) -> None:
    """Move an alias of fraud_detector."""
    MlflowClient().set_registered_model_alias("fraud_detector", alias, version)


@pytest.fixture
def alias(versions) -> str:
    """A fresh alias (so tests do not move each other's), pointing at the good version."""
    name = f"t{uuid.uuid4().hex[:10]}"
    point(name, versions["good"])
    return name


def _app(registry, state_db, alias, **overrides):
    config = make_config(
        registry, state_db, model_uri=f"models:/fraud_detector@{alias}",
        admin_keys="admin-key", **overrides,
    )
    return create_app(config)


def test_reload_swaps_to_the_new_alias_target(registry, state_db, versions, alias, held_out):
    client = _app(registry, state_db, alias).test_client()
    rows = [as_body(r) for r in held_out.iloc[:2].itertuples()]
    assert client.post("/score", json=rows[0]).get_json()["model"]["version"] == versions["good"]
    assert client.post("/admin/reload").status_code == 401
    assert client.post("/admin/reload", headers={"X-API-Key": "nope"}).status_code == 401
    unchanged = client.post("/admin/reload", headers=ADMIN).get_json()
    assert unchanged["champion"]["status"] == "unchanged"
    point(alias, versions["other"])
    response = client.post("/admin/reload", headers=ADMIN)
    assert response.status_code == 200
    assert response.get_json()["champion"] == {
        "status": "loaded", "version": versions["other"],
        "previous_version": versions["good"], "error": None,
    }
    assert client.post("/score", json=rows[1]).get_json()["model"]["version"] == versions["other"]
    assert read_prediction_log(state_db)["model_version"].tolist() == [
        versions["good"], versions["other"]
    ]
    assert client.get("/model").get_json()["champion"]["threshold"] == 0.2


@pytest.mark.parametrize("bad", ["corrupt", "broken"])
def test_a_model_that_fails_to_load_leaves_the_old_one_serving(
    registry, state_db, versions, alias, held_out, bad
):
    client = _app(registry, state_db, alias).test_client()
    point(alias, versions[bad])
    response = client.post("/admin/reload", headers=ADMIN)
    assert response.status_code == 500
    payload = response.get_json()
    assert "previous model stays" in payload["error"]
    assert payload["details"]
    assert client.get("/ready").status_code == 200
    scored = client.post("/score", json=as_body(held_out.iloc[0]))
    assert scored.status_code == 200
    assert scored.get_json()["model"]["version"] == versions["good"]
    text = client.get("/metrics").get_data(as_text=True)
    assert 'fraud_api_model_reloads_total{outcome="failed",role="champion"}' in text


def test_no_model_at_start_then_a_reload_brings_one(registry, state_db, versions, held_out):
    name = f"t{uuid.uuid4().hex[:10]}"  # an alias that does not exist yet
    client = _app(registry, state_db, name).test_client()
    assert client.get("/health").status_code == 200
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert ready.get_json()["ready"] is False
    assert "model not loaded" in ready.get_json()["reasons"][0]
    response = client.post("/score", json=as_body(held_out.iloc[0]))
    assert response.status_code == 503
    assert response.get_json()["details"][0]["field"] == "model"
    assert client.get("/model").status_code == 503
    point(name, versions["good"])
    assert client.post("/admin/reload", headers=ADMIN).status_code == 200
    assert client.get("/ready").status_code == 200
    assert client.post("/score", json=as_body(held_out.iloc[0])).status_code == 200


def test_other_workers_follow_a_reload(registry, state_db, versions, alias):
    """Two workers (two apps on one state store): a reload in one reaches the other."""
    first = _app(registry, state_db, alias)
    second = _app(registry, state_db, alias)
    point(alias, versions["other"])
    assert first.test_client().post("/admin/reload", headers=ADMIN).status_code == 200
    assert second.extensions["fraud"].champion.current.version == versions["good"]
    outcomes = second.extensions["fraud"].watcher.sync_once()
    assert [o.status for o in outcomes] == ["loaded"]
    assert second.extensions["fraud"].champion.current.version == versions["other"]
    assert first.extensions["fraud"].watcher.sync_once() == []  # its own token


def test_alias_poll_picks_up_a_new_champion(registry, state_db, versions, alias):
    app = _app(registry, state_db, alias)
    point(alias, versions["other"])
    app.extensions["fraud"].watcher.poll_once()
    assert app.extensions["fraud"].champion.current.version == versions["other"]


def test_in_flight_requests_finish_on_the_old_model(versions, registry):
    """The swap is one reference assignment: a request holding the old model keeps it."""
    release = threading.Event()
    loaded = []

    def slow_loader(uri: str, name: str):
        release.wait(10)
        from fraud_kedro.api.model_loader import load_model

        model = load_model(uri, name)
        loaded.append(model)
        return model

    holder = ModelHolder(f"models:/fraud_detector/{versions['good']}")
    holder.reload()
    in_flight = holder.current
    holder._loader = slow_loader
    holder.uri = f"models:/fraud_detector/{versions['other']}"
    thread = threading.Thread(target=holder.reload)
    thread.start()
    assert holder.current is in_flight  # still serving while the new one loads
    release.set()
    thread.join(10)
    assert holder.current.version == versions["other"]
    assert in_flight.version == versions["good"]  # the old object is untouched


def test_holder_reports_a_missing_alias(registry):
    holder = ModelHolder("models:/fraud_detector@does-not-exist")
    outcome = holder.reload()
    assert outcome.status == "failed"
    assert holder.current is None and "does-not-exist" in holder.last_error
    with pytest.raises(ModelLoadError):
        from fraud_kedro.api.model_loader import resolve_model_uri

        resolve_model_uri("models:/fraud_detector@does-not-exist")


def test_shadow_is_scored_and_logged_but_never_returned(registry, state_db, versions, alias, held_out):
    shadow_alias = f"s{uuid.uuid4().hex[:10]}"
    point(shadow_alias, versions["other"])
    app = _app(
        registry, state_db, alias,
        shadow_model_uri=f"models:/fraud_detector@{shadow_alias}", shadow_share=0.5,
    )
    client = app.test_client()
    rows = [as_body(r) for r in held_out.iloc[:40].itertuples()]
    for body in rows[:20]:
        payload = client.post("/score", json=body).get_json()
        assert payload["model"]["version"] == versions["good"]
        assert set(payload) == {"model", "results"}
    client.post("/score", json={"transactions": rows[20:]})
    champion = read_prediction_log(state_db)
    shadow = read_prediction_log(state_db, shadow=True)
    assert len(champion) == 40
    expected = [r["transaction_id"] for r in rows if in_share(r["transaction_id"], 0.5)]
    assert 5 < len(expected) < 35
    assert shadow["transaction_id"].tolist() == expected
    assert set(shadow["model_version"]) == {versions["other"]}
    # same features as the champion saw, different model
    merged = shadow.merge(champion, on="transaction_id", suffixes=("_s", "_c"))
    assert (merged["customer_nb_tx_30d_s"] == merged["customer_nb_tx_30d_c"]).all()
    assert (merged["fraud_probability_s"] != merged["fraud_probability_c"]).any()
    info = client.get("/model").get_json()
    assert info["shadow"]["version"] == versions["other"] and info["shadow"]["share"] == 0.5


def test_a_failing_shadow_never_affects_clients(registry, state_db, versions, alias, held_out):
    app = _app(registry, state_db, alias, shadow_model_uri="models:/fraud_detector@missing")
    client = app.test_client()
    assert client.post("/score", json=as_body(held_out.iloc[0])).status_code == 200
    assert len(read_prediction_log(state_db, shadow=True)) == 0


def test_shadow_after_the_response(registry, state_db, versions, alias, held_out):
    shadow_alias = f"s{uuid.uuid4().hex[:10]}"
    point(shadow_alias, versions["other"])
    app = _app(
        registry, state_db, alias, shadow_after_response=True,
        shadow_model_uri=f"models:/fraud_detector@{shadow_alias}",
    )
    response = app.test_client().post("/score", json=as_body(held_out.iloc[0]))
    assert response.status_code == 200
    response.close()  # the WSGI server closes the response after sending it
    assert len(read_prediction_log(state_db, shadow=True)) == 1
