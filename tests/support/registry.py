"""MLflow in tests: a context pointing MLflow at a store (public MLflow API only) and a temporary
registry holding the toy ``fraud_detector`` of ``tests/api/model_factory.py``.

A registry's model artifacts go under its own folder (the experiment's artifact location), never to
``./mlruns`` of the working directory.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

MODEL_NAME = "fraud_detector"
API_TESTS = Path(__file__).resolve().parents[1] / "api"
if str(API_TESTS) not in sys.path:
    sys.path.insert(0, str(API_TESTS))

_URI_VARS = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@contextmanager
def kept_mlflow_uri() -> Iterator[None]:
    """Whatever the block does to MLflow's URIs (``create_app`` sets the tracking URI), they are
    afterwards as the variables were before (``set_tracking_uri`` keeps its variable in step)."""
    import mlflow

    saved = {key: os.environ.get(key) for key in _URI_VARS}
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved["MLFLOW_TRACKING_URI"])  # None: unset
        mlflow.set_registry_uri(saved["MLFLOW_REGISTRY_URI"] or "")
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def mlflow_uri(uri: str) -> Iterator[Any]:
    """Point MLflow's tracking URI (and its variable) at ``uri`` with the registry following it, as
    in production; yields a client of ``uri``; restores the URIs afterwards (:func:`kept_mlflow_uri`)."""
    import mlflow

    with kept_mlflow_uri():
        os.environ.pop("MLFLOW_REGISTRY_URI", None)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri("")  # empty: the registry is the tracking store
        yield mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def use_experiment(name: str, artifacts: Path) -> str:
    """Create (or reuse) the experiment ``name`` with its artifacts under ``artifacts`` and make it
    the active one; returns its id."""
    import mlflow

    experiment = mlflow.get_experiment_by_name(name)
    experiment_id = (
        experiment.experiment_id
        if experiment is not None
        else mlflow.create_experiment(name, artifact_location=artifacts.resolve().as_uri())
    )
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


@dataclass
class Registry:
    """A temporary MLflow store holding ``fraud_detector``."""

    uri: str
    root: Path
    estimator: Any
    champion: str
    experiment: str = "tests"
    versions: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:  # the API tests' registry["uri"] style
        return getattr(self, key)

    def export(self, name: str, **kwargs: Any) -> str:
        """Register another version (``model_factory.export_model`` arguments); returns it."""
        import model_factory

        with mlflow_uri(self.uri):
            use_experiment(self.experiment, self.root / "artifacts")
            version = model_factory.export_model(
                self.root / name, kwargs.pop("estimator", self.estimator), **kwargs
            )
        self.versions[name] = version
        return version

    def point(self, alias: str, version: str) -> None:
        """Move an alias of ``fraud_detector``."""
        from mlflow import MlflowClient

        MlflowClient(tracking_uri=self.uri, registry_uri=self.uri).set_registered_model_alias(
            MODEL_NAME, alias, version
        )


def build_registry(
    root: Path, history: pd.DataFrame, experiment: str = "tests", max_iter: int = 40
) -> Registry:
    """Train a small model on ``history`` and register it as ``fraud_detector@champion`` in a
    SQLite store under ``root`` (artifacts in ``root/artifacts``)."""
    import model_factory

    root.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with mlflow_uri(uri):
        use_experiment(experiment, root / "artifacts")
        estimator = model_factory.train(history, max_iter=max_iter)
        version = model_factory.export_model(root / "v1", estimator)
    return Registry(uri, root, estimator, version, experiment, {"champion": version})


def feature_params():
    """The feature parameters the toy model is trained with."""
    import model_factory

    from fraud_kedro.features import FeatureParams

    return FeatureParams(**model_factory.FEATURE_PARAMS)


def seed_state(db: Path, history: pd.DataFrame, params: Any = None) -> Path:
    """A state store at ``db`` seeded with the days of ``history`` that the features need."""
    from fraud_kedro.api import seed_history

    seed_history(db, history, feature_params() if params is None else params)
    return db
