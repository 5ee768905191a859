"""Chunk sizes that hold enough frauds, and the chunk boundaries every result shares.

A chunk's realised ROC AUC or average precision is computed from its frauds only: with ``P``
positives its sampling noise shrinks like ``1 / sqrt(P)``. Below roughly 100 frauds per chunk the
noise of the realised metric is larger than the performance changes worth acting on, and the
3-sigma bands NannyML derives from reference chunks are so wide they never fire. The chunk size is
therefore derived from the fraud rate expected on the reference:
``ceil(min_positives_per_chunk / reference_fraud_rate)``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkPlan:
    """The chosen chunk size and why."""

    chunk_size: int
    reference_rows: int
    reference_positives: int
    reference_fraud_rate: float
    expected_positives_per_chunk: float
    n_reference_chunks: int
    n_analysis_chunks: int
    limited_by: str | None

    def to_dict(self) -> dict:
        """A JSON-friendly dictionary."""
        return asdict(self)


def plan_chunk_size(
    reference_rows: int,
    reference_positives: int,
    analysis_rows: int,
    min_positives_per_chunk: int,
    min_chunk_size: int = 1_000,
    max_chunk_size: int | None = None,
    min_reference_chunks: int = 3,
) -> ChunkPlan:
    """Chunk size so that a chunk is expected to hold ``min_positives_per_chunk`` frauds.

    The size is then bounded: at least ``min_chunk_size`` rows, at most ``max_chunk_size``, small
    enough for the reference to give ``min_reference_chunks`` chunks (NannyML derives its bands
    and sampling errors from them), and no larger than the analysis data.

    Args:
        reference_rows: Rows of the reference (labelled) data.
        reference_positives: Frauds among them.
        analysis_rows: Rows of the analysis data.
        min_positives_per_chunk: Frauds a chunk should hold.
        min_chunk_size: Lower bound of the size.
        max_chunk_size: Upper bound of the size (None = no bound).
        min_reference_chunks: The reference must split into at least this many chunks.

    Returns:
        The plan; ``limited_by`` names the bound that moved the size, if any.

    Raises:
        ValueError: If the reference has no fraud (no estimator can be fitted) or no rows.
    """
    if reference_rows <= 0 or reference_positives <= 0:
        raise ValueError(
            f"the reference holds {reference_rows} rows and {reference_positives} frauds: "
            "performance estimation needs labelled frauds in the reference"
        )
    if analysis_rows <= 0:
        raise ValueError("the analysis data is empty")
    rate = reference_positives / reference_rows
    size = math.ceil(min_positives_per_chunk / rate)
    limited_by = None
    if size < min_chunk_size:
        size, limited_by = min_chunk_size, "min_chunk_size"
    if max_chunk_size is not None and size > max_chunk_size:
        size, limited_by = max_chunk_size, "max_chunk_size"
    reference_cap = reference_rows // min_reference_chunks
    if size > reference_cap:
        size, limited_by = max(reference_cap, 1), "reference_rows"
        logger.warning(
            "The reference holds %d frauds: chunks of %d rows (%d reference chunks) expect only "
            "%.0f frauds each, fewer than the %d wanted; estimates will be noisy",
            reference_positives,
            size,
            min_reference_chunks,
            size * rate,
            min_positives_per_chunk,
        )
    if size > analysis_rows:
        size, limited_by = analysis_rows, "analysis_rows"
        logger.warning("The analysis data (%d rows) is smaller than one chunk", analysis_rows)
    plan = ChunkPlan(
        chunk_size=int(size),
        reference_rows=int(reference_rows),
        reference_positives=int(reference_positives),
        reference_fraud_rate=float(rate),
        expected_positives_per_chunk=float(size * rate),
        n_reference_chunks=len(chunk_bounds(reference_rows, size)),
        n_analysis_chunks=len(chunk_bounds(analysis_rows, size)),
        limited_by=limited_by,
    )
    if plan.n_reference_chunks < 6:
        logger.info(
            "The reference gives %d chunks: NannyML's statistical bands rest on few points; "
            "the business thresholds are the primary alerts",
            plan.n_reference_chunks,
        )
    return plan


def chunk_bounds(n_rows: int, chunk_size: int) -> list[tuple[int, int]]:
    """``[start, end)`` row ranges of consecutive chunks; an incomplete last one joins the previous.

    The same rule as NannyML's ``SizeBasedChunker(incomplete="append")``. Data smaller than one
    chunk gives a single chunk.
    """
    if n_rows <= 0:
        return []
    n_full = max(n_rows // chunk_size, 1)
    starts = [i * chunk_size for i in range(n_full)]
    ends = [*starts[1:], n_rows]
    return list(zip(starts, ends, strict=True))


def chunk_table(
    data: pd.DataFrame,
    chunk_size: int,
    timestamp: str,
    label: str | None = None,
    label_available: str | None = None,
) -> pd.DataFrame:
    """One row per chunk of time-sorted ``data``: index range, time range, rows, labels known.

    Returns:
        Columns ``chunk_index, start_index, end_index`` (exclusive), ``chunk_start, chunk_end``
        (first and last timestamp), ``n_rows``, and when ``label_available`` is given
        ``n_labelled`` and ``n_positives`` (among labelled rows).
    """
    bounds = chunk_bounds(len(data), chunk_size)
    ts = pd.to_datetime(data[timestamp]).to_numpy()
    rows = []
    has_labels = label is not None and label_available is not None
    if has_labels:
        available = data[label_available].to_numpy(dtype=bool)
        positives = (
            pd.to_numeric(data[label], errors="coerce").fillna(0).to_numpy() > 0
        ) & available
    for i, (start, end) in enumerate(bounds):
        row = {
            "chunk_index": i,
            "start_index": start,
            "end_index": end,
            "chunk_start": ts[start],
            "chunk_end": ts[end - 1],
            "n_rows": end - start,
        }
        if has_labels:
            row["n_labelled"] = int(available[start:end].sum())
            row["n_positives"] = int(positives[start:end].sum())
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        table = pd.DataFrame(
            columns=[
                "chunk_index",
                "start_index",
                "end_index",
                "chunk_start",
                "chunk_end",
                "n_rows",
            ]
        )
    for col in ("chunk_index", "start_index", "end_index", "n_rows"):
        table[col] = table[col].astype(np.int64)
    return table
