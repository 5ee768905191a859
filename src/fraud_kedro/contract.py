"""The project's public facts, each defined once (docs/contract.md is the reader's copy).

Everything a user, a script or CI relies on by name lives here: the raw transaction columns, the
default label delay, the registered model's name and aliases, and the metric names. Features,
ingestion, the simulator, the split, monitoring, evaluation and the scoring API import these
instead of writing the literals again; the configurable values (column renames, the label delay,
the model name) are read from ``conf/`` and these are only their defaults.
"""

from __future__ import annotations

from fraud_kedro.parameters import parameters


@parameters
class ColumnNames:
    """Names of the raw transaction columns (docs/contract.md, "Raw transactions").

    ``features.columns`` in ``conf/`` renames them when a file uses other names.
    """

    transaction_id: str = "transaction_id"
    timestamp: str = "timestamp"
    customer_id: str = "customer_id"
    terminal_id: str = "terminal_id"
    amount: str = "amount"
    label: str = "is_fraud"


#: The raw columns with their default names.
COLUMNS = ColumnNames()
#: Simulated data only: which fraud scenario produced a fraud (never a model input).
SCENARIO_COLUMN = "fraud_scenario"
#: The fields of one transaction as the scoring API takes it (the raw columns without labels).
TRANSACTION_FIELDS: tuple[str, ...] = (
    COLUMNS.transaction_id,
    COLUMNS.timestamp,
    COLUMNS.customer_id,
    COLUMNS.terminal_id,
    COLUMNS.amount,
)
#: The fields of one confirmed label (``POST /feedback``).
LABEL_FIELDS: tuple[str, ...] = (COLUMNS.transaction_id, COLUMNS.label)
#: The columns of a raw file in their order (the simulator writes exactly these).
RAW_COLUMNS: tuple[str, ...] = (*TRANSACTION_FIELDS, COLUMNS.label, SCENARIO_COLUMN)

#: A bank learns of fraud late (chargebacks): a label is known this many days after the
#: transaction. The one parameter is ``split.delay_days`` in conf/; this is its default.
DEFAULT_LABEL_DELAY_DAYS = 7

#: The MLflow registered model (``quality_gate.model_name`` in conf/ overrides it).
MODEL_NAME = "fraud_detector"
CHAMPION = "champion"
CHALLENGER = "challenger"


def model_uri(name: str = MODEL_NAME, alias: str = CHAMPION) -> str:
    """The registry URI of a model alias, e.g. ``models:/fraud_detector@champion``."""
    return f"models:/{name}@{alias}"


#: Metric names (logged to MLflow and written to data/08_reporting/metrics.json).
TEST_PREFIX = "test_"
ROC_AUC = "roc_auc"
AVERAGE_PRECISION = "average_precision"
PRECISION = "precision"
RECALL = "recall"
F1 = "f1"
ACCURACY = "accuracy"  # reported, never used to select or gate (docs/training.md)
RANKING_METRICS: tuple[str, ...] = (ROC_AUC, AVERAGE_PRECISION)
THRESHOLD_METRICS: tuple[str, ...] = (PRECISION, RECALL, F1)
TEST_ROC_AUC = TEST_PREFIX + ROC_AUC
TEST_AVERAGE_PRECISION = TEST_PREFIX + AVERAGE_PRECISION


def card_precision_metric(k: int) -> str:
    """The name of the test Card Precision@k metric, e.g. ``test_card_precision_at_100``."""
    return f"{TEST_PREFIX}card_precision_at_{k}"
