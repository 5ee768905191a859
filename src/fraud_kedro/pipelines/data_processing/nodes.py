"""Nodes of the data_processing pipeline."""

from __future__ import annotations

import logging

import pandas as pd

from fraud_kedro.features import FeatureParams, compute_features, feature_names
from fraud_kedro.validation import validate_transactions

logger = logging.getLogger(__name__)


def validate_raw_transactions(
    raw_transactions: pd.DataFrame, feature_params: dict
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate raw transactions; bad rows go to quarantine with their reason.

    Args:
        raw_transactions: Raw transactions in the contract schema.
        feature_params: The ``features`` parameters (for the column names).

    Returns:
        Valid transactions (sorted by time) and quarantined rows.
    """
    params = FeatureParams.from_dict(feature_params)
    return validate_transactions(raw_transactions, params.columns)


def build_model_input_table(transactions: pd.DataFrame, feature_params: dict) -> pd.DataFrame:
    """Point-in-time features for every valid transaction, plus its label where known.

    Args:
        transactions: Validated transactions.
        feature_params: The ``features`` parameters.

    Returns:
        The model input table: keys, features, and the label and ``fraud_scenario`` columns when the
        data has them (they never reach the model: the feature list excludes them).
    """
    params = FeatureParams.from_dict(feature_params)
    features = compute_features(transactions, params)
    extra = [c for c in (params.columns.label, "fraud_scenario") if c in transactions.columns]
    table = pd.concat([features, transactions[extra].reset_index(drop=True)], axis=1)
    logger.info("model input table: %d rows, %d features", len(table), len(feature_names(params)))
    return table


def make_feature_spec(feature_params: dict) -> dict:
    """The ordered feature list and the feature parameters, an artifact that travels with the model.

    The scoring service rebuilds history features online from ``params`` and checks the input
    against ``features``.
    """
    params = FeatureParams.from_dict(feature_params)
    return {"features": feature_names(params), "params": feature_params}
