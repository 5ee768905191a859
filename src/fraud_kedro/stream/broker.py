"""The worker's source and sink, with the semantics of Kafka consumer groups.

The worker sees a broker only through :class:`Broker`: it fetches messages as a member of a
consumer group, and *commits* a batch (publishes the batch's output records and marks its input
messages done) only after their predictions are durably in the prediction log. Until a message is
committed it belongs to the group, not to this worker: if the worker dies, another member (or the
same one restarted) gets it again. That is Kafka's at-least-once consumption with offsets committed
after processing; :mod:`fraud_kedro.stream.redis_broker` implements it on Redis Streams, and
``docs/streaming.md`` says what a Kafka implementation needs.

Partition key: every record carries the card (customer id) as its key. Kafka would route all the
records of one card to one partition and so to one consumer, in order; Redis Streams have no
partitions and ignore the key (see ``docs/streaming.md`` on per-card order).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    """One message fetched from an input stream (a Kafka record).

    Attributes:
        stream: The stream (Kafka topic) it came from.
        id: Its id in the stream (Redis entry id; Kafka: partition and offset).
        data: The ``data`` field as sent (None when the message has no such field).
        redelivered: True when it was delivered before (claimed from a dead consumer, or read
            again from this consumer's own pending list after a restart).
        deliveries: How many times it was delivered, where the broker knows (else 1).
    """

    stream: str
    id: str
    data: bytes | None
    redelivered: bool = False
    deliveries: int = 1


@dataclass(frozen=True)
class Record:
    """One record to publish (a Kafka producer record).

    Attributes:
        stream: The output stream (Kafka topic).
        data: The JSON text of the ``data`` field.
        key: The partition key (the customer id as text), None when unknown.
    """

    stream: str
    data: str
    key: str | None = None


@dataclass(frozen=True)
class StreamLag:
    """How far a consumer group is behind on one input stream.

    Attributes:
        length: Entries in the stream (Kafka: log end offset minus log start offset).
        pending: Delivered to a member but not committed yet (Kafka: in flight).
        undelivered: Not yet delivered to any member (Kafka: consumer lag); None when the
            broker cannot tell.
    """

    length: int
    pending: int
    undelivered: int | None


class BrokerError(RuntimeError):
    """The broker cannot be reached or refused a command (the worker retries)."""


class Broker(abc.ABC):
    """A member of one consumer group, subscribed to the input streams."""

    @abc.abstractmethod
    def fetch(self, max_messages: int, block_ms: int) -> list[Message]:
        """New messages of the subscribed streams, at most ``max_messages``.

        The first calls after a start return what this member had fetched but not committed
        before it stopped (flagged ``redelivered``). Waits up to ``block_ms`` when none is there.

        Raises:
            BrokerError: The broker cannot be reached.
        """

    @abc.abstractmethod
    def claim_stale(self, max_messages: int) -> list[Message]:
        """Messages fetched by other members and not committed for longer than the claim time.

        Kafka has no equivalent call: a dead member's partitions are reassigned after its
        session times out, and the new owner reads from the last committed offset.

        Raises:
            BrokerError: The broker cannot be reached.
        """

    @abc.abstractmethod
    def commit(self, messages: Sequence[Message], records: Sequence[Record]) -> None:
        """Publish ``records`` and mark ``messages`` done, atomically (all or nothing).

        Raises:
            BrokerError: Nothing was published or marked done.
        """

    @abc.abstractmethod
    def publish(self, records: Sequence[Record]) -> list[str]:
        """Publish records outside any consumption (the producer); returns their ids.

        Raises:
            BrokerError: The broker cannot be reached.
        """

    @abc.abstractmethod
    def lag(self) -> dict[str, StreamLag]:
        """The group's lag on each subscribed stream.

        Raises:
            BrokerError: The broker cannot be reached.
        """

    @abc.abstractmethod
    def ping(self) -> bool:
        """True when the broker answers now."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection."""
