"""One fact, one place: the contract's metrics, label delay and model name, and the error mapping."""

from __future__ import annotations

import math

import numpy as np
import pytest
from flask import Flask

from fraud_kedro import contract
from fraud_kedro.api.errors import STATUS, register_error_handlers
from fraud_kedro.api.scoring_errors import (
    InvalidPredictions,
    NoModelInService,
    StoreUnavailable,
    TransactionConflict,
)
from fraud_kedro.features import FeatureParams
from fraud_kedro.metrics import classification_metrics, threshold_metrics
from fraud_kedro.monitoring.chunk_metrics import realized_metrics
from fraud_kedro.monitoring.params import MonitoringParams
from fraud_kedro.pipelines.data_processing.nodes import make_feature_spec
from fraud_kedro.pipelines.monitoring.nodes import resolve_monitoring_params
from fraud_kedro.retraining import retraining_params


def test_precision_without_a_predicted_positive_is_zero_in_evaluation_and_monitoring() -> None:
    y, score = np.array([0, 1, 0, 1]), np.array([0.1, 0.2, 0.3, 0.4])
    evaluation = classification_metrics(y, score, threshold=0.9)
    monitoring = realized_metrics(y, score, np.zeros(4), contract.THRESHOLD_METRICS)
    assert evaluation["test_precision"] == monitoring["precision"] == 0.0
    assert evaluation["test_recall"] == monitoring["recall"] == 0.0
    nothing = threshold_metrics(np.zeros(3), np.zeros(3))
    assert nothing["precision"] == 0.0 and math.isnan(nothing["recall"]) and math.isnan(nothing["f1"])
    assert threshold_metrics([1, 0, 1], [1, 1, 0]) == {"precision": 0.5, "recall": 0.5, "f1": 0.5}


def test_the_label_delay_is_one_parameter() -> None:
    p = resolve_monitoring_params(MonitoringParams(source="batch"), 3)
    assert p.label_delay_days == 3.0
    with pytest.raises(ValueError, match=r"monitoring\.label_delay_days.*split\.delay_days"):
        resolve_monitoring_params(MonitoringParams(label_delay_days=14), 14)
    spec = make_feature_spec(FeatureParams(customer_windows_days=[1], terminal_windows_days=[1]), 5)
    assert spec["params"]["terminal_label_delay_days"] == 5
    with pytest.raises(ValueError, match=r"features\.terminal_label_delay_days.*split\.delay_days"):
        make_feature_spec(FeatureParams(terminal_label_delay_days=7), 7)


def test_model_name_and_uri_come_from_the_contract() -> None:
    assert contract.model_uri() == f"models:/{contract.MODEL_NAME}@{contract.CHAMPION}"
    assert contract.card_precision_metric(100) == "test_card_precision_at_100"
    assert contract.RAW_COLUMNS[:5] == contract.TRANSACTION_FIELDS


def test_retraining_trains_on_the_latest_window_without_changing_the_run_params() -> None:
    given = {"split": {"train_days": 7}, "monitoring": {"source": "service_log"}}
    out = retraining_params(given)
    assert out["split"] == {"train_days": 7, "production_days": 0}
    assert given["split"] == {"train_days": 7} and out["monitoring"] == given["monitoring"]


@pytest.mark.parametrize(
    ("error", "status", "retry_after", "field"),
    [
        (StoreUnavailable(OSError("disk")), 503, "1", "state_store"),
        (NoModelInService(None), 503, "5", "model"),
        (InvalidPredictions(ValueError("nan")), 500, None, None),
        (TransactionConflict([{"field": "transactions[0].transaction_id", "message": "x"}]), 409,
         None, "transactions[0].transaction_id"),
    ],
)  # fmt: skip
def test_domain_errors_map_to_status_codes_in_one_place(error, status, retry_after, field) -> None:
    assert STATUS[type(error)] == status
    app = Flask(__name__)
    register_error_handlers(app)

    @app.post("/x")
    def _raise():
        raise error

    response = app.test_client().post("/x")
    assert response.status_code == status
    assert response.headers.get("Retry-After") == retry_after
    body = response.get_json()
    assert body["error"] == error.error
    if field is not None:
        assert body["details"][0]["field"] == field
