"""Bandit gate: run bandit on ``src`` with ``.bandit`` and fail on any Medium/High finding that the
``[accepted]`` section of ``.bandit`` does not document.

Accepted findings are keyed by test id, file and enclosing function (not by line, which moves with
every edit). Offline: bandit needs no network.

Usage: ``.venv/bin/python tests/reliability/bandit_gate.py`` (exit 0 when the gate passes; prints
every finding, and every accepted entry that no longer matches anything).
"""

from __future__ import annotations

import ast
import configparser
import json
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ".bandit"
GATING = {"MEDIUM", "HIGH"}


@dataclass(frozen=True)
class Finding:
    test_id: str
    severity: str
    confidence: str
    path: str
    line: int
    function: str
    text: str

    @property
    def key(self) -> tuple[str, str, str]:
        return self.test_id, self.path, self.function

    def __str__(self) -> str:
        return (
            f"{self.test_id} {self.severity}/{self.confidence} {self.path}:{self.line} "
            f"({self.function}): {self.text}"
        )


def accepted_findings(config: Path = CONFIG) -> dict[tuple[str, str, str], str]:
    """The ``[accepted]`` entries of ``.bandit``: (test id, file, function) to the reason."""
    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(config)
    out = {}
    for key, reason in parser.items("accepted") if parser.has_section("accepted") else []:
        test_id, path, function = key.split()
        if not reason.strip():
            raise ValueError(f".bandit: accepted finding {key} has no reason")
        out[(test_id, path, function)] = reason.strip()
    return out


@cache
def _functions(path: str) -> list[tuple[int, int, str]]:
    """(first line, last line, qualified name) of every function of a file."""
    tree = ast.parse((ROOT / path).read_text())
    spans: list[tuple[int, int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    spans.append((child.lineno, child.end_lineno or child.lineno, name))
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return spans


def enclosing_function(path: str, line: int) -> str:
    """Qualified name of the innermost function holding ``line`` (``<module>`` outside any)."""
    inside = [(last - first, name) for first, last, name in _functions(path) if first <= line <= last]
    return min(inside)[1] if inside else "<module>"


def run_bandit(targets: tuple[str, ...] = ("src",)) -> tuple[list[Finding], dict]:
    """Run bandit (``--ini .bandit``, JSON output); returns the findings and the raw report."""
    bandit = Path(sys.executable).parent / "bandit"
    proc = subprocess.run(
        [str(bandit), "-r", *targets, "--ini", str(CONFIG), "-f", "json", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        raise RuntimeError(f"bandit failed ({proc.returncode}): {proc.stderr[-3000:]}")
    report = json.loads(proc.stdout)
    if report.get("errors"):
        raise RuntimeError(f"bandit could not scan: {report['errors']}")
    findings = []
    for r in report["results"]:
        path = (
            str(Path(r["filename"]).resolve().relative_to(ROOT))
            if Path(r["filename"]).is_absolute()
            else str(Path(r["filename"]))
        )
        findings.append(
            Finding(
                r["test_id"],
                r["issue_severity"],
                r["issue_confidence"],
                path,
                r["line_number"],
                enclosing_function(path, r["line_number"]),
                r["issue_text"],
            )
        )
    return findings, report


def gate() -> tuple[list[Finding], list[Finding], list[Finding], list[tuple[str, str, str]]]:
    """(undocumented gating findings, accepted ones, low ones, stale accepted entries)."""
    findings, _ = run_bandit()
    accepted = accepted_findings()
    gating = [f for f in findings if f.severity in GATING]
    bad = [f for f in gating if f.key not in accepted]
    ok = [f for f in gating if f.key in accepted]
    low = [f for f in findings if f.severity not in GATING]
    stale = sorted(set(accepted) - {f.key for f in gating})
    return bad, ok, low, stale


def main() -> int:
    bad, ok, low, stale = gate()
    accepted = accepted_findings()
    for title, items in (
        ("NOT DOCUMENTED (fix, or document in .bandit [accepted])", bad),
        ("accepted (see .bandit)", ok),
        ("low severity (reported, not gating)", low),
    ):
        print(f"\n{title}: {len(items)}")  # noqa: T201
        for f in items:
            reason = f"\n      why accepted: {accepted[f.key]}" if f.key in accepted else ""
            print(f"  {f}{reason}")  # noqa: T201
    for key in stale:
        print(f"\nstale .bandit entry (matches nothing now; remove it): {' '.join(key)}")  # noqa: T201
    print(f"\nbandit gate: {'FAIL' if bad else 'pass'}")  # noqa: T201
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
