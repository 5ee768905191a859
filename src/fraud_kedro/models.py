"""Candidate estimators, built from parameters.

Class imbalance is handled with class weights (``balanced``), which inflate probabilities; the
chosen model is therefore wrapped in Platt scaling fitted on out-of-fold scores, so that its
probabilities mean what they say: the decision threshold and NannyML's CBPE rely on it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import threadpool_limits

from fraud_kedro.boosters import LightGBMClassifier, XGBoostClassifier


def _balanced_bagging(random_state: int = 0, max_depth: int = 8, min_samples_leaf: int = 1,
                      **params: Any) -> Any:
    """imbalanced-learn's balanced bagging: each tree sees every fraud and as many legitimate
    rows, drawn afresh per tree (random undersampling inside the ensemble)."""
    from imblearn.ensemble import BalancedBaggingClassifier

    tree = DecisionTreeClassifier(max_depth=max_depth, min_samples_leaf=min_samples_leaf,
                                  random_state=random_state)
    return BalancedBaggingClassifier(estimator=tree, random_state=random_state,
                                     **{"n_jobs": 1, **params})


ESTIMATORS = {
    "logistic_regression": LogisticRegression,
    "random_forest": RandomForestClassifier,
    "hist_gradient_boosting": HistGradientBoostingClassifier,
    "lightgbm": LightGBMClassifier,
    "xgboost": XGBoostClassifier,
    "balanced_bagging": _balanced_bagging,
}
# candidates whose fit takes a validation fold and stops early (``best_iteration_``)
EARLY_STOPPING = frozenset({"lightgbm", "xgboost"})
# candidates whose fit does not depend on the seed (their seed spread is 0 without refitting)
DETERMINISTIC = frozenset({"logistic_regression"})


def limit_threads(n_threads: int | None) -> threadpool_limits:
    """Cap OpenMP/BLAS threads (``model.omp_threads``; None = library default).

    Measured on 2 cores: HistGradientBoosting with 2 OpenMP threads ran 10x slower than with one
    as soon as another process competed for the cores (thread oversubscription).
    """
    return threadpool_limits(limits=n_threads)


def build_estimator(kind: str, params: dict[str, Any], seed: int) -> Any:
    """An unfitted estimator of ``kind`` with hyperparameters ``params``.

    Logistic regression gets a scaler in front (a pipeline); trees take raw features.
    """
    if kind not in ESTIMATORS:
        raise ValueError(f"unknown model kind {kind!r}; choose from {sorted(ESTIMATORS)}")
    estimator = ESTIMATORS[kind](random_state=seed, **params)
    if kind == "logistic_regression":
        return Pipeline([("scale", StandardScaler()), ("model", estimator)])
    return estimator


def calibrate(estimator: Any, method: str, cv: int, seed: int) -> Any:
    """Wrap ``estimator`` in Platt scaling (``sigmoid``), or return it as is (``none``)."""
    if method == "none":
        return estimator
    if method != "sigmoid":
        raise ValueError(f"calibration.method must be 'sigmoid' or 'none', not {method!r}")
    return PlattCalibratedClassifier(estimator, cv=cv, seed=seed)


def suggest_params(trial: Any, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Draw hyperparameters for an Optuna trial from a search space given in parameters.

    Each entry is ``{type: float|int|categorical, low, high, log}`` or ``{type: categorical,
    choices: [...]}``.
    """
    values = {}
    for name, spec in space.items():
        kind = spec["type"]
        if kind == "float":
            values[name] = trial.suggest_float(name, spec["low"], spec["high"],
                                               log=spec.get("log", False))
        elif kind == "int":
            values[name] = trial.suggest_int(name, spec["low"], spec["high"],
                                             log=spec.get("log", False))
        elif kind == "categorical":
            values[name] = trial.suggest_categorical(name, spec["choices"])
        else:
            raise ValueError(f"search space entry {name!r}: unknown type {kind!r}")
    return values


class PlattCalibratedClassifier(ClassifierMixin, BaseEstimator):
    """A classifier whose scores are mapped to probabilities by Platt scaling.

    The sigmoid is fitted on out-of-fold scores of the training data, the estimator on all of it
    (like ``CalibratedClassifierCV(ensemble=False)``), and the out-of-fold calibrated probabilities
    are kept in ``oof_proba_`` so that the decision threshold is chosen on data the model did not
    see.
    """

    def __init__(self, estimator: Any = None, cv: int = 3, seed: int = 0) -> None:
        self.estimator = estimator
        self.cv = cv
        self.seed = seed

    def fit(self, X: Any, y: Any) -> PlattCalibratedClassifier:  # noqa: N803
        """Fit the sigmoid on out-of-fold scores, then the estimator on all rows."""
        folds = StratifiedKFold(self.cv, shuffle=True, random_state=self.seed)
        oof = cross_val_predict(clone(self.estimator), X, y, cv=folds, method="predict_proba")
        self.sigmoid_ = LogisticRegression(C=1e4).fit(_logit(oof[:, 1]), y)
        self.estimator_ = clone(self.estimator).fit(X, y)
        self.classes_ = self.estimator_.classes_
        self.oof_proba_ = self.sigmoid_.predict_proba(_logit(oof[:, 1]))[:, 1]
        return self

    def predict_proba(self, X: Any) -> np.ndarray:  # noqa: N803
        """Calibrated class probabilities: ``sigmoid(a * logit(p_raw) + b)``.

        Computed with numpy from the fitted sigmoid's coefficients: the same numbers as its
        ``predict_proba``, without scikit-learn's per-call input validation (~0.1 ms a row).
        """
        a, b = self.platt_coefficients()
        z = a * _logit(self.estimator_.predict_proba(X)[:, 1])[:, 0] + b
        p = 1.0 / (1.0 + np.exp(-z))
        return np.column_stack([1.0 - p, p])

    def platt_coefficients(self) -> tuple[float, float]:
        """``(a, b)``: calibrated log-odds = ``a * logit(raw probability) + b``."""
        return float(self.sigmoid_.coef_[0, 0]), float(self.sigmoid_.intercept_[0])

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803
        """Class at probability 0.5 (the service uses the persisted threshold instead)."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p)).reshape(-1, 1)
