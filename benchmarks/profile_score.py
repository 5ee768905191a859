"""Where the milliseconds of one ``POST /score`` go: pyinstrument over in-process requests.

Usage (after ``kedro run`` registered ``fraud_detector@champion``)::

    .venv/bin/python benchmarks/profile_score.py [--state-url URL] [--requests 500]

Seeds a fresh store (a temporary SQLite file, or the PostgreSQL database given) with the history
before the data's last day, warms the app, then scores that day's transactions one per request
through Flask's test client (no HTTP, no gunicorn) under pyinstrument, and prints the mean time
per request and the profile.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> int:
    """Profile; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-uri", default="models:/fraud_detector@champion")
    parser.add_argument(
        "--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    )
    parser.add_argument("--data", default="data/02_intermediate/validated_transactions.parquet")
    parser.add_argument("--state-url", default=None)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--batch", type=int, default=1, help="transactions per request (> 1: batch form)")
    args = parser.parse_args()
    os.environ["MLFLOW_TRACKING_URI"] = args.tracking_uri
    from pyinstrument import Profiler

    from fraud_kedro.api import create_app
    from fraud_kedro.api.model_loader import load_model
    from fraud_kedro.store import seed_history

    model = load_model(args.model_uri)
    c = model.feature_params.columns
    data = pd.read_parquet(args.data).sort_values([c.timestamp, c.transaction_id])
    warm = 20 if args.batch == 1 else 2  # requests before the profiler starts
    need = (args.requests + warm) * args.batch
    # the last day, or as many of the last days as the requests need
    stamps = data[c.timestamp]
    start = min(pd.Timestamp(stamps.max()).normalize(), pd.Timestamp(stamps.iloc[-need]))
    history, day = data[data[c.timestamp] < start], data[data[c.timestamp] >= start]
    url = args.state_url or f"sqlite:///{tempfile.mkdtemp()}/state.db"
    seed_history(url, history, model.feature_params)
    app = create_app(
        {
            "model_uri": args.model_uri,
            "tracking_uri": args.tracking_uri,
            "state_db": url,
            "seed_path": "",
            "model_poll_seconds": 0,
            "model_sync_seconds": 0,
            "api_keys": (),
            "log_level": "WARNING",
        }
    )
    client = app.test_client()
    rows = [
        {"transaction_id": 10**12 + i, "timestamp": pd.Timestamp(r[c.timestamp]).isoformat(),
         "customer_id": int(r[c.customer_id]), "terminal_id": int(r[c.terminal_id]),
         "amount": float(r[c.amount])}
        for i, r in enumerate(day.head(need).to_dict("records"))
    ]  # fmt: skip
    if args.batch == 1:
        bodies = [json.dumps(r) for r in rows]
    else:
        bodies = [
            json.dumps({"transactions": rows[i : i + args.batch]}) for i in range(0, len(rows), args.batch)
        ]
    for body in bodies[:warm]:
        client.post("/score", data=body, content_type="application/json")
    profiler = Profiler(interval=0.0002)
    started = time.perf_counter()
    profiler.start()
    for body in bodies[warm:]:
        assert client.post("/score", data=body, content_type="application/json").status_code == 200
    profiler.stop()
    seconds = time.perf_counter() - started
    n = len(bodies) - warm
    print(
        f"\n{n} requests of {args.batch}, {seconds / n * 1e3:.2f} ms each "
        f"(in process, store {url.split('://')[0]}, under the profiler)"
    )
    print(profiler.output_text(unicode=False, color=False, show_all=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
