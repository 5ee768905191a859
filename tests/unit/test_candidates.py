"""LightGBM/XGBoost wrappers, balanced bagging, early stopping and the selection rule."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from fraud_kedro.models import EARLY_STOPPING, build_estimator, calibrate
from fraud_kedro.selection import choose_candidate, fit_on_fold, single_row_ms, with_tuned_trees


@pytest.fixture(autouse=True)
def one_thread():
    """One OpenMP thread, as the pipeline fits (oversubscribed cores are 10x slower)."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def tiny() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_classification(n_samples=1500, n_features=6, n_informative=4, weights=[0.93],
                               class_sep=1.0, random_state=1)
    return X, y


SMALL = {
    "lightgbm": {"n_estimators": 30, "num_leaves": 8, "max_depth": 3},
    "xgboost": {"n_estimators": 30, "max_depth": 3},
    "balanced_bagging": {"n_estimators": 5, "max_depth": 4},
}


@pytest.mark.parametrize("kind", sorted(SMALL))
def test_candidates_fit_on_tiny_data(kind: str, tiny: tuple) -> None:
    X, y = tiny
    model = build_estimator(kind, SMALL[kind], seed=0).fit(X[:1000], y[:1000])
    proba = model.predict_proba(X[1000:])
    assert proba.shape == (500, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert roc_auc_score(y[1000:], proba[:, 1]) > 0.75
    clone(model)  # hyperparameters are sklearn parameters


@pytest.mark.parametrize("kind", ["lightgbm", "xgboost"])
def test_boosters_are_seeded_and_calibratable(kind: str, tiny: tuple) -> None:
    X, y = tiny
    a = build_estimator(kind, {**SMALL[kind], "colsample_bytree": 0.7}, 3).fit(X, y)
    b = build_estimator(kind, {**SMALL[kind], "colsample_bytree": 0.7}, 3).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    calibrated = calibrate(build_estimator(kind, SMALL[kind], 0), "sigmoid", 3, 0).fit(X, y)
    assert calibrated.predict_proba(X[:3]).shape == (3, 2)
    # the numpy Platt map is the fitted sigmoid's predict_proba
    raw = calibrated.estimator_.predict_proba(X[:50])[:, 1]
    z = np.log(np.clip(raw, 1e-6, 1 - 1e-6) / (1 - np.clip(raw, 1e-6, 1 - 1e-6))).reshape(-1, 1)
    np.testing.assert_allclose(calibrated.predict_proba(X[:50]),
                               calibrated.sigmoid_.predict_proba(z), rtol=1e-6)


@pytest.mark.parametrize("kind", sorted(EARLY_STOPPING))
def test_early_stopping_keeps_fewer_trees(kind: str, tiny: tuple) -> None:
    X, y = tiny
    fold = (np.arange(0, 1000), np.arange(1000, 1500))
    params = {**SMALL[kind], "n_estimators": 400, "learning_rate": 0.5}
    model, score, trees = fit_on_fold(kind, params, 0, X, y, fold, early_stopping_rounds=5)
    assert 0 < score <= 1
    assert trees is not None and trees < 400
    assert with_tuned_trees(kind, params, [trees, trees + 2])["n_estimators"] == trees + 1
    assert with_tuned_trees("logistic_regression", {"C": 1}, [None]) == {"C": 1}


def test_single_row_time_is_measured(tiny: tuple) -> None:
    X, y = tiny
    model = build_estimator("lightgbm", SMALL["lightgbm"], 0).fit(X, y)
    assert 0 < single_row_ms(model, X[0], repeats=5) < 1000


def test_selection_prefers_the_cheaper_model_within_the_spread() -> None:
    candidates = {
        "slow": {"validation_average_precision": 0.70, "validation_ap_std": 0.02, "predict_ms": 1.5},
        "fast": {"validation_average_precision": 0.69, "validation_ap_std": 0.01, "predict_ms": 0.1},
        "weak": {"validation_average_precision": 0.60, "validation_ap_std": 0.0, "predict_ms": 0.01},
    }
    chosen, decision = choose_candidate(candidates)
    assert chosen == "fast"
    assert decision["within_spread"] == ["fast", "slow"]
    assert "cheaper" in decision["reason"]
    candidates["fast"]["validation_average_precision"] = 0.67  # now beyond the spread
    chosen, decision = choose_candidate(candidates)
    assert chosen == "slow"
    assert decision["within_spread"] == ["slow"]
