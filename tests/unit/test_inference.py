"""The inference node (what the exported MLflow model runs)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from fraud_kedro.features import FeatureParams
from fraud_kedro.pipelines.data_processing.nodes import make_feature_spec
from fraud_kedro.pipelines.inference.nodes import ScoringInputError, predict_fraud


class AmountModel:
    """Fraud probability = amount / 1000, capped at 1; records what it was given."""

    def __init__(self) -> None:
        self.seen: np.ndarray | None = None

    def predict_proba(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        self.seen = X
        p = np.clip(X[:, 0] / 1000.0, 0, 1)
        return np.c_[1 - p, p]


@pytest.fixture(scope="module")
def spec(feature_params: FeatureParams) -> dict:
    return make_feature_spec(feature_params)


@pytest.fixture
def scoring_input(spec: dict) -> pd.DataFrame:
    df = pd.DataFrame({name: 1.0 for name in spec["features"]}, index=range(4))
    df["amount"] = [10.0, 500.0, 700.0, 0.0]
    df.insert(0, "transaction_id", [11, 12, 13, 14])
    df.insert(1, "timestamp", pd.Timestamp("2018-06-01"))
    df.insert(2, "customer_id", 1)
    df.insert(3, "terminal_id", 2)
    return df


def test_output_columns_and_decision(scoring_input: pd.DataFrame, spec: dict) -> None:
    out = predict_fraud(scoring_input, AmountModel(), spec, {"threshold": 0.5})
    assert list(out.columns) == ["transaction_id", "fraud_probability", "is_fraud_predicted"]
    assert list(out["transaction_id"]) == [11, 12, 13, 14]
    np.testing.assert_allclose(out["fraud_probability"], [0.01, 0.5, 0.7, 0.0])
    # the threshold is inclusive
    assert list(out["is_fraud_predicted"]) == [False, True, True, False]
    assert out["is_fraud_predicted"].dtype == bool
    assert out["fraud_probability"].between(0, 1).all()


def test_features_are_passed_in_the_spec_order(scoring_input: pd.DataFrame, spec: dict) -> None:
    model = AmountModel()
    shuffled = scoring_input[list(reversed(scoring_input.columns))].assign(extra_column="ignored")
    predict_fraud(shuffled, model, spec, {"threshold": 0.5})
    np.testing.assert_array_equal(model.seen, scoring_input[spec["features"]].to_numpy(float))


@pytest.mark.parametrize("missing", ["amount", "terminal_risk_7d", "customer_nb_tx_30d"])
def test_missing_feature_is_a_scoring_input_error(
    scoring_input: pd.DataFrame, spec: dict, missing: str
) -> None:
    with pytest.raises(ScoringInputError, match=missing):
        predict_fraud(scoring_input.drop(columns=missing), AmountModel(), spec, {"threshold": 0.5})


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, None])
def test_non_finite_feature_is_a_scoring_input_error(
    scoring_input: pd.DataFrame, spec: dict, value: object
) -> None:
    bad = scoring_input.copy()
    bad["terminal_risk_1d"] = bad["terminal_risk_1d"].astype(object)
    bad.loc[2, "terminal_risk_1d"] = value
    with pytest.raises(ScoringInputError, match="terminal_risk_1d"):
        predict_fraud(bad, AmountModel(), spec, {"threshold": 0.5})


def test_scoring_input_error_is_a_value_error() -> None:
    assert issubclass(ScoringInputError, ValueError)


def test_empty_input_gives_an_empty_answer(scoring_input: pd.DataFrame, spec: dict) -> None:
    out = predict_fraud(scoring_input.iloc[:0], AmountModel(), spec, {"threshold": 0.5})
    assert out.empty
    assert list(out.columns) == ["transaction_id", "fraud_probability", "is_fraud_predicted"]


def test_renamed_id_column_from_the_feature_params(
    scoring_input: pd.DataFrame, feature_params: FeatureParams
) -> None:
    params = replace(feature_params, columns=replace(feature_params.columns, transaction_id="tx"))
    spec = make_feature_spec(params)
    out = predict_fraud(
        scoring_input.rename(columns={"transaction_id": "tx"}), AmountModel(), spec, {"threshold": 0.5}
    )
    assert list(out["transaction_id"]) == [11, 12, 13, 14]


def test_non_numeric_feature_is_a_scoring_input_error(scoring_input: pd.DataFrame, spec: dict) -> None:
    bad = scoring_input.astype({"hour": object})
    bad.loc[1, "hour"] = "noon"
    with pytest.raises(ScoringInputError, match="'hour'"):
        predict_fraud(bad, AmountModel(), spec, {"threshold": 0.5})
