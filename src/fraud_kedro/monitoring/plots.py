"""Interactive plotly figures of the monitoring tables (backend-free: built from our tables)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

_METRIC_TITLES = {
    "roc_auc": "ROC AUC",
    "average_precision": "Average precision",
    "precision": "Precision at threshold",
    "recall": "Recall at threshold",
    "f1": "F1 at threshold",
}


def _x(frame: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(frame["chunk_end"])


def _chunk_traces(fig: go.Figure, row: int, first: bool) -> Callable[..., None]:
    """A function adding one per-chunk line or marker series to row ``row`` of ``fig`` (in the
    legend once, from the first row)."""

    def add(frame: pd.DataFrame, y: Any, mode: str, name: str, group: str, **style: Any) -> None:
        fig.add_trace(
            go.Scatter(x=_x(frame), y=y, mode=mode, name=name, legendgroup=group,
                       showlegend=first, **style),
            row=row,
            col=1,
        )  # fmt: skip

    return add


def performance_figure(performance: pd.DataFrame) -> go.Figure:
    """Estimated and realised metrics per chunk, with the band, business minimum and alerts."""
    metrics = list(dict.fromkeys(performance["metric"]))
    fig = make_subplots(
        rows=max(len(metrics), 1),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.04,
        subplot_titles=[_METRIC_TITLES.get(m, m) for m in metrics],
    )
    for row, metric in enumerate(metrics, start=1):
        part = performance[performance["metric"] == metric].sort_values("chunk_end")
        first = row == 1
        trace = _chunk_traces(fig, row, first)
        for period, dash in (("reference", "dot"), ("analysis", "solid")):
            p = part[part["period"] == period]
            trace(p, p["estimated"], "lines+markers", f"estimated ({period})", f"est-{period}",
                  line={"color": "#1f77b4", "dash": dash})  # fmt: skip
        trace(part, part["realized"], "markers", "realised (labels known)", "real",
              marker={"color": "#2ca02c", "symbol": "diamond"})  # fmt: skip
        trace(part, part["band_lower"], "lines", "NannyML band (lower)", "band",
              line={"color": "grey", "dash": "dash", "width": 1})  # fmt: skip
        minimum = part["min_acceptable"].dropna()
        if len(minimum):
            fig.add_hline(
                y=float(minimum.iloc[0]),
                line={"color": "red", "dash": "dot"},
                row=row,
                col=1,
                annotation_text="business minimum",
                annotation_position="bottom left",
            )
        flagged = part[part["alert_estimated"] | part["alert_realized"]]
        trace(flagged, flagged["realized"].where(flagged["alert_realized"], flagged["estimated"]),
              "markers", "alert", "alert", marker={"color": "red", "symbol": "x", "size": 10})  # fmt: skip
    fig.update_layout(
        title="Model performance per chunk: estimated (CBPE) and realised",
        height=260 * max(len(metrics), 1) + 80,
        template="plotly_white",
    )
    return fig


def drift_figure(drift: pd.DataFrame) -> go.Figure:
    """Heatmap of univariate drift (distance / threshold) and the multivariate drift line."""
    uni = drift[drift["kind"] == "univariate"]
    multi = drift[drift["kind"] == "multivariate"].sort_values("chunk_end")
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.7, 0.3],
        vertical_spacing=0.06,
        subplot_titles=[
            "Univariate drift: distance to reference / alert threshold (> 1 = drift)",
            "Multivariate drift",
        ],
    )
    if len(uni):
        ratio = uni.assign(ratio=uni["value"] / uni["threshold"], x=_x(uni))
        grid = ratio.pivot_table(index="column", columns="x", values="ratio", sort=False)
        columns = list(dict.fromkeys(uni["column"]))
        grid = grid.reindex(columns)
        fig.add_trace(
            go.Heatmap(
                z=grid.to_numpy(),
                x=list(grid.columns),
                y=list(grid.index),
                colorscale=[[0, "#f7fbff"], [0.5, "#fdd49e"], [1, "#b30000"]],
                zmin=0,
                zmax=2,
                colorbar={"title": "ratio", "len": 0.65, "y": 0.68},
            ),
            row=1,
            col=1,
        )
    for method, part in multi.groupby("method", sort=False):
        fig.add_trace(
            go.Scatter(x=_x(part), y=part["value"], mode="lines+markers", name=str(method)),
            row=2,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=_x(part),
                y=part["threshold"],
                mode="lines",
                name=f"{method} threshold",
                line={"color": "red", "dash": "dot"},
            ),
            row=2,
            col=1,
        )
    n_rows = uni["column"].nunique() if len(uni) else 1
    fig.update_layout(
        title="Data drift per chunk", height=max(500, 28 * n_rows + 350), template="plotly_white"
    )
    return fig


def calibration_figure(reliability: pd.DataFrame) -> go.Figure:
    """Reliability diagram (equal-mass bins) of the reference and of the labelled analysis."""
    fig = go.Figure()
    upper = 1.0
    for period, part in reliability.groupby("period", sort=False):
        fig.add_trace(
            go.Scatter(
                x=part["mean_predicted"],
                y=part["observed_rate"],
                mode="lines+markers",
                name=str(period),
                text=[f"n={n}" for n in part["n"]],
            )
        )
        upper = float(np.nanmax([part["mean_predicted"].max(), part["observed_rate"].max(), 1e-3]))
    fig.add_trace(
        go.Scatter(
            x=[0, upper],
            y=[0, upper],
            mode="lines",
            name="perfect calibration",
            line={"color": "grey", "dash": "dash"},
        )
    )
    fig.update_layout(
        title="Calibration: mean predicted probability against observed fraud rate",
        xaxis_title="mean predicted probability (bin)",
        yaxis_title="observed fraud rate",
        template="plotly_white",
        height=550,
    )
    return fig
