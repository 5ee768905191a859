"""Nodes of the data_processing pipeline."""

from __future__ import annotations

import logging
from dataclasses import replace

import pandas as pd

from fraud_kedro import creditcard
from fraud_kedro.features import CREDITCARD_SCHEMA, FeatureParams, compute_features, feature_names
from fraud_kedro.ingest import validate_transactions

logger = logging.getLogger(__name__)


def _with_label_delay(params: FeatureParams, label_delay_days: float | None) -> FeatureParams:
    """The ``features`` parameters with the one label delay (``split.delay_days``) filled in.

    The terminal windows look back past the label delay; that delay is the project's single
    ``split.delay_days`` parameter (docs/contract.md), recorded in the feature spec as
    ``terminal_label_delay_days`` so that the scoring service applies the same one.
    """
    if label_delay_days is None:
        return params
    if params.terminal_label_delay_days is not None:
        raise ValueError(
            "features.terminal_label_delay_days is no longer a parameter: the label delay is "
            "split.delay_days (one parameter for features, split and monitoring)"
        )
    delay = float(label_delay_days)
    return replace(params, terminal_label_delay_days=int(delay) if delay.is_integer() else delay)


def add_served_transactions(
    raw_transactions: pd.DataFrame, served_transactions: pd.DataFrame
) -> pd.DataFrame:
    """The historical transactions plus the served ones with settled labels (retraining).

    Args:
        raw_transactions: Historical transactions (contract schema).
        served_transactions: Served transactions with labels
            (:class:`~fraud_kedro.io.served_traffic.ServedTransactionsDataset`; empty unless
            ``served_traffic.enabled``). Ids already in the history are left out.

    Returns:
        Both, in the columns of ``raw_transactions`` (``fraud_scenario`` 0 for served rows).
    """
    if served_transactions is None or served_transactions.empty:
        return raw_transactions
    served = served_transactions[
        ~served_transactions["transaction_id"].isin(raw_transactions["transaction_id"])
    ]
    if "fraud_scenario" in raw_transactions.columns:
        served = served.assign(fraud_scenario=0)
    served = served[[c for c in raw_transactions.columns if c in served.columns]]
    for col in ("customer_id", "terminal_id"):
        if raw_transactions[col].dtype != served[col].dtype:
            served = served.assign(**{col: served[col].astype(raw_transactions[col].dtype)})
    combined = pd.concat([raw_transactions, served], ignore_index=True)
    logger.info("training data: %d historical + %d served transactions", len(raw_transactions), len(served))
    return combined


def validate_raw_transactions(
    raw_transactions: pd.DataFrame, feature_params: FeatureParams, label_delay_days: float | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate raw transactions; bad rows go to quarantine with their reason.

    Args:
        raw_transactions: Raw transactions in the contract schema, or in the ULB layout when
            ``features.schema`` is ``creditcard`` (:mod:`fraud_kedro.creditcard`).
        feature_params: The ``features`` parameters (for the column names).
        label_delay_days: The label delay (``split.delay_days``).

    Returns:
        Valid transactions (sorted by time) and quarantined rows.
    """
    params = _with_label_delay(feature_params, label_delay_days)
    if params.schema == CREDITCARD_SCHEMA:
        return creditcard.validate_creditcard(raw_transactions, params.start_date, params.columns)
    return validate_transactions(raw_transactions, params.columns)


def build_model_input_table(
    transactions: pd.DataFrame, feature_params: FeatureParams, label_delay_days: float | None = None
) -> pd.DataFrame:
    """Point-in-time features for every valid transaction, plus its label where known.

    Args:
        transactions: Validated transactions.
        feature_params: The ``features`` parameters.
        label_delay_days: The label delay (``split.delay_days``).

    Returns:
        The model input table: keys, features, and the label and ``fraud_scenario`` columns when the
        data has them (they never reach the model: the feature list excludes them). The
        ``creditcard`` schema has no history features (:func:`fraud_kedro.creditcard.build_features`).
    """
    params = _with_label_delay(feature_params, label_delay_days)
    if params.schema == CREDITCARD_SCHEMA:
        features = creditcard.build_features(transactions, params.columns)
        names = creditcard.feature_names(params.columns)
    else:
        features = compute_features(transactions, params)
        names = feature_names(params)
    extra = [c for c in (params.columns.label, "fraud_scenario") if c in transactions.columns]
    table = pd.concat([features, transactions[extra].reset_index(drop=True)], axis=1)
    logger.info("model input table: %d rows, %d features", len(table), len(names))
    return table


def make_feature_spec(feature_params: FeatureParams, label_delay_days: float | None = None) -> dict:
    """The ordered feature list and the feature parameters, an artifact that travels with the model.

    The scoring service rebuilds history features online from ``params`` and checks the input
    against ``features``. A non-default raw schema (``creditcard``) is recorded under ``schema`` and
    left out of ``params``, so that ``FeatureParams(**spec["params"])`` works everywhere.
    """
    params = _with_label_delay(feature_params, label_delay_days)
    if params.schema == CREDITCARD_SCHEMA:
        return {
            "features": creditcard.feature_names(params.columns),
            "params": params.spec_params(),
            "schema": {"schema": params.schema, "start_date": params.start_date},
        }
    return {"features": feature_names(params), "params": params.spec_params()}
