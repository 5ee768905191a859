"""Malformed raw data *files* (``tests/unit/test_validation.py`` covers the same cases on DataFrames):
an empty or truncated file stops the run with an error naming the file; a CSV with timestamps out of
order and huge values is read, sorted and kept exactly, or quarantined when a value overflows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.io import DatasetError

from fraud_kedro.ingest import DataValidationError, validate_transactions
from fraud_kedro.io.files import TransactionsFileDataset

HEADER = "transaction_id,timestamp,customer_id,terminal_id,amount,is_fraud\n"


def _dataset(folder: Path) -> TransactionsFileDataset:
    return TransactionsFileDataset(filepath=str(folder / "transactions.parquet"))


@pytest.mark.parametrize("name", ["transactions.csv", "transactions.parquet"])
def test_an_empty_file_is_an_error_naming_it(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(DatasetError, match="transactions"):
        _dataset(tmp_path).load()


def test_a_header_only_csv_is_a_schema_error(tmp_path: Path) -> None:
    (tmp_path / "transactions.csv").write_text(HEADER)
    frame = _dataset(tmp_path).load()
    assert frame.empty
    with pytest.raises(DataValidationError, match="no rows"):
        validate_transactions(frame)


def test_a_truncated_parquet_file_is_an_error_not_partial_data(tmp_path: Path) -> None:
    full = pd.DataFrame(
        {
            "transaction_id": np.arange(1000),
            "timestamp": pd.Timestamp("2018-04-01"),
            "customer_id": 1,
            "terminal_id": 2,
            "amount": 1.0,
            "is_fraud": 0,
        }
    )
    path = tmp_path / "transactions.parquet"
    full.to_parquet(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a copy interrupted half-way
    with pytest.raises(DatasetError, match="transactions"):
        _dataset(tmp_path).load()


def test_a_csv_out_of_order_with_huge_values_is_sorted_and_kept_exactly(tmp_path: Path) -> None:
    big = np.iinfo(np.int64).max
    (tmp_path / "transactions.csv").write_text(
        HEADER
        + f"3,2018-04-03 10:00:00,{big - 1},7,1e300,0\n"
        + "1,2018-04-01 10:00:00,5,7,10.5,0\n"
        + f"{big},2018-04-02 10:00:00,5,{big},0,1\n"
        + "4,2018-03-31 23:59:59,6,8,1e400,0\n"  # overflows to inf: quarantined, not lost
        + "2,2018-04-01 09:00:00,6,8,99.99,1\n"
    )
    valid, quarantine = validate_transactions(_dataset(tmp_path).load())
    assert valid["transaction_id"].tolist() == [2, 1, big, 3]
    assert valid["timestamp"].is_monotonic_increasing
    assert valid.loc[valid["transaction_id"] == 3, "amount"].item() == 1e300
    assert valid.loc[valid["transaction_id"] == 3, "customer_id"].item() == big - 1
    assert valid.loc[valid["transaction_id"] == big, "terminal_id"].item() == big
    assert [str(x) for x in quarantine["transaction_id"]] == ["4"]  # kept as read
    assert "finite" in quarantine["quarantine_reason"].item()
