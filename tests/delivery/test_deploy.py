"""Kubernetes manifests under deploy/: they parse, render with kustomize, and agree with the image
and the API (probes on existing routes, the image's port and user, secrets from a Secret)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest
import yaml

from .helpers import ROOT, effective, parse_dockerfile, stage_chain

DEPLOY = ROOT / "deploy"
VARIANTS = {"base": "Deployment", "single-pod": "StatefulSet", "postgres": "Deployment"}
SECRET_NAME = "fraud-kedro-secrets"
SECRET_KEYS = {"FRAUD_API_KEYS", "MLFLOW_TRACKING_URI"}
# the replicas' shared store (PostgreSQL); the single pod keeps SQLite on its volume
STORE_SECRET = {"base": {"FRAUD_STATE_URL"}, "postgres": {"FRAUD_STATE_URL"}, "single-pod": set()}


def load_all(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def kustomize_files(folder: Path) -> list[Path]:
    """The manifest files a kustomization uses, its own and those of the folders it includes."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    files = []
    for entry in kustomization.get("resources", []):
        target = (folder / entry).resolve()
        files += kustomize_files(target) if target.is_dir() else [target]
    return files


def rendered(variant: str) -> list[dict]:
    """The variant's objects as kustomize would build them (without patches: see below)."""
    docs = [doc for path in kustomize_files(DEPLOY / variant) for doc in load_all(path)]
    kustomization = yaml.safe_load((DEPLOY / variant / "kustomization.yaml").read_text())
    deleted = set()
    for patch in kustomization.get("patches", []):
        body = yaml.safe_load(patch["patch"])
        if body.get("$patch") == "delete":
            deleted.add((body["kind"], body["metadata"]["name"]))
    return [d for d in docs if (d["kind"], d["metadata"]["name"]) not in deleted]


def workload(variant: str) -> dict:
    return next(d for d in rendered(variant) if d["kind"] == VARIANTS[variant])


def container(variant: str) -> dict:
    return workload(variant)["spec"]["template"]["spec"]["containers"][0]


@pytest.fixture(scope="module")
def stages():
    return parse_dockerfile(ROOT / "Dockerfile")[1]


def test_every_yaml_file_parses_into_named_objects() -> None:
    files = sorted(DEPLOY.rglob("*.yaml"))
    assert len(files) >= 6
    for path in files:
        docs = load_all(path)
        assert docs, f"{path} is empty"
        for doc in docs:
            assert {"apiVersion", "kind"} <= set(doc), f"{path}: {doc}"
            if doc["kind"] != "Kustomization":
                assert doc["metadata"]["name"], path


@pytest.mark.parametrize("variant", ["", *VARIANTS])
def test_kustomizations_list_existing_resources(variant: str) -> None:
    for path in kustomize_files(DEPLOY / variant):
        assert path.is_file(), path


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_kubectl_kustomize_renders(variant: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: kustomize rendering not checked")
    proc = subprocess.run(  # noqa: S603 - fixed command
        [kubectl, "kustomize", str(DEPLOY / variant)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    kinds = sorted(doc["kind"] for doc in yaml.safe_load_all(proc.stdout) if doc)
    assert kinds == sorted(d["kind"] for d in rendered(variant))
    assert all(
        doc["metadata"].get("namespace") == "fraud-kedro"
        for doc in yaml.safe_load_all(proc.stdout)
        if doc and doc["kind"] != "Namespace"
    )


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_probes_point_at_existing_routes(variant: str, app_routes: set[str]) -> None:
    spec = container(variant)
    assert spec["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert spec["livenessProbe"]["httpGet"]["path"] == "/health"
    assert spec["startupProbe"]["httpGet"]["path"] == "/health"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert spec[probe]["httpGet"]["path"] in app_routes
        assert spec[probe]["httpGet"]["port"] in {p["name"] for p in spec["ports"]}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_port_and_user_match_the_image(variant: str, stages) -> None:
    spec = container(variant)
    env = {e["name"]: e for e in spec["env"]}
    port = next(p for p in spec["ports"] if p["name"] == "http")["containerPort"]
    expose = next(s for s in stages if s.name == "serve").all("EXPOSE")[0].args.split()[0]
    assert str(port) == env["PORT"]["value"] == expose
    assert env["HOST"]["value"] == "0.0.0.0"
    pod = workload(variant)["spec"]["template"]["spec"]["securityContext"]
    uid = effective(stages, "serve", "USER").args.split(":")[0]
    assert pod["runAsNonRoot"] is True and str(pod["runAsUser"]) == uid
    sec = spec["securityContext"]
    assert sec["allowPrivilegeEscalation"] is False and sec["capabilities"]["drop"] == ["ALL"]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_resources_are_set(variant: str) -> None:
    resources = container(variant)["resources"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[kind])


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_secrets_come_from_the_secret(variant: str) -> None:
    env = {e["name"]: e for e in container(variant)["env"]}
    for key in SECRET_KEYS | STORE_SECRET[variant]:
        ref = env[key]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": SECRET_NAME, "key": key}
        assert "value" not in env[key]
    assert all(d["kind"] != "Secret" for d in rendered(variant)), "no Secret in the applied manifests"


def image_env(stages) -> dict[str, str]:
    """ENV of the serve target (its own and inherited), as a dict."""
    values: dict[str, str] = {}
    for stage in reversed(stage_chain(stages, "serve")):
        for instruction in stage.all("ENV"):
            values.update(word.split("=", 1) for word in instruction.words() if "=" in word)
    return values


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_writable_paths_are_volumes(variant: str, stages) -> None:
    spec = container(variant)
    assert spec["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in spec["volumeMounts"]}
    env = {e["name"]: e.get("value") for e in spec["env"]}
    assert "/tmp" in mounts
    if STORE_SECRET[variant]:  # a server store: nothing of it on the pod
        assert "FRAUD_STATE_DB" not in env and "state" not in {m["name"] for m in spec["volumeMounts"]}
    else:
        assert str(PurePosixPath(env["FRAUD_STATE_DB"]).parent) in mounts
    # gunicorn's control socket and library caches live under HOME; matplotlib under MPLCONFIGDIR
    home = env.get("HOME") or image_env(stages)["HOME"]
    assert any(PurePosixPath(home).is_relative_to(m) for m in mounts), home
    assert PurePosixPath(image_env(stages)["MPLCONFIGDIR"]).is_relative_to("/tmp")


def test_service_and_autoscaler_target_the_deployment() -> None:
    docs = {d["kind"]: d for d in rendered("base")}
    deployment, service, hpa = docs["Deployment"], docs["Service"], docs["HorizontalPodAutoscaler"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ports = {p["name"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert all(p["targetPort"] in ports for p in service["spec"]["ports"])
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def test_single_pod_variant_keeps_state_on_a_volume() -> None:
    statefulset = workload("single-pod")
    assert statefulset["spec"]["replicas"] == 1
    claims = {c["metadata"]["name"] for c in statefulset["spec"]["volumeClaimTemplates"]}
    mounted = {m["name"] for m in container("single-pod")["volumeMounts"]}
    assert "state" in claims & mounted
    assert {d["kind"] for d in rendered("single-pod")}.isdisjoint({"Deployment", "HorizontalPodAutoscaler"})


def test_the_replicas_share_one_store_and_the_postgres_variant_brings_it() -> None:
    note = (DEPLOY / "base" / "deployment.yaml").read_text()
    assert "PER POD" not in note and "PostgreSQL" in note and "FRAUD_STATE_URL" in note
    docs = rendered("postgres")
    database = next(d for d in docs if d["kind"] == "StatefulSet")
    service = next(
        d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "fraud-kedro-postgres"
    )
    assert database["spec"]["replicas"] == 1 and database["spec"]["volumeClaimTemplates"]
    labels = database["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    env = {e["name"]: e for e in database["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == SECRET_NAME
    example = yaml.safe_load((DEPLOY / "secret.example.yaml").read_text())["stringData"]
    assert "fraud-kedro-postgres:5432" in example["FRAUD_STATE_URL"]


def test_manifests_validate_against_the_kubernetes_schemas() -> None:
    validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate not installed")
    for variant in VARIANTS:
        for doc in rendered(variant):
            validate.validate(doc, "1.32.0", strict=True)
