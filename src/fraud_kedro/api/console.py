"""``/console``: the analyst console (server-rendered pages, a little vanilla JS, no build step).

* the alert queue of a day: the top-k cards by score (``?k=``, default ``FRAUD_CONSOLE_K`` or 20;
  ``?day=YYYY-MM-DD``, default the latest day served), each with its transaction, score, reasons
  (or the feature values when the score was not explained) and the card's recent history;
  "fraud" / "legitimate" post the label to ``POST /feedback`` and the case leaves the queue;
* a scoring form whose defaults are the latest served card and terminal, a minute later;
* the model in service and the last monitoring run (decision, alerts, link to its report).

With ``FRAUD_API_KEYS`` set, the console asks for a key once and keeps it in Flask's signed,
HttpOnly session cookie (secret ``FRAUD_CONSOLE_SECRET``, else derived from the keys so that every
worker agrees); the page hands the key to its own script for the calls to ``/feedback`` and
``/score``. ``/console/logout`` forgets it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)

from fraud_kedro.api import console_data
from fraud_kedro.api.auth import key_matches

bp = Blueprint("console", __name__, url_prefix="/console")
_SESSION_KEY = "fraud_console_key"


def _state() -> Any:
    return current_app.extensions["fraud"]


def _reports_dir() -> Path:
    return Path(os.environ.get("FRAUD_REPORTS_DIR", "data/08_reporting"))


@bp.record_once
def _secret(setup: Any) -> None:
    app = setup.app
    if not app.secret_key:
        keys = app.extensions["fraud"].config.api_keys
        secret = os.environ.get("FRAUD_CONSOLE_SECRET") or hashlib.sha256(
            ("fraud-console\0" + "\0".join(sorted(keys))).encode()
        ).hexdigest()
        app.secret_key = secret
        app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
        app.config.setdefault("SESSION_COOKIE_SAMESITE", "Strict")


def _key() -> str | None:
    """The session's key when it is valid; '' when no key is needed; None when one is missing."""
    keys = _state().config.api_keys
    if not keys:
        return ""
    given = session.get(_SESSION_KEY)
    return given if key_matches(given, keys) else None


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Ask for an API key once; keep it in the session cookie."""
    error = None
    if request.method == "POST":
        given = request.form.get("api_key", "")
        if key_matches(given, _state().config.api_keys):
            session[_SESSION_KEY] = given
            return redirect(url_for("console.index"))
        error = "not a valid API key"
    return render_template("console_login.html", error=error), 401 if error else 200


@bp.get("/logout")
def logout() -> Response:
    """Forget the key."""
    session.pop(_SESSION_KEY, None)
    return redirect(url_for("console.login"))


def _default_k() -> int:
    try:
        return max(1, int(os.environ.get("FRAUD_CONSOLE_K", "20")))
    except ValueError:
        return 20


@bp.get("")
@bp.get("/")
def index() -> Any:
    """The console page."""
    key = _key()
    if key is None:
        return redirect(url_for("console.login"))
    try:
        k = min(max(int(request.args.get("k", _default_k())), 1), 500)
    except ValueError:
        k = _default_k()
    state = _state()
    store = state.get_store()
    queue = console_data.alert_queue(store, request.args.get("day"), k)
    return render_template(
        "console.html",
        api_key=key,
        queue=queue,
        defaults=console_data.scoring_defaults(store),
        model=console_data.model_status(state),
        monitoring=console_data.monitoring_status(_reports_dir()),
    )


@bp.get("/report")
def report() -> Any:
    """The last monitoring run's ``index.html`` (self-contained: it loads nothing else)."""
    if _key() is None:
        return redirect(url_for("console.login"))
    page = console_data.report_file(_reports_dir())
    if page is None:
        abort(404)
    return send_file(page.resolve(), mimetype="text/html")
