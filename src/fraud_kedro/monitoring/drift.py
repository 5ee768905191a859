"""Input and output drift and data quality per chunk (NannyML calculators), as tidy tables.

Every function takes time-sorted reference and analysis frames and returns a long table with one
row per period, chunk and column, so the pipeline never touches NannyML's result layout.

Alert thresholds here are constants a team can reason about (a Jensen-Shannon distance, a share of
rows) rather than NannyML's default 3-sigma bands: with a one-week reference cut into a handful of
chunks those bands rest on a few points and are far too narrow (they fired on most features of a
simulation without any drift).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from fraud_kedro.monitoring import _nannyml
from fraud_kedro.monitoring.chunking import chunk_bounds

logger = logging.getLogger(__name__)

DRIFT_COLUMNS = [
    "period",
    "chunk_index",
    "start_index",
    "end_index",
    "kind",
    "column",
    "method",
    "value",
    "threshold",
    "alert",
]
QUALITY_COLUMNS = [
    "period",
    "chunk_index",
    "start_index",
    "end_index",
    "column",
    "check",
    "value",
    "threshold",
    "alert",
]
MULTIVARIATE_COLUMN = "__all_features__"
_DOMAIN_CLASSIFIER_PARAMS = {
    "boosting_type": "gbdt",
    "learning_rate": 0.1,
    "n_estimators": 100,
    "num_leaves": 31,
    "min_child_samples": 20,
    "random_state": 13,
    "n_jobs": 2,
    "verbosity": -1,
}


def _numeric(data: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The columns as float64 (NannyML infers column kinds from dtypes; these are all numeric)."""
    return pd.DataFrame(
        {c: pd.to_numeric(data[c], errors="coerce").to_numpy(dtype=np.float64) for c in columns}
    )


def _chunk_meta(result: pd.DataFrame) -> pd.DataFrame:
    field = _nannyml.chunk_field
    return pd.DataFrame(
        {
            "period": field(result, "period").to_numpy(),
            "chunk_index": field(result, "chunk_index").astype(np.int64).to_numpy(),
            "start_index": field(result, "start_index").astype(np.int64).to_numpy(),
            "end_index": field(result, "end_index").astype(np.int64).to_numpy() + 1,
        }
    )


def _fit_calculate(
    calc: Any, reference: pd.DataFrame, analysis: pd.DataFrame, columns: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit a NannyML calculator on the reference, run it on the analysis period; its flat result
    frame and the chunks' columns."""
    calc.fit(_numeric(reference, columns))
    result = _nannyml.result_frame(calc.calculate(_numeric(analysis, columns)))
    return result, _chunk_meta(result)


def _alert_frame(meta: pd.DataFrame, values: np.ndarray, threshold: Any, **labels: str) -> pd.DataFrame:
    """One row per chunk: the chunk's columns, ``labels`` (kind, column, method or check), the
    value, the threshold and whether the value is above it."""
    frame = meta.copy()
    for name, label in labels.items():
        frame[name] = label
    frame["value"] = values
    frame["threshold"] = threshold
    frame["alert"] = values > threshold
    return frame


def _multivariate_frame(meta: pd.DataFrame, values: np.ndarray, threshold: Any, method: str) -> pd.DataFrame:
    """The rows of one multivariate drift method (``column`` = ``__all_features__``)."""
    frame = _alert_frame(
        meta, values, threshold, kind="multivariate", column=MULTIVARIATE_COLUMN, method=method
    )
    return frame[DRIFT_COLUMNS]


def _check_chunks(meta: pd.DataFrame, n_reference: int, n_analysis: int, chunk_size: int) -> None:
    for period, n in (("reference", n_reference), ("analysis", n_analysis)):
        part = meta[meta["period"] == period]
        got = list(zip(part["start_index"], part["end_index"], strict=True))
        if got != chunk_bounds(n, chunk_size):
            raise RuntimeError(f"NannyML chunked the {period} data differently than expected")


def univariate_drift(
    reference: pd.DataFrame,
    analysis: pd.DataFrame,
    columns: Sequence[str],
    chunk_size: int,
    method: str = "jensen_shannon",
    threshold: float = 0.1,
) -> pd.DataFrame:
    """Distance of each chunk's distribution of each column to the reference's.

    Args:
        reference: Time-sorted reference data.
        analysis: Time-sorted analysis data.
        columns: Numeric columns (model features and the score).
        chunk_size: Rows per chunk.
        method: A NannyML continuous method (``jensen_shannon``, ``hellinger``, ``wasserstein``,
            ``kolmogorov_smirnov``).
        threshold: Alert when the distance exceeds it.

    Returns:
        Long table (see ``DRIFT_COLUMNS``), ``kind`` = ``univariate``.
    """
    nml = _nannyml.nannyml()
    columns = list(columns)
    with _nannyml.quiet():
        calc = nml.UnivariateDriftCalculator(
            column_names=columns,
            treat_as_numerical=columns,
            continuous_methods=[method],
            categorical_methods=["jensen_shannon"],
            chunker=_nannyml.size_chunker(chunk_size),
            thresholds={method: _nannyml.constant_threshold(None, threshold)},
        )
        result, meta = _fit_calculate(calc, reference, analysis, columns)
    _check_chunks(meta, len(reference), len(analysis), chunk_size)
    frames = []
    for col in columns:
        values = result[(col, method, "value")].astype(np.float64).to_numpy()
        frames.append(
            _alert_frame(meta, values, float(threshold), kind="univariate", column=col, method=method)
        )
    return pd.concat(frames, ignore_index=True)[DRIFT_COLUMNS]


def multivariate_drift(
    reference: pd.DataFrame,
    analysis: pd.DataFrame,
    columns: Sequence[str],
    chunk_size: int,
    min_relative_increase: float = 0.05,
    std_multiplier: float = 3.0,
) -> pd.DataFrame:
    """PCA data-reconstruction error of each chunk (NannyML's multivariate drift).

    A chunk alerts when its error exceeds both NannyML's upper band (reference mean + 3 std) and
    the reference mean times ``1 + min_relative_increase``; a lower error is not an alert.

    Returns:
        Long table (see ``DRIFT_COLUMNS``), ``kind`` = ``multivariate``, ``column`` =
        ``__all_features__``.
    """
    nml = _nannyml.nannyml()
    columns = list(columns)
    with _nannyml.quiet():
        calc = nml.DataReconstructionDriftCalculator(
            column_names=columns,
            chunker=_nannyml.size_chunker(chunk_size),
            threshold=_nannyml.std_threshold(std_multiplier),
        )
        result, meta = _fit_calculate(calc, reference, analysis, columns)
    _check_chunks(meta, len(reference), len(analysis), chunk_size)
    values = result[("reconstruction_error", "value")].astype(np.float64).to_numpy()
    band = result[("reconstruction_error", "upper_threshold")].astype(np.float64).to_numpy()
    reference_mean = float(np.nanmean(values[meta["period"].to_numpy() == "reference"]))
    threshold = np.maximum(band, reference_mean * (1 + min_relative_increase))
    return _multivariate_frame(meta, values, threshold, "pca_reconstruction_error")


def domain_classifier_drift(
    reference: pd.DataFrame,
    analysis: pd.DataFrame,
    columns: Sequence[str],
    chunk_size: int,
    threshold: float = 0.65,
) -> pd.DataFrame:
    """NannyML's domain classifier (LightGBM per chunk): AUROC of telling a chunk from reference.

    Slow on large references (one cross-validated model per chunk); off by default.
    """
    nml = _nannyml.nannyml()
    columns = list(columns)
    with _nannyml.quiet():
        calc = nml.DomainClassifierCalculator(
            feature_column_names=columns,
            chunker=_nannyml.size_chunker(chunk_size),
            # NannyML 0.13.1 compares against the lower bound even when it is None: give one
            threshold=_nannyml.constant_threshold(0.0, threshold),
            # its defaults pass LightGBM an unknown "silent" key and let it print to stdout
            hyperparameters=_DOMAIN_CLASSIFIER_PARAMS,
        )
        result, meta = _fit_calculate(calc, reference, analysis, columns)
    values = result[("domain_classifier_auroc", "value")].astype(np.float64).to_numpy()
    return _multivariate_frame(meta, values, float(threshold), "domain_classifier_auroc")


def data_quality(
    reference: pd.DataFrame,
    analysis: pd.DataFrame,
    columns: Sequence[str],
    chunk_size: int,
    max_missing_rate: float = 0.001,
    max_out_of_range_rate: float = 0.01,
) -> pd.DataFrame:
    """Share of missing values and of values outside the reference's [min, max], per chunk.

    Returns:
        Long table (see ``QUALITY_COLUMNS``), ``check`` = ``missing_rate`` or
        ``out_of_range_rate``.
    """
    nml = _nannyml.nannyml()
    columns = list(columns)
    ref, ana = _numeric(reference, columns), _numeric(analysis, columns)
    frames = []
    checks = (
        ("missing_rate", nml.MissingValuesCalculator, max_missing_rate),
        ("out_of_range_rate", nml.NumericalRangeCalculator, max_out_of_range_rate),
    )
    for check, calculator, limit in checks:
        with _nannyml.quiet():
            calc = calculator(
                column_names=columns,
                normalize=True,
                chunker=_nannyml.size_chunker(chunk_size),
                threshold=_nannyml.constant_threshold(None, limit),
            )
            calc.fit(ref)
            result = _nannyml.result_frame(calc.calculate(ana))
        meta = _chunk_meta(result)
        for col in columns:
            values = result[(col, "value")].astype(np.float64).to_numpy()
            frames.append(_alert_frame(meta, values, float(limit), column=col, check=check))
    return pd.concat(frames, ignore_index=True)[QUALITY_COLUMNS]
