"""The loop closed on served traffic, on a fresh PostgreSQL database (issue 12, item 4).

train (champion v1) -> the service scores a drifted period on ``FRAUD_STATE_URL`` -> fraud reports
to ``/feedback`` -> ``kedro run --pipeline own_data_retraining --params
"monitoring.source=service_log,served_traffic.enabled=true"`` (monitoring reads the store, training
reads the bank's history file, ``raw_transactions``, and the served transactions with settled
labels) -> the quality gate promotes v2 -> ``POST /admin/reload`` serves v2. The sequence of
docs/serving.md ("Retraining from served traffic"), at ``--env small``: the simulated world drifts
from day 60 on, the history file the model is trained on ends there and the service scores the 30
days after it.

Cost: about 150 s of CPU, nearly all of it the two Kedro trainings (MLflow model logging
included) and two model loads; 7-10 min wall clock on the shared 2-core machine.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from .helpers import MODEL_NAME, Project, use_mlflow

pytestmark = pytest.mark.slow

KEY = "loop-test-key"
FIRST_RUN = "split.production_days=30,simulation.drift.start_day=60"
RETRAIN = "monitoring.source=service_log,served_traffic.enabled=true"


def _body(row) -> dict:
    return {
        "transaction_id": int(row.transaction_id),
        "timestamp": row.timestamp.isoformat(),
        "customer_id": int(row.customer_id),
        "terminal_id": int(row.terminal_id),
        "amount": float(row.amount),
    }


def _versions() -> tuple[list[int], dict[str, str], str]:
    from mlflow import MlflowClient

    client = MlflowClient()
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{MODEL_NAME}'"))
    aliases = {k: str(v) for k, v in client.get_registered_model(MODEL_NAME).aliases.items()}
    tag = client.get_model_version(MODEL_NAME, str(versions[-1])).tags.get("quality_gate", "")
    return versions, aliases, tag


def test_served_traffic_retrains_and_the_service_reloads_v2_on_postgres(
    tmp_path: Path, copy_project: Callable[[Path], Path], postgres_url: str
) -> None:
    path = copy_project(tmp_path / "fraud_kedro")
    proj = Project(path=path, tracking_uri=f"sqlite:///{path / 'mlflow.db'}")
    proj.run("--params", FIRST_RUN)  # simulate, features, train, monitor: v1 is the champion

    # the history the bank has: everything before the production period; the service scores the rest
    world = pd.read_parquet(proj.data("01_raw/simulated_transactions.parquet"))
    start = pd.Timestamp(proj.read_json("05_model_input/split_info.json")["test_end"])
    # "your own data" (raw_transactions): own_data_retraining reads it
    history_file = proj.data("01_raw/transactions.parquet")
    world[world["timestamp"] < start].to_parquet(history_file, index=False)
    period = world[world["timestamp"] >= start].sort_values(["timestamp", "transaction_id"])
    assert len(period) > 10_000

    from fraud_kedro.api import create_app

    with use_mlflow(proj.tracking_uri):
        app = create_app(
            {
                "model_uri": f"models:/{MODEL_NAME}@champion",
                "tracking_uri": proj.tracking_uri,
                "state_db": postgres_url,
                "seed_path": str(history_file),
                "api_keys": (KEY,),
                "model_poll_seconds": 0,
                "model_sync_seconds": 0,
            }
        )
        client = app.test_client()
        headers = {"X-API-Key": KEY}
        try:
            for i in range(0, len(period), 2000):
                batch = [_body(r) for r in period.iloc[i : i + 2000].itertuples()]
                answer = client.post("/score", json={"transactions": batch}, headers=headers)
                assert answer.status_code == 200, answer.get_json()
                assert answer.get_json()["model"]["version"] == "1"
            # the bank reports the frauds; no report after the label delay = legitimate
            frauds = period.loc[period["is_fraud"] == 1, "transaction_id"].astype(int).tolist()
            labels = [{"transaction_id": tx, "is_fraud": 1} for tx in frauds]
            answer = client.post("/feedback", json={"labels": labels}, headers=headers)
            assert answer.get_json() == {"received": len(frauds), "matched": len(frauds)}

            log = proj.run("--pipeline", "own_data_retraining", "--params", RETRAIN,
                           extra_env={"FRAUD_STATE_URL": postgres_url})  # fmt: skip

            # monitoring read the service's logs from PostgreSQL and found the period drifted
            read = f"service log {postgres_url}: {len(period)} predictions, 0 shadow, {len(frauds)} labels"
            assert read in log
            assert "retraining due" in log
            # training read the served transactions with settled labels from the same store
            settled = proj.read_parquet("02_intermediate/validated_transactions.parquet")
            served = settled[settled["transaction_id"].isin(period["transaction_id"])]
            assert len(served) > len(period) // 2, "served rows older than the delay are training rows"
            assert f"of {len(period)} scored transactions have settled labels" in log
            train = proj.read_parquet("05_model_input/train_set.parquet")
            from_service = train.merge(period[["transaction_id", "is_fraud"]], on="transaction_id",
                                       suffixes=("", "_truth"))  # fmt: skip
            assert len(from_service) > len(train) // 2, "the latest training window is served traffic"
            assert from_service["is_fraud"].sum() > 0
            assert (from_service["is_fraud"] == from_service["is_fraud_truth"]).all()

            versions, aliases, tag = _versions()
            assert versions == [1, 2]
            assert (aliases["champion"], aliases["challenger"]) == ("2", "2"), aliases
            assert tag == "promote"
            verdict = proj.read_json("08_reporting/quality_gate_verdict.json")
            assert verdict["promote"] is True, verdict["reasons"]

            # the service reloads the new champion
            answer = client.post("/admin/reload", headers=headers)
            assert answer.status_code == 200, answer.get_json()
            reload = answer.get_json()["champion"]
            assert (reload["status"], reload["version"], reload["previous_version"]) == ("loaded", "2", "1")
            assert client.get("/model", headers=headers).get_json()["champion"]["version"] == "2"
            late = {**_body(period.iloc[-1]), "transaction_id": 10**12}
            answer = client.post("/score", json=late, headers=headers)
            assert answer.status_code == 200 and answer.get_json()["model"]["version"] == "2"
        finally:
            app.extensions["fraud"].get_store().close()
