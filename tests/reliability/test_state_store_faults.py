"""The state store (which holds the prediction and label logs) cannot be written: the service answers
503 with a clear error and nothing half-written, and works again once the fault clears.

``tests/api/test_scoring.py`` covers a store locked by another process and a store that cannot be
opened at start. Here: a full disk under a real gunicorn (``RLIMIT_FSIZE`` of the workers set to 0
with ``prlimit``: every file write of the worker fails, as on a full disk, without root or a special
filesystem), and a store made read-only (``chattr +i`` as root, which even root cannot write through;
``chmod`` otherwise).
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from . import harness

UNLIMITED = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)


@contextmanager
def disk_full(pids: list[int]) -> Iterator[None]:
    """Make every file write of these processes fail (EFBIG) until the block exits."""
    saved = {pid: resource.prlimit(pid, resource.RLIMIT_FSIZE) for pid in pids}
    try:
        for pid in pids:
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (0, saved[pid][1]))
        yield
    finally:
        for pid, limits in saved.items():
            try:
                resource.prlimit(pid, resource.RLIMIT_FSIZE, limits)
            except ProcessLookupError:
                pass


def _ids_in(db: Path, table: str, ids: set[int]) -> set[int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        marks = ",".join("?" * len(ids))
        return {
            r[0]
            for r in conn.execute(
                f"SELECT transaction_id FROM {table} WHERE transaction_id IN ({marks})", sorted(ids)
            )
        }
    finally:
        conn.close()


@pytest.mark.slow
def test_disk_full_is_a_503_with_nothing_written_then_the_service_recovers(
    server: harness.Gunicorn, world: harness.World
) -> None:
    db: Path = server.db  # type: ignore[attr-defined]
    stream = harness.TxStream(world.future, id_offset=920_000_000_000)
    assert server.call("POST", "/score", stream.take(1)[0]).status == 200
    singles = stream.take(6)
    batch = stream.take(20)
    labels = {"labels": [{"transaction_id": singles[0]["transaction_id"], "is_fraud": 1}]}
    workers = server.wait_workers(2)
    since = time.monotonic()
    with disk_full(workers):
        replies = [server.call("POST", "/score", body) for body in singles]
        replies.append(server.call("POST", "/score", {"transactions": batch}))
        feedback = server.call("POST", "/feedback", labels)
        ready = server.call("GET", "/ready", key=None)
        health = server.call("GET", "/health", key=None)
    for reply in [*replies, feedback]:
        assert reply.status == 503, reply
        assert reply.body["error"].startswith("state store unavailable"), reply.body
        assert reply.body["details"][0]["field"] == "state_store"
        assert reply.headers.get("retry-after") == "1"
    assert ready.status == 503 and not ready.body["ready"]
    assert any("state store" in reason for reason in ready.body["reasons"])
    assert health.status == 200
    assert server.wait_for_log("ERROR", since=since, timeout=5) is not None
    log = server.log(since)
    assert "state store" in log and ("disk I/O error" in log or "disk is full" in log), log[-3000:]
    sent = {t["transaction_id"] for t in [*singles, *batch]}
    assert not _ids_in(db, "prediction_log", sent), "a refused request left predictions behind"
    assert not _ids_in(db, "transactions", sent), "a refused request left history rows behind"

    # the fault clears: ready again, and the same requests are scored (not replayed: never written)
    assert harness.wait_until(lambda: server.call("GET", "/ready", key=None).status == 200, timeout=10)
    again = [server.call("POST", "/score", body) for body in singles]
    again.append(server.call("POST", "/score", {"transactions": batch}))
    assert [r.status for r in again] == [200] * len(again), [r.body for r in again if r.status != 200]
    assert not any(r.headers.get("idempotent-replayed") for r in again)
    assert server.call("POST", "/feedback", labels).status == 200
    assert _ids_in(db, "prediction_log", sent) == sent
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        counts = conn.execute(
            "SELECT transaction_id, COUNT(*) FROM prediction_log WHERE transaction_id >= 920000000000 "
            "GROUP BY transaction_id HAVING COUNT(*) > 1"
        ).fetchall()
    finally:
        conn.close()
    assert counts == [], "a transaction was logged twice"


# -- read-only store ------------------------------------------------------------------------------


def _can_chattr(path: Path) -> bool:
    if os.geteuid() != 0 or shutil.which("chattr") is None:
        return False
    probe = path.parent / ".chattr-probe"
    probe.write_text("x")
    try:
        if subprocess.run(["chattr", "+i", str(probe)], capture_output=True, check=False).returncode != 0:
            return False
        try:
            with probe.open("a") as fh:
                fh.write("y")
            return False
        except PermissionError:
            return True
    finally:
        subprocess.run(["chattr", "-i", str(probe)], capture_output=True, check=False)
        probe.unlink()


@contextmanager
def read_only(db: Path, shm: bool = True) -> Iterator[None]:
    """The store's files (and folder) read-only: immutable as root, without write permission otherwise.

    ``shm=False`` leaves SQLite's shared-memory index alone: it is mapped into the processes that
    have the store open, and a write to a mapped page of an immutable file is a SIGBUS (a crash, not
    an error SQLite could report).
    """
    names = (db, Path(f"{db}-wal"), *([Path(f"{db}-shm")] if shm else []), db.parent)
    files = [p for p in names if p.exists()]
    if os.geteuid() == 0:
        if not _can_chattr(db):
            pytest.skip("running as root without a working chattr +i: cannot make a file read-only")
        for path in files:
            subprocess.run(["chattr", "+i", str(path)], check=True)
        try:
            yield
        finally:
            for path in reversed(files):
                subprocess.run(["chattr", "-i", str(path)], check=False)
    else:
        modes = {path: path.stat().st_mode for path in files}
        for path in files:
            path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            for path, mode in modes.items():
                path.chmod(mode)


def test_a_read_only_store_is_a_503_until_it_is_writable_again(
    tmp_path: Path, seeded_template: Path, make_app, world: harness.World, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "store"
    folder.mkdir()
    db = folder / "state.db"
    shutil.copyfile(seeded_template, db)
    rows = harness.TxStream(world.future, id_offset=930_000_000_000).take(3)
    headers = {"X-API-Key": harness.API_KEY}
    with read_only(db), caplog.at_level(logging.ERROR):
        client = make_app(db).test_client()  # starts on a read-only store
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert any("state store" in r for r in ready.get_json()["reasons"])
        for body in rows:
            response = client.post("/score", json=body, headers=headers)
            assert response.status_code == 503, response.get_json()
            assert response.get_json()["error"].startswith("state store unavailable")
        fb = client.post(
            "/feedback", json={"labels": [{"transaction_id": 1, "is_fraud": 0}]}, headers=headers
        )
        assert fb.status_code == 503
    assert any("state store" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    assert not _ids_in(db, "prediction_log", {t["transaction_id"] for t in rows})

    def scored() -> bool:
        return client.post("/score", json=rows[0], headers=headers).status_code == 200

    assert harness.wait_until(scored, timeout=5, every=0.2)  # the store is re-opened (once a second)
    assert client.get("/ready").status_code == 200
    assert all(client.post("/score", json=b, headers=headers).status_code == 200 for b in rows[1:])
    assert _ids_in(db, "prediction_log", {t["transaction_id"] for t in rows}) == {
        t["transaction_id"] for t in rows
    }


def test_a_store_made_read_only_while_serving_is_a_503_and_recovers(
    tmp_path: Path, seeded_template: Path, make_app, world: harness.World
) -> None:
    """The fault arrives while the app holds open connections (root only: permissions do not
    affect files already open, the immutable flag does)."""
    if os.geteuid() != 0:
        pytest.skip("needs root (chattr +i) to make open files read-only")
    folder = tmp_path / "store"
    folder.mkdir()
    db = folder / "state.db"
    shutil.copyfile(seeded_template, db)
    client = make_app(db).test_client()
    headers = {"X-API-Key": harness.API_KEY}
    rows = harness.TxStream(world.future, id_offset=940_000_000_000).take(4)
    assert client.post("/score", json=rows[0], headers=headers).status_code == 200
    with read_only(db, shm=False):
        response = client.post("/score", json=rows[1], headers=headers)
        assert response.status_code == 503, response.get_json()
        assert client.get("/ready").status_code == 503
        assert client.get("/health").status_code == 200
    assert not _ids_in(db, "prediction_log", {rows[1]["transaction_id"]})
    assert harness.wait_until(
        lambda: client.post("/score", json=rows[1], headers=headers).status_code == 200, timeout=5, every=0.2
    )
    assert client.post("/score", json=rows[2], headers=headers).status_code == 200
    logged = _ids_in(db, "prediction_log", {t["transaction_id"] for t in rows})
    assert logged == {t["transaction_id"] for t in rows[:3]}
