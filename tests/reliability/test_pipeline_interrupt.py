"""A training run killed with SIGKILL mid-training leaves nothing half-written that a later load would
pick up, nothing registered, and a rerun gives the metrics of an uninterrupted run.

Two copies of the project (``copy_project``, ``--env small``) share one ingestion; the uninterrupted
run in copy A and the killed run, then its rerun, in copy B go side by side (about 90 s on 2 cores).
The kill lands when the run starts saving the candidate models (between fitting the candidates and
the final model), the likeliest moment to catch a save half-way.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

KILL_AT = "Saving data to candidate_models"
ENV = {
    "KEDRO_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "NML_DISABLE_USAGE_LOGGING": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MPLBACKEND": "Agg",
    "OMP_NUM_THREADS": "1",  # two runs side by side on 2 cores
    "COLUMNS": "200",  # one log record per line
}
# every dataset of the catalog that exists on disk must load; these are not files of the run
NOT_FILES = ("RegisteredModelDataset", "MlflowMetricsHistoryDataset", "MemoryDataset")
CATALOG_CHECK = f"""
import json
from pathlib import Path
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
bootstrap_project(Path.cwd())
out = {{}}
with KedroSession.create(project_path=Path.cwd(), env="small") as session:
    catalog = session.load_context().catalog
    for name in catalog.keys():
        if name.startswith("params:") or name == "parameters":
            continue
        ds = catalog.get(name)
        if ds is None or type(ds).__name__ in {NOT_FILES!r}:
            continue
        try:
            if ds.exists():
                ds.load()
                out[name] = "ok"
        except Exception as exc:
            out[name] = f"{{type(exc).__name__}}: {{exc}}"[:300]
print("CATALOG-CHECK " + json.dumps(out))
"""


def _env(project: Path) -> dict[str, str]:
    env = {**os.environ, **ENV, "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}"}
    for name in list(env):
        if name in ("MLFLOW_REGISTRY_URI", "KEDRO_ENV", "KEDRO_LOGGING_CONFIG") or name.startswith("FRAUD_"):
            env.pop(name)
    return env


def _kedro(project: Path, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "kedro", "run", "--env", "small", *args],
        cwd=project,
        env=_env(project),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **kwargs,
    )


def _finish(proc: subprocess.Popen, what: str, timeout: float = 240) -> str:
    out, _ = proc.communicate(timeout=timeout)
    log = out.decode(errors="replace")
    assert proc.returncode == 0, f"{what} failed ({proc.returncode}):\n{log[-6000:]}"
    return log


def _registered_versions(project: Path) -> int:
    with sqlite3.connect(project / "mlflow.db") as conn:
        return conn.execute("SELECT COUNT(*) FROM model_versions").fetchone()[0]


def test_killed_training_leaves_nothing_loadable_half_written_and_reruns_identically(
    tmp_path: Path, copy_project: Callable[[Path], Path]
) -> None:
    a = copy_project(tmp_path / "a")
    _finish(_kedro(a, "--pipelines", "simulation,data_processing"), "ingestion")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    (b / "mlflow.db").unlink(missing_ok=True)  # B gets its own MLflow store (paths in it are A's)
    shutil.rmtree(b / "mlruns", ignore_errors=True)

    reference = _kedro(a, "--pipeline", "training")
    killed = _kedro(b, "--pipeline", "training", start_new_session=True)
    seen = []
    assert killed.stdout is not None
    try:
        for raw in iter(killed.stdout.readline, b""):
            line = raw.decode(errors="replace")
            seen.append(line)
            if KILL_AT in line:
                os.killpg(killed.pid, signal.SIGKILL)  # the run's own process group
                break
    finally:
        if killed.poll() is None and not any(KILL_AT in s for s in seen):
            os.killpg(killed.pid, signal.SIGKILL)
    killed.wait(30)
    assert any(KILL_AT in s for s in seen), "the run never reached the kill point:\n" + "".join(seen)[-4000:]
    assert killed.returncode == -signal.SIGKILL

    # what the killed run left: every dataset on disk loads through the catalog, nothing registered
    partial_after_kill = sorted(str(p.relative_to(b)) for p in (b / "data").rglob("*.partial"))
    check = subprocess.run(
        [sys.executable, "-c", CATALOG_CHECK],
        cwd=b,
        env=_env(b),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    line = next((ln for ln in check.stdout.splitlines() if ln.startswith("CATALOG-CHECK ")), None)
    assert line is not None, check.stdout[-3000:] + check.stderr[-3000:]
    loads = json.loads(line.removeprefix("CATALOG-CHECK "))
    broken = {k: v for k, v in loads.items() if v != "ok" and "Loading not supported" not in v}
    assert not broken, f"datasets left unloadable by the kill: {broken} (partial files: {partial_after_kill})"
    assert loads.get("tuning_results") == "ok"  # saved before the kill point
    assert not (b / "mlflow.db").exists() or _registered_versions(b) == 0

    rerun = _finish(_kedro(b, "--pipeline", "training"), "rerun after the kill")
    _finish(reference, "uninterrupted run")

    expected = json.loads((a / "data/08_reporting/metrics.json").read_text())
    got = json.loads((b / "data/08_reporting/metrics.json").read_text())
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    for relative in ("06_models/decision_threshold.json", "08_reporting/quality_gate_verdict.json"):
        ours, theirs = (json.loads((p / "data" / relative).read_text()) for p in (b, a))
        ours.pop("decided_at", None), theirs.pop("decided_at", None)
        assert ours == theirs, relative
    assert _registered_versions(b) == 1, rerun[-3000:]
    assert not list((b / "data").rglob("*.partial")), "the rerun left partial files"
