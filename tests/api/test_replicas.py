"""Replicas agree: two real gunicorn instances on one PostgreSQL answer what one instance answers.

Instance A and instance B (separate gunicorn masters on two localhost ports, one database of this
test run) take turns scoring a sequence of transactions; an in-process app on a SQLite store with
the same seed scores the same sequence alone. Same probabilities and logged features; a retry on
the other replica is an idempotent replay; a different body with a known id is a 409; a label
sent to A changes the terminal-risk features B computes once the label delay has passed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_config
from model_factory import FEATURE_PARAMS
from support.gunicorn import Gunicorn
from support.serving import CHAMPION_URI
from test_gunicorn import KEY, _call
from test_scoring import as_body

from fraud_kedro.api import create_app
from fraud_kedro.features import FeatureParams
from fraud_kedro.store import read_prediction_log, seed_history

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture
def replicas(registry, history, postgres_url, tmp_path):
    seed_history(postgres_url, history, FeatureParams(**FEATURE_PARAMS))
    env = {
        "MLFLOW_TRACKING_URI": registry["uri"],
        "FRAUD_MODEL_URI": CHAMPION_URI,
        "FRAUD_STATE_URL": postgres_url,
        "FRAUD_API_KEYS": KEY,
    }
    servers = []
    try:
        for name in ("a", "b"):
            servers.append(Gunicorn(tmp_path / f"gunicorn-{name}", env, workers=1).start())
        yield [f"http://127.0.0.1:{srv.port}" for srv in servers], postgres_url
    finally:
        for srv in servers:
            srv.stop()


def test_two_replicas_on_postgres_answer_what_one_instance_answers(replicas, registry, state_db, held_out):

    (a, b), url = replicas
    alone = create_app(make_config(registry, state_db)).test_client()
    rows = [as_body(r) for r in held_out.iloc[:24].itertuples()]
    # the same customer or terminal comes back on the other replica within the sequence
    for i, body in enumerate(rows):
        status, payload = _call(f"{(a, b)[i % 2]}/score", body)
        reference = alone.post("/score", json=body).get_json()
        assert status == 200, payload
        assert payload["results"][0]["fraud_probability"] == pytest.approx(
            reference["results"][0]["fraud_probability"], abs=1e-12
        )

    # a retry on the other replica replays; another body with the same id is the documented 409
    status, replay = _call(f"{b}/score", rows[0])
    assert status == 200 and replay["results"][0]["transaction_id"] == rows[0]["transaction_id"]
    status, conflict = _call(f"{a}/score", {**rows[0], "amount": rows[0]["amount"] + 1})
    assert status == 409, conflict

    # a label sent to A reaches the terminal-risk features of B after the label delay
    labelled = rows[3]
    delay = pd.Timedelta(days=FEATURE_PARAMS["terminal_label_delay_days"] + 1)
    later = pd.Timestamp(labelled["timestamp"]) + delay
    probes = []
    for n, fraud in enumerate((1, 0)):
        feedback = {"labels": [{"transaction_id": labelled["transaction_id"], "is_fraud": fraud}]}
        assert _call(f"{a}/feedback", feedback)[0] == 200
        assert alone.post("/feedback", json=feedback).status_code == 200
        probe = {**labelled, "transaction_id": 9_000_000_000 + n, "customer_id": 987_654_321 + n,
                 "timestamp": (later + pd.Timedelta(seconds=n)).isoformat()}  # fmt: skip
        assert _call(f"{b}/score", probe)[0] == 200
        assert alone.post("/score", json=probe).status_code == 200
        probes.append(probe["transaction_id"])
    served = read_prediction_log(url).set_index("transaction_id")
    single = read_prediction_log(state_db).set_index("transaction_id")
    risk = [c for c in served.columns if c.startswith("terminal_risk_")]
    assert risk
    np.testing.assert_allclose(served.loc[probes, risk], single.loc[probes, risk])
    assert (served.loc[probes[0], risk] > served.loc[probes[1], risk]).any()  # the label counted
    ids = [r["transaction_id"] for r in rows]
    features = [c for c in single.columns if c in served.columns and c not in ("scored_at",)]
    pd.testing.assert_frame_equal(
        served.loc[ids, features].drop(columns=["model_version"]),
        single.loc[ids, features].drop(columns=["model_version"]),
        check_dtype=False,
    )
