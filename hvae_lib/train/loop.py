"""The one training loop of the book, its batch sources, checkpoints and the result cache.

* :func:`train` ``(model, batches, loss_fn, config)`` runs Adam on the batches of a
  :class:`BatchSource` with a ``tqdm.auto`` progress bar, optional gradient clipping, a guard
  that **skips** updates whose loss or gradient norm is not finite (and counts them), and
  periodic checkpoints (model, optimiser, batch source, noise generator, history), from which
  a run resumes to exactly the result of an uninterrupted one. Every model family trains on it:
  the loss is ``loss_fn(model, batch, *, step, generator)``, where ``step`` is the 0-based
  global optimiser step (so warm-up and every schedule are pure functions of it) and
  ``generator`` the run's ``torch.Generator`` for reparameterisation and Gumbel noise.
* Batch sources: :class:`TensorBatches` (rows of one tensor, epoch-wise permutations) here;
  the semi-supervised sources in :mod:`hvae_lib.train.semisup`.
* :class:`ResultCache` stores trained weights and histories under a key derived from the
  configuration, the data and the ``hvae_lib`` version, so a second book build does not
  retrain; :func:`fit` is the one load-or-train entry point. ``HVAE_CACHE=0`` turns the cache
  off; ``HVAE_CACHE=write`` never reads but stores every result (the test run: nbval trains
  everything, and the browser tests then build the book from what it stored).

Used in: :ref:`ch-rate-distortion` and every chapter that trains a model.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .. import __version__
from ..config import ConfigBase, build_seeded
from ..objectives.base import LossFn


@runtime_checkable
class BatchSource(Protocol):
    """What :func:`train` draws its batches from.

    ``next()`` returns the next batch (a tensor, or a tuple of tensors / ``None``, on the CPU
    or anywhere: :func:`train` moves it to the model's device); ``state()`` / ``load(state)``
    save and restore the position (tensors, numbers, lists and dicts only), so a resumed run
    draws the same batches as an uninterrupted one; ``fingerprint_parts()`` returns what
    identifies the data and the draw, for the result cache's key.
    """

    def next(self) -> Any: ...

    def state(self) -> dict[str, Any]: ...

    def load(self, state: Mapping[str, Any]) -> None: ...

    def fingerprint_parts(self) -> tuple[Any, ...]: ...


@dataclass(frozen=True)
class TrainConfig(ConfigBase):
    """Optimisation settings.

    Attributes
    ----------
    steps : number of optimiser steps.
    batch_size : minibatch size (examples drawn without replacement within an epoch).
    lr : Adam learning rate.
    max_grad_norm : clip the global gradient norm to this value (``None``: no clipping; the
        non-finite guard is always on).
    seed : seeds the model initialisation (when :func:`fit` builds it), the minibatch order
        and the reparameterisation noise.
    log_every : record the running means of the logged values every this many steps.
    checkpoint_every : write a checkpoint every this many steps (when a path is given).
    """

    steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-3
    max_grad_norm: float | None = 100.0
    seed: int = 0
    log_every: int = 50
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "log_every", "checkpoint_every"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"TrainConfig.{name} must be positive, got {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"TrainConfig.lr must be positive and finite, got {self.lr}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(
                f"TrainConfig.max_grad_norm must be positive or None, got {self.max_grad_norm}"
            )


@dataclass
class TrainResult:
    """Outcome of :func:`train`.

    Attributes
    ----------
    history : ``{"step": [...], name: [...]}``: running means of each logged value, recorded
        every ``log_every`` steps.
    steps_done : optimiser steps attempted (including skipped ones).
    skipped_steps : updates skipped by the non-finite guard.
    seconds : wall time of this call (0 for a cache hit).
    from_cache : whether the weights came from the :class:`ResultCache`.
    """

    history: dict[str, list[float]] = field(default_factory=dict)
    steps_done: int = 0
    skipped_steps: int = 0
    seconds: float = 0.0
    from_cache: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible representation."""
        return {
            "history": self.history,
            "steps_done": self.steps_done,
            "skipped_steps": self.skipped_steps,
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], from_cache: bool = False) -> TrainResult:
        """Inverse of :meth:`to_dict`."""
        return cls(
            history={k: list(v) for k, v in d["history"].items()},
            steps_done=int(d["steps_done"]),
            skipped_steps=int(d["skipped_steps"]),
            seconds=float(d["seconds"]),
            from_cache=from_cache,
        )

    def last(self, name: str) -> float:
        """The last recorded value of ``name``."""
        return float(self.history[name][-1])


class BatchSampler:
    """Epoch-wise random permutations of ``range(n)`` from a seeded CPU generator.

    ``next()`` returns the next minibatch of indices; ``state()`` / ``load()`` checkpoint it.
    Shared by :func:`train` and :func:`hvae_lib.train.train_grid` (the same minibatch order).
    """

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        if n <= 0:
            raise ValueError("cannot train on an empty dataset")
        self.n, self.batch_size = n, min(batch_size, n)
        self.gen = torch.Generator().manual_seed(int(seed))
        self.perm = torch.randperm(n, generator=self.gen)
        self.pos = 0

    def next(self) -> torch.Tensor:
        if self.pos + self.batch_size > self.n:
            self.perm = torch.randperm(self.n, generator=self.gen)
            self.pos = 0
        idx = self.perm[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return idx

    def state(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state(), "perm": self.perm.clone(), "pos": self.pos}

    def load(self, s: Mapping[str, Any]) -> None:
        self.gen.set_state(s["gen"])
        self.perm = s["perm"].clone()
        self.pos = int(s["pos"])


class TensorBatches:
    """Minibatches of the rows of one tensor: :class:`BatchSampler` indices into ``data``.

    Parameters
    ----------
    data : ``[N, ...]`` examples (kept where they are; :func:`train` moves each batch).
    batch_size, seed : as in :class:`BatchSampler` (``min(batch_size, N)`` rows per batch).
    as_float : cast integer rows (e.g. binary images stored as ``uint8``) to ``float32`` per
        batch; ``False`` keeps the dtype (integer labels).
    """

    def __init__(
        self, data: torch.Tensor, batch_size: int, seed: int, *, as_float: bool = True
    ) -> None:
        self.data = data
        self.as_float = bool(as_float)
        self.sampler = BatchSampler(int(data.shape[0]), int(batch_size), int(seed))

    def next(self) -> torch.Tensor:
        batch = self.data[self.sampler.next()]
        return batch.float() if self.as_float and not batch.is_floating_point() else batch

    def state(self) -> dict[str, Any]:
        return self.sampler.state()

    def load(self, state: Mapping[str, Any]) -> None:
        self.sampler.load(state)

    def fingerprint_parts(self) -> tuple[Any, ...]:
        return (self.data, self.as_float)


class ImageFactorBatches:
    """Minibatches of (image, factors) rows, packed per batch as ``float32 [B, C·H·W + K]``.

    The images stay as given (``uint8`` binary images stay ``uint8``) and only each minibatch
    is converted, so training on the paper's 700,416 dSprites images at 64×64 holds one copy
    of them (2.9 GB as ``uint8``), not a packed ``float32`` copy of 11.5 GB. The minibatch
    indices are :class:`BatchSampler`'s, so the batches equal those of
    ``TensorBatches`` over the packed tensor with the same seed.

    Used in: :ref:`ch-semafovae` (:func:`hvae_lib.analysis.train_factor_classifier`)
    """

    def __init__(
        self, images: torch.Tensor, factors: torch.Tensor, batch_size: int, seed: int
    ) -> None:
        self.images, self.factors = images, factors
        self.sampler = BatchSampler(int(images.shape[0]), int(batch_size), int(seed))

    def next(self) -> torch.Tensor:
        idx = self.sampler.next()
        x = self.images[idx].reshape(len(idx), -1).float()
        return torch.cat([x, self.factors[idx].float()], dim=1)

    def state(self) -> dict[str, Any]:
        return self.sampler.state()

    def load(self, state: Mapping[str, Any]) -> None:
        self.sampler.load(state)

    def fingerprint_parts(self) -> tuple[Any, ...]:
        return (self.images, self.factors)


def to_device(batch: Any, device: torch.device) -> Any:
    """Move a batch (a tensor, ``None``, or a tuple/list/dict of them) to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch if batch.device == device else batch.to(device, non_blocking=True)
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def noise_generator(device: torch.device, seed: int) -> torch.Generator:
    """The run's noise generator on ``device``, seeded ``seed + 1`` (the minibatch order uses
    ``seed``). On the CPU it draws the same numbers as the global stream after
    ``torch.manual_seed(seed + 1)`` would."""
    return torch.Generator(device=device).manual_seed(int(seed) + 1)


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    **extra: Any,
) -> None:
    """Write ``{"model": state_dict, "optimizer": state_dict, **extra}`` with ``torch.save``.

    Only tensors, numbers, strings, lists and dicts are stored, so :func:`load_checkpoint` can
    use ``weights_only=True`` (no pickled code is ever executed on load). The file is written
    to a temporary name and renamed, so an interrupted save never leaves a corrupt checkpoint.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {"model": model.state_dict(), **extra}
    if optimizer is not None:
        payload["optimizer"] = optimizer.state_dict()
    tmp = path.with_suffix(f"{path.suffix}.{os.getpid()}.tmp")  # one per writer
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    Raises
    ------
    FileNotFoundError
        If the file does not exist (the message gives the absolute path).
    ValueError
        If the file is not a readable checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path.resolve()}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - re-raised with context
        raise ValueError(f"{path.resolve()} is not a readable hvae_lib checkpoint: {exc}") from exc


def train(
    model: nn.Module,
    batches: BatchSource | torch.Tensor,
    loss_fn: LossFn,
    config: TrainConfig,
    *,
    device: str | torch.device | None = None,
    progress: bool = True,
    desc: str = "train",
    checkpoint_path: str | os.PathLike | None = None,
    resume: bool = True,
) -> TrainResult:
    """Train ``model`` in place and return the :class:`TrainResult`: the book's one training loop.

    Each of the ``config.steps`` optimiser steps draws ``batch = batches.next()``, moves it to
    ``device``, computes ``loss, logs = loss_fn(model, batch, step=s, generator=g)`` with the
    0-based global step ``s`` and the run's noise generator ``g`` (:func:`noise_generator`), and
    takes an Adam step on all trainable parameters (parameters the loss does not reach get no
    gradient and stay unchanged).

    Parameters
    ----------
    model : the module; it is moved to ``device``.
    batches : a :class:`BatchSource`, or a tensor ``[N, ...]`` (then
        ``TensorBatches(batches, config.batch_size, config.seed)``: integer data are cast to
        ``float32`` per minibatch).
    loss_fn : ``(model, batch, *, step, generator) -> (scalar loss, {name: scalar tensor})``,
        e.g. :func:`hvae_lib.objectives.vae_loss`.
    config : :class:`TrainConfig`.
    device : where to train; ``None`` keeps the model's current device.
    progress : show a ``tqdm.auto`` progress bar with the running loss.
    checkpoint_path : where to write checkpoints every ``config.checkpoint_every`` steps and
        at the end; with ``resume=True`` an existing checkpoint there is loaded and training
        continues from its step, giving the same result as an uninterrupted run.

    The non-finite guard: if the loss or the global gradient norm is NaN/inf, the update is
    skipped (gradients zeroed) and counted in ``skipped_steps``. ``history`` holds the running
    means of the logged values every ``config.log_every`` steps; a value that starts being
    logged later (e.g. after a warm-up) is padded with NaN before its first record.
    """
    if device is None:
        try:
            device = next(model.parameters()).device
        except StopIteration:
            device = torch.device("cpu")
    device = torch.device(device)
    source = (
        TensorBatches(batches, config.batch_size, config.seed)
        if isinstance(batches, torch.Tensor)
        else batches
    )
    if not isinstance(source, BatchSource):
        raise TypeError(
            f"batches must be a tensor or a BatchSource (next/state/load/fingerprint_parts), "
            f"got {type(batches).__name__}"
        )
    model.to(device)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    # foreach: one multi-tensor kernel per update instead of one per parameter; measured on the
    # CPU: the same parameters as the per-tensor path, about 4% faster for chapter 4's models
    optimizer = torch.optim.Adam(params, lr=config.lr, foreach=True)
    generator = noise_generator(device, config.seed)
    history: dict[str, list[float]] = {"step": []}
    step, skipped = 0, 0
    sums: dict[str, float] = {}  # running sums of the logged values since the last record
    count = 0
    if checkpoint_path is not None and resume and Path(checkpoint_path).is_file():
        ckpt = load_checkpoint(checkpoint_path, map_location=device)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        source.load(ckpt["batches"])
        generator.set_state(ckpt["generator"].cpu())
        step, skipped = int(ckpt["step"]), int(ckpt["skipped_steps"])
        history = {k: list(v) for k, v in ckpt["history"].items()}
        sums, count = dict(ckpt["pending"]["sums"]), int(ckpt["pending"]["count"])
    t0 = time.perf_counter()

    def checkpoint() -> None:
        if checkpoint_path is not None:
            save_checkpoint(
                checkpoint_path,
                model,
                optimizer,
                step=step,
                skipped_steps=skipped,
                batches=source.state(),
                generator=generator.get_state(),
                history=history,
                pending={"sums": dict(sums), "count": count},
                config=config.to_json(),
            )

    max_norm = config.max_grad_norm if config.max_grad_norm is not None else float("inf")
    bar = tqdm(
        total=config.steps,
        initial=step,
        desc=desc,
        disable=not progress,
        leave=False,
        mininterval=1.0,
    )
    while step < config.steps:
        batch = to_device(source.next(), device)
        loss, logs = loss_fn(model, batch, step=step, generator=generator)
        optimizer.zero_grad(set_to_none=True)
        ok = bool(torch.isfinite(loss))
        if ok:
            loss.backward()
            ok = bool(torch.isfinite(torch.nn.utils.clip_grad_norm_(params, max_norm)))
        if ok:
            optimizer.step()
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            count += 1
        else:
            optimizer.zero_grad(set_to_none=True)
            skipped += 1
        step += 1
        bar.update(1)
        if step % config.log_every == 0 or step == config.steps:
            if count:
                history["step"].append(float(step))
                for k, v in sums.items():
                    column = history.setdefault(k, [])
                    column.extend([float("nan")] * (len(history["step"]) - 1 - len(column)))
                    column.append(v / count)
                bar.set_postfix(loss=f"{sums.get('loss', 0.0) / count:.2f}", refresh=False)
            sums, count = {}, 0
        if step % config.checkpoint_every == 0 and step < config.steps:
            checkpoint()
    bar.close()
    checkpoint()
    model.eval()
    return TrainResult(
        history=history, steps_done=step, skipped_steps=skipped, seconds=time.perf_counter() - t0
    )


def fingerprint(*objects: Any) -> str:
    """A SHA-256 hex digest of configs, tensors, arrays, strings and numbers.

    Tensors and arrays contribute dtype, shape and raw bytes; :class:`ConfigBase` objects
    their sorted JSON; everything else its ``repr``.
    """
    h = hashlib.sha256()
    for obj in objects:
        if isinstance(obj, torch.Tensor):
            obj = obj.detach().cpu().contiguous().numpy()
        if isinstance(obj, np.ndarray):
            h.update(f"{obj.dtype}{obj.shape}".encode())
            h.update(np.ascontiguousarray(obj).data)  # the buffer itself: no copy of the data
        elif isinstance(obj, ConfigBase):
            h.update(obj.to_json().encode())
        elif isinstance(obj, (dict, list, tuple)):
            h.update(json.dumps(obj, sort_keys=True, default=repr).encode())
        else:
            h.update(repr(obj).encode())
        h.update(b"|")
    return h.hexdigest()


def default_cache_dir() -> Path:
    """``$HVAE_CACHE_DIR``; else ``.hvae_cache`` in the repository when ``hvae_lib`` runs from
    a checkout (editable install); else ``~/.cache/hvae-book``."""
    env = os.environ.get("HVAE_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parents[2]  # hvae_lib/train/loop.py -> the checkout
    if (repo / "pyproject.toml").is_file() and (repo / "_toc.yml").is_file():
        return repo / ".hvae_cache"
    return Path.home() / ".cache" / "hvae-book"


def cache_enabled_by_env() -> bool:
    """False when ``HVAE_CACHE`` is ``0``/``false``/``off``/``no``."""
    return os.environ.get("HVAE_CACHE", "1").strip().lower() not in {"0", "false", "off", "no"}


def cache_write_only_by_env() -> bool:
    """True when ``HVAE_CACHE`` is ``write``: store results but never load them."""
    return os.environ.get("HVAE_CACHE", "1").strip().lower() == "write"


class ResultCache:
    """Trained weights and training histories keyed by (configuration, data, version).

    The key is :func:`fingerprint` of everything passed as ``key`` plus ``hvae_lib.__version__``,
    so changing a hyper-parameter, the data or the library version retrains. Entries are a
    ``weights.pt`` (loaded with ``weights_only=True``) and a ``result.json``.

    Parameters
    ----------
    root : directory (default :func:`default_cache_dir`).
    enabled : ``None`` reads ``HVAE_CACHE`` (on unless set to ``0``).
    write_only : store but never load (retrain everything, refresh the entries); ``None``
        reads ``HVAE_CACHE=write`` when ``enabled`` is ``None`` too, else ``False``.
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        enabled: bool | None = None,
        write_only: bool | None = None,
    ) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.enabled = cache_enabled_by_env() if enabled is None else bool(enabled)
        if write_only is None:  # the environment decides only when ``enabled`` was not given
            write_only = cache_write_only_by_env() if enabled is None else False
        self.write_only = bool(write_only)

    def key(self, *key: Any) -> str:
        """The hex key for these objects and the library version."""
        return fingerprint(__version__, *key)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / key

    def checkpoint_path(self, key: str) -> Path | None:
        """Where a run being trained for ``key`` checkpoints (``root/checkpoints/KEY.pt``), so
        that a re-run after an interruption continues from it; ``None`` when the cache is off
        or write-only (every run then starts from scratch)."""
        if not self.enabled or self.write_only:
            return None
        return self.root / "checkpoints" / f"{key}.pt"

    def load(self, key: str, model: nn.Module) -> TrainResult | None:
        """Load weights into ``model`` and return the stored result, or ``None`` on a miss."""
        if not self.enabled or self.write_only:
            return None
        d = self.path(key)
        try:
            state = torch.load(d / "weights.pt", map_location="cpu", weights_only=True)
            meta = json.loads((d / "result.json").read_text())
            model.load_state_dict(state)
        except Exception:  # noqa: BLE001 - a missing or damaged entry means: retrain and overwrite
            return None
        return TrainResult.from_dict(meta, from_cache=True)

    def store(self, key: str, model: nn.Module, result: TrainResult) -> None:
        """Store ``model.state_dict()`` and ``result`` (no-op when disabled)."""
        if not self.enabled:
            return
        d = self.path(key)
        d.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        tmp = d / f"weights.pt.{os.getpid()}.tmp"  # one per process: notebooks run at once
        torch.save(state, tmp)
        os.replace(tmp, d / "weights.pt")
        tmp_json = d / f"result.json.{os.getpid()}.tmp"
        tmp_json.write_text(json.dumps(result.to_dict()))
        os.replace(tmp_json, d / "result.json")


def source_digest(source: BatchSource) -> str:
    """:func:`fingerprint` of what identifies a batch source's data and draw
    (``source.fingerprint_parts()``): the data part of a result-cache key, computed once per
    run (or once per grid, however many members share the data)."""
    return fingerprint(*source.fingerprint_parts())


def fit(
    build: Callable[[], nn.Module],
    batches: BatchSource | torch.Tensor,
    loss_fn: LossFn,
    config: TrainConfig,
    *,
    key: Any,
    cache: ResultCache | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    desc: str = "train",
) -> tuple[nn.Module, TrainResult]:
    """Build a model (initialised from ``config.seed``), then load it from the cache or :func:`train` it.

    Parameters
    ----------
    build : zero-argument factory of the untrained model (see :func:`build_seeded`).
    batches, loss_fn, config : as for :func:`train`.
    key : everything besides ``config`` and the data that determines the result (model
        config, loss settings such as β); combined with ``config``, the batch source's
        ``fingerprint_parts()`` and the version.
    cache : a :class:`ResultCache`; ``None`` makes one from the environment.

    Returns the trained model (on ``device``, in eval mode) and its :class:`TrainResult`.

    While it trains, the run checkpoints every ``config.checkpoint_every`` steps to
    :meth:`ResultCache.checkpoint_path` (deleted once the result is stored), so a re-run after
    an interruption continues from the last checkpoint (:func:`train`'s exact resume).
    """
    source = (
        TensorBatches(batches, config.batch_size, config.seed)
        if isinstance(batches, torch.Tensor)
        else batches
    )
    model = build_seeded(build, config.seed)
    cache = cache if cache is not None else ResultCache()
    k = cache.key(key, config, source_digest(source))
    hit = cache.load(k, model)
    if hit is not None:
        return model.to(device).eval(), hit
    checkpoint = cache.checkpoint_path(k)
    result = train(
        model,
        source,
        loss_fn,
        config,
        device=device,
        progress=progress,
        desc=desc,
        checkpoint_path=checkpoint,
    )
    cache.store(k, model, result)
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    return model, result
