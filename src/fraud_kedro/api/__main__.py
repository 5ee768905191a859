"""``python -m fraud_kedro.api``: seed and inspect the serving state store.

    python -m fraud_kedro.api seed [--from data/02_intermediate/validated_transactions.parquet]
                                   [--db data/07_model_output/serving_state.db] [--days N]
    python -m fraud_kedro.api prune --keep-days 45 [--db ...]
    python -m fraud_kedro.api status [--db ...]

The service seeds an empty store by itself on first start (``FRAUD_SEED_PATH``); ``seed`` does it
ahead of time (e.g. in a deployment step) and can add newer data later (known ids are skipped).
``prune`` deletes history rows older than the features need (the prediction and label logs stay).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd
import yaml

from fraud_kedro.api.serving_config import DEFAULT_SEED_PATH, ServingConfig
from fraud_kedro.features import FeatureParams
from fraud_kedro.store import TABLES, open_store, seed_history

logger = logging.getLogger("fraud_kedro.api")


def _feature_params(conf: Path) -> FeatureParams:
    """The ``features`` parameters of the project (conf/base), or the defaults."""
    path = conf / "base" / "parameters_data_processing.yml"
    if path.exists():
        params = (yaml.safe_load(path.read_text()) or {}).get("features")
        if params:
            return FeatureParams(**params)
    return FeatureParams()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit code.
    """
    config = ServingConfig.from_env()
    parser = argparse.ArgumentParser(prog="python -m fraud_kedro.api", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    seed = sub.add_parser("seed", help="load the last days of transactions into the history")
    seed.add_argument("--from", dest="source", default=config.seed_path or DEFAULT_SEED_PATH)
    seed.add_argument("--db", default=config.state_db)
    seed.add_argument("--days", type=int, default=None, help="default: the features' history")
    seed.add_argument("--conf", default="conf", help="Kedro conf folder (feature parameters)")
    prune = sub.add_parser("prune", help="delete history rows older than --keep-days")
    prune.add_argument("--db", default=config.state_db)
    prune.add_argument("--keep-days", type=int, required=True)
    status = sub.add_parser("status", help="row counts of the store")
    status.add_argument("--db", default=config.state_db)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    if args.command == "seed":
        source = Path(args.source)
        if not source.exists():
            logger.error("no data at %s", source)
            return 1
        frame = pd.read_parquet(source) if source.suffix == ".parquet" else pd.read_csv(source)
        params = _feature_params(Path(args.conf))
        inserted = seed_history(args.db, frame, params, days=args.days)
        logger.info("%d transactions added to %s", inserted, args.db)
        return 0
    store = open_store(args.db)
    if args.command == "prune":
        try:
            deleted = store.prune(args.keep_days)["transactions"]
        finally:
            store.close()
        logger.info("%d history rows older than %d days deleted", deleted, args.keep_days)
        return 0
    try:
        for table in TABLES:
            logger.info("%-22s %d rows", table, store.count(table))
        logger.info("seeded_at              %s", store.get_meta("seeded_at"))
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
