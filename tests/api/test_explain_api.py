"""POST /score?explain=true: reasons in the answer and in the prediction log."""

from __future__ import annotations

import json
import math
import sqlite3

import numpy as np
from test_scoring import as_body


def test_explain_true_adds_reasons_single_and_batch(client, held_out, state_db):
    one = client.post("/score?explain=true", json=as_body(held_out.iloc[0]))
    assert one.status_code == 200, one.get_json()
    [result] = one.get_json()["results"]
    reasons = result["reasons"]
    assert 1 <= len(reasons) <= 5
    assert set(reasons[0]) == {"feature", "description", "value", "contribution"}
    magnitudes = [abs(r["contribution"]) for r in reasons]
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert all(math.isfinite(r["contribution"]) for r in reasons)

    batch = [as_body(r) for r in held_out.iloc[1:6].itertuples()]
    many = client.post("/score?explain=1", json={"transactions": batch})
    assert many.status_code == 200
    assert all(len(r["reasons"]) >= 1 for r in many.get_json()["results"])

    plain = client.post("/score", json=as_body(held_out.iloc[7]))
    assert "reasons" not in plain.get_json()["results"][0]  # unchanged without explain
    with sqlite3.connect(state_db) as conn:
        logged = dict(conn.execute("SELECT transaction_id, reasons FROM prediction_log"))
    assert json.loads(logged[int(held_out.iloc[0].transaction_id)]) == reasons
    assert logged[int(held_out.iloc[7].transaction_id)] is None


def test_explain_false_and_bad_values(client, held_out):
    ok = client.post("/score?explain=false", json=as_body(held_out.iloc[0]))
    assert ok.status_code == 200 and "reasons" not in ok.get_json()["results"][0]
    bad = client.post("/score?explain=maybe", json=as_body(held_out.iloc[1]))
    assert bad.status_code == 400
    assert bad.get_json()["details"][0]["field"] == "explain"


def test_reasons_add_up_to_the_score(registry, held_out, client):
    """Every contribution (top_k = all) plus the base value = the served log-odds."""
    from fraud_kedro.explain import contributions

    estimator = registry["estimator"]
    from model_factory import FEATURE_PARAMS

    from fraud_kedro.features import FeatureParams, compute_features, feature_names

    params = FeatureParams(**FEATURE_PARAMS)
    x = compute_features(held_out.head(20), params)[feature_names(params)].to_numpy(float)
    c = contributions(estimator, x)
    p = np.clip(estimator.predict_proba(x)[:, 1], 1e-6, 1 - 1e-6)
    np.testing.assert_allclose(c.base + c.values.sum(axis=1), np.log(p / (1 - p)), atol=1e-6)
