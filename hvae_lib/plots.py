"""Figures of the book: labelled, colour-blind-friendly (seaborn ``colorblind``), saved as PNG.

Used in: :ref:`ch-rate-distortion` and later chapters.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

PALETTE = "colorblind"


def use_book_style() -> None:
    """Seaborn ``whitegrid`` with the colour-blind palette and legible font sizes."""
    sns.set_theme(style="whitegrid", palette=PALETTE, font_scale=1.0)
    matplotlib.rcParams.update(
        {"figure.dpi": 100, "savefig.dpi": 120, "savefig.bbox": "tight", "image.cmap": "gray"}
    )


def beta_colors(n: int) -> list[tuple[float, float, float]]:
    """``n`` ordered colours (seaborn ``crest``, perceptually uniform) for a β sweep."""
    return sns.color_palette("crest", n)


def save_figure(
    fig: matplotlib.figure.Figure, name: str, directory: str | Path = "figures"
) -> Path:
    """Save ``fig`` as ``directory/name.png`` (directory created) and return the path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    fig.savefig(path)
    return path


def to_numpy_images(images) -> np.ndarray:
    """``[N, C, H, W]`` tensor or array -> ``[N, H, W]`` (C = 1) or ``[N, H, W, C]`` floats."""
    arr = images.detach().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
    arr = arr.astype(np.float32)
    if arr.ndim != 4:
        raise ValueError(f"expected images [N, C, H, W], got shape {arr.shape}")
    return arr[:, 0] if arr.shape[1] == 1 else arr.transpose(0, 2, 3, 1)


def image_mosaic(rows: Sequence[np.ndarray], *, gap: int, fill: float = 1.0) -> np.ndarray:
    """One array holding ``rows`` of equally sized images (each ``[N, H, W]`` or
    ``[N, H, W, C]``, as :func:`to_numpy_images` returns them) side by side, ``gap`` pixels of
    ``fill`` between them; a row shorter than the longest is padded with ``fill``.

    Returns ``[R·H + (R-1)·gap, K·W + (K-1)·gap]`` (``[..., C]`` for colour images), with R
    rows and K the longest row.
    """
    if not rows or any(len(r) == 0 for r in rows):
        raise ValueError("need at least one row and at least one image per row")
    shapes = {tuple(r.shape[1:]) for r in rows}
    if len(shapes) != 1:
        raise ValueError(f"all images must have the same shape, got {sorted(shapes)}")
    h, w_, *channels = rows[0].shape[1:]
    num_rows, num_cols = len(rows), max(len(r) for r in rows)
    out = np.full(
        (num_rows * h + (num_rows - 1) * gap, num_cols * w_ + (num_cols - 1) * gap, *channels),
        fill,
        dtype=np.float32,
    )
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            out[i * (h + gap) : i * (h + gap) + h, j * (w_ + gap) : j * (w_ + gap) + w_] = img
    return out


def image_grid(
    rows: Sequence,
    *,
    row_labels: Sequence[str] | None = None,
    title: str | None = None,
    col_labels: Sequence[str] | None = None,
    size: float = 0.9,
) -> matplotlib.figure.Figure:
    """A grid of images, one row per entry of ``rows`` (each ``[N, C, H, W]``, values in [0, 1]).

    ``row_labels`` are written on the left of each row; ``col_labels`` above the first row.
    The images are drawn as one mosaic (:func:`image_mosaic`, thin white gaps) in a single
    Axes, which renders many times faster than one Axes per image (the explorers of the book
    render dozens of these grids); images of different sizes fall back to one Axes each.
    """
    rows = [to_numpy_images(r) for r in rows]
    num_rows, num_cols = len(rows), max(len(r) for r in rows)
    figsize = (size * num_cols + 1.2, size * num_rows + 0.5)
    if len({tuple(r.shape[1:]) for r in rows}) > 1:
        return _image_grid_axes(rows, row_labels, title, col_labels, figsize)
    h, w_ = rows[0].shape[1:3]
    gap = max(1, round(min(h, w_) / 8))
    fig, ax = plt.subplots(figsize=figsize)
    ax.imshow(image_mosaic(rows, gap=gap), vmin=0.0, vmax=1.0, cmap="gray", interpolation="nearest")
    ax.set_axis_off()
    if row_labels is not None:
        for i, label in enumerate(row_labels[:num_rows]):
            y = i * (h + gap) + (h - 1) / 2
            ax.text(-gap - 0.5, y, label, ha="right", va="center", fontsize=9)
    if col_labels is not None:
        for j, label in enumerate(col_labels[:num_cols]):
            x = j * (w_ + gap) + (w_ - 1) / 2
            ax.text(x, -gap - 0.5, label, ha="center", va="bottom", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _image_grid_axes(
    rows: Sequence[np.ndarray],
    row_labels: Sequence[str] | None,
    title: str | None,
    col_labels: Sequence[str] | None,
    figsize: tuple[float, float],
) -> matplotlib.figure.Figure:
    num_rows, num_cols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(num_rows, num_cols, figsize=figsize, squeeze=False)
    for i, row in enumerate(rows):
        for j in range(num_cols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            for sp in ax.spines.values():
                sp.set_visible(False)
            if j < len(row):
                ax.imshow(row[j], vmin=0.0, vmax=1.0, cmap="gray", interpolation="nearest")
            if j == 0 and row_labels is not None:
                ax.set_ylabel(row_labels[i], rotation=0, ha="right", va="center", fontsize=9)
            if i == 0 and col_labels is not None and j < len(col_labels):
                ax.set_title(col_labels[j], fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def rate_distortion_plot(
    betas: Sequence[float],
    rates: Sequence[float],
    distortions: Sequence[float],
    ax: matplotlib.axes.Axes | None = None,
    *,
    title: str | None = None,
) -> matplotlib.axes.Axes:
    """Distortion against rate (nats), one labelled point per β, with lines of constant
    :math:`D + R` (constant ELBO) for orientation."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 4.0))
    rates, distortions = np.asarray(rates, float), np.asarray(distortions, float)
    colors = beta_colors(len(betas))
    order = np.argsort(rates)
    ax.plot(rates[order], distortions[order], color="0.6", lw=1, zorder=1)
    for b, r, d, c in zip(betas, rates, distortions, colors):
        ax.scatter([r], [d], color=c, s=40, zorder=2, edgecolor="k", linewidth=0.5)
        ax.annotate(f"β={b:g}", (r, d), textcoords="offset points", xytext=(5, 4), fontsize=8)
    best = float(np.min(rates + distortions))
    xs = np.linspace(0, rates.max() * 1.05, 50)
    for k, off in enumerate((0.0, 10.0, 25.0)):
        ax.plot(
            xs,
            best + off - xs,
            ls=":",
            color="0.4",
            lw=0.8,
            label="constant ELBO: D + R = const" if k == 0 else None,
        )
    ax.set_xlim(0, rates.max() * 1.1)
    ax.set_ylim(0, distortions.max() * 1.1)
    ax.set_xlabel("rate R = E KL(q(z|x) || p(z))  [nats]")
    ax.set_ylabel("distortion D = E[-log p(x|z)]  [nats]")
    ax.set_title(title or "Rate–distortion curve of a β sweep")
    ax.legend(loc="upper right", fontsize=8)
    return ax


def png_bytes(fig: matplotlib.figure.Figure, dpi: int = 80) -> bytes:
    """Render ``fig`` to PNG bytes (for precomputed widget views) and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def rate_plane(
    ax: matplotlib.axes.Axes,
    rate_top: Sequence[float],
    rate_bottom: Sequence[float],
    values: Sequence[float],
    betas: Sequence[Sequence[float]],
    *,
    label: str,
    best: Sequence[bool] | None = None,
    cmap: str = "viridis",
    iso_rates: Sequence[float] | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
) -> matplotlib.collections.PathCollection:
    r"""Scatter of a β grid in the rate plane, in the authors' conventions (Xiao & Bamler 2023).

    x = :math:`R(z_2)`, y = :math:`R(z_1\mid z_2)` (nats), colour = ``values`` (a downstream
    metric, colour bar labelled ``label``); dashed slope −1 lines of constant total rate
    (``iso_rates``, default 5 evenly spaced totals); red rings: :math:`\beta_1=\beta_2\ne1`
    (the β-VAE path); black ring: :math:`\beta_1=\beta_2=1` (the ELBO); purple rings: the
    points in ``best`` (e.g. :func:`~hvae_lib.analysis.downstream.best_per_budget`).

    ``rate_top``, ``rate_bottom``, ``values``: ``[G]``; ``betas``: ``G`` pairs ``(beta1, beta2)``.
    Returns the scatter (for a shared colour bar).

    Used in: :ref:`ch-rate-splitting`
    """
    x, y = np.asarray(rate_top, float), np.asarray(rate_bottom, float)
    v = np.asarray(values, float)
    b = np.asarray(betas, float)
    if not (x.shape == y.shape == v.shape == (len(b),)) or b.ndim != 2 or b.shape[1] != 2:
        raise ValueError("rate_top, rate_bottom, values need shape [G] and betas shape [G, 2]")
    top = float(max((x + y).max(), 1e-9))
    for k, t in enumerate(iso_rates if iso_rates is not None else np.linspace(top / 5, top, 5)):
        ax.plot(
            [0, t],
            [t, 0],
            ls="--",
            lw=0.7,
            color="0.6",
            zorder=0,
            label="constant total rate" if k == 0 else None,
        )
    sc = ax.scatter(
        x, y, c=v, cmap=cmap, s=42, vmin=vmin, vmax=vmax, edgecolor="0.3", linewidth=0.4, zorder=2
    )
    diag = np.isclose(b[:, 0], b[:, 1])
    elbo = diag & np.isclose(b[:, 0], 1.0)
    ring = dict(s=150, facecolor="none", zorder=3)
    if best is not None:
        m = np.asarray(best, bool)
        ax.scatter(
            x[m], y[m], edgecolor="#7b3294", linewidth=1.4, label="best for its total rate", **ring
        )
    ax.scatter(
        x[diag & ~elbo],
        y[diag & ~elbo],
        edgecolor="#d7191c",
        linewidth=1.6,
        label="β1 = β2 ≠ 1 (β-VAE)",
        **ring,
    )
    ax.scatter(x[elbo], y[elbo], edgecolor="k", linewidth=2.0, label="β1 = β2 = 1 (ELBO)", **ring)
    ax.set_xlim(-0.03 * top, 1.05 * top)
    ax.set_ylim(-0.03 * top, 1.05 * top)
    ax.set_aspect("equal")
    ax.set_xlabel("R(z2)  [nats]")
    ax.set_ylabel("R(z1|z2)  [nats]")
    ax.figure.colorbar(sc, ax=ax, label=label, shrink=0.85)
    return sc


def _graph_node(
    ax: matplotlib.axes.Axes,
    xy: tuple[float, float],
    label: str,
    *,
    observed: bool = False,
    deterministic: bool = False,
    size: float = 0.2,
) -> matplotlib.patches.Patch:
    """One node of a graphical model: a circle (stochastic; shaded when observed) or a square
    (deterministic) of half-size ``size`` with a math label."""
    face = "0.82" if observed else "white"
    if deterministic:
        patch: matplotlib.patches.Patch = matplotlib.patches.Rectangle(
            (xy[0] - size, xy[1] - size), 2 * size, 2 * size, facecolor=face, edgecolor="k", lw=1.3
        )
    else:
        patch = matplotlib.patches.Circle(xy, size, facecolor=face, edgecolor="k", lw=1.3)
    patch.set_zorder(2)
    ax.add_patch(patch)
    ax.text(*xy, label, ha="center", va="center", fontsize=12 if not deterministic else 10.5)
    return patch


def _graph_edge(
    ax: matplotlib.axes.Axes,
    a: matplotlib.patches.Patch,
    b: matplotlib.patches.Patch,
    name: str,
    *,
    dashed: bool,
    color: tuple[float, float, float],
) -> matplotlib.patches.FancyArrowPatch:
    """An arrow from the border of node ``a`` to the border of node ``b`` (clipped to both)."""

    def centre(p: matplotlib.patches.Patch) -> tuple[float, float]:
        if isinstance(p, matplotlib.patches.Circle):
            return tuple(p.center)
        x0, y0 = p.get_xy()
        return (x0 + p.get_width() / 2, y0 + p.get_height() / 2)

    arrow = matplotlib.patches.FancyArrowPatch(
        centre(a),
        centre(b),
        patchA=a,
        patchB=b,
        shrinkA=1.0,
        shrinkB=1.5,
        arrowstyle="-|>",
        mutation_scale=14,
        lw=1.5,
        linestyle="--" if dashed else "-",
        color=color,
        gid=name,
        zorder=1,
    )
    ax.add_patch(arrow)
    return arrow


def plot_hvae_graphs(
    axes: Sequence[matplotlib.axes.Axes] | None = None,
) -> matplotlib.figure.Figure:
    r"""The two-layer HVAE as graphical models (after Xiao & Bamler 2023, Fig. 2).

    Three panels, nodes at the same places in each (:math:`z_2` top, :math:`z_1` right,
    :math:`x` bottom): (a) the generative model
    :math:`p(z_2)\,p(z_1\mid z_2)\,p(x\mid z_1)`, solid arrows :math:`z_2\to z_1\to x`;
    (b) separate-encoder inference :math:`q(z_2\mid x)\,q(z_1\mid z_2, x)`, dashed arrows
    :math:`x\to z_2`, :math:`x\to z_1`, :math:`z_2\to z_1`; (c) ladder inference, dashed
    arrows :math:`x\to d(x)\to z_2`, :math:`d(x)\to z_1`, :math:`z_2\to z_1`, with the
    deterministic feature :math:`d(x)` as a square and the merge
    :math:`q(z_1\mid z_2,x)\propto\hat q(z_1\mid d(x))\,p(z_1\mid z_2)` written below.
    Circles are stochastic nodes, the observed :math:`x` is shaded; colours from the
    ``colorblind`` palette, and line style alone also tells the two kinds of arrow apart.

    Parameters
    ----------
    axes : three Axes to draw into; ``None`` creates a 1×3 figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure; every arrow is a ``FancyArrowPatch`` whose ``gid`` names its edge
        (``"z2->z1"``), and ``fig.hvae_edges`` maps ``"generative"``, ``"separate"``,
        ``"ladder"`` to the edge names of each panel.


    Used in: :ref:`ch-rate-splitting`
    """
    if axes is None:
        fig, axs = plt.subplots(1, 3, figsize=(9.6, 4.0))
        axes = list(axs)
    else:
        axes = list(axes)
        if len(axes) != 3:
            raise ValueError(f"need 3 axes, got {len(axes)}")
        fig = axes[0].figure
    palette = sns.color_palette(PALETTE)
    gen_color, inf_color = palette[0], palette[3]
    pos = {"z2": (0.45, 2.2), "z1": (1.2, 1.25), "x": (0.45, 0.0), "d": (0.45, 0.7)}
    labels = {"z2": "$z_2$", "z1": "$z_1$", "x": "$x$", "d": "$d(x)$"}
    panels = {
        "generative": (
            "(a) generative model\n$p(z_2)\\,p(z_1\\mid z_2)\\,p(x\\mid z_1)$",
            ("z2", "z1", "x"),
            [("z2", "z1"), ("z1", "x")],
            False,
        ),
        "separate": (
            "(b) inference: separate encoders\n$q(z_2\\mid x)\\,q(z_1\\mid z_2, x)$",
            ("z2", "z1", "x"),
            [("x", "z2"), ("x", "z1"), ("z2", "z1")],
            True,
        ),
        "ladder": (
            "(c) inference: ladder, shared $d(x)$\n$q(z_2\\mid d(x))\\,q(z_1\\mid z_2, d(x))$",
            ("z2", "z1", "x", "d"),
            [("x", "d"), ("d", "z2"), ("d", "z1"), ("z2", "z1")],
            True,
        ),
    }
    edges: dict[str, list[str]] = {}
    for ax, (key, (title, nodes, links, dashed)) in zip(axes, panels.items()):
        ax.set_xlim(-0.15, 1.6)
        ax.set_ylim(-0.75, 2.55)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(title, fontsize=10)
        patches = {
            n: _graph_node(ax, pos[n], labels[n], observed=n == "x", deterministic=n == "d")
            for n in nodes
        }
        color = inf_color if dashed else gen_color
        edges[key] = []
        for a, b in links:
            name = f"{a}->{b}".replace("d->", "d(x)->").replace("->d", "->d(x)")
            _graph_edge(ax, patches[a], patches[b], name, dashed=dashed, color=color)
            edges[key].append(name)
        if key == "ladder":
            ax.text(
                0.65,
                -0.5,
                "merge: $q(z_1\\mid z_2, x)\\propto\\hat q(z_1\\mid d(x))\\,p(z_1\\mid z_2)$",
                ha="center",
                va="center",
                fontsize=8.5,
            )
    handles = [
        matplotlib.lines.Line2D([], [], color=gen_color, lw=1.5, ls="-", label="generative"),
        matplotlib.lines.Line2D([], [], color=inf_color, lw=1.5, ls="--", label="inference"),
        matplotlib.lines.Line2D(
            [], [], color="k", marker="o", ls="", mfc="white", ms=9, label="stochastic"
        ),
        matplotlib.lines.Line2D(
            [], [], color="k", marker="o", ls="", mfc="0.82", ms=9, label="observed"
        ),
        matplotlib.lines.Line2D(
            [], [], color="k", marker="s", ls="", mfc="white", ms=9, label="deterministic"
        ),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=9, frameon=False)
    fig.hvae_edges = edges  # type: ignore[attr-defined]
    return fig
