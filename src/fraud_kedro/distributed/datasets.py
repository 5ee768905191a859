"""Partitioned Parquet datasets of the dask env (kedro-datasets' ``dask.ParquetDataset``)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import dask.dataframe as dd
import pandas as pd
from kedro.io.core import get_protocol_and_path
from kedro_datasets.dask import ParquetDataset

#: rows per partition when a pandas table is saved to a partitioned dataset
DEFAULT_PARTITION_ROWS = 1_000_000


def to_dask(frame: pd.DataFrame | dd.DataFrame, partition_rows: int = DEFAULT_PARTITION_ROWS
            ) -> dd.DataFrame:
    """``frame`` as a Dask DataFrame (a pandas frame is cut into ``partition_rows`` partitions)."""
    if isinstance(frame, dd.DataFrame):
        return frame
    npartitions = max(1, math.ceil(len(frame) / max(1, int(partition_rows))))
    return dd.from_pandas(frame.reset_index(drop=True), npartitions=npartitions, sort=False)


class DaskParquetDataset(ParquetDataset):
    """kedro-datasets' ``dask.ParquetDataset`` (a directory of part files) that

    * takes a pandas DataFrame too on save (the simulator's table enters Dask here), and
    * replaces the whole directory on save on a local path: written next to it, then renamed, so
      that no part file of an earlier, larger save survives and a killed run leaves the old data.
    """

    def __init__(self, *args: Any, partition_rows: int = DEFAULT_PARTITION_ROWS, **kwargs: Any
                 ) -> None:
        super().__init__(*args, **kwargs)
        self._partition_rows = int(partition_rows)

    def save(self, data: pd.DataFrame | dd.DataFrame) -> None:
        """Write ``data`` as partitioned Parquet (no index)."""
        data = to_dask(data, self._partition_rows)
        if get_protocol_and_path(self._filepath)[0] != "file":
            super().save(data)
            return
        self._process_schema()
        target = Path(self._filepath)
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        data.to_parquet(str(tmp), storage_options=self.fs_args,
                        **{"write_index": False, **self._save_args})
        old = target.with_name(target.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)
