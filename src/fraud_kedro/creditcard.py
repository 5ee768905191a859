"""The public ULB credit-card file layout (``Time, V1..V28, Amount, Class``) as a raw schema.

``kedro run --env creditcard --pipeline creditcard`` runs the main job on ``data/01_raw/creditcard.csv``; the
``features`` parameters select the schema (``schema: creditcard``) and this module

* checks the ULB columns (a missing one stops the run with an error that names it),
* maps the file onto the contract schema: ``transaction_id`` = row number in the file (0-based),
  ``timestamp`` = ``start_date`` + ``Time`` seconds, ``customer_id`` = the row number (the file
  has no card id: every transaction is its own "card"), ``terminal_id`` = 0 (no terminal either),
  ``amount`` = ``Amount``, ``is_fraud`` = ``Class``; ``V1..V28`` are kept;
* builds the feature table: ``V1..V28``, ``amount`` and ``hour``. The V columns are anonymised PCA
  components, so there are no customer or terminal history windows.

The default schema (``contract``, no ``schema`` key) leaves everything to
:mod:`fraud_kedro.features` and :mod:`fraud_kedro.ingest`.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from fraud_kedro.features import CONTRACT_SCHEMA, CREDITCARD_SCHEMA, ColumnNames
from fraud_kedro.ingest import DataValidationError, validate_transactions

logger = logging.getLogger(__name__)

CONTRACT, CREDITCARD = CONTRACT_SCHEMA, CREDITCARD_SCHEMA

V_COLUMNS = tuple(f"V{i}" for i in range(1, 29))
ULB_TIME, ULB_AMOUNT, ULB_LABEL = "Time", "Amount", "Class"
ULB_REQUIRED = (ULB_TIME, *V_COLUMNS, ULB_AMOUNT)  # Class is optional, like is_fraud


def feature_names(columns: ColumnNames) -> list[str]:
    """The ordered model features of the creditcard schema."""
    return [*V_COLUMNS, columns.amount, "hour"]


def check_ulb_columns(raw: pd.DataFrame) -> None:
    """Schema-level checks of a ULB-layout table.

    Raises:
        DataValidationError: no rows, a missing ULB column (named), or ``Time``/``Amount`` holding no
            number at all.
    """
    if raw is None or len(raw) == 0:
        raise DataValidationError("creditcard file: the file has no rows")
    missing = [col for col in ULB_REQUIRED if col not in raw.columns]
    if missing:
        raise DataValidationError(
            f"creditcard file: missing column(s) {missing} of the ULB layout "
            f"(Time, V1..V28, Amount, optional Class); found {list(raw.columns)}"
        )
    for col in (ULB_TIME, ULB_AMOUNT):
        if pd.to_numeric(raw[col], errors="coerce").isna().all():
            raise DataValidationError(f"creditcard file: column '{col}' holds no number ({len(raw)} rows)")


def to_contract(raw: pd.DataFrame, start_date: str, columns: ColumnNames | None = None) -> pd.DataFrame:
    """The ULB table in the contract schema, with ``V1..V28`` as extra numeric columns.

    Values are coerced, not dropped: an unparseable ``Time`` gives a missing timestamp, which the
    contract validation then quarantines.
    """
    c = columns or ColumnNames()
    check_ulb_columns(raw)
    row = np.arange(len(raw), dtype=np.int64)
    seconds = pd.to_numeric(raw[ULB_TIME], errors="coerce").to_numpy(dtype=np.float64)
    out = pd.DataFrame(
        {
            c.transaction_id: row,
            c.timestamp: pd.Timestamp(start_date) + pd.to_timedelta(seconds, unit="s"),
            c.customer_id: row,
            c.terminal_id: np.zeros(len(raw), dtype=np.int64),
            c.amount: raw[ULB_AMOUNT].to_numpy(),
        }
    )
    for col in V_COLUMNS:
        out[col] = pd.to_numeric(raw[col], errors="coerce").to_numpy(dtype=np.float64)
    if ULB_LABEL in raw.columns:
        out[c.label] = raw[ULB_LABEL].to_numpy()
    return out


def validate_creditcard(
    raw: pd.DataFrame, start_date: str, columns: ColumnNames | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate a ULB-layout table: ``(valid, quarantine)`` like :func:`validate_transactions`.

    Rows with a missing or infinite V value are quarantined too. Quarantined rows are shown in the
    contract schema; their ``transaction_id`` is the row number in the file.

    Raises:
        DataValidationError: on a schema-level failure (e.g. a missing V column).
    """
    c = columns or ColumnNames()
    table = to_contract(raw, start_date, c)
    bad_v = ~np.isfinite(table[list(V_COLUMNS)].to_numpy())
    bad = bad_v.any(axis=1)
    if bad.all():
        raise DataValidationError(f"creditcard file: all {len(raw)} rows have a missing V value")
    valid, quarantine = validate_transactions(table.loc[~bad].reset_index(drop=True), c)
    if bad.any():
        names = np.array(V_COLUMNS)
        reasons = ["; ".join(f"{v}: not finite" for v in names[mask]) for mask in bad_v[bad]]
        logger.warning("quarantine: %d rows have a missing or infinite V value", int(bad.sum()))
        v_quarantine = table.loc[bad].astype(str).assign(quarantine_reason=reasons)
        quarantine = pd.concat([v_quarantine, quarantine], ignore_index=True)
    return valid, quarantine


def build_features(transactions: pd.DataFrame, columns: ColumnNames | None = None) -> pd.DataFrame:
    """Keys, then the creditcard features (:func:`feature_names`), one row per transaction."""
    c = columns or ColumnNames()
    keys = [c.transaction_id, c.timestamp, c.customer_id, c.terminal_id]
    out = transactions[keys + list(V_COLUMNS)].reset_index(drop=True)
    out[c.amount] = transactions[c.amount].to_numpy(dtype=np.float64)
    out["hour"] = pd.to_datetime(transactions[c.timestamp]).dt.hour.to_numpy().astype(np.int64)
    return out
