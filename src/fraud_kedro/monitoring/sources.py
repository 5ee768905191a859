"""The analysis table: scored transactions with the labels known at the end of the period.

Fraud labels arrive late (chargebacks take weeks), so monitoring must not use labels a bank would
not have yet. A row's label counts as known only once ``label_delay_days`` have passed at
``as_of`` (the end of the analysis period): every row older than that has a complete label, every
younger row has none, even when a fraud was already confirmed (early confirmations are mostly
frauds; using them would bias realised metrics upwards).

Two sources give the same table:

* ``batch``: the batch-scoring output, whose ``is_fraud`` column (simulated data) is masked with
  the delay rule;
* ``service_log``: the scoring service's prediction log joined with its label log
  (``/feedback``); once the delay has passed, a transaction without a reported fraud is
  legitimate (``assume_legit_after_delay``), as a bank assumes when no chargeback came. Here the
  clock is the service's: ``as_of`` defaults to the latest scoring or label arrival, and the delay
  runs from ``scored_at`` (the same as the transaction time for live traffic, and still right
  when historical transactions are replayed through the service).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)


def resolve_as_of(timestamps: pd.Series, as_of: str | None) -> pd.Timestamp:
    """``as_of`` as a timestamp; None means the latest timestamp of the data."""
    if as_of is not None:
        return pd.Timestamp(as_of)
    if len(timestamps) == 0:
        raise ValueError("the analysis data is empty")
    return pd.Timestamp(pd.to_datetime(timestamps).max())


def _naive(ts: pd.Series) -> pd.Series:
    values = pd.to_datetime(ts)
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    return values


def _naive_ts(ts: pd.Timestamp) -> pd.Timestamp:
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def label_batch(
    predictions: pd.DataFrame,
    *,
    timestamp: str,
    label: str,
    label_available: str,
    label_delay_days: float,
    as_of: pd.Timestamp,
) -> pd.DataFrame:
    """A copy of ``predictions`` with labels kept only where the delay has passed.

    Args:
        predictions: Scored transactions; ``label`` may be missing (nothing is labelled).
        timestamp: Transaction time column.
        label: Label column (0/1).
        label_available: Name of the added boolean column.
        label_delay_days: Days after which a transaction's label is known.
        as_of: End of the analysis period.

    Returns:
        The table with ``label`` as float (NaN where unknown) and ``label_available``.
    """
    out = predictions.copy()
    cutoff = _naive_ts(as_of) - pd.Timedelta(days=label_delay_days)
    available = (_naive(out[timestamp]) <= cutoff).to_numpy()
    if label in out.columns:
        values = pd.to_numeric(out[label], errors="coerce").to_numpy(dtype=np.float64)
        available = available & ~np.isnan(values)
        out[label] = np.where(available, values, np.nan)
    else:
        available = np.zeros(len(out), dtype=bool)
        out[label] = np.nan
    out[label_available] = available
    logger.info(
        "Labels known for %d of %d rows (older than %s = as_of %s - %g days)",
        int(available.sum()),
        len(out),
        cutoff,
        as_of,
        label_delay_days,
    )
    return out


def join_service_log(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    transaction_id: str,
    timestamp: str,
    label: str,
    label_available: str,
    scored_at: str,
    received_at: str,
    model_version: str,
    label_delay_days: float,
    as_of: str | None = None,
    version: str | None = None,
    assume_legit_after_delay: bool = True,
    shadow: pd.DataFrame | None = None,
    score: str = "fraud_probability",
    challenger_score: str = "challenger_probability",
) -> pd.DataFrame:
    """The analysis table from the scoring service's prediction and label logs.

    Args:
        predictions: Prediction log (features, score, decision, ``model_version``,
            ``scored_at``; ``timestamp`` when the service logs it, else ``scored_at`` is used).
        labels: Label log (``transaction_id``, ``is_fraud``, ``received_at``).
        transaction_id: Join key.
        timestamp: Transaction time column of the output.
        label: Label column of the label log and of the output.
        label_available: Name of the added boolean column.
        scored_at: Scoring time column of the prediction log.
        received_at: Arrival time column of the label log.
        model_version: Model version column of the prediction log.
        label_delay_days: Days after scoring after which a transaction's label is complete.
        as_of: End of the period (None = the latest ``scored_at`` or ``received_at``).
        version: Model version to monitor (None = the most recently scored one).
        assume_legit_after_delay: Unlabelled transactions older than the delay are legitimate.
        shadow: The shadow (challenger) prediction log, if any: its latest version's ``score``
            becomes ``challenger_score`` on the same transactions.
        score: Score column of the logs.
        challenger_score: Name of the challenger's score column in the output.

    Returns:
        One row per transaction scored by the monitored version (the latest score when a
        transaction was scored twice), with ``label`` (float, NaN where unknown) and
        ``label_available``.
    """
    preds = _latest_version(predictions, model_version, scored_at, version, "champion")
    if timestamp not in preds.columns:
        preds[timestamp] = preds[scored_at]
    preds = preds.drop_duplicates(transaction_id, keep="last")
    if shadow is not None and len(shadow):
        challenger = _latest_version(shadow, model_version, scored_at, None, "challenger")
        challenger = challenger.drop_duplicates(transaction_id, keep="last")
        challenger = challenger[[transaction_id, score]].rename(columns={score: challenger_score})
        preds = preds.drop(columns=[challenger_score], errors="ignore").merge(
            challenger, on=transaction_id, how="left", validate="one_to_one"
        )
    if as_of is not None:
        end = pd.Timestamp(as_of)
    else:  # the latest activity in the logs: the service's "now"
        events = [_naive(preds[scored_at]).max()]
        if len(labels):
            events.append(_naive(labels[received_at]).max())
        end = pd.Timestamp(max(e for e in events if pd.notna(e)))

    lab = labels.copy()
    if len(lab):
        lab = lab[_naive(lab[received_at]) <= _naive_ts(end)]
        lab = lab.sort_values(received_at, kind="stable").drop_duplicates(
            transaction_id, keep="last"
        )
    lab = lab[[transaction_id, label]].rename(columns={label: "__reported"})
    preds = preds.drop(columns=[label], errors="ignore")
    merged = preds.merge(lab, on=transaction_id, how="left", validate="one_to_one")
    merged = merged.sort_values(timestamp, kind="stable")

    cutoff = _naive_ts(end) - pd.Timedelta(days=label_delay_days)
    complete = (_naive(merged[scored_at]) <= cutoff).to_numpy()
    reported = pd.to_numeric(merged["__reported"], errors="coerce").to_numpy(dtype=np.float64)
    if assume_legit_after_delay:
        reported = np.where(np.isnan(reported), 0.0, reported)
    available = complete & ~np.isnan(reported)
    merged[label] = np.where(available, reported, np.nan)
    merged[label_available] = available
    merged = merged.drop(columns="__reported")
    logger.info(
        "Service log: %d transactions, %d labels reported, %d rows with complete labels",
        len(merged),
        len(lab),
        int(available.sum()),
    )
    return merged.reset_index(drop=True)


def _latest_version(
    log: pd.DataFrame, model_version: str, scored_at: str, version: str | None, role: str
) -> pd.DataFrame:
    """Rows of ``version`` (None = the most recently scored version), sorted by scoring time."""
    out = log.sort_values(scored_at, kind="stable")
    if model_version in out.columns and len(out):
        if version is None:
            version = out[model_version].iloc[-1]
        keep = out[model_version].astype(str) == str(version)
        logger.info(
            "%s model version %s: %d of %d logged rows", role, version, keep.sum(), len(out)
        )
        out = out[keep]
    return out.copy()
