""".gitlab-ci.yml: structure checked with PyYAML, rules evaluated by gitlab-ci-local (when npx can
fetch it), and the metrics-report helper it calls."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .helpers import ROOT

CI_FILE = ROOT / ".gitlab-ci.yml"
STAGES = ["lint", "test", "train", "evaluate", "promote", "build", "deploy"]
GLOBAL_KEYS = {"stages", "variables", "workflow", "default", "include", "image", "services", "cache"}
GLOBAL_KEYS |= {"before_script", "after_script"}
SECRETS = {"MLFLOW_TRACKING_URI", "FRAUD_API_KEYS", "REGISTRY_PASSWORD", "CI_REGISTRY_PASSWORD"}
GITLAB_CI_LOCAL = "gitlab-ci-local@4.70.1"  # the last release that runs on Node 20
# gitlab-ci-local derives the branch from git: on a feature branch or a detached HEAD the workflow
# rules would create no job. The tests pin the pipeline to "a push to the default branch" themselves,
# so they pass on any branch (later --variable options of a test override these).
BRANCH_VARIABLES = {"CI_COMMIT_BRANCH": "main", "CI_COMMIT_REF_NAME": "main", "CI_DEFAULT_BRANCH": "main"}
PINNED = [arg for name, value in BRANCH_VARIABLES.items() for arg in ("--variable", f"{name}={value}")]
METRIC_LINE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]* -?[0-9.]+(e[-+]?[0-9]+)?$")


@pytest.fixture(scope="module")
def ci() -> dict:
    return yaml.safe_load(CI_FILE.read_text())


def merge(base: dict, override: dict) -> dict:
    """GitLab's `extends`: hashes merge deeply, everything else is replaced."""
    out = dict(base)
    for key, value in override.items():
        out[key] = (
            merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def resolved(ci: dict, name: str) -> dict:
    job = ci[name]
    parents = job.get("extends", [])
    parents = [parents] if isinstance(parents, str) else parents
    out: dict = {}
    for parent in parents:
        out = merge(out, resolved(ci, parent))
    return merge(out, {k: v for k, v in job.items() if k != "extends"})


def jobs(ci: dict) -> dict[str, dict]:
    return {
        name: resolved(ci, name)
        for name, body in ci.items()
        if name not in GLOBAL_KEYS and not name.startswith(".") and isinstance(body, dict)
    }


def script(job: dict) -> str:
    return "\n".join(job.get("before_script", []) + job.get("script", []))


def test_stages_in_order(ci: dict) -> None:
    assert ci["stages"] == STAGES


def test_every_job_has_a_known_stage_and_a_script(ci: dict) -> None:
    for name, job in jobs(ci).items():
        assert job.get("stage") in STAGES, name
        assert job.get("script"), name


def test_merge_requests_run_lint_and_tests(ci: dict) -> None:
    all_jobs = jobs(ci)
    assert "ruff check" in script(all_jobs["lint"])
    assert "pytest" in script(all_jobs["test"])
    for name in ("lint", "test", "train", "evaluate"):
        rules = all_jobs[name]["rules"]
        assert any("merge_request_event" in r.get("if", "") and r.get("when") != "never" for r in rules), name
    workflow = [r.get("if", "") for r in ci["workflow"]["rules"]]
    assert any("merge_request_event" in rule for rule in workflow)


def test_python_jobs_install_from_the_lock(ci: dict) -> None:
    assert "make install" in ci[".python"]["before_script"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"uv pip sync .*requirements-dev\.lock", makefile)


def test_training_metrics_are_published(ci: dict) -> None:
    all_jobs = jobs(ci)
    assert "kedro run" in script(all_jobs["train"])
    evaluate = all_jobs["evaluate"]
    assert evaluate["needs"] == ["train"]
    assert evaluate["artifacts"]["reports"]["metrics"] == "metrics.txt"
    assert "data/08_reporting/" in evaluate["artifacts"]["paths"]
    assert ".gitlab/metrics_report.py data/08_reporting/metrics.json > metrics.txt" in script(evaluate)
    assert (ROOT / ".gitlab" / "metrics_report.py").is_file()


def test_schedule_monitors_then_retrains(ci: dict) -> None:
    all_jobs = jobs(ci)
    schedule_only = [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
    monitor, retrain = all_jobs["monitor"], all_jobs["retrain"]
    assert monitor["rules"] == schedule_only and retrain["rules"] == schedule_only
    assert "--pipeline monitoring" in script(monitor)
    assert "--pipeline retraining" in script(retrain)
    assert retrain["needs"] == ["monitor"]
    assert STAGES.index(monitor["stage"]) < STAGES.index(retrain["stage"])
    for name, job in all_jobs.items():
        if name not in {"monitor", "retrain"}:
            assert not any(
                "schedule" in r.get("if", "") and r.get("when") != "never" for r in job.get("rules", [])
            ), f"{name} must not run in the scheduled pipeline"
    assert any("schedule" in r.get("if", "") for r in ci["workflow"]["rules"])


def test_pages_publishes_kedro_viz(ci: dict) -> None:
    pages = jobs(ci)["pages"]
    assert "kedro viz build" in script(pages)
    assert pages["artifacts"]["paths"] == ["public"]


def test_build_and_manual_deploy(ci: dict) -> None:
    all_jobs = jobs(ci)
    build, deploy = all_jobs["build"], all_jobs["deploy"]
    assert "buildctl-daemonless.sh build" in script(build)
    assert {t for m in build["parallel"]["matrix"] for t in m["TARGET"]} == {"serve", "pipelines"}
    assert '--opt target="$TARGET"' in script(build)
    assert "push=true" in script(build) and "$CI_COMMIT_SHA" in script(build)
    assert any(r.get("when") == "manual" for r in deploy["rules"])
    assert "kubectl apply -k" in script(deploy)
    assert "../deploy/$DEPLOY_VARIANT" in script(deploy)
    for variant in ("base", "single-pod"):
        assert (ROOT / "deploy" / variant / "kustomization.yaml").is_file()
    assert ci["variables"]["DEPLOY_VARIANT"] == "base"


def job_images(ci: dict) -> dict[str, str]:
    """Job name -> the image it runs in, with the file's variables expanded."""
    out = {}
    for name, job in jobs(ci).items():
        variables = {**ci.get("variables", {}), **job.get("variables", {})}
        image = job.get("image", ci.get("image", ""))
        image = image.get("name", "") if isinstance(image, dict) else image
        for _ in range(3):
            image = re.sub(r"\$\{?(\w+)\}?", lambda m, v=variables: str(v.get(m[1], m[0])), image)
        out[name] = image
    return out


def test_job_images_are_maintained_and_pinned(ci: dict) -> None:
    images = job_images(ci)
    assert images["build"].startswith("moby/buildkit:") and images["build"].endswith("-rootless")
    for name, image in images.items():
        assert image and "$" not in image, f"{name}: image {image!r} does not resolve"
        assert "kaniko" not in image, f"{name}: kaniko is archived"
        assert not image.startswith(("bitnami/", "docker.io/bitnami/")), f"{name}: bitnami's images are gone"
        tag = image.split("@")[0].rsplit("/", 1)[-1].partition(":")[2]
        assert tag and tag != "latest" and "@" not in tag, f"{name}: {image!r} needs a pinned version tag"
        assert re.search(r"\d", tag), f"{name}: {image!r} is not pinned to a version"
    text = CI_FILE.read_text().lower()
    assert "kaniko" not in text and "bitnami" not in text


def test_secrets_only_come_from_ci_variables(ci: dict) -> None:
    mappings = [ci.get("variables", {})] + [job.get("variables", {}) for job in jobs(ci).values()]
    for mapping in mappings:
        assert SECRETS.isdisjoint(mapping), f"a secret is defined in the file: {set(mapping) & SECRETS}"
    text = CI_FILE.read_text()
    assert not re.search(r"(password|token|api_key)\s*[:=]\s*['\"]?[A-Za-z0-9]{8,}", text, re.I)


# ---- the metrics report helper ---------------------------------------------------------------------
def run_report(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - fixed script
        [sys.executable, str(ROOT / ".gitlab" / "metrics_report.py"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_metrics_report_writes_openmetrics_lines(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.json"
    metrics.write_text(
        json.dumps(
            {
                "test_roc_auc": 0.91,
                "test rows": 1_800_000,
                "nested": {"a-b": 2},
                "promote": True,
                "note": "text is skipped",
                "nan": float("nan"),
            }
        )
    )
    proc = run_report(str(metrics), "--prefix", "fraud")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert all(METRIC_LINE.match(line) for line in lines), lines
    assert lines == [
        "fraud_nested_a_b 2",
        "fraud_promote 1",
        "fraud_test_roc_auc 0.91",
        "fraud_test_rows 1800000",
    ]


def test_metrics_report_reads_the_latest_kedro_version(tmp_path: Path) -> None:
    folder = tmp_path / "retrain_decision.json"
    for version, value in (("2024-01-01T00.00.00.000Z", 0), ("2024-02-01T00.00.00.000Z", 1)):
        (folder / version).mkdir(parents=True)
        (folder / version / "retrain_decision.json").write_text(json.dumps({"retrain": bool(value)}))
    proc = run_report(str(folder))
    assert proc.returncode == 0 and proc.stdout == "retrain 1\n"
    assert run_report(str(tmp_path / "missing.json")).returncode == 1


# ---- gitlab-ci-local: the file as GitLab would read it ---------------------------------------------
@pytest.fixture(scope="module")
def gitlab_ci_local(tmp_path_factory: pytest.TempPathFactory):
    npx = shutil.which("npx")
    if npx is None or shutil.which("node") is None:
        pytest.skip("node/npx not installed: gitlab-ci-local checks skipped (PyYAML checks still run)")
    # gitlab-ci-local joins --state-dir to the project folder even when it is absolute: a relative
    # path to pytest's temporary folder keeps its state out of the work tree
    state = os.path.relpath(tmp_path_factory.mktemp("gitlab-ci-local"), ROOT)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(  # noqa: S603 - fixed command
            [
                npx,
                "--yes",
                GITLAB_CI_LOCAL,
                "--state-dir",
                state,
                *PINNED,
                *args,
                "--ignore-predefined-vars",
                ",".join([*BRANCH_VARIABLES, "CI_PIPELINE_SOURCE"]),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    probe = run("--version")
    if probe.returncode != 0:
        pytest.skip(f"could not fetch or start {GITLAB_CI_LOCAL} with npx: {probe.stderr.strip()[-300:]}")
    return run


def active_jobs(run, source: str, *variables: str) -> dict[str, str]:
    """Job name -> stage of the jobs GitLab would create for a pipeline source."""
    args = ["--list-csv", "--variable", f"CI_PIPELINE_SOURCE={source}"]
    for variable in variables:
        args += ["--variable", variable]
    proc = run(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = list(csv.DictReader(proc.stdout[proc.stdout.index("name;") :].splitlines(), delimiter=";"))
    return {row["name"]: row["stage"] for row in rows}


def test_gitlab_ci_local_leaves_the_work_tree_alone(gitlab_ci_local) -> None:
    before = set(ROOT.iterdir())
    assert gitlab_ci_local("--list").returncode == 0
    assert set(ROOT.iterdir()) == before


def test_gitlab_ci_local_lists_every_job_with_its_stage(gitlab_ci_local, ci: dict) -> None:
    proc = gitlab_ci_local("--list")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "json schema validated" in proc.stdout + proc.stderr
    listed = proc.stdout[proc.stdout.index("name ") :].splitlines()[1:]
    expected = {
        n: j["stage"] for n, j in jobs(ci).items() if n not in {"monitor", "retrain", "promote:manual"}
    }
    for name, stage in expected.items():
        rows = [row for row in listed if re.match(rf"{re.escape(name)}(: \[\w+\])?\s", row)]
        assert rows, f"{name} is not listed:\n{proc.stdout}"
        assert all(re.search(rf"\s{stage}\s", row) for row in rows), rows


def test_gitlab_ci_local_pipelines_per_source(gitlab_ci_local) -> None:
    schedule = active_jobs(gitlab_ci_local, "schedule")
    assert schedule == {"monitor": "evaluate", "retrain": "promote"}
    merge_request = active_jobs(gitlab_ci_local, "merge_request_event")
    assert {"lint", "test", "train", "evaluate"} <= set(merge_request)
    assert merge_request["lint"] == "lint" and merge_request["test"] == "test"
    assert {"monitor", "retrain"}.isdisjoint(merge_request)
    promotion = active_jobs(gitlab_ci_local, "web", "MODEL_VERSION=3")
    assert promotion == {"promote:manual": "promote"}
