"""Figures of the book: labelled, colour-blind-friendly (seaborn ``colorblind``), saved as PNG.

Used in: book/01_rate_distortion.ipynb and later chapters.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

PALETTE = "colorblind"


def use_book_style() -> None:
    """Seaborn ``whitegrid`` with the colour-blind palette and legible font sizes."""
    sns.set_theme(style="whitegrid", palette=PALETTE, font_scale=1.0)
    matplotlib.rcParams.update({"figure.dpi": 100, "savefig.dpi": 120, "savefig.bbox": "tight",
                                "image.cmap": "gray"})


def beta_colors(n: int) -> list[tuple[float, float, float]]:
    """``n`` ordered colours (seaborn ``crest``, perceptually uniform) for a β sweep."""
    return sns.color_palette("crest", n)


def save_figure(fig: matplotlib.figure.Figure, name: str, directory: str | Path = "figures") -> Path:
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


def image_grid(rows: Sequence, *, row_labels: Sequence[str] | None = None, title: str | None = None,
               col_labels: Sequence[str] | None = None, size: float = 0.9) -> matplotlib.figure.Figure:
    """A grid of images, one row per entry of ``rows`` (each ``[N, C, H, W]``, values in [0, 1]).

    ``row_labels`` are written on the left of each row; ``col_labels`` above the first row.
    """
    rows = [to_numpy_images(r) for r in rows]
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(size * n_cols + 1.2, size * n_rows + 0.5), squeeze=False)
    for i, row in enumerate(rows):
        for j in range(n_cols):
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


def rate_distortion_plot(betas: Sequence[float], rates: Sequence[float], distortions: Sequence[float],
                         ax: matplotlib.axes.Axes | None = None, *, title: str | None = None) -> matplotlib.axes.Axes:
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
        ax.plot(xs, best + off - xs, ls=":", color="0.4", lw=0.8,
                label="constant ELBO: D + R = const" if k == 0 else None)
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
