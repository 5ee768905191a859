"""The service under a real gunicorn (2 workers, gunicorn.conf.py) on a free localhost port."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import seed_template
from support.gunicorn import Gunicorn, busy_worker, server_env
from test_scoring import as_body

from fraud_kedro.api import read_prediction_log

ROOT = Path(__file__).resolve().parents[2]
KEY = "gunicorn-test-key"
pytestmark = pytest.mark.slow


def _call(url: str, body=None, key: str | None = KEY, timeout: float = 30) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **({"X-API-Key": key} if key else {})}
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture(scope="module")
def server(registry, _seeded_template, tmp_path_factory):
    """gunicorn with gunicorn.conf.py, as ``make serve`` starts it; stopped by its pid."""
    workdir = tmp_path_factory.mktemp("gunicorn")
    db = seed_template(workdir / "state.db")
    env = server_env(registry, db, FRAUD_API_KEYS=KEY, FRAUD_GRACEFUL_TIMEOUT="20")
    with Gunicorn(workdir, env, workers=2).start() as srv:
        yield {"base": f"http://127.0.0.1:{srv.port}", "db": db, "proc": srv.proc, "server": srv}


def test_scores_over_http_and_logs_every_acknowledged_request(server, held_out):
    base = server["base"]
    status, _ = _call(f"{base}/score", as_body(held_out.iloc[0]), key=None)
    assert status == 401
    rows = [as_body(r) for r in held_out.iloc[1:161].itertuples()]

    def score(body):
        return _call(f"{base}/score", body)

    with ThreadPoolExecutor(8) as pool:  # concurrent requests reach both workers
        answers = list(pool.map(score, rows))
    assert [s for s, _ in answers] == [200] * len(rows)
    status, payload = _call(f"{base}/score", {"transactions": [as_body(held_out.iloc[161])]})
    assert status == 200 and payload["model"]["version"] == "1"
    acknowledged = {r["transaction_id"] for _, p in answers for r in p["results"]}
    logged = set(read_prediction_log(server["db"])["transaction_id"])
    assert acknowledged | {int(held_out.iloc[161].transaction_id)} <= logged
    # metrics add up the two workers
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        text = response.read().decode()
    line = next(
        ln for ln in text.splitlines()
        if ln.startswith('fraud_api_requests_total{endpoint="/score",method="POST",status="200"}')
    )
    assert float(line.split()[-1]) >= len(rows) + 1
    assert 'fraud_api_model_info{name="fraud_detector",role="champion",version="1"} 1.0' in text


def test_shared_contract_checker_passes(server):
    checker = None
    for shared in (Path("/work/shared"), ROOT.parent / "shared"):
        if (shared / "checks" / "api_contract_check.py").exists():
            checker = shared / "checks" / "api_contract_check.py"
            break
    if checker is None:
        pytest.skip("shared/checks/api_contract_check.py not found (neither /work/shared nor ../shared)")
    result = subprocess.run(
        [sys.executable, str(checker), server["base"], KEY],
        check=False, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "contract checks pass" in result.stdout


def _chunked_post(base: str, body: bytes) -> tuple[int, bytes]:
    """POST ``body`` with chunked transfer encoding (no Content-Length) on a raw socket."""
    host, port = base.removeprefix("http://").split(":")
    head = (
        f"POST /score HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"X-API-Key: {KEY}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode()
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + 65536]), body[i : i + 65536])
        for i in range(0, len(body), 65536)
    )
    answer = b""
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        try:
            sock.sendall(head + chunks + b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the end: the answer is already there
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]), answer.partition(b"\r\n\r\n")[2]


def test_chunked_bodies_are_capped_too(server, held_out):
    """Without Content-Length, a body over the cap is a 413 (not a body cut at the cap)."""
    status, data = _chunked_post(server["base"], b'{"transactions": "' + b"a" * (9 * 2**20) + b'"}')
    assert status == 413, data[:300]
    assert b'"field": "body"' in data
    body = json.dumps(as_body(held_out.iloc[170])).encode()
    assert _chunked_post(server["base"], body)[0] == 200


def test_graceful_shutdown_finishes_the_request_in_flight(server, held_out):
    """SIGTERM while a big batch is being scored: it is answered and logged, then gunicorn exits.

    The signal goes out only once a worker is seen running the batch (/proc), and the answer must
    still be pending then: a batch answered before the signal proves nothing and fails the test."""
    base, proc, srv = server["base"], server["proc"], server["server"]
    batch = [
        {**as_body(held_out.iloc[i % len(held_out)]), "transaction_id": 7_000_000_000 + i}
        for i in range(3000)
    ]
    answer: dict = {}
    worker = threading.Thread(
        target=lambda: answer.update(result=_call(f"{base}/score", {"transactions": batch}))
    )
    worker.start()
    assert busy_worker(srv.workers(), timeout=10) is not None, "no worker took the batch"
    proc.send_signal(signal.SIGTERM)
    in_flight_at_sigterm = worker.is_alive()
    worker.join(60)
    assert in_flight_at_sigterm, "the batch was answered before SIGTERM: make it bigger"
    assert answer["result"][0] == 200
    assert proc.wait(60) == 0
    logged = set(read_prediction_log(server["db"])["transaction_id"])
    assert {b["transaction_id"] for b in batch} <= logged
