"""The monitoring tables before any statistic: the reference, the analysis table (batch scores or
the service's logs, late labels masked), the model's decisions and the chunks. Kedro-free: the
monitoring nodes (:mod:`fraud_kedro.pipelines.monitoring.nodes`) call these.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fraud_kedro.monitoring.chunking import chunk_table, plan_chunk_size
from fraud_kedro.monitoring.params import ColumnsParams, MonitoringParams
from fraud_kedro.monitoring.sources import join_service_log, label_batch, resolve_as_of

if TYPE_CHECKING:  # the dataset's value type only; nothing of io/ is imported at run time
    from fraud_kedro.io.service_log import ServiceLogData

logger = logging.getLogger(__name__)


def model_features(feature_spec: dict) -> list[str]:
    features = list(feature_spec.get("features") or [])
    if not features:
        raise ValueError("feature_spec has no 'features' list")
    return features


def require_columns(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; it has {list(frame.columns)}")


def sort_by_time(frame: pd.DataFrame, cols: ColumnsParams) -> pd.DataFrame:
    keys = [cols.timestamp] + (
        [cols.transaction_id] if cols.transaction_id in frame.columns else []
    )
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def decisions(frame: pd.DataFrame, cols: ColumnsParams, threshold: float) -> np.ndarray:
    """The model's 0/1 decisions: the logged ones, else the score against the threshold."""
    if cols.prediction in frame.columns:
        logged = frame[cols.prediction].astype(bool).to_numpy()
        recomputed = frame[cols.score].to_numpy(dtype=np.float64) >= threshold
        mismatch = float(np.mean(logged != recomputed)) if len(frame) else 0.0
        if mismatch > 0:
            logger.warning(
                "%.2f%% of logged decisions differ from score >= threshold %.4g",
                100 * mismatch,
                threshold,
            )
        return logged.astype(np.int64)
    return (frame[cols.score].to_numpy(dtype=np.float64) >= threshold).astype(np.int64)


def with_decisions(
    frame: pd.DataFrame, cols: ColumnsParams, decision_threshold: dict
) -> pd.DataFrame:
    threshold = float(decision_threshold["threshold"])
    return frame.assign(**{cols.prediction: decisions(frame, cols, threshold)})


def with_chunk_dates(table: pd.DataFrame, chunks: pd.DataFrame) -> pd.DataFrame:
    info = chunks[["period", "chunk_index", "chunk_start", "chunk_end"]]
    return table.merge(info, on=["period", "chunk_index"], how="left", validate="many_to_one")


def reference_table(
    reference_predictions: pd.DataFrame,
    feature_spec: dict,
    decision_threshold: dict,
    params: MonitoringParams,
) -> pd.DataFrame:
    """The reference: the model's labelled test window, time-sorted, decisions as 0/1.

    Args:
        reference_predictions: The model's scores on its test window, with labels.
        feature_spec: ``{"features": [...]}``.
        decision_threshold: ``{"threshold": ...}`` (used when decisions are not logged).
        params: Monitoring parameters.

    Returns:
        A sorted copy; rows without a label are dropped (with a warning).
    """
    p = MonitoringParams.coerce(params)
    c = p.columns
    require_columns(
        reference_predictions,
        [c.timestamp, c.label, c.score, *model_features(feature_spec)],
        "reference_predictions",
    )
    labelled = reference_predictions[reference_predictions[c.label].notna()]
    if len(labelled) < len(reference_predictions):
        logger.warning(
            "Dropped %d reference rows without a label", len(reference_predictions) - len(labelled)
        )
    reference = with_decisions(sort_by_time(labelled, c), c, decision_threshold)
    reference[c.label] = pd.to_numeric(reference[c.label]).astype(np.int64)
    reference[c.label_available] = True
    logger.info(
        "Reference: %d rows from %s to %s, %d frauds",
        len(reference),
        reference[c.timestamp].min(),
        reference[c.timestamp].max(),
        int(reference[c.label].sum()),
    )
    return reference


def analysis_table(
    production_predictions: pd.DataFrame | None,
    service_log: ServiceLogData | None,
    feature_spec: dict,
    decision_threshold: dict,
    params: MonitoringParams,
) -> pd.DataFrame:
    """The analysis table from the batch scores or the service's logs, with late labels masked.

    Args:
        production_predictions: Batch scores of the production period (``source: batch``).
        service_log: The scoring service's logs, as loaded (``source: service_log``).
        feature_spec: ``{"features": [...]}``.
        decision_threshold: ``{"threshold": ...}``.
        params: Monitoring parameters (``source``, ``label_delay_days``, ``as_of``).

    Returns:
        Time-sorted table: the prediction columns, the label (float, NaN where not yet known) and
        ``label_available``.
    """
    p = MonitoringParams.coerce(params)
    c = p.columns
    if p.source == "batch":
        if production_predictions is None:
            raise ValueError("monitoring.source is 'batch' but production_predictions is missing")
        data = sort_by_time(production_predictions, c)
        table = label_batch(
            data,
            timestamp=c.timestamp,
            label=c.label,
            label_available=c.label_available,
            label_delay_days=p.label_delay_days,
            as_of=resolve_as_of(data[c.timestamp], p.as_of),
        )
    else:
        if service_log is None:
            raise ValueError("monitoring.source is 'service_log' but no service log is configured")
        if not service_log.available:
            raise ValueError(
                f"monitoring.source is 'service_log' but there is no service log at "
                f"{service_log.source} (FRAUD_STATE_URL / FRAUD_STATE_DB)"
            )
        shadow = service_log.shadow_predictions
        table = join_service_log(
            service_log.predictions,
            service_log.labels,
            transaction_id=c.transaction_id,
            timestamp=c.timestamp,
            label=c.label,
            label_available=c.label_available,
            scored_at=c.scored_at,
            received_at=c.label_received_at,
            model_version=c.model_version,
            label_delay_days=p.label_delay_days,
            as_of=p.as_of,
            version=p.model_version,
            assume_legit_after_delay=p.assume_legit_after_delay,
            shadow=shadow,
            score=c.score,
            challenger_score=c.challenger_score,
        )
        table = sort_by_time(table, c)
    require_columns(table, [c.timestamp, c.score, *model_features(feature_spec)], "the analysis table")
    if table.empty:
        raise ValueError("the analysis table is empty: nothing to monitor")
    return with_decisions(table, c, decision_threshold)


def chunks_of(
    reference: pd.DataFrame, analysis: pd.DataFrame, params: MonitoringParams
) -> tuple[dict, pd.DataFrame]:
    """Chunk size from the reference's fraud rate, and the chunks of both periods.

    Returns:
        The plan (``chunk_size``, ``reference_fraud_rate``, ``expected_positives_per_chunk``, ...)
        and one row per chunk: ``period, chunk_index, start_index, end_index, chunk_start,
        chunk_end, n_rows, n_labelled, n_positives``.
    """
    p = MonitoringParams.coerce(params)
    c, ch = p.columns, p.chunking
    plan = plan_chunk_size(
        reference_rows=len(reference),
        reference_positives=int(reference[c.label].sum()),
        analysis_rows=len(analysis),
        min_positives_per_chunk=ch.min_positives_per_chunk,
        min_chunk_size=ch.min_chunk_size,
        max_chunk_size=ch.max_chunk_size,
        min_reference_chunks=ch.min_reference_chunks,
    )
    tables = []
    for period, frame in (("reference", reference), ("analysis", analysis)):
        table = chunk_table(frame, plan.chunk_size, c.timestamp, c.label, c.label_available)
        tables.append(table.assign(period=period))
    chunks = pd.concat(tables, ignore_index=True)
    chunks = chunks[["period", *[col for col in chunks.columns if col != "period"]]]
    logger.info(
        "Chunks of %d rows (reference fraud rate %.4f%%, ~%.0f frauds per chunk): "
        "%d reference, %d analysis",
        plan.chunk_size,
        100 * plan.reference_fraud_rate,
        plan.expected_positives_per_chunk,
        plan.n_reference_chunks,
        plan.n_analysis_chunks,
    )
    return plan.to_dict(), chunks
