"""Typed parameters of the monitoring pipeline (``monitoring`` in parameters_monitoring.yml).

Parameter dataclasses (:mod:`fraud_kedro.parameters`): Kedro builds ``MonitoringParams`` for the
monitoring pipeline's first node (``params: MonitoringParams``), nested sections included; unknown
keys and bad values stop the run naming their path. The toolkit's functions, which callers outside
Kedro may give a plain dictionary, take either (:meth:`MonitoringParams.coerce`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import Annotated, Any

from pydantic import BeforeValidator, StrictBool

from fraud_kedro.contract import COLUMNS, DEFAULT_LABEL_DELAY_DAYS, RANKING_METRICS, THRESHOLD_METRICS
from fraud_kedro.parameters import build, parameters

SOURCES = ("batch", "service_log")
PERFORMANCE_METRICS = (*RANKING_METRICS, *THRESHOLD_METRICS)
DRIFT_METHODS = ("jensen_shannon", "hellinger", "wasserstein", "kolmogorov_smirnov")
ALERT_KINDS = (
    "performance_estimated",
    "performance_realized",
    "performance_band_estimated",
    "performance_band_realized",
    "score_drift",
    "feature_drift",
    "multivariate_drift",
    "data_quality",
    "calibration",
)


def _as_tuple(value: Any) -> Any:
    """A single name as a one-name list (``key_features: amount``)."""
    return [value] if isinstance(value, str) else value


#: feature / metric / alert names: a list, or one name
Names = Annotated[tuple[str, ...], BeforeValidator(_as_tuple)]


@parameters
class ColumnsParams:
    """Column names of the prediction tables (inputs) and the one column this pipeline adds."""

    transaction_id: str = COLUMNS.transaction_id
    timestamp: str = COLUMNS.timestamp
    label: str = COLUMNS.label
    score: str = "fraud_probability"
    prediction: str = "is_fraud_predicted"
    challenger_score: str = "challenger_probability"
    model_version: str = "model_version"
    scored_at: str = "scored_at"
    label_received_at: str = "received_at"
    label_available: str = "label_available"


@parameters
class ChunkingParams:
    """Chunk size = ``min_positives_per_chunk`` / reference fraud rate, within the bounds."""

    min_positives_per_chunk: int = 100
    min_chunk_size: int = 1_000
    max_chunk_size: int | None = None
    min_reference_chunks: int = 3

    def __post_init__(self) -> None:
        if self.min_positives_per_chunk < 1:
            raise ValueError("monitoring.chunking.min_positives_per_chunk must be >= 1")
        if self.min_chunk_size < 1:
            raise ValueError("monitoring.chunking.min_chunk_size must be >= 1")
        if self.max_chunk_size is not None and self.max_chunk_size < self.min_chunk_size:
            raise ValueError("monitoring.chunking.max_chunk_size must be >= min_chunk_size")
        if self.min_reference_chunks < 2:
            raise ValueError("monitoring.chunking.min_reference_chunks must be >= 2")


@parameters
class PerformanceParams:
    """Estimated (CBPE) and realised performance, and the alert thresholds a fraud team sets."""

    metrics: Names = PERFORMANCE_METRICS
    # business thresholds: alert when a chunk's metric falls below (null = no business threshold)
    min_acceptable: dict[str, float | None] = field(default_factory=dict)
    # NannyML's statistical band: reference mean -/+ this many standard deviations
    band_std_multiplier: float = 3.0
    # average precision: "expected" = Monte Carlo expectation of the realised AP under the
    # calibrated scores (unbiased on small chunks); "nannyml" = NannyML's plug-in estimate
    ap_estimator: str = "expected"
    ap_samples: int = 200
    seed: int = 0
    # a chunk's realised metrics need labels for at least this share of its rows
    min_label_coverage: float = 0.99

    def __post_init__(self) -> None:
        unknown = sorted(set(self.metrics) - set(PERFORMANCE_METRICS))
        if unknown:
            raise ValueError(
                f"monitoring.performance.metrics: unknown {unknown}; allowed {PERFORMANCE_METRICS}"
            )
        minimum = {k: float(v) for k, v in dict(self.min_acceptable or {}).items() if v is not None}
        unknown = sorted(set(minimum) - set(PERFORMANCE_METRICS))
        if unknown:
            raise ValueError(f"monitoring.performance.min_acceptable: unknown metric(s) {unknown}")
        object.__setattr__(self, "min_acceptable", minimum)
        if self.ap_estimator not in ("expected", "nannyml"):
            raise ValueError("monitoring.performance.ap_estimator must be 'expected' or 'nannyml'")
        if not 0.0 < self.min_label_coverage <= 1.0:
            raise ValueError("monitoring.performance.min_label_coverage must be in (0, 1]")
        if self.ap_samples < 10:
            raise ValueError("monitoring.performance.ap_samples must be >= 10")


@parameters
class DriftParams:
    """Univariate drift (every feature and the score) and multivariate drift."""

    method: str = "jensen_shannon"
    # alert when a chunk's distance to the reference exceeds this (a constant: NannyML's default
    # 3-sigma band over a handful of reference chunks is far too narrow)
    threshold: float = 0.1
    # features whose drift raises an alert; null = every model feature except seasonal ones
    key_features: Names | None = None
    # features whose distribution depends on which hours / weekdays a chunk covers: reported,
    # never alerting, and left out of the multivariate drift
    seasonal_features: Names = ()
    multivariate: StrictBool = True
    # PCA reconstruction error: alert above max(NannyML band, reference mean * (1 + this))
    multivariate_min_relative_increase: float = 0.05
    # NannyML's DomainClassifier is slow on large references: off unless asked for
    domain_classifier: StrictBool = False
    domain_classifier_threshold: float = 0.65

    def __post_init__(self) -> None:
        if self.method not in DRIFT_METHODS:
            raise ValueError(f"monitoring.drift.method must be one of {DRIFT_METHODS}")
        if self.threshold <= 0:
            raise ValueError("monitoring.drift.threshold must be > 0")


@parameters
class DataQualityParams:
    """Missing values and values outside the reference range, as shares of a chunk's rows."""

    max_missing_rate: float = 0.001
    max_out_of_range_rate: float = 0.01


@parameters
class CalibrationParams:
    """Calibration report of the reference (CBPE's assumption) and of the labelled analysis."""

    n_bins: int = 10
    # alert (informational by default) when the reference's expected calibration error exceeds
    max_ece: float | None = 0.02

    def __post_init__(self) -> None:
        if self.n_bins < 2:
            raise ValueError("monitoring.calibration.n_bins must be >= 2")


@parameters
class AlertsParams:
    """Which alert kinds make the retraining decision say yes."""

    retrain_on: Names = (
        "performance_estimated",
        "performance_realized",
        "score_drift",
        "feature_drift",
        "multivariate_drift",
    )
    # alerts must hold in at least this many consecutive chunks to count (1 = any chunk)
    min_consecutive_chunks: int = 1

    def __post_init__(self) -> None:
        unknown = sorted(set(self.retrain_on) - set(ALERT_KINDS))
        if unknown:
            raise ValueError(
                f"monitoring.alerts.retrain_on: unknown {unknown}; allowed {ALERT_KINDS}"
            )
        if self.min_consecutive_chunks < 1:
            raise ValueError("monitoring.alerts.min_consecutive_chunks must be >= 1")


@parameters
class MonitoringParams:
    """All parameters of the monitoring pipeline."""

    source: str = "batch"
    # labels count as known only for rows at least this old at ``as_of`` (chargeback delay); not
    # a monitoring key in conf/: the pipeline fills in the one label delay, ``split.delay_days``
    label_delay_days: float = float(DEFAULT_LABEL_DELAY_DAYS)
    # end of the analysis period; null = the latest timestamp of the analysis data
    as_of: str | None = None
    # service log: a transaction without a label once the delay has passed is legitimate
    assume_legit_after_delay: StrictBool = True
    # service log: the model version to monitor; null = the most recently scored version
    model_version: str | None = None
    columns: ColumnsParams = field(default_factory=ColumnsParams)
    chunking: ChunkingParams = field(default_factory=ChunkingParams)
    performance: PerformanceParams = field(default_factory=PerformanceParams)
    drift: DriftParams = field(default_factory=DriftParams)
    data_quality: DataQualityParams = field(default_factory=DataQualityParams)
    calibration: CalibrationParams = field(default_factory=CalibrationParams)
    alerts: AlertsParams = field(default_factory=AlertsParams)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"monitoring.source must be one of {SOURCES}, got {self.source!r}")
        if self.label_delay_days < 0:
            raise ValueError("monitoring.label_delay_days must be >= 0")

    @classmethod
    def coerce(cls, params: MonitoringParams | Mapping[str, Any] | None) -> MonitoringParams:
        """The parameters as this class, from an instance, a mapping or None (defaults).

        Raises:
            ValueError: On an unknown key or an invalid value, naming it.
        """
        return build(cls, params)
