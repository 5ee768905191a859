"""Project datasets."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import ParquetDataset
from kedro_datasets.pickle import PickleDataset

logger = logging.getLogger(__name__)


class TransactionsFileDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """Raw transactions as Parquet, or as CSV beside it (``transactions.csv``) for your own data.

    Loading prefers ``<stem>.parquet`` and falls back to ``<stem>.csv``; saving writes Parquet.
    """

    def __init__(
        self,
        filepath: str,
        load_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.metadata = metadata  # e.g. the kedro-viz layer
        self._parquet = Path(filepath).with_suffix(".parquet")
        self._csv = self._parquet.with_suffix(".csv")
        self._load_args = load_args or {}

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(PurePosixPath(self._parquet)), "csv": str(self._csv)}

    def load(self) -> pd.DataFrame:
        """Read the Parquet file, or else the CSV file."""
        if self._parquet.exists():
            return pd.read_parquet(self._parquet)
        if self._csv.exists():
            logger.info("reading raw transactions from %s", self._csv)
            return pd.read_csv(self._csv, **self._load_args)
        raise FileNotFoundError(f"no raw transactions at {self._parquet} or {self._csv}")

    def save(self, data: pd.DataFrame) -> None:
        """Write Parquet."""
        self._parquet.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._parquet.with_suffix(".parquet.tmp")
        data.to_parquet(tmp, index=False)
        tmp.replace(self._parquet)

    def _exists(self) -> bool:
        return self._parquet.exists() or self._csv.exists()


class RegisteredModelDataset(AbstractDataset[None, Any]):
    """Loads a registered MLflow model by URI (e.g. ``models:/<model name>@champion``).

    Returns None when there is no such model yet, so that the quality gate can promote the first.
    """

    def __init__(self, model_uri: str, metadata: dict[str, Any] | None = None) -> None:
        self.metadata = metadata  # e.g. the kedro-viz layer
        self._model_uri = model_uri

    def _describe(self) -> dict[str, Any]:
        return {"model_uri": self._model_uri}

    def load(self) -> Any:
        """The pyfunc model, or None."""
        import mlflow
        from mlflow.exceptions import MlflowException

        try:
            return mlflow.pyfunc.load_model(self._model_uri)
        except (MlflowException, OSError) as exc:
            logger.info("no model at %s (%s)", self._model_uri, str(exc).splitlines()[0])
            return None

    def save(self, data: Any) -> None:
        """Read-only."""
        raise NotImplementedError("RegisteredModelDataset is read-only")


class _AtomicFileSystem:
    """Delegates to an fsspec filesystem; files opened for writing land under their name only
    when fully written (write to ``<name>.partial``, then rename)."""

    def __init__(self, fs: Any) -> None:
        self._fs = fs

    def __getattr__(self, name: str) -> Any:
        if name == "_fs":  # not set yet (unpickling the exported model): no endless delegation
            raise AttributeError(name)
        return getattr(self._fs, name)

    @contextmanager
    def open(self, path: str, mode: str = "rb", **kwargs: Any) -> Iterator[Any]:
        if "w" not in mode:
            with self._fs.open(path, mode=mode, **kwargs) as handle:
                yield handle
            return
        partial = f"{path}.partial"
        try:
            with self._fs.open(partial, mode=mode, **kwargs) as handle:
                yield handle
        except BaseException:
            if self._fs.exists(partial):
                self._fs.rm(partial)
            raise
        self._fs.mv(partial, path)


class _AtomicSaveMixin:
    """Saves through a temporary file and a rename, so that an interrupted run never leaves a
    half-written file where a later run (or the latest-version lookup) would load it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fs = _AtomicFileSystem(self._fs)


class AtomicParquetDataset(_AtomicSaveMixin, ParquetDataset):
    """``pandas.ParquetDataset`` with atomic saves."""


class AtomicPickleDataset(_AtomicSaveMixin, PickleDataset):
    """``pickle.PickleDataset`` with atomic saves."""


class AtomicJSONDataset(_AtomicSaveMixin, JSONDataset):
    """``json.JSONDataset`` with atomic saves."""
