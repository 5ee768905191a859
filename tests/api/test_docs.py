"""``/docs`` and ``/openapi.json``: the document comes from the pydantic models, the page is offline."""

from __future__ import annotations

import re

from conftest import make_config

from fraud_kedro.api import create_app, schemas

EXTERNAL = re.compile(r"""\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)
TX = {"transaction_id": 9_100_000_001, "timestamp": "2018-05-25T12:00:00", "customer_id": 17,
      "terminal_id": 42, "amount": 57.3}  # fmt: skip


def test_openapi_31_is_generated_from_the_models(client):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"] == "3.1.0"
    components = spec["components"]["schemas"]
    models = schemas.request_models(1000, 1e9)
    assert components["Transaction"]["properties"] == models.Transaction.model_json_schema()["properties"]
    assert {"ScoreBatch", "FeedbackRequest", "ScoreResponse", "ScoreResult", "Reason", "Error"} <= set(
        components
    )
    # room for explanations: an optional query flag and optional reasons on each result
    assert spec["paths"]["/score"]["post"]["parameters"][0]["name"] == "explain"
    assert "reasons" not in components["ScoreResult"]["required"]


def test_the_limits_of_the_configuration_are_in_the_document(registry, state_db):
    client = create_app(make_config(registry, state_db, max_batch=7, max_amount=500.0)).test_client()
    components = client.get("/openapi.json").get_json()["components"]["schemas"]
    assert components["ScoreBatch"]["properties"]["transactions"]["maxItems"] == 7
    assert components["Transaction"]["properties"]["amount"]["maximum"] == 500.0
    answer = client.post("/score", json={**TX, "amount": 501})
    assert answer.status_code == 400 and answer.get_json()["details"][0]["field"] == "amount"


def test_openapi_30_rendering_for_swagger_ui(client):
    spec = client.get("/openapi.json?openapi=3.0").get_json()
    assert spec["openapi"] == "3.0.3"
    text = str(spec)
    assert "'type': 'null'" not in text and "examples" not in text
    assert spec["components"]["schemas"]["Ready"]["properties"]["model"]["nullable"] is True


def test_responses_match_their_models(client):
    answer = client.post("/score", json=TX)
    assert answer.status_code == 200
    schemas.ScoreResponse.model_validate(answer.get_json())
    bad = client.post("/score", json={**TX, "amount": -1})
    schemas.Error.model_validate(bad.get_json())
    label = {"transaction_id": TX["transaction_id"], "is_fraud": 1}
    feedback = client.post("/feedback", json={"labels": [label]})
    schemas.FeedbackResponse.model_validate(feedback.get_json())
    schemas.Ready.model_validate(client.get("/ready").get_json())


def test_explain_flag_is_validated(client):
    other = {**TX, "transaction_id": 9_100_000_002}
    assert client.post("/score?explain=false", json=other).status_code == 200
    answer = client.post("/score?explain=maybe", json=TX)
    assert answer.status_code == 400
    assert answer.get_json()["details"] == [{"field": "explain", "message": "must be true or false"}]


def test_docs_page_serves_swagger_ui_from_the_package(client):
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert EXTERNAL.findall(html) == []
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(assets) == 5
    for url in assets:
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert len(answer.data) > 100
    assert b"openapi.json?openapi=3.0" in client.get("/docs/init.js").data
    assert client.get("/docs/assets/index.html").status_code == 404
    assert client.get("/docs/assets/..%2Fpyproject.toml").status_code == 404
