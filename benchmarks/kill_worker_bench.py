"""Kill gunicorn workers with SIGKILL under load and measure what it costs.

Usage (from the project root)::

    .venv/bin/python benchmarks/kill_worker_bench.py [--kills 3] [--interval 20] [--rate 20]
        [--workers 2] [--use-project-model] [--json out.json]

Same setup as ``benchmarks/soak_bench.py`` (temporary registry and state store, or the project's
model with ``--use-project-model``; gunicorn started as ``make serve`` does; open-loop load of
mixed single and batch requests). Every ``--interval`` seconds one worker gets SIGKILL: by default
one caught handling a request (state R in ``/proc``: the worst case), with ``--target any`` the
next one in turn whatever it is doing.
For each kill it reports:

* failed requests (no answer or a 5xx) and whether each was in flight when the worker died (goal:
  only those: at most one on a sync worker, on a gthread worker the requests it had accepted), next
  to the number of requests in flight on the whole service at that moment;
* time until the master has started a replacement, and until the replacement has loaded the model
  (its ``champion model now ...`` log line): the time to recover full capacity;
* p99 latency in the recovery window against the seconds before the kill.

Then it retries every failed request (a client would: the API is idempotent on transaction ids)
and checks that every acknowledged transaction is in the prediction log exactly once.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from soak_bench import harness, prepare, start_server, worker_kind  # noqa: E402

logger = logging.getLogger("kill_worker_bench")


def main() -> int:  # noqa: PLR0915 - a linear script
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=4)
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between kills")
    parser.add_argument(
        "--target",
        choices=["busy", "any"],
        default="busy",
        help="busy: kill a worker while it handles a request (the worst case); "
        "any: the next worker in turn, whatever it is doing",
    )
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
    parser.add_argument("--use-project-model", action="store_true")
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--model-uri", default="models:/fraud_detector@champion")
    parser.add_argument("--data", default="data/02_intermediate/validated_transactions.parquet")
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for noisy in ("mlflow", "kedro", "alembic", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    workdir = Path(tempfile.mkdtemp(prefix="kill-bench-"))
    server = None
    try:
        setup = prepare(
            workdir, args.use_project_model, args.tracking_uri, args.model_uri, args.data, args.customers
        )
        logger.info("%s", setup.description)
        server = start_server(setup, args.workers, args.worker_threads)
        server.wait_workers(args.workers)
        stream = harness.TxStream(setup.future)
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
        warm.start(10).join()  # history caches loaded in every worker
        duration = args.interval * (args.kills + 1)
        load = harness.FixedRateLoad(
            server.port, stream, args.rate, args.batch_share, args.batch_size, args.client_threads, seed=3
        ).start(duration)
        kills = []
        for k in range(args.kills):
            time.sleep(max(0.0, load.t0 + args.interval * (k + 1) - time.monotonic()))
            workers = server.workers()
            victim = (harness.busy_worker(workers) if args.target == "busy" else None) or workers[
                k % len(workers)
            ]
            killed_at = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            pids = server.wait_workers(args.workers, exclude={victim}, timeout=60)
            spawned_at = time.monotonic()
            ready_at = server.wait_for_log("champion model now", since=killed_at, timeout=120)
            new = sorted(set(pids) - set(workers))
            kills.append(
                {
                    "victim": victim,
                    "replacement": new,
                    "killed_at": killed_at,
                    "spawned_s": round(spawned_at - killed_at, 3),
                    "model_loaded_s": round(ready_at - killed_at, 2) if ready_at else None,
                }
            )
            logger.info(
                "kill %d: worker %d -> %s, spawned after %.3f s, model loaded after %s s",
                k + 1,
                victim,
                new,
                spawned_at - killed_at,
                kills[-1]["model_loaded_s"],
            )
        outcomes = load.join(timeout=duration + 300)

        for kill in kills:
            t = kill["killed_at"]
            loaded = t + (kill["model_loaded_s"] or 0)
            near = [o for o in outcomes if t - args.interval / 2 <= o.scheduled < t + args.interval / 2]
            failed = [o for o in near if not o.ok]
            before = [o.latency for o in near if o.ok and o.scheduled < t - 0.5 and o.kind == "single"]
            during = [o.latency for o in near if o.ok and t <= o.scheduled < loaded and o.kind == "single"]
            kill.update(
                {
                    "failed": len(failed),
                    "failed_in_flight": sum(o.started <= t <= o.ended for o in failed),
                    "in_flight_at_kill": sum(o.started <= t <= o.ended for o in outcomes),
                    "failures": [
                        {
                            "status": o.status,
                            "error": o.error,
                            "kind": o.kind,
                            "sent_before_kill_s": round(t - o.started, 3),
                        }
                        for o in failed
                    ],
                    "single_p99_before_ms": round(harness.percentile_ms(before, 99), 1),
                    "single_p99_recovering_ms": round(harness.percentile_ms(during, 99), 1),
                    "requests_while_recovering": len([o for o in near if t <= o.scheduled < loaded]),
                }
            )
            kill.pop("killed_at")
        failed_all = [o for o in outcomes if not o.ok]
        far = [
            o
            for o in failed_all
            if not any(
                abs(o.scheduled - (load.t0 + args.interval * (k + 1))) < args.interval / 2
                for k in range(args.kills)
            )
        ]
        retried = [server.call("POST", "/score", o.body) for o in failed_all]
        logged = harness.read_logged_ids(setup.db)
        acknowledged = {i for o in outcomes if o.ok for i in o.ids}
        retried_ids = {i for o in failed_all for i in o.ids}
        conn = sqlite3.connect(f"file:{setup.db}?mode=ro", uri=True)
        try:
            duplicates = conn.execute(
                "SELECT COUNT(*) FROM (SELECT transaction_id FROM prediction_log "
                "GROUP BY transaction_id HAVING COUNT(*) > 1)"
            ).fetchone()[0]
        finally:
            conn.close()
        result = {
            "setup": setup.description,
            "workers": args.workers,
            "cpus": os.cpu_count(),
            "target": args.target,
            "worker_kind": worker_kind(server),
            "rate_rps": args.rate,
            "batch_share": args.batch_share,
            "batch_size": args.batch_size,
            "requests": len(outcomes),
            "failed": len(failed_all),
            "failed_away_from_kills": len(far),
            "kills": kills,
            "retries": {
                "sent": len(retried),
                "ok": sum(r.status == 200 for r in retried),
                "replayed": sum(r.headers.get("idempotent-replayed") == "true" for r in retried),
            },
            "acknowledged_not_logged": len(acknowledged - logged),
            "retried_not_logged": len(retried_ids - logged),
            "logged_twice": duplicates,
            "master_alive": server.proc is not None and server.proc.poll() is None,
        }
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2, default=str))
        _report(result)
        ok = (
            all(k["failed"] == k["failed_in_flight"] for k in kills)
            and not far
            and result["acknowledged_not_logged"] == 0
            and result["retried_not_logged"] == 0
            and duplicates == 0
        )
        return 0 if ok else 1
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _report(r: dict) -> None:
    print(f"\n{r['setup']}")
    print(
        f"{r['workers']} {r['worker_kind']}, {r['cpus']} CPUs, {r['rate_rps']} req/s "
        f"({r['batch_share']:.0%} batches of {r['batch_size']}); {r['requests']} requests, "
        f"{r['failed']} failed ({r['failed_away_from_kills']} away from a kill)"
    )
    header = (
        f"{'kill':>4s} {'failed':>6s} {'of which in flight':>18s} {'in flight (all)':>15s} "
        f"{'spawned s':>9s} {'loaded s':>8s} "
        f"{'p99 before':>10s} {'p99 recov.':>10s} {'req recov.':>10s}"
    )
    print(header)
    print("-" * len(header))
    for i, k in enumerate(r["kills"], 1):
        print(
            f"{i:4d} {k['failed']:6d} {k['failed_in_flight']:18d} {k['in_flight_at_kill']:15d} "
            f"{k['spawned_s']:9.3f} "
            f"{k['model_loaded_s'] if k['model_loaded_s'] is not None else float('nan'):8.2f} "
            f"{k['single_p99_before_ms']:10.1f} {k['single_p99_recovering_ms']:10.1f} "
            f"{k['requests_while_recovering']:10d}"
        )
        for f in k["failures"]:
            print(
                f"       failed {f['kind']} request, sent {f['sent_before_kill_s']} s before the kill: "
                f"{f['status'] or f['error']}"
            )
    rt = r["retries"]
    print(
        f"retries of failed requests: {rt['ok']}/{rt['sent']} answered 200 ({rt['replayed']} replayed "
        f"from the log: scored before the worker died)"
    )
    print(
        f"acknowledged but not logged: {r['acknowledged_not_logged']}; retried but not logged: "
        f"{r['retried_not_logged']}; logged twice: {r['logged_twice']}; master alive: {r['master_alive']}"
    )


if __name__ == "__main__":
    sys.exit(main())
