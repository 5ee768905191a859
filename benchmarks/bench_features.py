"""Benchmark of point-in-time feature engineering on the default simulated data.

Usage::

    .venv/bin/python benchmarks/bench_features.py [--repeat 3]

Simulates the default world (5,000 customers, 10,000 terminals, 183 days), then times
``compute_features`` on the whole table (the batch path) and on single transactions with their
history (the online path the scoring service uses). Prints wall times and peak memory (max RSS).
"""

import argparse
import os
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")

from fraud_kedro.features import FeatureParams, compute_features  # noqa: E402
from fraud_kedro.simulation import SimulationParams, simulate  # noqa: E402

CONF = Path(__file__).resolve().parents[1] / "conf" / "base"


def main() -> None:
    """Time the batch and online feature paths."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sim_params = yaml.safe_load((CONF / "parameters_simulation.yml").read_text())["simulation"]
    feat_params = FeatureParams(**
        yaml.safe_load((CONF / "parameters_data_processing.yml").read_text())["features"]
    )
    started = time.perf_counter()
    raw = simulate(SimulationParams(**sim_params))
    print(f"simulation: {len(raw):,} transactions in {time.perf_counter() - started:.1f} s")

    times = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        table = compute_features(raw, feat_params)
        times.append(time.perf_counter() - started)
    print(
        f"batch features: {len(table):,} rows x {table.shape[1]} columns; "
        f"best {min(times):.2f} s, median {statistics.median(times):.2f} s of {args.repeat}"
    )

    rng = np.random.default_rng(0)
    ts = raw["timestamp"]
    online = []
    for i in rng.integers(len(raw) // 2, len(raw), 200):
        row = raw.iloc[[i]]
        t = row["timestamp"].iloc[0]
        recent = raw.iloc[:i]
        recent = recent[ts.iloc[:i] > t - pd.Timedelta(days=feat_params.history_days)]
        history = recent[
            (recent["customer_id"] == row["customer_id"].iloc[0])
            | (recent["terminal_id"] == row["terminal_id"].iloc[0])
        ]
        started = time.perf_counter()
        compute_features(row.drop(columns=["is_fraud"]), feat_params, history=history)
        online.append(time.perf_counter() - started)
    online_ms = np.array(online) * 1000
    print(
        f"online features (1 transaction + its history): p50 {np.percentile(online_ms, 50):.2f} ms, "
        f"p99 {np.percentile(online_ms, 99):.2f} ms over {len(online)} transactions"
    )
    print(f"peak memory (max RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
