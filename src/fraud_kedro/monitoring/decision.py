"""The retraining decision from the monitoring alerts, and the metric histories logged to MLflow.
Kedro-free: the monitoring nodes call these.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from fraud_kedro.monitoring import alerts as alerts_lib
from fraud_kedro.monitoring.chunk_metrics import jsonable
from fraud_kedro.monitoring.params import MonitoringParams

logger = logging.getLogger(__name__)


def retrain_decision(
    alerts: pd.DataFrame,
    chunk_plan: dict,
    chunks: pd.DataFrame,
    calibration: dict,
    champion_challenger: dict,
    params: MonitoringParams,
) -> dict:
    """The retraining decision: yes when an alert of a ``retrain_on`` kind holds.

    Returns:
        ``{"retrain": bool, "reasons": [...], "generated_at": ..., "as_of": ..., "alerts":
        [...], ...}``; every alert is also logged.
    """
    p = MonitoringParams.coerce(params)
    alerts = alerts.assign(retrain_trigger=alerts["kind"].isin(p.alerts.retrain_on))
    summaries = alerts_lib.summarize_alerts(alerts, p.alerts.min_consecutive_chunks)
    triggers = [s for s in summaries if s["retrain_trigger"] and s["counts"]]
    for s in summaries:
        level = logging.WARNING if s["retrain_trigger"] else logging.INFO
        logger.log(level, "Monitoring alert: %s", alerts_lib.reason(s))
    analysis = chunks[chunks["period"] == "analysis"]
    as_of = pd.Timestamp(p.as_of) if p.as_of else pd.Timestamp(analysis["chunk_end"].max())
    first = min(
        triggers, key=lambda s: -1 if s["first_chunk"] is None else s["first_chunk"], default=None
    )
    decision = {
        "retrain": bool(triggers),
        "reasons": [alerts_lib.reason(s) for s in triggers],
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "as_of": as_of,
        "source": p.source,
        "analysis_start": pd.Timestamp(analysis["chunk_start"].min()),
        "analysis_end": pd.Timestamp(analysis["chunk_end"].max()),
        "label_delay_days": p.label_delay_days,
        "chunk_size": chunk_plan["chunk_size"],
        "n_chunks": len(analysis),
        "n_chunks_with_labels": int(
            (analysis["n_labelled"] >= analysis["n_rows"] * p.performance.min_label_coverage).sum()
        ),
        "first_alert_chunk": first["first_chunk"] if first else None,
        "first_alert_start": first["first_chunk_start"] if first else None,
        "retrain_on": list(p.alerts.retrain_on),
        "alerts": summaries,
        "calibration": {
            "reference_brier": calibration.get("reference", {}).get("brier"),
            "reference_ece": calibration.get("reference", {}).get("ece"),
            "estimator_recalibrated": calibration.get("estimator_recalibrated"),
        },
        "champion_challenger": champion_challenger,
    }
    if decision["retrain"]:
        logger.warning("Retraining recommended: %s", "; ".join(decision["reasons"]))
    else:
        logger.info("No retraining needed (%d analysis chunks checked)", len(analysis))
    return jsonable(decision)


def monitoring_metrics(
    performance: pd.DataFrame,
    drift: pd.DataFrame,
    calibration: dict,
    chunk_plan: dict,
    decision: dict,
) -> dict[str, list[dict[str, float]]]:
    """Metric histories for MLflow (step = analysis chunk index), and run-level values (step 0)."""
    out: dict[str, list[dict[str, float]]] = {}

    def add(name: str, value: Any, step: int = 0) -> None:
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return
        out.setdefault(name, []).append({"value": float(value), "step": int(step)})

    perf = performance[performance["period"] == "analysis"]
    for r in perf.itertuples(index=False):
        add(f"estimated_{r.metric}", r.estimated, r.chunk_index)
        add(f"realized_{r.metric}", r.realized, r.chunk_index)
    dr = drift[drift["period"] == "analysis"]
    for r in dr[dr["is_score"]].itertuples(index=False):
        add("score_drift", r.value, r.chunk_index)
    for r in dr[dr["kind"] == "multivariate"].itertuples(index=False):
        add(f"multivariate_{r.method}", r.value, r.chunk_index)
    key_alerts = dr[dr["is_key"]].groupby("chunk_index")["alert"].sum()
    for chunk_index, n in key_alerts.items():
        add("key_features_drifting", n, int(chunk_index))
    reference = calibration.get("reference", {})
    add("reference_brier", reference.get("brier"))
    add("reference_ece", reference.get("ece"))
    add("chunk_size", chunk_plan.get("chunk_size"))
    add("reference_fraud_rate", chunk_plan.get("reference_fraud_rate"))
    add("retrain", 1.0 if decision.get("retrain") else 0.0)
    add("n_alert_groups", len(decision.get("alerts", [])))
    return out
