"""Two tuning processes on one Optuna study in PostgreSQL share their trials, and the best result
is reproducible from the stored study. Needs a PostgreSQL server (FRAUD_TEST_POSTGRES_URL, default
postgresql://postgres@127.0.0.1:5432/test); each run uses its own database, dropped afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraud_kedro.distributed.tuning import open_storage, sampler_seed, storage_url

URL = os.environ.get("FRAUD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
FEATURES = ["f0", "f1", "f2"]
MODEL = {
    "seed": 7,
    "omp_threads": 1,
    "candidates": ["logistic_regression"],
    "tuning": {"n_folds": 2, "n_trials": 4, "timeout_seconds": None, "negative_sample_rate": 0.5,
               "study_prefix": "", "storage": None, "worker": 0},
    "fixed_params": {"logistic_regression": {"max_iter": 200}},
    "search_spaces": {"logistic_regression": {"C": {"type": "float", "low": 0.001,
                                                     "high": 10.0, "log": True}}},
}
SPLIT = {"train_start": "2018-04-21", "train_days": 7, "delay_days": 2, "test_days": 3}
SCRIPT = textwrap.dedent("""
    import json, sys
    import pandas as pd
    from fraud_kedro.pipelines.data_science.nodes import tune_models
    from fraud_kedro.split import SplitParams
    history = pd.read_parquet(sys.argv[1])
    spec, split, model = (json.loads(a) for a in sys.argv[2:5])
    results = tune_models(history, {"train_start": split["train_start"]}, spec, SplitParams(**split),
                          model)[0]
    print(json.dumps(results))
""")


def test_storage_url_and_worker_seed() -> None:
    assert storage_url("postgresql://u@h:5432/db") == "postgresql+psycopg://u@h:5432/db"
    assert storage_url("sqlite:///x.db") == "sqlite:///x.db"
    assert storage_url(None) is None
    assert sampler_seed(42, {"worker": 2}) == 44 and sampler_seed(42, {}) == 42
    with pytest.raises(ValueError, match="worker"):
        sampler_seed(42, {"worker": -1})


@pytest.fixture
def database() -> str:
    """A new database on the test server; dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"no PostgreSQL at {URL} under CI: {exc}")
        pytest.skip(f"no PostgreSQL at {URL} ({exc}); start one or set FRAUD_TEST_POSTGRES_URL")
    name = f"fraud_optuna_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield URL.rsplit("/", 1)[0] + "/" + name
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _history(path: Path) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 3000
    x = rng.normal(size=(n, 3))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=1.5, size=n) > 2.2).astype(np.int64)
    frame = pd.DataFrame(x, columns=FEATURES).assign(
        transaction_id=np.arange(n),
        timestamp=pd.Timestamp("2018-04-01") + pd.to_timedelta(np.sort(rng.uniform(0, 27, n)), "D"),
        is_fraud=y,
    )
    frame.to_parquet(path, index=False)
    return frame


def _tune(history: Path, model: dict, worker: int) -> subprocess.Popen:
    spec = {"features": FEATURES, "params": {}}
    tuning = {**model["tuning"], "worker": worker}
    args = [json.dumps(spec), json.dumps(SPLIT), json.dumps({**model, "tuning": tuning})]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(history), *args],  # noqa: S603
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_two_processes_share_one_study(database: str, tmp_path: Path) -> None:
    import optuna
    from sklearn.metrics import average_precision_score

    from fraud_kedro.models import build_estimator
    from fraud_kedro.split import SplitParams, prequential_folds

    history = _history(tmp_path / "history.parquet")
    model = {**MODEL, "tuning": {**MODEL["tuning"], "storage": database,
                                 "study_prefix": f"test-{uuid.uuid4().hex[:8]}"}}
    name = f"{model['tuning']['study_prefix']}-logistic_regression"
    # the study (and the storage's tables) exist before the workers start, as in a deployment:
    # two processes creating Optuna's schema at the same moment would race
    optuna.create_study(study_name=name, storage=open_storage(database), direction="maximize")
    procs = [_tune(tmp_path / "history.parquet", model, worker) for worker in (0, 1)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1])["candidates"]["logistic_regression"])

    study = optuna.load_study(study_name=name, storage=open_storage(database))
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(study.trials) == 8  # 4 trials from each process, in one study
    assert max(r["n_trials"] for r in results) == 8  # the last to finish saw the other's trials
    assert len({t.params["C"] for t in complete}) == len(complete)  # no duplicated proposals
    best = study.best_trial
    assert max(r["validation_average_precision"] for r in results) == pytest.approx(best.value,
                                                                                  abs=0)
    # the best result again from the stored parameters: the same folds, the same fits
    folds = prequential_folds(history["timestamp"], pd.Timestamp(SPLIT["train_start"]),
                              SplitParams(**SPLIT), 2)
    x, y = history[FEATURES].to_numpy(dtype=np.float64), history["is_fraud"].to_numpy()
    rng = np.random.default_rng(model["seed"])
    scores = []
    for fit, val in folds:
        keep = (y[fit] == 1) | (rng.random(len(fit)) < 0.5)
        params = {**model["fixed_params"]["logistic_regression"], **best.params}
        fitted = build_estimator("logistic_regression", params, model["seed"]).fit(
            x[fit[keep]], y[fit[keep]])
        scores.append(average_precision_score(y[val], fitted.predict_proba(x[val])[:, 1]))
    assert float(np.mean(scores)) == best.value
    # the storage keeps no idle connection: nothing of this process is left on the server
    import psycopg

    with psycopg.connect(URL, autocommit=True) as admin:
        (left,) = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database.rsplit("/", 1)[1],),
        ).fetchone()
    assert left == 0
