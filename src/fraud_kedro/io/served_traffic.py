"""Served traffic as training data: the transactions the service scored, with their labels.

Retraining learns from the historical data plus the served transactions whose labels have had
time to arrive: a transaction older than ``label_delay_days`` before the latest served one is
labelled by ``/feedback`` (the last label received wins) or, with no fraud report by then,
legitimate (``assume_legit_after_delay``, as monitoring assumes); younger ones are left out.
Loaded from the operational store (``FRAUD_STATE_URL``) by :class:`ServedTransactionsDataset`;
nothing is read unless ``enabled`` (``kedro run ... --params served_traffic.enabled=true``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from fraud_kedro.store import StateStoreError, mask_url, open_existing_store
from fraud_kedro.store.connect import state_url_from_env, store_exists

logger = logging.getLogger(__name__)

COLUMNS = ["transaction_id", "timestamp", "customer_id", "terminal_id", "amount", "is_fraud"]


def empty_served() -> pd.DataFrame:
    """No served transactions, in the contract schema."""
    return pd.DataFrame(
        {
            "transaction_id": pd.Series(dtype=np.int64),
            "timestamp": pd.Series(dtype="datetime64[ns]"),
            "customer_id": pd.Series(dtype=np.int64),
            "terminal_id": pd.Series(dtype=np.int64),
            "amount": pd.Series(dtype=np.float64),
            "is_fraud": pd.Series(dtype=np.int64),
        }
    )


def label_served(
    served: list[tuple],
    labels: list[tuple],
    label_delay_days: int,
    assume_legit_after_delay: bool = True,
) -> pd.DataFrame:
    """The served transactions whose labels had time to arrive, labelled.

    Args:
        served: ``(transaction_id, timestamp, customer_key, terminal_key, amount)`` rows.
        labels: ``(transaction_id, is_fraud, received_at)`` rows, in arrival order.
        label_delay_days: How long a fraud report may take.
        assume_legit_after_delay: No report after the delay = legitimate; False keeps only
            transactions with a label received.

    Returns:
        Columns :data:`COLUMNS`, time-sorted.
    """
    if not served:
        return empty_served()
    frame = pd.DataFrame.from_records(served, columns=COLUMNS[:5])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    frame = frame.drop_duplicates("transaction_id", keep="first")
    cut = frame["timestamp"].max() - pd.Timedelta(days=label_delay_days)
    frame = frame[frame["timestamp"] <= cut]
    last = {int(tx): int(label) for tx, label, _ in labels}  # arrival order: the last wins
    known = frame["transaction_id"].map(last)
    if assume_legit_after_delay:
        frame = frame.assign(is_fraud=known.fillna(0).astype(np.int64))
    else:
        frame = frame[known.notna()].assign(is_fraud=known[known.notna()].astype(np.int64))
    for col in ("customer_id", "terminal_id"):
        if all(type(v) is int for v in frame[col]):
            frame[col] = frame[col].astype(np.int64)
    return frame.sort_values(["timestamp", "transaction_id"]).reset_index(drop=True)


class ServedTransactionsDataset(AbstractDataset[None, pd.DataFrame]):
    """Read-only dataset of the served transactions with settled labels (see the module doc).

    Example catalog entry::

        served_transactions:
          type: fraud_kedro.io.served_traffic.ServedTransactionsDataset
          url: ${env:FRAUD_STATE_URL,${env:FRAUD_STATE_DB,data/07_model_output/serving_state.db}}
          enabled: ${runtime_params:served_traffic.enabled,false}

    Args:
        url: The store; None reads ``FRAUD_STATE_URL`` / ``FRAUD_STATE_DB``.
        enabled: Read the store at all (False: an empty table, nothing opened).
        label_delay_days: How long a fraud report may take.
        assume_legit_after_delay: No report after the delay = legitimate.
        metadata: Kedro metadata.
    """

    def __init__(
        self,
        url: str | None = None,
        enabled: bool = False,
        label_delay_days: int = 7,
        assume_legit_after_delay: bool = True,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create the dataset (nothing is opened yet)."""
        self._url = str(url or state_url_from_env())
        self._enabled = str(enabled).lower() in {"1", "true", "yes"}
        self._delay = int(label_delay_days)
        self._legit = str(assume_legit_after_delay).lower() in {"1", "true", "yes"}
        self.metadata = metadata

    def load(self) -> pd.DataFrame:
        """The served transactions with settled labels (empty when disabled or no store)."""
        if not self._enabled:
            return empty_served()
        source = mask_url(self._url)
        if not store_exists(self._url):
            logger.warning("served_traffic.enabled but no store at %s: no served rows", source)
            return empty_served()
        try:
            store = open_existing_store(self._url)
            try:
                served, labels = store.served_rows(), store.label_rows()
            finally:
                store.close()
        except (StateStoreError, OSError) as exc:
            raise DatasetError(f"cannot read served traffic from {source}: {exc}") from exc
        frame = label_served(served, labels, self._delay, self._legit)
        logger.info(
            "served traffic from %s: %d of %d scored transactions have settled labels (%d fraud)",
            source, len(frame), len(served), int(frame["is_fraud"].sum()),
        )  # fmt: skip
        return frame

    def save(self, data: None) -> None:
        """Written by the service only."""
        raise DatasetError("ServedTransactionsDataset is read-only")

    def _describe(self) -> dict[str, Any]:
        return {"url": mask_url(self._url), "enabled": self._enabled, "label_delay_days": self._delay}
