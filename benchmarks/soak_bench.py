"""Soak benchmark of the scoring service: minutes of mixed single and batch scoring at a fixed rate.

Usage (from the project root)::

    .venv/bin/python benchmarks/soak_bench.py [--minutes 3] [--rate 20] [--batch-share 0.1]
        [--batch-size 100] [--workers 2] [--use-project-model] [--json out.json]

What it does, all on 127.0.0.1:

1. builds a model registry the way ``tests/api`` does (a small model on simulated transactions,
   exported as the project's inference pipeline, ``fraud_detector@champion``) in a temporary
   folder, and a state store seeded with the transactions before the scored period; with
   ``--use-project-model``, the project's ``mlflow.db`` champion and its
   ``data/02_intermediate/validated_transactions.parquet`` instead (last 7 days scored);
2. starts gunicorn as ``make serve`` does (``gunicorn -c gunicorn.conf.py``), ``--workers`` workers
   (threads per worker: ``FRAUD_WORKER_THREADS`` of the environment, gunicorn.conf.py's default
   otherwise), API key on;
3. sends ``--rate`` requests a second (open loop: send times are fixed in advance, a slow answer
   does not slow the sender, latency counts from the planned send time), a ``--batch-share`` of
   them batches of ``--batch-size``, the rest single transactions: the scored period in time order
   under fresh ids, again and again with the clock moved on (so the feature windows stay realistic);
4. samples the RSS of every worker (``/proc/<pid>/status``) every few seconds;
5. reports the error count (goal 0), p50/p99 per minute and the p99 drift from the first to the last
   minute, the RSS growth of each worker (goal: flat), and checks that every acknowledged
   transaction is in the prediction log.

A warm-up (``--warmup`` s, default 15, same rate) before the measured minutes is reported apart:
each worker loads its history cache on its first request. The load generator runs on the same
machine and takes CPU from the service: the numbers are for the whole box.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

from reliability import harness  # noqa: E402

logger = logging.getLogger("soak_bench")


@dataclass
class Setup:
    """What a benchmark serves: a registry, a seeded state store, the transactions to send."""

    tracking_uri: str
    model_uri: str
    db: Path
    future: pd.DataFrame
    workdir: Path
    description: str


def prepare(
    workdir: Path,
    use_project_model: bool,
    tracking_uri: str | None,
    model_uri: str,
    data: str,
    n_customers: int = 1000,
) -> Setup:
    """Build (or point at) the registry, seed a fresh state store, pick the transactions to send."""
    from fraud_kedro.api import seed_history

    db = workdir / "state.db"
    if use_project_model:
        uri = tracking_uri or f"sqlite:///{ROOT / 'mlflow.db'}"
        if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
            raise SystemExit(f"no MLflow store at {uri}: run `make run` first, or drop --use-project-model")
        from fraud_kedro.api.model_loader import load_model

        with harness.mlflow_uri(uri):
            model = load_model(model_uri)
        frame = pd.read_parquet(ROOT / data)
        c = model.feature_params.columns
        frame = frame.rename(
            columns={
                c.transaction_id: "transaction_id",
                c.timestamp: "timestamp",
                c.customer_id: "customer_id",
                c.terminal_id: "terminal_id",
                c.amount: "amount",
            }
        )
        cut = frame["timestamp"].max().normalize() - pd.Timedelta(days=6)
        history, future = frame[frame["timestamp"] < cut], frame[frame["timestamp"] >= cut]
        seed_history(
            db,
            history.rename(
                columns={
                    "transaction_id": c.transaction_id,
                    "timestamp": c.timestamp,
                    "customer_id": c.customer_id,
                    "terminal_id": c.terminal_id,
                    "amount": c.amount,
                }
            ),
            model.feature_params,
        )
        return Setup(
            uri,
            model_uri,
            db,
            future.reset_index(drop=True),
            workdir,
            f"project model {model.name} v{model.version} ({uri}), {len(future)} transactions "
            f"of {data} from {cut.date()}",
        )
    world = harness.simulate_world(n_customers=n_customers, n_terminals=int(n_customers * 1.2), n_days=60)
    registry = harness.build_registry(workdir / "mlflow", world.history)
    harness.seed_state(db, world.history)
    return Setup(
        registry.uri,
        "models:/fraud_detector@champion",
        db,
        world.future,
        workdir,
        f"test model (tests/api/model_factory.py) on {n_customers} simulated cards, "
        f"{len(world.history)} history rows, {len(world.future)} transactions to replay",
    )


def start_server(
    setup: Setup,
    workers: int,
    threads: int | None = None,
    log_level: str = "INFO",
    history_cache_rows: int | None = None,
) -> harness.Gunicorn:
    """gunicorn as ``make serve`` starts it; ``threads`` sets FRAUD_WORKER_THREADS and
    ``history_cache_rows`` FRAUD_HISTORY_CACHE_ROWS (None: the service's defaults)."""
    extra = {"FRAUD_WORKER_THREADS": str(threads)} if threads else {}
    if history_cache_rows is not None:
        extra["FRAUD_HISTORY_CACHE_ROWS"] = str(history_cache_rows)
    env = harness.server_env(
        setup.tracking_uri, setup.db, FRAUD_MODEL_URI=setup.model_uri, FRAUD_LOG_LEVEL=log_level, **extra
    )
    return harness.Gunicorn(setup.workdir / "gunicorn", env, workers=workers).start(timeout=300)


def worker_kind(server: harness.Gunicorn) -> str:
    """gunicorn's worker class (from its log) and the threads setting."""
    line = next((ln for ln in server.log().splitlines() if "Using worker:" in ln), "")
    kind = line.split("Using worker:")[-1].strip() or "?"
    threads = server.env.get("FRAUD_WORKER_THREADS") or "gunicorn.conf.py default"
    return f"{kind} workers, FRAUD_WORKER_THREADS={threads}"


def _stats(outcomes: list[harness.Outcome]) -> dict:
    single = [o.latency for o in outcomes if o.ok and o.kind == "single"]
    batch = [o.latency for o in outcomes if o.ok and o.kind == "batch"]
    return {
        "requests": len(outcomes),
        "transactions": sum(len(o.ids) for o in outcomes),
        "errors": sum(not o.ok for o in outcomes),
        "single_p50_ms": round(harness.percentile_ms(single, 50), 2),
        "single_p99_ms": round(harness.percentile_ms(single, 99), 2),
        "batch_p50_ms": round(harness.percentile_ms(batch, 50), 2),
        "batch_p99_ms": round(harness.percentile_ms(batch, 99), 2),
    }


def _db_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="measured duration (default 3)")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds of warm-up, reported apart")
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second")
    parser.add_argument("--batch-share", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--worker-threads",
        type=int,
        default=None,
        help="FRAUD_WORKER_THREADS (1: sync workers; default: gunicorn.conf.py's)",
    )
    parser.add_argument("--client-threads", type=int, default=16)
    parser.add_argument(
        "--history-cache-rows",
        type=int,
        default=None,
        help="FRAUD_HISTORY_CACHE_ROWS (0: no per-worker history cache, to tell a leak "
        "from the cache filling up; default: the service's)",
    )
    parser.add_argument("--rss-every", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--use-project-model", action="store_true")
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--model-uri", default="models:/fraud_detector@champion")
    parser.add_argument("--data", default="data/02_intermediate/validated_transactions.parquet")
    parser.add_argument(
        "--customers", type=int, default=1000, help="simulated cards (without the project model)"
    )
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--dump", help="write every measured request (CSV: t_s, kind, n, status, latency_ms)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for noisy in ("mlflow", "kedro", "alembic", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    workdir = Path(tempfile.mkdtemp(prefix="soak-bench-"))
    server = None
    try:
        setup = prepare(
            workdir, args.use_project_model, args.tracking_uri, args.model_uri, args.data, args.customers
        )
        logger.info("%s", setup.description)
        server = start_server(
            setup, args.workers, args.worker_threads, history_cache_rows=args.history_cache_rows
        )
        workers = server.wait_workers(args.workers)
        stream = harness.TxStream(setup.future)
        logger.info(
            "gunicorn pid %d, workers %s; warm-up %.0f s at %.1f req/s",
            server.pid,
            workers,
            args.warmup,
            args.rate,
        )
        warm = harness.FixedRateLoad(
            server.port,
            stream,
            args.rate,
            args.batch_share,
            args.batch_size,
            args.client_threads,
            seed=1,
            keep_bodies=False,
        )
        warm_out = warm.start(args.warmup).join()
        db_start = _db_bytes(setup.db)

        duration = args.minutes * 60
        samples: list[tuple[float, dict[int, int]]] = []
        stop = threading.Event()
        sampler = threading.Thread(
            target=harness.sample_rss, args=(server, args.rss_every, stop, samples), daemon=True
        )
        sampler.start()
        files: list[tuple[float, int, int]] = []  # (t, database bytes, WAL bytes)

        def sample_files() -> None:
            wal = Path(f"{setup.db}-wal")
            while not stop.is_set():
                size = wal.stat().st_size if wal.exists() else 0
                files.append((time.monotonic(), setup.db.stat().st_size, size))
                stop.wait(args.rss_every)

        file_sampler = threading.Thread(target=sample_files, daemon=True)
        file_sampler.start()
        logger.info(
            "soak: %.1f min at %.1f req/s (%.0f%% batches of %d)",
            args.minutes,
            args.rate,
            args.batch_share * 100,
            args.batch_size,
        )
        load = harness.FixedRateLoad(
            server.port,
            stream,
            args.rate,
            args.batch_share,
            args.batch_size,
            args.client_threads,
            seed=2,
            keep_bodies=False,
        )
        outcomes = load.start(duration).join(timeout=duration + 300)
        stop.set()
        sampler.join(10)
        file_sampler.join(10)
        samples.append(
            (time.monotonic(), {p: r for p in server.workers() if (r := harness.rss_kib(p)) is not None})
        )
        t0 = load.t0
        soak_log = server.log(since=t0)
        if args.dump:
            pd.DataFrame(
                {
                    "t_s": [round(o.scheduled - t0, 3) for o in outcomes],
                    "kind": [o.kind for o in outcomes],
                    "n": [len(o.ids) for o in outcomes],
                    "status": [o.status for o in outcomes],
                    "latency_ms": [round(o.latency * 1e3, 2) for o in outcomes],
                }
            ).to_csv(args.dump, index=False)

        # per minute
        minutes = []
        n_min = int(np.ceil(duration / 60))
        for m in range(n_min):
            part = [o for o in outcomes if m * 60 <= o.scheduled - t0 < (m + 1) * 60]
            if part:
                minutes.append({"minute": m + 1, **_stats(part)})
        total = _stats(outcomes)
        errors: dict[str, int] = {}
        for o in outcomes:
            if not o.ok:
                kind = f"{o.status}" if o.status else (o.error or "?").split(":")[0]
                errors[kind] = errors.get(kind, 0) + 1
        # memory
        first_pids = samples[0][1] if samples else {}
        rss = {}
        for pid, start_kib in first_pids.items():
            series = [(t - t0, s[pid]) for t, s in samples if pid in s]
            end_kib = series[-1][1]
            slope = (
                float(np.polyfit([x for x, _ in series], [y for _, y in series], 1)[0]) * 60 / 1024
                if len(series) > 2
                else float("nan")
            )
            rss[pid] = {
                "start_mib": round(start_kib / 1024, 1),
                "end_mib": round(end_kib / 1024, 1),
                "growth_mib": round((end_kib - start_kib) / 1024, 1),
                "slope_mib_per_min": round(slope, 2),
                "peak_mib": round(max(y for _, y in series) / 1024, 1),
                "alive_at_end": pid in samples[-1][1],
            }
        replaced = sorted(set(samples[-1][1]) - set(first_pids)) if samples else []
        # nothing lost
        logged = harness.read_logged_ids(setup.db)
        acknowledged = {i for o in outcomes + warm_out if o.ok for i in o.ids}
        missing = len(acknowledged - logged)
        result = {
            "setup": setup.description,
            "workers": args.workers,
            "worker_kind": worker_kind(server),
            "history_cache_rows": "default" if args.history_cache_rows is None else args.history_cache_rows,
            "cpus": os.cpu_count(),
            "rate_rps": args.rate,
            "batch_share": args.batch_share,
            "batch_size": args.batch_size,
            "minutes": args.minutes,
            "warmup": _stats(warm_out),
            "total": total,
            "per_minute": minutes,
            "errors_by_kind": errors,
            "p99_drift_single_ms": round(minutes[-1]["single_p99_ms"] - minutes[0]["single_p99_ms"], 2)
            if minutes
            else None,
            "p99_drift_batch_ms": round(minutes[-1]["batch_p99_ms"] - minutes[0]["batch_p99_ms"], 2)
            if minutes
            else None,
            "achieved_rps": round(len(outcomes) / duration, 2),
            "rss_by_worker": rss,
            "wal_mib_max": round(max((w for _, _, w in files), default=0) / 2**20, 1),
            "wal_mib_end": round(files[-1][2] / 2**20, 1) if files else None,
            "series": {
                "rss_kib": [[round(t - t0, 1), s] for t, s in samples],
                "db_wal_bytes": [[round(t - t0, 1), d, w] for t, d, w in files],
            },
            "workers_replaced_during_soak": replaced,
            "acknowledged_not_logged": missing,
            "state_store_growth_mib": round((_db_bytes(setup.db) - db_start) / 2**20, 1),
            "history_cache_prunes": soak_log.count("history cache pruned"),
            "server_errors_logged": sum(" ERROR " in ln or "[ERROR]" in ln for ln in soak_log.splitlines()),
        }
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2, default=str))
        _report(result)
        return 0 if total["errors"] == 0 and missing == 0 else 1
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            logger.info("kept %s", workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _report(r: dict) -> None:
    print(f"\n{r['setup']}")
    print(
        f"{r['workers']} {r['worker_kind']}, {r['cpus']} CPUs, {r['rate_rps']} req/s planned "
        f"({r['batch_share']:.0%} batches of {r['batch_size']}), {r['minutes']} min; "
        f"achieved {r['achieved_rps']} req/s; FRAUD_HISTORY_CACHE_ROWS={r['history_cache_rows']}"
    )
    w = r["warmup"]
    print(f"warm-up: {w['requests']} requests, {w['errors']} errors, single p99 {w['single_p99_ms']} ms")
    header = (
        f"{'minute':>6s} {'req':>6s} {'tx':>7s} {'err':>4s} "
        f"{'1 p50':>7s} {'1 p99':>7s} {'B p50':>7s} {'B p99':>7s}"
    )
    print(header)
    print("-" * len(header))
    for m in [*r["per_minute"], {"minute": "all", **r["total"]}]:
        print(
            f"{m['minute']!s:>6s} {m['requests']:6d} {m['transactions']:7d} {m['errors']:4d} "
            f"{m['single_p50_ms']:7.1f} {m['single_p99_ms']:7.1f} "
            f"{m['batch_p50_ms']:7.1f} {m['batch_p99_ms']:7.1f}"
        )
    print(f"errors: {r['total']['errors']} {r['errors_by_kind'] or ''}")
    print(
        f"p99 drift, first to last minute: single {r['p99_drift_single_ms']:+.1f} ms, "
        f"batch {r['p99_drift_batch_ms']:+.1f} ms"
    )
    print(f"WAL: max {r['wal_mib_max']} MiB, {r['wal_mib_end']} MiB at the end")
    for pid, m in r["rss_by_worker"].items():
        print(
            f"worker {pid}: RSS {m['start_mib']} -> {m['end_mib']} MiB ({m['growth_mib']:+.1f} MiB, "
            f"trend {m['slope_mib_per_min']:+.2f} MiB/min, peak {m['peak_mib']} MiB)"
        )
    print(f"workers replaced during the soak: {r['workers_replaced_during_soak'] or 'none'}")
    print(f"acknowledged but not in the prediction log: {r['acknowledged_not_logged']}")
    print(
        f"state store grew by {r['state_store_growth_mib']} MiB; history cache prunes: "
        f"{r['history_cache_prunes']}; ERROR lines in the service log: {r['server_errors_logged']}"
    )


if __name__ == "__main__":
    sys.exit(main())
