"""The one module that imports NannyML, and handles its quirks (version 0.13.1).

* ``import nannyml`` takes about ten seconds, so it is imported lazily, once, on first use.
* NannyML sends usage telemetry unless ``NML_DISABLE_USAGE_LOGGING`` is in the environment when an
  event is logged: it is set before the import and again before every call.
* ``import nannyml`` calls ``dotenv.load_dotenv()``, which walks up from NannyML's install folder
  and would load the project's ``.env`` (secrets included) into ``os.environ``; the import runs
  with ``PYTHON_DOTENV_DISABLED=1`` so it loads nothing.
* Under pandas 3 every calculator raises pandas' deprecation warning for ``dropna(inplace=True)``
  thousands of times; :func:`quiet` filters that category from NannyML's modules only. It also
  drops NannyML's "number of chunks is too low" warning: the chunk plan logs its own message.
* NannyML logs a WARNING each time it clips a band to the metric's range (e.g. an upper ROC AUC
  band above 1); a logging filter on the ``nannyml`` logger drops exactly those records.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import warnings
from collections.abc import Iterator
from types import ModuleType

import pandas as pd

logger = logging.getLogger(__name__)

_TELEMETRY_OFF = "NML_DISABLE_USAGE_LOGGING"
_DOTENV_OFF = "PYTHON_DOTENV_DISABLED"
_NANNYML_MODULES = r"nannyml(\..*)?$"

try:  # pandas >= 3: the category of "this keyword will be removed in pandas 4"
    from pandas.errors import Pandas4Warning as _PandasDeprecation
except ImportError:  # pragma: no cover - pandas 2
    _PandasDeprecation = DeprecationWarning


class _DropBandClipping(logging.Filter):
    """Drop NannyML's benign "threshold value ... overridden by ... value limit" records."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("threshold value" in message and "overridden by" in message)


def disable_telemetry() -> None:
    """Make sure NannyML cannot send usage events (it checks the variable at every event)."""
    os.environ[_TELEMETRY_OFF] = "1"


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence NannyML's known-noisy warnings, and nothing else, inside the block."""
    disable_telemetry()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=_PandasDeprecation, module=_NANNYML_MODULES)
        warnings.filterwarnings(
            "ignore",
            message="The resulting number of chunks is too low",
            category=UserWarning,
            module=_NANNYML_MODULES,
        )
        yield


@functools.cache
def nannyml() -> ModuleType:
    """The ``nannyml`` module, imported on first use without telemetry or ``.env`` loading."""
    disable_telemetry()
    previous = os.environ.get(_DOTENV_OFF)
    os.environ[_DOTENV_OFF] = "1"
    try:
        with quiet():
            import nannyml as module  # noqa: PLC0415 - lazy: heavy, and telemetry is off first
    finally:
        if previous is None:
            os.environ.pop(_DOTENV_OFF, None)
        else:
            os.environ[_DOTENV_OFF] = previous
    for name in (
        "nannyml.performance_estimation.confidence_based.metrics",
        "nannyml.performance_calculation.metrics.binary_classification",
        "nannyml.thresholds",
    ):
        logging.getLogger(name).addFilter(_DropBandClipping())
    logger.debug("nannyml %s loaded (pandas %s)", module.__version__, pd.__version__)
    return module


def size_chunker(chunk_size: int) -> object:
    """NannyML's size-based chunker; the last incomplete chunk joins the one before it.

    The boundaries are those of :func:`fraud_kedro.monitoring.chunking.chunk_bounds`.
    """
    return nannyml().SizeBasedChunker(chunk_size=int(chunk_size), incomplete="append")


def std_threshold(multiplier: float) -> object:
    """A band of ``multiplier`` standard deviations of the reference chunks around their mean."""
    nannyml()  # imported the quiet way first
    from nannyml import thresholds  # noqa: PLC0415

    return thresholds.StandardDeviationThreshold(
        std_lower_multiplier=multiplier, std_upper_multiplier=multiplier
    )


def constant_threshold(lower: float | None, upper: float | None) -> object:
    """A fixed alert band."""
    nannyml()
    from nannyml import thresholds  # noqa: PLC0415

    return thresholds.ConstantThreshold(lower=lower, upper=upper)


def result_frame(result: object) -> pd.DataFrame:
    """A NannyML result as a frame with flat tuple column names, both periods, one row per chunk.

    NannyML nests the chunk fields two levels deep for univariate drift and one level deep
    elsewhere; use :func:`chunk_field` to read them.
    """
    df = result.to_df().reset_index(drop=True)  # type: ignore[attr-defined]
    df.columns = df.columns.to_flat_index()
    return df


def chunk_field(frame: pd.DataFrame, name: str) -> pd.Series:
    """A chunk field (``period``, ``chunk_index``, ``start_index``, ``end_index``) of a result."""
    for col in frame.columns:
        if isinstance(col, tuple) and col[0] == "chunk" and col[-1] == name:
            return frame[col]
    raise KeyError(f"NannyML result has no chunk field {name!r}")
