"""What can go wrong in the scoring service, in its own terms (no HTTP here).

:mod:`fraud_kedro.api.service` raises these; :mod:`fraud_kedro.api.errors` maps each one to a
status code (``STATUS``) and the project's JSON error body, in one place.
"""

from __future__ import annotations

from typing import Any


class ScoringError(Exception):
    """A request the service could not carry out.

    Args:
        error: One-line message (the body's ``error``).
        details: Items naming the fields or causes (the body's ``details``).
        retry_after: Seconds after which a retry may succeed, when it may.
    """

    def __init__(
        self, error: str, details: list[Any] | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(error)
        self.error = error
        self.details = details or []
        self.retry_after = retry_after


class StoreUnavailable(ScoringError):
    """The operational store failed: nothing was processed, the client should retry."""

    def __init__(self, exc: Exception) -> None:
        super().__init__(
            "state store unavailable: the request was not processed, retry later",
            [{"field": "state_store", "message": str(exc)}],
            retry_after=1,
        )


class NoModelInService(ScoringError):
    """No model is loaded (see ``/ready``)."""

    def __init__(self, last_error: str | None) -> None:
        super().__init__(
            "no model in service: the model could not be loaded, see /ready",
            [{"field": "model", "message": last_error or "not loaded"}],
            retry_after=5,
        )


class InvalidPredictions(ScoringError):
    """The model answered something that is not one probability per transaction."""

    def __init__(self, exc: Exception) -> None:
        super().__init__("the model produced invalid predictions", [str(exc)])


class TransactionConflict(ScoringError):
    """Transaction ids already known with other fields: nothing was scored."""

    def __init__(self, details: list[dict]) -> None:
        super().__init__(
            f"conflict: {len(details)} transaction id(s) already known; nothing was scored",
            details[:50],
        )


class ExplanationUnsupported(ScoringError):
    """``?explain=true`` for a model without an explainable ``fraud_model`` artifact."""

    def __init__(self) -> None:
        super().__init__(
            "this model has no explainable 'fraud_model' artifact",
            [{"field": "explain", "message": "not supported by the served model"}],
        )
