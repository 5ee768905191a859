"""Validation of raw transactions at ingest (pandera), with a quarantine for bad rows.

Two levels:

* schema-level problems (a required column missing, a column of the wrong kind, no rows) stop
  the run with a :class:`DataValidationError` that names the column;
* row-level problems (unparseable timestamp, NaN/inf or negative amount, missing ids, a label that
  is not 0/1, a duplicated transaction id) move the row to the quarantine table with its reason.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pandera.pandas as pa

from fraud_kedro.features import ColumnNames

logger = logging.getLogger(__name__)


class DataValidationError(ValueError):
    """The raw data cannot be used at all (schema-level failure)."""


def _id_is_valid(series: pd.Series) -> pd.Series:
    return series.notna() & (series.astype(str).str.strip() != "")


def row_schema(columns: ColumnNames, labelled: bool) -> pa.DataFrameSchema:
    """Row-level checks, run lazily so that every failing row is found in one pass."""
    checks = {
        columns.transaction_id: pa.Column(
            nullable=False, checks=pa.Check(_id_is_valid, error="missing id")
        ),
        columns.timestamp: pa.Column("datetime64[ns]", nullable=False),
        columns.customer_id: pa.Column(
            nullable=False, checks=pa.Check(_id_is_valid, error="missing id")
        ),
        columns.terminal_id: pa.Column(
            nullable=False, checks=pa.Check(_id_is_valid, error="missing id")
        ),
        columns.amount: pa.Column(
            float,
            nullable=False,
            checks=[
                pa.Check(np.isfinite, error="amount is not finite"),
                pa.Check.ge(0, error="amount is negative"),
            ],
        ),
    }
    if labelled:
        checks[columns.label] = pa.Column(
            nullable=False, checks=pa.Check.isin([0, 1], error="label is not 0/1")
        )
    return pa.DataFrameSchema(checks, strict=False, coerce=False)


def _check_schema(raw: pd.DataFrame, columns: ColumnNames) -> None:
    if raw is None or len(raw) == 0:
        raise DataValidationError("raw transactions: the file has no rows")
    required = [
        columns.transaction_id,
        columns.timestamp,
        columns.customer_id,
        columns.terminal_id,
        columns.amount,
    ]
    missing = [col for col in required if col not in raw.columns]
    if missing:
        raise DataValidationError(
            f"raw transactions: missing required column(s) {missing}; "
            f"found {list(raw.columns)}"
        )
    amount = pd.to_numeric(raw[columns.amount], errors="coerce")
    bad = int((amount.isna() & raw[columns.amount].notna()).sum())
    if bad == len(raw):
        raise DataValidationError(
            f"raw transactions: column '{columns.amount}' is not numeric ({bad} rows)"
        )
    ts = pd.to_datetime(raw[columns.timestamp], errors="coerce", utc=True, format="mixed")
    if ts.isna().all():
        raise DataValidationError(
            f"raw transactions: column '{columns.timestamp}' holds no parseable timestamp "
            f"({len(raw)} rows)"
        )


def _normalise(raw: pd.DataFrame, columns: ColumnNames) -> pd.DataFrame:
    """Coerce types without losing rows: unparseable values become NaN/NaT for the row checks."""
    df = raw.copy()
    ts = pd.to_datetime(df[columns.timestamp], errors="coerce", utc=True, format="mixed")
    df[columns.timestamp] = ts.dt.tz_localize(None).astype("datetime64[ns]")
    df[columns.amount] = pd.to_numeric(df[columns.amount], errors="coerce").astype(float)
    if columns.label in df.columns:
        df[columns.label] = pd.to_numeric(df[columns.label], errors="coerce")
    return df


def validate_transactions(
    raw: pd.DataFrame, columns: ColumnNames | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split raw transactions into valid rows and quarantined rows with their reasons.

    Args:
        raw: Raw transactions in the contract schema (``is_fraud`` optional).
        columns: Column names of the contract.

    Returns:
        ``(valid, quarantine)``: valid rows sorted by time with clean dtypes, and the rejected rows
        as read plus a ``quarantine_reason`` column.

    Raises:
        DataValidationError: on a schema-level failure (missing column, nothing parseable).
    """
    columns = columns or ColumnNames()
    _check_schema(raw, columns)
    df = _normalise(raw, columns)
    labelled = columns.label in df.columns
    reasons = pd.Series("", index=df.index, dtype=object)
    try:
        row_schema(columns, labelled).validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        cases = cases[cases["index"].notna()]
        for (column, check), group in cases.groupby(["column", "check"], dropna=False):
            label = f"{column}: {check}"
            idx = group["index"].astype(df.index.dtype).unique()
            reasons.loc[idx] = (reasons.loc[idx] + "; " + label).str.lstrip("; ")
            logger.warning("quarantine: %d rows fail '%s'", len(idx), label)
    # the first occurrence that passes the other checks is kept (a bad row cannot shadow a good one)
    clean = reasons == ""
    duplicated = (
        df.loc[clean, columns.transaction_id].duplicated(keep="first").reindex(df.index, fill_value=False)
    )
    if duplicated.any():
        reasons[duplicated] = f"{columns.transaction_id}: duplicated id"
        logger.warning("quarantine: %d rows have a duplicated id", int(duplicated.sum()))
    bad = reasons != ""
    quarantine = raw.loc[bad].astype(str).assign(quarantine_reason=reasons[bad])
    valid = df.loc[~bad]
    if labelled:
        valid = valid.assign(**{columns.label: valid[columns.label].astype(np.int64)})
    valid = valid.sort_values(
        [columns.timestamp, columns.transaction_id], kind="stable"
    ).reset_index(drop=True)
    logger.info(
        "validated %d raw transactions: %d valid, %d quarantined",
        len(raw),
        len(valid),
        int(bad.sum()),
    )
    if valid.empty:
        raise DataValidationError(f"raw transactions: all {len(raw)} rows failed validation")
    return valid, quarantine.reset_index(drop=True)
