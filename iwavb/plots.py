"""Plotly figures for the app, built from the plain arrays of `views` (no Streamlit here).

Scatter plots use SVG, not WebGL, so that they draw in any browser (headless ones included); images
are upscaled nearest-neighbour into one PNG, so 28x28 pixels stay crisp squares.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .views import Curves, LatentProjection, PosteriorView, objective_label

# The 2x2 grid in colour: blues for a Gaussian q, reds for an implicit q; darker for K > 1.
METHOD_COLORS = {"vae": "#6baed6", "iwae": "#08519c", "avb": "#fc9272", "iwavb": "#cb181d"}
LABEL_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                "#bcbd22", "#17becf")
NATS = "nats per data point (higher is better)"


def _layout(fig: go.Figure, title: str, height: int = 340) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=16)), height=height,
                      margin=dict(l=10, r=10, t=50, b=10), legend=dict(orientation="h", y=-0.2))
    return fig


@dataclass(frozen=True)
class CurveSeries:
    name: str  # legend name: "IWAVB"
    method: str  # "vae" | "iwae" | "avb" | "iwavb": picks the colour
    q: str  # "gaussian" | "implicit": picks the label
    curves: Curves


def bound_figure(series: Sequence[CurveSeries], landmarks: dict[str, float] | None = None,
                 title: str = "Bound during training") -> go.Figure:
    """Training bound (lines) and validation bound (dots) of each run; implicit q: "objective (uses T)"."""
    fig = go.Figure()
    for s in series:
        color, label = METHOD_COLORS.get(s.method, "#444"), objective_label(s.q)
        fig.add_trace(go.Scatter(x=s.curves.step, y=s.curves.train_bound, mode="lines", line=dict(color=color, width=2),
                                 name=f"{s.name}: train {label}", legendgroup=s.name))
        if len(s.curves.valid_step):
            fig.add_trace(go.Scatter(x=s.curves.valid_step, y=s.curves.valid_bound, mode="lines+markers",
                                     line=dict(color=color, dash="dot"), marker=dict(size=7),
                                     name=f"{s.name}: validation {label}", legendgroup=s.name))
    for name, value in (landmarks or {}).items():
        fig.add_hline(y=value, line=dict(color="#555", dash="dash", width=1), annotation_text=name,
                      annotation_position="bottom right")
    fig.update_xaxes(title="step")
    fig.update_yaxes(title=NATS)
    return _layout(fig, title)


def discriminator_figure(curves: Curves) -> go.Figure:
    """The loss of (2.14) and how often T tells q's samples from the prior's (0.5: it cannot)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss of (2.14)", "accuracy"))
    fig.add_trace(go.Scatter(x=curves.disc_step, y=curves.disc_loss, mode="lines", name="loss",
                             line=dict(color="#cb181d")), 1, 1)
    fig.add_trace(go.Scatter(x=curves.disc_step, y=curves.disc_accuracy, mode="lines", name="accuracy",
                             line=dict(color="#54278f")), 1, 2)
    fig.add_hline(y=2 * np.log(2), row=1, col=1, line=dict(color="#555", dash="dash", width=1),
                  annotation_text="chance (2 log 2)", annotation_position="top right")
    fig.add_hline(y=0.5, row=1, col=2, line=dict(color="#555", dash="dash", width=1),
                  annotation_text="chance", annotation_position="bottom right")
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    fig.update_xaxes(title="step")
    fig.update_layout(showlegend=False)
    return _layout(fig, "Discriminator T")


def _tile(images: Sequence[np.ndarray], shape: tuple[int, int], columns: int, pad: int) -> np.ndarray:
    """Images (D,) in [0, 1] laid out on a dark canvas, `columns` per row, `pad` pixels apart."""
    h, w = shape
    rows = -(-len(images) // columns)
    canvas = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad), 0.25)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        canvas[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = \
            np.asarray(image).reshape(h, w)
    return canvas


def _png_data_uri(canvas: np.ndarray, scale: int) -> str:
    from PIL import Image

    pixels = np.kron(np.clip(canvas, 0, 1), np.ones((scale, scale)))  # nearest-neighbour upscaling
    buffer = io.BytesIO()
    Image.fromarray((pixels * 255).round().astype(np.uint8), mode="L").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def image_rows_figure(rows: Sequence[tuple[str, np.ndarray]], shape: tuple[int, int], title: str,
                      width_px: int = 640) -> go.Figure:
    """Rows of images (name, (n, D) in [0, 1]), e.g. test images above their reconstructions."""
    columns = max(len(images) for _, images in rows)
    pad = 1 if shape[0] > 1 else 0
    canvas = np.vstack([_tile(list(images), shape, columns, max(pad, 1)) for _, images in rows])
    scale = max(1, width_px // canvas.shape[1])
    if shape[0] == 1:  # toy points: four cells in a row, drawn as large squares
        scale = max(scale, 40)
    fig = go.Figure(go.Image(source=_png_data_uri(canvas, scale), zsmooth=False, hoverinfo="skip"))
    row_height = canvas.shape[0] * scale / len(rows)
    fig.update_yaxes(tickvals=[(i + 0.5) * row_height for i in range(len(rows))], ticktext=[n for n, _ in rows],
                     showgrid=False, zeroline=False)
    fig.update_xaxes(visible=False)
    fig.update_layout(dragmode=False)
    return _layout(fig, title, height=int(min(70 + canvas.shape[0] * scale, 520)))


def latent_figure(projection: LatentProjection, title: str = "Latent space of test points") -> go.Figure:
    """One dot per test point, coloured by its label (SVG, so it draws without WebGL)."""
    fig = go.Figure()
    for label in np.unique(projection.labels):
        at = projection.labels == label
        name = projection.label_names[label] if label < len(projection.label_names) else str(label)
        fig.add_trace(go.Scatter(x=projection.points[at, 0], y=projection.points[at, 1], mode="markers", name=name,
                                 marker=dict(size=5, opacity=0.6, color=LABEL_COLORS[label % len(LABEL_COLORS)])))
    fig.update_xaxes(title=projection.axis_titles[0])
    fig.update_yaxes(title=projection.axis_titles[1], scaleanchor="x", scaleratio=1)
    fig.update_layout(legend=dict(orientation="v", y=1, x=1.02))
    return _layout(fig, title, height=420)


def posterior_figure(view: PosteriorView, title: str) -> go.Figure:
    """True posterior p(z|x) as a heatmap, q's samples as dots, the K importance samples sized by weight."""
    fig = go.Figure(go.Heatmap(x=view.axis, y=view.axis, z=view.posterior, colorscale="Greys", showscale=False,
                               zmin=0, zmax=0.7 * float(view.posterior.max()),  # the peak saturates: tails show
                               hovertemplate="z=(%{x:.2f}, %{y:.2f})<br>p(z|x)=%{z:.3f}<extra>true posterior</extra>"))
    fig.add_trace(go.Scatter(x=view.q_samples[:, 0], y=view.q_samples[:, 1], mode="markers", name="z ~ q(z|x)",
                             marker=dict(size=4, color="#2171b5", opacity=0.35)))
    sizes = 8 + 30 * view.weights / max(view.weights.max(), 1e-12)
    fig.add_trace(go.Scatter(x=view.iw_samples[:, 0], y=view.iw_samples[:, 1], mode="markers",
                             name=f"the K = {len(view.weights)} importance samples (size: weight)",
                             customdata=view.weights, hovertemplate="weight %{customdata:.3f}<extra></extra>",
                             marker=dict(size=sizes, color="#ef3b2c", opacity=0.8, line=dict(color="white", width=1))))
    limit = float(view.axis[-1])
    fig.update_xaxes(title="z1", range=[-limit, limit])
    fig.update_yaxes(title="z2", range=[-limit, limit], scaleanchor="x", scaleratio=1)
    return _layout(fig, title, height=440)


def weights_figure(view: PosteriorView, title: str) -> go.Figure:
    """The K normalised importance weights, largest first, against the uniform 1/K."""
    order = np.argsort(view.weights)[::-1]
    k = len(view.weights)
    fig = go.Figure(go.Bar(x=[f"z{i + 1}" for i in order], y=view.weights[order], marker_color="#ef3b2c",
                           customdata=view.log_w[order], hovertemplate="weight %{y:.3f}<br>log w %{customdata:.2f}"
                                                                       "<extra></extra>"))
    fig.add_hline(y=1 / k, line=dict(color="#555", dash="dash", width=1), annotation_text="uniform 1/K",
                  annotation_position="top right")
    fig.update_yaxes(title="normalised weight", range=[0, 1])
    fig.update_xaxes(title="sample (sorted by weight)")
    return _layout(fig, title, height=300)


@dataclass(frozen=True)
class Score:
    name: str
    method: str
    value: float  # higher is better: log p(x), or minus the NLL
    bound: float | None = None  # the run's final validation bound, shown beside it


def score_figure(scores: Sequence[Score], axis_title: str, landmarks: dict[str, float] | None = None,
                 title: str = "Who wins") -> go.Figure:
    """One bar per method (best on top, longest), the bound as a diamond beside it, landmarks as vertical lines.

    Bars start at the left edge of the axis, not at 0, so that with negative log-likelihoods a longer bar
    is still a better model."""
    ordered = sorted(scores, key=lambda s: s.value)
    with_bound = [s for s in ordered if s.bound is not None]
    values = [s.value for s in ordered] + [s.bound for s in with_bound] + list((landmarks or {}).values())
    span = max(values) - min(values) or 1.0
    left, right = min(values) - 0.08 * span, max(values) + 0.08 * span
    fig = go.Figure(go.Bar(y=[s.name for s in ordered], x=[s.value - left for s in ordered], base=left,
                           orientation="h", name=axis_title,
                           marker_color=[METHOD_COLORS.get(s.method, "#444") for s in ordered],
                           text=[f"{s.value:.3f}" for s in ordered], textposition="inside", insidetextanchor="end",
                           hovertemplate="%{y}: %{text}<extra></extra>"))
    if with_bound:
        fig.add_trace(go.Scatter(y=[s.name for s in with_bound], x=[s.bound for s in with_bound], mode="markers",
                                 name="final validation bound / objective", marker=dict(symbol="diamond", size=12,
                                                                                        color="#222")))
    for name, value in (landmarks or {}).items():
        fig.add_vline(x=value, line=dict(color="#555", dash="dash", width=1), annotation_text=name,
                      annotation_position="top")
    fig.update_xaxes(title=axis_title, range=[left, right])
    return _layout(fig, title, height=140 + 45 * len(ordered))
