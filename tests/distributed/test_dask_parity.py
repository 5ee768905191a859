"""The Dask path equals the pandas path on the small world: features bit for bit, the split, batch
scores and monitoring's analysis table (the synchronous scheduler: no cluster, no network)."""

from __future__ import annotations

from pathlib import Path

import dask
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from fraud_kedro.distributed import nodes as dask_nodes
from fraud_kedro.distributed.cluster import DaskParams
from fraud_kedro.features import FeatureParams, compute_features, feature_names
from fraud_kedro.monitoring.params import MonitoringParams
from fraud_kedro.pipelines.data_processing import nodes as processing
from fraud_kedro.pipelines.data_science.nodes import split_data
from fraud_kedro.pipelines.evaluation.nodes import score_table
from fraud_kedro.pipelines.monitoring.nodes import build_analysis_table
from fraud_kedro.split import SplitParams

PROJECT_ROOT = Path(__file__).resolve().parents[2]

DASK = DaskParams(enabled=True, partition_rows=12_000)  # the small world in 5 partitions


@pytest.fixture(autouse=True)
def synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


def _by_id(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("transaction_id").reset_index(drop=True)


@pytest.fixture(scope="module")
def pandas_path(small_raw: pd.DataFrame, feature_params: FeatureParams) -> dict:
    valid, quarantine = processing.validate_raw_transactions(small_raw, feature_params, 7)
    return {"valid": valid, "quarantine": quarantine,
            "table": processing.build_model_input_table(valid, feature_params, 7)}


@pytest.fixture(scope="module")
def dask_path(small_raw: pd.DataFrame, feature_params: FeatureParams) -> dict:
    with dask.config.set(scheduler="synchronous"):
        valid, quarantine = dask_nodes.validate_raw_transactions(small_raw, feature_params, 7, DASK)
        assert valid.npartitions == 5
        table = dask_nodes.build_model_input_table(valid, feature_params, 7, DASK)
        return {"valid": valid.compute(), "quarantine": quarantine.compute(),
                "table_dask": table, "table": table.compute()}


def test_groups_compute_their_own_features(small_raw, feature_params) -> None:
    both = compute_features(small_raw, feature_params)
    customer = compute_features(small_raw, feature_params, groups=("customer",))
    terminal = compute_features(small_raw, feature_params, groups=("terminal",))
    names = feature_names(feature_params)
    assert [c for c in customer.columns if c in names] == [
        n for n in names if not n.startswith(("terminal_nb", "terminal_risk"))]
    assert [c for c in terminal.columns if c in names] == [
        n for n in names if not n.startswith("customer_")]
    for part in (customer, terminal):
        pd.testing.assert_frame_equal(part, both[list(part.columns)], check_exact=True)
    with pytest.raises(ValueError, match="unknown feature groups"):
        compute_features(small_raw, feature_params, groups=("merchant",))


def test_validation_matches(pandas_path, dask_path) -> None:
    pd.testing.assert_frame_equal(_by_id(dask_path["valid"]), _by_id(pandas_path["valid"]))
    assert len(dask_path["quarantine"]) == len(pandas_path["quarantine"])


def test_duplicated_id_across_partitions_is_quarantined(small_raw, feature_params) -> None:
    raw = pd.concat([small_raw, small_raw.iloc[[5]]], ignore_index=True)  # first and last partition
    valid, quarantine = dask_nodes.validate_raw_transactions(raw, feature_params, 7, DASK)
    assert len(valid.compute()) == len(small_raw)
    bad = quarantine.compute()
    assert len(bad) == 1 and "duplicated id" in bad["quarantine_reason"].iloc[0]


def test_features_equal_pandas_bit_for_bit(pandas_path, dask_path, feature_params) -> None:
    expected, got = _by_id(pandas_path["table"]), _by_id(dask_path["table"])
    assert list(got.columns) == list(expected.columns)
    assert set(feature_names(feature_params)) <= set(got.columns)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def _params(name: str) -> dict:
    """The small env's parameters as Kedro resolves them (globals such as the label delay)."""
    from kedro.config import OmegaConfigLoader

    loader = OmegaConfigLoader(
        conf_source=str(PROJECT_ROOT / "conf"), base_env="base", default_run_env="small"
    )
    return loader["parameters"][name]


def test_split_batch_scores_and_analysis_table_match(pandas_path, dask_path,
                                                     feature_params) -> None:
    split, model = SplitParams(**_params("split")), _params("model")
    expected = split_data(pandas_path["table"], split, feature_params)
    got = dask_nodes.split_data(dask_path["table_dask"], split, feature_params, model)
    # training sees exactly the pandas tables (the history cut to the tuning folds' reach)
    history = expected[0]
    cut = history["timestamp"] >= got[0]["timestamp"].min()
    pd.testing.assert_frame_equal(got[0], history.loc[cut].reset_index(drop=True),
                                  check_exact=True)
    for mine, theirs in zip(got[1:3], expected[1:3], strict=True):
        pd.testing.assert_frame_equal(mine, theirs, check_exact=True)
    assert got[4] == expected[4]

    spec = processing.make_feature_spec(feature_params, 7)
    train = expected[1]
    fitted = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(
        train[spec["features"]].to_numpy(dtype=float), train["is_fraud"].to_numpy())
    threshold = {"threshold": 0.3}
    scored_pandas = score_table(expected[3], fitted, spec, threshold)
    scored_dask = dask_nodes.batch_score(got[3], fitted, spec, threshold)
    pd.testing.assert_frame_equal(_by_id(scored_dask.compute()), _by_id(scored_pandas),
                                  check_exact=True)

    monitoring = MonitoringParams.coerce(None)
    analysis_pandas = build_analysis_table(scored_pandas, None, spec, threshold, monitoring)
    analysis_dask = dask_nodes.build_analysis_table(scored_dask, None, spec, threshold, monitoring)
    pd.testing.assert_frame_equal(analysis_dask, analysis_pandas, check_exact=True)
