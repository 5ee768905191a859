"""The logs as DataFrames, for monitoring and retraining (any backend)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from fraud_kedro.store.interface import StateStore
from fraud_kedro.store.types import RawLog, Role

_KEYS = ["transaction_id", "timestamp", "customer_id", "terminal_id"]
_TAIL = ["fraud_probability", "is_fraud_predicted", "model_version", "scored_at"]


def prediction_frame(raw: RawLog, reasons: bool = False) -> pd.DataFrame:
    """Decode a stored prediction log: one column per feature of any model version seen.

    Args:
        raw: The log as stored.
        reasons: Add the column ``reasons`` (each score's reasons as JSON text, or None).

    Returns:
        Columns ``transaction_id, timestamp, customer_id, terminal_id, <features...>,
        fraud_probability, is_fraud_predicted, model_version, scored_at`` (then ``reasons``), in
        log order.
    """
    tail = [*_TAIL, "reasons"] if reasons else _TAIL
    feature_order: list[str] = []
    dtypes: dict[str, str] = {}
    for feats, kinds in raw.versions.values():
        for name, kind in zip(feats, kinds, strict=True):
            if name not in dtypes:
                feature_order.append(name)
                dtypes[name] = kind
    if not raw.rows:
        columns = _KEYS + feature_order + tail
        return pd.DataFrame({col: pd.Series(dtype=object) for col in columns})
    frame = pd.DataFrame.from_records(raw.rows, columns=[*_KEYS, "features", *_TAIL, "model_name", "reasons"])
    values = {name: np.full(len(frame), np.nan) for name in feature_order}
    for (name, version), group in frame.groupby(["model_name", "model_version"], sort=False):
        feats = raw.versions.get((name, version), ([], []))[0]
        if not feats:
            continue
        matrix = np.frombuffer(b"".join(group["features"]), dtype="<f8").reshape(-1, len(feats))
        positions = group.index.to_numpy()
        for j, feat in enumerate(feats):
            values[feat][positions] = matrix[:, j]
    out = frame[_KEYS].copy()
    out["timestamp"] = pd.to_datetime(out["timestamp"])
    for col in ("customer_id", "terminal_id"):
        if all(isinstance(v, int) for v in out[col]):
            out[col] = out[col].astype(np.int64)
    features = pd.DataFrame(values, index=frame.index)
    for name, kind in dtypes.items():
        if kind.startswith("int") and not features[name].isna().any():
            features[name] = features[name].astype(kind)
    result = pd.concat([out, features, frame[tail]], axis=1)
    result["is_fraud_predicted"] = result["is_fraud_predicted"].astype(bool)
    result["scored_at"] = pd.to_datetime(result["scored_at"])
    result["model_version"] = result["model_version"].astype(str)
    return result


def label_frame(rows: list[tuple]) -> pd.DataFrame:
    """The label log as a DataFrame: ``transaction_id, is_fraud, received_at``."""
    frame = pd.DataFrame.from_records(rows, columns=["transaction_id", "is_fraud", "received_at"])
    frame["transaction_id"] = frame["transaction_id"].astype(np.int64)
    frame["is_fraud"] = frame["is_fraud"].astype(np.int64)
    frame["received_at"] = pd.to_datetime(frame["received_at"])
    return frame


def _reader(db: str | os.PathLike[str] | StateStore) -> StateStore:
    from fraud_kedro.store.connect import open_existing_store

    return db if isinstance(db, StateStore) else open_existing_store(db)


def read_prediction_log(
    db: str | os.PathLike[str] | StateStore,
    shadow: bool = False,
    role: Role | None = None,
    reasons: bool = False,
) -> pd.DataFrame:
    """The prediction log of one role as a DataFrame (read by monitoring and retraining).

    Args:
        db: The store, or its URL / SQLite path (which must exist).
        shadow: Read the shadow (challenger) predictions instead of the champion's.
        role: The role to read (overrides ``shadow``).
        reasons: Add each score's reasons (JSON text or None) as the column ``reasons``.

    Returns:
        See :func:`prediction_frame`.

    Raises:
        FileNotFoundError: A SQLite path that does not exist.
    """
    store = _reader(db)
    try:
        raw = store.raw_prediction_log(role or ("shadow" if shadow else "champion"))
        return prediction_frame(raw, reasons=reasons)
    finally:
        if store is not db:
            store.close()


def read_label_log(db: str | os.PathLike[str] | StateStore) -> pd.DataFrame:
    """The label log as a DataFrame: ``transaction_id, is_fraud, received_at``, arrival order.

    Args:
        db: The store, or its URL / SQLite path (which must exist).

    Raises:
        FileNotFoundError: A SQLite path that does not exist.
    """
    store = _reader(db)
    try:
        return label_frame(store.label_rows())
    finally:
        if store is not db:
            store.close()
