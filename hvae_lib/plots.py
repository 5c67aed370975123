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
    """
    rows = [to_numpy_images(r) for r in rows]
    num_rows, num_cols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(
        num_rows, num_cols, figsize=(size * num_cols + 1.2, size * num_rows + 0.5), squeeze=False
    )
    for i, row in enumerate(rows):
        for j in range(num_cols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
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
