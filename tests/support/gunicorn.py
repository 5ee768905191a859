"""A real gunicorn started like ``make serve`` (``gunicorn.conf.py``) on a free 127.0.0.1 port, the
HTTP call the tests make to it, and /proc probes of its workers. Every process started here is
stopped by its own pid; a test run that dies takes its servers with it (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
QUIET_ENV = {
    "KEDRO_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "NML_DISABLE_USAGE_LOGGING": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MPLBACKEND": "Agg",
}
API_KEY = "reliability-key"
ADMIN_KEY = "reliability-admin-key"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- HTTP ----------------------------------------------------------------------------------------


@dataclass
class Reply:
    """One HTTP exchange: status (None when the connection failed), body, headers, error."""

    status: int | None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def call(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    key: str | None = API_KEY,
    timeout: float = 30,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
    on_connect: Callable[[int], None] | None = None,
) -> Reply:
    """One request on a new connection (gunicorn's sync workers close after every answer);
    ``on_connect`` gets the client's local port once connected, before the request is sent."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    payload = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    head = {"Content-Type": "application/json", **({"X-API-Key": key} if key else {}), **(headers or {})}
    try:
        if on_connect is not None:
            conn.connect()
            on_connect(conn.sock.getsockname()[1])
        conn.request(method, path, payload, head)
        response = conn.getresponse()
        data = response.read()
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = data.decode(errors="replace")
        return Reply(response.status, parsed, {k.lower(): v for k, v in response.getheaders()})
    except (OSError, http.client.HTTPException) as exc:
        return Reply(None, error=f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()


# -- gunicorn ------------------------------------------------------------------------------------


def proc_children(pid: int) -> list[int]:
    """Child pids of ``pid`` (Linux /proc)."""
    out: list[int] = []
    task_dir = Path(f"/proc/{pid}/task")
    try:
        for task in task_dir.iterdir():
            text = (task / "children").read_text().split()
            out.extend(int(x) for x in text)
    except OSError:
        return []
    return sorted(set(out))


def _entries(folder: str) -> list[Path]:
    """The entries of a /proc folder; none once the process is gone."""
    try:
        return list(Path(folder).iterdir())
    except OSError:
        return []


def busy_worker(pids: list[int], timeout: float = 3.0) -> int | None:
    """The first of ``pids`` seen running (a thread in state R in /proc: handling a request rather
    than waiting in accept/poll), polling every millisecond for up to ``timeout`` s; None if none was."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in pids:
            for task in _entries(f"/proc/{pid}/task"):
                try:
                    stat = (task / "stat").read_text()
                except OSError:
                    continue
                if stat[stat.rindex(")") + 2] == "R":
                    return pid
        time.sleep(0.001)
    return None


def connection_owner(
    pids: list[int], server_port: int, client_port: int, timeout: float = 10.0
) -> int | None:
    """The one of ``pids`` that accepted the TCP connection from ``client_port`` to ``server_port``
    on 127.0.0.1 (its socket inode, from /proc/net/tcp, among the process's fds), polling every
    millisecond for up to ``timeout`` s; None if no worker accepted it by then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        inode = _tcp_inode(server_port, client_port)
        if inode is not None:
            link = f"socket:[{inode}]"
            for pid in pids:
                for fd in _entries(f"/proc/{pid}/fd"):
                    try:
                        if os.readlink(fd) == link:
                            return pid
                    except OSError:
                        continue
        time.sleep(0.001)
    return None


def _tcp_inode(local_port: int, remote_port: int) -> int | None:
    """Inode of the established IPv4 socket from ``local_port`` to ``remote_port`` (0 = not yet
    accepted by a process), None when there is no such socket."""
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        local, remote, state, inode = fields[1], fields[2], fields[3], int(fields[9])
        ports = int(local.split(":")[1], 16), int(remote.split(":")[1], 16)
        if state == "01" and ports == (local_port, remote_port):
            return inode or None
    return None


def rss_kib(pid: int) -> int | None:
    """Resident set size of a process in KiB (VmRSS of /proc/<pid>/status), None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the process that started it dies (a crashed test run
    must not leave a server behind). Linux only; a no-op elsewhere."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Gunicorn:
    """``gunicorn -c gunicorn.conf.py 'fraud_kedro.api:create_app()'`` (as ``make serve``) on a free port.

    Its output goes through a pipe (not a file: the disk-full test limits the workers' file writes)
    and is kept in memory and copied to ``workdir/gunicorn.log``.
    """

    def __init__(self, workdir: Path, env: dict[str, str], workers: int = 2) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.env = {
            **os.environ,
            **QUIET_ENV,
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
            "FRAUD_WORKERS": str(workers),
            "FRAUD_SEED_PATH": "",
            "FRAUD_API_KEYS": API_KEY,
            "FRAUD_ADMIN_KEYS": ADMIN_KEY,
            "FRAUD_MODEL_POLL_SECONDS": "0",
            "FRAUD_GRACEFUL_TIMEOUT": "10",
            **env,
        }
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.proc: subprocess.Popen | None = None
        self._lines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, wait: str | None = "/ready", timeout: float = 240) -> Gunicorn:
        """Start it and wait until ``wait`` answers 200 (None: until ``/health`` answers at all)."""
        gunicorn = Path(sys.executable).parent / "gunicorn"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [str(gunicorn), "-c", str(ROOT / "gunicorn.conf.py"), "fraud_kedro.api:create_app()"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, no locks taken
        )
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        path = wait or "/health"
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.proc.returncode}):\n{self.log()[-4000:]}")
            reply = call(self.port, "GET", path, key=None, timeout=5)
            if reply.status == 200 or (wait is None and reply.status is not None):
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"gunicorn: no 200 from {path} in {timeout} s:\n{self.log()[-4000:]}")
            time.sleep(0.2)

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        with (self.workdir / "gunicorn.log").open("w") as copy:
            for raw in iter(self.proc.stdout.readline, b""):
                line = raw.decode(errors="replace").rstrip("\n")
                with self._lock:
                    self._lines.append((time.monotonic(), line))
                copy.write(line + "\n")
                copy.flush()

    def log(self, since: float = 0.0) -> str:
        """The output so far (lines received after the monotonic time ``since``)."""
        with self._lock:
            return "\n".join(line for t, line in self._lines if t >= since)

    def wait_for_log(self, text: str, since: float = 0.0, timeout: float = 30) -> float | None:
        """Monotonic time of the first line containing ``text`` after ``since``, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                for t, line in self._lines:
                    if t >= since and text in line:
                        return t
            if time.monotonic() > deadline:
                return None
            time.sleep(0.02)

    def workers(self) -> list[int]:
        """Pids of the live workers."""
        return proc_children(self.pid)

    def wait_workers(
        self, n: int, exclude: set[int] | frozenset[int] = frozenset(), timeout: float = 60
    ) -> list[int]:
        """Wait until ``n`` workers, none of them in ``exclude``, are alive."""
        deadline = time.monotonic() + timeout
        while True:
            pids = [p for p in self.workers() if p not in exclude]
            if len(pids) >= n:
                return pids
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pids)} of {n} workers after {timeout} s: {self.log()[-3000:]}")
            time.sleep(0.05)

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Reply:
        return call(self.port, method, path, body, **kwargs)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM to the master (it stops its workers), SIGKILL to it after ``timeout``."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            workers = self.workers()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                for pid in workers:  # orphans of a master that had to be killed
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        if self._reader is not None:
            self._reader.join(10)
        return self.proc.returncode

    def __enter__(self) -> Gunicorn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def server_env(registry: Any, db: Path, **extra: str) -> dict[str, str]:
    """Environment of a service on ``registry`` (or a tracking URI) and the state store ``db``."""
    return {
        "MLFLOW_TRACKING_URI": registry if isinstance(registry, str) else registry["uri"],
        "FRAUD_MODEL_URI": "models:/fraud_detector@champion",
        "FRAUD_STATE_DB": str(db),
        **extra,
    }
