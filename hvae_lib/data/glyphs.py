"""Procedural "class + nuisance" glyphs: a class label plus independent, labelled nuisances.

For the rate-splitting chapter (our secondary dataset, quick profile): images whose **class** is one
of 10 glyph templates and whose appearance also varies by nuisances that carry no class
information, so the book can show class information going to the top layer :math:`z_2` and
texture to :math:`z_1`.

* templates: the 10 class means of scikit-learn's 8×8 digits (shipped in the wheel),
  normalised to a peak of 1;
* nuisances, independent of the class and of each other, all returned as ground truth:
  ``scale`` (glyph height relative to the image), ``shift_x`` / ``shift_y`` (pixels),
  ``stroke`` (blend towards a 3×3 dilation: thicker strokes), ``contrast`` (ink intensity)
  and ``texture`` (amplitude of a smooth random background field, 4×4 noise upsampled
  bilinearly).

Rendering is vectorised (``affine_grid`` / ``grid_sample``) and reproducible: the same state
of the ``numpy.random.Generator`` passed as ``rng`` gives the same images on every run, and any
number of images can be drawn.

Used in: :ref:`ch-rate-splitting`
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..config import check_rng

__all__ = ["GlyphData", "glyphs", "GLYPH_NUISANCES"]

GLYPH_NUISANCES: tuple[str, ...] = ("scale", "shift_x", "shift_y", "stroke", "contrast", "texture")
"""Names of the nuisance factors of :func:`glyphs`."""


@dataclass
class GlyphData:
    """Images, class labels and nuisance factors of :func:`glyphs`.

    Attributes
    ----------
    images : float32 ``[N, 1, R, R]`` in [0, 1].
    labels : int64 ``[N]`` glyph class in 0..9.
    factors : ``{name: float64 [N]}`` for every name in :data:`GLYPH_NUISANCES`.


    Used in: :ref:`ch-rate-splitting`
    """

    images: np.ndarray
    labels: np.ndarray
    factors: dict[str, np.ndarray]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@functools.lru_cache(maxsize=1)
def _templates() -> np.ndarray:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    imgs = np.asarray(bunch.images, dtype=np.float64)
    t = np.stack([imgs[bunch.target == c].mean(0) for c in range(10)])
    t /= t.reshape(10, -1).max(1)[:, None, None]
    t.setflags(write=False)
    return t


def glyphs(
    n: int,
    *,
    rng: np.random.Generator,
    resolution: int = 16,
    max_shift: float = 2.0,
    scale_range: tuple[float, float] = (0.6, 0.9),
    texture_max: float = 0.25,
) -> GlyphData:
    r"""Draw ``n`` glyph images with a uniformly random class and independent nuisances.

    Each image is :math:`x = \mathrm{clip}_{[0,1]}\big(c\cdot[(1-w)\,g + w\,\mathrm{dilate}(g)]
    + a\,\tau\big)`, where :math:`g` is the class template warped to height ``scale`` × ``R``
    and shifted by (``shift_x``, ``shift_y``) pixels, :math:`w` = ``stroke`` ∈ [0, 1],
    :math:`c` = ``contrast`` ∈ [0.6, 1], :math:`a` = ``texture`` ∈ [0, ``texture_max``] and
    :math:`\tau\in[0,1]` a smooth random field.

    Parameters
    ----------
    n : number of images.
    rng : the ``numpy.random.Generator`` that draws classes, nuisances and textures, in that
        order (a ``TypeError`` for anything else, an integer seed included).
    resolution : image side ``R`` (≥ 8).
    max_shift : shifts are uniform in ``[-max_shift, max_shift]`` pixels.
    scale_range : glyph height as a fraction of ``R``.
    texture_max : largest texture amplitude.

    Raises
    ------
    ValueError
        For ``n < 1``, ``resolution < 8`` or inconsistent ranges.


    Used in: :ref:`ch-rate-splitting`
    """
    import torch
    import torch.nn.functional as F

    check_rng(rng)
    if int(n) < 1 or int(resolution) < 8:
        raise ValueError(f"need n >= 1 and resolution >= 8, got n={n}, resolution={resolution}")
    lo, hi = (float(v) for v in scale_range)
    if not 0 < lo <= hi <= 1 or max_shift < 0 or texture_max < 0:
        raise ValueError(
            "need 0 < scale_range[0] <= scale_range[1] <= 1, max_shift >= 0, texture_max >= 0"
        )
    n, r = int(n), int(resolution)
    labels = rng.integers(0, 10, n)
    f = {
        "scale": rng.uniform(lo, hi, n),
        "shift_x": rng.uniform(-max_shift, max_shift, n),
        "shift_y": rng.uniform(-max_shift, max_shift, n),
        "stroke": rng.uniform(0.0, 1.0, n),
        "contrast": rng.uniform(0.6, 1.0, n),
        "texture": rng.uniform(0.0, texture_max, n),
    }
    noise = rng.random((n, 1, 4, 4))
    t = torch.from_numpy(_templates()[labels][:, None])  # [n, 1, 8, 8] float64
    # affine_grid maps output coordinates in [-1, 1] to input coordinates: scale up by 1/scale
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    inv = torch.from_numpy(1.0 / f["scale"])
    theta[:, 0, 0] = inv
    theta[:, 1, 1] = inv
    theta[:, 0, 2] = -torch.from_numpy(f["shift_x"]) * 2.0 / r * inv
    theta[:, 1, 2] = -torch.from_numpy(f["shift_y"]) * 2.0 / r * inv
    grid = F.affine_grid(theta, [n, 1, r, r], align_corners=False)
    g = F.grid_sample(t, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    w = torch.from_numpy(f["stroke"]).view(n, 1, 1, 1)
    g = (1 - w) * g + w * F.max_pool2d(g, 3, stride=1, padding=1)
    tex = F.interpolate(torch.from_numpy(noise), size=(r, r), mode="bilinear", align_corners=False)
    x = (
        torch.from_numpy(f["contrast"]).view(n, 1, 1, 1) * g
        + torch.from_numpy(f["texture"]).view(n, 1, 1, 1) * tex
    )
    images = x.clamp(0.0, 1.0).to(torch.float32).numpy()
    return GlyphData(images=np.ascontiguousarray(images), labels=labels.astype(np.int64), factors=f)
