"""Security checks: API keys compared in constant time, request size capped (over a real gunicorn),
no unpickling or evaluation of request data, secrets only in the environment or ``conf/local``, and
bandit on ``src`` with every Medium/High finding documented (``.bandit``).

The container's non-root user is checked by ``tests/delivery/test_dockerfile.py``
(``test_targets_run_as_a_non_root_user``); ``pip-audit`` needs PyPI and runs in
``scripts/security_audit.sh`` (CI), not here.
"""

from __future__ import annotations

import ast
import re
import shutil
import socket
import subprocess
import time

import pytest
import yaml

from . import bandit_gate, harness

ROOT = harness.ROOT
API = ROOT / "src" / "fraud_kedro" / "api"


# -- API keys ------------------------------------------------------------------------------------


def test_api_keys_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    from fraud_kedro.api import auth

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    keys = ("first-key", "second-key", "third-key")
    for given, expected in (("first-key", True), ("third-key", True), ("nope", False), ("", False)):
        calls.clear()
        assert auth.key_matches(given, keys) is expected
        assert len(calls) == len(keys), "every key is compared, whichever matches (no early exit)"
    assert auth.key_matches(None, keys) is False
    # and nothing in the module compares key material with ==, != or in
    tree = ast.parse((API / "auth.py").read_text())
    secret_names = {"given", "supplied", "key", "keys"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(
            isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn) for op in node.ops
        ):
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            assert not names & secret_names, f"auth.py line {node.lineno} compares a key directly"


# -- request size (real gunicorn) ------------------------------------------------------------------


def _raw_http(
    port: int, head: bytes, body_chunks: list[bytes], timeout: float = 30
) -> tuple[int, bytes, float]:
    """Send raw bytes, return (status, response, seconds); tolerant of the server closing early."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the body was read: the answer is waiting
        data = b""
        try:
            while True:
                part = sock.recv(65536)
                if not part:
                    break
                data += part
        except (ConnectionResetError, TimeoutError):
            pass
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data, time.monotonic() - started


@pytest.mark.slow
def test_request_size_is_capped_over_http(server: harness.Gunicorn) -> None:
    cap = 8 * 1024 * 1024  # FRAUD_MAX_BODY_BYTES default
    auth = f"X-API-Key: {harness.API_KEY}\r\n".encode()
    # a huge Content-Length is refused before the body is read: 413 without waiting for 1 GB
    head = (
        b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + auth
        + b"Content-Length: 1073741824\r\n\r\n"
    )
    status, data, seconds = _raw_http(server.port, head, [b"{" * 1024])
    assert status == 413, data[:500]
    assert b'"field": "body"' in data or b'"field":"body"' in data
    assert seconds < 10
    # a chunked body (no Content-Length) over the cap: no more than the cap is read, and it is a 413
    # (not the 400 "unterminated string" of a body silently cut at the cap)
    head = (
        b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + auth
        + b"Transfer-Encoding: chunked\r\n\r\n"
    )
    body = b'{"transactions": "' + b"a" * (cap + 1024 * 1024) + b'"}'
    chunks = [
        b"%x\r\n%s\r\n" % (len(body[i : i + 65536]), body[i : i + 65536]) for i in range(0, len(body), 65536)
    ]
    status, data, _ = _raw_http(server.port, head, [*chunks, b"0\r\n\r\n"])
    assert status == 413, data[-300:]
    # an oversized header is refused by gunicorn itself (limit_request_field_size), not a 5xx
    head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-API-Key: " + b"k" * 65536 + b"\r\n\r\n"
    status, data, _ = _raw_http(server.port, head, [])
    assert 400 <= status < 500, data[:300]
    # the service is still there
    assert server.call("GET", "/health", key=None).status == 200


# -- no evaluation of request data ------------------------------------------------------------------

DANGEROUS_MODULES = {
    "pickle",
    "cPickle",
    "_pickle",
    "dill",
    "cloudpickle",
    "marshal",
    "shelve",
    "jsonpickle",
    "joblib",
    "subprocess",
    "pty",
}
DANGEROUS_CALLS = {"eval", "exec", "compile", "__import__", "execfile", "input"}
DANGEROUS_ATTRS = {
    ("yaml", "load"),
    ("yaml", "unsafe_load"),
    ("yaml", "full_load"),
    ("yaml", "load_all"),
    ("os", "system"),
    ("os", "popen"),
    ("pickle", "loads"),
    ("pickle", "load"),
    ("numpy", "load"),
    ("np", "load"),
    ("pd", "read_pickle"),
    ("pandas", "read_pickle"),
    ("importlib", "import_module"),
}


def test_the_api_never_unpickles_or_evaluates_anything() -> None:
    """Request bodies are parsed with json only; the API package imports no deserialiser of code.

    The model itself is unpickled by MLflow when it is loaded from the registry (trusted storage,
    see docs/reliability.md), never from anything a request carries.
    """
    problems = []
    for path in sorted(API.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        where = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for name in names:
                    if name.split(".")[0] in DANGEROUS_MODULES:
                        problems.append(f"{where}:{node.lineno} imports {name}")
            elif isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Name) and func.id in DANGEROUS_CALLS:
                    problems.append(f"{where}:{node.lineno} calls {func.id}()")
                if (
                    isinstance(func, ast.Attribute)
                    and isinstance(func.value, ast.Name)
                    and (func.value.id, func.attr) in DANGEROUS_ATTRS
                ):
                    problems.append(f"{where}:{node.lineno} calls {func.value.id}.{func.attr}()")
                if (
                    isinstance(func, ast.Attribute)
                    and func.attr == "loads"
                    and isinstance(func.value, ast.Name)
                    and func.value.id not in {"json"}
                ):
                    problems.append(f"{where}:{node.lineno} calls {func.value.id}.loads()")
    assert not problems, problems
    # the body parser is json with non-finite literals turned into a rejected marker
    source = (API / "validation.py").read_text()
    assert "json.loads(raw, parse_constant=" in source


def test_a_request_cannot_choose_the_model() -> None:
    """No route takes a model URI, path or version from the request: the admin reload reloads the
    configured alias (``FRAUD_MODEL_URI``) only."""
    # the only request reads besides validation.parse_json_body, each of a named, checked value:
    # the explain flag (a pydantic query model), the OpenAPI version, the console's key/day/k
    allowed = {
        ("scoring.py", "args"),
        ("openapi.py", "args"),
        ("console.py", "args"),
        ("console.py", "form"),
    }
    for path in sorted(API.rglob("*.py")):
        text = path.read_text()
        for match in re.finditer(r"request\.(args|form|values|json|get_json|files|data)\b", text):
            if (path.name, match.group(1)) in allowed:
                continue
            line = text[: match.start()].count("\n") + 1
            pytest.fail(
                f"{path.relative_to(ROOT)}:{line} reads request.{match.group(1)} "
                "(bodies go through validation.parse_json_body)"
            )
    admin = ast.parse((API / "admin.py").read_text())
    names = {n.id for n in ast.walk(admin) if isinstance(n, ast.Name)}
    assert not names & {"request", "parse_json_body"}, "POST /admin/reload must not read the request"


# -- secrets ---------------------------------------------------------------------------------------

SECRET_KEY = re.compile(
    r"(pass(word|wd)?|secret|token|api[_-]?keys?|access[_-]?key|private[_-]?key|"
    r"credentials?|auth)$",
    re.IGNORECASE,
)
SECRET_TEXT = [
    re.compile(r"AKIA[0-9A-Z]{16}"),  # AWS access key id
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@"),  # credentials in a URL
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"),  # GitHub token
    re.compile(r"\bxox[abpr]-[A-Za-z0-9-]{10,}"),  # Slack token
]


def _walk(value, path=()):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, (*path, str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, (*path, str(i)))
    else:
        yield path, value


def _is_reference(value) -> bool:
    """Empty, or a reference to the environment / a credentials entry rather than a secret."""
    return value in (None, "", {}, []) or (
        isinstance(value, str)
        and (value.startswith("${") or value.startswith("<") or value.lower() in {"null", "none", "changeme"})
    )


def test_configuration_holds_no_secrets() -> None:
    """conf/ (except the git-ignored conf/local) has no secret values: keys come from the environment."""
    files = [
        p
        for p in sorted((ROOT / "conf").rglob("*"))
        if p.is_file() and "local" not in p.relative_to(ROOT / "conf").parts[:1]
    ]
    assert any(p.name == "catalog.yml" for p in files)
    problems = []
    for path in files:
        text = path.read_text(errors="replace")
        for pattern in SECRET_TEXT:
            for match in pattern.finditer(text):
                problems.append(f"{path.relative_to(ROOT)}: looks like a secret: {match.group(0)[:12]}...")
        if path.suffix in {".yml", ".yaml"}:
            for keys, value in _walk(yaml.safe_load(text) or {}):
                if keys and SECRET_KEY.search(keys[-1]) and not _is_reference(value):
                    problems.append(f"{path.relative_to(ROOT)}: {'.'.join(keys)} has a literal value")
    assert not problems, problems


def test_deployment_files_reference_secrets_instead_of_holding_them() -> None:
    for path in sorted((ROOT / "deploy").rglob("*.y*ml")):
        text = path.read_text()
        for pattern in SECRET_TEXT:
            assert not pattern.search(text), f"{path.relative_to(ROOT)} holds a secret"
        for doc in yaml.safe_load_all(text):
            for keys, value in _walk(doc or {}):
                if keys and keys[-1] in {"FRAUD_API_KEYS", "FRAUD_ADMIN_KEYS"}:
                    assert _is_reference(value), f"{path.relative_to(ROOT)}: {'.'.join(keys)} = {value!r}"


def test_gitignore_keeps_local_secrets_out_of_the_repository() -> None:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    for path in ("conf/local/credentials.yml", "conf/local/parameters.yml", ".env", "mlflow.db"):
        result = subprocess.run([git, "check-ignore", "-q", path], cwd=ROOT, check=False)
        assert result.returncode == 0, f"{path} is not git-ignored"
    tracked = subprocess.run(
        [git, "ls-files", "conf/local"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert set(tracked) <= {"conf/local/.gitkeep", "conf/local/README.md"}, tracked


# -- bandit --------------------------------------------------------------------------------------


def test_bandit_finds_nothing_undocumented_in_src() -> None:
    """No Medium/High bandit finding in src that ``.bandit`` does not document (offline)."""
    bad, ok, _low, stale = bandit_gate.gate()
    assert not bad, "undocumented bandit findings:\n" + "\n".join(map(str, bad))
    assert not stale, f"entries of .bandit [accepted] that match nothing any more: {stale}"
    reasons = bandit_gate.accepted_findings()
    assert all(len(reasons[f.key]) > 20 for f in ok)
