"""Project pipelines: fixed and named, whatever the files on disk or the env's parameters.

The main job (build features, tune, train, evaluate, batch-score the production period and
monitor it) is one kedro-mlflow ``PipelineML``, so that the inference pipeline is exported with
the model. A PipelineML must not be summed with other pipelines (that drops the export), so each
one is built deliberately here. It comes in three fixed shapes:

* ``__default__`` (``kedro run``): simulate the world first; features from ``simulated_transactions``.
  It never reads nor writes ``raw_transactions`` (your file).
* ``own_data`` (``kedro run --pipeline own_data``): the same job on ``raw_transactions``, the catalog
  entry of your file; nothing is simulated.
* ``creditcard`` (``kedro run --env creditcard --pipeline creditcard``): ``own_data`` without
  monitoring (a two-day research file has no production period).
* ``dask`` and ``own_data_dask`` (``kedro run --env dask --pipeline dask``): ``__default__`` and
  ``own_data`` with the heavy batch nodes on Dask (:mod:`fraud_kedro.distributed.pipelines`); the
  dask envs' catalogs hold those nodes' tables as Dask datasets.

Stages keep their names: ``simulation`` writes ``simulated_transactions``; ``data_processing``
reads it (so ``--pipelines simulation,data_processing`` works) and ``own_data_processing`` reads
``raw_transactions``; ``retraining`` / ``own_data_retraining`` run monitoring, then (hooks.py,
fraud_kedro.retraining) the matching processing and ``training`` when the decision says so. The
registered model's name is not part of the graph: the promotion hook sets it from
``quality_gate.model_name`` for each run.
"""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.framework.project import pipelines as project_pipelines
from kedro.pipeline import Pipeline, pipeline
from kedro_mlflow.pipeline import pipeline_ml_factory

from fraud_kedro.contract import MODEL_NAME
from fraud_kedro.distributed.pipelines import on_dask
from fraud_kedro.pipelines.evaluation.nodes import score_table
from fraud_kedro.pipelines.stages import stage, step

#: The catalog entry of your own raw data (read-only: conf/base/catalog.yml) and the simulator's.
RAW = "raw_transactions"
SIMULATED = "simulated_transactions"


def _batch_scoring() -> Pipeline:
    return stage(
        "batch_scoring",
        [
            step(score_table,
                 ["production_set", "fraud_model", "feature_spec", "decision_threshold"],
                 "production_predictions",
                 name="batch_score_production_node"),
        ],
    )


def _as_pipeline_ml(training: Pipeline, inference: Pipeline) -> Pipeline:
    # registered_model_name is the default; hooks.PromotionHooks sets the run's
    # quality_gate.model_name on the run's copy of the pipeline before it starts
    return pipeline_ml_factory(
        training=training,
        inference=inference,
        input_name="scoring_input",
        kpm_kwargs={"copy_mode": "assign"},
        log_model_kwargs={
            "name": MODEL_NAME,
            "registered_model_name": MODEL_NAME,
            "signature": "auto",
        },
    )


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines."""
    # Kedro 1.7 discovers only the pipelines named on the command line (`--pipeline training`);
    # the pipelines composed here need every modular pipeline, so discovery loads them all.
    project_pipelines.set_requested(None)
    pipes = find_pipelines(raise_errors=True)
    inference = pipes.pop("inference")
    batch_scoring = _batch_scoring()
    monitoring = pipes.get("monitoring", Pipeline([]))
    model_training = pipes["data_science"] + pipes["evaluation"]
    processing = pipes["data_processing"]  # reads raw_transactions
    # the simulator writes simulated_transactions, never your raw_transactions
    simulation = pipeline(pipes["simulation"], outputs={RAW: SIMULATED})
    simulated_processing = pipeline(processing, inputs={RAW: SIMULATED})

    pipelines = dict(pipes)
    pipelines["simulation"] = simulation
    pipelines["data_processing"] = simulated_processing
    pipelines["own_data_processing"] = processing
    pipelines["batch_scoring"] = batch_scoring
    pipelines["training"] = _as_pipeline_ml(model_training, inference)
    # monitoring, then (hooks.RetrainingHooks) processing + training when the decision says so
    pipelines["retraining"] = monitoring
    pipelines["own_data_retraining"] = monitoring
    scored = model_training + batch_scoring
    main_job = simulation + simulated_processing + scored + monitoring
    own_data = processing + scored + monitoring
    pipelines["__default__"] = _as_pipeline_ml(main_job, inference)
    pipelines["own_data"] = _as_pipeline_ml(own_data, inference)
    pipelines["creditcard"] = _as_pipeline_ml(processing + scored, inference)
    # the same jobs with the heavy batch nodes on Dask (the inference pipeline stays pandas)
    pipelines["dask"] = _as_pipeline_ml(on_dask(main_job), inference)
    pipelines["own_data_dask"] = _as_pipeline_ml(on_dask(own_data), inference)
    return pipelines
