"""Unit tests of the backend-free parts of the monitoring toolkit (no NannyML)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import average_precision_score, roc_auc_score

from fraud_kedro.io.service_log import ServiceLogDataset
from fraud_kedro.monitoring import alerts
from fraud_kedro.monitoring.chunk_metrics import (
    bootstrap_std,
    calibration_summary,
    expected_ranking_metrics,
    realized_metrics,
    reliability_table,
)
from fraud_kedro.monitoring.chunking import chunk_bounds, chunk_table, plan_chunk_size
from fraud_kedro.monitoring.params import MonitoringParams
from fraud_kedro.monitoring.sources import join_service_log, label_batch

PROJECT_ROOT = Path(__file__).resolve().parents[2]


# ---- parameters ---------------------------------------------------------------------------------


def test_conf_parameters_parse_into_typed_params():
    raw = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_monitoring.yml").read_text())
    p = MonitoringParams(**raw["monitoring"])  # what Kedro does for a dataclass-typed node input
    assert p.source == "batch"
    assert p.chunking.min_positives_per_chunk == 100
    assert p.performance.min_acceptable == {"roc_auc": 0.75, "average_precision": 0.40}
    assert "hour" in p.drift.seasonal_features
    assert MonitoringParams.coerce(p) is p


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"sauce": "batch"}, r"sauce\s+Unexpected keyword argument"),
        ({"source": "kafka"}, "monitoring.source"),
        ({"chunking": {"min_positives": 5}}, r"chunking\.min_positives\s+Unexpected keyword"),
        ({"performance": {"metrics": ["accuracy"]}}, "metrics"),
        ({"performance": {"min_acceptable": {"auc": 0.8}}}, "min_acceptable"),
        ({"drift": {"method": "chi3"}}, "drift.method"),
        ({"alerts": {"retrain_on": ["vibes"]}}, "retrain_on"),
        ({"label_delay_days": -1}, "label_delay_days"),
    ],
)
def test_invalid_parameters_name_the_key(raw, message):
    with pytest.raises(ValueError, match=message):
        MonitoringParams.coerce(raw)


def test_null_business_thresholds_are_dropped():
    p = MonitoringParams.coerce({"performance": {"min_acceptable": {"f1": None, "roc_auc": 0.7}}})
    assert p.performance.min_acceptable == {"roc_auc": 0.7}


# ---- chunking -----------------------------------------------------------------------------------


def test_chunk_size_holds_the_wanted_number_of_frauds():
    plan = plan_chunk_size(70_000, 620, 550_000, min_positives_per_chunk=100)
    assert plan.chunk_size == math.ceil(100 / (620 / 70_000))
    assert plan.expected_positives_per_chunk == pytest.approx(100, abs=0.1)
    assert plan.limited_by is None
    assert plan.n_reference_chunks == 6


def test_chunk_size_is_capped_by_the_reference_and_says_so(caplog):
    plan = plan_chunk_size(3_600, 9, 12_000, min_positives_per_chunk=100, min_reference_chunks=3)
    assert plan.chunk_size == 1_200
    assert plan.limited_by == "reference_rows"
    assert "fewer than the 100 wanted" in caplog.text


def test_chunk_size_bounds_and_errors():
    assert plan_chunk_size(100_000, 5_000, 10**6, 10, min_chunk_size=2_000).chunk_size == 2_000
    assert (
        plan_chunk_size(10**6, 100, 10**7, 100, max_chunk_size=50_000).limited_by
        == "max_chunk_size"
    )
    assert plan_chunk_size(10**6, 100, 500, 100).chunk_size == 500
    with pytest.raises(ValueError, match="frauds"):
        plan_chunk_size(1_000, 0, 1_000, 100)


def test_chunk_bounds_append_the_incomplete_chunk():
    assert chunk_bounds(10, 3) == [(0, 3), (3, 6), (6, 10)]
    assert chunk_bounds(9, 3) == [(0, 3), (3, 6), (6, 9)]
    assert chunk_bounds(2, 3) == [(0, 2)]
    assert chunk_bounds(0, 3) == []


def test_chunk_table_counts_labels():
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-01-01", periods=7, freq="h"),
            "is_fraud": [1, 0, 1, np.nan, 1, np.nan, np.nan],
            "label_available": [True, True, True, False, True, False, False],
        }
    )
    table = chunk_table(frame, 3, "timestamp", "is_fraud", "label_available")
    assert table["n_rows"].tolist() == [3, 4]
    assert table["n_labelled"].tolist() == [3, 1]
    assert table["n_positives"].tolist() == [2, 1]
    assert table["chunk_end"].iloc[1] == frame["timestamp"].iloc[6]


# ---- metrics ------------------------------------------------------------------------------------


def test_realized_metrics_match_scikit_learn():
    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.1
    s = rng.random(500) + y * 0.5
    pred = s > 0.9
    out = realized_metrics(
        y, s, pred, ["roc_auc", "average_precision", "precision", "recall", "f1"]
    )
    assert out["roc_auc"] == pytest.approx(roc_auc_score(y, s))
    assert out["average_precision"] == pytest.approx(average_precision_score(y, s))
    tp = (pred & y).sum()
    assert out["precision"] == pytest.approx(tp / pred.sum())
    assert out["recall"] == pytest.approx(tp / y.sum())
    assert out["f1"] == pytest.approx(2 * tp / (pred.sum() + y.sum()))


def test_realized_metrics_without_fraud_are_nan():
    out = realized_metrics(np.zeros(10), np.linspace(0, 1, 10), np.zeros(10), ["roc_auc", "recall"])
    assert math.isnan(out["roc_auc"]) and math.isnan(out["recall"])


def test_expected_ranking_metrics_equal_the_mean_of_realised_metrics_over_label_draws():
    rng = np.random.default_rng(1)
    n, draws = 400, 400
    score = np.round(rng.random(n), 2)  # many ties
    prob = np.where(rng.random(n) < 0.3, 0.0, 0.4 * score**2)
    expected = expected_ranking_metrics(prob, score, n_samples=draws, seed=4)
    aucs, aps = [], []
    for _ in range(draws):
        y = rng.random(n) < prob
        if 0 < y.sum() < n:
            aucs.append(roc_auc_score(y, score))
            aps.append(average_precision_score(y, score))
    for name, values in (("roc_auc", aucs), ("average_precision", aps)):
        tolerance = 4 * np.std(values) * np.sqrt(2 / draws)  # two independent Monte Carlo means
        assert expected[name] == pytest.approx(np.mean(values), abs=tolerance)
        assert expected[f"{name}_std"] == pytest.approx(np.std(values), rel=0.15)


def test_ranking_metrics_with_certain_labels_equal_scikit_learn_with_ties():
    rng = np.random.default_rng(5)
    score = np.round(rng.random(3_000), 2)
    y = (rng.random(3_000) < 0.1 + 0.3 * score).astype(float)
    out = expected_ranking_metrics(y, score, n_samples=10)  # p in {0, 1}: the draws are the labels
    assert out["roc_auc"] == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert out["average_precision"] == pytest.approx(average_precision_score(y, score), abs=1e-12)
    assert out["roc_auc_std"] == 0.0


def test_bootstrap_std_matches_a_resampling_loop():
    rng = np.random.default_rng(6)
    y = rng.random(2_000) < 0.05
    s = rng.random(2_000) + 0.5 * y
    loop = []
    for _ in range(400):
        idx = rng.integers(0, 2_000, 2_000)
        loop.append(average_precision_score(y[idx], s[idx]))
    assert bootstrap_std(y, s, "average_precision", n_boot=400) == pytest.approx(
        np.std(loop), rel=0.15
    )


def test_expected_ranking_metrics_are_deterministic_and_nan_without_positives():
    p = np.linspace(0, 0.2, 300)
    assert expected_ranking_metrics(p, p, 50, seed=3) == expected_ranking_metrics(p, p, 50, seed=3)
    assert math.isnan(expected_ranking_metrics(np.zeros(10), np.ones(10))["roc_auc"])


def test_calibration_summary_of_calibrated_scores():
    rng = np.random.default_rng(2)
    p = rng.beta(0.5, 20, size=50_000)
    y = rng.random(50_000) < p
    summary = calibration_summary(y, p, n_bins=10)
    assert summary["ece"] < 0.005
    assert summary["brier_skill"] > 0
    assert summary["mean_predicted"] == pytest.approx(summary["fraud_rate"], abs=0.002)
    biased = calibration_summary(y, np.clip(p * 2, 0, 1), n_bins=10)
    assert biased["ece"] > 5 * summary["ece"]
    table = reliability_table(y, p, 10)
    assert len(table) == 10 and table["n"].sum() == 50_000


def test_bootstrap_std_shrinks_with_more_frauds():
    rng = np.random.default_rng(3)

    def spread(n: int) -> float:
        y = rng.random(n) < 0.05
        return bootstrap_std(y, rng.random(n) + 0.5 * y, "average_precision", n_boot=100)

    assert spread(20_000) < spread(1_000)


# ---- sources ------------------------------------------------------------------------------------


def _scores(n: int = 10) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "transaction_id": np.arange(n),
            "timestamp": pd.date_range("2024-01-01", periods=n, freq="D"),
            "fraud_probability": np.linspace(0.01, 0.9, n),
            "is_fraud": [0, 1] * (n // 2),
        }
    )


def test_label_batch_keeps_only_labels_older_than_the_delay():
    data = _scores()
    before = data.copy()
    out = label_batch(
        data,
        timestamp="timestamp",
        label="is_fraud",
        label_available="label_available",
        label_delay_days=3,
        as_of=data["timestamp"].max(),
    )
    pd.testing.assert_frame_equal(data, before)  # input untouched
    assert out["label_available"].tolist() == [True] * 7 + [False] * 3
    assert out["is_fraud"].iloc[7:].isna().all()
    assert out["is_fraud"].iloc[:7].tolist() == [0, 1, 0, 1, 0, 1, 0]


def test_label_batch_without_label_column():
    out = label_batch(
        _scores().drop(columns="is_fraud"),
        timestamp="timestamp",
        label="is_fraud",
        label_available="label_available",
        label_delay_days=0,
        as_of=pd.Timestamp("2030-01-01"),
    )
    assert not out["label_available"].any()


def _service_log() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    preds = _scores(6).drop(columns="is_fraud")
    preds["is_fraud_predicted"] = preds["fraud_probability"] > 0.5
    preds["model_version"] = "3"
    preds["scored_at"] = preds["timestamp"] + pd.Timedelta(seconds=1)
    old = preds.iloc[:2].assign(
        model_version="2", scored_at=preds["scored_at"].iloc[:2] - pd.Timedelta("1s")
    )
    rescored = preds.iloc[[1]].assign(
        fraud_probability=0.99, scored_at=preds["scored_at"].iloc[1] + pd.Timedelta("1h")
    )
    log = pd.concat([old, preds, rescored], ignore_index=True)
    labels = pd.DataFrame(
        {
            "transaction_id": [1, 3, 5, 4],
            "is_fraud": [1, 1, 1, 1],
            "received_at": pd.to_datetime(["2024-01-02", "2024-01-05", "2024-01-07", "2024-02-01"]),
        }
    )
    shadow = preds.assign(fraud_probability=0.5, model_version="4")
    return log, labels, shadow


def test_join_service_log_masks_late_and_future_labels_and_joins_the_challenger():
    log, labels, shadow = _service_log()
    out = join_service_log(
        log,
        labels,
        transaction_id="transaction_id",
        timestamp="timestamp",
        label="is_fraud",
        label_available="label_available",
        scored_at="scored_at",
        received_at="received_at",
        model_version="model_version",
        label_delay_days=2,
        as_of="2024-01-06 00:00:01",
        shadow=shadow,
    )
    assert out["transaction_id"].tolist() == [0, 1, 2, 3, 4, 5]  # version 3 only, deduplicated
    assert out.loc[out["transaction_id"] == 1, "fraud_probability"].item() == 0.99  # latest score
    # labels complete for rows scored up to 2024-01-04; labels of 4 and 5 arrive after as_of
    assert out["label_available"].tolist() == [True, True, True, True, False, False]
    assert out["is_fraud"].iloc[:4].tolist() == [0, 1, 0, 1]  # 0 and 2: no chargeback = legit
    assert (out["challenger_probability"] == 0.5).all()


def test_join_service_log_can_leave_unreported_rows_unlabelled():
    log, labels, _ = _service_log()
    out = join_service_log(
        log,
        labels,
        transaction_id="transaction_id",
        timestamp="timestamp",
        label="is_fraud",
        label_available="label_available",
        scored_at="scored_at",
        received_at="received_at",
        model_version="model_version",
        label_delay_days=2,
        as_of="2024-01-10",
        version="2",
        assume_legit_after_delay=False,
    )
    assert out["transaction_id"].tolist() == [0, 1]
    assert out["label_available"].tolist() == [False, True]


def test_service_log_dataset_without_a_store_reads_nothing_and_is_read_only(tmp_path):
    dataset = ServiceLogDataset(url=str(tmp_path / "missing.db"))
    data = dataset.load()  # a SQLite file that is not there: unavailable, nothing created
    assert not data.available and not dataset.exists()
    assert not (tmp_path / "missing.db").exists()
    with pytest.raises(Exception, match="read-only"):
        dataset.save(pd.DataFrame())


def test_service_log_dataset_hides_the_password(tmp_path):
    dataset = ServiceLogDataset(url="postgresql://fraud:s3cret@127.0.0.1:1/db")
    assert "s3cret" not in str(dataset._describe()) and "***" in str(dataset._describe())


# ---- alerts -------------------------------------------------------------------------------------


def _alerts(kind: str, chunks: list[int], trigger: bool = True) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "kind": kind,
            "subject": "amount",
            "chunk_index": pd.array(chunks, dtype="Int64"),
            "chunk_start": pd.Timestamp("2024-01-01"),
            "chunk_end": pd.Timestamp("2024-01-02"),
            "value": np.linspace(0.2, 0.3, len(chunks)),
            "threshold": 0.1,
            "retrain_trigger": trigger,
        }
    )


def test_summarize_alerts_counts_consecutive_chunks():
    table = pd.concat([_alerts("feature_drift", [2, 3, 7]), _alerts("score_drift", [5, 9])])
    summary = {s["kind"]: s for s in alerts.summarize_alerts(table, min_consecutive_chunks=2)}
    assert summary["feature_drift"]["longest_run"] == 2 and summary["feature_drift"]["counts"]
    assert summary["feature_drift"]["first_chunk"] == 2
    assert summary["feature_drift"]["worst_value"] == pytest.approx(0.3)
    assert not summary["score_drift"]["counts"]
    assert "feature_drift: amount above threshold 0.1" in alerts.reason(summary["feature_drift"])
