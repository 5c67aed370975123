"""Natural-image datasets from files the user provides: SVHN (``.mat``) and CIFAR-10 (python batches).

Nothing is downloaded. Both loaders return a :class:`~hvae_lib.data.digits.LabelledImages`
with images ``[N, 3, 32, 32]`` (float32 in [0, 1] by default, or the raw uint8) and int64
labels in 0..9.

* :func:`load_svhn` reads the "cropped digits" files ``train_32x32.mat``, ``test_32x32.mat``,
  ``extra_32x32.mat`` (http://ufldl.stanford.edu/housenumbers/) with ``scipy.io.loadmat``,
  which parses the MATLAB v5 format and never executes code. ``X`` is ``[32, 32, 3, N]``
  uint8 and ``y`` is ``[N, 1]`` with label 10 meaning the digit 0 (mapped to 0).
* :func:`load_cifar10` reads ``cifar-10-batches-py/`` (``data_batch_1`` ... ``data_batch_5``,
  ``test_batch``; https://www.cs.toronto.edu/~kriz/cifar.html). These files are Python
  **pickles**, and unpickling an untrusted pickle can run arbitrary code. They are therefore
  read with a restricted unpickler that resolves only the few globals a pickled NumPy array
  needs (``numpy ... _reconstruct``, ``numpy.ndarray``, ``numpy.dtype``, ``_codecs.encode``);
  dicts, lists, bytes, strings and integers need no globals. Any other global makes the load
  fail with a ``ValueError`` before anything is constructed.

Used in: :ref:`ch-rate-splitting` (paper profile)
"""

from __future__ import annotations

import importlib
import os
import pickle
from pathlib import Path
from typing import Any, Union

import numpy as np

from .digits import LabelledImages

__all__ = [
    "load_svhn",
    "load_cifar10",
    "SVHN_SPLITS",
    "CIFAR10_TRAIN_FILES",
    "CIFAR10_TEST_FILE",
    "CIFAR10_CLASSES",
]

PathLike = Union[str, "os.PathLike[str]"]

SVHN_SPLITS: tuple[str, ...] = ("train", "test", "extra")
"""SVHN splits; the file of split ``s`` is ``f"{s}_32x32.mat"``."""

CIFAR10_TRAIN_FILES: tuple[str, ...] = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILE: str = "test_batch"
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def _finish(
    images_nchw: np.ndarray, labels: np.ndarray, dtype: str, limit: int | None
) -> LabelledImages:
    if limit is not None:
        if int(limit) <= 0:
            raise ValueError(f"limit must be positive, got {limit}")
        images_nchw, labels = images_nchw[: int(limit)], labels[: int(limit)]
    if dtype == "float32":
        images = images_nchw.astype(np.float32) / np.float32(255.0)
    elif dtype == "uint8":
        images = images_nchw.astype(np.uint8)
    else:
        raise ValueError(f"unknown dtype {dtype!r}; valid: float32, uint8")
    return LabelledImages(
        np.ascontiguousarray(images), np.ascontiguousarray(labels.astype(np.int64))
    )


def load_svhn(
    path: PathLike, split: str | None = None, *, dtype: str = "float32", limit: int | None = None
) -> LabelledImages:
    """Read an SVHN cropped-digits ``.mat`` file.

    Parameters
    ----------
    path : the ``.mat`` file, or a directory holding ``{split}_32x32.mat`` (then ``split`` is
        required).
    split : ``"train"``, ``"test"`` or ``"extra"`` when ``path`` is a directory.
    dtype : ``"float32"`` (grey level / 255; the full training set takes 0.9 GB) or
        ``"uint8"`` (raw; convert per minibatch, e.g. ``x.float() / 255``).
    limit : keep only the first ``limit`` images.

    Returns
    -------
    LabelledImages
        images ``[N, 3, 32, 32]``; labels int64 ``[N]`` in 0..9 (the file's label 10 is digit 0).

    Raises
    ------
    FileNotFoundError
        The file (or directory) does not exist; the message gives the absolute path.
    ValueError
        Not a MATLAB v5 file (v7.3/HDF5 files are not supported), missing ``X`` or ``y``, or
        shapes, dtypes or labels that are not SVHN's.


    Used in: :ref:`ch-rate-splitting` (paper profile)
    """
    from scipy.io import loadmat

    p = Path(os.fspath(path)).expanduser().resolve()
    if p.is_dir():
        if split not in SVHN_SPLITS:
            raise ValueError(f"{p} is a directory: pass split= one of {', '.join(SVHN_SPLITS)}")
        p = p / f"{split}_32x32.mat"
    elif split is not None and split not in SVHN_SPLITS:
        raise ValueError(f"unknown SVHN split {split!r}; valid: {', '.join(SVHN_SPLITS)}")
    if not p.is_file():
        raise FileNotFoundError(
            f"SVHN file not found: {p}. Download the 'cropped digits' files (train_32x32.mat, "
            "test_32x32.mat) from http://ufldl.stanford.edu/housenumbers/ and pass their path."
        )
    try:
        mat = loadmat(str(p))
    except NotImplementedError as exc:  # MATLAB v7.3 = HDF5
        raise ValueError(
            f"{p}: MATLAB v7.3 (HDF5) files are not supported; SVHN ships v5 files ({exc})"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - scipy raises several types for garbage input
        raise ValueError(f"{p} is not a readable MATLAB .mat file: {exc}") from exc
    if "X" not in mat or "y" not in mat:
        raise ValueError(
            f"{p}: expected variables 'X' and 'y', found {sorted(k for k in mat if not k.startswith('__'))}"
        )
    X, y = np.asarray(mat["X"]), np.asarray(mat["y"])
    if X.ndim != 4 or X.shape[:3] != (32, 32, 3):
        raise ValueError(f"{p}: 'X' has shape {X.shape}, expected [32, 32, 3, N]")
    if X.dtype != np.uint8:
        if not np.issubdtype(X.dtype, np.number) or X.min() < 0 or X.max() > 255:
            raise ValueError(f"{p}: 'X' must hold grey levels 0..255, got dtype {X.dtype}")
        X = X.astype(np.uint8)
    y = y.reshape(-1)
    if y.shape[0] != X.shape[3]:
        raise ValueError(f"{p}: {X.shape[3]} images but {y.shape[0]} labels")
    if (
        not np.issubdtype(y.dtype, np.number)
        or (y != np.round(y)).any()
        or y.min() < 0
        or y.max() > 10
    ):
        raise ValueError(f"{p}: labels must be integers in 0..10 (10 = digit 0)")
    labels = y.astype(np.int64) % 10
    images = np.transpose(X, (3, 2, 0, 1))  # [32, 32, 3, N] -> [N, 3, 32, 32]
    return _finish(images, labels, dtype, limit)


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals needed to rebuild NumPy arrays."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name} (only NumPy arrays, "
                "dicts, lists, bytes, strings and numbers are allowed)"
            )
        if module.startswith("numpy.core."):
            try:  # NumPy 2 renamed numpy.core to numpy._core
                return getattr(
                    importlib.import_module("numpy._core." + module.split(".", 2)[2]), name
                )
            except ImportError:
                pass
        return getattr(importlib.import_module(module), name)


def _safe_unpickle(path: Path) -> Any:
    try:
        with open(path, "rb") as fh:
            return _RestrictedUnpickler(fh, encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        raise ValueError(
            f"{path} is not a CIFAR-10 python batch that is safe to load ({exc})"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - truncated or foreign files raise many types
        raise ValueError(
            f"{path} is not a CIFAR-10 python batch: {type(exc).__name__}: {exc}"
        ) from exc


def _get(d: dict[Any, Any], key: str) -> Any:
    for k in (key.encode(), key):
        if k in d:
            return d[k]
    raise KeyError(key)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    obj = _safe_unpickle(path)
    if not isinstance(obj, dict):
        raise ValueError(
            f"{path}: expected a dict with 'data' and 'labels', got {type(obj).__name__}"
        )
    try:
        data, labels = _get(obj, "data"), _get(obj, "labels")
    except KeyError as exc:
        raise ValueError(f"{path}: missing key {exc}; keys are {sorted(map(str, obj))}") from None
    data = np.asarray(data)
    labels = np.asarray(labels)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: 'data' is {data.dtype} {data.shape}, expected uint8 [N, 3072]")
    if labels.ndim != 1 or labels.shape[0] != data.shape[0]:
        raise ValueError(f"{path}: {data.shape[0]} images but labels of shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"{path}: labels must be integers in 0..9")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def load_cifar10(
    root: PathLike, split: str = "train", *, dtype: str = "float32", limit: int | None = None
) -> LabelledImages:
    """Read CIFAR-10 python batches safely (restricted unpickler; see the module docstring).

    Parameters
    ----------
    root : the ``cifar-10-batches-py`` directory, or a directory that contains it.
    split : ``"train"`` (``data_batch_1`` ... ``data_batch_5``, 50,000 images) or ``"test"``
        (``test_batch``, 10,000 images).
    dtype : ``"float32"`` (grey level / 255) or ``"uint8"`` (raw).
    limit : keep only the first ``limit`` images.

    Returns
    -------
    LabelledImages
        images ``[N, 3, 32, 32]``; labels int64 ``[N]`` in 0..9 (``CIFAR10_CLASSES``).

    Raises
    ------
    FileNotFoundError
        A batch file is missing; the message lists what was looked for and where.
    ValueError
        Unknown split, a pickle that needs anything but NumPy arrays and plain containers,
        or contents that are not a CIFAR-10 batch.


    Used in: :ref:`ch-rate-splitting` (paper profile)
    """
    if split not in ("train", "test"):
        raise ValueError(f"unknown CIFAR-10 split {split!r}; valid: train, test")
    base = Path(os.fspath(root)).expanduser().resolve()
    if not base.is_dir():
        raise FileNotFoundError(
            f"CIFAR-10 directory not found: {base}. Download the 'CIFAR-10 python version' from "
            "https://www.cs.toronto.edu/~kriz/cifar.html, extract it, and pass the cifar-10-batches-py directory."
        )
    if (base / "cifar-10-batches-py").is_dir():
        base = base / "cifar-10-batches-py"
    names = CIFAR10_TRAIN_FILES if split == "train" else (CIFAR10_TEST_FILE,)
    missing = [n for n in names if not (base / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10 {split} batch file(s) {', '.join(missing)} not found in {base} "
            f"(expected {', '.join(names)})"
        )
    parts = [_read_cifar_batch(base / n) for n in names]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return _finish(images, labels, dtype, limit)
