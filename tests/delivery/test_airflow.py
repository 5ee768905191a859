"""kedro-airflow turns the pipelines into Airflow DAG files that compile.

Airflow itself is not installed here (and must not be): the DAGs are only compiled, not imported.
"""

from __future__ import annotations

import ast
import py_compile
from pathlib import Path

import pytest

from .helpers import copy_project, run_kedro

TEMPLATE = Path("deploy") / "airflow" / "dag_template.j2"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(tmp_path_factory.mktemp("airflow") / "project")


def compiled_dags(folder: Path) -> dict[str, str]:
    """Compile every generated DAG file; return the source of each by file name."""
    dags = sorted(folder.glob("*.py"))
    assert dags, f"kedro airflow create wrote no DAG in {folder}"
    for dag in dags:
        py_compile.compile(str(dag), cfile=str(dag.with_suffix(".pyc")), doraise=True)
    return {dag.name: dag.read_text() for dag in dags}


def dag_ids(source: str) -> list[str]:
    """The ``dag_id=`` values of a DAG file."""
    return [
        kw.value.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        for kw in node.keywords
        if kw.arg == "dag_id" and isinstance(kw.value, ast.Constant)
    ]


def test_default_template_generates_a_dag_that_compiles(project: Path, tmp_path: Path) -> None:
    run_kedro(project, "airflow", "create", "--pipelines", "data_processing", "--target-dir", str(tmp_path))
    dags = compiled_dags(tmp_path)
    assert list(dags) == ["fraud_kedro_data_processing_dag.py"]
    source = dags["fraud_kedro_data_processing_dag.py"]
    for node in ("validate_raw_transactions_node", "build_model_input_table_node"):
        assert node in source


def test_project_template_gives_one_dag_per_pipeline(project: Path, tmp_path: Path) -> None:
    run_kedro(
        project,
        "airflow",
        "create",
        "--all",
        "--jinja-file",
        str(project / TEMPLATE),
        "--group-by",
        "memory",
        "--target-dir",
        str(tmp_path),
        "--params",
        'schedule="@daily"',
    )
    dags = compiled_dags(tmp_path)
    ids = [dag_id for source in dags.values() for dag_id in dag_ids(source)]
    assert len(ids) == len(dags), "every DAG file declares exactly one dag_id"
    assert len(set(ids)) == len(ids), f"DAG ids must be unique across pipelines: {ids}"
    assert "fraud-kedro-training" in ids and "fraud-kedro-data-processing" in ids
    # the PipelineML runs as one task so that the model is logged and promoted in one session
    training = dags["fraud_kedro_training_dag.py"]
    assert training.count("@task(") == 1 and "node_names=" not in training.split("def fraud_kedro")[1]
    processing = dags["fraud_kedro_data_processing_dag.py"]
    assert 'schedule="@daily"' in processing
    assert '"data_processing.validate_raw_transactions_node"' in processing
