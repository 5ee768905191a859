"""The ``creditcard`` env: the public ULB file layout (``Time, V1..V28, Amount, Class``).

Unit tests of the adapter (:mod:`fraud_kedro.creditcard`), the fractional split, the
``creditcard`` pipeline and the model name, and one end-to-end ``kedro run --env creditcard
--pipeline creditcard`` on a small synthetic file in that layout
(nothing is downloaded), in a copy of the project with its own MLflow store.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support.project import CONTRACT_METRICS, ROOT, copy_project, kedro_env, run_kedro

from fraud_kedro import creditcard
from fraud_kedro.features import FeatureParams
from fraud_kedro.hooks import model_name_from_params
from fraud_kedro.ingest import DataValidationError
from fraud_kedro.pipelines.data_processing.nodes import (
    build_model_input_table,
    make_feature_spec,
    validate_raw_transactions,
)
from fraud_kedro.split import SplitParams, prequential_folds, split_windows

sys.path.insert(0, str(Path(__file__).parent))
from ulb_synth import make_ulb_frame  # noqa: E402

PROJECT_ROOT = ROOT
MODEL_NAME = "fraud_detector_creditcard"
# a lighter search than the env's defaults (which suit the real 285k-row file): the test checks wiring
FAST_PARAMS = ",".join(
    [
        "model.tuning.n_trials=2",
        "model.search_spaces.hist_gradient_boosting.max_iter.high=80",
        "model.calibration.cv=2",
        "evaluation.permutation_rows=4000",
        "evaluation.permutation_repeats=1",
    ]
)


def _all_env_params() -> dict:
    """The creditcard env's parameters as Kedro resolves them (globals included)."""
    from kedro.config import OmegaConfigLoader

    loader = OmegaConfigLoader(
        conf_source=str(PROJECT_ROOT / "conf"), base_env="base", default_run_env="creditcard"
    )
    return loader["parameters"]


def _env_params(name: str) -> dict:
    return _all_env_params()[name]


@pytest.fixture(scope="module")
def ulb() -> pd.DataFrame:
    return make_ulb_frame(n_rows=2_000, seed=3)


@pytest.fixture(scope="module")
def features_params() -> FeatureParams:
    return FeatureParams(**_env_params("features"))  # what Kedro builds for the nodes


# ---- the adapter ----------------------------------------------------------------------------------


def test_missing_v_columns_are_named(ulb: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match=r"missing column\(s\) \['V3', 'V17'\]"):
        creditcard.to_contract(ulb.drop(columns=["V17", "V3"]), "2013-09-01")


@pytest.mark.parametrize("column", ["Time", "Amount"])
def test_missing_time_or_amount_is_named(ulb: pd.DataFrame, column: str) -> None:
    with pytest.raises(DataValidationError, match=f"'{column}'"):
        creditcard.check_ulb_columns(ulb.drop(columns=[column]))


def test_contract_file_in_creditcard_env_fails_clearly(features_params: dict) -> None:
    contract = pd.DataFrame(
        {
            "transaction_id": [1],
            "timestamp": ["2018-04-01"],
            "customer_id": [1],
            "terminal_id": [1],
            "amount": [1.0],
        }
    )
    with pytest.raises(DataValidationError, match="ULB layout"):
        validate_raw_transactions(contract, features_params)


def test_empty_file_and_non_numeric_time() -> None:
    with pytest.raises(DataValidationError, match="no rows"):
        creditcard.check_ulb_columns(make_ulb_frame(10).iloc[:0])
    bad = make_ulb_frame(10).assign(Time="yesterday")
    with pytest.raises(DataValidationError, match="'Time' holds no number"):
        creditcard.check_ulb_columns(bad)


def test_mapping_to_the_contract_schema(ulb: pd.DataFrame) -> None:
    table = creditcard.to_contract(ulb, "2013-09-01")
    assert list(table.columns[:6]) == [
        "transaction_id",
        "timestamp",
        "customer_id",
        "terminal_id",
        "amount",
        "V1",
    ]
    np.testing.assert_array_equal(table["transaction_id"], np.arange(len(ulb)))
    np.testing.assert_array_equal(table["customer_id"], np.arange(len(ulb)))
    assert (table["terminal_id"] == 0).all()
    expected = pd.Timestamp("2013-09-01") + pd.to_timedelta(ulb["Time"], unit="s")
    assert (table["timestamp"] == expected).all()
    np.testing.assert_array_equal(table["amount"], ulb["Amount"])
    np.testing.assert_array_equal(table["is_fraud"], ulb["Class"])
    np.testing.assert_array_equal(table["V14"], ulb["V14"])


def test_unlabelled_file_is_accepted(ulb: pd.DataFrame, features_params: dict) -> None:
    valid, quarantine = validate_raw_transactions(ulb.drop(columns=["Class"]), features_params)
    assert len(valid) == len(ulb) and quarantine.empty
    assert "is_fraud" not in valid.columns


def test_bad_rows_are_quarantined_with_their_reason(ulb: pd.DataFrame, features_params: dict) -> None:
    raw = ulb.copy()
    raw.loc[5, "V7"] = np.nan
    raw.loc[6, "V2"] = np.inf
    raw.loc[7, "Amount"] = -3.0
    raw.loc[8, "Class"] = 2
    valid, quarantine = validate_raw_transactions(raw, features_params)
    assert len(valid) == len(raw) - 4
    reasons = dict(
        zip(quarantine["transaction_id"].astype(int), quarantine["quarantine_reason"], strict=True)
    )
    assert reasons[5] == "V7: not finite"
    assert reasons[6] == "V2: not finite"
    assert "amount is negative" in reasons[7]
    assert "label is not 0/1" in reasons[8]
    assert valid["timestamp"].is_monotonic_increasing


def test_feature_table_and_spec(ulb: pd.DataFrame, features_params: dict) -> None:
    valid, _ = validate_raw_transactions(ulb, features_params)
    table = build_model_input_table(valid, features_params)
    spec = make_feature_spec(features_params)
    assert spec["features"] == [*creditcard.V_COLUMNS, "amount", "hour"]
    assert spec["schema"] == {"schema": "creditcard", "start_date": "2013-09-01T00:00:00"}
    assert "schema" not in spec["params"] and "start_date" not in spec["params"]
    assert list(table.columns) == [
        "transaction_id",
        "timestamp",
        "customer_id",
        "terminal_id",
        *spec["features"],
        "is_fraud",
    ]
    assert table["hour"].between(0, 23).all()
    assert np.isfinite(table[spec["features"]].to_numpy(dtype=float)).all()


def test_default_schema_is_the_contract() -> None:
    params = FeatureParams(customer_windows_days=[1])
    assert params.schema == creditcard.CONTRACT
    assert "schema" not in make_feature_spec(params)
    assert "schema" not in make_feature_spec(params)["params"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"schema": "visa"}, r"schema\s+Input should be 'contract' or 'creditcard'"),
        ({"schema": "creditcard"}, "start_date is required"),
        ({"schema": "creditcard", "start_date": "soon"}, "is not a date"),
        ({"start_date": "2013-09-01"}, "only applies to schema creditcard"),
    ],
)
def test_bad_schema_options(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FeatureParams(**params)


# ---- the split of a 2-day file ---------------------------------------------------------------------


def test_fractional_day_split_and_one_tuning_fold(ulb: pd.DataFrame) -> None:
    params = SplitParams(**_env_params("split"))
    ts = creditcard.to_contract(ulb, "2013-09-01")["timestamp"]
    windows = split_windows(ts, params)
    assert windows["train_start"] == "2013-09-01"
    assert windows["train_end"] == windows["test_start"] == "2013-09-02T12:00:00"
    assert windows["test_end"] == "2013-09-03"
    folds = prequential_folds(ts, pd.Timestamp(windows["train_start"]), params, n_folds=1)
    fit, val = folds[0]
    assert ts.iloc[fit].max() < pd.Timestamp("2013-09-02") <= ts.iloc[val].min()
    assert ts.iloc[val].max() < pd.Timestamp("2013-09-02T12:00:00")


def test_whole_day_split_keeps_date_strings() -> None:
    ts = pd.Series(pd.date_range("2018-04-01", periods=40 * 24, freq="h"))
    windows = split_windows(ts, SplitParams(train_days=21, delay_days=7, test_days=7))
    assert all(len(v) == 10 for v in windows.values())  # YYYY-MM-DD, as before
    assert SplitParams().drop_known_compromised is True


# ---- the creditcard pipeline and the model name ---------------------------------------------------


def test_creditcard_env_registers_its_own_model_name() -> None:
    assert model_name_from_params({"quality_gate": _env_params("quality_gate")}) == MODEL_NAME
    assert model_name_from_params({}) == "fraud_detector"
    for bad in ("", None, 3):
        with pytest.raises(ValueError, match="quality_gate.model_name"):
            model_name_from_params({"quality_gate": {"model_name": bad}})


def test_the_creditcard_pipeline_never_simulates_nor_monitors() -> None:
    from kedro.framework.project import configure_project, pipelines

    configure_project("fraud_kedro")
    job = pipelines["creditcard"]
    assert hasattr(job, "inference"), "the creditcard job exports the model (PipelineML)"
    assert "raw_transactions" in job.inputs()
    assert "simulated_transactions" not in job.all_inputs() | job.all_outputs()
    assert not {"monitoring", "simulation"} & {n.namespace for n in job.nodes}
    assert "production_predictions" in job.all_outputs()  # batch scoring stays
    assert "main_job" not in _all_env_params()


# ---- kedro run --env creditcard ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def creditcard_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Run the main job of the creditcard env once on a synthetic 20k-row, 2-day file."""
    root = copy_project(tmp_path_factory.mktemp("creditcard") / "project")
    make_ulb_frame(n_rows=20_000, seed=7).to_csv(root / "data" / "01_raw" / "creditcard.csv", index=False)
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    env = kedro_env(
        MLFLOW_TRACKING_URI=tracking_uri,
        PYTHONPATH=os.pathsep.join([str(root / "src"), os.environ.get("PYTHONPATH", "")]),
    )
    run_kedro(
        root, "run", "--env", "creditcard", "--pipeline", "creditcard", "--params", FAST_PARAMS,
        env=env, timeout=600,
    )  # fmt: skip
    return root, tracking_uri


@pytest.mark.slow
def test_run_writes_contract_metrics(creditcard_run: tuple[Path, str]) -> None:
    root, _ = creditcard_run
    metrics = json.loads((root / "data" / "08_reporting" / "creditcard" / "metrics.json").read_text())
    for name in CONTRACT_METRICS:
        assert name in metrics and math.isfinite(metrics[name]), name
    # the synthetic frauds are shifted in five V columns: easy to find, not trivially
    assert metrics["test_roc_auc"] > 0.9
    assert metrics["test_average_precision"] > 0.3
    spec = json.loads((root / "data" / "04_feature" / "creditcard" / "feature_spec.json").read_text())
    assert spec["features"] == [*creditcard.V_COLUMNS, "amount", "hour"]


@pytest.mark.slow
def test_run_does_not_touch_the_default_run(creditcard_run: tuple[Path, str]) -> None:
    root, _ = creditcard_run
    data = root / "data"
    assert not (data / "01_raw" / "simulated_transactions.parquet").exists()  # nothing simulated
    written = [p for p in data.rglob("*") if p.is_file() and not p.name.startswith(".")]
    outside = [
        p for p in written if "creditcard" not in p.relative_to(data).parts and p.name != "creditcard.csv"
    ]
    assert not outside, f"files outside the creditcard folders: {outside}"


@pytest.mark.slow
def test_run_registers_the_model(creditcard_run: tuple[Path, str]) -> None:
    from mlflow import MlflowClient

    _, tracking_uri = creditcard_run
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    versions = client.search_model_versions(f"name='{MODEL_NAME}'")
    assert len(versions) == 1
    assert client.get_model_version_by_alias(MODEL_NAME, "challenger").version == versions[0].version
    assert client.get_model_version_by_alias(MODEL_NAME, "champion").version == versions[0].version
    assert not client.search_registered_models("name='fraud_detector'")  # the default name is left alone
    run = client.get_run(versions[0].run_id)
    assert run.data.tags["kedro_env"] == "creditcard"
    assert run.data.metrics["test_average_precision"] > 0.3
