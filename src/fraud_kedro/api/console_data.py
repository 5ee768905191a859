"""What the analyst console shows, read from the store, the model holder and the reports.

Kept apart from the Flask views (:mod:`fraud_kedro.api.console`) so that it is tested without HTTP.
The alert queue follows Card Precision@k: for one day, each card's highest-scoring transaction,
cards ranked by that score, the top ``k`` kept; a card with a label on that day has been handled
and leaves the queue.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from fraud_kedro.store.readers import read_label_log, read_prediction_log

_KEYS = ("transaction_id", "timestamp", "customer_id", "terminal_id", "fraud_probability")
_HISTORY = ("transaction_id", "timestamp", "terminal_id", "fraud_probability")
_NOT_FEATURES = {*_KEYS, "is_fraud_predicted", "model_version", "scored_at", "reasons", "day"}


def _latest(path: Path) -> Path | None:
    """The file itself, or the newest version of a Kedro-versioned file."""
    if path.is_file():
        return path
    versions = sorted(path.glob(f"*/{path.name}")) if path.is_dir() else []
    return versions[-1] if versions else None


def _plain(value: Any) -> Any:
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def alert_queue(store: Any, day: str | None, k: int, history_rows: int = 10) -> dict[str, Any]:
    """The day's top-``k`` cards by score, without the cards already labelled that day.

    Args:
        store: The service's store (:class:`fraud_kedro.store.interface.StateStore`).
        day: ``YYYY-MM-DD``; None for the latest day with predictions.
        k: How many cards.
        history_rows: How many recent scored transactions of each card to show.

    Returns:
        ``{"day", "days", "k", "cases": [{"transaction": {...}, "score", "reasons" | "features",
        "history": [...]}]}``.
    """
    log = read_prediction_log(store, reasons=True)
    if log.empty:
        return {"day": day, "days": [], "k": k, "cases": []}
    log = log.drop_duplicates("transaction_id", keep="last")
    log["day"] = log["timestamp"].dt.strftime("%Y-%m-%d")
    days = sorted(log["day"].unique(), reverse=True)
    day = day if day in days else days[0]
    labels = read_label_log(store)
    labelled = set(labels["transaction_id"].tolist()) if not labels.empty else set()
    today = log[log["day"] == day]
    handled = set(today.loc[today["transaction_id"].isin(labelled), "customer_id"].tolist())
    open_cases = today[~today["customer_id"].isin(handled)]
    top = (
        open_cases.sort_values(["fraud_probability", "transaction_id"], ascending=[False, True])
        .drop_duplicates("customer_id")
        .head(k)
    )
    features = [c for c in log.columns if c not in _NOT_FEATURES]
    cases = []
    for row in top.itertuples(index=False):
        record = row._asdict()
        card = log[(log["customer_id"] == record["customer_id"]) & (log["timestamp"] <= record["timestamp"])]
        history = card.sort_values("timestamp", ascending=False).head(history_rows)
        case: dict[str, Any] = {
            "transaction": {key: _plain(record[key]) for key in _KEYS},
            "score": float(record["fraud_probability"]),
            "history": [
                {key: _plain(h[key]) for key in _HISTORY} | {"label": _label(labels, h["transaction_id"])}
                for h in history.to_dict("records")
            ],
        }
        reasons = record.get("reasons")
        if isinstance(reasons, str) and reasons:
            case["reasons"] = json.loads(reasons)
        elif isinstance(reasons, list) and reasons:
            case["reasons"] = reasons
        else:
            case["features"] = {name: _plain(record[name]) for name in features}
        cases.append(case)
    return {"day": day, "days": days[:60], "k": k, "cases": cases}


def _label(labels: pd.DataFrame, transaction_id: int) -> int | None:
    if labels.empty:
        return None
    found = labels.loc[labels["transaction_id"] == transaction_id, "is_fraud"]
    return int(found.iloc[-1]) if len(found) else None


def scoring_defaults(store: Any) -> dict[str, Any]:
    """A transaction for the scoring form: the latest served card and terminal, a minute later.

    The card then has history, so that the score uses it (a timestamp of today, years after the
    data, would leave every history feature empty).
    """
    rows, *_ = store.history_snapshot(1)
    if not rows:
        return {"timestamp": datetime.now().replace(microsecond=0).isoformat(), "customer_id": 17,
                "terminal_id": 42, "amount": 57.3, "transaction_id": 1}  # fmt: skip
    last = max(rows, key=lambda r: r[2])
    moment = datetime(1970, 1, 1) + timedelta(microseconds=last[2]) + timedelta(minutes=1)
    return {
        "timestamp": moment.replace(microsecond=0).isoformat(),
        "customer_id": last[3],
        "terminal_id": last[4],
        "amount": round(float(last[5]), 2),
        "transaction_id": int(max(r[1] for r in rows)) + 1_000_000,
    }


def model_status(state: Any) -> dict[str, Any] | None:
    """The model in service: name, version, threshold, and the window it was trained on."""
    model = state.champion.current
    if model is None:
        return None
    info = {"name": model.name, "version": model.version, "threshold": model.threshold,
            "loaded_at": model.loaded_at.isoformat(sep=" ", timespec="seconds"),
            "trained_window": _trained_window(model.run_id)}  # fmt: skip
    return info


_WINDOWS: dict[str, str | None] = {}


def _trained_window(run_id: str | None) -> str | None:
    """``train_start`` to ``train_end`` from the training run's ``split_info`` (cached per run)."""
    if not run_id:
        return None
    if run_id not in _WINDOWS:
        try:
            import mlflow

            split = mlflow.artifacts.load_dict(f"runs:/{run_id}/data/split_info.json")
            start, end = split.get("train_start"), split.get("train_end")
            _WINDOWS[run_id] = f"{start} to {end}" if start else None
        except Exception:  # noqa: BLE001 - a run without the artifact shows no window
            _WINDOWS[run_id] = None
    return _WINDOWS[run_id]


def monitoring_status(reports_dir: Path) -> dict[str, Any] | None:
    """The last monitoring run: decision, reasons, alert summaries, and whether its page exists."""
    decision_file = _latest(reports_dir / "monitoring" / "retrain_decision.json")
    if decision_file is None:
        return None
    decision = json.loads(decision_file.read_text())
    return {
        "retrain": bool(decision.get("retrain")),
        "reasons": decision.get("reasons", []),
        "as_of": decision.get("as_of"),
        "generated_at": decision.get("generated_at"),
        "alerts": decision.get("alerts", []),
        "has_report": report_file(reports_dir) is not None,
    }


def report_file(reports_dir: Path) -> Path | None:
    """The newest monitoring ``index.html``."""
    return _latest(reports_dir / "monitoring" / "index.html")
