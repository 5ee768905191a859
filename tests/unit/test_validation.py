"""Validation of raw transactions: schema errors stop the run, bad rows go to quarantine."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraud_kedro.features import ColumnNames, FeatureParams
from fraud_kedro.ingest import DataValidationError, validate_transactions
from fraud_kedro.pipelines.data_processing.nodes import validate_raw_transactions

REQUIRED = ["transaction_id", "timestamp", "customer_id", "terminal_id", "amount"]


def raw(n: int = 6) -> pd.DataFrame:
    """A valid raw table in the contract schema, in time order."""
    return pd.DataFrame(
        {
            "transaction_id": np.arange(1, n + 1, dtype=np.int64),
            "timestamp": pd.date_range("2018-04-01 08:00", periods=n, freq="h"),
            "customer_id": np.arange(n, dtype=np.int64) % 3,
            "terminal_id": 10 + np.arange(n, dtype=np.int64) % 2,
            "amount": np.linspace(1.0, 50.0, n),
            "is_fraud": np.array([0, 1] * (n // 2) + [0] * (n % 2), dtype=np.int64),
        }
    )


def with_value(df: pd.DataFrame, row: int, column: str, value: object) -> pd.DataFrame:
    out = df.copy()
    out[column] = out[column].astype(object)
    out.loc[row, column] = value
    return out


def assert_nothing_lost(raw_df: pd.DataFrame, valid: pd.DataFrame, quarantine: pd.DataFrame) -> None:
    assert len(valid) + len(quarantine) == len(raw_df)
    kept = [str(i) for i in valid["transaction_id"]] + list(quarantine["transaction_id"].astype(str))
    assert sorted(kept) == sorted(str(i) for i in raw_df["transaction_id"])


def test_valid_table_passes_unchanged() -> None:
    df = raw()
    valid, quarantine = validate_transactions(df)
    assert quarantine.empty
    assert "quarantine_reason" in quarantine.columns
    pd.testing.assert_frame_equal(valid, df.astype({"timestamp": "datetime64[ns]"}))
    assert str(valid["timestamp"].dtype) == "datetime64[ns]"
    assert valid["amount"].dtype == np.float64
    assert valid["is_fraud"].dtype == np.int64


def test_node_reads_column_names_from_parameters(feature_params: FeatureParams) -> None:
    df = raw().rename(columns={"amount": "amt"})
    params = replace(feature_params, columns=replace(feature_params.columns, amount="amt"))
    valid, quarantine = validate_raw_transactions(df, params)
    assert len(valid) == len(df) and quarantine.empty


@pytest.mark.parametrize("column", REQUIRED)
def test_missing_column_is_a_schema_error_naming_it(column: str) -> None:
    with pytest.raises(DataValidationError, match=column):
        validate_transactions(raw().drop(columns=column))


def test_misnamed_column_is_a_schema_error_naming_the_expected_column() -> None:
    with pytest.raises(DataValidationError, match="'amount'"):
        validate_transactions(raw().rename(columns={"amount": "Amount"}))


@pytest.mark.parametrize(
    ("column", "values"),
    [("amount", ["ten"] * 6), ("timestamp", ["not a date"] * 6)],
)
def test_column_of_the_wrong_kind_is_a_schema_error_naming_it(column: str, values: list) -> None:
    df = raw()
    df[column] = values
    with pytest.raises(DataValidationError, match=f"'{column}'"):
        validate_transactions(df)


@pytest.mark.parametrize("frame", [raw().iloc[:0], pd.DataFrame()], ids=["no-rows", "no-columns"])
def test_empty_file_is_a_schema_error(frame: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match="no rows"):
        validate_transactions(frame)


def test_none_is_a_schema_error() -> None:
    with pytest.raises(DataValidationError):
        validate_transactions(None)  # type: ignore[arg-type]


def test_all_rows_invalid_is_an_error() -> None:
    df = raw()
    df["amount"] = -1.0
    with pytest.raises(DataValidationError, match="all 6 rows"):
        validate_transactions(df)


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("amount", np.nan, "amount"),
        ("amount", np.inf, "amount: amount is not finite"),
        ("amount", -np.inf, "amount"),
        ("amount", -0.01, "amount: amount is negative"),
        ("amount", "12,5", "amount"),
        ("timestamp", "2018-13-45 25:61", "timestamp"),
        ("timestamp", None, "timestamp"),
        ("customer_id", None, "customer_id"),
        ("customer_id", "  ", "customer_id: missing id"),
        ("terminal_id", None, "terminal_id"),
        ("transaction_id", None, "transaction_id"),
        ("is_fraud", 2, "is_fraud: label is not 0/1"),
        ("is_fraud", np.nan, "is_fraud"),
        ("is_fraud", "yes", "is_fraud"),
    ],
)
def test_bad_row_is_quarantined_with_its_reason(column: str, value: object, reason: str) -> None:
    df = with_value(raw(), 2, column, value)
    valid, quarantine = validate_transactions(df)
    assert len(quarantine) == 1
    assert reason in quarantine.loc[0, "quarantine_reason"]
    if column != "transaction_id":
        assert quarantine.loc[0, "transaction_id"] == str(df.loc[2, "transaction_id"])
    assert len(valid) == len(df) - 1
    assert np.isfinite(valid["amount"]).all() and (valid["amount"] >= 0).all()


def test_duplicated_id_keeps_the_first_and_quarantines_the_rest() -> None:
    df = raw()
    df.loc[4, "transaction_id"] = df.loc[1, "transaction_id"]
    df.loc[5, "transaction_id"] = df.loc[1, "transaction_id"]
    valid, quarantine = validate_transactions(df)
    assert valid["transaction_id"].is_unique
    assert (valid["transaction_id"] == 2).sum() == 1
    assert valid.loc[valid["transaction_id"] == 2, "amount"].item() == df.loc[1, "amount"]
    assert len(quarantine) == 2
    assert (quarantine["quarantine_reason"] == "transaction_id: duplicated id").all()


def test_a_bad_row_does_not_shadow_a_good_row_with_the_same_id() -> None:
    df = raw()
    df.loc[4, "transaction_id"] = df.loc[1, "transaction_id"]
    df.loc[1, "amount"] = -1.0
    valid, quarantine = validate_transactions(df)
    assert valid.loc[valid["transaction_id"] == 2, "amount"].item() == df.loc[4, "amount"]
    assert list(quarantine["quarantine_reason"]) == ["amount: amount is negative"]


def test_row_with_several_problems_lists_every_reason() -> None:
    df = with_value(with_value(raw(), 3, "amount", -5.0), 3, "customer_id", None)
    _, quarantine = validate_transactions(df)
    reason = quarantine.loc[0, "quarantine_reason"]
    assert "amount" in reason and "customer_id" in reason and ";" in reason


def test_quarantine_counts_are_logged_per_reason(caplog: pytest.LogCaptureFixture) -> None:
    df = raw(10)
    df = df.astype({"amount": object, "timestamp": object})
    df.loc[[1, 2, 7], "amount"] = -1.0
    df.loc[5, "timestamp"] = "garbage"
    with caplog.at_level(logging.INFO, logger="fraud_kedro.ingest"):
        valid, quarantine = validate_transactions(df)
    assert len(quarantine) == 4 and len(valid) == 6
    messages = [r.getMessage() for r in caplog.records]
    assert "quarantine: 3 rows fail 'amount: amount is negative'" in messages
    assert any(m.startswith("quarantine: 1 rows fail 'timestamp") for m in messages)
    assert "validated 10 raw transactions: 6 valid, 4 quarantined" in messages


def test_quarantine_keeps_the_rows_as_read() -> None:
    df = with_value(raw(), 0, "amount", "twelve")
    _, quarantine = validate_transactions(df)
    assert quarantine.loc[0, "amount"] == "twelve"
    assert list(quarantine.columns) == [*df.columns, "quarantine_reason"]


def test_huge_values_are_kept_exactly() -> None:
    df = raw()
    df.loc[0, "amount"] = 1e300
    df.loc[1, "transaction_id"] = np.iinfo(np.int64).max
    df.loc[2, "customer_id"] = np.iinfo(np.int64).max - 1
    valid, quarantine = validate_transactions(df)
    assert quarantine.empty
    assert valid["amount"].max() == 1e300
    assert np.iinfo(np.int64).max in set(valid["transaction_id"])
    assert np.iinfo(np.int64).max - 1 in set(valid["customer_id"])


def test_overflowing_amount_is_quarantined() -> None:
    df = with_value(raw(), 0, "amount", "1e400")
    valid, quarantine = validate_transactions(df)
    assert len(quarantine) == 1 and "not finite" in quarantine.loc[0, "quarantine_reason"]
    assert len(valid) == len(df) - 1


def test_timestamps_out_of_order_are_sorted_not_lost() -> None:
    df = raw(8).sample(frac=1.0, random_state=3).reset_index(drop=True)
    valid, quarantine = validate_transactions(df)
    assert quarantine.empty and len(valid) == 8
    assert valid["timestamp"].is_monotonic_increasing
    assert sorted(valid["transaction_id"]) == sorted(df["transaction_id"])
    assert valid.index.equals(pd.RangeIndex(8))
    # the input is not modified
    assert not df["timestamp"].is_monotonic_increasing


def test_equal_timestamps_are_ordered_by_id() -> None:
    df = raw(4)
    df["timestamp"] = pd.Timestamp("2018-04-01 12:00")
    valid, _ = validate_transactions(df.iloc[::-1].reset_index(drop=True))
    assert list(valid["transaction_id"]) == [1, 2, 3, 4]


def test_timezone_aware_timestamps_become_naive_utc() -> None:
    df = raw(3)
    df["timestamp"] = ["2018-04-01T02:00:00+02:00", "2018-04-01T01:30:00Z", "2018-04-01 03:00"]
    valid, quarantine = validate_transactions(df)
    assert quarantine.empty
    assert valid["timestamp"].dt.tz is None
    assert list(valid["timestamp"]) == list(
        pd.to_datetime(["2018-04-01 00:00", "2018-04-01 01:30", "2018-04-01 03:00"])
    )


def test_unlabelled_data_is_accepted() -> None:
    df = raw().drop(columns="is_fraud")
    valid, quarantine = validate_transactions(df)
    assert quarantine.empty and "is_fraud" not in valid.columns


def test_string_ids_are_accepted() -> None:
    df = raw()
    for col in ("transaction_id", "customer_id", "terminal_id"):
        df[col] = "x" + df[col].astype(str)
    valid, quarantine = validate_transactions(df)
    assert quarantine.empty and len(valid) == len(df)


def test_input_is_not_modified() -> None:
    df = with_value(raw(), 1, "amount", "-3")
    before = df.copy()
    validate_transactions(df)
    pd.testing.assert_frame_equal(df, before)


def test_nothing_disappears_on_corrupted_simulated_data(small_raw: pd.DataFrame) -> None:
    df = small_raw.head(5_000).copy()
    rng = np.random.default_rng(7)
    rows = rng.choice(len(df), size=200, replace=False)
    df["amount"] = df["amount"].astype(object)
    df["timestamp"] = df["timestamp"].astype(object)
    df.loc[rows[:50], "amount"] = -1.0
    df.loc[rows[50:100], "amount"] = np.nan
    df.loc[rows[100:150], "timestamp"] = "??"
    df.loc[rows[150:], "transaction_id"] = df["transaction_id"].iloc[0]
    valid, quarantine = validate_transactions(df)
    assert len(quarantine) == 200
    assert_nothing_lost(df, valid, quarantine)
    assert quarantine["quarantine_reason"].str.len().gt(0).all()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    amounts=st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.just("abc"),
            st.none(),
        ),
        min_size=1,
        max_size=12,
    ),
    seed=st.integers(0, 2**16),
)
def test_property_valid_plus_quarantined_is_the_input(amounts: list, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = len(amounts)
    df = pd.DataFrame(
        {
            "transaction_id": rng.integers(0, max(2, n), n),  # duplicates on purpose
            "timestamp": pd.Timestamp("2018-04-01") + pd.to_timedelta(rng.integers(0, 10**6, n), "s"),
            "customer_id": rng.integers(0, 3, n),
            "terminal_id": rng.integers(0, 3, n),
            "amount": pd.Series(amounts, dtype=object),
            "is_fraud": rng.integers(0, 2, n),
        }
    )
    try:
        valid, quarantine = validate_transactions(df)
    except DataValidationError:
        # only when no row can be used at all
        amount = pd.to_numeric(df["amount"], errors="coerce")
        assert not ((amount >= 0) & np.isfinite(amount)).any()
        return
    assert_nothing_lost(df, valid, quarantine)
    assert valid["transaction_id"].is_unique
    assert (valid["amount"] >= 0).all() and np.isfinite(valid["amount"]).all()
    assert valid["timestamp"].is_monotonic_increasing
    assert set(valid.columns) == set(ColumnNames().__dict__.values())
