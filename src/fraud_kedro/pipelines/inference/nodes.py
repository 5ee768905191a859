"""Nodes of the inference pipeline (what the exported MLflow model runs)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fraud_kedro.features import FeatureParams


class ScoringInputError(ValueError):
    """The scoring input lacks features the model needs, or holds unusable values."""


def predict_fraud(
    scoring_input: pd.DataFrame,
    fraud_model: Any,
    feature_spec: dict,
    decision_threshold: dict,
) -> pd.DataFrame:
    """Fraud probability and decision for each row of ``scoring_input``.

    Args:
        scoring_input: Keys and features, as :func:`fraud_kedro.features.compute_features` makes.
        fraud_model: The fitted (calibrated) classifier.
        feature_spec: The ordered feature list (``features``) and feature parameters.
        decision_threshold: The persisted threshold (key ``threshold``).

    Returns:
        ``transaction_id``, ``fraud_probability`` and ``is_fraud_predicted`` per row.
    """
    features = feature_spec["features"]
    missing = [f for f in features if f not in scoring_input.columns]
    if missing:
        raise ScoringInputError(f"scoring input lacks features {missing}")
    try:
        X = scoring_input[features].to_numpy(dtype=np.float64)  # noqa: N806
    except (TypeError, ValueError) as exc:
        bad = [f for f in features
               if pd.to_numeric(scoring_input[f], errors="coerce").isna().gt(scoring_input[f].isna()).any()]
        raise ScoringInputError(f"scoring input has non-numeric values in {bad}") from exc
    if not np.isfinite(X).all():
        bad = [f for f, ok in zip(features, np.isfinite(X).all(axis=0), strict=True) if not ok]
        raise ScoringInputError(f"scoring input has NaN/inf in {bad}")
    proba = fraud_model.predict_proba(X)[:, 1] if len(X) else np.empty(0)
    id_col = FeatureParams(**feature_spec["params"]).columns.transaction_id
    return pd.DataFrame(
        {
            "transaction_id": scoring_input[id_col].to_numpy(),
            "fraud_probability": proba,
            "is_fraud_predicted": proba >= float(decision_threshold["threshold"]),
        }
    )
