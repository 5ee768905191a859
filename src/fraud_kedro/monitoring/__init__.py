"""Model monitoring toolkit: a thin, replaceable wrapper around NannyML.

Only :mod:`~fraud_kedro.monitoring._nannyml` imports NannyML (lazily, on first use: the import
takes ~10 s), and only :mod:`~fraud_kedro.monitoring.estimator` and
:mod:`~fraud_kedro.monitoring.drift` call it. They take and return plain pandas tables, so another
backend can replace NannyML behind the same functions. The other modules (chunking, metrics,
sources, alerts, plots) do not depend on NannyML.
"""

import os

# NannyML reads this at every usage event; set it before anything can import NannyML.
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")

from fraud_kedro.monitoring.params import MonitoringParams  # noqa: E402

__all__ = ["MonitoringParams"]
