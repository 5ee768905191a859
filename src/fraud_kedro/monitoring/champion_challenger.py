"""Champion against the shadow challenger on the same traffic: realised and estimated metrics.

The challenger's scores are the ``challenger_score`` column of the analysis table (the scoring
service logs them with the role ``challenger``). Its estimator is fitted on the reference when the
reference has challenger scores, else on the analysis rows whose labels are known.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

from fraud_kedro.contract import AVERAGE_PRECISION, CHALLENGER, CHAMPION, ROC_AUC
from fraud_kedro.monitoring import estimator as estimator_lib
from fraud_kedro.monitoring.chunk_metrics import jsonable, realized_metrics, realized_rows
from fraud_kedro.monitoring.chunking import chunk_table
from fraud_kedro.monitoring.params import ColumnsParams, MonitoringParams

logger = logging.getLogger(__name__)

CHALLENGER_METRICS = (ROC_AUC, AVERAGE_PRECISION)


def compare(
    reference: pd.DataFrame, analysis: pd.DataFrame, chunk_size: int, p: MonitoringParams
) -> tuple[pd.DataFrame, dict]:
    """Per chunk and metric (ROC AUC, AP): champion and challenger, estimated and realised.

    Args:
        reference: The prepared reference (labelled test window).
        analysis: The analysis table (with ``challenger_score`` when a challenger was shadowed).
        chunk_size: Rows per chunk (the chunk plan's).
        p: The monitoring parameters.

    Returns:
        The table and a summary (overall realised metrics on labelled rows, mean estimates,
        which is better); ``({}, {"available": False})`` without challenger scores.
    """
    c = p.columns
    columns = [
        "chunk_index", "chunk_start", "chunk_end", "metric", "champion_estimated",
        "challenger_estimated", "champion_realized", "challenger_realized",
    ]  # fmt: skip
    if c.challenger_score not in analysis.columns or analysis[c.challenger_score].isna().all():
        return pd.DataFrame(columns=columns), {"available": False}
    data = analysis[analysis[c.challenger_score].notna()].reset_index(drop=True)
    if len(data) < len(analysis):
        logger.warning("Challenger scored %d of %d analysis rows", len(data), len(analysis))
    size = int(chunk_size)
    own_chunks = pd.concat(
        [
            chunk_table(data, size, c.timestamp, c.label, c.label_available).assign(
                period="analysis"
            )
        ],
        ignore_index=True,
    )
    metrics = CHALLENGER_METRICS
    rows: dict[tuple[int, str], dict] = {}
    for role, score in ((CHAMPION, c.score), (CHALLENGER, c.challenger_score)):
        for r in realized_rows(
            data, own_chunks, "analysis", c, metrics, p.performance.min_label_coverage, score
        ):
            rows.setdefault((r["chunk_index"], r["metric"]), {})[f"{role}_realized"] = r["realized"]

    fit = _challenger_reference(reference, data, c, size, p)
    for role, score, fit_frame in (
        ("champion", c.score, reference),
        (CHALLENGER, c.challenger_score, fit),
    ):
        if fit_frame is None:
            continue
        estimate = estimator_lib.estimate_performance(
            fit_frame.assign(**{c.score: fit_frame[score]}),
            data.assign(**{c.score: data[score]}),
            score=c.score,
            label=c.label,
            reference_prediction=np.zeros(len(fit_frame), dtype=np.int64),
            analysis_prediction=np.zeros(len(data), dtype=np.int64),
            metrics=metrics,
            chunk_size=size,
            ap_samples=p.performance.ap_samples,
            seed=p.performance.seed,
        ).analysis()
        for r in estimate.itertuples(index=False):
            rows.setdefault((r.chunk_index, r.metric), {})[f"{role}_estimated"] = r.estimated
    table = pd.DataFrame(
        [{"chunk_index": k[0], "metric": k[1], **v} for k, v in sorted(rows.items())]
    )
    table = table.merge(
        own_chunks[["chunk_index", "chunk_start", "chunk_end"]], on="chunk_index", how="left"
    )
    table = table.reindex(columns=columns)
    fitted_on = None if fit is None else "reference" if fit is reference else "labelled analysis"
    summary = _challenger_summary(data, table, c, metrics, fitted_on)
    logger.info("Champion/challenger: %s", summary.get("realized_overall"))
    return table, summary


def _challenger_reference(
    reference: pd.DataFrame,
    data: pd.DataFrame,
    c: ColumnsParams,
    size: int,
    p: MonitoringParams,
) -> pd.DataFrame | None:
    """Labelled rows with challenger scores to fit the challenger's estimator on, if enough."""
    needed = size * p.chunking.min_reference_chunks
    if c.challenger_score in reference.columns and reference[c.challenger_score].notna().all():
        return reference
    labelled = data[data[c.label_available].to_numpy(dtype=bool)].reset_index(drop=True)
    if len(labelled) >= needed and labelled[c.label].sum() > 0:
        return labelled.assign(**{c.label: labelled[c.label].astype(np.int64)})
    logger.info(
        "Challenger estimates skipped: %d labelled rows with challenger scores, %d needed",
        len(labelled),
        needed,
    )
    return None


def _challenger_summary(
    data: pd.DataFrame,
    table: pd.DataFrame,
    c: ColumnsParams,
    metrics: tuple[str, ...],
    fitted_on: str | None,
) -> dict:
    labelled = data[data[c.label_available].to_numpy(dtype=bool)]
    y = labelled[c.label].to_numpy(dtype=np.float64)
    overall = {}
    for role, score in ((CHAMPION, c.score), (CHALLENGER, c.challenger_score)):
        values = realized_metrics(y, labelled[score].to_numpy(), np.zeros(len(y)), metrics)
        overall[role] = values
    estimated = {
        role: {
            m: float(table.loc[table["metric"] == m, f"{role}_estimated"].mean()) for m in metrics
        }
        for role in ("champion", "challenger")
    }
    better = {
        m: bool(overall["challenger"][m] > overall["champion"][m])
        if not (math.isnan(overall["challenger"][m]) or math.isnan(overall["champion"][m]))
        else None
        for m in metrics
    }
    return jsonable(
        {
            "available": True,
            "n_rows": len(data),
            "n_labelled": len(labelled),
            "challenger_estimator_fitted_on": fitted_on,
            "realized_overall": overall,
            "estimated_mean": estimated,
            "challenger_better_realized": better,
        }
    )


