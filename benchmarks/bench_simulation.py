"""Benchmark of the transaction simulator at its default size.

Usage::

    .venv/bin/python benchmarks/bench_simulation.py [--key simulation] [--no-tracemalloc]

Prints the number of rows, the fraud rate overall and per scenario, the wall time and the peak
memory (Python allocations traced by ``tracemalloc``, numpy arrays included, and the process's
maximum resident set size).
"""

import argparse
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import yaml

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")

from fraud_kedro.simulation import SCENARIO_NAMES, SimulationParams, simulate  # noqa: E402

PARAMS_FILE = Path(__file__).resolve().parents[1] / "conf" / "base" / "parameters_simulation.yml"


def main() -> int:
    """Run the simulator once and print its size, fraud rates, time and memory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--key", default="simulation", help="top-level key of the params file")
    parser.add_argument("--no-tracemalloc", action="store_true", help="do not trace allocations")
    args = parser.parse_args()

    with PARAMS_FILE.open() as fh:
        params = yaml.safe_load(fh)[args.key]

    if not args.no_tracemalloc:
        tracemalloc.start()
    start = time.perf_counter()
    df = simulate(SimulationParams(**params))
    seconds = time.perf_counter() - start
    traced_peak = tracemalloc.get_traced_memory()[1] if tracemalloc.is_tracing() else None
    tracemalloc.stop()
    max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    n = len(df)
    print(f"params: {args.key} ({PARAMS_FILE.name})")
    print(f"rows: {n:,}")
    print(f"fraud rate: {df['is_fraud'].mean():.4%} ({int(df['is_fraud'].sum()):,} frauds)")
    counts = df["fraud_scenario"].value_counts()
    for code, name in SCENARIO_NAMES.items():
        k = int(counts.get(code, 0))
        print(f"  scenario {code} {name:<22} {k:>8,} ({k / n:.4%})")
    print(f"wall time: {seconds:.2f} s")
    if traced_peak is not None:
        print(f"peak traced memory: {traced_peak / 2**20:.0f} MB")
    print(f"max RSS (whole process): {max_rss_mb:.0f} MB")
    print(f"output frame: {df.memory_usage(deep=True).sum() / 2**20:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
