"""Project datasets: raw transactions (Parquet, CSV fallback) and the registered champion."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from kedro.io import DatasetError
from support.registry import mlflow_uri

from fraud_kedro.io.files import RegisteredModelDataset, TransactionsFileDataset


@pytest.fixture
def transactions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "transaction_id": [1, 2, 3],
            "timestamp": pd.to_datetime(["2018-04-01 10:00", "2018-04-01 11:00", "2018-04-02 09:30"]),
            "customer_id": [5, 6, 5],
            "terminal_id": [7, 7, 8],
            "amount": [10.5, 0.0, 99.99],
            "is_fraud": [0, 1, 0],
        }
    )


def test_save_writes_parquet_and_load_reads_it(tmp_path: Path, transactions: pd.DataFrame) -> None:
    ds = TransactionsFileDataset(filepath=str(tmp_path / "raw" / "transactions.parquet"))
    assert not ds.exists()
    ds.save(transactions)
    assert (tmp_path / "raw" / "transactions.parquet").is_file()
    assert not list((tmp_path / "raw").glob("*.tmp"))
    assert ds.exists()
    pd.testing.assert_frame_equal(ds.load(), transactions)


def test_csv_beside_the_parquet_path_is_the_fallback(tmp_path: Path, transactions: pd.DataFrame) -> None:
    transactions.to_csv(tmp_path / "transactions.csv", index=False)
    ds = TransactionsFileDataset(filepath=str(tmp_path / "transactions.parquet"))
    assert ds.exists()
    loaded = ds.load()
    assert list(loaded.columns) == list(transactions.columns)
    assert list(loaded["transaction_id"]) == [1, 2, 3]
    assert loaded["amount"].tolist() == [10.5, 0.0, 99.99]


def test_csv_load_args(tmp_path: Path, transactions: pd.DataFrame) -> None:
    transactions.to_csv(tmp_path / "transactions.csv", index=False, sep=";")
    ds = TransactionsFileDataset(
        filepath=str(tmp_path / "transactions.parquet"), load_args={"sep": ";", "parse_dates": ["timestamp"]}
    )
    pd.testing.assert_frame_equal(ds.load(), transactions, check_dtype=False)
    assert pd.api.types.is_datetime64_any_dtype(ds.load()["timestamp"])


def test_parquet_wins_over_csv(tmp_path: Path, transactions: pd.DataFrame) -> None:
    transactions.to_parquet(tmp_path / "transactions.parquet", index=False)
    transactions.head(1).to_csv(tmp_path / "transactions.csv", index=False)
    ds = TransactionsFileDataset(filepath=str(tmp_path / "transactions.csv"))  # any suffix
    assert len(ds.load()) == 3


def test_no_file_is_a_clear_error(tmp_path: Path) -> None:
    ds = TransactionsFileDataset(filepath=str(tmp_path / "transactions.parquet"))
    with pytest.raises(DatasetError, match="no raw transactions"):
        ds.load()


def test_describe_names_both_files(tmp_path: Path) -> None:
    text = str(TransactionsFileDataset(filepath=str(tmp_path / "t.parquet")))
    assert "t.parquet" in text and "t.csv" in text


@pytest.fixture
def empty_mlflow_store(tmp_path: Path) -> Iterator[str]:
    """The global MLflow tracking and registry URIs pointed at an empty store, then restored."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with mlflow_uri(uri):
        yield uri


@pytest.mark.slow  # creating an MLflow SQLite store takes seconds
def test_missing_registered_model_loads_as_none(empty_mlflow_store: str) -> None:
    from mlflow import MlflowClient

    ds = RegisteredModelDataset(model_uri="models:/fraud_detector@champion")
    assert ds.load() is None
    # a registered model without the alias is no champion either
    MlflowClient().create_registered_model("fraud_detector")
    assert ds.load() is None


def test_registered_model_dataset_is_read_only() -> None:
    ds = RegisteredModelDataset(model_uri="models:/fraud_detector@champion")
    with pytest.raises(DatasetError, match="read-only"):
        ds.save(object())
    assert "models:/fraud_detector@champion" in str(ds)


@pytest.mark.parametrize("kind", ["parquet", "pickle", "json"])
def test_catalog_datasets_survive_pickling(tmp_path: Path, kind: str) -> None:
    """The exported MLflow model pickles the inference pipeline's catalog datasets."""
    import pickle

    from fraud_kedro.io.files import AtomicJSONDataset, AtomicParquetDataset, AtomicPickleDataset

    cls = {"parquet": AtomicParquetDataset, "pickle": AtomicPickleDataset, "json": AtomicJSONDataset}[kind]
    data = pd.DataFrame({"a": [1, 2]}) if kind != "json" else {"threshold": 0.5}
    ds = cls(filepath=str(tmp_path / f"x.{kind}"))
    ds.save(data)
    clone = pickle.loads(pickle.dumps(ds))  # noqa: S301 - our own object
    loaded = clone.load()
    if kind == "json":
        assert loaded == data
    else:
        pd.testing.assert_frame_equal(loaded, data)
    clone.save(data)
    assert not list(tmp_path.glob("*.partial"))
