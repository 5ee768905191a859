"""Options that shape the main job's pipeline graph, per Kedro env (parameter key ``main_job``).

``register_pipelines`` does not know the env of the run (``kedro run --env creditcard``), yet some
envs need another graph: the creditcard env must never simulate data and has no production period
to monitor. This hook reads the env's parameters as soon as the context exists, before the
pipelines are first loaded, and the registry asks :func:`current`.

``main_job`` keys (all optional):

* ``simulate``: ``auto`` (default: simulate when there is no data of yours in data/01_raw) or
  ``false`` (never: the env's ``raw_transactions`` must exist);
* ``monitoring``: ``true`` (default) or ``false`` (leave the monitoring pipeline out of the job).

The registered model name follows ``quality_gate.model_name`` (default ``contract.MODEL_NAME``), so that
an env with another schema never replaces the default champion.
"""

from __future__ import annotations

import logging
from typing import Any

from kedro.framework.hooks import hook_impl

logger = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {"simulate": "auto", "monitoring": True, "model_name": None}
_current: dict[str, Any] = {}


def current() -> dict[str, Any]:
    """The options of the run being set up (the defaults outside a Kedro session)."""
    return {**DEFAULTS, **_current}


def options_from_params(params: dict[str, Any] | None) -> dict[str, Any]:
    """Validate the ``main_job`` parameters; add the model name from ``quality_gate``."""
    params = params or {}
    options = dict(params.get("main_job") or {})
    unknown = set(options) - {"simulate", "monitoring"}
    if unknown:
        raise ValueError(f"Unknown main_job parameters: {sorted(unknown)}")
    if options.get("simulate", "auto") not in ("auto", False):
        raise ValueError(f"main_job.simulate must be 'auto' or false, not {options['simulate']!r}")
    if not isinstance(options.get("monitoring", True), bool):
        raise ValueError("main_job.monitoring must be true or false")
    model_name = (params.get("quality_gate") or {}).get("model_name")
    if model_name:
        options["model_name"] = str(model_name)
    return options


class JobOptionsHooks:
    """Reads ``main_job`` from the env's parameters before the pipelines are registered."""

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Store the options; reload the pipelines if another env of this process built them."""
        try:
            params = context.config_loader["parameters"]
        except Exception:  # noqa: BLE001 - no parameters at all: the defaults
            params = {}
        options = options_from_params(params)
        if options != _current:
            from kedro.framework.project import PACKAGE_NAME, pipelines

            _current.clear()
            _current.update(options)
            if PACKAGE_NAME:
                pipelines.configure(f"{PACKAGE_NAME}.pipeline_registry")
        if options:
            logger.info("main job options (env %s): %s", context.env, current())
