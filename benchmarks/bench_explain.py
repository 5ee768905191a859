"""What ``POST /score?explain=true`` adds to a single request (p50, p90), in process.

Usage (from the project root, after ``make run`` registered ``fraud_detector@champion`` in
``mlflow.db``)::

    nice -n 10 .venv/bin/python benchmarks/bench_explain.py [--requests 300] [--model-uri URI]

It seeds a temporary state store with the validated transactions before the last simulated day,
builds the app (Flask test client: no network, no gunicorn) on the champion and scores the last
day's transactions one per request, alternating plain and ``explain=true`` requests so that both
see the same machine load. It prints the service's own time per request (``Server-Timing``) and
the wall time of the call, for both, and the difference of the medians.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
for key, value in {"KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1",
                   "MLFLOW_DISABLE_TELEMETRY": "true", "NML_DISABLE_USAGE_LOGGING": "1"}.items():
    os.environ.setdefault(key, value)

from fraud_kedro.api import create_app  # noqa: E402
from fraud_kedro.store import seed_history  # noqa: E402


def main() -> None:
    """Score single transactions with and without explanations and print the difference."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="of each kind")
    parser.add_argument("--model-uri", default="models:/fraud_detector@champion")
    parser.add_argument("--tracking-uri", default=f"sqlite:///{ROOT / 'mlflow.db'}")
    parser.add_argument("--data", default=str(ROOT / "data/02_intermediate/validated_transactions.parquet"))
    args = parser.parse_args()
    data = pd.read_parquet(args.data)
    day = data["timestamp"].max().normalize()
    history = data[data["timestamp"] < day]
    todo = data[data["timestamp"] >= day].sort_values(["timestamp", "transaction_id"])
    todo = todo.head(2 * args.requests)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "state.db"
        seed_history(db, history)
        app = create_app({"model_uri": args.model_uri, "tracking_uri": args.tracking_uri,
                          "state_db": str(db), "seed_path": "", "model_poll_seconds": 0,
                          "model_sync_seconds": 0, "api_keys": ()})
        client = app.test_client()
        times: dict[bool, list[float]] = {False: [], True: []}
        server: dict[bool, list[float]] = {False: [], True: []}
        for i, row in enumerate(todo.itertuples()):
            explain = i % 2 == 1
            body = {"transaction_id": int(row.transaction_id), "timestamp": row.timestamp.isoformat(),
                    "customer_id": int(row.customer_id), "terminal_id": int(row.terminal_id),
                    "amount": float(row.amount)}
            started = time.perf_counter()
            response = client.post("/score?explain=true" if explain else "/score", json=body)
            times[explain].append((time.perf_counter() - started) * 1e3)
            assert response.status_code == 200, response.get_json()
            assert ("reasons" in response.get_json()["results"][0]) == explain
            timing = response.headers.get("Server-Timing", "")
            if "dur=" in timing:
                server[explain].append(float(timing.split("dur=")[1].split(";")[0].split(",")[0]))
    for label, table in (("wall", times), ("server", server)):
        if not table[False]:
            continue
        plain, explained = np.array(table[False]), np.array(table[True])
        print(f"{label}: plain p50 {np.median(plain):.3f} ms p90 {np.percentile(plain, 90):.3f} | "  # noqa: T201
              f"explain p50 {np.median(explained):.3f} ms p90 {np.percentile(explained, 90):.3f} | "
              f"added p50 {np.median(explained) - np.median(plain):+.3f} ms "
              f"({len(plain)} + {len(explained)} requests)")


if __name__ == "__main__":
    main()
