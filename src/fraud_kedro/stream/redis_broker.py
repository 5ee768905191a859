"""The :class:`~fraud_kedro.stream.broker.Broker` on Redis Streams (redis-py).

* ``fetch``: ``XREADGROUP GROUP g c COUNT n BLOCK ms STREAMS <inputs> <ids>``, one call for all
  input streams. After a start the ids are ``0`` (this consumer's own pending entries, delivered
  before a crash) until those are exhausted, then ``>`` (never-delivered entries).
* ``claim_stale``: ``XAUTOCLAIM`` of entries idle longer than the claim time, walking each
  stream's pending list with the cursor it returns; ``XPENDING`` gives their delivery counts.
* ``commit``: ``XADD`` of every output record and ``XACK`` of the inputs in one ``MULTI``/``EXEC``
  pipeline: both or neither.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import redis

from fraud_kedro.stream.broker import Broker, BrokerError, Message, Record, StreamLag

logger = logging.getLogger(__name__)

_NEW = ">"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisStreamsBroker(Broker):
    """A consumer-group member on Redis Streams.

    Args:
        url: The Redis server, e.g. ``redis://127.0.0.1:6379/0``.
        inputs: Input streams (the group is created on each, with the stream, if missing).
        group: Consumer group.
        consumer: This member's name.
        claim_idle_ms: Entries pending longer than this on another member are claimed.
        start_id: Where a new group starts (``0`` or ``$``).
        output_maxlen: Approximate cap of the output streams (0: none).
        client: An existing client (tests); else one is made from ``url``.
    """

    def __init__(
        self,
        url: str,
        inputs: Sequence[str] = (),
        group: str = "fraud-scoring",
        consumer: str = "worker",
        claim_idle_ms: int = 30_000,
        start_id: str = "0",
        output_maxlen: int = 0,
        client: redis.Redis | None = None,
    ) -> None:
        self.url = url
        self.inputs = list(inputs)
        self.group = group
        self.consumer = consumer
        self.claim_idle_ms = claim_idle_ms
        self.output_maxlen = output_maxlen
        self._redis = client or redis.Redis.from_url(
            url, socket_timeout=30, socket_connect_timeout=5, health_check_interval=30
        )
        # "0": own pending entries first (a restart takes back what it had not acknowledged)
        self._cursor = dict.fromkeys(self.inputs, "0")
        self._claim_cursor = dict.fromkeys(self.inputs, "0-0")
        if self.inputs:
            self._create_groups(start_id)

    def _create_groups(self, start_id: str) -> None:
        for stream in self.inputs:
            try:
                self._redis.xgroup_create(stream, self.group, id=start_id, mkstream=True)
                logger.info("created consumer group %s on %s (from %s)", self.group, stream, start_id)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise BrokerError(f"cannot create group {self.group} on {stream}: {exc}") from exc
            except redis.RedisError as exc:
                raise BrokerError(f"Redis at {self._safe_url()} unavailable: {exc}") from exc

    def _safe_url(self) -> str:
        """The URL without a password (never logged)."""
        kwargs = self._redis.connection_pool.connection_kwargs
        return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"

    def _messages(self, stream: str, entries: Any, redelivered: bool) -> list[Message]:
        out = []
        for entry_id, fields in entries or []:
            if not fields:  # an entry deleted while pending (Redis < 7 keeps it listed)
                continue
            out.append(Message(stream, _text(entry_id), fields.get(b"data"), redelivered))
        return out

    def fetch(self, max_messages: int, block_ms: int) -> list[Message]:
        """Own pending entries first, then new ones; see :meth:`Broker.fetch`."""
        replaying = {s: c for s, c in self._cursor.items() if c != _NEW}
        if replaying:
            taken, last = self._read(replaying, max_messages, None, True)
            for stream in replaying:  # a stream with nothing left pending moves on to new entries
                self._cursor[stream] = last.get(stream, _NEW)
            if taken:
                logger.info("took back %d message(s) this consumer had not acknowledged", len(taken))
                return taken
            if any(c != _NEW for c in self._cursor.values()):
                return []  # only deleted entries this time
        return self._read(dict.fromkeys(self.inputs, _NEW), max_messages, block_ms, False)[0]

    def _read(
        self, ids: dict[str, str], count: int, block_ms: int | None, redelivered: bool
    ) -> tuple[list[Message], dict[str, str]]:
        """Messages, and the last entry id read on each stream that returned entries."""
        try:
            reply = self._redis.xreadgroup(self.group, self.consumer, ids, count, block_ms)
        except redis.RedisError as exc:
            raise BrokerError(f"XREADGROUP failed: {exc}") from exc
        out: list[Message] = []
        last: dict[str, str] = {}
        for stream_name, entries in reply or []:
            stream = _text(stream_name)
            if entries:
                last[stream] = _text(entries[-1][0])
            out.extend(self._messages(stream, entries, redelivered))
        return out, last

    def claim_stale(self, max_messages: int) -> list[Message]:
        """``XAUTOCLAIM`` of idle entries; see :meth:`Broker.claim_stale`."""
        out: list[Message] = []
        try:
            for stream in self.inputs:
                if len(out) >= max_messages:
                    break
                reply = self._redis.xautoclaim(
                    stream,
                    self.group,
                    self.consumer,
                    self.claim_idle_ms,
                    self._claim_cursor[stream],
                    count=max_messages - len(out),
                )
                self._claim_cursor[stream] = _text(reply[0])
                claimed = self._messages(stream, reply[1], True)
                if claimed:
                    counts = self._deliveries(stream, [m.id for m in claimed])
                    out.extend(Message(m.stream, m.id, m.data, True, counts.get(m.id, 2)) for m in claimed)
        except redis.RedisError as exc:
            raise BrokerError(f"XAUTOCLAIM failed: {exc}") from exc
        if out:
            logger.warning("claimed %d message(s) left pending by another consumer", len(out))
        return out

    def _deliveries(self, stream: str, ids: list[str]) -> dict[str, int]:
        rows = self._redis.xpending_range(
            stream, self.group, min=ids[0], max=ids[-1], count=len(ids), consumername=self.consumer
        )
        return {_text(r["message_id"]): int(r["times_delivered"]) for r in rows}

    def commit(self, messages: Sequence[Message], records: Sequence[Record]) -> None:
        """``XADD`` the records and ``XACK`` the messages in one ``MULTI``/``EXEC``."""
        if not messages and not records:
            return
        by_stream: dict[str, list[str]] = {}
        for m in messages:
            by_stream.setdefault(m.stream, []).append(m.id)
        try:
            with self._redis.pipeline(transaction=True) as pipe:
                self._add(pipe, records)
                for stream, ids in by_stream.items():
                    pipe.xack(stream, self.group, *ids)
                pipe.execute()
        except redis.RedisError as exc:
            raise BrokerError(f"commit (XADD + XACK) failed: {exc}") from exc

    def _add(self, pipe: Any, records: Sequence[Record]) -> None:
        maxlen = self.output_maxlen or None
        for rec in records:
            pipe.xadd(rec.stream, {"data": rec.data}, maxlen=maxlen, approximate=True)

    def publish(self, records: Sequence[Record]) -> list[str]:
        """``XADD`` records in one pipeline (not a transaction)."""
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                for rec in records:
                    pipe.xadd(rec.stream, {"data": rec.data})
                return [_text(i) for i in pipe.execute()]
        except redis.RedisError as exc:
            raise BrokerError(f"XADD failed: {exc}") from exc

    def lag(self) -> dict[str, StreamLag]:
        """``XLEN`` and ``XINFO GROUPS`` of each input stream."""
        out = {}
        try:
            for stream in self.inputs:
                length = int(self._redis.xlen(stream))
                info = next(
                    (g for g in self._redis.xinfo_groups(stream) if _text(g["name"]) == self.group),
                    None,
                )
                pending = int(info["pending"]) if info else 0
                undelivered = info.get("lag") if info else None
                out[stream] = StreamLag(
                    length, pending, int(undelivered) if undelivered is not None else None
                )
        except redis.RedisError as exc:
            raise BrokerError(f"XINFO failed: {exc}") from exc
        return out

    def ping(self) -> bool:
        """True when Redis answers ``PING``."""
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        """Close the connection pool."""
        self._redis.close()
