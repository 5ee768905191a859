"""Kedro runs of the ``small`` environment in a throw-away copy of the project.

Each command runs in a subprocess (``python -m kedro run --env small ...``) with the copy as working
directory and ``MLFLOW_TRACKING_URI`` pointing at a SQLite file inside it, so that runs are isolated
from the work tree, from each other's global state and from other test suites. The expensive runs are
session fixtures: ingestion once, training twice; what a test needs from a run is read right after
it (the second run moves the aliases and overwrites data/06_models).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .helpers import Project, TrainingRun, count_runs, train


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory, copy_project: Callable[[Path], Path]) -> Project:
    """The project copy after ``kedro run --pipelines simulation,data_processing --env small``."""
    path = copy_project(tmp_path_factory.mktemp("kedro") / "fraud_kedro")
    proj = Project(path=path, tracking_uri=f"sqlite:///{path / 'mlflow.db'}")
    proj.run("--pipelines", "simulation,data_processing")
    proj.runs_after_ingest = count_runs(path / "mlflow.db")
    return proj


@pytest.fixture(scope="session")
def first_training(project: Project) -> TrainingRun:
    """The first training run: an empty registry, so the model must become the champion."""
    return train(project)


@pytest.fixture(scope="session")
def second_training(project: Project, first_training: TrainingRun) -> TrainingRun:
    """The same training again on the same data (reproducibility and the quality gate)."""
    return train(project)
