"""The monitoring loop at small scale: train, monitor a drifting period, retrain, promote, serve.

The same sequence as ``make demo`` (docs/monitoring.md), on ``--env small``.
"""

from __future__ import annotations

import json
import re
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


# an element or a style of the markup that would fetch something from another host (inline script
# bodies are left out: plotly.js holds URLs as strings it never fetches for our figures)
_EXTERNAL = re.compile(
    r"""\b(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?\s*(?:https?:)?//"""
    r"""|@import\s+["']?(?:https?:)?//""",
    re.IGNORECASE,
)
_SCRIPT_BODY = re.compile(r"(<script\b[^>]*>).*?(</script>)", re.IGNORECASE | re.DOTALL)


def test_no_generated_html_loads_anything_from_the_internet(loop: Project) -> None:
    # what the pipelines wrote (data/, and MLflow artifacts), not the templates under src/
    pages = sorted(
        p for p in loop.path.rglob("*.html")
        if p.is_file() and "src" not in p.relative_to(loop.path).parts  # versions are folders
    )
    names = {p.name for p in pages}
    assert {"index.html", "performance.html", "drift.html", "calibration.html"} <= names, names
    assert "optuna_history.html" in names, names
    for page in pages:
        markup = _SCRIPT_BODY.sub(r"\1\2", page.read_text(encoding="utf-8"))
        found = [markup[max(m.start() - 40, 0) : m.end() + 40] for m in _EXTERNAL.finditer(markup)]
        assert found == [], f"{page.relative_to(loop.path)} loads {found[:3]}"
        assert "<script" in markup and "Plotly" in page.read_text(encoding="utf-8"), page


def test_demo_prints_real_files(loop: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    from fraud_kedro import demo

    monkeypatch.chdir(loop.path)
    files = demo.report_files()
    assert [f.name for f in files[:4]] == ["index.html", "performance.html", "drift.html",
                                           "calibration.html"]  # fmt: skip
    assert all(f.is_file() and f.is_absolute() for f in files), files
