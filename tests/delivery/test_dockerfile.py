"""The Dockerfile, checked without a Docker engine: stages, sources, user, health check, commands."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from .helpers import ROOT, dockerignore_rules, effective, is_ignored, parse_dockerfile, stage_chain

DOCKERFILE = ROOT / "Dockerfile"
SERVE_CMD = ["gunicorn", "-c", "gunicorn.conf.py", "fraud_kedro.api:create_app()"]


@pytest.fixture(scope="module")
def parsed():
    return parse_dockerfile(DOCKERFILE)


@pytest.fixture(scope="module")
def stages(parsed):
    return parsed[1]


def by_name(stages, name):
    return next(s for s in stages if s.name == name)


def copy_parts(instruction) -> tuple[dict[str, str], list[str], str]:
    """Flags, sources and destination of a COPY."""
    words = instruction.words()
    flags = dict(w[2:].split("=", 1) for w in words if w.startswith("--"))
    rest = [w for w in words if not w.startswith("--")]
    return flags, rest[:-1], rest[-1]


def makefile_uv_version() -> str:
    match = re.search(r"uv==([0-9.]+)", (ROOT / "Makefile").read_text())
    assert match, "the Makefile no longer pins uv"
    return match.group(1)


def test_stages_are_named_and_serve_is_the_default_target(stages) -> None:
    names = [s.name for s in stages]
    assert all(names), f"every FROM needs `AS name`: {names}"
    assert len(set(names)) == len(names)
    assert {"builder", "builder-serve", "runtime", "pipelines", "serve"} <= set(names)
    assert names[-1] == "serve", "the last stage is what `docker build .` produces"


def test_base_image_is_python_311_slim(stages) -> None:
    images = {s.base for s in stages if s.base not in {t.name for t in stages}}
    assert images == {"python:3.11-slim"}


def test_copy_from_names_an_earlier_stage(stages) -> None:
    seen: set[str] = set()
    for stage in stages:
        for copy in stage.all("COPY"):
            flags, _, _ = copy_parts(copy)
            if "from" in flags:
                assert flags["from"] in seen, f"COPY --from={flags['from']} in stage {stage.name}"
        seen.add(stage.name)


def test_every_copy_source_exists_in_the_build_context(stages) -> None:
    rules = dockerignore_rules(ROOT / ".dockerignore")
    sources = []
    for stage in stages:
        for copy in stage.all("COPY") + stage.all("ADD"):
            flags, srcs, _ = copy_parts(copy)
            if "from" not in flags:
                sources += srcs
    assert sources
    for src in sources:
        assert (ROOT / src).exists(), f"COPY source {src} does not exist"
        assert not is_ignored(rules, src), f"COPY source {src} is excluded by .dockerignore"


@pytest.mark.parametrize(
    ("builder_name", "lock"), [("builder", "requirements.lock"), ("builder-serve", "requirements-serve.lock")]
)
def test_each_builder_installs_its_lock_with_the_makefiles_uv(stages, builder_name: str, lock: str) -> None:
    chain = stage_chain(stages, builder_name)
    runs = " ".join(r.args for s in chain for r in s.all("RUN"))
    assert f"uv=={makefile_uv_version()}" in runs
    assert re.search(rf"uv pip sync .*{re.escape(lock)}(\s|$)", runs), f"{builder_name}: sync {lock}"
    syncs = re.findall(r"uv pip sync .*?(requirements[\w-]*\.lock)", runs)
    assert syncs == [lock], f"{builder_name} installs {syncs}, not only {lock}"
    assert "requirements-dev.lock" not in DOCKERFILE.read_text(), "no test tools in the image"
    builder = by_name(stages, builder_name)
    copied = [src for c in builder.all("COPY") for src in copy_parts(c)[1]]
    assert lock in copied
    # the lock is copied and installed before the code: code changes keep the dependency layer
    order = [i.keyword + " " + i.args for i in builder.instructions]
    lock_install = next(n for n, line in enumerate(order) if "pip sync" in line)
    code_copy = next(n for n, line in enumerate(order) if line.startswith("COPY src"))
    assert lock_install < code_copy


@pytest.mark.parametrize(("target", "builder_name"), [("serve", "builder-serve"), ("pipelines", "builder")])
def test_each_target_takes_the_environment_of_its_builder(stages, target: str, builder_name: str) -> None:
    """serve gets only the serving lock's packages, pipelines the full runtime lock."""
    sources = {
        (copy_parts(c)[0].get("from"), copy_parts(c)[2].rstrip("/"))
        for s in stage_chain(stages, target)
        for c in s.all("COPY")
    }
    venv_from = {src for src, dest in sources if dest == "/opt/venv"}
    assert venv_from == {builder_name}, f"{target} copies /opt/venv from {venv_from}"
    assert (builder_name, "/app/src") in sources


@pytest.mark.parametrize("target", ["serve", "pipelines"])
def test_targets_run_as_a_non_root_user(stages, target: str) -> None:
    user = effective(stages, target, "USER")
    assert user is not None, f"{target} runs as root (no USER)"
    name = user.args.split(":")[0].strip()
    assert name not in {"root", "0"}
    assert name.isdigit(), "a numeric uid lets Kubernetes verify runAsNonRoot"


def test_serve_has_a_healthcheck_on_health_with_python(stages, app_routes: set[str]) -> None:
    check = effective(stages, "serve", "HEALTHCHECK")
    assert check is not None and "NONE" not in check.args.upper().split()
    assert "urllib" in check.args and "/health" in check.args
    assert "curl" not in check.args and "wget" not in check.args, "slim images have neither"
    assert "/health" in app_routes


def test_pipelines_target_has_no_http_healthcheck(stages) -> None:
    check = effective(stages, "pipelines", "HEALTHCHECK")
    assert check is not None and check.args.strip().upper() == "NONE"


def test_serve_command_is_make_serve(stages) -> None:
    cmd = effective(stages, "serve", "CMD")
    assert cmd is not None and cmd.exec_form() == SERVE_CMD
    assert effective(stages, "serve", "ENTRYPOINT") is None
    makefile = (ROOT / "Makefile").read_text()
    assert "gunicorn -c gunicorn.conf.py 'fraud_kedro.api:create_app()'" in makefile


def test_serve_command_targets_exist(stages) -> None:
    conf = ROOT / "gunicorn.conf.py"
    assert conf.is_file()
    copied = {src for s in stages for c in s.all("COPY") for src in copy_parts(c)[1]}
    assert "gunicorn.conf.py" in copied
    module, _, call = SERVE_CMD[-1].partition(":")
    package = ROOT / "src" / Path(*module.split(".")) / "__init__.py"
    assert package.is_file(), f"{module} is not a package under src/"
    functions = {n.name for n in ast.parse(package.read_text()).body if isinstance(n, ast.FunctionDef)}
    assert call.removesuffix("()") in functions


def test_serve_listens_on_all_interfaces(stages) -> None:
    env = " ".join(i.args for s in stages if s.name == "serve" for i in s.all("ENV"))
    assert re.search(r"\bHOST=0\.0\.0\.0\b", env) and re.search(r"\bPORT=(\d+)", env)
    port = re.search(r"\bPORT=(\d+)", env).group(1)
    assert by_name(stages, "serve").all("EXPOSE")[0].args.split()[0] == port
    bind = (ROOT / "gunicorn.conf.py").read_text()
    assert "HOST" in bind and "PORT" in bind, "gunicorn.conf.py must build its bind from HOST/PORT"


def test_pipelines_target_runs_kedro_in_a_kedro_project(stages) -> None:
    entry = effective(stages, "pipelines", "ENTRYPOINT")
    assert entry is not None and entry.exec_form() == ["kedro"]
    copied = {src.rstrip("/") for s in stages for c in s.all("COPY") for src in copy_parts(c)[1]}
    assert {"pyproject.toml", "conf", "src"} <= copied
    workdir = effective(stages, "pipelines", "WORKDIR")
    assert workdir is not None and workdir.args.strip() == "/app"


@pytest.mark.parametrize(
    "path",
    [
        "data/01_raw/transactions.parquet",
        "data/08_reporting/metrics.json",
        "mlflow.db",
        "mlruns/1/meta.yaml",
        ".venv/bin/python",
        ".pytest_cache/v/cache/nodeids",
        ".ruff_cache/content",
        "src/fraud_kedro/__pycache__/features.cpython-311.pyc",
        "src/fraud_kedro.egg-info/PKG-INFO",
        "conf/local/credentials.yml",
        ".git/HEAD",
        ".env",
    ],
)
def test_dockerignore_keeps_data_tracking_envs_caches_and_secrets_out(path: str) -> None:
    assert is_ignored(dockerignore_rules(ROOT / ".dockerignore"), path)
