"""notebooks/01_exploration.ipynb runs from top to bottom, on catalog data and without any data."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from .helpers import ROOT, copy_project, kedro_env, run_kedro

NOTEBOOK = Path("notebooks") / "01_exploration.ipynb"
CELL_TIMEOUT = 120

pytestmark = pytest.mark.slow


def execute(project: Path, **env: str) -> nbformat.NotebookNode:
    """Execute the project's copy of the notebook in its notebooks/ folder, as a user would."""
    path = project / NOTEBOOK
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    # the kernel inherits this process's environment; nbclient takes no env argument for it
    with pytest.MonkeyPatch.context() as mp:
        for key, value in kedro_env(**env).items():
            mp.setenv(key, value)
        mp.delenv("MPLBACKEND", raising=False)
        client.execute()
    return nb


def text_output(nb: nbformat.NotebookNode) -> str:
    """All stdout text of the executed notebook."""
    return "".join(
        out.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.output_type == "stream" and out.get("name") == "stdout"
    )


def image_count(nb: nbformat.NotebookNode) -> int:
    """Number of PNG figures the notebook displayed."""
    return sum(
        "image/png" in out.get("data", {})
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )


def test_notebook_is_committed_without_outputs() -> None:
    nb = nbformat.read(ROOT / NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, "the notebook has no code cell"
    assert all(not cell.outputs and cell.execution_count is None for cell in code), (
        "commit the notebook without outputs (clear them before saving)"
    )
    source = "\n".join(cell.source for cell in code)
    assert 'catalog.load("model_input_table")' in source
    assert "bootstrap_project" in source and "KedroSession" in source


def test_notebook_reads_the_catalog(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    run_kedro(project, "run", "--env", "small", "--pipelines", "simulation,data_processing")
    nb = execute(project, KEDRO_ENV="small")
    out = text_output(nb)
    assert "Kedro environment: small" in out
    assert "data source: catalog (model_input_table)" in out
    assert image_count(nb) >= 4, "expected the fraud-rate, amount and separability figures"


def test_notebook_falls_back_to_simulation_without_data(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    nb = execute(project)
    out = text_output(nb)
    assert "data source: simulated in memory" in out
    assert image_count(nb) >= 4
    written = [p for p in (project / "data").rglob("*") if p.is_file()]
    assert written == [], f"the fallback must not write data: {written}"
