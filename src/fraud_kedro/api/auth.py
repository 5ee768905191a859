"""``X-API-Key`` authentication (keys from ``FRAUD_API_KEYS``), compared in constant time."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from typing import Any

from flask import current_app, request

from fraud_kedro.api.errors import ApiError

HEADER = "X-API-Key"


def key_matches(given: str | None, keys: tuple[str, ...]) -> bool:
    """Whether ``given`` is one of ``keys``, in time independent of where they differ.

    Args:
        given: The header value (None when absent).
        keys: The accepted keys.

    Returns:
        True on a match.
    """
    if given is None:
        return False
    supplied = given.encode("utf-8", "surrogateescape")
    found = False
    for key in keys:  # no early exit: every key is compared
        found |= hmac.compare_digest(supplied, key.encode("utf-8"))
    return found


def _check(keys: tuple[str, ...], admin: bool) -> None:
    if not keys:
        if admin:
            raise ApiError(
                403,
                "admin endpoints are disabled: set FRAUD_ADMIN_KEYS or FRAUD_API_KEYS",
                [{"field": HEADER, "message": "no admin key configured"}],
            )
        return
    if not key_matches(request.headers.get(HEADER), keys):
        raise ApiError(
            401,
            f"missing or invalid {HEADER} header",
            [{"field": HEADER, "message": "a valid API key is required"}],
            {"WWW-Authenticate": f'ApiKey header="{HEADER}"'},
        )


def _protected(view: Callable[..., Any], admin: bool) -> Callable[..., Any]:
    """``view`` behind the admin keys (``admin``) or the API keys, checked on each call."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        config = current_app.extensions["fraud"].config
        _check(config.admin_keys if admin else config.api_keys, admin=admin)
        return view(*args, **kwargs)

    return wrapped


def require_api_key(view: Callable[..., Any]) -> Callable[..., Any]:
    """Protect a view with the API keys (open when none is configured)."""
    return _protected(view, admin=False)


def require_admin_key(view: Callable[..., Any]) -> Callable[..., Any]:
    """Protect an admin view (refused when no admin key is configured)."""
    return _protected(view, admin=True)
