"""The feature groups beyond the classic baselines: by hand, point in time, batch == online."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from fraud_kedro.features import EXTRA_GROUPS, FeatureParams, compute_features, feature_names

from .test_features import by_id, frame


def online(df: pd.DataFrame, position: int, params: FeatureParams, trim: bool) -> pd.DataFrame:
    """One row's features from the rows before it; ``trim``: only what the service fetches (the
    card's rows of the card windows, the terminal's rows older than the label delay)."""
    row = df.iloc[[position]]
    ts, tx = row["timestamp"].iloc[0], row["transaction_id"].iloc[0]
    earlier = (df["timestamp"] < ts) | ((df["timestamp"] == ts) & (df["transaction_id"] < tx))
    history = df[earlier]
    if trim:
        card = (history["customer_id"] == row["customer_id"].iloc[0]) & (
            history["timestamp"] >= ts - pd.Timedelta(days=max(params.customer_windows_days)))
        delay = pd.Timedelta(days=params.label_delay_days)
        terminal = (history["terminal_id"] == row["terminal_id"].iloc[0]) & (
            history["timestamp"] < ts - delay) & (history["timestamp"] >= ts - delay - pd.Timedelta(
                days=max(params.terminal_windows_days)))
        history = history[card | terminal]
    return compute_features(row.drop(columns=["is_fraud", "fraud_scenario"], errors="ignore"),
                            params, history=history)


HAND = FeatureParams(customer_windows_days=(1, 2), terminal_windows_days=(1,),
                     terminal_label_delay_days=1, extra_features=EXTRA_GROUPS)
ROWS = [
    (1, "2020-01-01 10:00", 7, 100, 10.0, 0),
    (2, "2020-01-01 12:00", 7, 100, 30.0, 0),
    (3, "2020-01-02 11:00", 7, 200, 50.0, 1),
    (4, "2020-01-05 11:00", 7, 100, 20.0, 0),
    (5, "2020-01-05 11:00", 8, 100, 5.0, 0),
]


def test_extra_features_by_hand() -> None:
    f = by_id(compute_features(frame(ROWS), HAND))
    assert list(f.columns[-4:]) == ["customer_seconds_since_last_tx", "customer_amount_zscore_1d",
                                    "customer_amount_zscore_2d", "customer_terminal_nb_tx_2d"]
    cap = 2 * 86_400
    assert f["customer_seconds_since_last_tx"].tolist() == [cap, 7200, 23 * 3600, cap, cap]
    # tx 2: the card's 1-day amounts are 10 and 30: mean 20, std 10 -> z = 1
    assert f.loc[2, "customer_amount_zscore_1d"] == pytest.approx(1.0)
    # tx 3 (2-day window: 10, 30, 50; mean 30, std sqrt(800/3))
    assert f.loc[3, "customer_amount_zscore_2d"] == pytest.approx(20 / np.sqrt(800 / 3))
    assert f.loc[1, "customer_amount_zscore_1d"] == 0.0  # one amount: no spread
    assert f["customer_terminal_nb_tx_2d"].tolist() == [0, 1, 0, 0, 0]


def test_unknown_group_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"extra_features\.0\s+Input should be 'recency'"):
        FeatureParams(**{"extra_features": ["astrology"]})
    assert FeatureParams(**{"extra_features": ["recency"]}).extra_features == ("recency",)


@pytest.fixture(scope="module")
def sim(small_raw: pd.DataFrame) -> pd.DataFrame:
    end = small_raw["timestamp"].min() + pd.Timedelta(days=45)
    return small_raw[small_raw["timestamp"] < end].reset_index(drop=True)


@pytest.fixture(scope="module")
def params(feature_params: FeatureParams) -> FeatureParams:
    return dataclasses.replace(feature_params, extra_features=EXTRA_GROUPS)


@pytest.mark.parametrize("group", EXTRA_GROUPS)
def test_group_is_point_in_time(sim: pd.DataFrame, params: FeatureParams, group: str) -> None:
    """Changing or removing every row after t changes no feature of the group before t."""
    one = dataclasses.replace(params, extra_features=(group,))
    names = [n for n in feature_names(one) if n not in feature_names(
        dataclasses.replace(params, extra_features=()))]
    t = sim["timestamp"].min() + pd.Timedelta(days=30, hours=7)
    after = sim["timestamp"] >= t
    future = sim[after].copy()
    future["amount"] = future["amount"] * 7 + 100
    future["terminal_id"] = np.random.default_rng(0).permutation(future["terminal_id"].to_numpy())
    future = future.sample(frac=0.5, random_state=1)
    changed = pd.concat([sim[~after], future], ignore_index=True)
    ids = sim.loc[~after, "transaction_id"]
    before = by_id(compute_features(changed, one)).loc[ids, names]
    expected = by_id(compute_features(sim, one)).loc[ids, names]
    pd.testing.assert_frame_equal(before, expected)
    assert expected.to_numpy().std(axis=0).min() > 0  # the features vary


@pytest.mark.parametrize("trim", [False, True], ids=["all-earlier-rows", "recent-card-and-terminal"])
def test_batch_equals_online_bit_for_bit(sim: pd.DataFrame, params: FeatureParams,
                                         trim: bool) -> None:
    names = feature_names(params)
    batch = compute_features(sim, params)
    rng = np.random.default_rng(5 + trim)
    late = np.flatnonzero(sim["timestamp"] > sim["timestamp"].min() + pd.Timedelta(days=20))
    for pos in rng.choice(late, size=40, replace=False):
        got = online(sim, int(pos), params, trim=trim).loc[0, names].to_numpy(float)
        np.testing.assert_array_equal(got, batch.loc[pos, names].to_numpy(float),
                                      err_msg=f"row {pos}")
