"""Benchmark of the stream worker: sustained throughput with micro-batches, and end-to-end latency.

Usage (from the project root, after ``kedro run`` registered ``fraud_detector@champion``)::

    .venv/bin/python benchmarks/stream_bench.py [--transactions 60000] [--batch 1000] [--workers 1]
        [--rate 1000 --seconds 20] [--state-url postgresql://postgres@127.0.0.1:5432/test]

What it does, against the Redis of ``FRAUD_STREAM_URL`` (default ``redis://127.0.0.1:6379/0``)
under stream names with a unique prefix (deleted at the end):

1. seeds a fresh state store (a temporary SQLite file, or ``--state-url``) with the history of the
   data the model was trained on (``data/02_intermediate/validated_transactions.parquet``);
2. simulates new transactions of the same world after its last day (the producer's ``simulated``
   source);
3. **throughput**: puts ``--transactions`` of them in the stream first, then starts ``--workers``
   worker processes (``python -m fraud_kedro.stream worker``) and measures, from the Redis entry
   ids of the results, how fast the backlog becomes results (first result to last);
4. **latency**: with the worker(s) idle, publishes at ``--rate`` per second for ``--seconds`` and
   measures for each transaction the time from its XADD to its result's XADD (both Redis entry ids,
   millisecond clock of the server) and to the moment a reader got the result (client clock).

The producer and the reader run on the same machine and take CPU from the workers.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fraud_kedro.stream.producer import simulated_transactions, transaction_payloads  # noqa: E402

logger = logging.getLogger("stream_bench")


def _entry_ms(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-")[0])


def _seed(state: str, params_source: Path) -> None:
    import yaml

    from fraud_kedro.features import FeatureParams
    from fraud_kedro.store import seed_history

    features = yaml.safe_load((ROOT / "conf/base/parameters_data_processing.yml").read_text())["features"]
    frame = pd.read_parquet(params_source)
    started = time.perf_counter()
    n = seed_history(state, frame, FeatureParams(**features))
    logger.info("seeded %d history rows in %.1f s", n, time.perf_counter() - started)


_SITECUSTOMIZE = """
# written by benchmarks/stream_bench.py: models registered before the module renames of fa1ab7b
# pickled their old module paths; alias them so such a champion still loads
import importlib, importlib.abc, importlib.util, sys
ALIASES = %r
class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        return importlib.util.spec_from_loader(name, self) if name in ALIASES else None
    def create_module(self, spec):
        return importlib.import_module(ALIASES[spec.name])
    def exec_module(self, module):
        pass
sys.meta_path.insert(0, _Alias())
"""


def _alias_dir(tmp: Path, aliases: list[str]) -> Path | None:
    """A folder with a sitecustomize.py aliasing old module paths (for an older champion)."""
    if not aliases:
        return None
    folder = tmp / "compat"
    folder.mkdir()
    mapping = dict(a.split("=", 1) for a in aliases)
    (folder / "sitecustomize.py").write_text(_SITECUSTOMIZE % mapping)
    return folder


def _admin_sql(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def _env(args: argparse.Namespace, names: dict[str, str], state: str, consumer: str) -> dict[str, str]:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{ROOT / 'mlflow.db'}"),
        "FRAUD_SEED_PATH": "",
        "FRAUD_MODEL_POLL_SECONDS": "0",
        "FRAUD_MODEL_SYNC_SECONDS": "0",
        "FRAUD_STREAM_URL": args.redis,
        "FRAUD_STREAM_TRANSACTIONS": names["transactions"],
        "FRAUD_STREAM_LABELS": names["labels"],
        "FRAUD_STREAM_SCORES": names["scores"],
        "FRAUD_STREAM_DEAD_LETTER": names["dead_letter"],
        "FRAUD_STREAM_GROUP": names["group"],
        "FRAUD_STREAM_CONSUMER": consumer,
        "FRAUD_STREAM_BATCH_SIZE": str(args.batch),
        "FRAUD_STREAM_BLOCK_MS": "100",
        "FRAUD_STREAM_METRICS_PORT": "-1",
        "FRAUD_LOG_LEVEL": "WARNING",
        "KEDRO_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    if args.compat_dir:
        env["PYTHONPATH"] = str(args.compat_dir)
    if state.startswith("postgresql"):
        env["FRAUD_STATE_URL"] = state
    else:
        env["FRAUD_STATE_DB"] = state
    return env


def _publish(client: redis.Redis, stream: str, payloads: list[str], chunk: int = 5000) -> None:
    for start in range(0, len(payloads), chunk):
        with client.pipeline(transaction=False) as pipe:
            for data in payloads[start : start + chunk]:
                pipe.xadd(stream, {"data": data})
            pipe.execute()


def _wait_results(client: redis.Redis, stream: str, n: int, timeout: float, procs=()) -> None:
    deadline = time.monotonic() + timeout
    while (client.xlen(stream) if client.exists(stream) else 0) < n:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("a worker process exited")
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {client.xlen(stream)} of {n} results after {timeout} s")
        time.sleep(0.05)


def throughput(client: redis.Redis, names: dict[str, str], payloads: list[str], start_workers) -> dict:
    """Backlog first, then workers: results per second from first to last result."""
    client.xgroup_create(names["transactions"], names["group"], id="0", mkstream=True)
    _publish(client, names["transactions"], payloads)
    procs = start_workers()
    _wait_results(client, names["scores"], len(payloads), timeout=1800, procs=procs)
    entries = client.xrange(names["scores"])
    first, last = _entry_ms(entries[0][0]), _entry_ms(entries[-1][0])
    replayed = sum(json.loads(f[b"data"]).get("replayed", False) for _, f in entries)
    seconds = max(last - first, 1) / 1000
    return {
        "procs": procs,
        "n": len(entries),
        "seconds": seconds,
        "rate": len(entries) / seconds,
        "replayed": replayed,
    }


def latency(client: redis.Redis, names: dict[str, str], payloads: list[str], rate: float) -> dict:
    """Paced XADDs; XADD-to-result times from entry ids and from the reader's clock."""
    sent_at: dict[int, float] = {}
    input_ms: dict[int, int] = {}
    got: list[tuple[int, float, int]] = []  # (tx id, reader time, result entry ms)
    done = threading.Event()
    cursor = client.xinfo_stream(names["scores"])["last-generated-id"]

    def reader() -> None:
        position = cursor
        while not done.is_set() and len(got) < len(payloads):
            reply = client.xread({names["scores"]: position}, count=1000, block=200)
            now = time.time()
            for _, entries in reply or []:
                for entry_id, fields in entries:
                    position = entry_id
                    got.append((json.loads(fields[b"data"])["transaction_id"], now, _entry_ms(entry_id)))

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    started = time.perf_counter()
    sent = 0
    while sent < len(payloads):
        due = min(len(payloads), int((time.perf_counter() - started) * rate) + 1)
        if due <= sent:
            time.sleep(0.001)
            continue
        with client.pipeline(transaction=False) as pipe:
            for data in payloads[sent:due]:
                pipe.xadd(names["transactions"], {"data": data})
            ids = pipe.execute()
        now = time.time()
        for data, entry_id in zip(payloads[sent:due], ids, strict=True):
            tid = json.loads(data)["transaction_id"]
            sent_at[tid] = now
            input_ms[tid] = _entry_ms(entry_id)
        sent = due
    took = time.perf_counter() - started
    thread.join(timeout=60)
    done.set()
    server = np.array([ms - input_ms[t] for t, _, ms in got if t in input_ms], dtype=float)
    client_side = np.array([(now - sent_at[t]) * 1000 for t, now, _ in got if t in sent_at])
    return {
        "sent": sent,
        "rate": sent / took,
        "received": len(got),
        "server_p50": float(np.percentile(server, 50)),
        "server_p99": float(np.percentile(server, 99)),
        "server_max": float(server.max()),
        "client_p50": float(np.percentile(client_side, 50)),
        "client_p99": float(np.percentile(client_side, 99)),
    }


def main() -> int:
    """Run the benchmark and print the numbers."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--transactions", type=int, default=60_000, help="backlog of the throughput run")
    parser.add_argument("--batch", type=int, default=1000, help="FRAUD_STREAM_BATCH_SIZE")
    parser.add_argument("--workers", type=int, default=1, help="worker processes in the group")
    parser.add_argument("--rate", type=float, default=1000.0, help="transactions/s of the latency run")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the latency run")
    parser.add_argument("--state-url", default="", help="a PostgreSQL URL (default: a temporary SQLite)")
    parser.add_argument("--redis", default=os.environ.get("FRAUD_STREAM_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument(
        "--seed-from", default=str(ROOT / "data/02_intermediate/validated_transactions.parquet")
    )
    parser.add_argument(
        "--alias-module",
        action="append",
        default=[],
        help="OLD=NEW module path for a champion pickled before a rename, "
        "e.g. fraud_kedro.datasets=fraud_kedro.io.files",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    names = {k: f"{prefix}.{k}" for k in ("transactions", "labels", "scores", "dead_letter")}
    names["group"] = f"{prefix}-group"
    client = redis.Redis.from_url(args.redis)
    tmp = Path(tempfile.mkdtemp(prefix="stream_bench_"))
    state = args.state_url or str(tmp / "state.db")
    args.compat_dir = _alias_dir(tmp, args.alias_module)
    fresh_db = None
    if args.state_url:  # a fresh database of its own on that server, dropped at the end
        fresh_db = f"stream_bench_{prefix[6:]}"
        _admin_sql(args.state_url, f"CREATE DATABASE {fresh_db}")
        state = args.state_url.rsplit("/", 1)[0] + f"/{fresh_db}"
    procs: list[subprocess.Popen] = []
    try:
        _seed(state, Path(args.seed_from))
        n_latency = int(args.rate * args.seconds)
        days = 1
        frame = simulated_transactions(days=days)
        while len(frame) < args.transactions + n_latency:
            days *= 2
            frame = simulated_transactions(days=days)
        payloads = [tx for tx, _, _ in transaction_payloads(frame)]
        logger.info("%d simulated transactions over %d day(s)", len(payloads), days)
        backlog, paced = payloads[: args.transactions], payloads[args.transactions :][:n_latency]

        def start_workers() -> list[subprocess.Popen]:
            for i in range(args.workers):
                procs.append(
                    subprocess.Popen(  # noqa: S603 - fixed command
                        [sys.executable, "-m", "fraud_kedro.stream", "worker"],
                        env=_env(args, names, state, f"bench-{i}"),
                        cwd=ROOT,
                    )
                )
            return procs

        t = throughput(client, names, backlog, start_workers)
        lat = latency(client, names, paced, args.rate)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if fresh_db:
            _admin_sql(args.state_url, f"DROP DATABASE IF EXISTS {fresh_db} WITH (FORCE)")
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()
    store = "PostgreSQL" if args.state_url else "SQLite"
    print(
        f"\nstream worker, {args.workers} worker process(es), batch {args.batch}, {store} store, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"throughput: {t['n']} transactions (backlog) in {t['seconds']:.2f} s = {t['rate']:,.0f} tx/s "
        f"(first to last result; {t['replayed']} replayed)"
    )
    print(f"latency at {lat['rate']:.0f} tx/s for {lat['sent']} transactions ({lat['received']} results):")
    print(
        f"  XADD -> result XADD (Redis clock, ms): p50 {lat['server_p50']:.1f}  p99 {lat['server_p99']:.1f}  "
        f"max {lat['server_max']:.1f}"
    )
    print(
        f"  XADD -> result read by a client (ms):  p50 {lat['client_p50']:.1f}  p99 {lat['client_p99']:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
