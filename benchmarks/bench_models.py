"""Candidate models on the same test window over several seeds: the spread, not one lucky number.

Usage (after ``make run``, from the project root)::

    .venv/bin/python benchmarks/bench_models.py [--seeds 0 1 2] [--env base]

Loads ``train_set``, ``test_set``, ``feature_spec`` and ``tuning_results`` through the Kedro
catalog, refits every candidate with its tuned hyperparameters and each seed on the training
window, and prints test ROC AUC, average precision and Card Precision@100 as mean ± std and
min..max over the seeds, with the fit time.
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")

from kedro.framework.session import KedroSession  # noqa: E402
from kedro.framework.startup import bootstrap_project  # noqa: E402

from fraud_kedro.features import FeatureParams  # noqa: E402
from fraud_kedro.metrics import card_precision_at_k, classification_metrics  # noqa: E402
from fraud_kedro.models import build_estimator, limit_threads  # noqa: E402


def main() -> None:
    """Refit each candidate per seed and print the spread of its test metrics."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--env", default=None)
    args = parser.parse_args()
    project = Path.cwd()
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=args.env) as session:
        catalog = session.load_context().catalog
        train, test = catalog.load("train_set"), catalog.load("test_set")
        spec, tuning = catalog.load("feature_spec"), catalog.load("tuning_results")
    cols = FeatureParams(**spec["params"]).columns
    X_train = train[spec["features"]].to_numpy(float)  # noqa: N806
    X_test = test[spec["features"]].to_numpy(float)  # noqa: N806
    y_train, y_test = train[cols.label].to_numpy(), test[cols.label].to_numpy()
    print(
        f"train {len(y_train):,} rows ({y_train.sum()} frauds), "
        f"test {len(y_test):,} rows ({y_test.sum()} frauds)"
    )
    rows = []
    for kind, result in tuning["candidates"].items():
        for seed in args.seeds:
            started = time.perf_counter()
            with limit_threads(1):
                model = build_estimator(kind, result["best_params"], seed).fit(X_train, y_train)
                proba = model.predict_proba(X_test)[:, 1]
            m = classification_metrics(y_test, proba, 0.5)
            cp = card_precision_at_k(
                test.assign(score=proba), 100, cols.customer_id, cols.timestamp, cols.label, "score"
            )
            rows.append(
                {
                    "model": kind,
                    "seed": seed,
                    "roc_auc": m["test_roc_auc"],
                    "average_precision": m["test_average_precision"],
                    "cp_at_100": cp,
                    "fit_seconds": time.perf_counter() - started,
                }
            )
    table = pd.DataFrame(rows)
    for kind, part in table.groupby("model", sort=False):
        cells = []
        for metric in ("roc_auc", "average_precision", "cp_at_100"):
            v = part[metric].to_numpy()
            cells.append(
                f"{metric} {v.mean():.4f} ± {v.std(ddof=1) if len(v) > 1 else 0:.4f} "
                f"[{v.min():.4f}..{v.max():.4f}]"
            )
        print(f"{kind:24s} " + "  ".join(cells) + f"  fit {np.mean(part['fit_seconds']):.1f} s")


if __name__ == "__main__":
    main()
