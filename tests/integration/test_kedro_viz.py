"""``kedro viz build``: every catalog entry has a layer and the stages collapse as namespaces."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from support.project import kedro_env

pytestmark = pytest.mark.slow
STAGES = {"simulation", "data_processing", "data_science", "evaluation", "batch_scoring", "monitoring"}
LAYERS = ["raw", "intermediate", "primary", "feature", "model_input", "models", "model_output",
          "reporting"]  # fmt: skip


def _catalog_names(project: Path) -> set[str]:
    names: set[str] = set()
    for path in (project / "conf" / "base").glob("catalog*.yml"):
        names |= set(yaml.safe_load(path.read_text()))
    return names


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory, copy_project: Callable[[Path], Path]) -> dict:
    project = copy_project(tmp_path_factory.mktemp("viz") / "fraud_kedro")
    env = kedro_env()
    proc = subprocess.run(
        [sys.executable, "-m", "kedro", "viz", "build"],
        cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    main = json.loads((project / "build" / "api" / "main").read_text())
    main["catalog_names"] = _catalog_names(project)
    return main


def test_every_catalog_entry_in_the_graph_has_a_known_layer(graph: dict) -> None:
    data = {n["name"]: n.get("layer") for n in graph["nodes"] if n["type"] == "data"}
    entries = {name: layer for name, layer in data.items() if name in graph["catalog_names"]}
    assert len(entries) > 30
    assert {name for name, layer in entries.items() if layer is None} == set()
    assert set(graph["layers"]) <= set(LAYERS)
    assert graph["layers"] == [layer for layer in LAYERS if layer in graph["layers"]], "in order"
    assert {"raw", "feature", "models", "reporting"} <= set(graph["layers"])


def test_stages_are_modular_pipelines_that_collapse(graph: dict) -> None:
    assert STAGES <= set(graph["modular_pipelines"])
    tasks = [n for n in graph["nodes"] if n["type"] == "task"]
    assert all(n["modular_pipelines"] and n["modular_pipelines"][0] in STAGES for n in tasks), [
        n["full_name"] for n in tasks if not n["modular_pipelines"]
    ]
    assert {n["full_name"].split(".")[0] for n in tasks} == STAGES
    # dataset names are global: not prefixed with the stage
    data = {n["name"] for n in graph["nodes"] if n["type"] == "data"}
    assert {"model_input_table", "fraud_model", "retrain_decision", "monitoring_report"} <= data
