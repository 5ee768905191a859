"""Datasets of the monitoring pipeline (the service log is :mod:`fraud_kedro.io.service_log`).

* :class:`VersionedMlflowArtifactDataset`: kedro-mlflow's ``MlflowArtifactDataset`` around a
  *versioned* local dataset.
"""

from __future__ import annotations

import logging
from typing import Any

from kedro.io import Version
from kedro_mlflow.io.artifacts import MlflowArtifactDataset

logger = logging.getLogger(__name__)


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
