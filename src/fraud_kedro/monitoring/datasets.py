"""Datasets of the monitoring pipeline.

* :class:`ServiceLogDataset`: lazy access to the scoring service's prediction and label logs.
  Loading it only returns a handle: the logs are read when the monitoring pipeline runs with
  ``monitoring.source: service_log``, so a batch run does not need the service's database.
* :class:`VersionedMlflowArtifactDataset`: kedro-mlflow's ``MlflowArtifactDataset`` around a
  *versioned* local dataset.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError, Version
from kedro_mlflow.io.artifacts import MlflowArtifactDataset

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

    def shadow_predictions(self) -> pd.DataFrame:
        """The shadow (challenger) prediction log, scored on the same traffic."""
        return self._store().read_prediction_log(self.db_path, shadow=True)

    def labels(self) -> pd.DataFrame:
        """The label log (feedback)."""
        return self._store().read_label_log(self.db_path)


class ServiceLogDataset(AbstractDataset[None, ServiceLog]):
    """Read-only dataset whose ``load`` returns a :class:`ServiceLog` handle.

    Example catalog entry::

        monitoring_service_log:
          type: fraud_kedro.monitoring.datasets.ServiceLogDataset
          db_path: ${env:FRAUD_STATE_DB,data/07_model_output/serving_state.db}
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


class VersionedMlflowArtifactDataset(MlflowArtifactDataset):
    """``MlflowArtifactDataset`` whose wrapped dataset is versioned with the run's save version.

    kedro-mlflow 2.0.3 builds the wrapped dataset itself, so ``versioned: true`` inside
    ``dataset:`` gives it a save version of its own, which Kedro 1.x rejects ("All datasets in the
    catalog must have the same save version"). Declared ``versioned: true`` at the top level
    instead, Kedro hands this class the catalog's ``Version``, passed on to the wrapped dataset.

    Example catalog entry::

        monitoring_performance:
          type: fraud_kedro.monitoring.datasets.VersionedMlflowArtifactDataset
          versioned: true
          artifact_path: monitoring
          dataset:
            type: pandas.ParquetDataset
            filepath: data/08_reporting/monitoring/performance.parquet
    """

    def __new__(
        cls,
        dataset: str | dict,
        run_id: str | None = None,
        artifact_path: str | None = None,
        credentials: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        version: Version | None = None,
    ) -> Any:
        """The wrapped dataset, versioned with ``version`` (the catalog's), logged to MLflow."""
        config = {"type": dataset} if isinstance(dataset, str) else dict(dataset)
        config["versioned"] = True
        instance = MlflowArtifactDataset.__new__(
            MlflowArtifactDataset,
            dataset=config,
            run_id=run_id,
            artifact_path=artifact_path,
            credentials=credentials,
            metadata=metadata,
        )
        # the wrapped dataset made up its own save version; use the run's (nothing saved yet)
        instance._version = version if version is not None else Version(None, None)
        return instance
