"""``python -m fraud_kedro.store``: migrate, prune and inspect the operational store.

    python -m fraud_kedro.store migrate              # make migrate: create or upgrade the schema
    python -m fraud_kedro.store prune --older-than DAYS [--cut-monitoring-window]
    python -m fraud_kedro.store status

The store is ``FRAUD_STATE_URL`` (``sqlite:///PATH`` or ``postgresql://...``), else
``FRAUD_STATE_DB`` (a SQLite path), else ``--url``. ``prune`` deletes history rows and prediction
and label log rows older than DAYS before the latest transaction; it never cuts into the days the
features need (the model's ``history_days``) nor, unless ``--cut-monitoring-window``, into the
monitoring window (``FRAUD_MONITORING_WINDOW_DAYS``, default 35: the label delay and four weeks of
analysis), which monitoring and retraining read from the logs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from fraud_kedro.features import FeatureParams
from fraud_kedro.store.connect import mask_url, state_url_from_env
from fraud_kedro.store.interface import TABLES
from fraud_kedro.store.types import StateStoreError

logger = logging.getLogger("fraud_kedro.store")

DEFAULT_MONITORING_WINDOW_DAYS = 35


def _monitoring_window_days() -> int:
    raw = os.environ.get("FRAUD_MONITORING_WINDOW_DAYS", "").strip()
    return int(raw) if raw else DEFAULT_MONITORING_WINDOW_DAYS


def prune_days(older_than: int, history_days: int, monitoring_days: int, cut_window: bool) -> tuple[int, int]:
    """``(history_keep_days, logs_keep_days)`` for ``prune --older-than``.

    Args:
        older_than: What the user asked.
        history_days: Days the features look back (never pruned).
        monitoring_days: The monitoring window (kept unless ``cut_window``).
        cut_window: Allow cutting into the monitoring window.
    """
    history_keep = max(older_than, history_days + 1)
    logs_keep = older_than if cut_window else max(older_than, monitoring_days)
    return history_keep, logs_keep


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m fraud_kedro.store",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", default=None, help="default: FRAUD_STATE_URL / FRAUD_STATE_DB")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="create or upgrade the schema to this release's version")
    prune = sub.add_parser("prune", help="delete history and log rows older than --older-than")
    prune.add_argument("--older-than", type=int, required=True, metavar="DAYS")
    prune.add_argument("--cut-monitoring-window", action="store_true")
    sub.add_parser("status", help="schema version and row counts")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    url = args.url or state_url_from_env()
    try:
        if args.command == "migrate":
            from fraud_kedro.store.migrate import upgrade

            upgrade(url)
            return 0
        from fraud_kedro.store.connect import open_store

        store = open_store(url)
        try:
            if args.command == "prune":
                history_keep, logs_keep = prune_days(
                    args.older_than,
                    FeatureParams().history_days,
                    _monitoring_window_days(),
                    args.cut_monitoring_window,
                )
                deleted = store.prune(history_keep, logs_keep)
                logger.info(
                    "pruned %s: history older than %d days, logs older than %d days: %s",
                    mask_url(url),
                    history_keep,
                    logs_keep,
                    deleted,
                )
            else:
                logger.info("store %s", store.description)
                for table in TABLES:
                    logger.info("%-16s %d rows", table, store.count(table))
                logger.info("seeded_at        %s", store.get_meta("seeded_at"))
        finally:
            store.close()
    except StateStoreError as exc:
        logger.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
