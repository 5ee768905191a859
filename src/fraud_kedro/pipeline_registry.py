"""Project pipelines.

``__default__`` is the main job: simulate (unless your own data is in data/01_raw), build features,
tune, train, evaluate, batch-score the production period and monitor it, as one kedro-mlflow
``PipelineML`` so that the inference pipeline is exported with the model. A PipelineML must not be
summed with other pipelines (that drops the export), so each one is built deliberately here.
"""

from __future__ import annotations

from pathlib import Path

from kedro.framework.project import find_pipelines
from kedro.framework.project import pipelines as project_pipelines
from kedro.pipeline import Node, Pipeline, pipeline
from kedro_mlflow.pipeline import pipeline_ml_factory

from fraud_kedro import job_options
from fraud_kedro.contract import MODEL_NAME
from fraud_kedro.distributed import cluster as dask_cluster
from fraud_kedro.pipelines.evaluation.nodes import score_table

USER_DATA = (Path("data/01_raw/transactions.parquet"), Path("data/01_raw/transactions.csv"))


def _batch_scoring() -> Pipeline:
    return Pipeline(
        [
            Node(
                score_table,
                inputs=["production_set", "fraud_model", "feature_spec", "decision_threshold"],
                outputs="production_predictions",
                name="batch_score_production_node",
            )
        ],
        tags=["batch_scoring"],
        namespace="batch_scoring",
        prefix_datasets_with_namespace=False,
    )


def _as_pipeline_ml(training: Pipeline, inference: Pipeline, model_name: str = MODEL_NAME) -> Pipeline:
    return pipeline_ml_factory(
        training=training,
        inference=inference,
        input_name="scoring_input",
        kpm_kwargs={"copy_mode": "assign"},
        log_model_kwargs={
            "name": MODEL_NAME,
            "registered_model_name": model_name,
            "signature": "auto",
        },
    )


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines."""
    # Kedro 1.7 discovers only the pipelines named on the command line (`--pipeline training`);
    # the pipelines composed here need every modular pipeline, so discovery loads them all.
    project_pipelines.set_requested(None)
    pipes = find_pipelines(raise_errors=True)
    empty = Pipeline([])
    inference = pipes.pop("inference")
    batch_scoring = _batch_scoring()
    if dask_cluster.enabled():  # `kedro run --env dask`: the heavy batch nodes on Dask
        from fraud_kedro.distributed.pipelines import on_dask

        pipes = {name: on_dask(pipe) for name, pipe in pipes.items()}
        batch_scoring = on_dask(batch_scoring)
    monitoring = pipes.get("monitoring", empty)
    model_training = pipes["data_science"] + pipes["evaluation"]
    # per-env options (parameters `main_job`, e.g. conf/creditcard): see fraud_kedro.job_options
    options = job_options.current()
    model_name = options["model_name"] or MODEL_NAME
    job_monitoring = monitoring if options["monitoring"] else empty
    # the simulator writes simulated_transactions, never your data/01_raw/transactions file
    pipes["simulation"] = pipeline(
        pipes["simulation"], outputs={"raw_transactions": "simulated_transactions"}
    )
    if options["simulate"] == "auto" and not any(p.exists() for p in USER_DATA):
        # no data of yours in data/01_raw: simulate it and build features from the simulation
        pipes["data_processing"] = pipeline(
            pipes["data_processing"], inputs={"raw_transactions": "simulated_transactions"}
        )
        ingest = pipes["simulation"] + pipes["data_processing"]
    else:
        ingest = pipes["data_processing"]
    pipelines = dict(pipes)
    pipelines["batch_scoring"] = batch_scoring
    pipelines["training"] = _as_pipeline_ml(model_training, inference, model_name)
    # monitoring, then (hooks.RetrainingHooks) data_processing + training when the decision says so
    pipelines["retraining"] = monitoring
    pipelines["__default__"] = _as_pipeline_ml(
        ingest + model_training + batch_scoring + job_monitoring, inference, model_name
    )
    return pipelines
