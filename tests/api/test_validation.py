"""Bad input: a 4xx JSON error naming the field, never a 5xx, nothing written to the state store."""

from __future__ import annotations

import json

import pytest
from conftest import make_config

from fraud_kedro.api import create_app
from fraud_kedro.store import open_store

TX = {
    "transaction_id": 9_000_000_001,
    "timestamp": "2018-05-25T12:00:00",
    "customer_id": 17,
    "terminal_id": 42,
    "amount": 57.3,
}


def _without(key: str) -> dict:
    return {k: v for k, v in TX.items() if k != key}


BAD_SCORE_BODIES = [
    ("missing amount", _without("amount"), "amount"),
    ("missing timestamp", _without("timestamp"), "timestamp"),
    ("unknown field", {**TX, "colour": "red"}, "colour"),
    ("label sent", {**TX, "is_fraud": 1}, "is_fraud"),
    ("amount text", {**TX, "amount": "abc"}, "amount"),
    ("amount null", {**TX, "amount": None}, "amount"),
    ("amount boolean", {**TX, "amount": True}, "amount"),
    ("negative amount", {**TX, "amount": -5}, "amount"),
    ("amount over the cap", {**TX, "amount": 1e13}, "amount"),
    ("bad timestamp", {**TX, "timestamp": "yesterday"}, "timestamp"),
    ("timestamp number", {**TX, "timestamp": 1527249600}, "timestamp"),
    ("timestamp date only", {**TX, "timestamp": "2018-05-25"}, "timestamp"),
    ("impossible date", {**TX, "timestamp": "2018-02-30T00:00:00"}, "timestamp"),
    ("year out of range", {**TX, "timestamp": "1815-06-18T11:00:00"}, "timestamp"),
    ("id as object", {**TX, "transaction_id": {"a": 1}}, "transaction_id"),
    ("id as string", {**TX, "transaction_id": "9000000001"}, "transaction_id"),
    ("id as float", {**TX, "transaction_id": 1.5}, "transaction_id"),
    ("id negative", {**TX, "transaction_id": -1}, "transaction_id"),
    ("id over int64", {**TX, "transaction_id": 2**63}, "transaction_id"),
    ("id boolean", {**TX, "transaction_id": True}, "transaction_id"),
    ("customer as list", {**TX, "customer_id": [17]}, "customer_id"),
    ("customer blank", {**TX, "customer_id": "   "}, "customer_id"),
    ("customer float", {**TX, "customer_id": 1.5}, "customer_id"),
    ("terminal null", {**TX, "terminal_id": None}, "terminal_id"),
    ("terminal too long", {**TX, "terminal_id": "x" * 500}, "terminal_id"),
    ("empty object", {}, "transaction_id"),
    ("empty batch", {"transactions": []}, "transactions"),
    ("batch not a list", {"transactions": "x"}, "transactions"),
    ("batch with a bad item", {"transactions": [TX, {**TX, "transaction_id": 2, "amount": -1}]},
     "transactions[1].amount"),
    ("batch with duplicate ids", {"transactions": [TX, TX]}, "transactions[1].transaction_id"),
    ("batch with an extra key", {"transactions": [TX], "priority": 1}, "priority"),
    ("batch item not an object", {"transactions": [1]}, "transactions[0]"),
    ("list body", [TX], "body"),
    ("string body", "x", "body"),
    ("null body", None, "body"),
]


def _counts(db) -> tuple[int, int]:
    store = open_store(db)
    try:
        return store.count("transactions"), store.count("prediction_log")
    finally:
        store.close()


@pytest.mark.parametrize(("case", "body", "field"), BAD_SCORE_BODIES, ids=[c[0] for c in BAD_SCORE_BODIES])
def test_bad_score_body_is_a_4xx_naming_the_field(client, state_db, case, body, field):
    before = _counts(state_db)
    response = client.post("/score", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 400, response.data
    payload = response.get_json()
    assert set(payload) == {"error", "details"}
    assert any(d["field"] == field for d in payload["details"]), payload
    assert field in payload["error"]
    assert _counts(state_db) == before


@pytest.mark.parametrize(
    ("case", "raw", "field"),
    [
        ("NaN amount", '{"transaction_id": 1, "timestamp": "2018-05-25T12:00:00", '
         '"customer_id": 1, "terminal_id": 1, "amount": NaN}', "amount"),
        ("Infinity amount", '{"transaction_id": 1, "timestamp": "2018-05-25T12:00:00", '
         '"customer_id": 1, "terminal_id": 1, "amount": Infinity}', "amount"),
        ("1e400 amount", '{"transaction_id": 1, "timestamp": "2018-05-25T12:00:00", '
         '"customer_id": 1, "terminal_id": 1, "amount": 1e400}', "amount"),
        ("-Infinity id", '{"transaction_id": -Infinity, "timestamp": "2018-05-25T12:00:00", '
         '"customer_id": 1, "terminal_id": 1, "amount": 1}', "transaction_id"),
        ("not JSON", "{oops", "body"),
        ("empty body", "", "body"),
        ("deep nesting", "[" * 100_000 + "]" * 100_000, "body"),
    ],
)
def test_malformed_json_is_a_400(client, state_db, case, raw, field):
    before = _counts(state_db)
    response = client.post("/score", data=raw, content_type="application/json")
    assert response.status_code == 400
    assert any(d["field"] == field for d in response.get_json()["details"])
    assert _counts(state_db) == before


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain", None]
)
def test_non_json_content_type_is_a_415(client, content_type):
    response = client.post("/score", data=json.dumps(TX), content_type=content_type)
    assert response.status_code == 415
    assert response.get_json()["details"][0]["field"] == "Content-Type"


def test_batch_over_the_maximum_is_refused(registry, state_db):
    client = create_app(make_config(registry, state_db, max_batch=3)).test_client()
    batch = [{**TX, "transaction_id": i} for i in range(4)]
    response = client.post("/score", json={"transactions": batch})
    assert response.status_code == 400
    assert response.get_json()["details"][0]["field"] == "transactions"
    assert _counts(state_db)[1] == 0
    assert client.post("/score", json={"transactions": batch[:3]}).status_code == 200


def test_body_over_the_size_cap_is_a_413(registry, state_db):
    client = create_app(make_config(registry, state_db, max_body_bytes=2048)).test_client()
    batch = [{**TX, "transaction_id": i} for i in range(100)]
    response = client.post("/score", json={"transactions": batch})
    assert response.status_code == 413
    payload = response.get_json()
    assert payload["details"][0]["field"] == "body"
    assert _counts(state_db)[1] == 0


BAD_FEEDBACK = [
    ("label 7", {"labels": [{"transaction_id": 1, "is_fraud": 7}]}, "labels[0].is_fraud"),
    ("label text", {"labels": [{"transaction_id": 1, "is_fraud": "1"}]}, "labels[0].is_fraud"),
    ("label boolean", {"labels": [{"transaction_id": 1, "is_fraud": True}]}, "labels[0].is_fraud"),
    ("label null", {"labels": [{"transaction_id": 1, "is_fraud": None}]}, "labels[0].is_fraud"),
    ("missing id", {"labels": [{"is_fraud": 1}]}, "labels[0].transaction_id"),
    ("id text", {"labels": [{"transaction_id": "a", "is_fraud": 1}]}, "labels[0].transaction_id"),
    ("unknown field", {"labels": [{"transaction_id": 1, "is_fraud": 1, "x": 0}]}, "labels[0].x"),
    ("duplicate id", {"labels": [{"transaction_id": 1, "is_fraud": 1}] * 2},
     "labels[1].transaction_id"),
    ("empty labels", {"labels": []}, "labels"),
    ("labels not a list", {"labels": {"transaction_id": 1}}, "labels"),
    ("no labels key", {"label": []}, "labels"),
    ("list body", [{"transaction_id": 1, "is_fraud": 1}], "body"),
]


@pytest.mark.parametrize(("case", "body", "field"), BAD_FEEDBACK, ids=[c[0] for c in BAD_FEEDBACK])
def test_bad_feedback_is_a_400_and_writes_nothing(client, state_db, case, body, field):
    response = client.post("/feedback", json=body)
    assert response.status_code == 400
    assert any(d["field"] == field for d in response.get_json()["details"])
    store = open_store(state_db)
    assert store.count("label_log") == 0
    store.close()


def test_unknown_route_and_method_are_json(client):
    response = client.get("/nope")
    assert response.status_code == 404
    assert "error" in response.get_json()
    response = client.get("/score")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert "error" in response.get_json()


def test_many_bad_items_are_all_counted_and_none_crashes(client):
    """More bad items than reported details (found by schemathesis): still a 400."""
    labels = [{"transaction_id": i} for i in range(80)]
    response = client.post("/feedback", json={"labels": labels})
    assert response.status_code == 400
    payload = response.get_json()
    assert len(payload["details"]) == 50
    assert "(and 79 more)" in payload["error"]
    batch = [{"amount": 1} for _ in range(60)]
    assert client.post("/score", json={"transactions": batch}).status_code == 400
