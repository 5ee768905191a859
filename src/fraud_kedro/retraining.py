"""The retraining loop, in one place: monitor, decide, and retrain on the latest window when due.

``python -m fraud_kedro.retraining [--env ENV] [--params KEY=VALUE,...] [--own-data]`` runs the
loop as sequential Kedro sessions: ``--pipeline monitoring`` (and its ``retrain_decision``),
then, when the decision says so, ``data_processing`` (the simulated world; ``own_data_processing``
on your ``raw_transactions`` with ``--own-data``) and ``training`` with
``split.production_days = 0`` (the latest window); the quality gate of the training run decides
the promotion (:mod:`fraud_kedro.hooks`). ``kedro run --pipeline retraining`` (or
``own_data_retraining``) keeps doing the whole loop too (the contract's command): its hook calls
:func:`retrain_if_due` once the run has ended, so those training sessions start from inside the
finished run's hook; this command does not.

This is where retraining reads served traffic (``monitoring.source: service_log``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: retraining pipeline -> what its loop runs when retraining is due (one session each)
RETRAIN_PIPELINES: dict[str, tuple[str, ...]] = {
    "retraining": ("data_processing", "training"),  # the simulated world
    "own_data_retraining": ("own_data_processing", "training"),  # your raw_transactions
}


def retraining_params(runtime_params: dict[str, Any] | None) -> dict[str, Any]:
    """The run's runtime parameters with ``split.production_days = 0`` (train on the latest window)."""
    extra = dict(runtime_params or {})
    split = dict(extra.get("split") or {})
    split["production_days"] = 0
    extra["split"] = split
    return extra


def retrain(
    project_path: str | Path | None,
    env: str | None,
    runtime_params: dict | None,
    loop: str = "retraining",
) -> None:
    """Rebuild features and run the training PipelineML on the latest window, one session each.

    ``loop`` names the retraining pipeline (a key of :data:`RETRAIN_PIPELINES`): which data the
    features are rebuilt from.
    """
    from kedro.framework.session import KedroSession

    if loop not in RETRAIN_PIPELINES:
        raise ValueError(f"unknown retraining loop {loop!r}: one of {sorted(RETRAIN_PIPELINES)}")
    extra = retraining_params(runtime_params)
    for name in RETRAIN_PIPELINES[loop]:
        with KedroSession.create(project_path=project_path, env=env, runtime_params=extra) as session:
            logger.info("retraining: running pipeline %s", name)
            session.run(pipeline_names=[name])


def retrain_if_due(
    decision: dict,
    project_path: str | Path | None,
    env: str | None,
    runtime_params: dict | None,
    loop: str = "retraining",
) -> bool:
    """Retrain when the monitoring decision says so.

    Args:
        decision: The ``retrain_decision`` of a monitoring run.
        project_path: The Kedro project.
        env: The Kedro env of the run.
        runtime_params: The run's ``--params``.
        loop: ``retraining`` (the simulated world) or ``own_data_retraining`` (your data).

    Returns:
        Whether retraining ran.
    """
    reasons = "; ".join(decision.get("reasons", [])) or "-"
    if not decision.get("retrain"):
        logger.info("retraining not due: %s", reasons)
        return False
    logger.info("retraining due: %s", reasons)
    retrain(project_path, env, runtime_params, loop)
    return True


def run_loop(
    project_path: str | Path | None,
    env: str | None,
    runtime_params: dict | None,
    loop: str = "retraining",
) -> bool:
    """Monitoring, then retraining when due, as sequential sessions (no session inside another).

    Runs the ``monitoring`` pipeline (the nodes of ``retraining``; the hook of ``--pipeline
    retraining`` does not fire for it), reads its ``retrain_decision`` and calls
    :func:`retrain_if_due`.

    Returns:
        Whether retraining ran.
    """
    from kedro.framework.session import KedroSession

    with KedroSession.create(
        project_path=project_path, env=env, runtime_params=runtime_params or {}
    ) as session:
        session.run(pipeline_names=["monitoring"])
        decision = session.load_context().catalog.load("retrain_decision")
    return retrain_if_due(decision, project_path, env, runtime_params, loop)


def main(argv: list[str] | None = None) -> int:
    """``python -m fraud_kedro.retraining``: the retraining loop."""
    from kedro.framework.cli.utils import _split_params
    from kedro.framework.startup import bootstrap_project

    parser = argparse.ArgumentParser(description="monitor, then retrain when the decision says so")
    parser.add_argument("--env", default=None, help="Kedro env (e.g. small)")
    parser.add_argument("--params", default="", help='as `kedro run --params`, e.g. "a.b=1,c=2"')
    parser.add_argument("--project-path", default=".", help="the Kedro project (default: .)")
    parser.add_argument(
        "--own-data",
        action="store_true",
        help="retrain on raw_transactions (your data) instead of the simulated world",
    )
    args = parser.parse_args(argv)
    project = Path(args.project_path).resolve()
    bootstrap_project(project)
    params = _split_params(None, None, args.params) if args.params else {}
    loop = "own_data_retraining" if args.own_data else "retraining"
    retrained = run_loop(project, args.env, params, loop)
    logger.info("retraining loop done: %s", "retrained" if retrained else "no retraining due")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
