"""The serving lock (requirements-serve.lock): everything the scoring service imports, nothing the
pipelines alone need, and the versions of the runtime lock."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .helpers import ROOT, kedro_env

SERVE_IN = ROOT / "requirements-serve.in"
SERVE_LOCK = ROOT / "requirements-serve.lock"
FULL_LOCK = ROOT / "requirements.lock"
# distributions of the full lock whose import name the serving image gets from another distribution
SAME_MODULE = {"xgboost": "xgboost-cpu"}
# what serving never imports: the big pipeline-only packages must stay out of the serving image
PIPELINES_ONLY = {
    "nannyml", "statsmodels", "optuna", "kedro-viz", "plotly", "kaleido", "dask", "distributed",
    "pandera", "ipython", "ipykernel", "jupyter-client", "nbformat", "seaborn", "xgboost",
}  # fmt: skip
# what `python -m venv` puts in every environment (the image's too), lock or not
VENV_OWN = {"pip", "setuptools"}
# the distribution that unpickles a fitted candidate of each kind (src/fraud_kedro/models.py)
CANDIDATE_DISTRIBUTION = {
    "logistic_regression": "scikit-learn",
    "random_forest": "scikit-learn",
    "hist_gradient_boosting": "scikit-learn",
    "lightgbm": "lightgbm",
    "xgboost": "xgboost-cpu",
    "balanced_bagging": "imbalanced-learn",
}

# The service's entry points as the image runs them, in this (the dev) environment with every
# distribution that is not in the serve lock made unimportable: the app factory (no model), the
# store's migrations, the stream worker, gunicorn's threaded worker, and a fitted, pickled and
# reloaded model of each default candidate (what unpickling the champion imports).
_IMPORTS_SCRIPT = """
import importlib.abc, importlib.metadata as md, json, os, pickle, re, sys
from importlib.machinery import PathFinder
allowed = set(json.loads(sys.argv[3]))
refused = set()
def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()
owner = {}  # installed file -> its distribution (from the RECORD files, read as plain text)
for dist in md.distributions():
    base, name = str(dist.locate_file("")), canonical(dist.metadata["Name"])
    for line in (dist.read_text("RECORD") or "").splitlines():
        owner[os.path.normpath(os.path.join(base, line.rsplit(",", 2)[0]))] = name
class OnlyTheServeLock(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        spec = PathFinder.find_spec(name, path)
        dist = owner.get(os.path.normpath(spec.origin)) if spec and spec.has_location else None
        if dist and dist not in allowed:
            refused.add(f"{name} ({dist})")
            raise ModuleNotFoundError(f"No module named {name!r} (not in the serve lock)", name=name)
        return None
sys.meta_path.insert(0, OnlyTheServeLock())
from fraud_kedro.api import create_app
app = create_app({"model_uri": sys.argv[1], "state_db": sys.argv[2], "seed_path": "",
                  "model_poll_seconds": 0, "model_sync_seconds": 0})
assert app.test_client().get("/health").status_code == 200
import fraud_kedro.store.migrate, fraud_kedro.stream.runner, fraud_kedro.stream.worker
import fraud_kedro.stream.redis_broker, fraud_kedro.store.postgres
import gunicorn.app.wsgiapp, gunicorn.workers.gthread
import fraud_kedro.pipelines.inference, fraud_kedro.io.files, kedro_mlflow.mlflow
import numpy as np
from fraud_kedro.models import build_estimator, calibrate
rng = np.random.default_rng(0)
X = rng.normal(size=(300, 4))
y = (X[:, 0] > 1).astype(int)
for kind in json.loads(sys.argv[4]):
    params = {} if kind == "logistic_regression" else {"n_estimators": 5}
    model = calibrate(build_estimator(kind, params, 0), "sigmoid", 2, 0).fit(X, y)
    pickle.loads(pickle.dumps(model)).predict_proba(X)
files = {getattr(m, "__file__", None) for m in list(sys.modules.values())}
used = {owner.get(os.path.normpath(f)) for f in files if f} - {None}
sys.stdout.write("DISTS " + json.dumps(sorted(used)) + "\\n")
sys.stdout.write("REFUSED " + json.dumps(sorted(refused)) + "\\n")
"""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    """``name -> version`` of a uv lock file."""
    found = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(\S+)", path.read_text(), re.M)
    return {canonical(name): version for name, version in found}


def requirement_names(path: Path) -> dict[str, str | None]:
    """``name -> pinned version or None`` of the requirements of a ``.in`` file."""
    out: dict[str, str | None] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.match(r"([A-Za-z0-9._-]+)(?:\[[^\]]*\])?\s*(?:==\s*(\S+))?", line)
        assert match, line
        out[canonical(match.group(1))] = match.group(2)
    return out


@pytest.fixture(scope="module")
def serve() -> dict[str, str]:
    return pins(SERVE_LOCK)


def default_candidates() -> list[str]:
    params = yaml.safe_load((ROOT / "conf" / "base" / "parameters_data_science.yml").read_text())
    return list(params["model"]["candidates"])


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Distributions the service's processes import, with only the serve lock importable."""
    work = tmp_path_factory.mktemp("serve-imports")
    allowed = set(pins(SERVE_LOCK)) | {"fraud-kedro"} | VENV_OWN
    allowed |= {name for name, alias in SAME_MODULE.items() if alias in allowed}
    args = [str(work / "no-model"), str(work / "state.db"), json.dumps(sorted(allowed))]
    proc = subprocess.run(  # noqa: S603 - fixed script
        [sys.executable, "-c", _IMPORTS_SCRIPT, *args, json.dumps(default_candidates())],
        cwd=work,
        env=kedro_env(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("DISTS ")]
    sys.stdout.write(next((x for x in proc.stdout.splitlines() if x.startswith("REFUSED ")), "") + "\n")
    assert proc.returncode == 0 and lines, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return {canonical(d) for d in json.loads(lines[-1].removeprefix("DISTS "))}


@pytest.mark.slow  # starts the service in a child process (~20 s of CPU)
def test_the_service_starts_with_only_the_serve_locks_packages(imported: set[str], serve) -> None:
    needed = {SAME_MODULE.get(d, d) for d in imported} - {"fraud-kedro"} - VENV_OWN
    assert {"flask", "gunicorn", "mlflow", "kedro-mlflow", "redis", "lightgbm"} <= needed, needed
    assert needed <= set(serve), sorted(needed - set(serve))


def test_the_serve_lock_leaves_the_pipeline_only_packages_out(serve) -> None:
    assert not PIPELINES_ONLY & set(serve), sorted(PIPELINES_ONLY & set(serve))
    assert not [name for name in serve if name.startswith("nvidia-")], "no CUDA wheels in the serving image"
    assert len(serve) < len(pins(FULL_LOCK))


def test_the_serve_lock_has_the_runtime_locks_versions(serve) -> None:
    full = pins(FULL_LOCK)
    differ = {n: (v, full[n]) for n, v in serve.items() if n in full and full[n] != v}
    assert not differ, f"serve lock version != requirements.lock version: {differ}"
    for name, alias in SAME_MODULE.items():
        if alias in serve:
            assert serve[alias] == full[name], f"{alias} must be the version of {name} in requirements.lock"


def test_the_serve_lock_resolves_the_serve_requirements(serve) -> None:
    for name, version in requirement_names(SERVE_IN).items():
        assert name in serve, f"{name} of requirements-serve.in is not in requirements-serve.lock (make lock)"
        if version:
            assert serve[name] == version, name
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(
        r"uv pip compile requirements-serve\.in -c requirements\.lock -p 3\.11 -o requirements-serve\.lock",
        makefile,
    ), "make lock resolves the serve lock against the runtime lock"


def test_the_serve_lock_can_load_every_default_candidate(serve) -> None:
    candidates = default_candidates()
    assert candidates
    for kind in candidates:
        assert kind in CANDIDATE_DISTRIBUTION, f"which distribution unpickles a {kind} model? add it here"
        needed = CANDIDATE_DISTRIBUTION[kind]
        assert needed in serve, f"the champion may be a {kind} model: keep {needed} in the serve lock"
