"""Typed parameters: Kedro's own validation builds them from conf/ and names a bad key.

The registered pipelines' node signatures declare the sections' types (``params: SplitParams``);
:class:`kedro.validation.parameter_validator.ParameterValidator` is what a ``KedroContext`` runs on
the merged parameters before any node.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader
from kedro.pipeline import Pipeline
from kedro.validation.parameter_validator import ParameterValidator

from fraud_kedro.distributed.cluster import DaskClusterHooks, DaskParams, check_engine
from fraud_kedro.features import FeatureParams
from fraud_kedro.monitoring.params import MonitoringParams
from fraud_kedro.parameters import flatten
from fraud_kedro.pipelines.data_science.params import ThresholdParams
from fraud_kedro.pipelines.evaluation.params import EvaluationParams, QualityGateParams
from fraud_kedro.simulation import SimulationParams
from fraud_kedro.split import SplitParams

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def registry() -> Iterator[dict[str, Pipeline]]:
    from kedro.framework.project import configure_project, pipelines

    configure_project("fraud_kedro")
    pipelines.set_requested(None)
    yield dict(pipelines.items())


def _params(env: str = "local") -> dict:
    loader = OmegaConfigLoader(conf_source=str(PROJECT_ROOT / "conf"), base_env="base",
                               default_run_env=env)
    return loader["parameters"]


def test_kedro_builds_every_typed_section(registry: dict[str, Pipeline]) -> None:
    validated = ParameterValidator({"__default__": registry["__default__"]}).validate_raw_params(
        _params()
    )
    expected = {"split": SplitParams, "features": FeatureParams, "monitoring": MonitoringParams,
                "simulation": SimulationParams, "threshold": ThresholdParams,
                "evaluation": EvaluationParams, "quality_gate": QualityGateParams}
    for key, cls in expected.items():
        assert isinstance(validated[key], cls), key
    assert validated["split"].delay_days == 7
    # a raw sub-key read one by one stays as the YAML wrote it
    assert validated["split"].delay_days == _params()["split"]["delay_days"]


def test_dask_pipeline_builds_its_section(registry: dict[str, Pipeline]) -> None:
    validated = ParameterValidator({"dask": registry["dask"]}).validate_raw_params(_params("dask"))
    assert isinstance(validated["dask"], DaskParams) and validated["dask"].enabled


@pytest.mark.parametrize(
    ("key", "section", "value", "names"),
    [
        ("split", "train_dayz", 3, r"split.*train_dayz.*Unexpected keyword argument"),
        ("features", "columns", {"amnt": "x"}, r"features.*columns\.amnt.*Unexpected keyword"),
        ("monitoring", "drift", {"methd": "x"}, r"monitoring.*drift\.methd.*Unexpected keyword"),
        ("simulation", "n_days", 0, r"simulation.*n_days.*greater than or equal to 1"),
        ("threshold", "strategy", "f1", r"threshold.*strategy.*'cost' or 'alert_budget'"),
        ("quality_gate", "model_name", "", r"quality_gate.*model_name.*at least 1 character"),
    ],
)
def test_a_bad_key_stops_the_run_naming_it(
    registry: dict[str, Pipeline], key: str, section: str, value: object, names: str
) -> None:
    raw = _params()
    raw[key] = {**raw[key], section: value}
    with pytest.raises(Exception, match=f"(?s){names}"):
        ParameterValidator({"__default__": registry["__default__"]}).validate_raw_params(raw)


def test_flatten_gives_the_dotted_mlflow_names() -> None:
    flat = flatten(SplitParams(delay_days=3), "split")
    assert flat["split.delay_days"] == 3 and flat["split.train_start"] is None
    features = flatten(FeatureParams(customer_windows_days=[1, 7]), "features")
    assert features["features.customer_windows_days"] == [1, 7]
    assert features["features.columns.amount"] == "amount"


def test_a_pandas_pipeline_in_a_dask_env_stops_naming_the_dask_one(
    registry: dict[str, Pipeline],
) -> None:
    on = DaskParams(enabled=True)
    with pytest.raises(ValueError, match=r"'__default__' has no Dask nodes.*--pipeline dask"):
        check_engine(on, registry["__default__"], None)
    check_engine(on, registry["dask"], "dask")  # the Dask pipeline runs
    check_engine(DaskParams(), registry["__default__"], None)  # pandas env: pandas pipeline
    hooks = DaskClusterHooks()
    with pytest.raises(ValueError, match="no Dask nodes"):
        hooks._params = on
        hooks.before_pipeline_run({"pipeline_name": "own_data"}, registry["own_data"])


def test_dask_twins_differ_only_in_the_dask_nodes(registry: dict[str, Pipeline]) -> None:
    pandas, dask = registry["__default__"], registry["dask"]
    assert {n.name for n in pandas.nodes} == {n.name for n in dask.nodes}
    swapped = {n.name for n in dask.nodes if "dask" in n.tags}
    assert swapped and not any("dask" in n.tags for n in pandas.nodes)
    assert all(n.func.__module__ == "fraud_kedro.distributed.nodes"
               for n in dask.nodes if n.name in swapped)


def test_sections_are_frozen_dataclasses() -> None:
    params = SplitParams()
    assert dataclasses.is_dataclass(params)
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.delay_days = 3  # type: ignore[misc]
