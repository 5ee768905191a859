"""Harness of the reliability tests and benchmarks: a model registry, a seeded state store, a real
gunicorn started like ``make serve``, /proc probes and a fixed-rate load generator.

No pytest in here: ``benchmarks/soak_bench.py`` and ``benchmarks/kill_worker_bench.py`` import it
too. Everything runs on 127.0.0.1; every process started here is stopped by its own pid.

The model is built the way ``tests/api`` builds it (``tests/api/model_factory.py``: the project's
inference pipeline exported as a kedro-mlflow ``KedroPipelineModel`` and registered as
``fraud_detector@champion``) on transactions of ``tests/api/simdata.py``.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
API_TESTS = ROOT / "tests" / "api"
if str(API_TESTS) not in sys.path:
    sys.path.insert(0, str(API_TESTS))

QUIET_ENV = {
    "KEDRO_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "NML_DISABLE_USAGE_LOGGING": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MPLBACKEND": "Agg",
}
for _name, _value in QUIET_ENV.items():
    os.environ.setdefault(_name, _value)

API_KEY = "reliability-key"
ADMIN_KEY = "reliability-admin-key"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- data and model ------------------------------------------------------------------------------


@dataclass
class World:
    """Simulated transactions split in time: the history (training, seeding) and what follows."""

    history: pd.DataFrame
    future: pd.DataFrame


def simulate_world(
    n_customers: int = 300, n_terminals: int = 400, n_days: int = 60, future_days: int = 7, seed: int = 0
) -> World:
    """Transactions of ``tests/api/simdata.py``; the last ``future_days`` days are the future."""
    from simdata import simulate_transactions

    tx = simulate_transactions(n_customers, n_terminals, n_days, seed=seed)
    cut = tx["timestamp"].min().normalize() + pd.Timedelta(days=n_days - future_days)
    history = tx[tx["timestamp"] < cut].reset_index(drop=True)
    future = tx[tx["timestamp"] >= cut].sort_values(["timestamp", "transaction_id"]).reset_index(drop=True)
    return World(history, future)


@contextmanager
def mlflow_uri(uri: str) -> Iterator[None]:
    """Point MLflow's global tracking and registry URIs (and the env var) at ``uri``; restore after."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    saved = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ.pop("MLFLOW_REGISTRY_URI", None)
    mlflow.set_tracking_uri(uri)
    registry_utils._registry_uri = None  # the registry follows the tracking URI, as in production
    try:
        yield
    finally:
        tracking_utils._tracking_uri, registry_utils._registry_uri = saved
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class Registry:
    """A temporary MLflow store holding ``fraud_detector``."""

    uri: str
    root: Path
    estimator: Any
    champion: str
    versions: dict[str, str] = field(default_factory=dict)

    def export(self, name: str, **kwargs: Any) -> str:
        """Register another version (``model_factory.export_model`` arguments); returns it."""
        import model_factory

        with mlflow_uri(self.uri):
            version = model_factory.export_model(
                self.root / name, kwargs.pop("estimator", self.estimator), **kwargs
            )
        self.versions[name] = version
        return version

    def point(self, alias: str, version: str) -> None:
        """Move an alias of ``fraud_detector``."""
        from mlflow import MlflowClient

        MlflowClient(tracking_uri=self.uri, registry_uri=self.uri).set_registered_model_alias(
            "fraud_detector", alias, version
        )


def build_registry(root: Path, history: pd.DataFrame, max_iter: int = 40) -> Registry:
    """Train a small model on ``history`` and register it as ``fraud_detector@champion``."""
    import mlflow
    import model_factory

    root.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with mlflow_uri(uri):
        mlflow.set_experiment(experiment_name="reliability")
        estimator = model_factory.train(history, max_iter=max_iter)
        version = model_factory.export_model(root / "v1", estimator)
    return Registry(uri, root, estimator, version, {"champion": version})


def feature_params():
    """The feature parameters the test model is trained with."""
    import model_factory

    from fraud_kedro.features import FeatureParams

    return FeatureParams.from_dict(model_factory.FEATURE_PARAMS)


def seed_state(db: Path, history: pd.DataFrame) -> Path:
    """A state store seeded with the last days of ``history`` that the features need."""
    from fraud_kedro.api import seed_history

    seed_history(db, history, feature_params())
    return db


def _entity(value: Any) -> int | str:
    return int(value) if isinstance(value, int | np.integer) else str(value)


def tx_body(row: Any, transaction_id: int | None = None, shift: pd.Timedelta | None = None) -> dict:
    """A raw-contract JSON transaction from a DataFrame row (a namedtuple or a Series)."""
    ts = pd.Timestamp(row.timestamp) + (shift or pd.Timedelta(0))
    return {
        "transaction_id": int(row.transaction_id if transaction_id is None else transaction_id),
        "timestamp": ts.isoformat(),
        "customer_id": _entity(row.customer_id),
        "terminal_id": _entity(row.terminal_id),
        "amount": float(row.amount),
    }


class TxStream:
    """Endless stream of raw transactions in time order, under fresh ids.

    Goes through ``frame`` (sorted by time) and, when it is used up, again with the timestamps moved
    forward by the span of the frame, so time keeps advancing and the feature windows stay as full
    as in real traffic (replaying the same day again would pile every replay into the same windows).
    """

    def __init__(self, frame: pd.DataFrame, id_offset: int = 900_000_000_000) -> None:
        self._rows = list(frame.sort_values(["timestamp", "transaction_id"]).itertuples(index=False))
        start, end = frame["timestamp"].min(), frame["timestamp"].max()
        self._span = (end - start).ceil("D") if end > start else pd.Timedelta(days=1)
        self._next_id = id_offset
        self._pos = 0
        self._lap = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> list[dict]:
        """The next ``n`` transactions as request bodies."""
        out = []
        with self._lock:
            for _ in range(n):
                if self._pos == len(self._rows):
                    self._pos, self._lap = 0, self._lap + 1
                out.append(tx_body(self._rows[self._pos], self._next_id, self._span * self._lap))
                self._pos += 1
                self._next_id += 1
        return out


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
) -> Reply:
    """One request on a new connection (gunicorn's sync workers close after every answer)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    payload = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    head = {"Content-Type": "application/json", **({"X-API-Key": key} if key else {}), **(headers or {})}
    try:
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


def busy_worker(pids: list[int], timeout: float = 3.0) -> int | None:
    """The first of ``pids`` seen running (a thread in state R in /proc: handling a request rather
    than waiting in accept/poll), polling every millisecond for up to ``timeout`` s; None if none was."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in pids:
            try:
                tasks = list(Path(f"/proc/{pid}/task").iterdir())
            except OSError:
                continue
            for task in tasks:
                try:
                    stat = (task / "stat").read_text()
                except OSError:
                    continue
                if stat[stat.rindex(")") + 2] == "R":
                    return pid
        time.sleep(0.001)
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

    def start(self, wait: str | None = "/ready", timeout: float = 120) -> Gunicorn:
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


def server_env(registry: Registry | str, db: Path, **extra: str) -> dict[str, str]:
    """Environment of a service on ``registry`` (or a tracking URI) and the state store ``db``."""
    return {
        "MLFLOW_TRACKING_URI": registry if isinstance(registry, str) else registry.uri,
        "FRAUD_MODEL_URI": "models:/fraud_detector@champion",
        "FRAUD_STATE_DB": str(db),
        **extra,
    }


# -- load ----------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One request of a load run (times are monotonic seconds)."""

    scheduled: float
    started: float
    ended: float
    kind: str
    ids: list[int]
    status: int | None
    error: str | None = None
    replayed: bool = False
    body: Any = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def latency(self) -> float:
        """Seconds from the scheduled send time (open loop: queueing in the client counts)."""
        return self.ended - self.scheduled


class FixedRateLoad:
    """Open-loop load: ``rate`` requests a second, a share of them batches, from a pool of threads.

    The request times are fixed in advance (no coordinated omission: a slow answer does not delay
    the next send, and latency counts from the planned send time).

    Args:
        port: Service port.
        stream: Source of transactions.
        rate: Requests per second.
        batch_share: Share of requests that are batches.
        batch_size: Transactions per batch.
        threads: Client threads (the most requests in flight at once).
        seed: Seed of the single/batch mix.
        timeout: Client timeout of a request.
        keep_bodies: Keep each request's body in its :class:`Outcome` (to retry it).
    """

    def __init__(
        self,
        port: int,
        stream: TxStream,
        rate: float,
        batch_share: float = 0.1,
        batch_size: int = 100,
        threads: int = 16,
        seed: int = 0,
        timeout: float = 60,
        keep_bodies: bool = True,
    ) -> None:
        self.port = port
        self.stream = stream
        self.rate = rate
        self.batch_share = batch_share
        self.batch_size = batch_size
        self.threads = threads
        self.timeout = timeout
        self.keep_bodies = keep_bodies
        self._rng = np.random.default_rng(seed)
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._pool: list[threading.Thread] = []
        self._planner: threading.Thread | None = None
        self.t0 = 0.0

    def _send(self, scheduled: float, kind: str) -> None:
        if kind == "batch":
            items = self.stream.take(self.batch_size)
            body: Any = {"transactions": items}
        else:
            items = self.stream.take(1)
            body = items[0]
        started = time.monotonic()
        reply = call(self.port, "POST", "/score", body, timeout=self.timeout)
        outcome = Outcome(
            scheduled,
            started,
            time.monotonic(),
            kind,
            [t["transaction_id"] for t in items],
            reply.status,
            reply.error or (None if reply.status == 200 else str(reply.body)[:300]),
            reply.headers.get("idempotent-replayed") == "true",
            body if self.keep_bodies else None,
        )
        with self._lock:
            self.outcomes.append(outcome)

    def _worker(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            self._send(*item)

    def _plan(self, duration: float) -> None:
        n = 0
        while not self._stop.is_set():
            at = self.t0 + n / self.rate
            if at - self.t0 >= duration:
                break
            delay = at - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            kind = "batch" if self._rng.random() < self.batch_share else "single"
            self._queue.put((at, kind))
            n += 1

    def start(self, duration: float) -> FixedRateLoad:
        """Start sending for ``duration`` seconds (in the background)."""
        self.t0 = time.monotonic()
        self._pool = [threading.Thread(target=self._worker, daemon=True) for _ in range(self.threads)]
        for t in self._pool:
            t.start()
        self._planner = threading.Thread(target=self._plan, args=(duration,), daemon=True)
        self._planner.start()
        return self

    def join(self, timeout: float = 300) -> list[Outcome]:
        """Wait for the planned requests to be answered; returns the outcomes in send order."""
        assert self._planner is not None
        self._planner.join(timeout)
        for _ in self._pool:
            self._queue.put(None)
        for t in self._pool:
            t.join(timeout)
        return sorted(self.outcomes, key=lambda o: o.scheduled)

    def stop(self) -> list[Outcome]:
        """Stop planning new requests; wait for those sent."""
        self._stop.set()
        return self.join()


def percentile_ms(values: list[float], q: float) -> float:
    """The ``q`` percentile of durations in seconds, in ms (nan when empty)."""
    return float(np.percentile(np.asarray(values) * 1e3, q)) if values else float("nan")


def sample_rss(
    server: Gunicorn, every: float, stop: threading.Event, out: list[tuple[float, dict[int, int]]]
) -> None:
    """Append ``(monotonic time, {worker pid: RSS KiB})`` to ``out`` every ``every`` s until ``stop``."""
    while not stop.is_set():
        out.append((time.monotonic(), {p: r for p in server.workers() if (r := rss_kib(p)) is not None}))
        stop.wait(every)


def read_logged_ids(db: Path) -> set[int]:
    """Transaction ids in the prediction log."""
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {row[0] for row in conn.execute("SELECT transaction_id FROM prediction_log")}
    finally:
        conn.close()


def wait_until(predicate: Callable[[], bool], timeout: float, every: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()
