"""Nodes of the evaluation pipeline: metrics, quality gate, the champion's metrics."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from fraud_kedro.features import FeatureParams
from fraud_kedro.pipelines.data_processing.nodes import make_feature_spec
from fraud_kedro.pipelines.evaluation.nodes import (
    compute_metrics,
    evaluate_champion,
    quality_gate,
    score_table,
)
from fraud_kedro.pipelines.evaluation.params import EvaluationParams, QualityGateParams

GATE = QualityGateParams(model_name="fraud_detector", min_average_precision=0.3, min_improvement=0.02)
EVALUATION = EvaluationParams(
    seed=0, card_precision_k=2, amount_bands=[20, 100], permutation_rows=100, permutation_repeats=1
)


@pytest.fixture(scope="module")
def spec(feature_params: FeatureParams) -> dict:
    return make_feature_spec(feature_params)


@pytest.fixture(scope="module")
def reference(spec: dict) -> pd.DataFrame:
    """Eight scored test transactions over two days."""
    df = pd.DataFrame({name: 0 for name in spec["features"]}, index=range(8))
    df["transaction_id"] = range(8)
    df["customer_id"] = [1, 2, 3, 4, 1, 2, 3, 4]
    df["terminal_id"] = 9
    df["timestamp"] = pd.to_datetime(["2018-06-01 10:00"] * 4 + ["2018-06-02 10:00"] * 4)
    df["amount"] = [5.0, 50.0, 150.0, 500.0, 5.0, 50.0, 150.0, 500.0]
    df["is_night"] = [0, 1, 0, 1, 0, 1, 0, 1]
    df["is_fraud"] = [1, 0, 0, 0, 0, 0, 1, 0]
    df["fraud_scenario"] = [2, 0, 0, 0, 0, 0, 3, 0]
    df["fraud_probability"] = [0.9, 0.2, 0.1, 0.3, 0.4, 0.1, 0.8, 0.2]
    return df


class ChampionStandIn:
    """A pyfunc-like model: ``predict`` returns the inference pipeline's output."""

    def __init__(self, proba: np.ndarray | None = None, fail: bool = False) -> None:
        self.proba, self.fail, self.seen = proba, fail, None

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        if self.fail:
            raise ValueError("schema mismatch: column 'amount_eur' missing")
        self.seen = df
        return pd.DataFrame({"transaction_id": df["transaction_id"], "fraud_probability": self.proba})


# ---- quality gate ------------------------------------------------------------------------------


def test_first_model_above_the_minimum_is_promoted() -> None:
    verdict = quality_gate({"test_average_precision": 0.5}, {}, GATE)
    assert verdict["promote"] is True
    assert verdict["champion_average_precision"] is None
    assert verdict["challenger_average_precision"] == 0.5
    assert any("no usable champion" in r for r in verdict["reasons"])
    assert verdict["gate_min_average_precision"] == 0.3 and verdict["gate_model_name"] == "fraud_detector"
    assert "decided_at" in verdict


def test_model_exactly_at_the_minimum_is_promoted() -> None:
    assert quality_gate({"test_average_precision": 0.3}, {}, GATE)["promote"] is True


def test_first_model_below_the_minimum_is_not_promoted() -> None:
    verdict = quality_gate({"test_average_precision": 0.29}, {}, GATE)
    assert verdict["promote"] is False
    assert any("< minimum 0.3" in r for r in verdict["reasons"])


@pytest.mark.parametrize(
    ("challenger", "champion", "promote"),
    [(0.60, 0.59, False), (0.61, 0.60, False), (0.63, 0.60, True), (0.70, 0.50, True), (0.40, 0.60, False)],
)
def test_champion_must_be_beaten_by_the_margin(challenger: float, champion: float, promote: bool) -> None:
    verdict = quality_gate({"test_average_precision": challenger}, {"test_average_precision": champion}, GATE)
    assert verdict["promote"] is promote
    assert verdict["champion_average_precision"] == champion
    assert any("champion" in r for r in verdict["reasons"])
    if not promote:
        assert any("does not beat" in r for r in verdict["reasons"])


def test_below_minimum_is_rejected_even_when_it_beats_the_champion() -> None:
    verdict = quality_gate({"test_average_precision": 0.25}, {"test_average_precision": 0.1}, GATE)
    assert verdict["promote"] is False
    assert len(verdict["reasons"]) == 2


def test_tie_with_zero_margin_keeps_the_champion() -> None:
    gate = replace(GATE, min_improvement=0.0)
    verdict = quality_gate({"test_average_precision": 0.5}, {"test_average_precision": 0.5}, gate)
    assert verdict["promote"] is False
    assert any("does not beat" in r for r in verdict["reasons"])


def test_an_unusable_champion_counts_as_none() -> None:
    verdict = quality_gate({"test_average_precision": 0.5}, {"error": "cannot score"}, GATE)
    assert verdict["promote"] is True and verdict["champion_average_precision"] is None


# ---- the champion's metrics --------------------------------------------------------------------


def test_no_champion_gives_no_metrics(reference: pd.DataFrame, spec: dict) -> None:
    assert evaluate_champion(None, reference, spec) == {}


def test_champion_is_scored_on_the_same_test_window(reference: pd.DataFrame, spec: dict) -> None:
    champion = ChampionStandIn(reference["fraud_probability"].to_numpy())
    metrics = evaluate_champion(champion, reference, spec)
    expected = compute_metrics(
        reference, {"threshold": 0.5, "cost_missed_fraud": 1, "cost_alert_review": 1}, spec, EVALUATION
    )[0]
    assert metrics["test_average_precision"] == pytest.approx(expected["test_average_precision"])
    # the champion sees the inference input: keys and features, never the label
    assert list(champion.seen.columns) == [
        "transaction_id",
        "timestamp",
        "customer_id",
        "terminal_id",
        *spec["features"],
    ]


def test_champion_that_cannot_score_is_reported_not_raised(reference: pd.DataFrame, spec: dict) -> None:
    metrics = evaluate_champion(ChampionStandIn(fail=True), reference, spec)
    assert "amount_eur" in metrics["error"]
    assert quality_gate({"test_average_precision": 0.5}, metrics, GATE)["promote"] is True


# ---- metrics -----------------------------------------------------------------------------------


def test_compute_metrics_contract_names_and_slices(reference: pd.DataFrame, spec: dict) -> None:
    threshold = {"threshold": 0.5, "cost_missed_fraud": 100.0, "cost_alert_review": 2.0}
    metrics, mlflow_metrics, slices = compute_metrics(reference, threshold, spec, EVALUATION)
    for name in (
        "test_roc_auc",
        "test_average_precision",
        "test_card_precision_at_2",
        "test_precision",
        "test_recall",
        "test_f1",
    ):
        assert name in metrics
    assert metrics["test_recall"] == 1.0 and metrics["test_precision"] == 1.0
    # day 1: cards 1 (fraud, 0.9), 4 (0.3) -> 1/2; day 2: 3 (fraud, 0.8), 1 (0.4) -> 1/2
    assert metrics["test_card_precision_at_2"] == pytest.approx(0.5)
    assert metrics["test_expected_cost"] == pytest.approx(2 * 2.0)
    assert metrics["test_rows"] == 8 and metrics["test_frauds"] == 2
    assert mlflow_metrics["test_roc_auc"] == {"value": metrics["test_roc_auc"], "step": 0}
    assert set(slices["slice"]) >= {
        "all",
        "amount_0_20",
        "amount_20_100",
        "amount_100_inf",
        "night",
        "day",
        "scenario_2",
        "scenario_3",
    }
    row = slices.set_index("slice").loc["scenario_2"]
    assert (row["rows"], row["frauds"]) == (7, 1)


def test_non_finite_metrics_are_not_sent_to_mlflow(reference: pd.DataFrame, spec: dict) -> None:
    one_class = reference.assign(is_fraud=0, fraud_scenario=0)
    metrics, mlflow_metrics, _ = compute_metrics(
        one_class, {"threshold": 0.5, "cost_missed_fraud": 1, "cost_alert_review": 1}, spec, EVALUATION
    )
    assert np.isnan(metrics["test_roc_auc"])
    assert "test_roc_auc" not in mlflow_metrics and "test_precision" in mlflow_metrics


def test_score_table_appends_probability_and_decision(reference: pd.DataFrame, spec: dict) -> None:
    class Constant:
        def predict_proba(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
            return np.c_[np.full(len(X), 0.4), np.full(len(X), 0.6)]

    table = reference.drop(columns="fraud_probability")
    out = score_table(table, Constant(), spec, {"threshold": 0.6})
    assert list(out.columns) == [*table.columns, "fraud_probability", "is_fraud_predicted"]
    assert (out["fraud_probability"] == 0.6).all() and out["is_fraud_predicted"].all()
    assert "fraud_probability" not in table
