"""The model card's content and the global explanation node."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification

from fraud_kedro.model_card import ModelCardInputs, card_for_registry, fingerprint, render_model_card
from fraud_kedro.models import build_estimator
from fraud_kedro.pipelines.evaluation.explanations import explain_globally
from fraud_kedro.pipelines.evaluation.params import EvaluationParams


def _card() -> str:
    return render_model_card(ModelCardInputs(
        split_info={"train_start": "2018-06-01", "train_end": "2018-06-22", "train_rows": 1000,
                    "train_frauds": 9, "delay_days": 7, "test_start": "2018-06-29",
                    "test_end": "2018-07-06", "test_rows": 500, "test_frauds": 4},
        tuning_results={
            "selected": "lightgbm", "n_seeds": 3,
            "candidates": {"logistic_regression": {"best_params": {"C": 1}},
                           "lightgbm": {"best_params": {"n_estimators": 120}}},
            "selection": {"reason": "lightgbm has the best validation AP"},
        },
        model_params={"baseline": "logistic_regression",
                      "tuning": {"n_folds": 3, "n_trials": {"lightgbm": 12},
                                 "early_stopping_rounds": 30}},
        metrics={"test_average_precision": 0.71, "test_accuracy": 0.995, "test_rows": 500.0},
        slice_metrics=pd.DataFrame([
            {"slice": "all", "rows": 500, "frauds": 4, "roc_auc": 0.9, "average_precision": 0.7},
            {"slice": "scenario_2", "rows": 300, "frauds": 2, "roc_auc": 0.8,
             "average_precision": 0.55},
        ]),
        decision_threshold={"threshold": 0.02, "strategy": "cost", "cost_missed_fraud": 200.0,
                            "cost_alert_review": 5.0, "alerts_per_day": 100,
                            "validation_alerts_per_day": 80.0, "validation_recall": 0.7},
        quality_gate_verdict={"promote": True, "decided_at": "2026-12-01T22:00:00+00:00",
                              "reasons": ["no usable champion"]},
        candidate_comparison=pd.DataFrame([{"model": "lightgbm", "test_average_precision": 0.71}]),
        feature_spec={"features": ["amount", "terminal_risk_7d"]},
        data_versions={"train_window": "abc", "test_window": "def"},
    ))


def test_model_card_content() -> None:
    card = _card()
    for needed in ("2018-06-01", "2018-07-06", "`abc`", "lightgbm has the best validation AP",
                   "early stopping 30", "Threshold 0.0200", "cost of a missed fraud 200.0",
                   "scenario_2 (AP 0.550", "performance estimation", "PROMOTE to champion",
                   "no usable champion", "test_accuracy", "| scenario_2 |"):
        assert needed in card, needed
    assert card_for_registry(card, "7").startswith("Version 7.")


def test_fingerprint_is_a_content_hash() -> None:
    a = pd.DataFrame({"x": [1, 2], "y": [0.5, 1.5]})
    assert fingerprint(a) == fingerprint(a.copy())
    assert fingerprint(a) != fingerprint(a.assign(y=[0.5, 1.6]))


@pytest.mark.parametrize("kind", ["lightgbm", "logistic_regression"])
def test_global_explanations(kind: str) -> None:
    X, y = make_classification(n_samples=800, n_features=4, weights=[0.9], random_state=0)
    params = {"n_estimators": 20, "max_depth": 3} if kind == "lightgbm" else {}
    model = build_estimator(kind, params, 0).fit(X, y)
    names = ["amount", "hour", "terminal_risk_7d", "customer_nb_tx_1d"]
    test = pd.DataFrame(X, columns=names).assign(is_fraud=y)
    spec = {"features": names, "params": {}}
    table, fig = explain_globally(model, test, spec, EvaluationParams(seed=0, explain_rows=300))
    assert list(table.columns[:2]) == ["feature", "mean_abs_contribution"]
    assert sorted(table["feature"]) == sorted(names)
    assert table["mean_abs_contribution"].is_monotonic_decreasing
    assert (table["mean_abs_contribution"] > 0).all()
    assert len(fig.axes[0].collections) == len(names)
    assert np.isfinite(table["mean_contribution_fraud"]).all()
