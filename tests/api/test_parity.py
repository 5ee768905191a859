"""Online = batch: a held-out day scored through the API, one transaction at a time in time order,
gets the probabilities the exported inference pipeline gives on the batch features of that day."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
from conftest import HELD_OUT_DAY
from model_factory import FEATURE_PARAMS
from test_scoring import as_body

from fraud_kedro.api import read_prediction_log
from fraud_kedro.features import FeatureParams, compute_features, feature_names


def test_held_out_day_online_equals_batch(client, state_db, transactions, held_out):
    params = FeatureParams(**FEATURE_PARAMS)
    # batch: features of the whole table up to the end of the day, scored by the exported model
    # through MLflow (KedroPipelineModel.predict runs the inference pipeline)
    upto = transactions[transactions["timestamp"] < HELD_OUT_DAY + pd.Timedelta(days=1)]
    batch_features = compute_features(upto, params)
    day = batch_features[batch_features["transaction_id"].isin(held_out["transaction_id"])]
    day = day.set_index("transaction_id").loc[held_out["transaction_id"]].reset_index()
    expected = mlflow.pyfunc.load_model("models:/fraud_detector@champion").predict(day)

    # online: one request per transaction, in time order
    online = []
    for row in held_out.itertuples():
        response = client.post("/score", json=as_body(row))
        assert response.status_code == 200, response.data
        online.append(response.get_json()["results"][0])

    assert len(online) == len(held_out) > 100
    got = np.array([r["fraud_probability"] for r in online])
    np.testing.assert_allclose(got, expected["fraud_probability"].to_numpy(), rtol=0, atol=1e-9)
    assert [r["is_fraud_predicted"] for r in online] == expected["is_fraud_predicted"].tolist()
    assert np.ptp(got) > 0.1  # the day has both clear and suspicious transactions

    # and the logged features are the batch features
    log = read_prediction_log(state_db)
    names = feature_names(params)
    np.testing.assert_allclose(
        log[names].to_numpy(dtype=float), day[names].to_numpy(dtype=float), rtol=0, atol=1e-9
    )
