"""One self-contained HTML page per monitoring run: the decision, the alerts and the plots.

The page embeds plotly.js once (``plotly.offline.get_plotlyjs``) and the three figures as ``<div>``
elements, so it opens from a file, an MLflow artifact or an e-mail attachment on a machine without
internet: no ``<script src>``, ``<link>`` or image of it points outside the file.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from fraud_kedro.monitoring import plots

_ALERT_COLUMNS = (
    ("kind", "kind"),
    ("subject", "subject"),
    ("n_chunks", "chunks in alert"),
    ("longest_run", "longest run"),
    ("first_chunk_start", "first alert"),
    ("worst_value", "worst value"),
    ("threshold", "threshold"),
    ("retrain_trigger", "triggers retraining"),
)

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem auto;max-width:1200px;color:#222}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
.decision{padding:.8rem 1rem;border-radius:6px;font-weight:600}
.retrain{background:#fde2e1;border:1px solid #e0605a}.ok{background:#e3f4e1;border:1px solid #5aa95a}
table{border-collapse:collapse;font-size:.9rem}td,th{border:1px solid #ddd;padding:.25rem .5rem}
th{background:#f4f4f4;text-align:left}dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}
nav a{margin-right:1rem}
"""


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape("" if value is None else str(value))


def _alerts_table(summaries: list[dict[str, Any]]) -> str:
    if not summaries:
        return "<p>No alert in this run.</p>"
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in _ALERT_COLUMNS)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_cell(s.get(key))}</td>" for key, _ in _ALERT_COLUMNS) + "</tr>"
        for s in summaries
    )
    return f'<table id="alerts"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def _facts(decision: dict[str, Any], n_alert_rows: int) -> str:
    facts = {
        "as of": decision.get("as_of"),
        "generated at": decision.get("generated_at"),
        "source": decision.get("source"),
        "analysis period": f"{decision.get('analysis_start')} to {decision.get('analysis_end')}",
        "chunks": f"{decision.get('n_chunks')} of {decision.get('chunk_size')} rows "
        f"({decision.get('n_chunks_with_labels')} with labels)",
        "label delay (days)": decision.get("label_delay_days"),
        "retrain on": ", ".join(decision.get("retrain_on", [])),
        "alert rows": n_alert_rows,
    }
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{_cell(v)}</dd>" for k, v in facts.items())
    return f"<dl>{items}</dl>"


def render_index(
    decision: dict[str, Any],
    alerts: pd.DataFrame,
    figures: dict[str, go.Figure],
) -> str:
    """The run's ``index.html`` as a string.

    Args:
        decision: The retraining decision (``retrain``, ``reasons``, ``alerts`` summaries, ...).
        alerts: The alert rows of the run (counted on the page; the summaries are listed).
        figures: Section title -> plotly figure, in page order.

    Returns:
        A complete HTML document with plotly.js inlined.
    """
    retrain = bool(decision.get("retrain"))
    verdict = "RETRAIN recommended" if retrain else "No retraining needed"
    reasons = decision.get("reasons") or []
    reason_list = (
        "<ul>" + "".join(f"<li>{html.escape(str(r))}</li>" for r in reasons) + "</ul>"
        if reasons
        else "<p>No alert of a retraining kind held long enough.</p>"
    )
    anchors = {title: f"fig-{i}" for i, title in enumerate(figures)}
    nav = "".join(f'<a href="#{a}">{html.escape(t)}</a>' for t, a in anchors.items())
    sections = "".join(
        f'<h2 id="{anchors[title]}">{html.escape(title)}</h2>'
        + fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})
        for title, fig in figures.items()
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>Monitoring report</title>"
        f"<style>{_STYLE}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>'
        f"<h1>Monitoring report</h1><nav>{nav}</nav>"
        f'<h2>Decision</h2><p class="decision {"retrain" if retrain else "ok"}" id="decision">'
        f"{verdict}</p>{reason_list}{_facts(decision, len(alerts))}"
        f"<h2>Alerts</h2>{_alerts_table(decision.get('alerts') or [])}"
        f"{sections}</body></html>"
    )


def build_index(
    decision: dict[str, Any],
    alerts: pd.DataFrame,
    performance: pd.DataFrame,
    drift: pd.DataFrame,
    reliability: pd.DataFrame,
) -> str:
    """Kedro node: the monitoring run's ``index.html`` from its tables (see :func:`render_index`).

    The figures are rebuilt from the tables (the plot datasets are write-only HTML files).
    """
    figures = {
        "Performance": plots.performance_figure(performance),
        "Drift": plots.drift_figure(drift),
        "Calibration": plots.calibration_figure(reliability),
    }
    return render_index(decision, alerts, figures)
