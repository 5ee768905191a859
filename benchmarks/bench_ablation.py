"""Feature-group ablation: validation AP (prequential folds), test AP, ROC AUC, CP@100 per group.

Usage (after ``make run``, from the project root; nice it on a shared machine)::

    nice -n 10 .venv/bin/python benchmarks/bench_ablation.py [--seeds 0 1 2] \
        [--groups none recency amount_zscore card_terminal all]

For each feature set (the classic features plus the named ``features.extra_features`` group; ``all``
= every group) it rebuilds the model input table with the one ``compute_features``, splits it as
the pipeline does, and for every seed fits the selected candidate (from ``tuning_results``, its
tuned hyperparameters) on the tuning folds (validation AP, early stopping as in tuning) and on the
training window (test metrics, uncalibrated: Platt scaling is monotone and changes none of them).
It prints mean +- std over the seeds. A group is worth keeping when its validation AP gain over
``none`` is beyond the seed spread.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from kedro.framework.session import KedroSession  # noqa: E402
from kedro.framework.startup import bootstrap_project  # noqa: E402

from fraud_kedro.features import EXTRA_GROUPS, FeatureParams  # noqa: E402
from fraud_kedro.metrics import card_precision_at_k, classification_metrics  # noqa: E402
from fraud_kedro.models import build_estimator, limit_threads  # noqa: E402
from fraud_kedro.pipelines.data_processing.nodes import (  # noqa: E402
    build_model_input_table,
    make_feature_spec,
)
from fraud_kedro.pipelines.data_science.nodes import _sample_negatives, split_data  # noqa: E402
from fraud_kedro.selection import fit_on_fold  # noqa: E402
from fraud_kedro.split import SplitParams, prequential_folds  # noqa: E402

logger = logging.getLogger("bench_ablation")


def evaluate(transactions: pd.DataFrame, params: dict, groups: tuple[str, ...], kind: str,
             best: dict, seeds: list[int]) -> dict[str, float]:
    """Metrics of one feature set over the seeds (mean and std)."""
    feature_params = FeatureParams(**{**params["features"], "extra_features": list(groups)})
    table = build_model_input_table(transactions, feature_params)
    spec = make_feature_spec(feature_params)
    history, train, test, _, info = split_data(table, SplitParams(**params["split"]), feature_params)
    features, tuning = spec["features"], params["model"]["tuning"]
    folds = prequential_folds(history["timestamp"], pd.Timestamp(info["train_start"]),
                              SplitParams(**params["split"]), int(tuning["n_folds"]))
    X, y = history[features].to_numpy(np.float64), history["is_fraud"].to_numpy()  # noqa: N806
    x_train, y_train = train[features].to_numpy(np.float64), train["is_fraud"].to_numpy()
    x_test, y_test = test[features].to_numpy(np.float64), test["is_fraud"].to_numpy()
    rows: dict[str, list[float]] = {k: [] for k in ("val_ap", "test_ap", "test_auc", "cp100",
                                                    "s2_ap")}
    s2 = test["fraud_scenario"].isin([0, 2]).to_numpy() if "fraud_scenario" in test else None
    for seed in seeds:
        rng = np.random.default_rng(seed)
        fold_data = []
        for fit_rows, val_rows in folds:
            keep = _sample_negatives(y[fit_rows], tuning["negative_sample_rate"], rng)
            fold_data.append((fit_rows[keep], val_rows))
        with limit_threads(params["model"].get("omp_threads")):
            rows["val_ap"].append(float(np.mean([
                fit_on_fold(kind, best, seed, X, y, fold, None)[1] for fold in fold_data])))
            model = build_estimator(kind, best, seed).fit(x_train, y_train)
            proba = model.predict_proba(x_test)[:, 1]
        m = classification_metrics(y_test, proba, 0.5)
        rows["test_ap"].append(m["test_average_precision"])
        rows["test_auc"].append(m["test_roc_auc"])
        rows["cp100"].append(card_precision_at_k(test.assign(score=proba), 100, "customer_id",
                                                 "timestamp", "is_fraud", "score"))
        if s2 is not None:
            rows["s2_ap"].append(classification_metrics(y_test[s2], proba[s2], 0.5)[
                "test_average_precision"])
    out = {"features": len(features)}
    for name, values in rows.items():
        if values:
            out[name] = float(np.mean(values))
            out[f"{name}_std"] = float(np.std(values))
    return out


def main() -> None:
    """Run the ablation and print one line per feature set, then a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--groups", nargs="+", default=["none", *EXTRA_GROUPS, "all"])
    parser.add_argument("--kind", default=None, help="candidate (default: the selected one)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    project = Path.cwd()
    bootstrap_project(project)
    with KedroSession.create(project_path=project) as session:
        context = session.load_context()
        params = context.params
        transactions = context.catalog.load("validated_transactions")
    tuning = json.loads(Path("data/06_models/tuning_results.json").read_text())
    kind = args.kind or tuning["selected"]
    best = tuning["candidates"][kind]["best_params"]
    results = {}
    for group in args.groups:
        groups = () if group == "none" else EXTRA_GROUPS if group == "all" else (group,)
        started = time.perf_counter()
        results[group] = evaluate(transactions, params, groups, kind, best, args.seeds)
        print(f"{group}: {json.dumps(results[group])} ({time.perf_counter() - started:.0f} s)",  # noqa: T201
              flush=True)
    base = results.get("none", {}).get("val_ap")
    print(f"\n{kind}, seeds {args.seeds}\n")  # noqa: T201
    print("| feature group | features | validation AP | gain vs none | test AP | ROC AUC | "  # noqa: T201
          "CP@100 | scenario 2 AP |")
    print("|---|---|---|---|---|---|---|---|")  # noqa: T201
    for group, r in results.items():
        gain = f"{r['val_ap'] - base:+.4f}" if base is not None else "-"
        print(f"| {group} | {r['features']} | {r['val_ap']:.4f} ± {r['val_ap_std']:.4f} | {gain} | "  # noqa: T201
              f"{r['test_ap']:.4f} ± {r['test_ap_std']:.4f} | {r['test_auc']:.4f} ± "
              f"{r['test_auc_std']:.4f} | {r['cp100']:.4f} ± {r['cp100_std']:.4f} | "
              f"{r.get('s2_ap', float('nan')):.4f} ± {r.get('s2_ap_std', float('nan')):.4f} |")


if __name__ == "__main__":
    main()
