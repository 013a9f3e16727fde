"""Plotly figures for the app, built from the plain arrays of `views` (no Streamlit here).

Scatter plots use SVG, not WebGL, so that they draw in any browser (headless ones included); images
are upscaled nearest-neighbour into one PNG, so 28x28 pixels stay crisp squares. Figures are built
from whole layout dicts with the empty template: the live charts rebuild theirs several times a
second, and plotly's default template and its `update_*`/`add_hline`/`make_subplots` helpers cost
tens of milliseconds per figure in validation.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go

from ..core.config import MethodName, QKind, objective_label
from ..evaluation.discriminator import DiscriminatorError
from .comparison import MethodScore, named_gap
from .views import Curves, LatentProjection, PosteriorView

# The 2x2 grid in colour: blues for a Gaussian q, reds for an implicit q; darker for K > 1.
METHOD_COLORS = {"vae": "#6baed6", "iwae": "#08519c", "avb": "#fc9272", "iwavb": "#cb181d"}
LABEL_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
NATS = "nats per point (higher: better)"
GRID = "#e6e9ef"
REFERENCE_LINE = dict(color="#555", dash="dash", width=1)
TRUTH_COLOR = "#222"  # log p(x) measured without T, on a Train page's single run
T_ERROR_TARGET = 0.3  # nats: a near-optimal T's mean error, the band drawn around 0


def _axis(title: str | None = None, **settings: Any) -> dict[str, Any]:
    return dict(title=dict(text=title) if title else None, gridcolor=GRID, zeroline=False, automargin=True, **settings)


def _figure(
    traces: Sequence[go.Scatter | go.Bar | go.Heatmap | go.Image], title: str, height: int = 340, **layout: Any
) -> go.Figure:
    """A figure in the app's style: white, light grid, title top left, legend below."""
    base = dict(
        template="none",
        title=dict(text=title, x=0, xanchor="left", font=dict(size=16)),
        height=height,
        margin=dict(l=10, r=10, t=50, b=10),
        paper_bgcolor="white",
        plot_bgcolor="white",
        font=dict(family='"Source Sans Pro", "Source Sans 3", sans-serif', size=13, color="#31333f"),
        legend=dict(orientation="h", yanchor="top", y=-0.3),
        xaxis=_axis(),
        yaxis=_axis(),
    )
    return go.Figure(data=list(traces), layout={**base, **layout})


def _reference(
    value: float, text: str, horizontal: bool = True, axis: str = "", position: str = "bottom right"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A dashed reference line across a (sub)plot at `value`, and its label: (shape, annotation)."""
    along, across = ("x", "y") if horizontal else ("y", "x")  # the line runs along one axis at a value of the other
    span = {f"{along}ref": f"{along}{axis} domain", f"{across}ref": f"{across}{axis}"}
    shape = {
        "type": "line",
        **span,
        f"{along}0": 0,
        f"{along}1": 1,
        f"{across}0": value,
        f"{across}1": value,
        "line": REFERENCE_LINE,
    }
    label = {**span, along: 1, across: value, "text": text, "showarrow": False, "font": dict(size=11, color="#555")}
    if horizontal:
        label |= {"xanchor": "right", "yanchor": "top" if position.startswith("bottom") else "bottom"}
    else:
        label |= {"yanchor": "bottom"}
    return shape, label


@dataclass(frozen=True)
class CurveSeries:
    name: str  # legend name: "IWAVB"
    method: MethodName  # picks the colour
    q: QKind  # picks the label
    curves: Curves


def _truth_traces(s: CurveSeries, single: bool) -> list[go.Scatter]:
    """log p(x) of the run's fixed validation subset, measured without T (exact, or an estimate with error bars)."""
    c = s.curves
    if not len(c.truth_step):
        return []
    label = "exact log p(x)" if c.exact else "log p(x), IS estimate ± s.e."
    return [
        go.Scatter(
            x=c.truth_step,
            y=c.log_px,
            mode="lines+markers",
            line=dict(color=TRUTH_COLOR if single else METHOD_COLORS.get(s.method, "#444"), width=2, dash="dash"),
            marker=dict(symbol="diamond", size=8),
            error_y=None if c.exact else dict(type="data", array=c.log_px_se, visible=True),
            name=f"{s.name}: {label}, validation subset",
            legendgroup=s.name,
            customdata=c.log_px_bound,
            hovertemplate="step %{x}<br>log p(x) %{y:.3f}<br>own bound, same images %{customdata:.3f}<extra></extra>",
        )
    ]


def _gap_marks(s: CurveSeries) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """At the last log p(x) reading: a bar from the run's own bound on the same images to log p(x), named."""
    c = s.curves
    if not len(c.truth_step) or np.isnan(c.log_px_bound[-1]):
        return [], []
    step, log_px, bound = float(c.truth_step[-1]), float(c.log_px[-1]), float(c.log_px_bound[-1])
    gap = named_gap(s.q, log_px, bound)
    shape = dict(type="line", x0=step, x1=step, y0=bound, y1=log_px, line=dict(color="#cb181d", width=3))
    label = dict(
        x=step,
        y=(bound + log_px) / 2,
        text=f"{gap.name}: {gap.nats:.2f} nats",
        hovertext=gap.meaning,
        showarrow=False,
        xanchor="right",
        xshift=-6,
        font=dict(size=12, color="#cb181d"),
        bgcolor="rgba(255,255,255,0.8)",
    )
    return [shape], [label]


def bound_figure(
    series: Sequence[CurveSeries], landmarks: dict[str, float] | None = None, title: str = "Bound during training"
) -> go.Figure:
    """Training bound (lines) and validation bound (dots) of each run; implicit q: "objective (uses T)".

    Where a run measured log p(x) of its validation subset (without T), that is drawn too (dashed, diamonds);
    for a single run the gap to its own bound on the same images is drawn and named at the last reading."""
    traces = []
    single = len(series) == 1
    for s in series:
        color, label = METHOD_COLORS.get(s.method, "#444"), objective_label(s.q)
        traces.append(
            go.Scatter(
                x=s.curves.step,
                y=s.curves.train_bound,
                mode="lines",
                line=dict(color=color, width=2),
                name=f"{s.name}: train {label}",
                legendgroup=s.name,
            )
        )
        if len(s.curves.valid_step):
            traces.append(
                go.Scatter(
                    x=s.curves.valid_step,
                    y=s.curves.valid_bound,
                    mode="lines+markers",
                    line=dict(color=color, dash="dot"),
                    marker=dict(size=7),
                    name=f"{s.name}: validation {label}",
                    legendgroup=s.name,
                )
            )
        traces += _truth_traces(s, single)
    references = [_reference(value, name) for name, value in (landmarks or {}).items()]
    gap_shapes, gap_labels = _gap_marks(series[0]) if single else ([], [])
    return _figure(
        traces,
        title,
        xaxis=_axis("step"),
        yaxis=_axis(NATS),
        shapes=[r[0] for r in references] + gap_shapes,
        annotations=[r[1] for r in references] + gap_labels,
    )


def discriminator_figure(curves: Curves) -> go.Figure:
    """The loss of (2.14) and how often T tells q's samples from the prior's (0.5: it cannot)."""
    traces = [
        go.Scatter(x=curves.disc_step, y=curves.disc_loss, mode="lines", name="loss", line=dict(color="#cb181d")),
        go.Scatter(
            x=curves.disc_step,
            y=curves.disc_accuracy,
            mode="lines",
            name="accuracy",
            line=dict(color="#54278f"),
            xaxis="x2",
            yaxis="y2",
        ),
    ]
    references = [
        _reference(2 * np.log(2), "chance (2 log 2)", position="top right"),
        _reference(0.5, "chance", axis="2"),
    ]
    titles = [
        dict(
            text=text,
            xref=f"x{axis} domain",
            x=0.5,
            yref="paper",
            y=1.0,
            yanchor="bottom",
            showarrow=False,
            font=dict(size=13),
        )
        for axis, text in (("", "loss of (2.14)"), ("2", "accuracy"))
    ]
    return _figure(
        traces,
        "Discriminator T",
        showlegend=False,
        margin=dict(l=10, r=10, t=70, b=10),
        xaxis=_axis("step", domain=[0, 0.45]),
        xaxis2=_axis("step", domain=[0.55, 1], anchor="y2"),
        yaxis=_axis(),
        yaxis2=_axis(range=[0, 1.02], anchor="x2"),
        shapes=[r[0] for r in references],
        annotations=[r[1] for r in references] + titles,
    )


def _tile(images: Sequence[np.ndarray], shape: tuple[int, int], columns: int, pad: int) -> np.ndarray:
    """Images (D,) in [0, 1] laid out on a dark canvas, `columns` per row, `pad` pixels apart."""
    h, w = shape
    rows = -(-len(images) // columns)
    canvas = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad), 0.25)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        canvas[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = (
            np.asarray(image).reshape(h, w)
        )
    return canvas


def _png_data_uri(canvas: np.ndarray, scale: int) -> str:
    from PIL import Image

    pixels = np.kron(np.clip(canvas, 0, 1), np.ones((scale, scale)))  # nearest-neighbour upscaling
    buffer = io.BytesIO()
    Image.fromarray((pixels * 255).round().astype(np.uint8), mode="L").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def image_rows_figure(
    rows: Sequence[tuple[str, np.ndarray]], shape: tuple[int, int], title: str, width_px: int = 640
) -> go.Figure:
    """Rows of images (name, (n, D) in [0, 1]), e.g. test images above their reconstructions."""
    columns = max(len(images) for _, images in rows)
    canvas = np.vstack([_tile(list(images), shape, columns, 1) for _, images in rows])
    scale = max(1, width_px // canvas.shape[1])
    row_height = canvas.shape[0] * scale / len(rows)
    image = go.Image(source=_png_data_uri(canvas, scale), zsmooth=False, hoverinfo="skip")
    return _figure(
        [image],
        title,
        height=int(min(70 + canvas.shape[0] * scale, 520)),
        dragmode=False,
        xaxis=dict(visible=False),
        yaxis=dict(
            tickvals=[(i + 0.5) * row_height for i in range(len(rows))],
            ticktext=[name for name, _ in rows],
            showgrid=False,
            zeroline=False,
            automargin=True,
        ),
    )


def latent_figure(
    projection: LatentProjection,
    title: str = "Latent space of test points",
    limit: float | None = None,
    legend: bool = True,
    height: int = 420,
) -> go.Figure:
    """One dot per test point, coloured by its label (SVG, so it draws without WebGL); `limit` fixes both
    axes to [-limit, limit], so that several models can be compared at a glance."""
    traces = []
    for label in np.unique(projection.labels):
        at = projection.labels == label
        name = projection.label_names[label] if label < len(projection.label_names) else str(label)
        traces.append(
            go.Scatter(
                x=projection.points[at, 0],
                y=projection.points[at, 1],
                mode="markers",
                name=name,
                marker=dict(size=5, opacity=0.6, color=LABEL_COLORS[label % len(LABEL_COLORS)]),
            )
        )
    span = dict(range=[-limit, limit], constrain="domain") if limit else {}
    return _figure(
        traces,
        title,
        height=height,
        showlegend=legend,
        legend=dict(orientation="v", y=1, x=1.02),
        xaxis=_axis(projection.axis_titles[0], **span),
        yaxis=_axis(projection.axis_titles[1], scaleanchor="x", scaleratio=1, **span),
    )


def _density_png(density: np.ndarray) -> str:
    """A density on a grid ([i, j] at (z1[j], z2[i])) as a grey PNG, white at 0 and dark at its peak: the peak
    saturates at 70% of the maximum, so that the tails show. Row 0 of the image is the top (largest z2)."""
    from PIL import Image

    level = np.clip(density / (0.7 * max(float(density.max()), 1e-30)), 0, 1)[::-1]
    pixels = (255 - 218 * level).round().astype(np.uint8)  # white to #252525, as plotly's Greys
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def posterior_figure(view: PosteriorView, title: str) -> go.Figure:
    """True posterior p(z|x) as a grey image, q's samples as dots, the K importance samples sized by weight.

    The posterior is one PNG placed under the axes (a few kB, where a heatmap would send every cell as
    JSON); the axes show `view.frame`. `layout.meta` records the box holding 99% of the posterior's mass
    and the zoom, so that what the figure frames can be checked without reading pixels."""
    sizes = 8 + 30 * view.weights / max(view.weights.max(), 1e-12)
    h1, h2 = view.z1[1] - view.z1[0], view.z2[1] - view.z2[0]
    image = dict(
        source=_density_png(view.posterior),
        xref="x",
        yref="y",
        x=float(view.z1[0] - h1 / 2),
        y=float(view.z2[-1] + h2 / 2),
        sizex=float(len(view.z1) * h1),
        sizey=float(len(view.z2) * h2),
        xanchor="left",
        yanchor="top",
        sizing="stretch",
        layer="below",
    )
    traces = [
        go.Scatter(
            x=view.q_samples[:, 0],
            y=view.q_samples[:, 1],
            mode="markers",
            name="z ~ q(z|x)",
            marker=dict(size=4, color="#2171b5", opacity=0.4),
            hoverinfo="skip",
        ),
        go.Scatter(
            x=view.iw_samples[:, 0],
            y=view.iw_samples[:, 1],
            mode="markers",
            name=f"the K = {len(view.weights)} importance samples (size: weight)",
            customdata=view.weights,
            hovertemplate="weight %{customdata:.3f}<extra></extra>",
            marker=dict(size=sizes, color="#ef3b2c", opacity=0.8, line=dict(color="white", width=1)),
        ),
    ]
    frame = view.frame
    zoomed = f" · zoom ×{view.zoom:.0f}" if view.zoom >= 1.5 else ""
    beyond = f"<br><sup>{view.q_outside:.0%} of q's samples lie beyond this frame</sup>"
    beyond = beyond if view.q_outside > 0.02 else ""
    return _figure(
        traces,
        title + zoomed + beyond,
        height=460,
        images=[image],
        meta=dict(posterior_mass_99=view.mass_box.as_list(), zoom=view.zoom),
        xaxis=_axis("z1", range=list(frame.z1), constrain="domain", showgrid=False),
        yaxis=_axis("z2", range=list(frame.z2), scaleanchor="x", scaleratio=1, constrain="domain", showgrid=False),
    )


def discriminator_error_figure(error: DiscriminatorError, title: str) -> go.Figure:
    """T(x, z) against log q(z|x) - log p(z) (q's density by kNN) at q's samples: on the diagonal, T is right."""
    low = float(min(error.truth.min(), error.t.min()))
    high = float(max(error.truth.max(), error.t.max()))
    traces = [
        go.Scatter(
            x=[low, high], y=[low, high], mode="lines", name="T = log q − log p", line=REFERENCE_LINE, hoverinfo="skip"
        ),
        go.Scatter(
            x=error.truth,
            y=error.t,
            mode="markers",
            name="at z ~ q(z|x)",
            marker=dict(size=4, color="#cb181d", opacity=0.5),
            hovertemplate="log q − log p %{x:.2f}<br>T %{y:.2f}<extra></extra>",
        ),
    ]
    return _figure(
        traces,
        title,
        height=340,
        showlegend=False,
        xaxis=_axis("log q(z|x) − log p(z), q's density by kNN"),
        yaxis=_axis("T(x, z)"),
    )


def discriminator_errors_figure(errors: Sequence[DiscriminatorError], labels: Sequence[str], title: str) -> go.Figure:
    """T's mean error per data point, with its spread over q's samples as error bars, and the ±0.3 band."""
    bars = go.Bar(
        x=list(labels),
        y=[e.mean for e in errors],
        error_y=dict(type="data", array=[e.spread for e in errors], visible=True, color="#555"),
        marker_color=["#cb181d" if abs(e.mean) > T_ERROR_TARGET else "#74c476" for e in errors],
        hovertemplate="point %{x}<br>mean error %{y:.2f} nats<extra></extra>",
    )
    band = dict(
        type="rect",
        xref="x domain",
        x0=0,
        x1=1,
        yref="y",
        y0=-T_ERROR_TARGET,
        y1=T_ERROR_TARGET,
        fillcolor="rgba(116,196,118,0.2)",
        line=dict(width=0),
        layer="below",
    )
    return _figure(
        [bars],
        title,
        height=340,
        shapes=[band],
        xaxis=_axis("data point"),
        yaxis=_axis("T − (log q − log p), nats"),
    )


def weights_figure(view: PosteriorView, title: str) -> go.Figure:
    """The K normalised importance weights, largest first, against the uniform 1/K."""
    order = np.argsort(view.weights)[::-1]
    bars = go.Bar(
        x=[f"z{i + 1}" for i in order],
        y=view.weights[order],
        marker_color="#ef3b2c",
        customdata=view.log_w[order],
        hovertemplate="weight %{y:.3f}<br>log w %{customdata:.2f}<extra></extra>",
    )
    shape, label = _reference(1 / len(view.weights), "uniform 1/K", position="top right")
    return _figure(
        [bars],
        title,
        height=300,
        shapes=[shape],
        annotations=[label],
        xaxis=_axis("sample (sorted by weight)"),
        yaxis=_axis("normalised weight", range=[0, 1]),
    )


def score_figure(
    scores: Sequence[MethodScore], axis_title: str, landmarks: dict[str, float] | None = None, title: str = "Who wins"
) -> go.Figure:
    """One bar per method (best on top, longest), the bound as a diamond beside it, landmarks as vertical lines.

    Bars start at the left edge of the axis, not at 0, so that with negative log-likelihoods a longer bar
    is still a better model."""
    ordered = sorted(scores, key=lambda s: s.score)
    with_bound = [s for s in ordered if s.bound is not None]
    values = [s.score for s in ordered] + [s.bound for s in ordered if s.bound is not None]
    values += list((landmarks or {}).values())
    span = max(values) - min(values) or 1.0
    left, right = min(values) - 0.08 * span, max(values) + 0.08 * span
    traces: list[go.Bar | go.Scatter] = [
        go.Bar(
            y=[s.name for s in ordered],
            x=[s.score - left for s in ordered],
            base=left,
            orientation="h",
            name=axis_title,
            marker_color=[METHOD_COLORS.get(s.method, "#444") for s in ordered],
            text=[f"{s.score:.3f}" for s in ordered],
            textposition="inside",
            insidetextanchor="start",
            textfont=dict(color="white"),
            hovertemplate="%{y}: %{text}<extra></extra>",
        )
    ]
    if with_bound:
        traces.append(
            go.Scatter(
                y=[s.name for s in with_bound],
                x=[s.bound for s in with_bound],
                mode="markers",
                name="its own bound / objective (uses T), same images",
                marker=dict(symbol="diamond", size=12, color="#222"),
            )
        )
    references = [_reference(value, name, horizontal=False) for name, value in (landmarks or {}).items()]
    return _figure(
        traces,
        title,
        height=160 + 45 * len(ordered),
        shapes=[r[0] for r in references],
        annotations=[r[1] for r in references],
        margin=dict(l=10, r=10, t=70, b=10),
        xaxis=_axis(axis_title, range=[left, right]),
        yaxis=_axis(showgrid=False),
    )
