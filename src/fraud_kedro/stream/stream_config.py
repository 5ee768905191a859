"""Settings of the stream worker, read from environment variables (``docs/streaming.md``).

The scoring settings (model, state store, shadow challenger, limits) are the API's
(:class:`fraud_kedro.api.serving_config.ServingConfig`), read from the same variables; the ones here
only say where the stream is and how it is consumed.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fraud_kedro.api.serving_config import ConfigError, env_int

DEFAULT_STREAM_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class StreamConfig:
    """All settings of the stream worker.

    Attributes:
        url: The Redis server (``FRAUD_STREAM_URL``).
        transactions: Input stream of transactions (``FRAUD_STREAM_TRANSACTIONS``).
        labels: Input stream of labels (``FRAUD_STREAM_LABELS``).
        scores: Output stream of scores (``FRAUD_STREAM_SCORES``).
        dead_letter: Output stream of rejected messages (``FRAUD_STREAM_DEAD_LETTER``).
        group: Consumer group (``FRAUD_STREAM_GROUP``); workers of one group share the streams.
        consumer: This worker's name in the group (``FRAUD_STREAM_CONSUMER``, default the host
            name: a pod's name, kept across container restarts so a restarted worker takes its
            own pending messages back at once).
        batch_size: Most messages read and scored at once (``FRAUD_STREAM_BATCH_SIZE``).
        block_ms: Longest wait for a message when the streams are idle (``FRAUD_STREAM_BLOCK_MS``).
        claim_idle_ms: A message delivered to a worker and not acknowledged for this long is
            claimed by another (``FRAUD_STREAM_CLAIM_IDLE_MS``).
        claim_interval_ms: How often a worker looks for such messages
            (``FRAUD_STREAM_CLAIM_INTERVAL_MS``).
        max_deliveries: A message claimed more often than this goes to the dead letter
            (``FRAUD_STREAM_MAX_DELIVERIES``): it kills the workers that take it.
        start_id: Where a new group starts: ``0`` the whole stream, ``$`` only new messages
            (``FRAUD_STREAM_START``).
        output_maxlen: Approximate length cap of the output streams
            (``FRAUD_STREAM_OUTPUT_MAXLEN``; 0: no cap).
        metrics_host: Address of the ``/metrics`` and ``/health`` server
            (``FRAUD_STREAM_METRICS_HOST``).
        metrics_port: Its port (``FRAUD_STREAM_METRICS_PORT``; 0 picks a free one; -1 none).
        lag_interval_ms: How often the lag gauges are refreshed (``FRAUD_STREAM_LAG_INTERVAL_MS``).
    """

    url: str = DEFAULT_STREAM_URL
    transactions: str = "fraud.transactions"
    labels: str = "fraud.labels"
    scores: str = "fraud.scores"
    dead_letter: str = "fraud.dead_letter"
    group: str = "fraud-scoring"
    consumer: str = dataclasses.field(default_factory=socket.gethostname)
    batch_size: int = 500
    block_ms: int = 1000
    claim_idle_ms: int = 30_000
    claim_interval_ms: int = 5_000
    max_deliveries: int = 5
    start_id: str = "0"
    output_maxlen: int = 1_000_000
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9108
    lag_interval_ms: int = 5_000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StreamConfig:
        """The settings of the variables of ``env`` (default ``os.environ``); a malformed value
        raises :class:`~fraud_kedro.api.serving_config.ConfigError` naming the variable."""
        env = os.environ if env is None else env
        start = (env.get("FRAUD_STREAM_START") or "0").strip()
        if start not in {"0", "$"}:
            raise ConfigError(f"FRAUD_STREAM_START must be 0 or $, got {start!r}")
        raw_port = (env.get("FRAUD_STREAM_METRICS_PORT") or "").strip()
        try:
            port = int(raw_port) if raw_port else 9108
        except ValueError as exc:
            raise ConfigError(f"FRAUD_STREAM_METRICS_PORT must be an integer, got {raw_port!r}") from exc
        names = {
            "transactions": env.get("FRAUD_STREAM_TRANSACTIONS") or "fraud.transactions",
            "labels": env.get("FRAUD_STREAM_LABELS") or "fraud.labels",
            "scores": env.get("FRAUD_STREAM_SCORES") or "fraud.scores",
            "dead_letter": env.get("FRAUD_STREAM_DEAD_LETTER") or "fraud.dead_letter",
        }
        if len(set(names.values())) < len(names):
            raise ConfigError(f"the four stream names must differ, got {names}")
        return cls(
            url=env.get("FRAUD_STREAM_URL") or DEFAULT_STREAM_URL,
            group=env.get("FRAUD_STREAM_GROUP") or "fraud-scoring",
            consumer=env.get("FRAUD_STREAM_CONSUMER") or socket.gethostname(),
            batch_size=env_int(env, "FRAUD_STREAM_BATCH_SIZE", 500, minimum=1),
            block_ms=env_int(env, "FRAUD_STREAM_BLOCK_MS", 1000, minimum=1),
            claim_idle_ms=env_int(env, "FRAUD_STREAM_CLAIM_IDLE_MS", 30_000, minimum=1),
            claim_interval_ms=env_int(env, "FRAUD_STREAM_CLAIM_INTERVAL_MS", 5_000, minimum=1),
            max_deliveries=env_int(env, "FRAUD_STREAM_MAX_DELIVERIES", 5, minimum=1),
            start_id=start,
            output_maxlen=env_int(env, "FRAUD_STREAM_OUTPUT_MAXLEN", 1_000_000),
            metrics_host=env.get("FRAUD_STREAM_METRICS_HOST") or "127.0.0.1",
            metrics_port=port,
            lag_interval_ms=env_int(env, "FRAUD_STREAM_LAG_INTERVAL_MS", 5_000, minimum=100),
            **names,
        )

    def replace(self, overrides: Mapping[str, Any]) -> StreamConfig:
        """A copy with some fields replaced (unknown names raise :class:`ConfigError`)."""
        unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown stream settings: {sorted(unknown)}")
        return dataclasses.replace(self, **dict(overrides))
