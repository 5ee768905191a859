"""Tests of the transaction simulator (``fraud_kedro.pipelines.simulation``)."""

import copy
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from fraud_kedro.pipelines.simulation import create_pipeline
from fraud_kedro.pipelines.simulation.nodes import (
    CARD_TESTING,
    OUTPUT_COLUMNS,
    SimulationParams,
)
from fraud_kedro.pipelines.simulation.nodes import (
    simulate_transactions as _simulate_node,
)

PARAMS_FILE = Path(__file__).resolve().parents[2] / "conf" / "base" / "parameters_simulation.yml"


def simulate_transactions(params: dict[str, Any]) -> pd.DataFrame:
    """The node, given what Kedro builds from the ``simulation`` dictionary."""
    return _simulate_node(SimulationParams(**params))


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    with PARAMS_FILE.open() as fh:
        return yaml.safe_load(fh)


@pytest.fixture(scope="module")
def small(config: dict[str, Any]) -> dict[str, Any]:
    return config["simulation_small"]


@pytest.fixture(scope="module")
def small_df(small: dict[str, Any]) -> pd.DataFrame:
    return simulate_transactions(small)


def _with(params: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``params`` with the dotted ``path`` set to ``value``."""
    out = copy.deepcopy(params)
    node = out
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    return out


def _hash(df: pd.DataFrame) -> str:
    return hashlib.sha256(
        pd.util.hash_pandas_object(df, index=True).to_numpy().tobytes()
    ).hexdigest()


def _drift_start(params: dict[str, Any]) -> pd.Timestamp:
    return pd.Timestamp(params["start_date"]) + pd.Timedelta(days=params["drift"]["start_day"])


def test_schema_and_dtypes(small_df: pd.DataFrame) -> None:
    assert list(small_df.columns) == list(OUTPUT_COLUMNS)
    expected = {
        "transaction_id": "int64",
        "timestamp": "datetime64[ns]",
        "customer_id": "int64",
        "terminal_id": "int64",
        "amount": "float64",
        "fraud_scenario": "int64",
    }
    for column, dtype in expected.items():
        assert str(small_df[column].dtype) == dtype, column
    assert small_df["is_fraud"].dtype in (np.int8, np.int64)
    assert small_df["timestamp"].dt.tz is None
    assert isinstance(small_df.index, pd.RangeIndex)
    assert len(small_df) > 10_000


def test_ids_unique_sorted_and_values_valid(small_df: pd.DataFrame, small: dict[str, Any]) -> None:
    ids = small_df["transaction_id"].to_numpy()
    np.testing.assert_array_equal(ids, np.arange(len(small_df)))
    assert small_df["timestamp"].is_monotonic_increasing
    start = pd.Timestamp(small["start_date"])
    assert small_df["timestamp"].min() >= start
    assert small_df["timestamp"].max() < start + pd.Timedelta(days=small["n_days"])
    amount = small_df["amount"].to_numpy()
    assert (amount >= 0).all()
    np.testing.assert_allclose(amount, np.round(amount, 2), rtol=0, atol=1e-9)
    assert set(np.unique(small_df["is_fraud"])) <= {0, 1}
    assert ((small_df["fraud_scenario"] > 0) == (small_df["is_fraud"] == 1)).all()
    assert small_df["customer_id"].between(0, small["n_customers"] - 1).all()


def test_every_scenario_occurs_in_small_world(small_df: pd.DataFrame) -> None:
    assert set(small_df["fraud_scenario"].unique()) == {0, 1, 2, 3, 4}


def test_fraud_rate_in_range_on_medium_world(small: dict[str, Any]) -> None:
    params = copy.deepcopy(small)
    params.update(n_customers=1000, n_terminals=2000, n_days=120, seed=7)
    params["scenarios"]["compromised_terminals"]["n_per_day"] = 0.4
    params["scenarios"]["compromised_cards"]["n_per_day"] = 0.6
    params["drift"]["enabled"] = False
    df = simulate_transactions(params)
    assert 200_000 < len(df) < 280_000
    assert 0.004 <= df["is_fraud"].mean() <= 0.015
    shares = df["fraud_scenario"].value_counts(normalize=True)
    for scenario in (1, 2, 3):
        assert 0.0002 < shares.get(scenario, 0.0) < 0.01, scenario


def test_amount_outliers_are_fraud_before_drift(
    small_df: pd.DataFrame, small: dict[str, Any]
) -> None:
    threshold = small["scenarios"]["amount_outliers"]["threshold"]
    before = small_df[small_df["timestamp"] < _drift_start(small)]
    assert (before.loc[before["amount"] > threshold, "is_fraud"] == 1).all()


def test_deterministic(small: dict[str, Any], small_df: pd.DataFrame) -> None:
    again = simulate_transactions(copy.deepcopy(small))
    pd.testing.assert_frame_equal(small_df, again, check_exact=True)
    assert _hash(small_df) == _hash(again)
    other = simulate_transactions(_with(small, "seed", small["seed"] + 1))
    assert _hash(other) != _hash(small_df)


def test_does_not_mutate_params(small: dict[str, Any]) -> None:
    params = _with(small, "n_days", 10)
    params["drift"]["start_day"] = 5
    before = copy.deepcopy(params)
    simulate_transactions(params)
    assert params == before


@pytest.mark.parametrize(
    ("path", "scenario"),
    [
        ("scenarios.amount_outliers.enabled", 1),
        ("scenarios.compromised_terminals.enabled", 2),
        ("scenarios.compromised_cards.enabled", 3),
        ("drift.card_testing.enabled", CARD_TESTING),
        ("drift.enabled", CARD_TESTING),
    ],
)
def test_scenario_switch(
    small: dict[str, Any], small_df: pd.DataFrame, path: str, scenario: int
) -> None:
    assert (small_df["fraud_scenario"] == scenario).any()
    df = simulate_transactions(_with(small, path, False))
    assert not (df["fraud_scenario"] == scenario).any()


def test_disabling_scenario_leaves_other_randomness_alone(small: dict[str, Any]) -> None:
    base = _with(small, "drift.enabled", False)
    a = simulate_transactions(_with(base, "scenarios.compromised_terminals.enabled", False))
    b = simulate_transactions(base)
    legit_or_other = b["fraud_scenario"] != 2
    np.testing.assert_array_equal(a["amount"], b["amount"])
    pd.testing.assert_frame_equal(a[legit_or_other], b[legit_or_other])


def test_drift_changes_data_only_from_start_day(
    small: dict[str, Any], small_df: pd.DataFrame
) -> None:
    no_drift = simulate_transactions(_with(small, "drift.enabled", False))
    all_parts_off = copy.deepcopy(small)
    for part in ("spending_change", "new_terminals", "card_testing"):
        all_parts_off["drift"][part]["enabled"] = False
    pd.testing.assert_frame_equal(simulate_transactions(all_parts_off), no_drift)

    start = _drift_start(small)
    pd.testing.assert_frame_equal(
        small_df[small_df["timestamp"] < start], no_drift[no_drift["timestamp"] < start]
    )
    after, after_no = (
        small_df[small_df["timestamp"] >= start],
        no_drift[no_drift["timestamp"] >= start],
    )
    assert len(after) > len(after_no)  # card-testing rows
    # new terminal ids appear, and only after the start
    new_ids = small_df["terminal_id"] >= small["n_terminals"]
    assert new_ids.any()
    assert (small_df.loc[new_ids, "timestamp"] >= start).all()
    assert (no_drift["terminal_id"] < small["n_terminals"]).all()
    # card testing: small amounts at night
    testing = small_df[small_df["fraud_scenario"] == CARD_TESTING]
    low, high = small["drift"]["card_testing"]["amount_range"]
    assert testing["amount"].between(low, high).all()
    assert (testing["timestamp"].dt.hour < small["drift"]["card_testing"]["hours_range"][1]).all()


def test_drift_shifts_amount_distribution(small: dict[str, Any], small_df: pd.DataFrame) -> None:
    no_drift = simulate_transactions(_with(small, "drift.enabled", False))
    start = _drift_start(small)

    def legit_after(df: pd.DataFrame) -> pd.Series:
        return df.loc[(df["timestamp"] >= start) & (df["is_fraud"] == 0), "amount"]

    drifted, reference = legit_after(small_df), legit_after(no_drift)
    assert drifted.mean() > 1.1 * reference.mean()
    assert drifted.quantile(0.9) > reference.quantile(0.9)
    # the spending change is persistent: every drifted day has higher mean legit amount
    by_day = pd.concat(
        {
            "drift": drifted.groupby(small_df.loc[drifted.index, "timestamp"].dt.date).mean(),
            "ref": reference.groupby(no_drift.loc[reference.index, "timestamp"].dt.date).mean(),
        },
        axis=1,
    )
    assert (by_day["drift"] > by_day["ref"]).mean() > 0.9


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("n_customers", 0, r"n_customers\s+Input should be greater than or equal to 1"),
        ("n_terminals", 10.5, r"n_terminals\s+Input should be a valid integer"),
        ("seed", "abc", r"seed\s+Input should be a valid integer"),
        ("radius", -1.0, r"radius\s+Input should be greater than 0"),
        ("start_date", "not a date", r"start_date\s+Value error, must be a date"),
        ("amount_mean_range", [100, 5], r"amount_mean_range\s+Value error, must have low <= high"),
        ("amount_mean_range", 5, r"amount_mean_range\s+Input should be a valid tuple"),
        ("scenarios.compromised_cards.share", 1.5, r"share\s+Input should be less than or equal to 1"),
        ("scenarios.amount_outliers.enabled", "yes", r"enabled\s+Input should be a valid boolean"),
        ("scenarios.compromised_terminals.n_per_day", 10_000, r"exceeds n_terminals"),
        ("drift.start_day", 90, r"start_day \(90\) must be smaller than n_days \(90\)"),
        ("drift.card_testing.hours_range", [0, 25],
         r"hours_range\.1\s+Input should be less than or equal to 24"),
        ("drift.new_terminals", [1, 2], r"drift\.new_terminals\s+Input should be a dictionary"),
        ("drift.kind", "sudden", r"drift\.kind\s+Unexpected keyword argument"),
        ("n_custmers", 10, r"n_custmers\s+Unexpected keyword argument"),
    ],
)
def test_bad_params_raise_clear_error(
    small: dict[str, Any], path: str, value: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        simulate_transactions(_with(small, path, value))


def test_defaults_match_parameters_file(config: dict[str, Any]) -> None:
    assert SimulationParams(**config["simulation"]) == SimulationParams()
    small = SimulationParams(**config["simulation_small"])
    assert (small.n_customers, small.n_terminals, small.n_days) == (300, 600, 90)
    assert small.drift.enabled and small.drift.start_day == 70


def test_parameters_file_loads_with_omegaconf(config: dict[str, Any]) -> None:
    from omegaconf import OmegaConf

    loaded = OmegaConf.to_container(OmegaConf.load(PARAMS_FILE), resolve=True)
    assert loaded == config


def test_pipeline_structure() -> None:
    pipeline = create_pipeline()
    assert len(pipeline.nodes) == 1
    node = pipeline.nodes[0]
    assert node.name == "simulation.simulate_transactions_node"  # the stage is a namespace
    assert node.inputs == ["params:simulation"]
    assert node.outputs == ["raw_transactions"]
    assert "simulation" in node.tags
    assert node.func is _simulate_node
