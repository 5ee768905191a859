"""Nodes of the data_science pipeline: decision threshold, tuning, training, input example."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from fraud_kedro.features import FeatureParams
from fraud_kedro.models import PlattCalibratedClassifier
from fraud_kedro.pipelines.data_processing.nodes import build_model_input_table, make_feature_spec
from fraud_kedro.pipelines.data_science.nodes import (
    choose_threshold,
    make_input_example,
    split_data,
    train_candidates,
    train_model,
    tune_models,
)
from fraud_kedro.pipelines.data_science.params import ThresholdParams
from fraud_kedro.split import SplitParams

SPLIT = {"train_start": None, "train_days": 14, "delay_days": 7, "test_days": 7, "production_days": 21}
MODEL = {
    "seed": 42,
    "omp_threads": 1,
    "candidates": ["logistic_regression"],
    "baseline": "logistic_regression",
    "tuning": {
        "n_folds": 2,
        "n_trials": {"logistic_regression": 2},
        "timeout_seconds": None,
        "negative_sample_rate": 0.5,
        "study_prefix": "unit",
        "storage": None,
    },
    "calibration": {"method": "sigmoid", "cv": 3},
    "fixed_params": {"logistic_regression": {"class_weight": "balanced", "max_iter": 500}},
    "search_spaces": {
        "logistic_regression": {"C": {"type": "float", "low": 0.01, "high": 10.0, "log": True}}
    },
}


class ScoresModel:
    """A fitted model stand-in whose out-of-fold scores are given."""

    def __init__(self, oof: list[float]) -> None:
        self.oof_proba_ = np.asarray(oof)


class FixedModel:
    """A model without out-of-fold scores: ``predict_proba`` returns the first feature."""

    def predict_proba(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        return np.c_[1 - X[:, 0], X[:, 0]]


@pytest.fixture(scope="module")
def spec(feature_params: FeatureParams) -> dict:
    return make_feature_spec(feature_params)


@pytest.fixture(scope="module")
def threshold_train(spec: dict) -> pd.DataFrame:
    """Five transactions over two days, scores 0.9 .. 0.1 (stored as the ``amount`` feature)."""
    df = pd.DataFrame({name: 0.0 for name in spec["features"]}, index=range(5))
    df["amount"] = [0.9, 0.8, 0.7, 0.6, 0.1]
    df["is_fraud"] = [1, 1, 0, 1, 0]
    df["timestamp"] = pd.to_datetime(
        ["2018-04-01 00:00", "2018-04-01 12:00", "2018-04-02 00:00", "2018-04-02 12:00", "2018-04-03 00:00"]
    )
    return df


@pytest.fixture(scope="module")
def split(small_raw: pd.DataFrame, feature_params: FeatureParams) -> tuple:
    table = build_model_input_table(small_raw, feature_params)
    return split_data(table, SplitParams(**SPLIT), feature_params)


COST = {"strategy": "cost", "cost_missed_fraud": 10.0, "cost_alert_review": 1.0, "alerts_per_day": 1}


def _threshold(**overrides: object) -> ThresholdParams:
    """The ``threshold`` parameters as Kedro builds them, ``COST`` with ``overrides``."""
    return ThresholdParams(**{**COST, **overrides})


def test_cost_threshold_by_hand(threshold_train: pd.DataFrame, spec: dict) -> None:
    model = ScoresModel(threshold_train["amount"])
    result = choose_threshold(model, threshold_train, spec, _threshold())
    # alerts on the top 1..5: costs 21, 12, 13, 4, 5 -> the top 4, threshold 0.6
    assert result["threshold"] == pytest.approx(0.6)
    assert result["strategy"] == "cost"
    assert result["validation_recall"] == pytest.approx(1.0)
    assert result["validation_precision"] == pytest.approx(0.75)
    assert result["validation_alerts_per_day"] == pytest.approx(4 / 2)
    # the costs travel with the threshold (the evaluation uses them)
    assert (result["cost_missed_fraud"], result["cost_alert_review"]) == (10.0, 1.0)


def test_expensive_alerts_raise_the_threshold(threshold_train: pd.DataFrame, spec: dict) -> None:
    model = ScoresModel(threshold_train["amount"])
    cheap = choose_threshold(model, threshold_train, spec, _threshold())
    dear = choose_threshold(model, threshold_train, spec, _threshold(cost_alert_review=8.0))
    assert dear["threshold"] > cheap["threshold"]


def test_alert_budget_threshold_by_hand(threshold_train: pd.DataFrame, spec: dict) -> None:
    model = ScoresModel(threshold_train["amount"])
    result = choose_threshold(
        model, threshold_train, spec, _threshold(strategy="alert_budget", alerts_per_day=1)
    )
    # 2 days x 1 alert a day: the top 2 scores
    assert result["threshold"] == pytest.approx(0.8)
    assert result["validation_alerts_per_day"] == pytest.approx(1.0)
    assert result["validation_recall"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("per_day", [0.1, 0])
def test_alert_budget_below_one_alert_does_not_alert_on_everything(
    threshold_train: pd.DataFrame, spec: dict, per_day: float
) -> None:
    model = ScoresModel(threshold_train["amount"])
    result = choose_threshold(
        model, threshold_train, spec, _threshold(strategy="alert_budget", alerts_per_day=per_day)
    )
    assert result["threshold"] == pytest.approx(0.9)


def test_alert_budget_larger_than_the_data(threshold_train: pd.DataFrame, spec: dict) -> None:
    model = ScoresModel(threshold_train["amount"])
    result = choose_threshold(
        model, threshold_train, spec, _threshold(strategy="alert_budget", alerts_per_day=1000)
    )
    assert result["threshold"] == pytest.approx(0.1)


def test_threshold_without_oof_scores_uses_predict_proba(threshold_train: pd.DataFrame, spec: dict) -> None:
    result = choose_threshold(FixedModel(), threshold_train, spec, _threshold())
    assert result["threshold"] == pytest.approx(0.6)


def test_unknown_threshold_strategy(threshold_train: pd.DataFrame, spec: dict) -> None:
    with pytest.raises(ValueError, match="strategy"):
        choose_threshold(ScoresModel([0.5] * 5), threshold_train, spec, _threshold(strategy="f1"))


def test_tuning_is_seeded_and_stays_in_the_history(split: tuple, spec: dict) -> None:
    history, train, _, _, info = split
    first = tune_models(history, info, spec, SplitParams(**SPLIT), MODEL)
    results, trials, history_plot, importance_plot = first
    assert results["selected"] == "logistic_regression"
    assert results["n_folds"] == 2
    cand = results["candidates"]["logistic_regression"]
    assert cand["n_trials"] == 2 and len(trials) == 2
    assert cand["best_params"]["class_weight"] == "balanced"
    assert 0.01 <= cand["best_params"]["C"] <= 10.0
    assert 0 < cand["validation_average_precision"] <= 1
    assert history_plot is not None and importance_plot is not None
    again = tune_models(history, info, spec, SplitParams(**SPLIT), copy.deepcopy(MODEL))[0]
    assert again["candidates"]["logistic_regression"]["best_params"] == cand["best_params"]
    assert (
        again["candidates"]["logistic_regression"]["validation_average_precision"]
        == (cand["validation_average_precision"])
    )


def test_train_model_and_candidates(split: tuple, spec: dict) -> None:
    _, train, test, _, _ = split
    tuning = {
        "selected": "logistic_regression",
        "candidates": {
            "logistic_regression": {"best_params": {"C": 1.0, "max_iter": 500, "class_weight": "balanced"}}
        },
    }
    model = train_model(train, spec, tuning, MODEL)
    assert isinstance(model, PlattCalibratedClassifier)
    assert len(model.oof_proba_) == len(train)
    proba = model.predict_proba(test[spec["features"]].to_numpy(float))[:, 1]
    assert ((proba >= 0) & (proba <= 1)).all()
    raw = train_model(train, spec, tuning, {**MODEL, "calibration": {"method": "none", "cv": 3}})
    assert not isinstance(raw, PlattCalibratedClassifier)
    candidates = train_candidates(train, spec, tuning, MODEL)
    assert set(candidates) == {"logistic_regression"}
    assert hasattr(candidates["logistic_regression"], "predict_proba")


def test_input_example_has_keys_and_features_but_no_label(split: tuple, spec: dict) -> None:
    _, _, test, _, _ = split
    example = make_input_example(test, spec, n_rows=7)
    assert list(example.columns) == [
        "transaction_id",
        "timestamp",
        "customer_id",
        "terminal_id",
        *spec["features"],
    ]
    assert len(example) == 7
    assert "is_fraud" not in example and "fraud_scenario" not in example
