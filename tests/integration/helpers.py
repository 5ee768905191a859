"""Helpers of the integration tests: a project copy that runs Kedro, MLflow access, one training run."""

from __future__ import annotations

import json
import pickle
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from support.project import kedro_env
from support.registry import mlflow_uri

MODEL_NAME = "fraud_detector"
EXPERIMENT = "fraud_kedro"


@dataclass
class Project:
    """A copy of the project with its own MLflow store."""

    path: Path
    tracking_uri: str
    runs_after_ingest: int = -1
    logs: dict[str, str] = field(default_factory=dict)

    def run(self, *args: str, extra_env: dict[str, str] | None = None) -> str:
        """``kedro run --env small *args`` in the copy; fails the test with the log on error.

        ``extra_env`` (e.g. ``FRAUD_STATE_URL``) is set after the shell's ``FRAUD_*`` are dropped.
        """
        cmd = [sys.executable, "-m", "kedro", "run", "--env", "small", *args]
        proc = subprocess.run(  # noqa: S603 - fixed command, arguments from the tests
            cmd,
            cwd=self.path,
            env=kedro_env(MLFLOW_TRACKING_URI=self.tracking_uri, **(extra_env or {})),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        log = proc.stdout + proc.stderr
        self.logs[" ".join(args)] = log
        if proc.returncode != 0:
            pytest.fail(f"{' '.join(cmd[2:])} failed ({proc.returncode}):\n{log[-8000:]}")
        return log

    def data(self, relative: str) -> Path:
        return self.path / "data" / relative

    def read_parquet(self, relative: str) -> pd.DataFrame:
        """A Parquet dataset, versioned (the latest version) or not."""
        path = self.data(relative)
        if path.is_dir():
            path = sorted(path.glob(f"*/{path.name}"))[-1]
        return pd.read_parquet(path)

    def read_json(self, relative: str) -> Any:
        return json.loads(self.data(relative).read_text())


use_mlflow = mlflow_uri  # the name these tests know


def count_runs(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as con:
        return con.execute("select count(*) from runs").fetchone()[0]


@dataclass
class TrainingRun:
    """What one ``kedro run --pipeline training`` left behind, read right after it."""

    run_id: str
    version: str
    aliases: dict[str, str]
    version_tags: dict[str, str]
    run_tags: dict[str, str]
    run_metrics: dict[str, float]
    run_params: dict[str, str]
    artifacts: list[str]
    metrics: dict
    verdict: dict
    champion_metrics: dict
    tuning_results: dict
    fraud_model: Any
    feature_spec: dict
    threshold: dict
    scoring_input: pd.DataFrame
    pyfunc_run_id: str
    pyfunc_signature: Any
    pyfunc_input_example: pd.DataFrame | None
    pyfunc_predictions: pd.DataFrame
    log: str


def _list_artifacts(client: Any, run_id: str, path: str | None = None) -> list[str]:
    out = []
    for item in client.list_artifacts(run_id, path):
        out += _list_artifacts(client, run_id, item.path) if item.is_dir else [item.path]
    return out


def train(project: Project) -> TrainingRun:
    import mlflow

    log = project.run("--pipeline", "training")
    scoring_input = pd.read_parquet(project.data("05_model_input/scoring_input.parquet"))
    with use_mlflow(project.tracking_uri) as client:
        experiment = client.get_experiment_by_name(EXPERIMENT)
        run = client.search_runs(
            [experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1
        )[0]
        versions = client.search_model_versions(f"name='{MODEL_NAME}' and run_id='{run.info.run_id}'")
        assert len(versions) == 1, f"run {run.info.run_id} registered {len(versions)} model versions"
        aliases = {
            alias: client.get_model_version_by_alias(MODEL_NAME, alias).version
            for alias in client.get_registered_model(MODEL_NAME).aliases
        }
        champion = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")
        with (project.data("06_models/fraud_model.pkl")).open("rb") as fh:
            fraud_model = pickle.load(fh)  # noqa: S301 - our own artifact
        return TrainingRun(
            run_id=run.info.run_id,
            version=str(versions[0].version),
            aliases={k: str(v) for k, v in aliases.items()},
            version_tags=dict(client.get_model_version(MODEL_NAME, versions[0].version).tags),
            run_tags=dict(run.data.tags),
            run_metrics=dict(run.data.metrics),
            run_params=dict(run.data.params),
            artifacts=_list_artifacts(client, run.info.run_id),
            metrics=project.read_json("08_reporting/metrics.json"),
            verdict=project.read_json("08_reporting/quality_gate_verdict.json"),
            champion_metrics=project.read_json("08_reporting/champion_metrics.json"),
            tuning_results=project.read_json("06_models/tuning_results.json"),
            fraud_model=fraud_model,
            feature_spec=project.read_json("04_feature/feature_spec.json"),
            threshold=project.read_json("06_models/decision_threshold.json"),
            scoring_input=scoring_input,
            pyfunc_run_id=champion.metadata.run_id,
            pyfunc_signature=champion.metadata.signature,
            pyfunc_input_example=champion.input_example,
            pyfunc_predictions=champion.predict(scoring_input),
            log=log,
        )
