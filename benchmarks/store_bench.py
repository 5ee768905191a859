"""Benchmarks of the shared PostgreSQL store: monitoring's read of a big log, and SIGKILL under load.

Usage (from the project root; PostgreSQL at ``--admin-url``, a database of its own per run)::

    .venv/bin/python benchmarks/store_bench.py monitor-read [--rows 1000000]
    .venv/bin/python benchmarks/store_bench.py kill --tracking-uri sqlite:///mlflow.db \\
        [--model-uri models:/fraud_detector@champion] [--data data/02_intermediate/...parquet]

* ``monitor-read``: writes ``--rows`` logged predictions (18 features each, binary COPY) and times
  the monitoring dataset's load (``ServiceLogDataset``: prediction log decoded to one column per
  feature, shadow log, label log). Goal: under 60 s for 1,000,000.
* ``kill``: two gunicorn instances on one PostgreSQL database, 8 clients spread over them sending
  new transactions; three times, one instance is SIGKILLed (master and workers) and restarted.
  Checks that every acknowledged prediction is in the log, none twice, and that the other
  instance kept answering.

The load generator runs on the same machine as the servers and the database.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

logger = logging.getLogger("store_bench")


def _database(admin_url: str) -> tuple[str, str]:
    import psycopg
    from postgres_support import with_database

    name = f"fraud_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, with_database(admin_url, name)


def _drop(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def monitor_read(admin_url: str, rows: int) -> None:
    """Write ``rows`` logged predictions, then time the monitoring dataset's load."""
    from fraud_kedro.io.service_log import ServiceLogDataset
    from fraud_kedro.store import open_store

    name, url = _database(admin_url)
    try:
        store = open_store(url)
        features = [f"f{i}" for i in range(18)]
        conn = store._conn()
        conn.execute(
            "INSERT INTO model_versions VALUES ('fraud_detector', '1', 'm', %s, %s, now())",
            (json.dumps(features), json.dumps(["float64"] * 18)),
        )
        rng = np.random.default_rng(0)
        start = datetime(2024, 1, 1)
        t0 = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY prediction_log (role, transaction_id, timestamp, customer_id, terminal_id, "
                "amount, features, fraud_probability, is_fraud_predicted, model_name, model_version, "
                "scored_at) FROM STDIN"
            ) as copy,
        ):
            blob = rng.random((rows, 18)).astype("<f8")
            for i in range(rows):
                ts = start + timedelta(seconds=i * 3)
                copy.write_row(
                    ("champion", i, ts, str(i % 5000), str(i % 10000), 10.0, blob[i].tobytes(),
                     float(blob[i, 0]), False, "fraud_detector", "1", ts)
                )  # fmt: skip
        conn.execute(
            "INSERT INTO label_log (transaction_id, is_fraud, received_at) "
            "SELECT g, 1, TIMESTAMP '2024-02-01' FROM generate_series(0, %s, 500) AS g",
            (rows,),
        )
        written = time.perf_counter() - t0
        store.close()
        t0 = time.perf_counter()
        data = ServiceLogDataset(url=url).load()
        seconds = time.perf_counter() - t0
        print(f"\nwrote {rows:,} logged predictions in {written:.1f} s")
        print(
            f"monitoring read (ServiceLogDataset.load from PostgreSQL): {seconds:.1f} s for "
            f"{len(data.predictions):,} predictions x {len(features)} features, "
            f"{len(data.labels):,} labels (goal < 60 s)"
        )
    finally:
        _drop(admin_url, name)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(env: dict, port: int, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"),
         "fraud_kedro.api:create_app()"],
        cwd=ROOT, env={**env, "PORT": str(port)}, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: SIGKILL reaches master and workers
    )  # fmt: skip


def _ready(port: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ready")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"instance on {port} not ready")


def kill_under_load(admin_url: str, args: argparse.Namespace) -> None:
    """SIGKILL one of two instances under load, three times; check the log."""
    import pandas as pd

    from fraud_kedro.api.model_loader import load_model
    from fraud_kedro.store import open_store, read_prediction_log, seed_history

    os.environ["MLFLOW_TRACKING_URI"] = args.tracking_uri
    model = load_model(args.model_uri)
    c = model.feature_params.columns
    data = pd.read_parquet(args.data).sort_values([c.timestamp, c.transaction_id])
    last_day = pd.Timestamp(data[c.timestamp].max()).normalize()
    history, day = data[data[c.timestamp] < last_day], data[data[c.timestamp] >= last_day]
    name, url = _database(admin_url)
    procs: dict[int, subprocess.Popen] = {}
    workdir = Path(f"/tmp/store-bench-{name}")
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        seed_history(url, history, model.feature_params)
        env = {**os.environ, "FRAUD_STATE_URL": url, "FRAUD_MODEL_URI": args.model_uri,
               "FRAUD_WORKERS": "2", "FRAUD_SEED_PATH": "", "FRAUD_MODEL_POLL_SECONDS": "0",
               "FRAUD_LOG_LEVEL": "WARNING", "KEDRO_DISABLE_TELEMETRY": "1"}  # fmt: skip
        env.pop("FRAUD_API_KEYS", None)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        ports = [_free_port(), _free_port()]
        for port in ports:
            procs[port] = _start(env, port, workdir / f"{port}.log")
        for port in ports:
            _ready(port)
        rows = day.to_dict("records")
        next_id = [10**12]
        lock = threading.Lock()
        acked: list[int] = []
        answered = {p: 0 for p in ports}
        errors = {p: 0 for p in ports}
        stop = threading.Event()

        def client(port: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            i = 0
            while not stop.is_set():
                with lock:
                    tx_id = next_id[0]
                    next_id[0] += 1
                r = rows[i % len(rows)]
                i += 1
                body = json.dumps({
                    "transaction_id": tx_id, "timestamp": pd.Timestamp(r[c.timestamp]).isoformat(),
                    "customer_id": int(r[c.customer_id]), "terminal_id": int(r[c.terminal_id]),
                    "amount": float(r[c.amount]),
                }).encode()  # fmt: skip
                try:
                    conn.request("POST", "/score", body, {"Content-Type": "application/json"})
                    response = conn.getresponse()
                    payload = response.read()
                    if response.status == 200:
                        got = json.loads(payload)["results"][0]["transaction_id"]
                        with lock:
                            acked.append(got)
                            answered[port] += 1
                    else:
                        errors[port] += 1
                except (OSError, http.client.HTTPException):
                    errors[port] += 1
                    conn.close()
                    time.sleep(0.05)

        threads = [threading.Thread(target=client, args=(ports[i % 2],)) for i in range(8)]
        for t in threads:
            t.start()
        victim, survivor = ports
        for round_ in range(3):
            time.sleep(args.seconds)
            before = answered[survivor]
            os.killpg(procs[victim].pid, signal.SIGKILL)
            procs[victim].wait()
            time.sleep(2)
            logger.info(
                "round %d: killed %d; survivor answered %d in the meantime",
                round_ + 1,
                victim,
                answered[survivor] - before,
            )
            procs[victim] = _start(env, victim, workdir / f"{victim}.log")
            _ready(victim)
        time.sleep(args.seconds)
        stop.set()
        for t in threads:
            t.join()
        log = read_prediction_log(url)
        logged = log["transaction_id"].to_numpy()
        missing = set(acked) - set(logged.tolist())
        twice = int(len(logged) - len(np.unique(logged)))
        store = open_store(url)
        print(f"\nacknowledged {len(acked):,}; logged {len(logged):,}")
        print(f"acknowledged but missing from the log: {len(missing)} (goal 0)")
        print(f"logged twice: {twice} (goal 0)")
        print(
            f"answers: victim {answered[victim]:,} (errors {errors[victim]}), survivor "
            f"{answered[survivor]:,} (errors {errors[survivor]})"
        )
        store.close()
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(60)
        _drop(admin_url, name)


def main() -> int:
    """Run one benchmark; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--admin-url", default=os.environ.get(
        "FRAUD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"))  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    read = sub.add_parser("monitor-read")
    read.add_argument("--rows", type=int, default=1_000_000)
    kill = sub.add_parser("kill")
    kill.add_argument("--model-uri", default="models:/fraud_detector@champion")
    kill.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db"))
    kill.add_argument("--data", default="data/02_intermediate/validated_transactions.parquet")
    kill.add_argument("--seconds", type=float, default=8.0, help="load between kills")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.command == "monitor-read":
        monitor_read(args.admin_url, args.rows)
    else:
        kill_under_load(args.admin_url, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
