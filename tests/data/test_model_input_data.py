"""Data tests of what the model learns from: feature list, labels, the model input table."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest

from fraud_kedro.features import FeatureParams, feature_names
from fraud_kedro.pipelines.data_processing.nodes import (
    build_model_input_table,
    make_feature_spec,
    validate_raw_transactions,
)

LEAKY = {"is_fraud", "fraud_scenario"}
IDENTIFIERS = {"transaction_id", "customer_id", "terminal_id", "timestamp"}


@pytest.fixture(scope="module")
def validated(small_raw: pd.DataFrame, feature_params: FeatureParams) -> pd.DataFrame:
    valid, quarantine = validate_raw_transactions(small_raw, feature_params)
    assert quarantine.empty, "the simulator writes only valid rows"
    return valid


@pytest.fixture(scope="module")
def table(validated: pd.DataFrame, feature_params: FeatureParams) -> pd.DataFrame:
    return build_model_input_table(validated, feature_params)


@pytest.fixture(scope="module")
def spec(feature_params: FeatureParams) -> dict:
    return make_feature_spec(feature_params)


def test_labels_and_scenarios_are_never_features(spec: dict) -> None:
    assert LEAKY.isdisjoint(spec["features"])


def test_identifiers_are_never_features(spec: dict) -> None:
    assert IDENTIFIERS.isdisjoint(spec["features"])


@pytest.mark.parametrize("label", ["is_fraud", "label", "Class"])
def test_a_renamed_label_column_is_never_a_feature(feature_params: FeatureParams, label: str) -> None:
    params = replace(feature_params, columns=replace(feature_params.columns, label=label))
    assert label not in make_feature_spec(params)["features"]


def test_label_set_is_zero_one(table: pd.DataFrame, validated: pd.DataFrame) -> None:
    assert set(table["is_fraud"].unique()) == {0, 1}
    assert set(validated["is_fraud"].unique()) == {0, 1}
    # scenario 0 is exactly the legitimate transactions
    assert ((table["fraud_scenario"] == 0) == (table["is_fraud"] == 0)).all()


def test_no_feature_is_nan_or_infinite(table: pd.DataFrame, spec: dict) -> None:
    values = table[spec["features"]].to_numpy(dtype=np.float64)
    bad = [f for f, ok in zip(spec["features"], np.isfinite(values).all(axis=0), strict=True) if not ok]
    assert not bad


def test_model_input_table_schema(table: pd.DataFrame, spec: dict, feature_params: FeatureParams) -> None:
    params = feature_params
    columns: dict[str, pa.Column] = {
        "transaction_id": pa.Column(int, unique=True),
        "timestamp": pa.Column(
            "datetime64[ns]", pa.Check(lambda s: s.is_monotonic_increasing, element_wise=False)
        ),
        "is_fraud": pa.Column(int, pa.Check.isin([0, 1])),
        "amount": pa.Column(float, pa.Check.ge(0)),
        "hour": pa.Column(int, pa.Check.in_range(0, 23)),
        "is_weekend": pa.Column(int, pa.Check.isin([0, 1])),
        "is_night": pa.Column(int, pa.Check.isin([0, 1])),
    }
    for w in params.customer_windows_days:
        # the transaction itself is in its customer's windows
        columns[f"customer_nb_tx_{w}d"] = pa.Column(int, pa.Check.ge(1))
        columns[f"customer_mean_amount_{w}d"] = pa.Column(float, pa.Check.ge(0))
        columns[f"customer_amount_ratio_{w}d"] = pa.Column(float, pa.Check.ge(0))
    for w in params.terminal_windows_days:
        columns[f"terminal_nb_tx_{w}d"] = pa.Column(int, pa.Check.ge(0))
        columns[f"terminal_risk_{w}d"] = pa.Column(float, pa.Check.in_range(0, 1))
    if "amount_zscore" in params.extra_features:
        for w in params.customer_windows_days:
            columns[f"customer_amount_zscore_{w}d"] = pa.Column(float)
    if "recency" in params.extra_features:
        columns["customer_seconds_since_last_tx"] = pa.Column(float, pa.Check.ge(0))
    if "card_terminal" in params.extra_features:
        longest = max(params.customer_windows_days)
        columns[f"customer_terminal_nb_tx_{longest}d"] = pa.Column(int, pa.Check.ge(0))
    assert set(columns) - IDENTIFIERS - LEAKY == set(spec["features"])
    pa.DataFrameSchema(columns, strict=False).validate(table, lazy=True)


def test_longer_windows_hold_more_history(table: pd.DataFrame, feature_params: FeatureParams) -> None:
    windows = sorted(feature_params.customer_windows_days)
    for short, long in zip(windows[:-1], windows[1:], strict=True):
        assert (table[f"customer_nb_tx_{long}d"] >= table[f"customer_nb_tx_{short}d"]).all()
    windows = sorted(feature_params.terminal_windows_days)
    for short, long in zip(windows[:-1], windows[1:], strict=True):
        assert (table[f"terminal_nb_tx_{long}d"] >= table[f"terminal_nb_tx_{short}d"]).all()


def test_one_row_per_valid_transaction(
    table: pd.DataFrame, validated: pd.DataFrame, small_raw: pd.DataFrame
) -> None:
    assert len(table) == len(validated) == len(small_raw)
    assert list(table["transaction_id"]) == list(validated["transaction_id"])


def test_features_carry_signal_about_the_simulated_frauds(table: pd.DataFrame) -> None:
    """A sanity check that the labels line up with the features (not shuffled or shifted)."""
    fraud, legit = table[table["is_fraud"] == 1], table[table["is_fraud"] == 0]
    assert fraud["amount"].median() > legit["amount"].median()
    assert fraud["terminal_risk_30d"].mean() > legit["terminal_risk_30d"].mean()


def test_feature_names_match_the_table(table: pd.DataFrame, feature_params: FeatureParams) -> None:
    assert set(feature_names(feature_params)) <= set(table.columns)
