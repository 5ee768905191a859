"""The project hooks' per-run choices: the registered model's name and the retraining loop."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from kedro.io import DataCatalog, MemoryDataset

from fraud_kedro import hooks, retraining
from fraud_kedro.contract import MODEL_NAME


@pytest.fixture(scope="module")
def registry() -> dict:
    from kedro.framework.project import configure_project, pipelines

    configure_project("fraud_kedro")
    return dict(pipelines.items())


@pytest.mark.parametrize("name", ["__default__", "own_data", "creditcard", "training"])
def test_the_run_registers_the_model_under_quality_gate_model_name(registry: dict, name: str) -> None:
    promotion = hooks.PromotionHooks()
    promotion.after_context_created(SimpleNamespace(params={"quality_gate": {"model_name": "other"}}))
    run_pipeline = registry[name].filter()  # the session runs a filtered copy
    promotion.before_pipeline_run(run_params={}, pipeline=run_pipeline, catalog=DataCatalog())
    assert run_pipeline.log_model_kwargs["registered_model_name"] == "other"
    # the registered pipeline itself keeps the default: nothing leaks into the next run
    assert registry[name].log_model_kwargs["registered_model_name"] == MODEL_NAME


def test_an_invalid_model_name_is_an_error_not_the_default() -> None:
    promotion = hooks.PromotionHooks()
    promotion.after_context_created(SimpleNamespace(params={}))
    assert promotion._model_name == MODEL_NAME
    for gate in ({"model_name": ""}, {"model_name": None}, {"model_name": ["a"]}, "fraud"):
        with pytest.raises(ValueError, match="quality_gate"):
            promotion.after_context_created(SimpleNamespace(params={"quality_gate": gate}))


@pytest.mark.parametrize(
    ("pipeline_names", "loop"),
    [
        (["retraining"], "retraining"),
        (["own_data_retraining"], "own_data_retraining"),
        (["monitoring"], None),
    ],
)
def test_retraining_hook_runs_the_loop_of_its_pipeline(
    monkeypatch: pytest.MonkeyPatch, pipeline_names: list[str], loop: str | None
) -> None:
    calls = []
    monkeypatch.setattr(retraining, "retrain_if_due", lambda *args: calls.append(args))
    catalog = DataCatalog({"retrain_decision": MemoryDataset({"retrain": False})})
    run_params = {"pipeline_names": pipeline_names, "project_path": "p", "env": "e", "runtime_params": {}}
    hooks.RetrainingHooks().after_pipeline_run(run_params=run_params, pipeline=None, catalog=catalog)
    assert [c[-1] for c in calls] == ([loop] if loop else [])


def test_each_retraining_loop_processes_its_own_data(registry: dict) -> None:
    for loop, (processing, training) in retraining.RETRAIN_PIPELINES.items():
        assert loop in registry and training == "training"
        source = "raw_transactions" if loop.startswith("own_data") else "simulated_transactions"
        assert source in registry[processing].inputs(), loop
    with pytest.raises(ValueError, match="unknown retraining loop"):
        retraining.retrain(None, None, None, "retrain")
