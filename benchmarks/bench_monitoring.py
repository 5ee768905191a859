"""Accuracy and speed benchmark of the monitoring pipeline on simulated data.

Usage::

    .venv/bin/python benchmarks/bench_monitoring.py [--rows 1000000] [--skip-speed]
        [--reference full|project]

What it does (prints every number; nothing is written to the project):

1. Simulates the default world (conf/base/parameters_simulation.yml) twice, with the drift
   scenario on and off (it starts on ``simulation.drift.start_day``; days before it are identical),
   and builds the project's point-in-time features.
2. Splits it with the project's ``split`` parameters (train 21 d, label delay 7 d, test 7 d,
   production 56 d) and trains a quick seeded ``HistGradientBoostingClassifier`` on the training
   window (the project's tuned model is not needed to judge the monitoring). The decision threshold
   is the Bayes-optimal one for the project's costs (review / missed fraud). The reference is the
   test window (``--reference full``, default) or the project's test set, which drops cards known
   to be compromised (``--reference project``).
3. Speed: the whole monitoring pipeline (Kedro runner, in-memory catalog, conf/base parameters) on
   ``--rows`` logged predictions of a bigger world, timed cold (NannyML's import included).
4. Accuracy: per chunk, CBPE's estimate against the realised metric computed with every label
   (the simulator knows them all), beside the sampling-noise floor (bootstrap standard deviation
   of the realised metric). Also NannyML's own AP estimate (biased low on small chunks) and the
   effect of the chunk size.
5. Alerts: the retraining decision with and without drift, and how many chunks after the drift's
   start the first alert came.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402
from kedro.framework.hooks import hook_impl  # noqa: E402
from kedro.framework.hooks.manager import _create_hook_manager  # noqa: E402
from kedro.io import DataCatalog, MemoryDataset  # noqa: E402
from kedro.runner import SequentialRunner  # noqa: E402
from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: E402
from sklearn.metrics import average_precision_score, roc_auc_score  # noqa: E402

from fraud_kedro.features import FeatureParams, compute_features, feature_names  # noqa: E402
from fraud_kedro.monitoring import estimator  # noqa: E402
from fraud_kedro.monitoring.chunk_metrics import bootstrap_std  # noqa: E402
from fraud_kedro.monitoring.chunking import chunk_bounds, plan_chunk_size  # noqa: E402
from fraud_kedro.pipelines.data_science.nodes import split_data  # noqa: E402
from fraud_kedro.pipelines.monitoring import create_pipeline  # noqa: E402
from fraud_kedro.simulation import SimulationParams  # noqa: E402
from fraud_kedro.simulation import simulate as run_simulator  # noqa: E402
from fraud_kedro.split import SplitParams, split_windows  # noqa: E402

CONF = Path(__file__).resolve().parents[1] / "conf" / "base"
METRICS = ("roc_auc", "average_precision")
SEED = 0


def _conf(name: str) -> dict:
    return yaml.safe_load((CONF / name).read_text())


class _Kept(MemoryDataset):
    def _release(self) -> None:
        pass


class _NodeTimer:
    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self._start = 0.0

    @hook_impl
    def before_node_run(self, node: Any) -> None:
        self._start = time.perf_counter()

    @hook_impl
    def after_node_run(self, node: Any) -> None:
        self.times[node.name] = time.perf_counter() - self._start


# ------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------


def simulate(overrides: dict) -> pd.DataFrame:
    """Simulated transactions with the project's features and labels."""
    params = _conf("parameters_simulation.yml")["simulation"]
    params = {**params, **overrides}
    raw = run_simulator(SimulationParams(**params))
    features = compute_features(raw, FeatureParams(**_features_conf()))
    return pd.concat([features, raw[["is_fraud", "fraud_scenario"]].reset_index(drop=True)], axis=1)


def _features_conf() -> dict:
    return _conf("parameters_data_processing.yml")["features"]


def split(table: pd.DataFrame, reference: str) -> tuple[pd.DataFrame, ...]:
    """Train window, reference (test window) and production period, as the project splits."""
    split_params = _conf("parameters_data_science.yml")["split"]
    _, train, test, production, _ = split_data(
        table, SplitParams(**split_params), FeatureParams(**_features_conf())
    )
    if reference == "full":
        windows = split_windows(table["timestamp"], SplitParams(**split_params))
        ts = table["timestamp"]
        test = table[(ts >= windows["test_start"]) & (ts < windows["test_end"])]
    return train, test.reset_index(drop=True), production


def train_model(train: pd.DataFrame, features: list[str]) -> HistGradientBoostingClassifier:
    """A quick seeded gradient-boosting model (probabilities close to calibrated)."""
    model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, random_state=SEED)
    return model.fit(train[features], train["is_fraud"])


def score(table: pd.DataFrame, model: Any, features: list[str], threshold: float) -> pd.DataFrame:
    """The schema of reference_predictions / production_predictions."""
    proba = model.predict_proba(table[features])[:, 1]
    return table.assign(fraud_probability=proba, is_fraud_predicted=proba >= threshold)


def run_pipeline(
    reference: pd.DataFrame,
    production: pd.DataFrame,
    features: list[str],
    threshold: float,
    params: dict,
) -> tuple[DataCatalog, float, dict[str, float]]:
    """Run the monitoring pipeline on an in-memory catalog; return it, wall time, node times."""
    pipeline = create_pipeline()
    catalog = DataCatalog(
        {
            **{name: _Kept() for name in pipeline.all_outputs()},
            "reference_predictions": MemoryDataset(reference, copy_mode="assign"),
            "production_predictions": MemoryDataset(production, copy_mode="assign"),
            "monitoring_service_log": MemoryDataset(None),
            "feature_spec": MemoryDataset({"features": features}),
            "decision_threshold": MemoryDataset({"threshold": threshold}),
            "params:monitoring": MemoryDataset(params),
        }
    )
    timer = _NodeTimer()
    hooks = _create_hook_manager()
    hooks.register(timer)
    started = time.perf_counter()
    SequentialRunner().run(pipeline, catalog, hook_manager=hooks)
    return catalog, time.perf_counter() - started, timer.times


# ------------------------------------------------------------------------------------------------
# measurements
# ------------------------------------------------------------------------------------------------


def chunk_accuracy(
    production: pd.DataFrame, performance: pd.DataFrame, drift_start: pd.Timestamp | None
) -> pd.DataFrame:
    """Per analysis chunk: estimate, realised metric (all labels), bootstrap floor."""
    prod = production.sort_values(["timestamp", "transaction_id"], kind="stable")
    prod = prod.reset_index(drop=True)
    y = prod["is_fraud"].to_numpy()
    s = prod["fraud_probability"].to_numpy()
    rows = []
    perf = performance[performance["period"] == "analysis"]
    for metric in METRICS:
        fn = roc_auc_score if metric == "roc_auc" else average_precision_score
        for r in perf[perf["metric"] == metric].itertuples(index=False):
            ys, ss = y[r.start_index : r.end_index], s[r.start_index : r.end_index]
            rows.append(
                {
                    "metric": metric,
                    "chunk_index": r.chunk_index,
                    "drifted": drift_start is not None and pd.Timestamp(r.chunk_end) >= drift_start,
                    "estimated": r.estimated,
                    "nannyml": r.backend_estimate,
                    "realized": fn(ys, ss),
                    "floor": bootstrap_std(ys, ss, metric, n_boot=100, seed=int(r.chunk_index)),
                    "positives": int(ys.sum()),
                }
            )
    table = pd.DataFrame(rows)
    table["error"] = (table["estimated"] - table["realized"]).abs()
    table["error_nannyml"] = (table["nannyml"] - table["realized"]).abs()
    return table


def print_accuracy(name: str, acc: pd.DataFrame) -> None:
    """Mean / max absolute error beside the noise floor, per metric (and drift state)."""
    print(f"\n  {name}: CBPE estimate vs realised metric per chunk (all labels)")
    print(
        "    metric             chunks  frauds/chunk  mean|err|  max|err|  floor(bootstrap sd)"
        "  mean/floor  bias      NannyML-AP mean|err|  bias"
    )
    groups = [("", acc)] if not acc["drifted"].any() else [
        (" pre-drift", acc[~acc["drifted"]]), (" post-drift", acc[acc["drifted"]])
    ]  # fmt: skip
    for label, part in groups:
        for metric in METRICS:
            m = part[part["metric"] == metric]
            if m.empty:
                continue
            bias = (m["estimated"] - m["realized"]).mean()
            extra = ""
            if metric == "average_precision":
                nb = (m["nannyml"] - m["realized"]).mean()
                extra = f"  {m['error_nannyml'].mean():9.4f}             {nb:+.4f}"
            print(
                f"    {metric + label:<19}{len(m):6d}  {m['positives'].mean():12.0f}  "
                f"{m['error'].mean():9.4f}  {m['error'].max():8.4f}  {m['floor'].mean():19.4f}  "
                f"{m['error'].mean() / m['floor'].mean():10.2f}  {bias:+.4f}{extra}"
            )


def chunk_size_study(reference: pd.DataFrame, production: pd.DataFrame, threshold: float) -> None:
    """Bias of NannyML's AP estimate and noise, against frauds per chunk."""
    print("\n  chunk size vs accuracy (no drift): realised AP noise and estimate bias")
    print(
        "    frauds/chunk  rows/chunk  chunks  AP floor  AP mean|err| expected  NannyML  "
        "bias expected  NannyML   AUC mean|err|  AUC floor"
    )
    ref = reference.sort_values(["timestamp", "transaction_id"], kind="stable").reset_index(drop=True)
    prod = production.sort_values(["timestamp", "transaction_id"], kind="stable")
    prod = prod.reset_index(drop=True)
    y, s = prod["is_fraud"].to_numpy(), prod["fraud_probability"].to_numpy()
    for positives in (25, 50, 100, 200):
        plan = plan_chunk_size(len(ref), int(ref["is_fraud"].sum()), len(prod), positives, 500)
        est = estimator.estimate_performance(
            ref, prod, score="fraud_probability", label="is_fraud",
            reference_prediction=(ref["fraud_probability"] >= threshold).to_numpy(),
            analysis_prediction=(prod["fraud_probability"] >= threshold).to_numpy(),
            metrics=list(METRICS), chunk_size=plan.chunk_size, ap_samples=200,
        ).analysis()  # fmt: skip
        out: dict[str, list] = {
            k: [] for k in ("ap", "ap_nml", "ap_real", "ap_floor", "auc", "auc_real", "auc_floor")
        }
        for start, end in chunk_bounds(len(prod), plan.chunk_size):
            rows = est[est["start_index"] == start].set_index("metric")
            ys, ss = y[start:end], s[start:end]
            out["ap"].append(rows.loc["average_precision", "estimated"])
            out["ap_nml"].append(rows.loc["average_precision", "backend_estimate"])
            out["ap_real"].append(average_precision_score(ys, ss))
            out["ap_floor"].append(bootstrap_std(ys, ss, "average_precision", 60, start))
            out["auc"].append(rows.loc["roc_auc", "estimated"])
            out["auc_real"].append(roc_auc_score(ys, ss))
            out["auc_floor"].append(bootstrap_std(ys, ss, "roc_auc", 60, start))
        v = {k: np.asarray(x, dtype=float) for k, x in out.items()}
        print(
            f"    {plan.expected_positives_per_chunk:12.0f}  {plan.chunk_size:10d}  "
            f"{len(v['ap']):6d}  {v['ap_floor'].mean():8.4f}  "
            f"{np.abs(v['ap'] - v['ap_real']).mean():18.4f}  "
            f"{np.abs(v['ap_nml'] - v['ap_real']).mean():7.4f}  "
            f"{(v['ap'] - v['ap_real']).mean():+13.4f}  "
            f"{(v['ap_nml'] - v['ap_real']).mean():+7.4f}  "
            f"{np.abs(v['auc'] - v['auc_real']).mean():13.4f}  {v['auc_floor'].mean():9.4f}"
        )


def print_alerts(name: str, catalog: DataCatalog, drift_chunk: int | None) -> dict:
    """The retraining decision and the first alert of each kind."""
    decision = catalog.load("retrain_decision")
    alerts = catalog.load("monitoring_alerts")
    print(
        f"\n  {name}: retrain = {decision['retrain']}, chunks of {decision['chunk_size']} rows, "
        f"{decision['n_chunks']} analysis chunks ({decision['n_chunks_with_labels']} labelled)"
    )
    if drift_chunk is not None:
        first = decision["first_alert_chunk"]
        delay = None if first is None else first - drift_chunk
        print(
            f"    drift starts in chunk {drift_chunk}; first retraining alert in chunk {first} "
            f"({delay} chunk(s) later)"
        )
    if alerts.empty:
        print("    no alert of any kind")
    for (kind, trigger), group in alerts.groupby(["kind", "retrain_trigger"], sort=False):
        print(
            f"    {'TRIGGER' if trigger else 'info   '} {kind:<27} {len(group):4d} chunk-alerts, "
            f"first chunk {group['chunk_index'].min()}, subjects: "
            f"{', '.join(sorted(set(group['subject'])))[:90]}"
        )
    return decision


# ------------------------------------------------------------------------------------------------


def speed(rows: int, features: list[str], threshold: float, params: dict, reference_kind: str) -> None:
    """The monitoring pipeline on ``rows`` logged predictions, timed cold."""
    sim = _conf("parameters_simulation.yml")["simulation"]
    scale = max(1.0, rows / 500_000)
    started = time.perf_counter()
    table = simulate(
        {
            "n_customers": int(sim["n_customers"] * scale),
            "n_terminals": int(sim["n_terminals"] * scale),
            "seed": 7,
        }
    )
    train, reference, production = split(table, reference_kind)
    model = train_model(train, features)
    reference = score(reference, model, features, threshold)
    production = score(production, model, features, threshold).iloc[:rows].reset_index(drop=True)
    print(
        f"  data: {len(production):,} logged predictions, reference {len(reference):,} rows "
        f"(prepared in {time.perf_counter() - started:.0f} s, not timed)"
    )
    if len(production) < rows:
        print(f"  NOTE: the simulated production period holds only {len(production):,} rows")
    catalog, wall, times = run_pipeline(reference, production, features, threshold, params)
    print(
        f"  monitoring pipeline: {wall:.1f} s wall on {os.cpu_count()} CPU(s) "
        f"(NannyML import included; goal < 120 s)"
    )
    for node, seconds in sorted(times.items(), key=lambda kv: -kv[1])[:6]:
        print(f"    {node:<45} {seconds:6.1f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak memory (max RSS): {peak:.0f} MB")


def main() -> None:
    """Run the benchmark and print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--reference", choices=["full", "project"], default="full")
    args = parser.parse_args()
    for name in ("", "kedro", "fraud_kedro", "nannyml"):
        logging.getLogger(name).setLevel(logging.ERROR)

    features = feature_names(FeatureParams(**_features_conf()))
    costs = _conf("parameters_data_science.yml")["threshold"]
    threshold = costs["cost_alert_review"] / costs["cost_missed_fraud"]
    params = _conf("parameters_monitoring.yml")["monitoring"]
    print(
        f"monitoring benchmark: threshold {threshold:.3f} (Bayes-optimal for the costs), "
        f"reference = {args.reference} test window, HistGradientBoosting seed {SEED}"
    )

    if not args.skip_speed:
        print("\n[speed]")
        speed(args.rows, features, threshold, params, args.reference)

    sim = _conf("parameters_simulation.yml")["simulation"]
    start_day = sim["drift"]["start_day"]
    drift_start = pd.Timestamp(sim["start_date"]) + pd.Timedelta(days=start_day)
    print(
        f"\n[accuracy and alerts] default world; drift scenario from day {start_day} ({drift_start.date()})"
    )
    scenarios = {}
    model = None
    for name, enabled in (("no drift", False), ("drift", True)):
        table = simulate({"drift": {**sim["drift"], "enabled": enabled}})
        train, reference, production = split(table, args.reference)
        if model is None:  # days before the drift are identical: one model for both
            model = train_model(train, features)
        scenarios[name] = (
            score(reference, model, features, threshold),
            score(production, model, features, threshold),
        )

    for name, (reference, production) in scenarios.items():
        catalog, wall, _ = run_pipeline(reference, production, features, threshold, params)
        performance = catalog.load("monitoring_performance")
        chunks = catalog.load("monitoring_chunks")
        start = drift_start if name == "drift" else None
        analysis = chunks[chunks["period"] == "analysis"]
        drift_chunk = None
        if start is not None:
            drift_chunk = int(analysis.loc[analysis["chunk_end"] >= start, "chunk_index"].min())
        print(
            f"\n== {name}: {len(production):,} production rows, reference {len(reference):,} rows "
            f"with {int(reference['is_fraud'].sum())} frauds; pipeline {wall:.1f} s"
        )
        print_accuracy(name, chunk_accuracy(production, performance, start))
        print_alerts(name, catalog, drift_chunk)
        calibration = catalog.load("monitoring_calibration")["reference"]
        print(
            f"    reference calibration: Brier {calibration['brier']:.5f}, "
            f"ECE {calibration['ece']:.5f}, mean score {calibration['mean_predicted']:.5f} "
            f"vs fraud rate {calibration['fraud_rate']:.5f}"
        )

    print("\n[chunk size]")
    chunk_size_study(*scenarios["no drift"], threshold)


if __name__ == "__main__":
    main()
