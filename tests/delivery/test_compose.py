"""compose.yaml (PostgreSQL, a one-shot training job, the API) and the scheduled monitor job's
store: checked with ``docker compose config`` where that CLI works, else by its structure."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from .helpers import ROOT, parse_dockerfile

COMPOSE = ROOT / "compose.yaml"


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_has_postgres_a_training_job_and_the_api() -> None:
    services = _compose()["services"]
    assert {"postgres", "train", "api"} <= set(services)
    targets = {stage.name for stage in parse_dockerfile(ROOT / "Dockerfile")[1]}
    for name in ("train", "api"):
        assert services[name]["build"]["target"] in targets
    api = services["api"]
    assert api["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert api["depends_on"]["train"]["condition"] == "service_completed_successfully"
    url = api["environment"]["FRAUD_STATE_URL"]
    assert url.startswith("postgresql://") and "@postgres:5432/" in url
    assert (
        services["train"]["environment"]["MLFLOW_TRACKING_URI"] == api["environment"]["MLFLOW_TRACKING_URI"]
    )
    assert services["train"]["restart"] == "no"
    assert "healthcheck" in services["postgres"]


def test_docker_compose_config_accepts_it() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI (the structure is checked above)")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip("the docker CLI has no compose plugin (the structure is checked above)")
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_the_scheduled_monitor_job_reads_the_store_from_a_ci_variable() -> None:
    ci = yaml.safe_load((ROOT / ".gitlab-ci.yml").read_text())
    script = "\n".join(ci["monitor"]["script"])
    assert "FRAUD_STATE_URL" in script and "monitoring.source=service_log" in script
    assert "FRAUD_STATE_URL" not in yaml.safe_dump(ci.get("variables", {}))  # a secret, not here
