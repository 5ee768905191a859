"""Helpers of the delivery tests: a throw-away project copy, and parsers of the delivery files.

Delivery tests never write into the work tree: Kedro runs (data, ``mlflow.db``, generated DAGs)
happen in a copy under pytest's temporary directory, with local MLflow tracking.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from support.project import ROOT as ROOT  # noqa: PLC0414 - the delivery tests import it from here
from support.project import copy_project as copy_project_to
from support.project import kedro_env
from support.project import run_kedro as run_kedro_in

NOTEBOOK_EXTRAS = ("notebooks", "deploy", "README.md")


def copy_project(dest: Path) -> Path:
    """Copy what Kedro needs (code, configuration, notebooks) to ``dest``, with empty data layers
    and an empty ``conf/local`` (``support.project.copy_project``)."""
    return copy_project_to(dest, NOTEBOOK_EXTRAS)


def run_kedro(project: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``kedro ARGS`` in ``project`` with this interpreter; fail the test with its output."""
    return run_kedro_in(project, *args, timeout=timeout)


_ROUTES_SCRIPT = """
import json, sys
from fraud_kedro.api import create_app
app = create_app({
    "model_uri": sys.argv[1], "state_db": sys.argv[2], "seed_path": "",
    "model_poll_seconds": 0, "model_sync_seconds": 0,
})
sys.stdout.write("ROUTES " + json.dumps(sorted({r.rule for r in app.url_map.iter_rules()})) + "\\n")
"""


def api_routes(workdir: Path) -> set[str]:
    """The URL rules of the real Flask app (built in a child process, without a model)."""
    proc = subprocess.run(  # noqa: S603 - fixed script
        [sys.executable, "-c", _ROUTES_SCRIPT, str(workdir / "no-model"), str(workdir / "state.db")],
        cwd=workdir,
        env=kedro_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("ROUTES ")]
    assert proc.returncode == 0 and lines, f"create_app failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return set(json.loads(lines[-1].removeprefix("ROUTES ")))


# ---- Dockerfile ---------------------------------------------------------------------------------
@dataclass
class Instruction:
    """One Dockerfile instruction: keyword, raw arguments, and the stage it belongs to."""

    keyword: str
    args: str
    stage: str | None

    def exec_form(self) -> list[str] | None:
        """The JSON (exec) form of the arguments, or None for the shell form."""
        text = self.args.strip()
        if text.startswith("["):
            return json.loads(text)
        return None

    def words(self) -> list[str]:
        """Arguments split like a shell would, flags included."""
        form = self.exec_form()
        return form if form is not None else shlex.split(self.args)


@dataclass
class Stage:
    """A build stage: its base (image or earlier stage) and its instructions."""

    name: str
    base: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        """The stage's own instructions with this keyword."""
        return [i for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, in order (line continuations and comments handled)."""
    logical: list[str] = []
    buffer = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if buffer and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        logical.append(buffer + line)
        buffer = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m.group(1), m.group(0)), words[0])
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else ""
            stages.append(Stage(name=name, base=base))
        elif not stages:
            if keyword == "ARG":
                key, _, value = args.partition("=")
                global_args[key.strip()] = value.strip()
        else:
            stages[-1].instructions.append(Instruction(keyword, args, stages[-1].name))
    return global_args, stages


def stage_chain(stages: list[Stage], name: str) -> list[Stage]:
    """The stage and the stages it is built FROM, nearest first."""
    by_name = {s.name: s for s in stages}
    chain = [by_name[name]]
    while chain[-1].base in by_name:
        chain.append(by_name[chain[-1].base])
    return chain


def effective(stages: list[Stage], name: str, keyword: str) -> Instruction | None:
    """The instruction in force for a target (the last one along its FROM chain)."""
    for stage in stage_chain(stages, name):
        found = stage.all(keyword)
        if found:
            return found[-1]
    return None


# ---- .dockerignore --------------------------------------------------------------------------------
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def dockerignore_rules(path: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """``(exclude, regex)`` rules of a .dockerignore, in order (``!`` re-includes)."""
    rules = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        rules.append((not include, _pattern_regex(pattern)))
    return rules


def is_ignored(rules: list[tuple[bool, re.Pattern[str]]], relpath: str) -> bool:
    """Whether Docker leaves ``relpath`` out of the build context (the last matching rule wins;
    a pattern that matches a parent folder matches everything inside it)."""
    parts = relpath.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for exclude, regex in rules:
        if any(regex.fullmatch(c) for c in candidates):
            ignored = exclude
    return ignored
