"""Monitoring alerts that reach someone: POSTed to ``FRAUD_ALERT_WEBHOOK_URL`` when it is set.

The body is ``{"text": ...}``, which Slack and Microsoft Teams incoming webhooks (and most chat
and paging bridges) accept. A failed delivery is retried with exponential backoff and then logged;
it never fails the pipeline run. The URL is never logged (webhook URLs carry their secret in the
path): only its scheme and host are.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from kedro.framework.hooks import hook_impl

logger = logging.getLogger(__name__)
ENV = "FRAUD_ALERT_WEBHOOK_URL"


def alert_text(decision: dict[str, Any]) -> str:
    """The message: the decision, its reasons and the alert summaries."""
    head = "fraud_kedro monitoring: " + (
        "RETRAINING RECOMMENDED" if decision.get("retrain") else "alerts (no retraining needed)"
    )
    lines = [head, f"as of {decision.get('as_of')} ({decision.get('source', 'batch')})"]
    lines += [f"- {r}" for r in decision.get("reasons", [])]
    others = [a for a in decision.get("alerts", []) if not a.get("retrain_trigger")]
    lines += [f"- {a.get('kind')}: {a.get('subject')} ({a.get('n_chunks')} chunk(s))" for a in others[:10]]
    return "\n".join(lines)


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}"


def post_alert(url: str, text: str, attempts: int = 4, backoff_seconds: float = 1.0,
               timeout: float = 10.0) -> bool:  # fmt: skip
    """POST ``{"text": text}``; retry on errors and 5xx/429 with backoff. True when delivered."""
    if urlsplit(url).scheme not in ("http", "https"):
        logger.error("alert webhook %s is not an http(s) URL: alert not sent", _where(url))
        return False
    body = json.dumps({"text": text}).encode()
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(  # noqa: S310 - an operator-configured http(s) URL
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
                if 200 <= answer.status < 300:
                    logger.info("monitoring alert delivered to %s", _where(url))
                    return True
                status = answer.status
        except urllib.error.HTTPError as exc:
            status = exc.code
            if status < 500 and status != 429:
                logger.error("alert webhook %s refused the alert: HTTP %d", _where(url), status)
                return False
        except (urllib.error.URLError, OSError, ValueError) as exc:
            status = type(exc).__name__
        logger.warning("alert webhook %s: attempt %d/%d failed (%s)", _where(url), attempt, attempts, status)
        if attempt < attempts:
            time.sleep(backoff_seconds * 2 ** (attempt - 1))
    logger.error("alert webhook %s: alert not delivered after %d attempts", _where(url), attempts)
    return False


def notify(decision: dict[str, Any], url: str | None = None) -> bool:
    """Send the decision's alerts when a webhook is configured and there is something to say."""
    url = url if url is not None else os.environ.get(ENV, "")
    if not url or not (decision.get("retrain") or decision.get("alerts")):
        return False
    try:
        return post_alert(url, alert_text(decision))
    except Exception:  # noqa: BLE001 - a notification never fails the run
        logger.exception("alert webhook %s failed", _where(url))
        return False


class AlertWebhookHooks:
    """POST the monitoring alerts once ``retrain_decision`` is saved (monitoring runs)."""

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        """Notify on the retraining decision."""
        if dataset_name == "retrain_decision" and isinstance(data, dict):
            notify(data)
