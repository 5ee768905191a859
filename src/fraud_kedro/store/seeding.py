"""Seeding the history from the data the model was trained on."""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import pandas as pd

from fraud_kedro.features import FeatureParams
from fraud_kedro.parameters import build
from fraud_kedro.store.interface import StateStore
from fraud_kedro.store.keys import canonical_id

logger = logging.getLogger(__name__)

_US_PER_S = 1_000_000


def _canonical_ids(column: pd.Series) -> list[int | str]:
    """Canonical ids of a data column (the keys the service derives from requests)."""
    if pd.api.types.is_integer_dtype(column.dtype) and not column.isna().any():
        return column.astype(np.int64).tolist()
    return [canonical_id(v if isinstance(v, str) else str(v)) for v in column.tolist()]


def seed_rows(transactions: pd.DataFrame, params: FeatureParams, days: int | None = None) -> list[tuple]:
    """History rows of the last ``days`` days of ``transactions`` (with labels).

    Args:
        transactions: Transactions in the contract schema (column names of ``params``).
        params: Feature parameters (column names; ``history_days`` is the default depth).
        days: How many days before the latest transaction to keep.

    Returns:
        ``(transaction_id, ts_us, customer, terminal, amount, is_fraud)`` rows.

    Raises:
        ValueError: When a required column is missing or ids are not integers.
    """
    c = params.columns
    missing = [
        col
        for col in (c.transaction_id, c.timestamp, c.customer_id, c.terminal_id, c.amount)
        if col not in transactions.columns
    ]
    if missing:
        raise ValueError(f"seed data lacks column(s) {missing}")
    if transactions.empty:
        return []
    days = params.history_days if days is None else days
    ts = pd.to_datetime(transactions[c.timestamp])
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    ts_us = ts.to_numpy(dtype="datetime64[us]").astype(np.int64)
    keep = ts_us >= ts_us.max() - days * 86_400 * _US_PER_S
    frame = transactions.loc[keep]
    ids = pd.to_numeric(frame[c.transaction_id], errors="raise").to_numpy(dtype=np.int64)
    if c.label in frame.columns:
        raw_labels = pd.to_numeric(frame[c.label], errors="coerce").to_numpy(dtype=np.float64)
        labels: list[Any] = [None if np.isnan(v) else int(v) for v in raw_labels]
    else:
        labels = [None] * len(frame)
    return list(
        zip(
            ids.tolist(),
            ts_us[keep].tolist(),
            _canonical_ids(frame[c.customer_id]),
            _canonical_ids(frame[c.terminal_id]),
            frame[c.amount].to_numpy(dtype=np.float64).tolist(),
            labels,
            strict=True,
        )
    )


def seed_history(
    db: str | os.PathLike[str] | StateStore,
    transactions_df: pd.DataFrame,
    params: FeatureParams | dict | None = None,
    days: int | None = None,
    only_if_empty: bool = False,
) -> int:
    """Seed the serving history with the data the model was trained on.

    Only the last ``days`` (default: ``params.history_days``) days before the latest transaction
    are kept: older rows never enter a feature window. Known ids are skipped, so seeding twice is
    harmless.

    Args:
        db: The store, or its URL / SQLite path.
        transactions_df: Validated transactions in the contract schema, with labels.
        params: Feature parameters (``FeatureParams`` or the ``features`` parameter dict).
        days: Depth of history to keep.
        only_if_empty: Seed only a store that is not seeded yet (once across instances).

    Returns:
        The number of rows inserted.
    """
    from fraud_kedro.store.connect import open_store

    if not isinstance(params, FeatureParams):
        params = build(FeatureParams, params)
    rows = seed_rows(transactions_df, params, days)
    store = db if isinstance(db, StateStore) else open_store(db)
    try:
        inserted = store.insert_seed(rows, only_if_empty) if rows else 0
    finally:
        if store is not db:
            store.close()
    logger.info(
        "seeded the history of %s with %d of %d transactions (last %s days)",
        store.description,
        inserted,
        len(transactions_df),
        params.history_days if days is None else days,
    )
    return inserted
