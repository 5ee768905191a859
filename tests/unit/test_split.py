"""Time split with a label delay, known-compromised cards, prequential folds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraud_kedro.features import FeatureParams
from fraud_kedro.pipelines.data_processing.nodes import build_model_input_table
from fraud_kedro.pipelines.data_science.nodes import split_data
from fraud_kedro.split import SplitParams, drop_known_compromised, prequential_folds, split_windows

SMALL_SPLIT = {"train_start": None, "train_days": 14, "delay_days": 7, "test_days": 7, "production_days": 21}
SMALL = SplitParams(**SMALL_SPLIT)


def days(start: str, n: int) -> pd.Series:
    return pd.Series(pd.date_range(start, periods=n * 24, freq="h"))


@pytest.fixture(scope="module")
def table(small_raw: pd.DataFrame, feature_params: FeatureParams) -> pd.DataFrame:
    return build_model_input_table(small_raw, feature_params)


@pytest.fixture(scope="module")
def split(table: pd.DataFrame, feature_params: FeatureParams) -> tuple:
    return split_data(table, SMALL, feature_params)


def test_latest_window_that_fits_before_production() -> None:
    ts = days("2018-04-01", 90)  # 2018-04-01 .. 2018-06-29
    windows = split_windows(ts, SplitParams(**SMALL_SPLIT))
    assert windows == {
        "data_start": "2018-04-01",
        "train_start": "2018-05-12",
        "train_end": "2018-05-26",
        "test_start": "2018-06-02",
        "test_end": "2018-06-09",
        "data_end": "2018-06-30",
    }


def test_explicit_train_start() -> None:
    params = SplitParams(train_start="2018-04-10", train_days=7, delay_days=3, test_days=5)
    windows = split_windows(days("2018-04-01", 60), params)
    assert (windows["train_start"], windows["train_end"]) == ("2018-04-10", "2018-04-17")
    assert (windows["test_start"], windows["test_end"]) == ("2018-04-20", "2018-04-25")


@pytest.mark.parametrize("train_start", ["2018-03-31", "2018-05-01"])
def test_split_that_does_not_fit_the_data_is_an_error(train_start: str) -> None:
    params = SplitParams(train_start=train_start, train_days=14, delay_days=7, test_days=7)
    with pytest.raises(ValueError, match="does not fit"):
        split_windows(days("2018-04-01", 40), params)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"train_days": 0}, "train_days"),
        ({"test_days": -1}, "test_days"),
        ({"delay_days": -1}, "delay_days"),
        ({"production_days": -2}, "production_days"),
        ({"train_dayz": 3}, r"train_dayz\s+Unexpected keyword argument"),
    ],
)
def test_split_params_are_validated(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SplitParams(**params)


def test_known_compromised_cards_are_dropped_from_the_day_they_are_known() -> None:
    history = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 3],
            "timestamp": pd.to_datetime(
                ["2018-04-01 10:00", "2018-04-05 00:00", "2018-04-01 00:00", "2018-04-09 00:00"]
            ),
            "is_fraud": [1, 1, 0, 1],
        }
    )
    test = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 2, 3, 3],
            "timestamp": pd.to_datetime(
                [
                    "2018-04-07 23:00",
                    "2018-04-08 00:00",
                    "2018-04-09 12:00",
                    "2018-04-09 00:00",
                    "2018-04-15 00:00",
                    "2018-04-17 00:00",
                ]
            ),
        }
    )
    kept = drop_known_compromised(test, history, "customer_id", "timestamp", "is_fraud", delay_days=7)
    # card 1: first fraud 04-01 10:00, known from 04-08 10:00 -> not on day 04-08 (known during it)
    # card 2: never a fraud; card 3: fraud 04-09 -> known from 04-16
    assert kept.index.tolist() == [0, 1, 3, 4]
    # the input is not modified
    assert len(test) == 6


def test_split_windows_and_delay_on_simulated_data(split: tuple, table: pd.DataFrame) -> None:
    history, train, test, production, info = split
    start, end = pd.Timestamp(info["train_start"]), pd.Timestamp(info["train_end"])
    test_start, test_end = pd.Timestamp(info["test_start"]), pd.Timestamp(info["test_end"])
    assert test_start - end == pd.Timedelta(days=SMALL_SPLIT["delay_days"])
    assert train["timestamp"].between(start, end, inclusive="left").all()
    assert test["timestamp"].between(test_start, test_end, inclusive="left").all()
    assert (history["timestamp"] < end).all()
    assert (production["timestamp"] >= test_end).all()
    # the delay period is in none of the sets the model learns or is tested on
    for part in (history, train, test):
        assert not part["timestamp"].between(end, test_start, inclusive="left").any()
    assert info["train_rows"] == len(train) and info["test_rows"] == len(test)
    assert info["train_frauds"] > 0 and info["test_frauds"] > 0
    assert len(production) == (table["timestamp"] >= test_end).sum()
    assert set(train["transaction_id"]).isdisjoint(test["transaction_id"])


def test_no_known_compromised_card_in_the_test_set(split: tuple, table: pd.DataFrame) -> None:
    _, _, test, _, info = split
    labelled = table[
        (table["timestamp"] >= pd.Timestamp(info["train_start"]))
        & (table["timestamp"] < pd.Timestamp(info["test_end"]))
    ]
    first_fraud = labelled[labelled["is_fraud"] == 1].groupby("customer_id")["timestamp"].min()
    known_from = test["customer_id"].map(first_fraud) + pd.Timedelta(days=SMALL_SPLIT["delay_days"])
    assert not (known_from <= test["timestamp"].dt.normalize()).any()
    # and some were dropped: the rule is exercised
    window = table["timestamp"].between(
        pd.Timestamp(info["test_start"]), pd.Timestamp(info["test_end"]), inclusive="left"
    )
    assert window.sum() > len(test)


def test_split_needs_labels(table: pd.DataFrame, feature_params: FeatureParams) -> None:
    with pytest.raises(ValueError, match="is_fraud"):
        split_data(table.drop(columns="is_fraud"), SMALL, feature_params)


def test_no_fraud_at_all_drops_nothing() -> None:
    test = pd.DataFrame({"customer_id": [1], "timestamp": pd.to_datetime(["2018-04-10 00:00"])})
    history = test.assign(is_fraud=0)
    kept = drop_known_compromised(test, history, "customer_id", "timestamp", "is_fraud", 7)
    assert len(kept) == 1


def test_split_without_fraud_in_a_window_is_an_error(
    table: pd.DataFrame, feature_params: FeatureParams
) -> None:
    with pytest.raises(ValueError, match="no fraud"):
        split_data(table.assign(is_fraud=0), SMALL, feature_params)


def test_prequential_folds_by_hand() -> None:
    ts = days("2018-04-01", 60)
    params = SplitParams(train_days=7, delay_days=2, test_days=3)
    folds = prequential_folds(ts, pd.Timestamp("2018-05-01"), params, n_folds=2)
    assert len(folds) == 2
    spans = [
        (ts[f].min(), ts[f].max() + pd.Timedelta(hours=1), ts[v].min(), ts[v].max() + pd.Timedelta(hours=1))
        for f, v in folds
    ]
    ts_ = pd.Timestamp
    # fold 0 validates on the last test_days of the training window, fold 1 on the 3 days before
    # training window 05-01 .. 05-08; fold k fits on train_days ending delay_days before its
    # validation days
    assert spans[0] == (ts_("2018-04-26"), ts_("2018-05-03"), ts_("2018-05-05"), ts_("2018-05-08"))
    assert spans[1] == (ts_("2018-04-23"), ts_("2018-04-30"), ts_("2018-05-02"), ts_("2018-05-05"))


def test_prequential_folds_stop_at_the_start_of_the_history() -> None:
    ts = days("2018-04-01", 20)
    params = SplitParams(train_days=7, delay_days=2, test_days=3)
    folds = prequential_folds(ts, pd.Timestamp("2018-04-08"), params, n_folds=5)
    assert 1 <= len(folds) < 5
    with pytest.raises(ValueError, match="no prequential"):
        prequential_folds(ts, pd.Timestamp("2018-04-01"), SplitParams(train_days=30), n_folds=2)


def test_folds_never_touch_the_test_window(split: tuple) -> None:
    history, _, _, _, info = split
    params = SplitParams(**SMALL_SPLIT)
    folds = prequential_folds(history["timestamp"], pd.Timestamp(info["train_start"]), params, 3)
    assert folds
    train_end = pd.Timestamp(info["train_end"])
    for fit, val in folds:
        fit_ts, val_ts = history["timestamp"].iloc[fit], history["timestamp"].iloc[val]
        assert fit_ts.max() < train_end and val_ts.max() < train_end
        assert val_ts.max() < pd.Timestamp(info["test_start"])
        # each fold keeps the delay between its fit and validation parts
        assert val_ts.min() - fit_ts.max() >= pd.Timedelta(days=params.delay_days) - pd.Timedelta(hours=1)
        assert np.intersect1d(fit, val).size == 0
