"""Keeping a model in service and swapping it atomically: :class:`ModelHolder` (one role's model,
reloaded when its alias moves) and :class:`ModelWatcher` (polls the aliases and the store's reload
announcements of the other workers). Loading itself is :mod:`fraud_kedro.api.model_loader`.

A reload builds the new model completely (and scores a smoke-test transaction) before one
reference assignment puts it in service: a request that started on the old model finishes on it,
and a model that fails to load leaves the old one serving.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from fraud_kedro.api.model_loader import (
    LoadedModel,
    ResolvedUri,
    load_model,
    resolve_model_uri,
)
from fraud_kedro.contract import MODEL_NAME
from fraud_kedro.store import StateStore, StateStoreError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReloadOutcome:
    """Result of :meth:`ModelHolder.reload`: status is loaded, unchanged or failed."""

    status: str
    model: LoadedModel | None
    previous_version: str | None = None
    error: str | None = None


Loader = Callable[[str, str], LoadedModel]
Resolver = Callable[[str, str], ResolvedUri]


class ModelHolder:
    """Holds the model in service for one role (``champion`` or ``shadow``).

    Args:
        uri: The configured model URI (usually an alias).
        role: ``champion`` or ``shadow`` (log and metric label).
        default_name: Name for non-registry URIs.
        loader: Loads a pinned URI (default :func:`load_model`).
        resolver: Pins a URI to a version (default :func:`resolve_model_uri`).
        on_swap: Called with (old, new) after a swap (metrics).
    """

    def __init__(
        self,
        uri: str,
        role: str = "champion",
        default_name: str = MODEL_NAME,
        loader: Loader | None = None,
        resolver: Resolver | None = None,
        on_swap: Callable[[LoadedModel | None, LoadedModel], None] | None = None,
    ) -> None:
        self.uri = uri
        self.role = role
        self.default_name = default_name
        self._loader = loader or load_model
        self._resolver = resolver or resolve_model_uri
        self._on_swap = on_swap
        self._lock = threading.Lock()
        self.current: LoadedModel | None = None
        self.last_error: str | None = None

    def reload(self, force: bool = False) -> ReloadOutcome:
        """Load the version the URI points to now, if it differs from the one in service.

        Args:
            force: Reload even when the version did not change.

        Returns:
            The outcome; on failure the previous model stays in service.
        """
        with self._lock:
            old = self.current
            try:
                resolved = self._resolver(self.uri, self.default_name)
                if not force and old is not None and old.uri == resolved.load_uri:
                    return ReloadOutcome("unchanged", old, old.version)
                new = dataclasses.replace(
                    self._loader(resolved.load_uri, self.default_name), source_uri=self.uri
                )
            except Exception as exc:  # a bad model must never take the service down
                self.last_error = str(exc)
                kept = f"still serving version {old.version}" if old else "no model in service"
                logger.error("%s model reload from %s failed (%s): %s", self.role, self.uri, kept, exc)
                return ReloadOutcome("failed", old, old.version if old else None, str(exc))
            self.current = new  # one reference assignment: in-flight requests keep the old one
            self.last_error = None
            if self._on_swap is not None:
                self._on_swap(old, new)
            logger.info(
                "%s model now %s version %s (was %s)",
                self.role,
                new.name,
                new.version,
                old.version if old else "none",
            )
            return ReloadOutcome("loaded", new, old.version if old else None)


def generation_key(role: str) -> str:
    """The ``meta`` key through which workers announce a reload to each other."""
    return f"model_generation:{role}"


def announce_reload(store: StateStore, role: str) -> str:
    """Tell the other workers to reload ``role`` (they poll the token); returns the token."""
    token = uuid.uuid4().hex
    store.set_meta(generation_key(role), token)
    return token


class ModelWatcher:
    """A daemon thread per worker: follows reloads made by other workers and polls the alias.

    Args:
        holders: Role to holder.
        store: The shared state store (carries the reload tokens).
        poll_seconds: Alias poll period (0 = never).
        sync_seconds: Period of the look at the reload tokens (0 = never).
    """

    def __init__(
        self,
        holders: dict[str, ModelHolder],
        store: StateStore,
        poll_seconds: int,
        sync_seconds: int,
    ) -> None:
        self.holders = holders
        self.store = store
        self.poll_seconds = poll_seconds
        self.sync_seconds = sync_seconds
        self.seen: dict[str, str | None] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        for role in holders:
            self.seen[role] = self._token(role)

    def _token(self, role: str) -> str | None:
        try:
            return self.store.get_meta(generation_key(role))
        except StateStoreError:
            return self.seen.get(role)

    def mark_seen(self, role: str, token: str) -> None:
        """Record a token this worker produced itself."""
        self.seen[role] = token

    def sync_once(self) -> list[ReloadOutcome]:
        """Reload every role whose token changed since last seen."""
        outcomes = []
        for role, holder in self.holders.items():
            token = self._token(role)
            if token != self.seen.get(role):
                self.seen[role] = token
                outcomes.append(holder.reload())
        return outcomes

    def poll_once(self) -> list[ReloadOutcome]:
        """Reload every role whose alias moved (or that has no model yet)."""
        return [holder.reload() for holder in self.holders.values()]

    def start(self) -> None:
        """Start the thread (no-op when both periods are 0)."""
        if self._thread is not None or (self.poll_seconds <= 0 and self.sync_seconds <= 0):
            return
        self._thread = threading.Thread(target=self._run, name="model-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread."""
        self._stop.set()

    def _run(self) -> None:
        periods = [p for p in (self.poll_seconds, self.sync_seconds) if p > 0]
        tick = min(periods)
        next_poll = time.monotonic() + self.poll_seconds if self.poll_seconds > 0 else None
        while not self._stop.wait(tick):
            try:
                if self.sync_seconds > 0:
                    self.sync_once()
                if next_poll is not None and time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + self.poll_seconds
                    self.poll_once()
            except Exception:  # the watcher must survive anything
                logger.exception("model watcher iteration failed")
