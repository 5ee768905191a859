"""LightGBM and XGBoost as scikit-learn classifiers, on the libraries' native APIs.

Why not ``lightgbm.LGBMClassifier`` / ``xgboost.XGBClassifier``: LightGBM 4.5's scikit-learn
wrapper calls ``check_X_y(force_all_finite=...)``, which scikit-learn 1.9 (the lock's) no longer
accepts, so it cannot fit at all; and both wrappers cost more per single-row prediction than the
boosters themselves (LightGBM's ``Booster.predict`` on one row: ~0.05 ms). These classes keep the
scikit-learn contract the pipeline relies on (``fit``/``predict_proba``/``classes_``, cloneable
hyperparameters) and add what serving and explanations need:

* ``raw_score(X)``: the booster's margin (log-odds);
* ``contributions(X)``: exact TreeSHAP values of the margin (``pred_contrib``), with the base
  value as last column, so that ``contributions(X).sum(axis=1) == raw_score(X)``;
* ``fit(..., eval_set=(X_val, y_val), early_stopping_rounds=n)``: early stopping on a validation
  fold; ``best_iteration_`` is the number of trees kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


def _positive_weight(y: np.ndarray, setting: float | str | None) -> float:
    """``scale_pos_weight``: a number, or ``balanced`` (negatives / positives)."""
    if setting == "balanced":
        positives = max(1, int(np.sum(y == 1)))
        return float(np.sum(y == 0)) / positives
    return 1.0 if setting is None else float(setting)


_Fold = tuple[np.ndarray, np.ndarray]
"""An early-stopping fold: features and 0/1 labels."""


@dataclass(eq=False, repr=False)
class _Booster(ClassifierMixin, BaseEstimator):
    """Shared sklearn plumbing of the two wrappers (binary classification only).

    The hyperparameters are dataclass fields: the generated ``__init__`` stores them as
    attributes, and its signature is what scikit-learn's ``get_params`` and cloning read. These
    are the ones both libraries take; a subclass adds its own (or another default).
    """

    n_estimators: int = 200
    learning_rate: float = 0.1
    max_depth: int = 6
    reg_lambda: float = 0.0
    colsample_bytree: float = 1.0
    scale_pos_weight: float | str | None = None
    n_jobs: int = 1
    random_state: int = 0

    def predict_proba(self, X: Any) -> np.ndarray:  # noqa: N803
        """Class probabilities ``[1 - p, p]``."""
        p = 1.0 / (1.0 + np.exp(-self.raw_score(X)))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803
        """Class at probability 0.5."""
        return (self.raw_score(X) >= 0.0).astype(int)

    def fit(
        self,
        X: Any,  # noqa: N803
        y: Any,
        eval_set: tuple[Any, Any] | None = None,
        early_stopping_rounds: int | None = None,
    ) -> _Booster:
        """Fit; with ``eval_set`` and ``early_stopping_rounds``, stop on the validation fold's
        average precision (LightGBM) or area under PR (XGBoost)."""
        y = np.asarray(y).astype(int)
        self.classes_ = np.array([0, 1])
        if not set(np.unique(y)) <= {0, 1}:
            raise ValueError("binary labels 0/1 expected")
        valid = None
        if eval_set is not None and early_stopping_rounds:
            valid = (np.asarray(eval_set[0], dtype=np.float64), np.asarray(eval_set[1]).astype(int))
        self._train(np.asarray(X, dtype=np.float64), y, valid, int(early_stopping_rounds or 0))
        return self

    def _train(self, X: np.ndarray, y: np.ndarray, valid: _Fold | None, rounds: int) -> None:  # noqa: N803
        """Train the booster (``valid``: the early-stopping fold, or None)."""
        raise NotImplementedError


@dataclass(eq=False, repr=False)
class LightGBMClassifier(_Booster):
    """Gradient-boosted trees with LightGBM (``lightgbm.train``), depth-limited.

    ``max_depth`` bounds the cost of TreeSHAP (quadratic in depth): explanations of one row stay
    near a millisecond.
    """

    num_leaves: int = 31
    min_child_samples: int = 20

    def _train(self, X: np.ndarray, y: np.ndarray, valid: _Fold | None, rounds: int) -> None:  # noqa: N803
        import lightgbm as lgb

        params = {
            "objective": "binary",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "max_depth": self.max_depth,
            "min_child_samples": self.min_child_samples,
            "lambda_l2": self.reg_lambda,
            "feature_fraction": self.colsample_bytree,
            "scale_pos_weight": _positive_weight(y, self.scale_pos_weight),
            "num_threads": self.n_jobs,
            "seed": self.random_state,
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
            "metric": "average_precision",
        }
        train = lgb.Dataset(X, y, free_raw_data=True)
        sets, callbacks = [], []
        if valid is not None:
            sets = [lgb.Dataset(valid[0], valid[1], reference=train)]
            callbacks = [lgb.early_stopping(rounds, verbose=False)]
        self.booster_ = lgb.train(
            params, train, num_boost_round=int(self.n_estimators), valid_sets=sets, callbacks=callbacks
        )
        best = self.booster_.best_iteration
        self.best_iteration_ = int(best) if best and best > 0 else int(self.n_estimators)
        self.n_features_in_ = train.num_feature()

    def _predict(self, X: Any, **output: bool) -> np.ndarray:  # noqa: N803
        """``Booster.predict`` on the kept trees; ``output`` picks what (margin or contributions)."""
        return self.booster_.predict(
            np.asarray(X, dtype=np.float64),
            num_iteration=self.best_iteration_,
            num_threads=self.n_jobs,
            **output,
        )

    def raw_score(self, X: Any) -> np.ndarray:  # noqa: N803
        """The margin (log-odds) of each row."""
        return self._predict(X, raw_score=True)

    def contributions(self, X: Any) -> np.ndarray:  # noqa: N803
        """Exact TreeSHAP of the margin per feature; the last column is the base value."""
        return self._predict(X, pred_contrib=True)


@dataclass(eq=False, repr=False)
class XGBoostClassifier(_Booster):
    """Gradient-boosted trees with XGBoost (``xgboost.train``, ``hist`` trees)."""

    min_child_weight: float = 1.0
    reg_lambda: float = 1.0
    subsample: float = 1.0

    def _train(self, X: np.ndarray, y: np.ndarray, valid: _Fold | None, rounds: int) -> None:  # noqa: N803
        import xgboost as xgb

        params = {
            "objective": "binary:logistic",
            "eval_metric": "aucpr",
            "tree_method": "hist",
            "learning_rate": self.learning_rate,
            "max_depth": self.max_depth,
            "min_child_weight": self.min_child_weight,
            "lambda": self.reg_lambda,
            "colsample_bytree": self.colsample_bytree,
            "subsample": self.subsample,
            "scale_pos_weight": _positive_weight(y, self.scale_pos_weight),
            "nthread": self.n_jobs,
            "seed": self.random_state,
        }
        train = xgb.DMatrix(X, label=y, nthread=self.n_jobs)
        evals = []
        if valid is not None:
            evals = [(xgb.DMatrix(valid[0], label=valid[1], nthread=self.n_jobs), "validation")]
        stop = rounds if valid is not None else None
        self.booster_ = xgb.train(
            params,
            train,
            num_boost_round=int(self.n_estimators),
            evals=evals,
            early_stopping_rounds=stop,
            verbose_eval=False,
        )
        best = getattr(self.booster_, "best_iteration", None) if stop else None
        self.best_iteration_ = int(best) + 1 if best is not None else int(self.n_estimators)
        self.n_features_in_ = train.num_col()

    def raw_score(self, X: Any) -> np.ndarray:  # noqa: N803
        """The margin (log-odds) of each row."""
        margin = self.booster_.inplace_predict(
            np.asarray(X, dtype=np.float64), iteration_range=(0, self.best_iteration_), predict_type="margin"
        )
        return np.asarray(margin, dtype=np.float64)

    def contributions(self, X: Any) -> np.ndarray:  # noqa: N803
        """Exact TreeSHAP of the margin per feature; the last column is the base value."""
        import xgboost as xgb

        matrix = xgb.DMatrix(np.asarray(X, dtype=np.float64), nthread=self.n_jobs)
        values = self.booster_.predict(matrix, pred_contribs=True, iteration_range=(0, self.best_iteration_))
        return np.asarray(values, dtype=np.float64)
