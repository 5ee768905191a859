"""Pipeline wiring: slices on an in-memory catalog, and the registry's contract names."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline
from kedro.runner import SequentialRunner

from fraud_kedro.features import FeatureParams
from fraud_kedro.pipelines.data_processing import create_pipeline as data_processing
from fraud_kedro.pipelines.inference import create_pipeline as inference

CONTRACT_PIPELINES = {
    "simulation",
    "data_processing",
    "data_science",
    "evaluation",
    "training",
    "retraining",
    "__default__",
    # the main job's other fixed shapes (README): your data, and the creditcard env
    "own_data",
    "own_data_processing",
    "own_data_retraining",
    "creditcard",
    "batch_scoring",
    "monitoring",
}


@pytest.fixture(scope="module")
def registry() -> Iterator[dict[str, Pipeline]]:
    """The registered pipelines, loaded the way ``kedro run --pipeline training`` loads them."""
    from kedro.framework.project import configure_project, pipelines

    configure_project("fraud_kedro")
    pipelines.set_requested(["training"])  # Kedro 1.7 discovers only what the CLI names
    try:
        yield dict(pipelines.items())
    finally:
        pipelines.set_requested(None)


def test_data_processing_slice_on_an_in_memory_catalog(
    small_raw: pd.DataFrame, feature_params: FeatureParams
) -> None:
    raw = small_raw.head(3000)
    from fraud_kedro.io.served_traffic import empty_served

    catalog = DataCatalog(
        {
            "raw_transactions": MemoryDataset(raw),
            "served_transactions": MemoryDataset(empty_served()),
            "params:features": MemoryDataset(feature_params),
            "params:split.delay_days": MemoryDataset(7),
        }
    )
    pipe = data_processing()
    assert all(node.name for node in pipe.nodes)
    assert pipe.inputs() == {
        "raw_transactions",
        "served_transactions",
        "params:features",
        "params:split.delay_days",
    }
    outputs = SequentialRunner().run(pipe, catalog)
    assert set(outputs) == {"quarantined_transactions", "model_input_table", "feature_spec"}
    table = outputs["model_input_table"].load()
    assert len(table) == len(raw)
    assert outputs["quarantined_transactions"].load().empty
    assert set(outputs["feature_spec"].load()["features"]) <= set(table.columns)
    pd.testing.assert_frame_equal(raw, small_raw.head(3000))  # inputs are not mutated


def test_inference_needs_only_the_scoring_input_and_persisted_artifacts() -> None:
    pipe = inference()
    assert pipe.inputs() == {"scoring_input", "fraud_model", "feature_spec", "decision_threshold"}
    assert not any(i.startswith("params:") for i in pipe.inputs())
    assert pipe.outputs() == {"predictions"}


def test_registry_has_the_contract_pipelines_when_one_is_requested(
    registry: dict[str, Pipeline],
) -> None:
    assert CONTRACT_PIPELINES <= set(registry)
    for name, pipe in registry.items():
        assert all(node.name for node in pipe.nodes), name


def test_training_exports_the_inference_pipeline(registry: dict[str, Pipeline]) -> None:
    training = registry["training"]
    assert hasattr(training, "inference"), "training must be a kedro-mlflow PipelineML"
    assert training.input_name == "scoring_input"
    produced = training.all_outputs()
    # every artifact the exported model needs is produced by training (or its inputs)
    for artifact in ("fraud_model", "decision_threshold", "scoring_input"):
        assert artifact in produced
    assert "quality_gate_verdict" in produced
    for job in ("__default__", "own_data", "creditcard"):
        assert hasattr(registry[job], "inference"), f"the main job ({job}) must export the model too"


def test_the_main_job_simulates_and_own_data_reads_your_data(registry: dict[str, Pipeline]) -> None:
    default, own = registry["__default__"], registry["own_data"]
    assert "raw_transactions" not in default.all_inputs() | default.all_outputs()
    assert "simulated_transactions" in default.all_outputs()
    assert "raw_transactions" in own.inputs()
    assert "simulated_transactions" not in own.all_inputs() | own.all_outputs()
    # the same job apart from the simulation node
    sim = {n.name for n in registry["simulation"].nodes}
    assert {n.name for n in default.nodes} - sim == {n.name for n in own.nodes}
    assert "monitoring" in {n.namespace for n in own.nodes}
    # `kedro run --pipelines simulation,data_processing`: features from the simulator's output
    assert registry["data_processing"].inputs() & registry["simulation"].outputs() == {
        "simulated_transactions"
    }


def test_labels_never_reach_the_inference_pipeline(registry: dict[str, Pipeline]) -> None:
    training = registry["training"]
    inference_inputs = training.inference.inputs()
    assert not {"model_input_table", "train_set", "test_set", "params:split"} & inference_inputs
