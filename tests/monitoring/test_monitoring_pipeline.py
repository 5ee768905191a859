"""Unit tests of the monitoring nodes, and the pipeline run end to end on small synthetic data."""

from __future__ import annotations

import html
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from fraud_kedro.monitoring.params import DriftParams, MonitoringParams
from fraud_kedro.pipelines.monitoring import create_pipeline
from fraud_kedro.pipelines.monitoring import nodes as n

from .conftest import DRIFT_FROM, N_ANALYSIS, external_references, make_predictions

PROJECT_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.filterwarnings("error")


class _Kept(MemoryDataset):
    """A memory dataset the runner does not release, to inspect intermediate results."""

    def _release(self) -> None:
        pass


def run_monitoring(
    reference: pd.DataFrame,
    production: pd.DataFrame,
    feature_spec: dict,
    decision_threshold: dict,
    params: dict,
    service_log: object = None,
) -> DataCatalog:
    """Run the monitoring pipeline with Kedro's runner on an in-memory catalog."""
    pipeline = create_pipeline()
    catalog = DataCatalog(
        {
            **{name: _Kept() for name in pipeline.all_outputs()},
            "reference_predictions": MemoryDataset(reference),
            "production_predictions": MemoryDataset(production),
            "monitoring_service_log": MemoryDataset(service_log),
            "feature_spec": MemoryDataset(feature_spec),
            "decision_threshold": MemoryDataset(decision_threshold),
            # the one label delay is split.delay_days; the monitoring keys are the rest
            "params:monitoring": MemoryDataset(  # what Kedro builds from the type hint
                MonitoringParams(**{k: v for k, v in params.items() if k != "label_delay_days"})
            ),
            "params:split.delay_days": MemoryDataset(params.get("label_delay_days", 7)),
        }
    )
    SequentialRunner().run(pipeline, catalog)
    return catalog


@pytest.fixture(scope="module")
def prepared(reference_predictions, production_predictions, feature_spec, decision_threshold):
    params = MonitoringParams(
        label_delay_days=2,
        chunking={"min_positives_per_chunk": 50, "min_chunk_size": 200},
        performance={"ap_samples": 30},
    )
    reference = n.prepare_reference(reference_predictions, feature_spec, decision_threshold, params)
    analysis = n.build_analysis_table(
        production_predictions, None, feature_spec, decision_threshold, params
    )
    plan, chunks = n.plan_chunks(reference, analysis, params)
    return {"params": params, "reference": reference, "analysis": analysis, "plan": plan,
            "chunks": chunks}  # fmt: skip


# ---- pipeline structure -------------------------------------------------------------------------


def test_every_node_is_named_and_tagged():
    pipeline = create_pipeline()
    assert all(node.name.endswith("_node") for node in pipeline.nodes)
    assert all("monitoring" in node.tags for node in pipeline.nodes)
    assert pipeline.inputs() == {
        "reference_predictions",
        "production_predictions",
        "monitoring_service_log",
        "feature_spec",
        "decision_threshold",
        "params:monitoring",
        "params:split.delay_days",
    }


def test_reports_are_versioned_catalog_entries_logged_to_mlflow():
    catalog = yaml.safe_load((PROJECT_ROOT / "conf/base/catalog_monitoring.yml").read_text())
    persisted = {
        "monitoring_performance", "monitoring_drift", "monitoring_data_quality",
        "monitoring_alerts", "monitoring_chunks", "monitoring_reliability",
        "monitoring_champion_challenger", "monitoring_chunk_plan", "monitoring_calibration",
        "retrain_decision",
        "monitoring_performance_plot", "monitoring_drift_plot", "monitoring_calibration_plot",
        "monitoring_report",
    }  # fmt: skip
    assert persisted <= create_pipeline().all_outputs()
    for name in persisted:
        entry = catalog[name]
        assert entry["type"] == "fraud_kedro.monitoring.datasets.VersionedMlflowArtifactDataset"
        assert entry["versioned"] is True, name
        assert entry["dataset"]["filepath"].startswith("data/08_reporting/"), name
    assert catalog["monitoring_metrics"]["type"].endswith("MlflowMetricsHistoryDataset")
    assert catalog["monitoring_performance_plot"]["dataset"]["type"] == "plotly.HTMLDataset"


# ---- nodes --------------------------------------------------------------------------------------


def test_prepare_reference_sorts_without_mutating(
    reference_predictions, feature_spec, decision_threshold
):
    shuffled = reference_predictions.sample(frac=1.0, random_state=0)
    before = shuffled.copy()
    out = n.prepare_reference(shuffled, feature_spec, decision_threshold, {})
    pd.testing.assert_frame_equal(shuffled, before)
    assert out["timestamp"].is_monotonic_increasing
    assert out["is_fraud_predicted"].isin([0, 1]).all() and out["label_available"].all()
    with pytest.raises(ValueError, match="lacks column"):
        n.prepare_reference(shuffled.drop(columns="x1"), feature_spec, decision_threshold, {})


def test_build_analysis_table_masks_labels_younger_than_the_delay(prepared):
    analysis = prepared["analysis"]
    cutoff = analysis["timestamp"].max() - pd.Timedelta(days=2)
    assert analysis["label_available"].equals(analysis["timestamp"] <= cutoff)
    assert analysis.loc[~analysis["label_available"], "is_fraud"].isna().all()


def test_build_analysis_table_from_the_service_log(
    production_predictions, feature_spec, decision_threshold
):
    from fraud_kedro.io.service_log import ServiceLogData

    log = production_predictions.drop(columns="is_fraud")
    log = log.assign(model_version="7", scored_at=log["timestamp"])
    frauds = production_predictions[production_predictions["is_fraud"] == 1]
    labels = pd.DataFrame(
        {
            "transaction_id": frauds["transaction_id"],
            "is_fraud": 1,
            "received_at": frauds["timestamp"] + pd.Timedelta(days=1),
        }
    )
    served = ServiceLogData("test", True, log, log.iloc[0:0], labels)
    as_of = str(production_predictions["timestamp"].max())
    params = {"source": "service_log", "label_delay_days": 2, "as_of": as_of}
    table = n.build_analysis_table(None, served, feature_spec, decision_threshold, params)
    batch = n.build_analysis_table(
        production_predictions, None, feature_spec, decision_threshold,
        {"label_delay_days": 2, "as_of": as_of},
    )  # fmt: skip
    # frauds reported, silence = legitimate after the delay: the same labels as the batch source
    np.testing.assert_array_equal(table["label_available"], batch["label_available"])
    np.testing.assert_array_equal(table["is_fraud"].fillna(-1), batch["is_fraud"].fillna(-1))
    with pytest.raises(ValueError, match="no service log"):
        n.build_analysis_table(None, None, feature_spec, decision_threshold, params)
    with pytest.raises(ValueError, match="no service log at nowhere"):
        unavailable = ServiceLogData("nowhere", available=False)
        n.build_analysis_table(None, unavailable, feature_spec, decision_threshold, params)


def test_plan_chunks(prepared):
    plan, chunks = prepared["plan"], prepared["chunks"]
    rate = prepared["reference"]["is_fraud"].mean()
    assert plan["chunk_size"] == int(np.ceil(50 / rate))
    analysis = chunks[chunks["period"] == "analysis"]
    assert analysis["n_rows"].sum() == N_ANALYSIS
    assert (analysis["n_labelled"] <= analysis["n_rows"]).all()


def test_performance_nodes(prepared):
    p, ref, ana = prepared["params"], prepared["reference"], prepared["analysis"]
    estimated, info = n.estimate_monitoring_performance(ref, ana, prepared["plan"], p)
    assert isinstance(info["recalibrated"], bool)
    realized = n.calculate_realized_performance(ref, ana, prepared["chunks"], p)
    strict = replace(p, performance=replace(p.performance, min_acceptable={"roc_auc": 0.99}))
    table = n.assess_performance(estimated, realized, prepared["chunks"], strict)
    analysis = table[table["period"] == "analysis"]
    assert len(analysis) == 5 * prepared["plan"]["n_analysis_chunks"]
    # the last chunks are not labelled yet: no realised metric there
    last = analysis[analysis["chunk_index"] == analysis["chunk_index"].max()]
    assert last["realized"].isna().all() and last["estimated"].notna().all()
    auc = analysis[analysis["metric"] == "roc_auc"]
    assert auc["alert_estimated"].all()  # every chunk is below a 0.99 minimum
    assert not table[table["period"] == "reference"]["alert_estimated"].any()
    assert (
        auc["realized"].dropna() - auc["estimated"][auc["realized"].notna()]
    ).abs().mean() < 0.05


def test_drift_quality_and_calibration_nodes(prepared, feature_spec):
    p, ref, ana = prepared["params"], prepared["reference"], prepared["analysis"]
    params = replace(p, drift=DriftParams(seasonal_features=["hour"]))
    drift = n.calculate_drift(ref, ana, feature_spec, prepared["plan"], prepared["chunks"], params)
    uni = drift[drift["kind"] == "univariate"]
    assert set(uni["column"]) == {"x1", "x2", "amount", "hour", "fraud_probability"}
    assert set(uni.loc[uni["is_key"], "column"]) == {"x1", "x2", "amount"}
    assert set(uni.loc[uni["is_score"], "column"]) == {"fraud_probability"}
    assert (drift["kind"] == "multivariate").any() and drift["chunk_end"].notna().all()
    quality = n.check_data_quality(ref, ana, feature_spec, prepared["plan"], prepared["chunks"], p)
    assert set(quality["check"]) == {"missing_rate", "out_of_range_rate"}
    report, reliability = n.assess_calibration(ref, ana, {"recalibrated": False}, p)
    assert report["reference"]["ece"] < 0.02  # the synthetic scores are calibrated
    assert set(reliability["period"]) == {"reference", "analysis_labelled"}
    json.dumps(report)


def test_champion_challenger(reference_predictions, feature_spec, decision_threshold):
    params = MonitoringParams(label_delay_days=2, chunking={"min_positives_per_chunk": 50})
    production = make_predictions(N_ANALYSIS, seed=5, start="2024-01-10", challenger=True)
    reference = n.prepare_reference(reference_predictions, feature_spec, decision_threshold, params)
    analysis = n.build_analysis_table(production, None, feature_spec, decision_threshold, params)
    plan, _ = n.plan_chunks(reference, analysis, params)
    table, summary = n.compare_champion_challenger(reference, analysis, plan, params)
    assert summary["available"] and summary["challenger_estimator_fitted_on"] == "labelled analysis"
    assert summary["challenger_better_realized"] == {"roc_auc": False, "average_precision": False}
    assert table[["champion_estimated", "challenger_estimated"]].notna().all().all()
    labelled = table.dropna(subset=["champion_realized"])
    assert (labelled["champion_realized"] > labelled["challenger_realized"]).mean() > 0.5
    empty, none = n.compare_champion_challenger(
        reference, analysis.drop(columns="challenger_probability"), plan, params
    )
    assert empty.empty and none == {"available": False}


def test_alerts_decision_and_metrics():
    chunks = pd.DataFrame(
        {
            "period": "analysis",
            "chunk_index": [0, 1, 2],
            "chunk_start": pd.date_range("2024-01-01", periods=3),
            "chunk_end": pd.date_range("2024-01-02", periods=3),
            "n_rows": 100,
            "n_labelled": [100, 100, 0],
        }
    )
    performance = pd.DataFrame(
        {
            "period": "analysis", "chunk_index": [0, 1, 2], "chunk_start": chunks["chunk_start"],
            "chunk_end": chunks["chunk_end"], "metric": "roc_auc", "estimated": [0.9, 0.7, 0.9],
            "realized": [0.88, np.nan, np.nan], "min_acceptable": 0.8, "band_lower": 0.85,
            "alert_estimated": [False, True, False], "alert_realized": False,
            "alert_band_estimated": [False, True, False], "alert_band_realized": False,
        }
    )  # fmt: skip
    drift = pd.DataFrame(
        {
            "period": "analysis", "chunk_index": [0, 1, 2, 2],
            "chunk_start": pd.Timestamp("2024-01-01"), "chunk_end": pd.Timestamp("2024-01-02"),
            "kind": "univariate",
            "column": ["amount", "amount", "hour", "fraud_probability"], "method": "jensen_shannon",
            "value": [0.05, 0.2, 0.3, 0.15], "threshold": 0.1, "alert": [False, True, True, True],
            "is_key": [True, True, False, False], "is_score": [False, False, False, True],
        }
    )  # fmt: skip
    quality = pd.DataFrame(
        {
            "period": "analysis", "chunk_index": [0], "chunk_start": pd.Timestamp("2024-01-01"),
            "chunk_end": pd.Timestamp("2024-01-02"), "column": ["amount"], "check": "missing_rate",
            "value": [0.5], "threshold": 0.001, "alert": [True],
        }
    )  # fmt: skip
    calibration = {"reference": {"ece": 0.05, "brier": 0.01}, "max_ece": 0.02}
    alerts = n.collect_monitoring_alerts(performance, drift, quality, calibration, MonitoringParams())
    assert set(alerts["kind"]) == {
        "performance_estimated", "performance_band_estimated", "feature_drift", "score_drift",
        "data_quality", "calibration",
    }  # fmt: skip
    assert "hour" not in set(alerts["subject"])  # not a key feature
    plan = {"chunk_size": 100, "reference_fraud_rate": 0.01}
    decision = n.decide_retraining(alerts, plan, chunks, calibration, {"available": False}, {})
    assert decision["retrain"] is True
    assert decision["first_alert_chunk"] == 1
    kinds = {a["kind"] for a in decision["alerts"] if a["retrain_trigger"]}
    assert kinds == {"performance_estimated", "feature_drift", "score_drift"}
    assert len(decision["reasons"]) == 3
    json.dumps(decision)
    quiet = n.decide_retraining(
        alerts, plan, chunks, calibration, {}, {"alerts": {"retrain_on": ["data_quality"]}}
    )
    assert quiet["retrain"] and quiet["first_alert_chunk"] == 0
    metrics = n.build_monitoring_metrics(performance, drift, calibration, plan, decision)
    assert [m["step"] for m in metrics["estimated_roc_auc"]] == [0, 1, 2]
    assert metrics["retrain"] == [{"value": 1.0, "step": 0}]
    assert "realized_roc_auc" in metrics and len(metrics["realized_roc_auc"]) == 1


def test_plots_are_plotly_figures(prepared):
    p, ref, ana = prepared["params"], prepared["reference"], prepared["analysis"]
    _, reliability = n.assess_calibration(ref, ana, {}, p)
    assert isinstance(n.plot_calibration(reliability), go.Figure)


# ---- the whole pipeline -------------------------------------------------------------------------


def test_pipeline_without_drift_raises_no_alert(
    reference_predictions, production_predictions, feature_spec, decision_threshold, params
):
    catalog = run_monitoring(
        reference_predictions, production_predictions, feature_spec, decision_threshold, params
    )
    decision = catalog.load("retrain_decision")
    assert decision["retrain"] is False, decision["reasons"]
    assert decision["reasons"] == []
    assert decision["source"] == "batch" and decision["generated_at"]
    assert not catalog.load("monitoring_alerts")["retrain_trigger"].any()
    assert isinstance(catalog.load("monitoring_performance_plot"), go.Figure)
    assert isinstance(catalog.load("monitoring_drift_plot"), go.Figure)
    assert catalog.load("monitoring_metrics")["retrain"] == [{"value": 0.0, "step": 0}]
    json.dumps(decision)


def test_pipeline_detects_drift_within_two_chunks(
    reference_predictions, drifted_predictions, feature_spec, decision_threshold, params
):
    catalog = run_monitoring(
        reference_predictions, drifted_predictions, feature_spec, decision_threshold, params
    )
    decision = catalog.load("retrain_decision")
    drift_chunk = DRIFT_FROM // decision["chunk_size"]
    assert decision["retrain"] is True
    assert drift_chunk <= decision["first_alert_chunk"] <= drift_chunk + 2
    kinds = {a["kind"] for a in decision["alerts"] if a["retrain_trigger"]}
    assert {"feature_drift", "score_drift"} <= kinds
    drifted = {a["subject"] for a in decision["alerts"] if a["kind"] == "feature_drift"}
    assert drifted == {"x1"}
    # the run's index.html: decision with reasons, alerts, three plots, nothing fetched online
    page = catalog.load("monitoring_report")
    assert "RETRAIN recommended" in page and '<table id="alerts">' in page
    assert all(html.escape(reason) in page for reason in decision["reasons"])
    assert [f">{s}</h2>" in page for s in ("Performance", "Drift", "Calibration")] == [True] * 3
    assert page.count('class="plotly-graph-div"') == 3
    assert len(page) > 3_000_000, "plotly.js is inlined"
    assert external_references(page) == []


def test_service_log_source_reads_the_real_state_store(tmp_path, feature_spec, decision_threshold):
    from datetime import datetime
    from types import SimpleNamespace

    from fraud_kedro.io.service_log import ServiceLogDataset
    from fraud_kedro.store import ModelRef, ScoredBatch, open_store

    data = make_predictions(400, seed=9, start="2024-03-01", challenger=True)
    features = feature_spec["features"]
    rows = [
        SimpleNamespace(
            transaction_id=int(r.transaction_id), timestamp=r.timestamp.to_pydatetime(),
            ts_us=int(r.timestamp.value // 1_000), customer_id=int(r.customer_id),
            terminal_id=int(r.terminal_id), customer_key=str(r.customer_id),
            terminal_key=str(r.terminal_id), amount=float(r.amount),
        )
        for r in data.itertuples()
    ]  # fmt: skip
    dtypes = tuple("int64" if f == "hour" else "float64" for f in features)
    champion = ModelRef("fraud_detector", "3", "models:/fraud_detector/3", tuple(features), dtypes)
    challenger = ModelRef(
        "fraud_detector", "4", "models:/fraud_detector/4", tuple(features), dtypes
    )
    db = tmp_path / "serving_state.db"
    store = open_store(db)
    x = data[features].to_numpy(dtype=np.float64)
    champion_scores = ScoredBatch(
        rows, x, data["fraud_probability"].to_numpy(), data["is_fraud_predicted"].to_numpy()
    )
    store.record_scores(champion_scores, champion, datetime(2024, 3, 2))
    challenger_scores = ScoredBatch(rows, x, data["challenger_probability"].to_numpy(), np.zeros(len(rows)))
    store.record_scores(challenger_scores, challenger, datetime(2024, 3, 2), role="shadow")
    frauds = data[data["is_fraud"] == 1]
    store.record_labels(
        [SimpleNamespace(transaction_id=int(t), is_fraud=1) for t in frauds["transaction_id"]],
        datetime(2024, 3, 20),
    )
    store.close()

    log = ServiceLogDataset(url=f"sqlite:///{db}").load()
    params = {"source": "service_log", "label_delay_days": 7}
    table = n.build_analysis_table(None, log, feature_spec, decision_threshold, params)
    assert len(table) == 400 and table["label_available"].all()  # scored 18 days before as_of
    np.testing.assert_array_equal(table["is_fraud"].to_numpy(), data["is_fraud"].to_numpy())
    np.testing.assert_allclose(table["x1"], data["x1"])
    np.testing.assert_allclose(table["challenger_probability"], data["challenger_probability"])
