"""The monitoring loop at small scale: train, monitor a drifting period, retrain, promote, serve.

The same sequence as ``make demo`` (docs/monitoring.md), on ``--env small``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from .helpers import MODEL_NAME, Project, use_mlflow

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory, copy_project: Callable[[Path], Path]) -> Project:
    path = copy_project(tmp_path_factory.mktemp("loop") / "fraud_kedro")
    proj = Project(path=path, tracking_uri=f"sqlite:///{path / 'mlflow.db'}")
    proj.run()  # the main job: simulate, train, batch-score the production period, monitor
    proj.run("--pipeline", "retraining")
    return proj


def _decision(project: Project) -> dict:
    path = project.data("08_reporting/monitoring/retrain_decision.json")
    if path.is_dir():
        path = sorted(path.glob("*/retrain_decision.json"))[-1]
    return json.loads(path.read_text())


def test_drift_raises_the_retraining_decision(loop: Project) -> None:
    decision = _decision(loop)
    assert decision["retrain"] is True
    assert decision["reasons"], "a retraining decision names its reasons"
    assert "retraining due" in loop.logs["--pipeline retraining"]


def test_retraining_registers_a_new_version_and_the_gate_decides(loop: Project) -> None:
    with use_mlflow(loop.tracking_uri):
        from mlflow import MlflowClient

        client = MlflowClient()
        versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{MODEL_NAME}'"))
        aliases = client.get_registered_model(MODEL_NAME).aliases
        tag = client.get_model_version(MODEL_NAME, "2").tags["quality_gate"]
    assert versions == [1, 2]
    assert str(aliases["challenger"]) == "2"
    assert str(aliases["champion"]) == ("2" if tag == "promote" else "1")
    verdict = loop.read_json("08_reporting/quality_gate_verdict.json")
    assert verdict["promote"] == (tag == "promote")
    # trained on the drifted window, the new model beats the old champion on the latest test window
    assert verdict["promote"] is True, verdict["reasons"]


def test_retraining_uses_the_latest_window(loop: Project) -> None:
    split = loop.read_json("05_model_input/split_info.json")
    assert split["production_rows"] == 0
    assert split["test_end"] == split["data_end"]
