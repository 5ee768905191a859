"""The operational store: transaction history, prediction log (champion / shadow), label log.

The scoring service, its workers' history caches, the CLI and the monitoring and retraining
datasets talk to it through :class:`~fraud_kedro.store.interface.StateStore` only. Backends:
:mod:`fraud_kedro.store.sqlite` (embedded default) and :mod:`fraud_kedro.store.postgres` (shared by
workers, replicas and jobs), chosen by ``FRAUD_STATE_URL`` (:mod:`fraud_kedro.store.connect`).
Nothing here imports Flask.
"""

from fraud_kedro.features import HistoryWindow
from fraud_kedro.store.connect import mask_url, open_existing_store, open_store
from fraud_kedro.store.interface import TABLES, StateStore
from fraud_kedro.store.readers import read_label_log, read_prediction_log
from fraud_kedro.store.seeding import seed_history
from fraud_kedro.store.types import (
    ROLES,
    DuplicateTransactionError,
    EntityKeys,
    History,
    LoggedPrediction,
    ModelRef,
    Role,
    ScoredBatch,
    StateStoreError,
    StoreConfigError,
)

__all__ = [
    "ROLES",
    "TABLES",
    "DuplicateTransactionError",
    "EntityKeys",
    "History",
    "HistoryWindow",
    "LoggedPrediction",
    "ModelRef",
    "Role",
    "ScoredBatch",
    "StateStore",
    "StateStoreError",
    "StoreConfigError",
    "mask_url",
    "open_existing_store",
    "open_store",
    "read_label_log",
    "read_prediction_log",
    "seed_history",
]
