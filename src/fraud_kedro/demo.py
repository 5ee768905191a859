"""``python -m fraud_kedro.demo``: what the monitoring loop did, in a few lines.

``make demo`` runs the main job (train on the pre-drift window, batch-score the production period
in which the simulator's drift starts, monitor it), then ``kedro run --pipeline retraining``
(monitoring decides; data_processing and training run on the latest window; the quality gate
promotes), then this report: the retraining decision, the registry's versions and aliases, and the
reports to open. A running service picks the new champion up with ``POST /admin/reload`` or its
alias poll (``FRAUD_MODEL_POLL_SECONDS``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from fraud_kedro.contract import MODEL_NAME

REPORTS = Path("data/08_reporting")


def _latest(path: Path) -> Path | None:
    """The file itself, or the newest version of a Kedro-versioned file."""
    if path.is_file():
        return path
    versions = sorted(path.glob(f"*/{path.name}")) if path.is_dir() else []
    return versions[-1] if versions else None


def report_files() -> list[Path]:
    """The files to open: the newest version of each report, as real (absolute) file paths."""
    wanted = (
        REPORTS / "monitoring" / "index.html",
        REPORTS / "monitoring" / "performance.html",
        REPORTS / "monitoring" / "drift.html",
        REPORTS / "monitoring" / "calibration.html",
        REPORTS / "precision_recall.png",
    )
    return [found.resolve() for found in map(_latest, wanted) if found is not None]


def report(model_name: str = MODEL_NAME) -> str:
    """The demo's summary as text."""
    from mlflow import MlflowClient

    lines = []
    decision_file = _latest(REPORTS / "monitoring" / "retrain_decision.json")
    if decision_file:
        decision = json.loads(decision_file.read_text())
        lines.append(f"retrain decision: {'RETRAIN' if decision['retrain'] else 'no retraining'} "
                     f"({decision.get('n_chunks')} chunks of {decision.get('chunk_size')} rows, "
                     f"first alert in chunk {decision.get('first_alert_chunk')})")
        lines += [f"  - {reason}" for reason in decision.get("reasons", [])[:8]]
    else:
        lines.append("no retrain decision yet: run `kedro run` first")
    client = MlflowClient(tracking_uri=os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db"))
    versions = sorted(client.search_model_versions(f"name='{model_name}'"), key=lambda v: int(v.version))
    aliases = {}
    if versions:
        aliases = client.get_registered_model(model_name).aliases
    lines.append(f"registry: {model_name}")
    for v in versions:
        tags = [a for a, num in aliases.items() if str(num) == str(v.version)]
        run = client.get_run(v.run_id)
        ap = run.data.metrics.get("test_average_precision")
        lines.append(f"  version {v.version}: aliases {tags or '-'}, quality gate "
                     f"{v.tags.get('quality_gate', '-')}, test AP on its window "
                     f"{ap:.4f}" if ap is not None else f"  version {v.version}: aliases {tags}")
    lines.append("open:")
    lines += [f"  {path}" for path in report_files()] or ["  (no report yet)"]
    return "\n".join(lines)


def main() -> None:
    """Print the report."""
    print(report())  # noqa: T201 - a command-line report


if __name__ == "__main__":
    main()
