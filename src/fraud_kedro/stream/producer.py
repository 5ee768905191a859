"""Replay transactions into the stream at a given rate (demo, load tests).

``python -m fraud_kedro.stream produce --rate 200 [--source simulated|PATH] [--count N] [--labels]``

* ``simulated`` (default): the project's simulator (``conf/base/parameters_simulation.yml``, the
  world ``make run`` trains on) run for ``--days`` days starting the day after that world ends, so
  the cards and terminals have a history in the serving store; ids are offset by ``--id-offset``
  so they never meet the training data's. The same arguments give the same transactions: running
  the producer twice replays them (idempotently).
* ``PATH``: a Parquet or CSV file in the raw schema (``docs/data.md``), replayed in time order.

Each message's one field ``data`` is the transaction object of ``POST /score``; with ``--labels``
its label follows on the labels stream.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from fraud_kedro.stream.broker import Broker, Record

logger = logging.getLogger(__name__)

SIMULATION_PARAMS = Path("conf/base/parameters_simulation.yml")
TRANSACTION_COLUMNS = ("transaction_id", "timestamp", "customer_id", "terminal_id", "amount")


def simulated_transactions(
    days: int = 1, id_offset: int = 1_000_000_000, world: str = "simulation", params_path: Path | None = None
) -> pd.DataFrame:
    """Transactions of the training world's cards and terminals, after the world's last day.

    Args:
        days: Days to simulate.
        id_offset: Added to the simulator's ids (0..n-1).
        world: The parameter key (``simulation`` or ``simulation_small``).
        params_path: The simulation parameters file (default: ``conf/base``'s).

    Returns:
        Raw transactions sorted by time, with ``is_fraud``.
    """
    from fraud_kedro.simulation import SimulationParams, simulate

    path = params_path or SIMULATION_PARAMS
    params: dict[str, Any] = {}
    if path.exists():
        params = dict(yaml.safe_load(path.read_text())[world])
    start = pd.Timestamp(params.get("start_date", "2018-04-01")) + pd.Timedelta(
        days=int(params.get("n_days", 183))
    )
    params.update(start_date=start.strftime("%Y-%m-%d"), n_days=days)
    if isinstance(params.get("drift"), dict) and params["drift"].get("enabled", True):
        # the world's drift began before its end: the days after it are all drifted
        params["drift"] = {**params["drift"], "start_day": 0}
    frame = simulate(SimulationParams(**params))
    frame = frame.assign(transaction_id=frame["transaction_id"].to_numpy() + id_offset)
    return frame.drop(columns=["fraud_scenario"], errors="ignore")


def file_transactions(path: Path) -> pd.DataFrame:
    """Raw transactions of a Parquet or CSV file, in time order."""
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    missing = [c for c in TRANSACTION_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks the columns {missing}")
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    return frame.sort_values(["timestamp", "transaction_id"], kind="stable").reset_index(drop=True)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def transaction_payloads(frame: pd.DataFrame) -> Iterator[tuple[str, str, str | None]]:
    """``(transaction JSON, customer key, label JSON or None)`` per row, in frame order."""
    stamps = pd.to_datetime(frame["timestamp"]).dt.strftime("%Y-%m-%dT%H:%M:%S.%f").tolist()
    ids = frame["transaction_id"].tolist()
    customers = frame["customer_id"].tolist()
    terminals = frame["terminal_id"].tolist()
    amounts = frame["amount"].astype(float).tolist()
    labels = frame["is_fraud"].tolist() if "is_fraud" in frame.columns else [None] * len(frame)
    for tid, ts, cust, term, amount, label in zip(
        ids, stamps, customers, terminals, amounts, labels, strict=True
    ):
        tx = {
            "transaction_id": _plain(tid),
            "timestamp": ts,
            "customer_id": _plain(cust),
            "terminal_id": _plain(term),
            "amount": amount,
        }
        label_json = None
        if label is not None and not pd.isna(label):
            label_json = json.dumps({"transaction_id": _plain(tid), "is_fraud": int(label)})
        yield json.dumps(tx), str(_plain(cust)), label_json


def produce(
    broker: Broker,
    payloads: Sequence[tuple[str, str, str | None]],
    transactions_stream: str,
    rate: float,
    labels_stream: str | None = None,
    chunk_seconds: float = 0.01,
) -> tuple[int, float]:
    """Publish transactions at ``rate`` per second (0: as fast as possible).

    Args:
        broker: Where to publish.
        payloads: From :func:`transaction_payloads`.
        transactions_stream: The transactions stream.
        rate: Transactions per second; 0 for no pacing.
        labels_stream: Also publish each label there (None: no labels).
        chunk_seconds: Pacing granularity: what is due is sent in one pipeline this often.

    Returns:
        ``(transactions sent, seconds taken)``.
    """
    started = time.perf_counter()
    sent = 0
    total = len(payloads)
    while sent < total:
        elapsed = time.perf_counter() - started
        due = total if rate <= 0 else min(total, int(elapsed * rate) + 1)
        if due <= sent:
            time.sleep(min(chunk_seconds, (sent + 1) / rate - elapsed))
            continue
        due = min(due, sent + 5000)
        records = []
        for tx, key, label in payloads[sent:due]:
            records.append(Record(transactions_stream, tx, key))
            if labels_stream and label is not None:
                records.append(Record(labels_stream, label, key))
        broker.publish(records)
        sent = due
    return sent, time.perf_counter() - started
