"""fraud_kedro: payment-card fraud detection as a Kedro project."""

import os

# Nothing may call home: telemetry of kedro, nannyml and friends is off wherever the package runs.
for _var, _value in (
    ("KEDRO_DISABLE_TELEMETRY", "1"),
    ("DO_NOT_TRACK", "1"),
    ("NML_DISABLE_USAGE_LOGGING", "1"),
    # MLflow 3 honours DO_NOT_TRACK only when it is "true"; its own switch is explicit
    ("MLFLOW_DISABLE_TELEMETRY", "true"),
):
    os.environ.setdefault(_var, _value)

__version__ = "0.1.0"
