"""The ``small`` environment end to end: ingestion, training against a temporary MLflow store,
the exported model, reproducibility and the quality gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from support.project import CONTRACT_METRICS

from fraud_kedro.pipelines.inference.nodes import predict_fraud

from .helpers import MODEL_NAME, Project, TrainingRun, use_mlflow

pytestmark = pytest.mark.slow



# ---- simulation + data_processing --------------------------------------------------------------


def test_ingestion_writes_every_layer(project: Project) -> None:
    raw = pd.read_parquet(project.data("01_raw/simulated_transactions.parquet"))
    valid = project.read_parquet("02_intermediate/validated_transactions.parquet")
    quarantine = project.read_parquet("02_intermediate/quarantined_transactions.parquet")
    table = project.read_parquet("04_feature/model_input_table.parquet")
    spec = project.read_json("04_feature/feature_spec.json")
    assert len(raw) > 10_000
    assert len(valid) + len(quarantine) == len(raw)
    assert len(table) == len(valid)
    assert table[spec["features"]].notna().all().all()
    assert {"is_fraud", "fraud_scenario"}.isdisjoint(spec["features"])
    # simulated data never lands where your own data goes
    assert not project.data("01_raw/transactions.parquet").exists()


def test_ingestion_is_not_tracked_in_mlflow(project: Project) -> None:
    assert project.runs_after_ingest == 0


# ---- first training run ------------------------------------------------------------------------


def test_training_logs_and_registers_the_model(first_training: TrainingRun) -> None:
    run = first_training
    assert run.version == "1"
    assert run.aliases == {"champion": "1", "challenger": "1"}
    assert run.version_tags.get("quality_gate") == "promote"
    assert run.run_tags.get("quality_gate") == "promote"
    assert run.run_tags.get("kedro_env") == "small"
    assert "git_commit" in run.run_tags


def test_typed_parameter_sections_are_logged_key_by_key(first_training: TrainingRun) -> None:
    """Kedro builds SplitParams / FeatureParams; the run still has the dotted MLflow params."""
    params = first_training.run_params
    assert params["split.train_days"] == "14" and params["split.test_days"] == "7"
    assert params["split.delay_days"] == "7"
    assert params["features.columns.amount"] == "amount"
    assert params["features.customer_windows_days"] == "[1, 7, 30]"
    assert params["split"].startswith("SplitParams(")  # kedro-mlflow's own text of the section


@pytest.mark.parametrize(
    "symptom",
    [
        "Traceback",
        " ERROR ",
        # MLflow only warns when the exported model cannot even load its own input example
        "Failed to validate serving input example",
        "unexpected error while inferring pip requirements",
    ],
)
def test_training_run_swallowed_no_error(first_training: TrainingRun, symptom: str) -> None:
    """Failures while exporting the model are logged, not raised: the run still succeeds."""
    assert symptom not in first_training.log


def test_first_model_is_promoted_by_the_gate(first_training: TrainingRun) -> None:
    verdict = first_training.verdict
    assert verdict["promote"] is True
    assert verdict["champion_average_precision"] is None
    assert any("no usable champion" in r for r in verdict["reasons"])
    assert verdict["challenger_average_precision"] >= verdict["gate_min_average_precision"]
    assert first_training.champion_metrics == {}


def test_metrics_are_logged_with_contract_names(first_training: TrainingRun) -> None:
    for name in CONTRACT_METRICS:
        assert name in first_training.metrics, name
        assert first_training.run_metrics[name] == pytest.approx(first_training.metrics[name]), name
    assert first_training.metrics["test_average_precision"] > 0.3
    assert first_training.metrics["test_roc_auc"] > 0.8


def test_run_artifacts(first_training: TrainingRun) -> None:
    names = set(first_training.artifacts)
    for expected in (
        "reporting/metrics.json",
        "reporting/quality_gate_verdict.json",
        "tuning/tuning_results.json",
        "data/split_info.json",
        "plots/roc.png",
    ):
        assert expected in names, sorted(names)


def test_champion_loads_with_signature_and_input_example(first_training: TrainingRun) -> None:
    run = first_training
    assert run.pyfunc_run_id == run.run_id
    assert run.pyfunc_signature is not None
    inputs = run.pyfunc_signature.inputs.input_names()
    assert set(run.feature_spec["features"]) <= set(inputs)
    assert "is_fraud" not in inputs and "fraud_scenario" not in inputs
    assert isinstance(run.pyfunc_input_example, pd.DataFrame) and len(run.pyfunc_input_example) > 0
    assert set(run.feature_spec["features"]) <= set(run.pyfunc_input_example.columns)


def test_registered_model_predicts_what_the_pipeline_predicts(first_training: TrainingRun) -> None:
    run = first_training
    expected = predict_fraud(run.scoring_input, run.fraud_model, run.feature_spec, run.threshold)
    got = run.pyfunc_predictions
    assert list(got.columns) == ["transaction_id", "fraud_probability", "is_fraud_predicted"]
    assert len(got) == len(run.scoring_input) > 0
    np.testing.assert_array_equal(got["transaction_id"], expected["transaction_id"])
    np.testing.assert_allclose(got["fraud_probability"], expected["fraud_probability"], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(got["is_fraud_predicted"], expected["is_fraud_predicted"])
    # the scores are not constant: a model that learnt nothing would pass the equality
    assert got["fraud_probability"].nunique() > 1


# ---- second training run on the same data -----------------------------------------------------


def test_same_seed_and_data_give_the_same_metrics(
    first_training: TrainingRun, second_training: TrainingRun
) -> None:
    assert second_training.run_id != first_training.run_id
    assert set(second_training.metrics) == set(first_training.metrics)
    for name, value in first_training.metrics.items():
        assert second_training.metrics[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    first_best = {k: v["best_params"] for k, v in first_training.tuning_results["candidates"].items()}
    second_best = {k: v["best_params"] for k, v in second_training.tuning_results["candidates"].items()}
    assert second_best == first_best
    assert second_training.threshold["threshold"] == pytest.approx(first_training.threshold["threshold"])


def test_gate_compares_against_the_real_champion(
    first_training: TrainingRun, second_training: TrainingRun
) -> None:
    verdict = second_training.verdict
    # the champion (version 1) was scored on this run's test window: the same model, the same AP
    assert verdict["champion_average_precision"] == pytest.approx(
        first_training.metrics["test_average_precision"], rel=1e-9
    )
    assert second_training.champion_metrics["test_average_precision"] == pytest.approx(
        verdict["champion_average_precision"]
    )
    assert verdict["gate_min_improvement"] == 0.0
    # the same model on the same data ties with the champion: a tie keeps the champion
    assert verdict["promote"] is False
    assert any("does not beat the champion" in r for r in verdict["reasons"])


def test_aliases_follow_the_verdict(first_training: TrainingRun, second_training: TrainingRun) -> None:
    run = second_training
    assert run.version == "2"
    assert run.aliases["challenger"] == "2"
    expected_champion = "2" if run.verdict["promote"] else first_training.version
    assert run.aliases["champion"] == expected_champion
    decision = "promote" if run.verdict["promote"] else "reject"
    assert run.version_tags.get("quality_gate") == decision
    assert run.run_tags.get("quality_gate") == decision
    assert run.pyfunc_run_id == (run.run_id if run.verdict["promote"] else first_training.run_id)


def test_every_training_run_registers_exactly_one_version(
    second_training: TrainingRun, project: Project
) -> None:

    with use_mlflow(project.tracking_uri) as client:
        versions = client.search_model_versions(f"name='{MODEL_NAME}'")
    assert sorted(int(v.version) for v in versions) == [1, 2]
