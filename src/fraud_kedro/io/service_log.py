"""The scoring service's logs as a Kedro dataset (read by monitoring with ``source: service_log``).

Loading reads the champion and shadow prediction logs and the label log from the operational
store (``FRAUD_STATE_URL``: SQLite or PostgreSQL) through :mod:`fraud_kedro.store`; the nodes get
DataFrames and do no I/O. A SQLite file that does not exist loads as an *unavailable* log (a batch
run on a machine that never served reads nothing and needs no database).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from fraud_kedro.store import StateStoreError, mask_url, open_existing_store
from fraud_kedro.store.connect import state_url_from_env, store_exists
from fraud_kedro.store.readers import label_frame, prediction_frame

logger = logging.getLogger(__name__)


def _empty() -> pd.DataFrame:
    return pd.DataFrame()


@dataclass(frozen=True)
class ServiceLogData:
    """The logs of the scoring service, as loaded.

    Attributes:
        source: Where they were read from (no password).
        available: False when the store does not exist (nothing was read).
        predictions: The champion's prediction log.
        shadow_predictions: The shadow (challenger) prediction log, same traffic.
        labels: The label log (feedback).
    """

    source: str
    available: bool = True
    predictions: pd.DataFrame = field(default_factory=_empty)
    shadow_predictions: pd.DataFrame = field(default_factory=_empty)
    labels: pd.DataFrame = field(default_factory=_empty)


class ServiceLogDataset(AbstractDataset[None, ServiceLogData]):
    """Read-only dataset of the service's prediction and label logs.

    Example catalog entry::

        monitoring_service_log:
          type: fraud_kedro.io.service_log.ServiceLogDataset
          url: ${env:FRAUD_STATE_URL,${env:FRAUD_STATE_DB,data/07_model_output/serving_state.db}}

    Args:
        url: The store (``sqlite:///PATH``, ``postgresql://...`` or a SQLite path); None reads
            ``FRAUD_STATE_URL`` / ``FRAUD_STATE_DB`` from the environment.
        db_path: Former name of ``url`` (a SQLite path).
        metadata: Kedro metadata (e.g. for kedro-viz).
    """

    def __init__(
        self,
        url: str | None = None,
        db_path: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create the dataset (nothing is opened yet)."""
        self._url = str(url or db_path or state_url_from_env())
        self.metadata = metadata

    def load(self) -> ServiceLogData:
        """Read the three logs in one go.

        Raises:
            DatasetError: The store is configured but cannot be read.
        """
        source = mask_url(self._url)
        if not store_exists(self._url):
            logger.info("no service log at %s (nothing read)", source)
            return ServiceLogData(source, available=False)
        try:
            store = open_existing_store(self._url)
            try:
                data = ServiceLogData(
                    source,
                    predictions=prediction_frame(store.raw_prediction_log("champion")),
                    shadow_predictions=prediction_frame(store.raw_prediction_log("shadow")),
                    labels=label_frame(store.label_rows()),
                )
            finally:
                store.close()
        except (StateStoreError, OSError) as exc:
            raise DatasetError(f"cannot read the service log at {source}: {exc}") from exc
        logger.info(
            "service log %s: %d predictions, %d shadow, %d labels",
            source,
            len(data.predictions),
            len(data.shadow_predictions),
            len(data.labels),
        )
        return data

    def save(self, data: None) -> None:
        """The logs are written by the service only."""
        raise DatasetError("ServiceLogDataset is read-only")

    def _exists(self) -> bool:
        return store_exists(self._url)

    def _describe(self) -> dict[str, Any]:
        return {"url": mask_url(self._url)}
