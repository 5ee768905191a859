"""Optuna storage for tuning shared by several processes or machines (``model.tuning.storage``).

Every process that runs ``tune_models`` with the same ``storage`` and ``study_prefix`` works on
the same studies: trials are written to the database as they finish, each process's TPE sampler
reads all of them, and ``study.best_trial`` is the best of everybody's trials. Give each process
its own ``model.tuning.worker`` (0, 1, ...): it offsets the sampler's seed, so that two workers do
not propose the same parameters. A PostgreSQL URL ``postgresql://USER@HOST:PORT/DB`` is used with
the psycopg (3) driver that the lock ships.
"""

from __future__ import annotations

from typing import Any


def storage_url(storage: str | None) -> str | None:
    """The SQLAlchemy URL of an Optuna storage: ``postgresql://`` gets the psycopg driver."""
    if storage is None:
        return None
    storage = str(storage)
    for prefix in ("postgresql://", "postgres://"):
        if storage.startswith(prefix):
            return "postgresql+psycopg://" + storage[len(prefix):]
    return storage


def open_storage(storage: str | None) -> Any:
    """The Optuna storage of ``model.tuning.storage``: None (in memory) or an RDB storage that
    holds no idle connection (each session's connection is closed when it ends, so a finished
    run leaves nothing open on the server)."""
    url = storage_url(storage)
    if url is None:
        return None
    import optuna
    from sqlalchemy.pool import NullPool

    return optuna.storages.RDBStorage(url, engine_kwargs={"poolclass": NullPool})


def sampler_seed(seed: int, tuning: dict[str, Any]) -> int:
    """The TPE sampler's seed of this tuning worker: ``seed + model.tuning.worker``."""
    worker = int(tuning.get("worker") or 0)
    if worker < 0:
        raise ValueError("model.tuning.worker must be >= 0")
    return int(seed) + worker
