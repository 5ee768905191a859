"""End to end: the ``fraud_detector@champion`` that ``kedro run --env small`` registered is served by
``create_app`` and by a real gunicorn, and ``POST /score`` gives what the exported kedro-mlflow model
(the batch inference pipeline) gives on the batch features of the same transactions.

The transactions are the first ones of the production period, scored in time order (one request
each through ``create_app``, one batch through gunicorn) on a state store seeded with every
transaction before that period, so the online history windows hold what the batch windows hold (all
of them fall within the label delay of the seed). Training is the integration tests' shared
``first_training`` run; this module adds about 10 s of scoring and one gunicorn start.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support.gunicorn import Gunicorn, server_env
from support.registry import MODEL_NAME, mlflow_uri, seed_state
from support.serving import CHAMPION_URI, serving_config, tx_body

from fraud_kedro.api import create_app
from fraud_kedro.features import FeatureParams

from .helpers import Project, TrainingRun

pytestmark = pytest.mark.slow

N_SCORED = 150


@pytest.fixture(scope="module")
def served(project: Project, first_training: TrainingRun, tmp_path_factory: pytest.TempPathFactory):
    """The transactions to score, the batch answers of the champion, and a seeded store."""
    import mlflow

    production = project.read_parquet("05_model_input/production_set.parquet")
    production = production.sort_values(["timestamp", "transaction_id"]).head(N_SCORED)
    production = production.reset_index(drop=True)
    validated = project.read_parquet("02_intermediate/validated_transactions.parquet")
    start = production["timestamp"].min()
    params = FeatureParams(**first_training.feature_spec["params"])
    # every scored transaction is within the label delay of the seed: no label reaches the
    # terminal windows online that the batch windows would not hold
    assert production["timestamp"].max() < start + pd.Timedelta(days=params.label_delay_days)
    seed = validated[validated["timestamp"] < start]
    db = seed_state(tmp_path_factory.mktemp("served") / "template.db", seed, params)
    with mlflow_uri(project.tracking_uri) as client:
        version = str(client.get_model_version_by_alias(MODEL_NAME, "champion").version)
        batch = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{version}").predict(production)
    return {"rows": production, "batch": batch, "template": db, "version": version}


def _fresh_db(served: dict, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copyfile(served["template"], folder / "state.db"))


def _check(answers: list[dict], served: dict) -> None:
    batch = served["batch"]
    assert [a["transaction_id"] for a in answers] == served["rows"]["transaction_id"].tolist()
    got = np.array([a["fraud_probability"] for a in answers])
    np.testing.assert_allclose(got, batch["fraud_probability"].to_numpy(), rtol=0, atol=1e-9)
    assert [a["is_fraud_predicted"] for a in answers] == batch["is_fraud_predicted"].tolist()
    assert np.ptp(got) > 0.05  # not a constant model


def test_create_app_serves_the_trained_champion_as_batch_scores_it(
    project: Project, served: dict, tmp_path: Path
) -> None:
    answers = []
    with mlflow_uri(project.tracking_uri):  # create_app points MLflow's URI at the run's store
        client = create_app(serving_config(project.tracking_uri, _fresh_db(served, tmp_path))).test_client()
        for row in served["rows"].itertuples():
            response = client.post("/score", json=tx_body(row))
            assert response.status_code == 200, response.data
            payload = response.get_json()
            assert payload["model"]["version"] == served["version"]
            answers.append(payload["results"][0])
    _check(answers, served)


def test_gunicorn_serves_the_trained_champion_as_batch_scores_it(
    project: Project, served: dict, tmp_path: Path
) -> None:
    db = _fresh_db(served, tmp_path)
    env = server_env(project.tracking_uri, db, FRAUD_MODEL_URI=CHAMPION_URI)
    batch = {"transactions": [tx_body(row) for row in served["rows"].itertuples()]}
    with Gunicorn(tmp_path / "gunicorn", env, workers=1).start() as server:
        reply = server.call("POST", "/score", batch, timeout=120)  # a batch sees its own earlier rows
    assert reply.status == 200, reply.body
    assert reply.body["model"]["version"] == served["version"]
    _check(reply.body["results"], served)
