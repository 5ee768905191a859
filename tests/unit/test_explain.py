"""Contributions add up to the output; plain-language names."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification
from threadpoolctl import threadpool_limits

from fraud_kedro.explain import FEATURE_DESCRIPTIONS, contributions, describe, reasons
from fraud_kedro.features import FeatureParams, feature_names
from fraud_kedro.models import build_estimator, calibrate


@pytest.fixture(autouse=True)
def one_thread():
    """One OpenMP thread, as the pipeline fits (oversubscribed cores are 10x slower)."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_classification(n_samples=1200, n_features=5, n_informative=3, weights=[0.9],
                               random_state=2)
    return X, y


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


PARAMS = {
    "lightgbm": {"n_estimators": 40, "num_leaves": 8, "max_depth": 4},
    "xgboost": {"n_estimators": 40, "max_depth": 4},
    "logistic_regression": {"C": 1.0},
    "hist_gradient_boosting": {"max_iter": 20},
}


@pytest.mark.parametrize("kind", sorted(PARAMS))
def test_contributions_and_base_add_up_to_the_raw_output(kind: str, data: tuple) -> None:
    X, y = data
    model = build_estimator(kind, PARAMS[kind], 0).fit(X, y)
    c = contributions(model, X[:40])
    assert c.values.shape == (40, 5)
    expected = _logit(np.clip(model.predict_proba(X[:40])[:, 1], 1e-6, 1 - 1e-6))
    np.testing.assert_allclose(c.base + c.values.sum(axis=1), expected, rtol=1e-5, atol=1e-5)
    assert c.method == {"lightgbm": "treeshap", "xgboost": "treeshap",
                        "logistic_regression": "linear"}.get(kind, "breakdown")


@pytest.mark.parametrize("kind", ["lightgbm", "hist_gradient_boosting"])
def test_calibrated_contributions_add_up_to_the_served_log_odds(kind: str, data: tuple) -> None:
    X, y = data
    model = calibrate(build_estimator(kind, PARAMS[kind], 0), "sigmoid", 3, 0).fit(X, y)
    c = contributions(model, X[:30])
    assert c.output == "calibrated log-odds"
    served = model.predict_proba(X[:30])[:, 1]
    np.testing.assert_allclose(c.base + c.values.sum(axis=1), _logit(served), rtol=1e-5,
                               atol=1e-5)


def test_reasons_are_the_largest_contributions(data: tuple) -> None:
    X, y = data
    model = build_estimator("lightgbm", PARAMS["lightgbm"], 0).fit(X, y)
    names = ["amount", "hour", "is_night", "customer_amount_ratio_30d", "terminal_risk_7d"]
    out = reasons(model, names, X[:3], top_k=3)
    full = contributions(model, X[:3]).values
    for row, got in zip(full, out, strict=True):
        assert [r["contribution"] for r in got] == sorted(row, key=abs, reverse=True)[:3]
        assert set(got[0]) == {"feature", "description", "value", "contribution"}


def test_plain_language_names() -> None:
    assert describe("customer_amount_ratio_30d", 6.1234) == "amount is 6.1x this card's 30-day mean"
    assert describe("terminal_risk_7d", 0.25) == (
        "25.0% of this terminal's transactions in a 7-day window were confirmed fraud")
    assert describe("is_night", 1) == "at night"
    assert describe("unknown_feature", 2.5) == "unknown_feature = 2.5"
    # every feature compute_features makes has an entry in the one table
    for name in feature_names(FeatureParams()):
        assert "=" not in describe(name, 1.0), name
    assert len({p for p, _ in FEATURE_DESCRIPTIONS}) == len(FEATURE_DESCRIPTIONS)
