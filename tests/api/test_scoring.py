"""POST /score, /feedback, the logs, auth, health, metrics, OpenAPI and the page."""

from __future__ import annotations

import math
import sqlite3

import numpy as np
import pandas as pd
import pytest
from conftest import make_config, seed_template
from support.serving import tx_body

from fraud_kedro.api import create_app, read_label_log, read_prediction_log
from fraud_kedro.features import FeatureParams, feature_names
from fraud_kedro.store import open_store

as_body = tx_body  # a raw-contract JSON transaction from a DataFrame row


def test_score_one_transaction(client, held_out):
    body = as_body(held_out.iloc[0])
    response = client.post("/score", json=body)
    assert response.status_code == 200
    payload = response.get_json()
    assert payload["model"] == {"name": "fraud_detector", "version": "1"}
    [result] = payload["results"]
    assert result["transaction_id"] == body["transaction_id"]
    assert 0.0 <= result["fraud_probability"] <= 1.0
    assert isinstance(result["is_fraud_predicted"], bool)
    assert response.headers["Server-Timing"].startswith("app;dur=")


def test_score_batch_keeps_request_order(client, held_out):
    rows = held_out.iloc[:20]
    batch = [as_body(r) for r in rows.iloc[::-1].itertuples()]
    response = client.post("/score", json={"transactions": batch})
    assert response.status_code == 200
    ids = [r["transaction_id"] for r in response.get_json()["results"]]
    assert ids == [b["transaction_id"] for b in batch]


def test_batch_equals_one_by_one(registry, held_out, tmp_path, state_db):
    """A batch sees its own earlier transactions, as one-by-one scoring does."""

    rows = held_out.iloc[:60]
    one_db, batch_db = tmp_path / "one.db", tmp_path / "batch.db"
    seed_template(one_db)
    seed_template(batch_db)
    one = create_app(make_config(registry, one_db)).test_client()
    many = create_app(make_config(registry, batch_db)).test_client()
    singles = [one.post("/score", json=as_body(r)).get_json()["results"][0] for r in rows.itertuples()]
    batch = many.post("/score", json={"transactions": [as_body(r) for r in rows.itertuples()]})
    for a, b in zip(singles, batch.get_json()["results"], strict=True):
        assert a["transaction_id"] == b["transaction_id"]
        assert math.isclose(a["fraud_probability"], b["fraud_probability"], abs_tol=1e-12)


def test_string_and_integer_ids_are_the_same_card(client, held_out, state_db):
    row = held_out.iloc[0]
    body = {**as_body(row), "customer_id": str(int(row.customer_id))}
    assert client.post("/score", json=body).status_code == 200
    log = read_prediction_log(state_db)
    assert log["customer_id"].tolist() == [str(int(row.customer_id))]
    # the history of the integer customer was found: it has earlier transactions
    assert log["customer_nb_tx_30d"].iloc[0] > 1


def test_text_ids_have_their_own_history(client, held_out, state_db):
    row = held_out.iloc[0]
    base = {**as_body(row), "customer_id": "card-A", "terminal_id": "shop 7"}
    for i, minutes in enumerate((0, 10, 20)):
        when = row.timestamp + pd.Timedelta(minutes=minutes)
        body = {**base, "transaction_id": 5_000_000_000 + i, "timestamp": when.isoformat()}
        assert client.post("/score", json=body).status_code == 200
    client.post("/score", json={**base, "transaction_id": 5_000_000_010, "customer_id": "007"})
    log = read_prediction_log(state_db)
    assert log["customer_nb_tx_1d"].tolist() == [1, 2, 3, 1]  # "007" is not card 7 nor "card-A"
    assert log["customer_id"].tolist() == ["card-A"] * 3 + ["007"]


def test_replay_is_idempotent_and_a_changed_replay_conflicts(client, held_out, history, state_db):
    body = as_body(held_out.iloc[0])
    first = client.post("/score", json=body).get_json()
    again = client.post("/score", json=body)
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first
    changed = client.post("/score", json={**body, "amount": body["amount"] + 1})
    assert changed.status_code == 409
    assert changed.get_json()["details"][0]["field"] == "transactions[0].transaction_id"
    # a seeded (training) transaction cannot be scored again either
    seeded_id = int(history["transaction_id"].iloc[-1])
    seeded = client.post("/score", json={**body, "transaction_id": seeded_id})
    assert seeded.status_code == 409
    assert len(read_prediction_log(state_db)) == 1


def test_every_acknowledged_score_is_logged(client, held_out, state_db):
    """N requests (singles and batches) answered 200 -> exactly their rows in the log."""
    rows = [as_body(r) for r in held_out.iloc[:45].itertuples()]
    acknowledged = []
    for body in rows[:25]:
        response = client.post("/score", json=body)
        assert response.status_code == 200
        acknowledged += [r["transaction_id"] for r in response.get_json()["results"]]
    for start in range(25, 45, 5):
        response = client.post("/score", json={"transactions": rows[start : start + 5]})
        assert response.status_code == 200
        acknowledged += [r["transaction_id"] for r in response.get_json()["results"]]
    log = read_prediction_log(state_db)
    assert sorted(log["transaction_id"].tolist()) == sorted(acknowledged)
    assert len(acknowledged) == 45


def test_prediction_log_columns_and_values(client, held_out, state_db):
    rows = held_out.iloc[:3]
    response = client.post("/score", json={"transactions": [as_body(r) for r in rows.itertuples()]})
    results = response.get_json()["results"]
    log = read_prediction_log(state_db)
    names = feature_names(FeatureParams())
    assert list(log.columns) == [
        "transaction_id", "timestamp", "customer_id", "terminal_id", *names,
        "fraud_probability", "is_fraud_predicted", "model_version", "scored_at",
    ]
    assert log["transaction_id"].tolist() == rows["transaction_id"].tolist()
    assert (log["timestamp"].to_numpy() == rows["timestamp"].to_numpy()).all()
    assert log["customer_id"].dtype == np.int64
    assert log["customer_nb_tx_1d"].dtype == np.int64
    assert log["amount"].tolist() == rows["amount"].tolist()
    assert log["fraud_probability"].tolist() == [r["fraud_probability"] for r in results]
    assert log["is_fraud_predicted"].tolist() == [r["is_fraud_predicted"] for r in results]
    assert set(log["model_version"]) == {"1"}
    assert pd.api.types.is_datetime64_any_dtype(log["scored_at"])


def test_feedback_logs_labels_and_updates_the_history(client, held_out, state_db):
    body = as_body(held_out.iloc[0])
    client.post("/score", json=body)
    response = client.post(
        "/feedback",
        json={"labels": [{"transaction_id": body["transaction_id"], "is_fraud": 1},
                         {"transaction_id": 123_456_789_000, "is_fraud": 0}]},
    )
    assert response.status_code == 200
    assert response.get_json() == {"received": 2, "matched": 1}
    labels = read_label_log(state_db)
    assert list(labels.columns) == ["transaction_id", "is_fraud", "received_at"]
    assert labels["transaction_id"].tolist() == [body["transaction_id"], 123_456_789_000]
    with sqlite3.connect(state_db) as conn:
        label = conn.execute(
            "SELECT is_fraud FROM transactions WHERE transaction_id = ?", (body["transaction_id"],)
        ).fetchone()
    assert label == (1,)


def test_labels_reach_terminal_features_only_after_the_delay(client, held_out):
    """A label changes the terminal risk of transactions 7+ days after the labelled one, not sooner.

    The same probes are scored with the label set to fraud, then to legitimate: two days after, the
    terminal features do not move; eight days after, the risk moves by exactly one fraud in the
    window. Probes of a pair share a timestamp, so neither sees the other in its window."""
    row = held_out.iloc[0]
    base = {**as_body(row), "customer_id": "new-card", "amount": 10.0}
    labelled = 8_000_000_000
    soon = pd.Timestamp(row.timestamp) + pd.Timedelta(days=2)
    later = pd.Timestamp(row.timestamp) + pd.Timedelta(days=8)
    assert client.post("/score", json={**base, "transaction_id": labelled}).status_code == 200
    store = client.application.extensions["fraud"].get_store()

    def probe(tx_id: int, when: pd.Timestamp) -> pd.Series:
        body = {**base, "transaction_id": tx_id, "timestamp": when.isoformat()}
        response = client.post("/score", json=body)
        assert response.status_code == 200, response.data
        log = read_prediction_log(store.path)
        return log[log["transaction_id"] == tx_id].iloc[-1]

    probes = {}
    for n, fraud in enumerate((1, 0)):
        feedback = {"labels": [{"transaction_id": labelled, "is_fraud": fraud}]}
        assert client.post("/feedback", json=feedback).status_code == 200
        probes[fraud] = (probe(labelled + 1 + 2 * n, soon), probe(labelled + 2 + 2 * n, later))
    (soon_fraud, later_fraud), (soon_legit, later_legit) = probes[1], probes[0]
    for name in ("terminal_risk_30d", "terminal_nb_tx_30d", "terminal_risk_7d"):
        assert soon_fraud[name] == soon_legit[name], name  # not visible before the delay
    n_window = later_fraud["terminal_nb_tx_30d"]
    assert n_window == later_legit["terminal_nb_tx_30d"] >= 1
    assert later_fraud["terminal_risk_30d"] - later_legit["terminal_risk_30d"] == pytest.approx(1 / n_window)
    assert later_legit["terminal_risk_30d"] == pytest.approx(  # the label as it stands now
        _terminal_risk(store.path, row.terminal_id, later, FeatureParams()), abs=1e-12
    )


def _terminal_risk(db, terminal, when, params) -> float:
    delay = pd.Timedelta(days=params.label_delay_days)
    lo = (when - delay - pd.Timedelta(days=30)).value // 1000
    hi = (when - delay).value // 1000
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT is_fraud FROM transactions WHERE terminal_id = ? AND ts_us > ? AND ts_us <= ?",
            (int(terminal), lo, hi),
        ).fetchall()
    return sum(r[0] or 0 for r in rows) / len(rows) if rows else 0.0


def test_api_keys(registry, state_db, held_out):
    app = create_app(make_config(registry, state_db, api_keys="k-one, k-two"))
    client = app.test_client()
    body = as_body(held_out.iloc[0])
    missing = client.post("/score", json=body)
    assert missing.status_code == 401
    assert missing.get_json()["details"][0]["field"] == "X-API-Key"
    assert client.post("/score", json=body, headers={"X-API-Key": "k-three"}).status_code == 401
    assert client.post("/feedback", json={"labels": [{"transaction_id": 1, "is_fraud": 0}]}
                       ).status_code == 401
    assert client.post("/score", json=body, headers={"X-API-Key": "k-two"}).status_code == 200
    for path in ("/health", "/ready", "/metrics", "/openapi.json", "/"):
        assert client.get(path).status_code == 200, path
    assert "ApiKey" in client.get("/openapi.json").get_json()["components"]["securitySchemes"]


def test_admin_needs_a_configured_key(client):
    response = client.post("/admin/reload")
    assert response.status_code == 403
    assert "FRAUD_ADMIN_KEYS" in response.get_json()["error"]


def test_state_store_outage_is_a_503_and_recovers(registry, state_db, held_out):
    app = create_app(make_config(registry, state_db, state_busy_timeout_ms=50))
    client = app.test_client()
    rows = [as_body(r) for r in held_out.iloc[:2].itertuples()]
    blocker = sqlite3.connect(state_db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        response = client.post("/score", json=rows[0])
        assert response.status_code == 503
        assert "state store" in response.get_json()["error"]
        assert response.headers["Retry-After"] == "1"
        assert client.get("/ready").status_code == 503
        assert client.get("/health").status_code == 200
        fb = client.post("/feedback", json={"labels": [{"transaction_id": 1, "is_fraud": 0}]})
        assert fb.status_code == 503
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert client.post("/score", json=rows[0]).status_code == 200
    assert client.get("/ready").status_code == 200
    log = read_prediction_log(state_db)
    assert log["transaction_id"].tolist() == [rows[0]["transaction_id"]]


def test_state_store_that_cannot_be_opened(registry, tmp_path, held_out):
    blocked = tmp_path / "file"
    blocked.write_text("a file where a folder should be")
    app = create_app(make_config(registry, blocked / "state.db"))
    client = app.test_client()
    assert client.get("/health").status_code == 200
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert "state store" in " ".join(ready.get_json()["reasons"])
    response = client.post("/score", json=as_body(held_out.iloc[0]))
    assert response.status_code == 503
    assert response.get_json()["details"]


def test_health_ready_model_and_page(client):
    assert client.get("/health").get_json() == {"status": "ok"}
    ready = client.get("/ready").get_json()
    assert ready["ready"] is True and ready["model"]["version"] == "1"
    model = client.get("/model").get_json()
    assert model["champion"]["source_uri"] == "models:/fraud_detector@champion"
    assert model["champion"]["features"] == feature_names(FeatureParams())
    page = client.get("/")
    assert page.status_code == 200
    assert b"<form" in page.data and b"score" in page.data


def test_metrics_expose_requests_latency_scores_and_model(client, held_out):
    client.post("/score", json=as_body(held_out.iloc[0]))
    client.post("/score", json={"amount": 1})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'fraud_api_requests_total{endpoint="/score",method="POST",status="200"}' in text
    assert 'fraud_api_requests_total{endpoint="/score",method="POST",status="400"}' in text
    # both /score requests are counted in the latency histogram (its +Inf bucket holds every one)
    score_buckets = [
        line for line in text.splitlines()
        if line.startswith("fraud_api_request_duration_seconds_bucket{")
        and 'endpoint="/score"' in line and 'le="+Inf"' in line
    ]  # fmt: skip
    assert score_buckets, text
    assert sum(float(line.split()[-1]) for line in score_buckets) >= 2
    assert 'fraud_api_fraud_probability_bucket{le="0.5",model_version="1"}' in text
    assert 'fraud_api_model_info{name="fraud_detector",role="champion",version="1"} 1.0' in text
    assert "fraud_api_scored_transactions_total" in text


def test_openapi_document(client):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert {"/score", "/feedback", "/health", "/ready", "/metrics"} <= set(spec["paths"])
    tx = spec["components"]["schemas"]["Transaction"]
    assert tx["required"] == ["transaction_id", "timestamp", "customer_id", "terminal_id", "amount"]
    assert tx["additionalProperties"] is False


def test_seed_history_keeps_only_the_needed_days(tmp_path, history):
    from fraud_kedro.api import seed_history

    db = tmp_path / "seed.db"
    inserted = seed_history(db, history, {"customer_windows_days": [1, 7],
                                          "terminal_windows_days": [1], "terminal_label_delay_days": 7})
    last = history["timestamp"].max()
    expected = int((history["timestamp"] >= last - pd.Timedelta(days=8)).sum())
    assert inserted == expected
    assert seed_history(db, history, None, days=8) == 0  # idempotent
    store = open_store(db)
    assert store.is_seeded()
    store.close()


def test_first_start_seeds_from_the_training_data(registry, tmp_path, history, held_out):
    parquet = tmp_path / "validated.parquet"
    history.to_parquet(parquet)
    db = tmp_path / "fresh.db"
    app = create_app(make_config(registry, db, seed_path=str(parquet)))
    store = app.extensions["fraud"].get_store()
    assert store.count("transactions") > 0
    assert app.test_client().post("/score", json=as_body(held_out.iloc[0])).status_code == 200


def test_logs_of_a_fresh_store_are_empty_with_their_columns(tmp_path):
    db = tmp_path / "fresh.db"
    open_store(db).close()
    log = read_prediction_log(db)
    assert log.empty and {"transaction_id", "fraud_probability", "scored_at"} <= set(log.columns)
    assert list(read_label_log(db).columns) == ["transaction_id", "is_fraud", "received_at"]
    with pytest.raises(FileNotFoundError):
        read_prediction_log(tmp_path / "missing.db")


def test_cli_seed_prune_status(tmp_path, history, caplog):
    import logging

    from fraud_kedro.api.__main__ import main

    parquet = tmp_path / "validated.parquet"
    history.to_parquet(parquet)
    db = tmp_path / "cli.db"
    assert main(["seed", "--from", str(parquet), "--db", str(db)]) == 0
    store = open_store(db)
    before = store.count("transactions")
    assert before > 0
    assert main(["prune", "--db", str(db), "--keep-days", "10"]) == 0
    assert 0 < store.count("transactions") < before
    with caplog.at_level(logging.INFO):
        assert main(["status", "--db", str(db)]) == 0
    assert "prediction_log" in caplog.text
    assert main(["seed", "--from", str(tmp_path / "nope.parquet"), "--db", str(db)]) == 1
