"""``kedro run --env dask_small --pipeline dask`` (the dask env's catalog with the small env's
parameters) runs the main job end to end on a local Dask cluster, in a throw-away copy of the
project."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dask.dataframe as dd
import pandas as pd
import pytest

QUIET = {"KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1", "NML_DISABLE_USAGE_LOGGING": "1",
         "MLFLOW_DISABLE_TELEMETRY": "true", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_main_job_on_dask(tmp_path: Path, copy_project) -> None:
    path = copy_project(tmp_path / "fraud_kedro")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FRAUD_", "MLFLOW_", "DASK_")) and k != "KEDRO_ENV"}
    env.update(QUIET, MLFLOW_TRACKING_URI=f"sqlite:///{path / 'mlflow.db'}")
    cmd = [sys.executable, "-m", "kedro", "run", "--env", "dask_small", "--pipeline", "dask",
           "--params", "dask.local_cluster.memory_limit=1GB,dask.partition_rows=20000"]
    proc = subprocess.run(cmd, cwd=path, env=env, capture_output=True, text=True, timeout=1200,
                          check=False)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    assert "dask: starting a local cluster" in log
    table = dd.read_parquet(str(path / "data/04_feature/dask/model_input_table"))
    assert table.npartitions >= 2
    scored = pd.read_parquet(path / "data/07_model_output/dask/production_predictions")
    assert {"fraud_probability", "is_fraud_predicted"} <= set(scored.columns)
    assert (path / "data/08_reporting/metrics.json").exists()
    assert list((path / "data/08_reporting/monitoring").glob("**/drift.parquet"))
