"""A throw-away copy of the project and Kedro run in it, so that runs never write into the work tree.

The child environment has telemetry off, one OpenMP thread (2 shared cores: oversubscription makes
HistGradientBoosting ten times slower) and nothing of the developer's shell that would steer Kedro
or MLflow elsewhere (``MLFLOW_*_URI``, ``KEDRO_ENV``, ``KEDRO_LOGGING_CONFIG``, ``FRAUD_*``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA_LAYERS = (
    "01_raw",
    "02_intermediate",
    "03_primary",
    "04_feature",
    "05_model_input",
    "06_models",
    "07_model_output",
    "08_reporting",
)
QUIET = {
    "KEDRO_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "NML_DISABLE_USAGE_LOGGING": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MPLBACKEND": "Agg",
    "OMP_NUM_THREADS": "1",
}
#: the metrics every training run writes and logs (docs/contract.md)
CONTRACT_METRICS = (
    "test_roc_auc",
    "test_average_precision",
    "test_card_precision_at_100",
    "test_precision",
    "test_recall",
    "test_f1",
)
_STEERING = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "KEDRO_ENV", "KEDRO_LOGGING_CONFIG")


def kedro_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: quiet, nothing steering it, then ``extra``."""
    env = {**os.environ, **QUIET}
    for name in list(env):
        if name in _STEERING or name.startswith("FRAUD_"):
            del env[name]
    env.update(extra)
    return env


def copy_project(dest: Path, extras: tuple[str, ...] = ()) -> Path:
    """Copy what Kedro needs (``src``, ``conf``, ``pyproject.toml``, and ``extras`` such as
    ``notebooks`` or ``README.md``) to ``dest``, with empty data layers and an empty ``conf/local``
    (a developer's local settings or credentials must not leak in)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".ipynb_checkpoints")
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("src", "conf", "pyproject.toml", *extras):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, dest / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, dest / name)
    shutil.rmtree(dest / "conf" / "local", ignore_errors=True)
    (dest / "conf" / "local").mkdir()
    for layer in DATA_LAYERS:
        (dest / "data" / layer).mkdir(parents=True, exist_ok=True)
    return dest


def run_kedro(
    project: Path, *args: str, env: dict[str, str] | None = None, timeout: int = 900
) -> subprocess.CompletedProcess:
    """``python -m kedro ARGS`` in ``project`` (``env``: :func:`kedro_env` by default); raises an
    AssertionError with the end of its output when it fails."""
    proc = subprocess.run(  # noqa: S603 - fixed command, arguments from the tests
        [sys.executable, "-m", "kedro", *args],
        cwd=project,
        env=kedro_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, (
        f"kedro {' '.join(args)} exited {proc.returncode}\n"
        f"--- stdout (end) ---\n{proc.stdout[-4000:]}\n--- stderr (end) ---\n{proc.stderr[-4000:]}"
    )
    return proc
