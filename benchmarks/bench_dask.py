"""Benchmark: the pandas path vs the Dask path of validation + point-in-time features.

Usage::

    python -m fraud_kedro.distributed.world --blocks 28 --out /tmp/world   # ~50 M rows
    nice -n 15 .venv/bin/python benchmarks/bench_dask.py --world /tmp/world --blocks 1,6,28 \\
        --pandas-max-blocks 6 --workers 2 --memory-limit 6GB --work /tmp/bench_dask

Each size is the first N part files of the world (one block = the default world, ~1.8 M rows;
block 0 *is* the default data). Every run is a child process watched by this one: wall time and
the peak resident memory of each process (sampled with psutil every 0.2 s, and the processes' own
``ru_maxrss``); a process over ``--cap-gb`` is killed and reported as out of memory (the machine is
shared: no process may take it all). The pandas path runs only up to ``--pandas-max-blocks``; the
size where it would exhaust 24 GB is extrapolated linearly from its peak memory per row (printed
as such). At one block the two outputs are compared bit for bit.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")

import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GB = 2**30


def _feature_params():  # noqa: ANN202 - FeatureParams, imported in the child
    from fraud_kedro.features import FeatureParams

    conf = ROOT / "conf" / "base" / "parameters_data_processing.yml"
    return FeatureParams(**yaml.safe_load(conf.read_text())["features"])


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child_pandas(files: list[str], out: Path) -> dict:
    """The pandas nodes on the whole table in one process."""
    import pandas as pd

    from fraud_kedro.pipelines.data_processing.nodes import (
        build_model_input_table,
        validate_raw_transactions,
    )

    fp = _feature_params()
    t0 = time.perf_counter()
    raw = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    valid, _ = validate_raw_transactions(raw, fp, 7)
    del raw
    t1 = time.perf_counter()
    table = build_model_input_table(valid, fp, 7)
    del valid
    out.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out / "model_input_table.parquet", index=False)
    t2 = time.perf_counter()
    return {"rows": len(table), "validate_s": t1 - t0, "features_s": t2 - t1,
            "processes": {"pandas": _maxrss_bytes()}}


def child_dask(files: list[str], out: Path, workers: int, memory_limit: str) -> dict:
    """The Dask nodes on a local cluster of ``workers`` single-threaded workers."""
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    from fraud_kedro.distributed import nodes

    fp = _feature_params()
    from fraud_kedro.distributed.cluster import DaskParams

    dask_params = DaskParams(enabled=True)
    with LocalCluster(n_workers=workers, threads_per_worker=1, memory_limit=memory_limit,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        t0 = time.perf_counter()
        raw = dd.read_parquet(files)
        valid, quarantine = nodes.validate_raw_transactions(raw, fp, 7, dask_params)
        valid.to_parquet(str(out / "validated"), write_index=False)
        quarantine.to_parquet(str(out / "quarantine"), write_index=False)
        t1 = time.perf_counter()
        valid = dd.read_parquet(str(out / "validated"))
        table = nodes.build_model_input_table(valid, fp, 7, dask_params)
        table.to_parquet(str(out / "model_input_table"), write_index=False)
        t2 = time.perf_counter()
        rows = int(dd.read_parquet(str(out / "model_input_table")).shape[0].compute())
        peaks = client.run(_maxrss_bytes)
        return {"rows": rows, "validate_s": t1 - t0, "features_s": t2 - t1,
                "processes": {"client": _maxrss_bytes(),
                              **{f"worker {i}": v for i, v in enumerate(peaks.values())}}}


def run_child(engine: str, files: list[str], out: Path, args: argparse.Namespace) -> dict:
    """Run one measurement in a child process, watching every process of its tree."""
    import psutil

    cmd = [sys.executable, __file__, "--child", engine, "--out", str(out),
           "--workers", str(args.workers), "--memory-limit", args.memory_limit,
           "--files", *files]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # noqa: S603
    parent, sampled, killed = psutil.Process(proc.pid), 0, None
    while proc.poll() is None:
        try:
            tree = [parent, *parent.children(recursive=True)]
            for p in tree:
                rss = p.memory_info().rss
                sampled = max(sampled, rss)
                if rss > args.cap_gb * GB and killed is None:
                    killed = f"process {p.pid} over {args.cap_gb} GB"
                    for q in reversed(tree):
                        q.kill()
        except psutil.Error:
            pass
        time.sleep(0.2)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - started
    if killed or proc.returncode != 0:
        return {"error": killed or f"exit {proc.returncode}: {stderr[-2000:]}", "wall_s": wall,
                "sampled_peak": sampled}
    result = json.loads(stdout.strip().splitlines()[-1])
    result.update(wall_s=wall, sampled_peak=sampled)
    return result


def parity(work: Path) -> str:
    """Compare the pandas and Dask model input tables of the default data bit for bit."""
    import pandas as pd

    a = pd.read_parquet(work / "pandas-1" / "model_input_table.parquet")
    b = pd.read_parquet(work / "dask-1" / "model_input_table")
    a = a.sort_values("transaction_id").reset_index(drop=True)
    b = b.sort_values("transaction_id").reset_index(drop=True)
    try:
        pd.testing.assert_frame_equal(b, a, check_exact=True)
    except AssertionError as exc:
        return f"DIFFERENT: {str(exc)[:300]}"
    return f"equal bit for bit ({len(a):,} rows x {a.shape[1]} columns)"


def main() -> int:
    """Parse arguments, run the sizes, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, help="directory of the world's part files")
    parser.add_argument("--blocks", default="1,6,28", help="sizes in blocks (~1.8 M rows each)")
    parser.add_argument("--engines", default="pandas,dask")
    parser.add_argument("--pandas-max-blocks", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="6GB", help="per Dask worker")
    parser.add_argument("--cap-gb", type=float, default=7.5, help="kill a process above this")
    parser.add_argument("--machine-gb", type=float, default=24.0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_dask"))
    parser.add_argument("--child", choices=["pandas", "dask"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--files", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "pandas":
        print(json.dumps(child_pandas(args.files, args.out)))  # noqa: T201 - result to the parent
        return 0
    if args.child == "dask":
        print(json.dumps(child_dask(args.files, args.out, args.workers, args.memory_limit)))  # noqa: T201
        return 0
    parts = sorted(str(p) for p in args.world.glob("part-*.parquet"))
    rows_table = []
    for blocks in (int(b) for b in args.blocks.split(",")):
        files = parts[:blocks]
        for engine in args.engines.split(","):
            if engine == "pandas" and blocks > args.pandas_max_blocks:
                continue
            out = args.work / f"{engine}-{blocks}"
            subprocess.run(["rm", "-rf", str(out)], check=True)  # noqa: S603,S607
            result = run_child(engine, files, out, args)
            result.update(engine=engine, blocks=blocks)
            rows_table.append(result)
            print(json.dumps(result), flush=True)  # noqa: T201 - progress
    lines = ["", "| engine | blocks | rows | wall s | validate s | features s | peak RSS per "
             "process (GB) |", "|---|---|---|---|---|---|---|"]
    for r in rows_table:
        if "error" in r:
            lines.append(f"| {r['engine']} | {r['blocks']} | - | {r['wall_s']:.0f} | - | - | "
                         f"{r['error'][:80]} (sampled {r['sampled_peak'] / GB:.1f}) |")
            continue
        peaks = ", ".join(f"{k} {v / GB:.2f}" for k, v in r["processes"].items())
        lines.append(f"| {r['engine']} | {r['blocks']} | {r['rows']:,} | {r['wall_s']:.0f} | "
                     f"{r['validate_s']:.0f} | {r['features_s']:.0f} | {peaks} |")
    pandas = [r for r in rows_table if r["engine"] == "pandas" and "error" not in r]
    if pandas:
        per_row = max(r["processes"]["pandas"] / r["rows"] for r in pandas)
        lines.append(f"\npandas path: {per_row:.0f} bytes of peak memory per row -> it would need "
                     f"{args.machine_gb:.0f} GB at ~{args.machine_gb * GB / per_row / 1e6:.0f} M "
                     f"rows (EXTRAPOLATED linearly, not run)")
    if (args.work / "pandas-1").exists() and (args.work / "dask-1").exists():
        lines.append(f"parity on the default data (block 0): {parity(args.work)}")
    print("\n".join(lines))  # noqa: T201 - the benchmark's output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
