"""Alerts from the monitoring tables, and the retraining decision they lead to (backend-free)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

ALERT_COLUMNS = [
    "kind",
    "subject",
    "chunk_index",
    "chunk_start",
    "chunk_end",
    "value",
    "threshold",
    "retrain_trigger",
]


def _rows(
    frame: pd.DataFrame, mask: np.ndarray, kind: str, subject: str, value: str, threshold: str
) -> pd.DataFrame:
    part = frame[mask]
    return pd.DataFrame(
        {
            "kind": kind,
            "subject": part[subject].astype(str).to_numpy(),
            "chunk_index": part["chunk_index"].astype("Int64").to_numpy(),
            "chunk_start": part["chunk_start"].to_numpy(),
            "chunk_end": part["chunk_end"].to_numpy(),
            "value": part[value].astype(np.float64).to_numpy(),
            "threshold": part[threshold].astype(np.float64).to_numpy(),
        }
    )


def collect_alerts(
    performance: pd.DataFrame,
    drift: pd.DataFrame,
    quality: pd.DataFrame,
    calibration: dict,
    retrain_on: Iterable[str],
) -> pd.DataFrame:
    """Every alert of the analysis period, one row per kind, subject and chunk.

    Args:
        performance: Assessed performance table (``alert_*`` flags, analysis and reference rows).
        drift: Drift table with ``alert`` and ``is_key`` flags and ``kind`` (univariate /
            multivariate); univariate rows of the score have ``is_score``.
        quality: Data-quality table with ``alert``.
        calibration: Calibration report; ``reference.ece`` against ``max_ece``.
        retrain_on: Alert kinds that trigger retraining.

    Returns:
        Alerts table (see ``ALERT_COLUMNS``), sorted by chunk and kind.
    """
    retrain_on = set(retrain_on)
    parts = []
    perf = performance[performance["period"] == "analysis"]
    for kind, flag, value, threshold in (
        ("performance_estimated", "alert_estimated", "estimated", "min_acceptable"),
        ("performance_realized", "alert_realized", "realized", "min_acceptable"),
        ("performance_band_estimated", "alert_band_estimated", "estimated", "band_lower"),
        ("performance_band_realized", "alert_band_realized", "realized", "band_lower"),
    ):
        parts.append(_rows(perf, perf[flag].to_numpy(dtype=bool), kind, "metric", value, threshold))
    dr = drift[drift["period"] == "analysis"]
    alert = dr["alert"].to_numpy(dtype=bool)
    uni = (dr["kind"] == "univariate").to_numpy()
    score = dr["is_score"].to_numpy(dtype=bool)
    key = dr["is_key"].to_numpy(dtype=bool)
    parts.append(_rows(dr, alert & uni & score, "score_drift", "column", "value", "threshold"))
    parts.append(
        _rows(dr, alert & uni & key & ~score, "feature_drift", "column", "value", "threshold")
    )
    parts.append(_rows(dr, alert & ~uni, "multivariate_drift", "method", "value", "threshold"))
    dq = quality[quality["period"] == "analysis"].copy()
    dq["subject"] = dq["column"] + ":" + dq["check"]
    parts.append(
        _rows(dq, dq["alert"].to_numpy(dtype=bool), "data_quality", "subject", "value", "threshold")
    )
    reference = calibration.get("reference", {})
    max_ece = calibration.get("max_ece")
    if max_ece is not None and reference.get("ece", 0.0) > max_ece:
        parts.append(
            pd.DataFrame(
                {
                    "kind": ["calibration"],
                    "subject": ["reference_ece"],
                    "chunk_index": pd.array([pd.NA], dtype="Int64"),
                    "chunk_start": [pd.NaT],
                    "chunk_end": [pd.NaT],
                    "value": [float(reference["ece"])],
                    "threshold": [float(max_ece)],
                }
            )
        )
    parts = [p for p in parts if len(p)]
    if not parts:
        return _empty_alerts()
    alerts = pd.concat(parts, ignore_index=True)
    alerts["retrain_trigger"] = alerts["kind"].isin(retrain_on)
    alerts = alerts.sort_values(
        ["chunk_index", "kind", "subject"], kind="stable", na_position="first"
    )
    return alerts.reset_index(drop=True)[ALERT_COLUMNS]


def _empty_alerts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "kind": pd.Series(dtype=object),
            "subject": pd.Series(dtype=object),
            "chunk_index": pd.Series(dtype="Int64"),
            "chunk_start": pd.Series(dtype="datetime64[ns]"),
            "chunk_end": pd.Series(dtype="datetime64[ns]"),
            "value": pd.Series(dtype=np.float64),
            "threshold": pd.Series(dtype=np.float64),
            "retrain_trigger": pd.Series(dtype=bool),
        }
    )


def _longest_run(indices: np.ndarray) -> int:
    """Length of the longest run of consecutive integers."""
    if len(indices) == 0:
        return 0
    values = np.unique(indices)
    breaks = np.flatnonzero(np.diff(values) != 1)
    lengths = np.diff(np.r_[-1, breaks, len(values) - 1])
    return int(lengths.max())


def summarize_alerts(alerts: pd.DataFrame, min_consecutive_chunks: int = 1) -> list[dict]:
    """One summary per kind and subject: chunks in alert, first chunk, worst value.

    A group counts (``counts``) when it is not tied to chunks (calibration) or when its longest
    run of consecutive chunks in alert reaches ``min_consecutive_chunks``.
    """
    summaries = []
    for (kind, subject), group in alerts.groupby(["kind", "subject"], sort=False, dropna=False):
        chunks = group["chunk_index"].dropna().to_numpy(dtype=np.int64)
        run = _longest_run(chunks)
        lower_is_worse = kind.startswith("performance")
        values = group["value"].to_numpy(dtype=np.float64)
        worst = float(np.nanmin(values) if lower_is_worse else np.nanmax(values))
        first = group.iloc[0]
        summaries.append(
            {
                "kind": kind,
                "subject": subject,
                "n_chunks": int(len(chunks)),
                "longest_run": run,
                "first_chunk": int(chunks.min()) if len(chunks) else None,
                "first_chunk_start": _iso(first["chunk_start"]),
                "last_chunk_end": _iso(group["chunk_end"].max()),
                "worst_value": worst,
                "threshold": float(first["threshold"]),
                "retrain_trigger": bool(first["retrain_trigger"]),
                "counts": bool(len(chunks) == 0 or run >= min_consecutive_chunks),
            }
        )
    return summaries


def _iso(value: object) -> str | None:
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).isoformat()


def reason(summary: dict) -> str:
    """A sentence for the retraining decision."""
    where = (
        f"in {summary['n_chunks']} chunk(s) from chunk {summary['first_chunk']} "
        f"({summary['first_chunk_start']})"
        if summary["first_chunk"] is not None
        else "on the reference"
    )
    relation = "below" if summary["kind"].startswith("performance") else "above"
    return (
        f"{summary['kind']}: {summary['subject']} {relation} threshold {summary['threshold']:.4g} "
        f"{where}; worst {summary['worst_value']:.4g}"
    )
