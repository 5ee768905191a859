"""Benchmark of the scoring service against ``mlflow models serve`` on the same registered model.

Usage (from the project root, after ``kedro run`` registered ``fraud_detector@champion``)::

    .venv/bin/python benchmarks/serve_bench.py [--workers 2] [--skip-mlflow] [--json out.json]

What it does, all on localhost:

1. seeds a fresh state store (temporary folder) with the transaction history of the data the model
   was trained on, except its last day;
2. starts the service with ``gunicorn -c gunicorn.conf.py 'fraud_kedro.api:create_app()'`` and
   drives ``POST /score`` in a closed loop at concurrency 1, 8 and 32 with single transactions
   (the last day's transactions, in time order, under fresh ids) and with batches of 1,000;
3. starts ``mlflow models serve --env-manager local`` on the same model with as many workers and
   sends the equivalent payloads: the same transactions as ``dataframe_split`` rows of features
   (computed beforehand: MLflow serving has no history, so it does less work per request);
4. prints throughput, client-side p50/p99 latency and the service's own time per request (its
   ``Server-Timing`` header), and the comparison.

The load generator runs on the same machine and takes CPU from the servers: numbers are for the
whole box, which is what a 2-core deployment with a co-located client would see.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fraud_kedro.features import FeatureParams, compute_features  # noqa: E402
from fraud_kedro.store import seed_history  # noqa: E402

logger = logging.getLogger("serve_bench")
ID_OFFSET = 900_000_000_000


@dataclass
class Result:
    """One load level."""

    server: str
    mode: str
    concurrency: int
    requests: int
    transactions: int
    errors: int
    seconds: float
    throughput_rps: float
    throughput_tps: float
    p50_ms: float
    p99_ms: float
    server_p50_ms: float | None
    server_p99_ms: float | None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(port: int, path: str, proc: subprocess.Popen, timeout: float = 300, method: str = "GET") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request(method, path, b"{}" if method == "POST" else None)
            if conn.getresponse().status == 200:
                conn.close()
                return
            conn.close()
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"no 200 from {path} after {timeout} s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def drive(
    port: int | list[int],
    path: str,
    bodies: list[bytes],
    concurrency: int,
    sizes: list[int],
    server: str,
    mode: str,
) -> Result:
    """Send ``bodies`` with ``concurrency`` closed-loop clients; latencies client and server side.

    With several ports (instances), client ``i`` talks to ``ports[i % len(ports)]``.
    """
    ports = port if isinstance(port, list) else [port]
    lock = threading.Lock()
    cursor = iter(range(len(bodies)))
    latencies: list[float] = []
    server_times: list[float] = []
    errors = [0]

    def client(port: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                i = next(cursor, None)
            if i is None:
                break
            started = time.perf_counter()
            try:
                conn.request("POST", path, bodies[i], {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                with lock:
                    errors[0] += 1
                continue
            elapsed = time.perf_counter() - started
            timing = response.getheader("Server-Timing")
            with lock:
                latencies.append(elapsed)
                if response.status != 200:
                    errors[0] += 1
                if timing and "dur=" in timing:
                    server_times.append(float(timing.split("dur=")[1]) / 1e3)
            if response.will_close:
                conn.close()  # http.client reconnects on the next request

    threads = [threading.Thread(target=client, args=(ports[i % len(ports)],)) for i in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    lat = np.array(latencies) * 1e3
    srv = np.array(server_times) * 1e3
    return Result(
        server=server,
        mode=mode,
        concurrency=concurrency,
        requests=len(bodies),
        transactions=sum(sizes),
        errors=errors[0],
        seconds=round(seconds, 3),
        throughput_rps=round(len(bodies) / seconds, 1),
        throughput_tps=round(sum(sizes) / seconds, 1),
        p50_ms=round(float(np.percentile(lat, 50)), 2) if len(lat) else float("nan"),
        p99_ms=round(float(np.percentile(lat, 99)), 2) if len(lat) else float("nan"),
        server_p50_ms=round(float(np.percentile(srv, 50)), 2) if len(srv) else None,
        server_p99_ms=round(float(np.percentile(srv, 99)), 2) if len(srv) else None,
    )


def _raw_body(row: pd.Series, new_id: int, c) -> dict:
    customer, terminal = row[c.customer_id], row[c.terminal_id]
    return {
        "transaction_id": new_id,
        "timestamp": pd.Timestamp(row[c.timestamp]).isoformat(),
        "customer_id": int(customer) if isinstance(customer, int | np.integer) else str(customer),
        "terminal_id": int(terminal) if isinstance(terminal, int | np.integer) else str(terminal),
        "amount": float(row[c.amount]),
    }


def _mlflow_body(features: pd.DataFrame) -> bytes:
    frame = features.copy()
    for col in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[col]):
            frame[col] = frame[col].dt.strftime("%Y-%m-%dT%H:%M:%S")
    return json.dumps({"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}).encode()


def run_levels(
    name: str,
    port: int | list[int],
    path: str,
    single: Callable[[int], tuple[list[bytes], list[int]]],
    batch: Callable[[int], tuple[list[bytes], list[int]]],
    levels: list[int],
    n_single: int,
    n_batch: int,
    modes: set[str],
) -> list[Result]:
    """Warm up, then every concurrency level for single transactions and batches."""
    results = []
    warm, _ = single(50)
    drive(port, path, warm, 2, [1] * len(warm), name, "warmup")
    for c in levels if "single" in modes else []:
        bodies, sizes = single(max(n_single, 20 * c))
        results.append(drive(port, path, bodies, c, sizes, name, "single"))
        logger.info("%s", results[-1])
    for c in levels if "batch" in modes else []:
        bodies, sizes = batch(max(n_batch, 2 * c))
        results.append(drive(port, path, bodies, c, sizes, name, "batch1000"))
        logger.info("%s", results[-1])
    return results


def main() -> int:  # noqa: PLR0915 - a linear script
    """Run the benchmark; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--model-uri", default=os.environ.get("FRAUD_MODEL_URI", "models:/fraud_detector@champion")
    )
    parser.add_argument(
        "--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    )
    parser.add_argument("--data", default="data/02_intermediate/validated_transactions.parquet")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("FRAUD_WORKER_THREADS") or 8),
        help="gunicorn threads per worker (>1: gthread, requests coalesced)",
    )
    parser.add_argument("--levels", default="1,8,32")
    parser.add_argument("--single-requests", type=int, default=2000)
    parser.add_argument("--batch-requests", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--modes", default="single,batch", help="single, batch or both")
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument(
        "--state-url",
        default=None,
        help="the store (default: a fresh SQLite file); a postgresql:// URL is "
        "seeded after its tables are emptied",
    )
    parser.add_argument(
        "--instances",
        type=int,
        default=1,
        help="gunicorn instances (masters) on one store, clients spread over them",
    )
    parser.add_argument(
        "--floor", action="store_true", help="also serve the bare-Flask floor app (predict_proba on one row)"
    )
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    levels = [int(x) for x in args.levels.split(",")]
    modes = set(args.modes.split(","))
    env = {
        **os.environ,
        # mlflow serve runs `uvicorn` by name: the venv's bin must be on PATH
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": args.tracking_uri,
        "KEDRO_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
        "NML_DISABLE_USAGE_LOGGING": "1",
    }
    os.environ.update({k: env[k] for k in ("MLFLOW_TRACKING_URI",)})

    from fraud_kedro.api.model_loader import load_model

    model = load_model(args.model_uri)
    params: FeatureParams = model.feature_params
    c = params.columns
    data = pd.read_parquet(args.data).sort_values([c.timestamp, c.transaction_id])
    data = data.reset_index(drop=True)
    last_day = pd.Timestamp(data[c.timestamp].max()).normalize()
    history = data[data[c.timestamp] < last_day]
    day = data[data[c.timestamp] >= last_day].reset_index(drop=True)
    mlflow_single_n = max(200, args.single_requests // 5)
    mlflow_batch_n = max(4, args.batch_requests // 3)

    def volume(n_single: int, n_batch: int) -> int:
        return 50 + sum(
            max(n_single, 20 * c) * ("single" in modes)
            + args.batch_size * max(n_batch, 2 * c) * ("batch" in modes)
            for c in levels
        )

    need = volume(args.single_requests, args.batch_requests)
    if not args.skip_mlflow:
        need += volume(mlflow_single_n, mlflow_batch_n)
    reps = int(np.ceil(need / len(day)))
    logger.info(
        "model %s v%s; history %d rows, %d transactions on %s (reused %dx)",
        model.name,
        model.version,
        len(history),
        len(day),
        last_day.date(),
        reps,
    )
    # payload stream: the last day's transactions in time order, under fresh ids
    stream = pd.concat([day] * reps, ignore_index=True)
    new_ids = ID_OFFSET + np.arange(len(stream))
    stream[c.transaction_id] = new_ids
    features = compute_features(stream.drop(columns=[c.label], errors="ignore"), params, history)
    counter = {"next": 0}

    def take(n: int) -> slice:
        start = counter["next"]
        counter["next"] += n
        if counter["next"] > len(stream):
            raise RuntimeError("payload stream exhausted")
        return slice(start, start + n)

    def ours_single(n: int) -> tuple[list[bytes], list[int]]:
        s = take(n)
        rows = stream.iloc[s]
        bodies = [
            json.dumps(_raw_body(r, int(i), c)).encode()
            for (_, r), i in zip(rows.iterrows(), new_ids[s], strict=True)
        ]
        return bodies, [1] * n

    def ours_batch(n: int) -> tuple[list[bytes], list[int]]:
        bodies = []
        for _ in range(n):
            s = take(args.batch_size)
            rows = stream.iloc[s]
            items = [_raw_body(r, int(i), c) for (_, r), i in zip(rows.iterrows(), new_ids[s], strict=True)]
            bodies.append(json.dumps({"transactions": items}).encode())
        return bodies, [args.batch_size] * n

    def mlflow_single(n: int) -> tuple[list[bytes], list[int]]:
        s = take(n)
        return [_mlflow_body(features.iloc[[i]]) for i in range(s.start, s.stop)], [1] * n

    def mlflow_batch(n: int) -> tuple[list[bytes], list[int]]:
        bodies = []
        for _ in range(n):
            s = take(args.batch_size)
            bodies.append(_mlflow_body(features.iloc[s]))
        return bodies, [args.batch_size] * n

    workdir = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    results: list[Result] = []
    try:
        db = args.state_url or str(workdir / "state.db")
        if db.startswith("postgres"):
            _empty_postgres(db)
        seed_history(db, history, params)
        ports = [_free_port() for _ in range(args.instances)]
        ours_env = {
            **env,
            "FRAUD_WORKERS": str(args.workers),
            "FRAUD_WORKER_THREADS": str(args.threads),
            "FRAUD_MODEL_URI": args.model_uri,
            "FRAUD_STATE_URL": db,
            "FRAUD_SEED_PATH": "",
            "FRAUD_MODEL_POLL_SECONDS": "0",
            "FRAUD_LOG_LEVEL": "WARNING",
            "FRAUD_MAX_BODY_BYTES": str(64 * 1024 * 1024),
        }
        ours_env.pop("FRAUD_API_KEYS", None)
        with (workdir / "service.log").open("wb") as log:
            procs = [
                subprocess.Popen(
                    [
                        str(Path(sys.executable).parent / "gunicorn"),
                        "-c",
                        str(ROOT / "gunicorn.conf.py"),
                        "fraud_kedro.api:create_app()",
                    ],
                    cwd=ROOT,
                    env={**ours_env, "PORT": str(p)},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                for p in ports
            ]
            try:
                for p, proc in zip(ports, procs, strict=True):
                    _wait(p, "/ready", proc)
                time.sleep(3)  # let every worker finish loading
                name = "service" if args.instances == 1 else f"service x{args.instances}"
                results += run_levels(
                    name,
                    ports,
                    "/score",
                    ours_single,
                    ours_batch,
                    levels,
                    args.single_requests,
                    args.batch_requests,
                    modes,
                )
            finally:
                for proc in procs:
                    _stop(proc)
        if args.floor:
            results += _floor(model, features, env, workdir, levels, args)
        if not args.skip_mlflow:
            port = _free_port()
            mlflow_cmd = [
                str(Path(sys.executable).parent / "mlflow"),
                "models",
                "serve",
                "-m",
                f"models:/{model.name}/{model.version}",
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-w",
                str(args.workers),
            ]
            with (workdir / "mlflow.log").open("wb") as log:
                proc = subprocess.Popen(mlflow_cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
                try:
                    _wait(port, "/ping", proc)
                    time.sleep(3)
                    results += run_levels(
                        "mlflow serve",
                        port,
                        "/invocations",
                        mlflow_single,
                        mlflow_batch,
                        levels,
                        mlflow_single_n,
                        mlflow_batch_n,
                        modes,
                    )
                finally:
                    _stop(proc)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    _report(results, model, args)
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0


def _empty_postgres(url: str) -> None:
    """Empty the store's tables (a benchmark run starts from the seed only)."""
    from fraud_kedro.store import open_store

    store = open_store(url)
    store._write(
        "reset", lambda c: c.execute("TRUNCATE transactions, prediction_log, label_log, meta, model_versions")
    )
    store.close()


FLOOR_APP = """
import os, pickle, numpy as np
from flask import Flask, jsonify, request
with open(os.environ["FLOOR_MODEL"], "rb") as f:
    model, row = pickle.load(f)
app = Flask(__name__)

@app.post("/score")
def score():
    request.get_json(silent=True)  # read the body: closing on unread bytes resets the connection
    return jsonify(p=float(model.predict_proba(row)[0, 1]))
"""


def _floor(model, features: pd.DataFrame, env: dict, workdir: Path, levels: list[int], args) -> list:
    """The floor of the stack: a bare Flask app on 2 sync workers, predict_proba on one row."""
    import pickle

    estimator = model.constants.get("fraud_model")
    if estimator is None:
        logger.warning("floor app skipped: the loaded model exposes no estimator")
        return []
    row = features[list(model.features)].iloc[[0]]
    (workdir / "floor.pkl").write_bytes(pickle.dumps((estimator, row)))
    (workdir / "floor_app.py").write_text(FLOOR_APP)
    port = _free_port()
    floor_env = {**env, "FLOOR_MODEL": str(workdir / "floor.pkl"), "OMP_NUM_THREADS": "1"}
    log = (workdir / "floor.log").open("wb")
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "-k",
            "sync",  # gunicorn's default worker class is no longer sync everywhere: say it
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{port}",
            "--chdir",
            str(workdir),
            "floor_app:app",
        ],
        env=floor_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait(port, "/score", proc, method="POST")
        time.sleep(3)  # as for the service: the other worker may still be loading
        drive(port, "/score", [b"{}"] * 20, 2, [1] * 20, "floor", "warm-up")  # not reported
        body = [b"{}"] * max(args.single_requests, 20 * max(levels))
        out = [drive(port, "/score", body, c, [1] * len(body), "floor", "single") for c in levels]
    finally:
        _stop(proc)
        log.close()
    if any(r.errors for r in out):
        tail = (workdir / "floor.log").read_text(errors="replace")[-2000:]
        logger.warning("floor app errors; its log ends with:\n%s", tail)
    return out


def _report(results: list[Result], model, args) -> None:
    print(
        f"\nmodel {model.name} v{model.version}, {args.workers} workers x {args.threads} "
        f"threads, {os.cpu_count()} CPUs"
    )
    header = (
        f"{'server':13s} {'mode':10s} {'c':>3s} {'req/s':>8s} {'tx/s':>9s} "
        f"{'p50 ms':>7s} {'p99 ms':>7s} {'srv p50':>8s} {'srv p99':>8s} {'err':>4s}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        srv50 = f"{r.server_p50_ms:8.2f}" if r.server_p50_ms is not None else f"{'-':>8s}"
        srv99 = f"{r.server_p99_ms:8.2f}" if r.server_p99_ms is not None else f"{'-':>8s}"
        print(
            f"{r.server:13s} {r.mode:10s} {r.concurrency:3d} {r.throughput_rps:8.1f} "
            f"{r.throughput_tps:9.1f} {r.p50_ms:7.2f} {r.p99_ms:7.2f} {srv50} {srv99} "
            f"{r.errors:4d}"
        )
    ours = {(r.mode, r.concurrency): r for r in results if r.server.startswith("service")}
    floor = {(r.mode, r.concurrency): r for r in results if r.server == "floor"}
    if floor:
        print("\nservice / floor (bare Flask, predict_proba on one row), single transactions:")
        for key in sorted(floor):
            if key in ours and floor[key].throughput_rps > 0:
                rps = ours[key].throughput_rps / floor[key].throughput_rps
                p50 = ours[key].p50_ms / max(floor[key].p50_ms, 1e-9)
                print(f"  c={key[1]:<3d} throughput {rps:5.2f}x, p50 {p50:5.2f}x")
    theirs = {(r.mode, r.concurrency): r for r in results if r.server == "mlflow serve"}
    if theirs:
        print("\nthroughput, service / mlflow serve (transactions per second):")
        for key in sorted(ours):
            if key in theirs and theirs[key].throughput_tps > 0:
                ratio = ours[key].throughput_tps / theirs[key].throughput_tps
                print(f"  {key[0]:10s} c={key[1]:<3d} {ratio:6.1f}x")
    single8 = ours.get(("single", 8))
    batch1 = ours.get(("batch1000", 1))
    print("\ngoals (2 cores):")
    if single8:
        print(
            f"  single, c=8: p50 {single8.p50_ms:.2f} ms (goal < 3), p99 {single8.p99_ms:.2f} ms (goal < 15)"
        )
    if batch1 and batch1.server_p50_ms is not None:
        print(f"  batch of {args.batch_size}, c=1: server time p50 {batch1.server_p50_ms:.1f} ms (goal < 50)")


if __name__ == "__main__":
    sys.exit(main())
