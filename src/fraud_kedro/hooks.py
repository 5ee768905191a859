"""Project hooks: lineage tags on every MLflow run, promotion by alias, and the retraining loop.

kedro-mlflow logs the inference pipeline as a model when a PipelineML run ends; these hooks run
after it (``trylast``), find the model version of the run, give it the ``challenger`` alias and,
when the persisted quality-gate verdict says so, the ``champion`` alias.

``kedro run --pipeline retraining`` (``own_data_retraining`` on your data) runs monitoring; when
its ``retrain_decision`` says so, the hook hands over to :mod:`fraud_kedro.retraining` (the loop's
one module; ``python -m fraud_kedro.retraining`` runs it without a hook), and the quality gate
decides the promotion as in any training run. The registered model's name comes from the run's
config (``quality_gate.model_name``, default ``contract.MODEL_NAME``), not from the verdict nor
from the pipeline registry: :class:`PromotionHooks` gives it to kedro-mlflow's model logging too.

:class:`ReadOnlyDataHooks` stops a run, before any node, whose pipeline would write a dataset
marked ``metadata: {read_only: true}`` in the catalog (``raw_transactions``: your data).
"""

from __future__ import annotations

import logging
import subprocess
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline

from fraud_kedro.contract import CHALLENGER, CHAMPION, MODEL_NAME
from fraud_kedro.parameters import flatten
from fraud_kedro.pipelines.evaluation.params import QualityGateParams

logger = logging.getLogger(__name__)


def git_commit() -> str:
    """The current git commit, or ``unknown`` outside a repository."""
    try:
        out = subprocess.run(  # noqa: S603 - fixed command, no user input
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,  # noqa: S607
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class PromotionHooks:
    """Tags runs with the git commit and data versions; promotes models through the gate."""

    def __init__(self) -> None:
        self._model_name = MODEL_NAME
        self._run_id: str | None = None
        self._pipeline: Pipeline | None = None
        self._versions: dict[str, str] = {}

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """The registered model's name: ``quality_gate.model_name`` of the run's config."""
        self._model_name = model_name_from_params(context.params)

    @hook_impl(trylast=True)
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        """Name the model to register; remember the MLflow run and tag it with the git commit."""
        import mlflow

        self._pipeline, self._versions = pipeline, {}
        kwargs = getattr(pipeline, "log_model_kwargs", None)
        if kwargs is not None:
            # kedro-mlflow logs and registers the model after the run from these kwargs; the
            # session's pipeline is this run's own filtered copy of the registered PipelineML
            kwargs["registered_model_name"] = self._model_name
        run = mlflow.active_run()
        self._run_id = run.info.run_id if run else None
        if run:
            mlflow.set_tag("git_commit", git_commit())
            mlflow.set_tag("kedro_env", str(run_params.get("env")))

    @hook_impl
    def after_node_run(self, node: Any, outputs: dict[str, Any]) -> None:
        """Give the exported model an input example as soon as the pipeline makes one."""
        kwargs = getattr(self._pipeline, "log_model_kwargs", None)
        if kwargs is not None and "scoring_input" in outputs:
            kwargs["input_example"] = outputs["scoring_input"].head(5)

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any, node: Any) -> None:
        """Record the version of every versioned dataset a run reads."""
        self._record(dataset_name)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        """Record the version of every versioned dataset a run writes."""
        self._record(dataset_name)

    def _record(self, dataset_name: str) -> None:
        self._versions.setdefault(dataset_name, "")

    @hook_impl(trylast=True)
    def after_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        """Log data versions; set the challenger and champion aliases from the verdict."""
        if self._run_id is None:
            return
        from mlflow import MlflowClient

        client = MlflowClient()
        for name in self._versions:
            version = _dataset_version(catalog, name)
            if version:
                client.set_tag(self._run_id, f"data_version.{name}", version)
        if hasattr(pipeline, "inference") and "quality_gate_verdict" in pipeline.all_outputs():
            verdict = catalog.load("quality_gate_verdict")
            version = promote(client, self._run_id, verdict, self._model_name)
            if version is not None and "model_card" in pipeline.all_outputs():
                attach_model_card(client, version, catalog.load("model_card"), self._model_name)


class RetrainingHooks:
    """After ``--pipeline retraining`` (or ``own_data_retraining``), retrain when the decision says so."""

    @hook_impl(trylast=True)
    def after_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        """Read ``retrain_decision``; when due, run the loop's processing and training."""
        from fraud_kedro.retraining import RETRAIN_PIPELINES, retrain_if_due

        loops = [n for n in run_params.get("pipeline_names") or [] if n in RETRAIN_PIPELINES]
        if not loops:
            return
        if len(loops) > 1:
            raise ValueError(f"run one retraining pipeline at a time, not {loops}")
        retrain_if_due(
            catalog.load("retrain_decision"),
            run_params.get("project_path"),
            run_params.get("env"),
            run_params.get("runtime_params") or run_params.get("extra_params"),
            loops[0],
        )


class ReadOnlyDataError(RuntimeError):
    """A run would write a dataset that the catalog marks read-only."""


def read_only_outputs(pipeline: Pipeline, catalog: DataCatalog) -> dict[str, str]:
    """The datasets ``pipeline`` writes whose catalog entry has ``metadata: {read_only: true}``.

    Returns:
        Dataset name -> the entry's ``read_only_reason`` (empty when it gives none).
    """
    found = {}
    for name in sorted(pipeline.all_outputs()):
        if name not in catalog:
            continue
        metadata = getattr(catalog.get(name), "metadata", None) or {}
        if metadata.get("read_only") is True:
            found[name] = str(metadata.get("read_only_reason") or "")
    return found


class ReadOnlyDataHooks:
    """Fails a run, before any node runs, whose pipeline would write a read-only dataset."""

    @hook_impl(tryfirst=True)
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        """Raise :class:`ReadOnlyDataError` naming every read-only dataset the run would write."""
        found = read_only_outputs(pipeline, catalog)
        if found:
            names = "; ".join(f"{name} ({why})" if why else name for name, why in found.items())
            raise ReadOnlyDataError(
                f"this run would write read-only data: {names}. Nothing was run: the catalog "
                "marks these datasets metadata {read_only: true}."
            )


def model_name_from_params(params: dict[str, Any] | None) -> str:
    """``quality_gate.model_name`` of the run's parameters; ``contract.MODEL_NAME`` when unset.

    Raises:
        ValueError: When it is set to anything but a non-empty string (never a silent default).
    """
    gate = (params or {}).get("quality_gate")
    if gate is None:
        return MODEL_NAME
    if isinstance(gate, QualityGateParams):  # validated by Kedro (a non-empty name)
        return gate.model_name
    if not isinstance(gate, dict):
        raise ValueError(f"parameters quality_gate must be a mapping, not {gate!r}")
    if "model_name" not in gate:
        return MODEL_NAME
    name = gate["model_name"]
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"quality_gate.model_name must be a non-empty string, not {name!r}")
    return name


def _dataset_version(catalog: DataCatalog, name: str) -> str | None:
    try:
        dataset = catalog.get(name) if hasattr(catalog, "get") else catalog._get_dataset(name)
    except Exception:  # noqa: BLE001 - a dataset that cannot be described has no version
        return None
    dataset = getattr(dataset, "_dataset", dataset)
    version = getattr(dataset, "_version", None)
    if version is None:
        return None
    try:
        return dataset.resolve_save_version() or dataset.resolve_load_version()
    except Exception:  # noqa: BLE001
        return None


def attach_model_card(client: Any, version: str, card: str, model_name: str = MODEL_NAME) -> None:
    """Put the run's model card into the registered version's description (per version)."""
    from fraud_kedro.model_card import card_for_registry

    client.update_model_version(model_name, version, description=card_for_registry(card, version))
    client.set_model_version_tag(model_name, version, "model_card", "reporting/model_card.md")


def promote(client: Any, run_id: str, verdict: dict, model_name: str = MODEL_NAME) -> str | None:
    """Alias the run's model version ``challenger``, and ``champion`` if the verdict promotes it.

    Returns:
        The model version, or None when the run logged no registered model.
    """
    model_name = model_name or MODEL_NAME
    versions = client.search_model_versions(f"name='{model_name}' and run_id='{run_id}'")
    if not versions:
        logger.error("run %s registered no version of %s: nothing to promote", run_id, model_name)
        return None
    version = max(versions, key=lambda v: int(v.version)).version
    client.set_registered_model_alias(model_name, CHALLENGER, version)
    client.set_model_version_tag(
        model_name, version, "quality_gate", "promote" if verdict["promote"] else "reject"
    )
    client.set_tag(run_id, "quality_gate", "promote" if verdict["promote"] else "reject")
    if verdict["promote"]:
        client.set_registered_model_alias(model_name, CHAMPION, version)
        logger.info("%s version %s is the new champion", model_name, version)
    else:
        logger.info("%s version %s stays challenger: %s", model_name, version, "; ".join(verdict["reasons"]))
    return version


class TypedParamsLoggingHooks:
    """Logs a typed parameter section (:mod:`fraud_kedro.parameters`) as dotted MLflow params.

    kedro-mlflow flattens only dictionaries: a node input ``params:split`` that Kedro built as a
    ``SplitParams`` reaches it as one text parameter ``split``. This hook, after kedro-mlflow's,
    logs the section key by key (``split.delay_days``, ``features.columns.amount``) as before
    the sections were typed; nothing happens without an active MLflow run.
    """

    def __init__(self) -> None:
        self._logged: set[str] = set()

    @hook_impl
    def before_pipeline_run(self) -> None:
        """A new run logs every section again."""
        self._logged = set()

    @hook_impl(trylast=True)
    def before_node_run(self, inputs: dict[str, Any]) -> None:
        """Log the node's typed parameter sections not logged yet in this run."""
        import dataclasses

        import mlflow

        if mlflow.active_run() is None:
            return
        flat: dict[str, Any] = {}
        for name, value in inputs.items():
            if name.startswith("params:") and dataclasses.is_dataclass(value):
                flat.update(flatten(value, name.removeprefix("params:")))
        new = {key: value for key, value in flat.items() if key not in self._logged}
        if new:
            mlflow.log_params(new)
            self._logged.update(new)
