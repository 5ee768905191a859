"""SIGKILL of a gunicorn worker under load: the master replaces it, only requests in flight when it
died fail (on a sync worker at most one; on a gthread worker those it had accepted), a retry of each
succeeds, and every acknowledged score is in the prediction log.

A short version of ``benchmarks/kill_worker_bench.py`` (which reports the numbers).
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time

import pytest

from . import harness

pytestmark = pytest.mark.slow


def test_a_killed_worker_is_replaced_and_only_its_request_in_flight_fails(
    server: harness.Gunicorn, world: harness.World
) -> None:
    workers = server.wait_workers(2)
    master_before = server.pid
    stream = harness.TxStream(world.future, id_offset=910_000_000_000)
    load = harness.FixedRateLoad(server.port, stream, rate=25, batch_share=0.2, batch_size=50, threads=8)
    load.start(duration=60)
    time.sleep(2.0)
    # a big batch keeps one worker busy for a while: the victim is the worker that accepted it
    big_body = {"transactions": stream.take(2000)}
    big: dict = {}
    connected: queue.Queue[int] = queue.Queue()
    sender = threading.Thread(
        target=lambda: big.update(
            reply=harness.call(server.port, "POST", "/score", big_body, timeout=120, on_connect=connected.put)
        )
    )
    sender.start()
    victim = harness.connection_owner(workers, server.port, connected.get(timeout=10), timeout=20)
    assert victim is not None, "no worker accepted the big batch: nothing to kill"
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    replacement = server.wait_workers(2, exclude={victim}, timeout=30)
    spawned_at = time.monotonic()
    ready_at = server.wait_for_log("champion model now", since=killed_at, timeout=60)
    assert ready_at is not None, server.log(killed_at)
    time.sleep(2.0)  # traffic on the two workers again
    outcomes = load.stop()
    sender.join(120)

    assert server.proc is not None and server.proc.poll() is None and server.pid == master_before
    survivor = next(w for w in workers if w != victim)
    assert victim not in replacement and survivor in replacement  # the other worker was not touched
    assert ready_at - killed_at < 45
    assert spawned_at - killed_at < 5
    failed = [o for o in outcomes if not o.ok]
    in_flight = [o for o in outcomes if o.started <= killed_at <= o.ended]
    for o in failed:  # only requests the victim held when it died: no error before or after
        assert o.status is None and o.started <= killed_at <= o.ended, o
    assert len(failed) <= len(in_flight)
    # the victim held the big batch: the connection broke, it was not answered
    assert big["reply"].status is None, big["reply"]
    after = [o for o in outcomes if o.scheduled > ready_at]
    assert after and all(o.ok for o in after)
    assert len(outcomes) > 50

    # nothing lost: every acknowledged transaction is logged; a retry of a failed one succeeds
    acknowledged = {i for o in outcomes if o.ok for i in o.ids}
    assert acknowledged <= harness.read_logged_ids(server.db)  # type: ignore[attr-defined]
    big_ids = {t["transaction_id"] for t in big_body["transactions"]}
    retries = [(o.body, set(o.ids)) for o in failed] + [(big_body, big_ids)]
    for body, ids in retries:
        reply = server.call("POST", "/score", body, timeout=120)
        assert reply.status == 200, reply.body
        assert ids <= harness.read_logged_ids(server.db)  # type: ignore[attr-defined]
