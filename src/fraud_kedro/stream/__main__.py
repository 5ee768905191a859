"""``python -m fraud_kedro.stream``: the stream worker and a producer.

python -m fraud_kedro.stream worker            # make stream; settings from FRAUD_STREAM_* / FRAUD_*
python -m fraud_kedro.stream produce --rate 200 [--source simulated|PATH] [--count N] [--labels]
python -m fraud_kedro.stream tail [--count 10]  # the latest scores
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from fraud_kedro.stream.stream_config import StreamConfig

logger = logging.getLogger("fraud_kedro.stream")


def _produce(args: argparse.Namespace, cfg: StreamConfig) -> int:
    from fraud_kedro.stream.producer import (
        file_transactions,
        produce,
        simulated_transactions,
        transaction_payloads,
    )
    from fraud_kedro.stream.redis_broker import RedisStreamsBroker

    if args.source == "simulated":
        frame = simulated_transactions(args.days, args.id_offset, args.world)
    else:
        frame = file_transactions(Path(args.source))
    if args.count:
        frame = frame.head(args.count)
    payloads = list(transaction_payloads(frame))
    broker = RedisStreamsBroker(cfg.url)
    try:
        sent, seconds = produce(
            broker, payloads, cfg.transactions, args.rate, cfg.labels if args.labels else None
        )
    finally:
        broker.close()
    logger.info(
        "sent %d transactions to %s in %.1f s (%.0f/s)",
        sent,
        cfg.transactions,
        seconds,
        sent / max(seconds, 1e-9),
    )
    return 0


def _tail(args: argparse.Namespace, cfg: StreamConfig) -> int:
    import redis

    client = redis.Redis.from_url(cfg.url)
    for stream in (cfg.scores, cfg.dead_letter):
        entries = client.xrevrange(stream, count=args.count)
        logger.info("%s: %d entries, latest %d:", stream, client.xlen(stream), len(entries))
        for entry_id, fields in reversed(entries):
            logger.info("  %s %s", entry_id.decode(), json.loads(fields[b"data"]))
    client.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the CLI.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit code.
    """
    parser = argparse.ArgumentParser(
        prog="python -m fraud_kedro.stream",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("worker", help="score the transaction stream until SIGTERM")
    prod = sub.add_parser("produce", help="replay transactions into the stream")
    prod.add_argument("--rate", type=float, default=100.0, help="transactions per second (0: no pacing)")
    prod.add_argument("--source", default="simulated", help="'simulated' or a Parquet/CSV file")
    prod.add_argument("--count", type=int, default=0, help="send at most this many (0: all)")
    prod.add_argument("--days", type=int, default=1, help="simulated days")
    prod.add_argument("--id-offset", type=int, default=1_000_000_000, help="added to simulated ids")
    prod.add_argument("--world", default="simulation", help="simulation or simulation_small")
    prod.add_argument("--labels", action="store_true", help="also send each label to the labels stream")
    tail = sub.add_parser("tail", help="print the latest scores and dead letters")
    tail.add_argument("--count", type=int, default=10)
    demo = sub.add_parser("demo", help="a worker and a producer for a few seconds (make demo-stream)")
    demo.add_argument("--seconds", type=float, default=15.0)
    demo.add_argument("--rate", type=float, default=200.0)
    args = parser.parse_args(argv)
    if args.command == "worker":
        from fraud_kedro.stream.runner import run_worker

        run_worker()
        return 0
    if args.command == "demo":
        from fraud_kedro.stream.demo import run_demo

        return run_demo(args.seconds, args.rate)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = StreamConfig.from_env()
    return _produce(args, cfg) if args.command == "produce" else _tail(args, cfg)


if __name__ == "__main__":
    sys.exit(main())
