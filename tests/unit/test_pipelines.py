"""Pipeline wiring: slices on an in-memory catalog, and the registry's contract names."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline
from kedro.runner import SequentialRunner

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
    small_raw: pd.DataFrame, feature_params_dict: dict
) -> None:
    raw = small_raw.head(3000)
    from fraud_kedro.io.served_traffic import empty_served

    catalog = DataCatalog(
        {
            "raw_transactions": MemoryDataset(raw),
            "served_transactions": MemoryDataset(empty_served()),
            "params:features": MemoryDataset(feature_params_dict),
            "params:split.delay_days": MemoryDataset(7),
        }
    )
    pipe = data_processing()
    assert all(node.name for node in pipe.nodes)
    assert pipe.inputs() == {
        "raw_transactions", "served_transactions", "params:features", "params:split.delay_days"
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
    assert hasattr(registry["__default__"], "inference"), "the main job must export the model too"


def test_labels_never_reach_the_inference_pipeline(registry: dict[str, Pipeline]) -> None:
    training = registry["training"]
    inference_inputs = training.inference.inputs()
    assert not {"model_input_table", "train_set", "test_set", "params:split"} & inference_inputs
