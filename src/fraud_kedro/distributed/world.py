"""A world larger than memory, written as partitioned Parquet one block at a time.

The world is ``n_blocks`` independent regions, each a complete simulated world of the
``simulation`` parameters (customers, terminals, every fraud scenario and the drift), simulated by
the project's simulator with the seed ``seed + block`` and written as one Parquet file before the
next block is simulated: memory holds one block (the default block: 5,000 customers, ~1.8 M
transactions), whatever the number of blocks. Block 0 is the default world itself (same seed);
the ids of block b are offset so that they are unique across blocks (customers by
``b * n_customers``, terminals by ``b * (n_terminals + drift.new_terminals.n_terminals)``,
transactions by the rows of the earlier blocks). The same parameters and block count give the
same files, bit for bit.

Command line::

    python -m fraud_kedro.distributed.world --blocks 28 --out data/01_raw/world_50m
"""

from __future__ import annotations

import argparse
import copy
import logging
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

logger = logging.getLogger(__name__)


def _simulate(params: dict[str, Any]) -> Any:
    from fraud_kedro.simulation import SimulationParams, simulate

    return simulate(SimulationParams(**params))


def _new_terminals(params: dict[str, Any]) -> int:
    drift = params.get("drift") or {}
    new = drift.get("new_terminals") or {}
    return int(new.get("n_terminals", 2000))


def block_params(params: dict[str, Any], block: int) -> dict[str, Any]:
    """The simulation parameters of one block (its seed)."""
    out = copy.deepcopy(params)
    out["seed"] = int(params.get("seed", 42)) + block
    return out


def write_world(params: dict[str, Any], n_blocks: int, out: Path,
                row_group_rows: int = 500_000) -> dict[str, Any]:
    """Simulate ``n_blocks`` blocks and write ``out/part-XXXXX.parquet``, one block at a time.

    Args:
        params: The ``simulation`` parameters of one block.
        n_blocks: Number of blocks (regions).
        out: Output directory (created; existing part files are replaced).
        row_group_rows: Parquet row group size (Dask can split a file by row groups).

    Returns:
        ``{"rows", "blocks", "files", "seconds"}``.
    """
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("part-*.parquet"):
        stale.unlink()
    n_customers = int(params.get("n_customers", 5000))
    terminal_span = int(params.get("n_terminals", 10000)) + _new_terminals(params)
    started, rows = time.perf_counter(), 0
    for block in range(n_blocks):
        tx = _simulate(block_params(params, block))
        tx = tx.assign(
            transaction_id=tx["transaction_id"] + rows,
            customer_id=tx["customer_id"] + block * n_customers,
            terminal_id=tx["terminal_id"] + block * terminal_span,
        )
        path = out / f"part-{block:05d}.parquet"
        tmp = path.with_suffix(".tmp")
        pq.write_table(pa.Table.from_pandas(tx, preserve_index=False), tmp,
                       row_group_size=row_group_rows)
        tmp.replace(path)
        rows += len(tx)
        logger.info("world block %d/%d: %d rows (%d in all)", block + 1, n_blocks, len(tx), rows)
        del tx
    return {"rows": rows, "blocks": n_blocks, "files": n_blocks,
            "seconds": round(time.perf_counter() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    """Command line: write a world of ``--blocks`` default-sized blocks."""
    import yaml

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, required=True, help="blocks of ~1.8 M rows each")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--params", type=Path, default=Path("conf/base/parameters_simulation.yml"),
                        help="YAML file with the simulation parameters")
    parser.add_argument("--key", default="simulation", help="top-level key in --params")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    params = yaml.safe_load(args.params.read_text())[args.key]
    logger.info("wrote %s", write_world(params, args.blocks, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
