"""Turn data/08_reporting/metrics.json into a GitLab metrics report (OpenMetrics-style text).

    python .gitlab/metrics_report.py data/08_reporting/metrics.json > metrics.txt

Every numeric value becomes one ``name value`` line (GitLab's ``artifacts:reports:metrics``
format), nested keys joined with ``_``; names are sanitised to ``[a-zA-Z_:][a-zA-Z0-9_:]*``.
Several files may be given; ``--prefix`` prepends a namespace. A Kedro versioned dataset (a
folder ``name.json/<version>/name.json``) is read at its latest version. Standard library only, so
that it runs in any Python image without the project installed.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_INVALID = re.compile(r"[^a-zA-Z0-9_:]")


def metric_name(*parts: str) -> str:
    """A valid metric name from key parts."""
    name = _INVALID.sub("_", "_".join(p for p in parts if p)).strip("_")
    name = re.sub(r"_+", "_", name)
    return f"_{name}" if not name or name[0].isdigit() else name


def flatten(data: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """``(name, value)`` for every finite number (and boolean) in ``data``."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from flatten(value, metric_name(prefix, str(key)))
    elif isinstance(data, bool):
        yield prefix, float(data)
    elif isinstance(data, int | float) and math.isfinite(data):
        yield prefix, float(data)


def resolve(path: Path) -> Path:
    """The file itself, or the latest version of a Kedro versioned dataset folder."""
    if path.is_dir():
        versions = sorted(v / path.name for v in path.iterdir() if (v / path.name).is_file())
        if not versions:
            raise FileNotFoundError(f"no version of {path.name} in {path}")
        return versions[-1]
    return path


def render(paths: list[Path], prefix: str = "") -> str:
    """The report text for the given JSON files (later files win on equal names)."""
    metrics: dict[str, float] = {}
    for path in paths:
        metrics.update(flatten(json.loads(resolve(path).read_text()), metric_name(prefix)))
    return "".join(f"{name} {value:.10g}\n" for name, value in sorted(metrics.items()))


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help="JSON files of metrics")
    parser.add_argument("--prefix", default="", help="namespace prepended to every name")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.files if not p.exists()]
    if missing:
        sys.stderr.write(f"metrics_report: no such file: {', '.join(missing)}\n")
        return 1
    sys.stdout.write(render(args.files, args.prefix))
    return 0


if __name__ == "__main__":
    sys.exit(main())
