"""Synthetic stand-ins for the smoke form of the paper profile.

The paper profile reads data files the user provides (SVHN's ``.mat`` files from
``$HVAE_SVHN_DIR``) or renders a grid too large for a quick CPU run (the 737,280-image 64×64
dSprites). Its *smoke* form (``python -m hvae_lib build --profile paper --smoke``) runs the
paper's models and code paths on a CPU in minutes, so it needs data of the same shapes, dtypes
and label ranges without those files:

* :func:`synthetic_svhn` — procedural house-number-like images: a scikit-learn digit (8×8,
  ships with scikit-learn), enlarged, placed at a random offset in a 32×32 colour image with
  random foreground and background colours and pixel noise; the label is that digit. Same
  layout as :func:`.load_svhn`: images ``[N, 3, 32, 32]`` float32 in [0, 1] (or
  uint8 0..255), labels int64 in 0..9.
* :func:`dsprites_smoke` — a subgrid of the procedural dSprites factor grid at the original
  64×64 (every shape, 2 scales, 4 orientations, 8 × 8 positions: 1,536 images), with the
  :class:`.DSprites` API.
* :func:`dsprites_subset` — random images of a (full) grid: the factor ranges stay those of
  the grid (so a model whose heads have the grid's factor sizes keeps them).

Everything random is drawn from a ``numpy.random.Generator`` passed in. Outside smoke runs a
missing file stays an error; these functions never stand in silently.

Used in: the smoke form of the paper profile (:ref:`ch-rate-distortion`,
:ref:`ch-transitive`, :ref:`ch-rate-splitting`, :ref:`ch-semafovae`)
"""

from __future__ import annotations

import numpy as np

from ..config import check_rng, note_stand_in
from .digits import LabelledImages, load_digits_dataset
from .dsprites import DSprites

__all__ = [
    "synthetic_svhn",
    "dsprites_smoke",
    "dsprites_subset",
    "DSPRITES_SMOKE_STEP",
]

DSPRITES_SMOKE_STEP: dict[str, int] = {"scale": 3, "orientation": 10, "posX": 4, "posY": 4}
"""The subgrid of :func:`dsprites_smoke`: every ``step``-th value of these factors."""


def synthetic_svhn(
    num_images: int, rng: np.random.Generator, *, dtype: str = "float32"
) -> LabelledImages:
    """``num_images`` procedural colour digit images shaped like SVHN's cropped digits.

    Each image: a scikit-learn digit of a label drawn uniformly from 0..9 (a random one of its
    examples), enlarged 3× to 24×24, at a random offset in a 32×32 canvas, foreground and
    background colours drawn uniformly per image (at least 0.3 apart in mean grey level, so
    the digit stays visible), plus Gaussian pixel noise (s.d. 0.05), clipped to [0, 1].

    Parameters
    ----------
    num_images : number of images (>= 1).
    rng : ``numpy.random.Generator`` every draw comes from (labels, examples, offsets,
        colours, noise, in that order).
    dtype : ``"float32"`` (in [0, 1], as :func:`.load_svhn`) or ``"uint8"``.

    Returns
    -------
    LabelledImages
        images ``[N, 3, 32, 32]``; labels int64 ``[N]`` in 0..9.

    Raises
    ------
    ValueError
        ``num_images < 1`` or an unknown dtype.
    TypeError
        ``rng`` is not a ``numpy.random.Generator``.

    Used in: the smoke form of the paper profile (:ref:`ch-rate-splitting`)
    """
    check_rng(rng)
    n = int(num_images)
    if n < 1:
        raise ValueError(f"num_images must be at least 1, got {num_images}")
    if dtype not in ("float32", "uint8"):
        raise ValueError(f"unknown dtype {dtype!r}; valid: float32, uint8")
    digits = load_digits_dataset()
    glyphs, glyph_labels = digits.images[:, 0], digits.labels  # [M, 8, 8] in [0, 1]
    labels = rng.integers(0, 10, size=n).astype(np.int64)
    by_class = [np.flatnonzero(glyph_labels == c) for c in range(10)]
    pick = np.array([by_class[c][rng.integers(0, len(by_class[c]))] for c in labels])
    big = np.kron(glyphs[pick], np.ones((1, 3, 3), dtype=np.float32))  # [n, 24, 24]
    offsets = rng.integers(0, 32 - 24 + 1, size=(n, 2))
    fg = rng.uniform(0.0, 1.0, size=(n, 3)).astype(np.float32)
    bg = rng.uniform(0.0, 1.0, size=(n, 3)).astype(np.float32)
    close = np.abs(fg.mean(1) - bg.mean(1)) < 0.3
    fg[close] = np.where(bg[close].mean(1, keepdims=True) > 0.5, 0.1, 0.9)
    mask = np.zeros((n, 32, 32), dtype=np.float32)
    for i, (r, c) in enumerate(offsets):
        mask[i, r : r + 24, c : c + 24] = big[i]
    images = bg[:, :, None, None] + (fg - bg)[:, :, None, None] * mask[:, None]
    images += rng.normal(0.0, 0.05, size=images.shape).astype(np.float32)
    images = np.clip(images, 0.0, 1.0).astype(np.float32)
    if dtype == "uint8":
        images = np.round(images * 255.0).astype(np.uint8)
    return LabelledImages(np.ascontiguousarray(images), labels)


def dsprites_smoke(resolution: int = 64) -> DSprites:
    """The smoke run's dSprites: a subgrid of the procedural grid at ``resolution`` (64, the
    original): :data:`DSPRITES_SMOKE_STEP`, factor sizes ``(3, 2, 4, 8, 8)``, 1,536 images.

    Deterministic (no randomness); images uint8 ``[N, 1, 64, 64]`` in {0, 1} on demand. Notes
    itself on the page's smoke banner (:func:`hvae_lib.config.note_stand_in`).

    Used in: the smoke form of the paper profile (:ref:`ch-rate-distortion`, :ref:`ch-transitive`)
    """
    ds = DSprites(resolution=int(resolution)).subgrid(DSPRITES_SMOKE_STEP)
    note_stand_in(
        f"dSprites (a {len(ds):,}-image subgrid of the procedural {ds.resolution}×"
        f"{ds.resolution} grid instead of its 737,280 images)"
    )
    return ds


def dsprites_subset(ds: DSprites, num_images: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``num_images`` distinct images of ``ds``, drawn from ``rng``, sorted.

    The factor sizes of the subset's labels stay ``ds.factor_sizes`` (every index of a factor
    can occur), unlike a subgrid, so a model built for ``ds``'s factor sizes fits it.

    Raises
    ------
    ValueError
        ``num_images`` is not in ``1 .. len(ds)``.

    Used in: the smoke form of the paper profile (:ref:`ch-semafovae`)
    """
    check_rng(rng)
    n = int(num_images)
    if not 1 <= n <= len(ds):
        raise ValueError(f"num_images must be in [1, {len(ds)}], got {num_images}")
    return np.sort(rng.choice(len(ds), size=n, replace=False)).astype(np.int64)
