"""Point-in-time features: hand-computed windows, no leakage, label delay, batch/online parity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraud_kedro.features import (
    FeatureParams,
    compute_features,
    extra_feature_names,
    feature_names,
)
from fraud_kedro.parameters import build
from fraud_kedro.pipelines.data_processing.nodes import build_model_input_table, make_feature_spec

KEYS = ["transaction_id", "timestamp", "customer_id", "terminal_id"]
SMALL = FeatureParams(customer_windows_days=(1, 2), terminal_windows_days=(1,), terminal_label_delay_days=1)


def frame(rows: list[tuple]) -> pd.DataFrame:
    """Transactions from ``(id, timestamp, customer, terminal, amount, is_fraud)`` tuples."""
    df = pd.DataFrame(rows, columns=[*KEYS, "amount", "is_fraud"])
    df["timestamp"] = pd.to_datetime(df["timestamp"])
    return df


def by_id(features: pd.DataFrame) -> pd.DataFrame:
    return features.set_index("transaction_id")


@pytest.fixture(scope="module")
def sim(small_raw: pd.DataFrame) -> pd.DataFrame:
    """The first 45 days of the small simulation (enough for every window and the delay)."""
    end = small_raw["timestamp"].min() + pd.Timedelta(days=45)
    return small_raw[small_raw["timestamp"] < end].reset_index(drop=True)


@pytest.fixture(scope="module")
def sim_features(sim: pd.DataFrame, feature_params: FeatureParams) -> pd.DataFrame:
    return compute_features(sim, feature_params)


# ---- parameters and shape ----------------------------------------------------------------------


def test_feature_names_order_and_output_columns(feature_params: FeatureParams) -> None:
    names = feature_names(feature_params)
    assert names[:4] == ["amount", "hour", "is_weekend", "is_night"]
    assert "customer_amount_ratio_30d" in names and "terminal_risk_7d" in names
    # the classic features, then the optional groups (recency 1, z-score per card window, card at
    # terminal 1) when conf/base switches them on
    extra = len(extra_feature_names(feature_params))
    assert len(names) == len(set(names)) == 4 + 3 * 3 + 2 * 3 + extra
    out = compute_features(frame([(1, "2018-04-01", 1, 1, 5.0, 0)]), feature_params)
    assert list(out.columns) == KEYS + names


def test_params_from_dict_validates(feature_params: FeatureParams) -> None:
    params = feature_params
    assert params.customer_windows_days == (1, 7, 30)
    assert params.history_days == 30 + 7
    with pytest.raises(ValueError, match=r"windows\s+Unexpected keyword argument"):
        FeatureParams(**{"windows": [1]})
    with pytest.raises(ValueError, match=r"customer_windows_days\.0\s+Input should be greater"):
        FeatureParams(**{"customer_windows_days": [0, 7]})
    with pytest.raises(ValueError, match="terminal_label_delay_days"):
        FeatureParams(**{"terminal_label_delay_days": -1})
    with pytest.raises(ValueError, match=r"columns\.amnt\s+Unexpected keyword argument"):
        FeatureParams(**{"columns": {"amnt": "x"}})
    assert build(FeatureParams, None) == FeatureParams()


def test_feature_spec_holds_the_features_and_params(feature_params: FeatureParams) -> None:
    spec = make_feature_spec(feature_params)
    assert spec["features"] == feature_names(feature_params)
    assert spec["params"] == feature_params.spec_params()
    assert FeatureParams(**spec["params"]) == feature_params


# ---- hand-computed examples --------------------------------------------------------------------


def test_customer_windows_by_hand() -> None:
    df = frame(
        [
            (1, "2018-04-01 10:00", 1, 100, 10.0, 0),
            (2, "2018-04-01 20:00", 1, 101, 30.0, 0),
            (5, "2018-04-01 21:00", 2, 100, 1000.0, 1),  # another customer: never mixed in
            (3, "2018-04-02 12:00", 1, 100, 20.0, 0),
            (4, "2018-04-04 12:00", 1, 101, 40.0, 0),  # exactly 2 days after id 3: excluded
        ]
    )
    out = by_id(compute_features(df, SMALL))
    expected = {
        # id: (nb_1d, mean_1d, ratio_1d, nb_2d, mean_2d, ratio_2d)
        1: (1, 10.0, 1.0, 1, 10.0, 1.0),
        2: (2, 20.0, 1.5, 2, 20.0, 1.5),
        3: (2, 25.0, 0.8, 3, 20.0, 1.0),
        4: (1, 40.0, 1.0, 1, 40.0, 1.0),
        5: (1, 1000.0, 1.0, 1, 1000.0, 1.0),
    }
    cols = [f"customer_{s}_{w}d" for w in (1, 2) for s in ("nb_tx", "mean_amount", "amount_ratio")]
    for tx, values in expected.items():
        np.testing.assert_allclose(out.loc[tx, cols].to_numpy(dtype=float), values, err_msg=str(tx))
    assert out["customer_nb_tx_1d"].dtype == np.int64


def test_terminal_windows_by_hand_with_label_delay() -> None:
    df = frame(
        [
            (1, "2018-04-01 10:00", 1, 7, 5.0, 1),
            (2, "2018-04-01 12:00", 2, 7, 5.0, 0),
            (3, "2018-04-02 09:00", 3, 7, 5.0, 0),  # the fraud of id 1 is 23 h old: not known yet
            (4, "2018-04-02 10:00", 4, 7, 5.0, 0),  # exactly one day (the delay): known
            (5, "2018-04-02 12:30", 5, 7, 5.0, 0),
            (6, "2018-04-03 11:00", 6, 7, 5.0, 0),  # id 1 has left the 1-day window
            (7, "2018-04-01 10:00", 7, 8, 5.0, 1),  # another terminal
            (8, "2018-04-02 10:00", 8, 8, 5.0, 0),
        ]
    )
    out = by_id(compute_features(df, SMALL))
    assert list(out.loc[[1, 2, 3, 4, 5, 6, 7, 8], "terminal_nb_tx_1d"]) == [0, 0, 0, 1, 2, 3, 0, 1]
    np.testing.assert_allclose(
        out.loc[[1, 2, 3, 4, 5, 6, 7, 8], "terminal_risk_1d"], [0, 0, 0, 1.0, 0.5, 0, 0, 1.0]
    )


def test_zero_delay_never_uses_the_transactions_own_label() -> None:
    params = FeatureParams(
        customer_windows_days=(1,), terminal_windows_days=(1,), terminal_label_delay_days=0
    )
    df = frame(
        [
            (1, "2018-04-01 10:00", 1, 7, 5.0, 0),
            (2, "2018-04-01 11:00", 2, 7, 5.0, 1),
            (3, "2018-04-01 11:00", 3, 7, 5.0, 0),
        ]
    )
    out = by_id(compute_features(df, params))
    assert list(out["terminal_nb_tx_1d"]) == [0, 1, 2]
    np.testing.assert_allclose(out["terminal_risk_1d"], [0.0, 0.0, 0.5])


@pytest.mark.parametrize(
    ("timestamp", "hour", "weekend", "night"),
    [
        ("2018-04-02 05:59", 5, 0, 1),  # Monday
        ("2018-04-02 06:00", 6, 0, 0),
        ("2018-04-06 21:59", 21, 0, 0),  # Friday
        ("2018-04-07 22:00", 22, 1, 1),  # Saturday
        ("2018-04-08 00:00", 0, 1, 1),  # Sunday
    ],
)
def test_calendar_features(timestamp: str, hour: int, weekend: int, night: int) -> None:
    out = compute_features(frame([(1, timestamp, 1, 1, 5.0, 0)]), FeatureParams())
    assert (out.loc[0, "hour"], out.loc[0, "is_weekend"], out.loc[0, "is_night"]) == (hour, weekend, night)


def test_night_window_that_does_not_wrap_midnight() -> None:
    params = FeatureParams(night_start_hour=1, night_end_hour=5)
    df = frame([(1, "2018-04-02 00:30", 1, 1, 5.0, 0), (2, "2018-04-02 03:00", 1, 1, 5.0, 0)])
    assert list(compute_features(df, params)["is_night"]) == [0, 1]


def test_zero_amount_history_gives_zero_ratio_not_nan() -> None:
    df = frame([(1, "2018-04-01 10:00", 1, 1, 0.0, 0), (2, "2018-04-01 11:00", 1, 1, 0.0, 0)])
    out = compute_features(df, SMALL)
    assert (out["customer_amount_ratio_1d"] == 0).all()
    assert np.isfinite(out[feature_names(SMALL)].to_numpy(dtype=float)).all()


def test_order_of_the_input_does_not_matter(
    sim: pd.DataFrame, sim_features: pd.DataFrame, feature_params: FeatureParams
) -> None:
    shuffled = sim.sample(frac=1.0, random_state=0)
    out = compute_features(shuffled, feature_params)
    assert list(out["transaction_id"]) == list(shuffled["transaction_id"])
    pd.testing.assert_frame_equal(
        by_id(out).sort_index(), by_id(sim_features).sort_index(), check_exact=False, rtol=1e-12
    )


def test_timezone_aware_timestamps_give_the_same_windows(
    sim: pd.DataFrame, feature_params: FeatureParams
) -> None:
    part = sim.head(3000)
    aware = part.assign(timestamp=part["timestamp"].dt.tz_localize("UTC"))
    names = [n for n in feature_names(feature_params) if n.startswith(("customer", "terminal"))]
    pd.testing.assert_frame_equal(
        compute_features(aware, feature_params)[names], compute_features(part, feature_params)[names]
    )


def test_input_is_not_modified(sim: pd.DataFrame, feature_params: FeatureParams) -> None:
    part = sim.head(500)
    before = part.copy()
    compute_features(part, feature_params, history=sim.iloc[500:600])
    pd.testing.assert_frame_equal(part, before)


def test_model_input_table_node_keeps_labels_and_scenario(
    sim: pd.DataFrame, feature_params: FeatureParams
) -> None:
    table = build_model_input_table(sim, feature_params)
    assert len(table) == len(sim)
    assert list(table["is_fraud"]) == list(sim["is_fraud"])
    assert list(table["fraud_scenario"]) == list(sim["fraud_scenario"])
    unlabelled = build_model_input_table(
        sim.drop(columns=["is_fraud", "fraud_scenario"]).head(50), feature_params
    )
    assert "is_fraud" not in unlabelled and "fraud_scenario" not in unlabelled


# ---- leakage -----------------------------------------------------------------------------------


def test_changing_or_removing_rows_after_t_leaves_earlier_features_unchanged(
    sim: pd.DataFrame, sim_features: pd.DataFrame, feature_params: FeatureParams
) -> None:
    t = sim["timestamp"].min() + pd.Timedelta(days=30, hours=7)
    after = sim["timestamp"] >= t
    rng = np.random.default_rng(0)
    future = sim[after].copy()
    future["amount"] = future["amount"] * 7 + 100
    future["is_fraud"] = 1 - future["is_fraud"]
    future["terminal_id"] = rng.permutation(future["terminal_id"].to_numpy())
    future = future.sample(frac=0.6, random_state=1)  # 40% of the future removed
    extra = future.head(200).assign(
        transaction_id=lambda d: d["transaction_id"] + 10**9, customer_id=sim["customer_id"].iloc[0]
    )
    changed = pd.concat([sim[~after], future, extra], ignore_index=True)
    before_t = by_id(compute_features(changed, feature_params)).loc[sim.loc[~after, "transaction_id"]]
    expected = by_id(sim_features[~after.to_numpy()])
    assert len(before_t) > 10_000
    pd.testing.assert_frame_equal(before_t, expected)


def test_a_label_at_s_moves_terminal_risk_only_from_s_plus_delay(
    sim: pd.DataFrame, sim_features: pd.DataFrame, feature_params: FeatureParams
) -> None:
    delay = pd.Timedelta(days=feature_params.label_delay_days)
    longest = pd.Timedelta(days=max(feature_params.terminal_windows_days))
    # a legitimate transaction on a busy terminal, early enough that s + delay is in the data
    busy = sim["terminal_id"].value_counts().index[0]
    candidates = sim[
        (sim["terminal_id"] == busy)
        & (sim["is_fraud"] == 0)
        & (sim["timestamp"] < sim["timestamp"].min() + pd.Timedelta(days=20))
    ]
    row = candidates.index[len(candidates) // 2]
    s = sim.loc[row, "timestamp"]
    flipped = sim.copy()
    flipped.loc[row, "is_fraud"] = 1
    new = compute_features(flipped, feature_params)
    names = feature_names(feature_params)
    diff = ~np.isclose(
        new[names].to_numpy(float), sim_features[names].to_numpy(float), rtol=0, atol=1e-12
    ).all(axis=1)
    moved = sim[diff]
    assert len(moved) > 0, "the label should reach later transactions of the terminal"
    assert (moved["terminal_id"] == busy).all()
    assert (moved["timestamp"] >= s + delay).all()
    assert (moved["timestamp"] < s + delay + longest).all()
    # only terminal risks move: counts and customer features do not depend on labels
    changed_cols = [n for n in names if not np.allclose(new.loc[diff, n], sim_features.loc[diff, n])]
    assert changed_cols and all(c.startswith("terminal_risk_") for c in changed_cols)


# ---- batch / online parity ---------------------------------------------------------------------


def online(df: pd.DataFrame, position: int, params: FeatureParams, trim: bool = False) -> pd.DataFrame:
    """Features of one row from the rows before it (time, then id), as the scoring service does."""
    row = df.iloc[[position]]
    ts, tx = row["timestamp"].iloc[0], row["transaction_id"].iloc[0]
    earlier = (df["timestamp"] < ts) | ((df["timestamp"] == ts) & (df["transaction_id"] < tx))
    history = df[earlier]
    if trim:  # what the service keeps: the card's and the terminal's recent history only
        recent = history["timestamp"] > ts - pd.Timedelta(days=params.history_days)
        mine = (history["customer_id"] == row["customer_id"].iloc[0]) | (
            history["terminal_id"] == row["terminal_id"].iloc[0]
        )
        history = history[recent & mine]
    return compute_features(
        row.drop(columns=["is_fraud", "fraud_scenario"], errors="ignore"), params, history=history
    )


@pytest.mark.parametrize("trim", [False, True], ids=["all-earlier-rows", "recent-card-and-terminal"])
def test_batch_equals_online_on_random_rows(
    sim: pd.DataFrame, sim_features: pd.DataFrame, feature_params: FeatureParams, trim: bool
) -> None:
    names = feature_names(feature_params)
    rng = np.random.default_rng(11 + trim)
    late = np.flatnonzero(sim["timestamp"] > sim["timestamp"].min() + pd.Timedelta(days=20))
    positions = rng.choice(late, size=40, replace=False)
    for pos in positions:
        one = online(sim, int(pos), feature_params, trim=trim)
        assert one.loc[0, "transaction_id"] == sim.loc[pos, "transaction_id"]
        np.testing.assert_allclose(
            one.loc[0, names].to_numpy(float),
            sim_features.loc[pos, names].to_numpy(float),
            rtol=0,
            atol=1e-9,
            err_msg=f"row {pos}",
        )
    # the sample really exercises the terminal risk
    assert (sim_features.loc[positions, "terminal_risk_30d"] > 0).any()


def test_online_scoring_of_a_batch_with_history(
    sim: pd.DataFrame, sim_features: pd.DataFrame, feature_params: FeatureParams
) -> None:
    cut = sim["timestamp"].min() + pd.Timedelta(days=40)
    new = sim["timestamp"] >= cut
    out = compute_features(sim[new].drop(columns="is_fraud"), feature_params, history=sim[~new])
    names = feature_names(feature_params)
    np.testing.assert_allclose(
        out[names].to_numpy(float), sim_features.loc[new.to_numpy(), names].to_numpy(float), rtol=0, atol=1e-9
    )


@st.composite
def transactions(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(1, 25))
    # few distinct seconds so that ties and exact window boundaries happen
    seconds = draw(
        st.lists(
            st.sampled_from(
                [0, 1, 3_600, 43_200, 86_399, 86_400, 86_401, 172_800, 200_000, 259_200, 300_000]
            ),
            min_size=n,
            max_size=n,
        )
    )
    return pd.DataFrame(
        {
            "transaction_id": draw(st.permutations(range(100, 100 + n))),
            "timestamp": pd.Timestamp("2018-04-01") + pd.to_timedelta(seconds, unit="s"),
            "customer_id": draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)),
            "terminal_id": draw(st.lists(st.sampled_from(["a", "b"]), min_size=n, max_size=n)),
            "amount": draw(st.lists(st.floats(0, 1e4, allow_nan=False), min_size=n, max_size=n)),
            "is_fraud": draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)),
        }
    )


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    df=transactions(),
    customer_windows=st.lists(st.integers(1, 3), min_size=1, max_size=2, unique=True),
    terminal_windows=st.lists(st.integers(1, 2), min_size=1, max_size=2, unique=True),
    delay=st.integers(0, 2),
)
def test_property_batch_equals_online(
    df: pd.DataFrame, customer_windows: list[int], terminal_windows: list[int], delay: int
) -> None:
    params = FeatureParams(
        customer_windows_days=tuple(customer_windows),
        terminal_windows_days=tuple(terminal_windows),
        terminal_label_delay_days=delay,
    )
    names = feature_names(params)
    batch = compute_features(df, params)
    assert list(batch["transaction_id"]) == list(df["transaction_id"])
    assert np.isfinite(batch[names].to_numpy(float)).all()
    for pos in range(len(df)):
        one = online(df, pos, params)
        np.testing.assert_allclose(
            one.loc[0, names].to_numpy(float), batch.loc[pos, names].to_numpy(float), rtol=0, atol=1e-9
        )
