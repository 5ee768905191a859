"""Candidate estimators, Platt calibration, search spaces."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss
from sklearn.pipeline import Pipeline

from fraud_kedro.models import (
    PlattCalibratedClassifier,
    build_estimator,
    calibrate,
    suggest_params,
)


@pytest.fixture(scope="module")
def imbalanced() -> tuple[np.ndarray, ...]:
    """A synthetic problem with 3% positives, split into train and held-out halves."""
    X, y = make_classification(
        n_samples=6000,
        n_features=8,
        n_informative=4,
        weights=[0.97],
        flip_y=0.01,
        class_sep=0.8,
        random_state=0,
    )
    return X[:3000], y[:3000], X[3000:], y[3000:]


@pytest.mark.parametrize(
    ("kind", "params", "cls"),
    [
        ("logistic_regression", {"C": 0.5}, LogisticRegression),
        ("random_forest", {"n_estimators": 5}, RandomForestClassifier),
        ("hist_gradient_boosting", {"max_iter": 5}, HistGradientBoostingClassifier),
    ],
)
def test_build_estimator(kind: str, params: dict, cls: type) -> None:
    est = build_estimator(kind, params, seed=3)
    model = est.named_steps["model"] if isinstance(est, Pipeline) else est
    assert isinstance(model, cls)
    assert model.random_state == 3
    assert all(model.get_params()[k] == v for k, v in params.items())
    assert isinstance(est, Pipeline) == (kind == "logistic_regression")
    assert not hasattr(model, "classes_")  # unfitted


def test_build_estimator_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="lightgbm"):
        build_estimator("catboost", {}, 0)


def test_build_estimator_rejects_unknown_hyperparameter() -> None:
    with pytest.raises(TypeError):
        build_estimator("random_forest", {"depth": 3}, 0)


def test_calibrate_methods() -> None:
    est = LogisticRegression()
    assert calibrate(est, "none", 3, 0) is est
    wrapped = calibrate(est, "sigmoid", 4, 7)
    assert isinstance(wrapped, PlattCalibratedClassifier)
    assert (wrapped.estimator, wrapped.cv, wrapped.seed) == (est, 4, 7)
    with pytest.raises(ValueError, match="isotonic"):
        calibrate(est, "isotonic", 3, 0)


def test_platt_scaling_beats_the_raw_balanced_model_on_brier(imbalanced: tuple) -> None:
    X, y, X_test, y_test = imbalanced
    raw = build_estimator("logistic_regression", {"class_weight": "balanced"}, 0).fit(X, y)
    calibrated = PlattCalibratedClassifier(
        build_estimator("logistic_regression", {"class_weight": "balanced"}, 0), cv=3, seed=0
    ).fit(X, y)
    raw_p = raw.predict_proba(X_test)[:, 1]
    cal_p = calibrated.predict_proba(X_test)[:, 1]
    assert brier_score_loss(y_test, cal_p) < 0.5 * brier_score_loss(y_test, raw_p)
    # probabilities mean what they say: the average is close to the fraud rate
    assert abs(cal_p.mean() - y_test.mean()) < 0.01
    assert raw_p.mean() > 5 * y_test.mean()
    # Platt scaling is monotone: the ranking (ROC, AP) is the raw estimator's
    refit = calibrated.estimator_.predict_proba(X_test)[:, 1]
    assert (np.diff(cal_p[np.argsort(refit)]) >= -1e-12).all()


def test_platt_classifier_api(imbalanced: tuple) -> None:
    X, y, X_test, _ = imbalanced
    model = PlattCalibratedClassifier(LogisticRegression(max_iter=500), cv=3, seed=1).fit(X, y)
    proba = model.predict_proba(X_test)
    assert proba.shape == (len(X_test), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert list(model.classes_) == [0, 1]
    assert model.oof_proba_.shape == (len(X),)
    assert ((model.oof_proba_ >= 0) & (model.oof_proba_ <= 1)).all()
    np.testing.assert_array_equal(model.predict(X_test), (proba[:, 1] >= 0.5).astype(int))
    # the out-of-fold scores are not the in-sample ones
    assert not np.allclose(model.oof_proba_, model.predict_proba(X)[:, 1])
    # same seed, same model
    again = PlattCalibratedClassifier(LogisticRegression(max_iter=500), cv=3, seed=1).fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X_test), proba)


def test_platt_classifier_survives_extreme_scores() -> None:
    X = np.r_[np.zeros((50, 1)), np.ones((50, 1))]
    y = np.r_[np.zeros(50, int), np.ones(50, int)]
    model = PlattCalibratedClassifier(LogisticRegression(C=1e6), cv=2, seed=0).fit(X, y)
    assert np.isfinite(model.predict_proba(X)).all()


def test_suggest_params_types() -> None:
    space = {
        "C": {"type": "float", "low": 0.01, "high": 10.0, "log": True},
        "max_iter": {"type": "int", "low": 10, "high": 20},
        "class_weight": {"type": "categorical", "choices": [None, "balanced"]},
    }
    trial = optuna.trial.FixedTrial({"C": 0.5, "max_iter": 12, "class_weight": "balanced"})
    assert suggest_params(trial, space) == {"C": 0.5, "max_iter": 12, "class_weight": "balanced"}
    with pytest.raises(ValueError, match="unknown type"):
        suggest_params(trial, {"C": {"type": "loguniform", "low": 1, "high": 2}})
