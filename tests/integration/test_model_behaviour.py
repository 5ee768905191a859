"""Behavioural tests of the model trained by the first ``small`` training run.

Directional: a much larger amount than the card's habit, at a terminal with recent (known) fraud,
does not lower the score. Invariance: identifiers are not signals.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from fraud_kedro.features import FeatureParams, compute_features
from fraud_kedro.pipelines.inference.nodes import predict_fraud

from .helpers import Project, TrainingRun

pytestmark = pytest.mark.slow

# trees are piecewise constant and calibrated scores carry tiny wiggles: "does not lower" allows this
TOLERANCE = 0.01


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Predict with one OpenMP thread (the cores are shared with other test processes)."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def transactions(project: Project) -> pd.DataFrame:
    return project.read_parquet("02_intermediate/validated_transactions.parquet")


def score(run: TrainingRun, new: pd.DataFrame, history: pd.DataFrame) -> np.ndarray:
    """The served path: online features from the history, then the inference node."""
    params = FeatureParams(**run.feature_spec["params"])
    features = compute_features(new, params, history=history)
    return predict_fraud(features, run.fraud_model, run.feature_spec, run.threshold)[
        "fraud_probability"
    ].to_numpy()


@pytest.fixture(scope="module")
def risky_cases(transactions: pd.DataFrame, first_training: TrainingRun) -> list[dict]:
    """Legitimate transactions at terminals whose known recent fraud rate is above zero."""
    params = FeatureParams(**first_training.feature_spec["params"])
    table = compute_features(transactions, params)
    test_start = first_training.scoring_input["timestamp"].min()
    risky = table[
        (table["terminal_risk_7d"] > 0)
        & (transactions["is_fraud"] == 0).to_numpy()
        & (table["timestamp"] >= test_start)
    ]
    assert len(risky) >= 10, "the small simulation should have compromised terminals"
    rows = risky.sample(n=10, random_state=0)
    return [
        {"row": transactions.loc[i], "habit": float(table.loc[i, "customer_mean_amount_30d"])}
        for i in rows.index
    ]


def as_request(row: pd.Series) -> pd.DataFrame:
    """A one-row raw transaction (what a request carries: no label) from a table row."""
    return (
        row.drop(["is_fraud", "fraud_scenario"])
        .to_frame()
        .T.astype(
            {
                "transaction_id": "int64",
                "customer_id": "int64",
                "terminal_id": "int64",
                "amount": "float64",
                "timestamp": "datetime64[ns]",
            }
        )
    )


def test_far_larger_amount_at_a_risky_terminal_does_not_lower_the_score(
    transactions: pd.DataFrame, first_training: TrainingRun, risky_cases: list[dict]
) -> None:
    raised = 0
    for case in risky_cases:
        row = case["row"]
        history = transactions[transactions["timestamp"] < row["timestamp"]]
        base = as_request(row)
        amounts = [case["habit"], case["habit"] * 5, case["habit"] * 10 + 300]
        scores = [score(first_training, base.assign(amount=a), history)[0] for a in amounts]
        assert scores[1] >= scores[0] - TOLERANCE, (row["transaction_id"], amounts, scores)
        assert scores[2] >= scores[1] - TOLERANCE, (row["transaction_id"], amounts, scores)
        raised += scores[2] > scores[0]
    # and it is not flat: most cases really score higher
    assert raised >= len(risky_cases) // 2


def test_known_fraud_at_the_terminal_does_not_lower_the_score(
    transactions: pd.DataFrame, first_training: TrainingRun, risky_cases: list[dict]
) -> None:
    """The same transaction scores no lower as its terminal's known history goes from all
    legitimate, to as it was, to all fraud; and the all-fraud history scores strictly higher than
    the all-legitimate one in most cases, which a model blind to the terminal's risk cannot do
    (the small model answers tiny amounts but distinct: 9 of these 10 cases on the current seed)."""
    raised = 0
    for case in risky_cases:
        row = case["row"]
        history = transactions[transactions["timestamp"] < row["timestamp"]]
        base = as_request(row)
        at_terminal = history["terminal_id"] == row["terminal_id"]
        legit = history.assign(is_fraud=np.where(at_terminal, 0, history["is_fraud"]))
        fraud = history.assign(is_fraud=np.where(at_terminal, 1, history["is_fraud"]))
        low, actual, high = (score(first_training, base, h)[0] for h in (legit, history, fraud))
        assert low - TOLERANCE <= actual <= high + TOLERANCE, (row["transaction_id"], low, actual, high)
        raised += high > low + 1e-6
    assert raised >= len(risky_cases) // 2, f"known fraud raised {raised} of {len(risky_cases)} scores"


def test_identifiers_do_not_change_the_score(transactions: pd.DataFrame, first_training: TrainingRun) -> None:
    params = FeatureParams(**first_training.feature_spec["params"])
    recent = transactions[
        transactions["timestamp"] >= transactions["timestamp"].max() - pd.Timedelta(days=45)
    ]
    rng = np.random.default_rng(0)
    customers = recent["customer_id"].unique()
    renamed = dict(zip(customers, [f"card-{c}" for c in rng.permutation(len(customers))], strict=True))
    relabelled = recent.assign(
        transaction_id=recent["transaction_id"] * 7 + 10**12,  # same order, other values
        customer_id=recent["customer_id"].map(renamed),  # strings, shuffled
    )
    spec, threshold, model = first_training.feature_spec, first_training.threshold, first_training.fraud_model
    before = predict_fraud(compute_features(recent, params), model, spec, threshold)
    after = predict_fraud(compute_features(relabelled, params), model, spec, threshold)
    np.testing.assert_array_equal(after["fraud_probability"], before["fraud_probability"])
    np.testing.assert_array_equal(after["transaction_id"], relabelled["transaction_id"])


def test_exported_model_ignores_the_transaction_id(first_training: TrainingRun, project: Project) -> None:
    import mlflow

    from .helpers import MODEL_NAME, use_mlflow

    example = first_training.scoring_input
    changed = example.assign(transaction_id=example["transaction_id"] + 987_654_321)
    with use_mlflow(project.tracking_uri):
        model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{first_training.version}")
        out = model.predict(changed)
    np.testing.assert_allclose(
        out["fraud_probability"], first_training.pyfunc_predictions["fraud_probability"], rtol=0, atol=0
    )
    np.testing.assert_array_equal(out["transaction_id"], changed["transaction_id"])
