"""Read-only data: no run may write a dataset whose catalog entry says ``read_only: true``.

``raw_transactions`` (your data) is marked so in conf/base and conf/creditcard;
:class:`fraud_kedro.hooks.ReadOnlyDataHooks` stops such a run before any node runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Node, Pipeline
from support.project import ROOT, copy_project, kedro_env

from fraud_kedro import settings
from fraud_kedro.hooks import ReadOnlyDataError, ReadOnlyDataHooks, read_only_outputs
from fraud_kedro.pipelines.simulation import create_pipeline as raw_simulation


def _identity(df: pd.DataFrame) -> pd.DataFrame:
    return df


def _catalog(env: str = "base") -> DataCatalog:
    config = yaml.safe_load((ROOT / "conf" / "base" / "catalog.yml").read_text())
    if env != "base":
        config.update(yaml.safe_load((ROOT / "conf" / env / "catalog.yml").read_text()))
    return DataCatalog.from_config(config)


def _guard(pipeline: Pipeline, catalog: DataCatalog) -> None:
    ReadOnlyDataHooks().before_pipeline_run(run_params={}, pipeline=pipeline, catalog=catalog)


def test_a_pipeline_that_writes_a_read_only_dataset_fails_naming_it() -> None:
    catalog = DataCatalog(
        {
            "source": MemoryDataset(pd.DataFrame({"a": [1]}), metadata={"read_only": True}),
            "copy": MemoryDataset(metadata={"read_only": True}),
            "free": MemoryDataset(),
        }
    )
    writes = Pipeline([Node(_identity, "free", "copy", name="n1")])
    with pytest.raises(ReadOnlyDataError, match=r"read-only data: copy\. Nothing was run"):
        _guard(writes, catalog)
    # reading a read-only dataset is what it is for
    _guard(Pipeline([Node(_identity, "source", "free", name="n2")]), catalog)
    assert read_only_outputs(Pipeline([Node(_identity, "source", "other", name="n3")]), catalog) == {}


@pytest.mark.parametrize("env", ["base", "creditcard"])
def test_raw_transactions_is_read_only_in_the_project_catalog(env: str) -> None:
    catalog = _catalog(env)
    # the simulation module on its own writes raw_transactions; the registry renames that output
    with pytest.raises(ReadOnlyDataError, match="raw_transactions"):
        _guard(raw_simulation(), catalog)


def test_no_registered_pipeline_writes_read_only_data() -> None:
    from kedro.framework.project import configure_project, pipelines

    configure_project("fraud_kedro")
    catalog = _catalog()
    for name, pipe in pipelines.items():
        assert read_only_outputs(pipe, catalog) == {}, name


def test_the_creditcard_env_refuses_to_simulate() -> None:
    from kedro.framework.project import configure_project, pipelines

    configure_project("fraud_kedro")
    catalog = _catalog("creditcard")
    with pytest.raises(ReadOnlyDataError, match="--env creditcard --pipeline creditcard"):
        _guard(pipelines["__default__"], catalog)
    _guard(pipelines["creditcard"], catalog)


def test_the_guard_is_a_project_hook() -> None:
    assert any(isinstance(hook, ReadOnlyDataHooks) for hook in settings.HOOKS)


@pytest.mark.slow
def test_kedro_run_stops_before_any_node(tmp_path: Path) -> None:
    """A run whose pipeline writes a dataset marked read-only (in its env) fails, writing nothing."""
    root = copy_project(tmp_path / "project")
    (root / "conf" / "small" / "catalog.yml").write_text(
        "simulated_transactions:\n"
        "  type: fraud_kedro.io.files.AtomicParquetDataset\n"
        "  filepath: data/01_raw/simulated_transactions.parquet\n"
        "  metadata: {read_only: true}\n"
    )
    env = kedro_env(
        MLFLOW_TRACKING_URI=f"sqlite:///{root / 'mlflow.db'}",
        PYTHONPATH=os.pathsep.join([str(root / "src"), os.environ.get("PYTHONPATH", "")]),
    )
    result = subprocess.run(  # noqa: S603 - fixed command
        [sys.executable, "-m", "kedro", "run", "--env", "small", "--pipeline", "simulation"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "read-only data: simulated_transactions. Nothing was run" in output, output[-3000:]
    assert "Running node" not in output
    assert not (root / "data" / "01_raw" / "simulated_transactions.parquet").exists()
