"""A Kedro dataset giving lazy access to the scoring service's prediction and label logs.

Loading it only returns a handle: the logs are read when the monitoring pipeline runs with
``monitoring.source: service_log``, so a batch run does not need the service's database.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError

logger = logging.getLogger(__name__)

_STATE_STORE = "fraud_kedro.api.state_store"


class ServiceLog:
    """Handle on the service's state store (``fraud_kedro.api.state_store``)."""

    def __init__(self, db_path: str) -> None:
        """Point at the service's database file."""
        self.db_path = db_path

    def exists(self) -> bool:
        """Whether the database file is there."""
        return Path(self.db_path).exists()

    def _store(self) -> Any:
        if not self.exists():
            raise DatasetError(f"the scoring service's database {self.db_path} does not exist")
        return importlib.import_module(_STATE_STORE)

    def predictions(self) -> pd.DataFrame:
        """The prediction log."""
        return self._store().read_prediction_log(self.db_path)

    def labels(self) -> pd.DataFrame:
        """The label log (feedback)."""
        return self._store().read_label_log(self.db_path)


class ServiceLogDataset(AbstractDataset[None, ServiceLog]):
    """Read-only dataset whose ``load`` returns a :class:`ServiceLog` handle.

    Example catalog entry::

        monitoring_service_log:
          type: fraud_kedro.monitoring.datasets.ServiceLogDataset
          db_path: data/09_service/state.db
    """

    def __init__(self, db_path: str, metadata: dict[str, Any] | None = None) -> None:
        """Create the dataset.

        Args:
            db_path: Path of the service's state database.
            metadata: Kedro metadata (e.g. for kedro-viz).
        """
        self._db_path = str(db_path)
        self.metadata = metadata

    def load(self) -> ServiceLog:
        """A handle on the logs (nothing is read yet)."""
        return ServiceLog(self._db_path)

    def save(self, data: None) -> None:
        """The logs are written by the service only."""
        raise DatasetError("ServiceLogDataset is read-only")

    def _exists(self) -> bool:
        return Path(self._db_path).exists()

    def _describe(self) -> dict[str, Any]:
        return {"db_path": self._db_path}
