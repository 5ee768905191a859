"""Export a small model the way the training pipeline does, for the API tests.

kedro-mlflow's hook builds a ``KedroPipelineModel`` from the inference pipeline and the training
catalog, extracts its artifacts and calls ``mlflow.pyfunc.log_model``; this module makes the same
calls on a tiny model trained on simulated data, registers it as ``fraud_detector`` and can move the
``champion``/``challenger`` aliases. The inference pipeline is the project's own
(``fraud_kedro.pipelines.inference``); only the training is a quick fit instead of the training
pipeline's tuning, which would take minutes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cloudpickle
import mlflow
import pandas as pd
from kedro.io import DataCatalog
from kedro.pipeline import Node, Pipeline
from kedro_datasets.json import JSONDataset
from kedro_datasets.pickle import PickleDataset
from kedro_mlflow.mlflow import KedroPipelineModel
from mlflow import MlflowClient
from sklearn.ensemble import HistGradientBoostingClassifier

from fraud_kedro.features import FeatureParams, compute_features, feature_names
from fraud_kedro.pipelines.inference import create_pipeline as create_inference_pipeline

MODEL_NAME = "fraud_detector"
FEATURE_PARAMS = {
    "customer_windows_days": [1, 7, 30],
    "terminal_windows_days": [1, 7, 30],
    "terminal_label_delay_days": 7,
    "night_start_hour": 22,
    "night_end_hour": 6,
}


def broken_predict(
    scoring_input: pd.DataFrame, fraud_model, feature_spec: dict, decision_threshold: dict
) -> pd.DataFrame:
    """An inference node that fails (a model that loads but cannot score)."""
    raise RuntimeError("this model is broken")


def inference_pipeline(func=None) -> Pipeline:
    """The project's inference pipeline, or a one-node stand-in running ``func``."""
    if func is None:
        return create_inference_pipeline()
    return Pipeline(
        [
            Node(
                func,
                inputs=["scoring_input", "fraud_model", "feature_spec", "decision_threshold"],
                outputs="predictions",
                name="predict_fraud_node",
            )
        ]
    )


def train(transactions: pd.DataFrame, seed: int = 0, max_iter: int = 40):
    """A small gradient-boosting model on the features of ``transactions``."""
    params = FeatureParams(**FEATURE_PARAMS)
    features = compute_features(transactions, params)
    x = features[feature_names(params)].to_numpy()
    model = HistGradientBoostingClassifier(max_iter=max_iter, random_state=seed)
    model.fit(x, transactions["is_fraud"].to_numpy())
    return model


def export_model(
    workdir: Path,
    estimator,
    threshold: float = 0.5,
    func=None,
    alias: str | None = "champion",
    corrupt: bool = False,
) -> str:
    """Log and register a KedroPipelineModel; returns the new version.

    Args:
        workdir: Folder for the artifacts persisted before logging.
        estimator: The fitted sklearn estimator.
        threshold: Decision threshold artifact.
        func: A replacement inference node function (None: the project's pipeline).
        alias: Alias to point at the new version (None: none).
        corrupt: Overwrite the logged estimator pickle with garbage (a model that cannot load).
    """
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    params = FeatureParams(**FEATURE_PARAMS)
    workdir.mkdir(parents=True, exist_ok=True)
    catalog = DataCatalog(
        {
            "fraud_model": PickleDataset(filepath=str(workdir / "fraud_model.pkl")),
            "decision_threshold": JSONDataset(filepath=str(workdir / "decision_threshold.json")),
            "feature_spec": JSONDataset(filepath=str(workdir / "feature_spec.json")),
        }
    )
    catalog.save("fraud_model", estimator)
    catalog.save("decision_threshold", {"threshold": threshold})
    catalog.save("feature_spec", {"features": feature_names(params), "params": FEATURE_PARAMS})
    kpm = KedroPipelineModel(
        pipeline=inference_pipeline(func), catalog=catalog, input_name="scoring_input"
    )
    artifacts = kpm.extract_pipeline_artifacts(parameters_saving_folder=workdir)
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=kpm,
            artifacts=artifacts,
            pip_requirements=["scikit-learn", "kedro-mlflow"],
            registered_model_name=MODEL_NAME,
        )
    version = str(info.registered_model_version)
    if corrupt:
        location = MlflowClient().get_logged_model(info.model_id).artifact_location
        for pkl in Path(location.removeprefix("file://")).rglob("fraud_model.pkl"):
            pkl.write_bytes(b"not a pickle")
    if alias:
        MlflowClient().set_registered_model_alias(MODEL_NAME, alias, version)
    return version
