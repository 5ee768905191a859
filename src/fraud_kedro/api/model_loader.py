"""Loading the exported inference pipeline once per worker, and swapping it atomically.

The served model is the kedro-mlflow ``KedroPipelineModel`` exported by the training pipeline. It is
loaded once with :func:`mlflow.pyfunc.load_model`, unwrapped, and its inference pipeline's nodes are
run directly on a plain dict in topological order. ``KedroPipelineModel.predict`` would deep-copy the
catalog and build a runner on every call (milliseconds per request, and unsafe under threads); the
nodes are the same, so the served model is still exactly the exported pipeline.

:class:`~fraud_kedro.api.model_holder.ModelHolder` keeps the model in service and swaps it
atomically (:mod:`fraud_kedro.api.model_holder`; its names are still importable from here).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from fraud_kedro.contract import MODEL_NAME
from fraud_kedro.features import FeatureParams, compute_features
from fraud_kedro.parameters import build
from fraud_kedro.store import ModelRef

logger = logging.getLogger(__name__)

PREDICTION_COLUMNS = ("transaction_id", "fraud_probability", "is_fraud_predicted")
_ALIAS_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/]+)$")
_VERSION_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")
_RUN_URI = re.compile(r"^runs:/(?P<run>[^/]+)/")


class ModelLoadError(RuntimeError):
    """The model cannot be resolved, loaded or fails its smoke test."""


@dataclass(frozen=True)
class ResolvedUri:
    """A model URI pinned to one version.

    Attributes:
        name: Registered model name (or the configured name for a non-registry URI).
        version: Registry version, run id, or the URI itself.
        load_uri: The URI to load (``models:/name/version`` for an alias).
        run_id: The MLflow run that produced it, when known.
    """

    name: str
    version: str
    load_uri: str
    run_id: str | None = None


def resolve_model_uri(uri: str, default_name: str = MODEL_NAME) -> ResolvedUri:
    """Pin a model URI to a version, so that a later alias move cannot change what is loaded.

    Args:
        uri: ``models:/name@alias``, ``models:/name/version``, ``runs:/id/path`` or a path.
        default_name: Name reported for non-registry URIs.

    Returns:
        The pinned URI.

    Raises:
        ModelLoadError: When the registry does not know the alias or version.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        if match := _ALIAS_URI.match(uri):
            mv = MlflowClient().get_model_version_by_alias(match["name"], match["alias"])
            return ResolvedUri(
                match["name"], str(mv.version), f"models:/{match['name']}/{mv.version}", mv.run_id
            )
        if match := _VERSION_URI.match(uri):
            mv = MlflowClient().get_model_version(match["name"], match["version"])
            return ResolvedUri(match["name"], str(mv.version), uri, mv.run_id)
    except MlflowException as exc:
        raise ModelLoadError(f"cannot resolve {uri}: {exc.message}") from exc
    if match := _RUN_URI.match(uri):
        return ResolvedUri(default_name, match["run"], uri, match["run"])
    return ResolvedUri(default_name, uri, uri)


@dataclass
class LoadedModel:
    """An exported inference pipeline, ready to score ``compute_features`` output.

    Attributes:
        name: Registered model name.
        version: Version in the registry.
        uri: The pinned URI loaded.
        source_uri: The configured URI (e.g. with an alias).
        run_id: Training run.
        feature_params: Feature parameters shipped with the model (``feature_spec`` artifact).
        features: Ordered model features.
        feature_dtypes: Dtypes of the features as :func:`compute_features` produces them.
        threshold: Decision threshold shipped with the model, if any.
        loaded_at: When it was loaded (naive UTC).
    """

    name: str
    version: str
    uri: str
    source_uri: str
    run_id: str | None
    feature_params: FeatureParams
    features: tuple[str, ...]
    threshold: float | None
    nodes: list[Any] = field(repr=False)
    constants: dict[str, Any] = field(repr=False)
    input_name: str = "scoring_input"
    output_name: str = "predictions"
    feature_dtypes: tuple[str, ...] = ()
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC).replace(tzinfo=None))

    @property
    def ref(self) -> ModelRef:
        """The model as the state store logs it."""
        return ModelRef(self.name, self.version, self.uri, self.features, self.feature_dtypes)

    @property
    def history_days(self) -> int:
        """How many days of history its features need."""
        return self.feature_params.history_days

    def predict(self, scoring_input: pd.DataFrame) -> pd.DataFrame:
        """Run the inference pipeline's nodes on ``scoring_input``.

        Args:
            scoring_input: The output of :func:`compute_features` (keys and features).

        Returns:
            The ``predictions`` dataset: transaction_id, fraud_probability, is_fraud_predicted.
        """
        data = dict(self.constants)
        data[self.input_name] = scoring_input
        for node in self.nodes:
            data.update(node.run({name: data[name] for name in node.inputs}))
        return data[self.output_name]

    def info(self) -> dict[str, Any]:
        """A JSON-able description (for ``/model`` and the page at ``/``)."""
        return {
            "name": self.name,
            "version": self.version,
            "uri": self.uri,
            "source_uri": self.source_uri,
            "run_id": self.run_id,
            "threshold": self.threshold,
            "features": list(self.features),
            "history_days": self.history_days,
            "loaded_at": self.loaded_at.isoformat(timespec="seconds") + "Z",
        }


def _smoke_input(params: FeatureParams) -> pd.DataFrame:
    c = params.columns
    return pd.DataFrame(
        {
            c.transaction_id: np.array([0, 1], dtype=np.int64),
            c.timestamp: np.array(
                ["2020-01-01T09:00:00", "2020-01-02T12:00:00"], dtype="datetime64[us]"
            ),
            c.customer_id: np.array(["0", "0"], dtype=object),
            c.terminal_id: np.array(["0", "0"], dtype=object),
            c.amount: np.array([10.0, 25.5]),
        }
    )


def build_loaded_model(
    python_model: Any, resolved: ResolvedUri, source_uri: str
) -> LoadedModel:
    """Wrap an unwrapped ``KedroPipelineModel`` (after ``load_context``) and smoke-test it.

    Args:
        python_model: The ``KedroPipelineModel`` of the pyfunc.
        resolved: The pinned URI it came from.
        source_uri: The configured URI.

    Returns:
        The model, ready to serve.

    Raises:
        ModelLoadError: When it is not an exported Kedro pipeline with a usable ``feature_spec``
            or fails to score a synthetic transaction.
    """
    for attr in ("pipeline", "loaded_catalog", "input_name", "output_name"):
        if not hasattr(python_model, attr):
            raise ModelLoadError(
                f"{resolved.load_uri} is not a kedro-mlflow KedroPipelineModel (no {attr})"
            )
    pipeline = python_model.pipeline
    input_name = python_model.input_name
    constants = {
        name: python_model.loaded_catalog.load(name)
        for name in sorted(pipeline.inputs() - {input_name})
    }
    spec = constants.get("feature_spec")
    if not isinstance(spec, dict) or "features" not in spec:
        raise ModelLoadError(
            f"{resolved.load_uri}: the inference pipeline has no 'feature_spec' artifact with a "
            "'features' list; the service needs it to build features online"
        )
    try:
        params = build(FeatureParams, spec.get("params"))
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"{resolved.load_uri}: bad feature_spec params: {exc}") from exc
    threshold_spec = constants.get("decision_threshold")
    threshold = None
    if isinstance(threshold_spec, dict) and "threshold" in threshold_spec:
        threshold = float(threshold_spec["threshold"])
    elif isinstance(threshold_spec, int | float):
        threshold = float(threshold_spec)
    model = LoadedModel(
        name=resolved.name,
        version=resolved.version,
        uri=resolved.load_uri,
        source_uri=source_uri,
        run_id=resolved.run_id,
        feature_params=params,
        features=tuple(spec["features"]),
        threshold=threshold,
        nodes=list(pipeline.nodes),
        constants=constants,
        input_name=input_name,
        output_name=python_model.output_name,
    )
    features = compute_features(_smoke_input(params), params)
    missing = [f for f in model.features if f not in features.columns]
    if missing:
        raise ModelLoadError(
            f"{resolved.load_uri}: feature_spec lists features compute_features does not "
            f"produce: {missing}"
        )
    model.feature_dtypes = tuple(str(features[f].dtype) for f in model.features)
    try:
        out = model.predict(features)
    except Exception as exc:
        raise ModelLoadError(f"{resolved.load_uri}: smoke-test scoring failed: {exc!r}") from exc
    check_predictions(out, features[params.columns.transaction_id].to_numpy(), resolved.load_uri)
    return model


def check_predictions(out: Any, ids: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Check a ``predictions`` output and return (probabilities, decisions) in input order.

    Args:
        out: What the pipeline returned.
        ids: The transaction ids of its input, in order.
        where: Model URI, for messages.

    Returns:
        Probabilities (float64) and decisions (bool), aligned with ``ids``.

    Raises:
        ModelLoadError: When columns are missing, rows do not match or probabilities are out of
            [0, 1].
    """
    if not isinstance(out, pd.DataFrame) or not set(PREDICTION_COLUMNS) <= set(out.columns):
        raise ModelLoadError(f"{where}: predictions must be a DataFrame with {PREDICTION_COLUMNS}")
    if len(out) != len(ids):
        raise ModelLoadError(f"{where}: {len(out)} predictions for {len(ids)} transactions")
    got = out["transaction_id"].to_numpy()
    if not np.array_equal(got, ids):
        if sorted(got.tolist()) != sorted(ids.tolist()):
            raise ModelLoadError(f"{where}: predictions do not match the transactions")
        out = out.set_index("transaction_id").loc[ids].reset_index()
    proba = out["fraud_probability"].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(proba)) or proba.min() < 0 or proba.max() > 1:
        raise ModelLoadError(f"{where}: fraud probabilities outside [0, 1]")
    return proba, out["is_fraud_predicted"].to_numpy(dtype=bool)


_CACHE: OrderedDict[tuple[str, str], LoadedModel] = OrderedDict()
_CACHE_SIZE = 4
_CACHE_LOCK = threading.Lock()


def load_model(uri: str, default_name: str = MODEL_NAME) -> LoadedModel:
    """Resolve, load and smoke-test a model.

    Registry versions (``models:/name/N``) and run artifacts are immutable, so the last few loaded
    are kept: rolling back to a previous champion is instant and costs no memory twice.

    Args:
        uri: The configured model URI.
        default_name: Name reported for non-registry URIs.

    Returns:
        The model.

    Raises:
        ModelLoadError: On any failure, with the cause in the message.
    """
    import mlflow

    resolved = resolve_model_uri(uri, default_name)
    cacheable = bool(_VERSION_URI.match(resolved.load_uri) or _RUN_URI.match(resolved.load_uri))
    # "models:/<name>/1" names a different model in each registry
    key = (mlflow.get_registry_uri(), resolved.load_uri)
    with _CACHE_LOCK:
        cached = _CACHE.get(key) if cacheable else None
        if cached is not None:
            _CACHE.move_to_end(key)
            return dataclasses.replace(cached, source_uri=uri)
    started = time.perf_counter()
    try:
        pyfunc = mlflow.pyfunc.load_model(resolved.load_uri)
        python_model = pyfunc.unwrap_python_model()
    except ModelLoadError:
        raise
    except Exception as exc:  # any failure of MLflow or of unpickling is a load failure
        raise ModelLoadError(f"cannot load {resolved.load_uri}: {exc!r}") from exc
    model = build_loaded_model(python_model, resolved, uri)
    if cacheable:
        with _CACHE_LOCK:
            _CACHE[key] = model
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    logger.info(
        "loaded model %s version %s from %s in %.1f s (%d nodes, %d features)",
        model.name,
        model.version,
        model.uri,
        time.perf_counter() - started,
        len(model.nodes),
        len(model.features),
    )
    return model


# the holder and the watcher live in model_holder.py (which imports this module); still importable here
from fraud_kedro.api.model_holder import (  # noqa: E402
    ModelHolder,
    ModelWatcher,
    ReloadOutcome,
    announce_reload,
    generation_key,
)

__all__ = [
    "PREDICTION_COLUMNS",
    "LoadedModel",
    "ModelHolder",
    "ModelLoadError",
    "ModelWatcher",
    "ReloadOutcome",
    "ResolvedUri",
    "announce_reload",
    "build_loaded_model",
    "check_predictions",
    "generation_key",
    "load_model",
    "resolve_model_uri",
]
