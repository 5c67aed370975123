r"""Semi-supervised training of SemafoVAE and M2: labelled subsets, batches, the trainers.

* :func:`labelled_subset`: the fixed labelled subset, chosen once with its own seed (authors:
  seed 1) and stratified by one or more factors [``odin/fuel/image_data/_base.py:256–380``].
* :func:`batch_composition` and :class:`SemiSupervisedBatches`: at a label fraction
  :math:`\le 0.1` every batch of 64 holds :math:`\lceil 0.1\cdot64\rceil = 7` labelled and 57
  unlabelled examples (fixed oversampling); above 0.1 the two are mixed at their natural rate
  (semafovae.md §2.7). Each pool is drawn epoch-wise from its own seeded generator.
* :func:`train_semisupervised` / :func:`fit_semisupervised`: Adam, a supervised-only warm-up
  (``loss_config.warmup_steps``), gradient-norm clipping, the non-finite guard and the
  ``tqdm.auto`` bar of :func:`hvae_lib.train.train`, returning its :class:`~hvae_lib.train.TrainResult`
  (``fit_*`` adds the :class:`~hvae_lib.train.ResultCache`).
* :func:`train_label_vae`: the label VAE :math:`y\leftrightarrow u` alone.

Generation, traversals and evaluation of the trained models are in :mod:`hvae_lib.analysis.semisup`;
chapter 4's settings and data in :mod:`hvae_lib.experiments.ch04_semafovae`.

The labelled examples' labels are integer factor indices ``[N, K]``; models turn them into the
concatenated one-hot :math:`y`. Unlabelled examples are the training examples outside the
labelled subset (their labels are never read).

Used in: book/04_semafovae.md
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..config import ConfigBase
from ..distributions import gaussian_kl, one_hot_accuracy, reparameterise, soft_log_likelihood
from ..objectives.m2 import M2LossConfig, m2_loss
from ..objectives.semafo import SemafoLossConfig, semafo_loss
from .loop import ResultCache, TrainConfig, TrainResult

__all__ = [
    "SemiSupervisedConfig", "labelled_subset", "batch_composition", "SemiSupervisedBatches",
    "train_semisupervised", "fit_semisupervised", "train_label_vae",
]


def _check_fraction(fraction: float) -> float:
    f = float(fraction)
    if not (0.0 < f <= 1.0):
        raise ValueError(f"label fraction must be in (0, 1], got {fraction}")
    return f


@dataclass(frozen=True)
class SemiSupervisedConfig(ConfigBase):
    """Semi-supervised training settings.

    Attributes
    ----------
    train : optimiser settings (steps, batch size, Adam lr, clip, seed, logging).
    label_fraction : labelled share of the training set, in (0, 1]; authors 10% on dSprites.
    label_seed : seed of the labelled subset (authors 1; independent of ``train.seed``).
    stratify : factor columns whose joint classes stratify the subset (default: shape).

    Used in: book/04_semafovae.md
    """

    train: TrainConfig = field(default_factory=TrainConfig)
    label_fraction: float = 0.1
    label_seed: int = 1
    stratify: tuple[int, ...] = (0,)

    _nested = {"train": TrainConfig}

    def __post_init__(self) -> None:
        _check_fraction(self.label_fraction)
        if int(self.label_seed) < 0:
            raise ValueError(f"label_seed must be >= 0, got {self.label_seed}")


def labelled_subset(labels: Any, fraction: float, seed: int = 1, stratify: Sequence[int] | None = (0,)) -> np.ndarray:
    r"""The fixed labelled subset: sorted indices of :math:`\mathrm{round}(fN)` examples.

    Stratified: the strata are the distinct rows of ``labels[:, stratify]`` (or of a 1-D class
    vector); each stratum gets its proportional share by the largest-remainder method (at least
    one example per stratum when the budget allows), drawn without replacement by a
    ``numpy.random.default_rng(seed)``. Deterministic for a given input and seed.

    Parameters
    ----------
    labels : ``[N]`` class labels or ``[N, K]`` factor indices.
    fraction : :math:`f\in(0,1]`.
    seed : the subset's own seed (authors: 1).
    stratify : factor columns defining the strata (``None``: no stratification).

    Returns
    -------
    ``int64 [n_l]`` sorted indices, :math:`n_l=\max(1,\mathrm{round}(fN))`.

    Used in: book/04_semafovae.md
    """
    f = _check_fraction(fraction)
    lab = np.asarray(labels)
    if lab.ndim == 1:
        lab = lab[:, None]
        cols: list[int] = [0] if stratify is not None else []
    else:
        if lab.ndim != 2:
            raise ValueError(f"labels must be [N] or [N, K], got shape {lab.shape}")
        cols = [int(c) for c in stratify] if stratify is not None else []
        for c in cols:
            if not 0 <= c < lab.shape[1]:
                raise ValueError(f"stratify column {c} out of range for {lab.shape[1]} factors")
    n = lab.shape[0]
    if n == 0:
        raise ValueError("labels is empty")
    n_l = max(1, int(round(f * n)))
    rng = np.random.default_rng(int(seed))
    if not cols:
        return np.sort(rng.choice(n, size=n_l, replace=False)).astype(np.int64)
    _, strata = np.unique(lab[:, cols], axis=0, return_inverse=True)
    strata = strata.reshape(-1)
    counts = np.bincount(strata)
    quota = counts * n_l / n
    take = np.floor(quota).astype(np.int64)
    if n_l >= len(counts):
        take = np.maximum(take, 1)
    rest = n_l - int(take.sum())
    if rest > 0:
        order = np.argsort(-(quota - np.floor(quota)), kind="stable")
        for s in order:
            if rest == 0:
                break
            if take[s] < counts[s]:
                take[s] += 1
                rest -= 1
    elif rest < 0:  # too many from the at-least-one rule: trim the largest strata
        for s in np.argsort(-take, kind="stable"):
            while rest < 0 and take[s] > 1:
                take[s] -= 1
                rest += 1
    chosen = [rng.choice(np.flatnonzero(strata == s), size=int(take[s]), replace=False) for s in range(len(counts))]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def batch_composition(label_fraction: float, batch_size: int = 64) -> tuple[int, int]:
    r"""``(n_labelled, n_unlabelled)`` per batch [``_base.py:256–380``, ``utils.py:495–520``].

    :math:`f\le0.1`: :math:`n_s=\lceil 0.1B\rceil` (7 of 64); :math:`f>0.1`: :math:`n_s=\mathrm{round}(fB)`
    (natural rate); :math:`f=1`: all labelled.

    Used in: book/04_semafovae.md
    """
    f = _check_fraction(label_fraction)
    b = int(batch_size)
    if b <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    n_s = math.ceil(0.1 * b) if f <= 0.1 else int(round(f * b))
    n_s = min(max(n_s, 1), b)
    return n_s, b - n_s


class _Pool:
    """Epoch-wise permutations of an index array from a seeded CPU generator."""

    def __init__(self, idx: np.ndarray, seed: int) -> None:
        self.idx = torch.as_tensor(np.asarray(idx, dtype=np.int64))
        self.gen = torch.Generator().manual_seed(int(seed))
        self.perm = torch.randperm(len(self.idx), generator=self.gen)
        self.pos = 0

    def take(self, k: int) -> torch.Tensor:
        out = []
        while k > 0:
            if self.pos >= len(self.perm):
                self.perm = torch.randperm(len(self.idx), generator=self.gen)
                self.pos = 0
            m = min(k, len(self.perm) - self.pos)
            out.append(self.idx[self.perm[self.pos:self.pos + m]])
            self.pos += m
            k -= m
        return torch.cat(out) if out else self.idx[:0]


class SemiSupervisedBatches:
    """Batches of ``n_l`` labelled + ``n_u`` unlabelled indices (see :func:`batch_composition`).

    Parameters
    ----------
    n : number of training examples (indices ``0..n-1``).
    labelled_idx : the fixed labelled subset (:func:`labelled_subset`).
    batch_size : total batch size.
    seed : seeds the two pools (labelled ``seed``, unlabelled ``seed + 1``).
    label_fraction : sets the composition; default ``len(labelled_idx) / n``.

    ``next()`` returns ``(idx_labelled [n_l], idx_unlabelled [n_u])`` int64 tensors.

    Used in: book/04_semafovae.md
    """

    def __init__(self, n: int, labelled_idx: Any, batch_size: int = 64, seed: int = 0,
                 label_fraction: float | None = None) -> None:
        lab = np.unique(np.asarray(labelled_idx, dtype=np.int64))
        if len(lab) == 0 or lab.min() < 0 or lab.max() >= n:
            raise ValueError(f"labelled_idx must be non-empty indices in [0, {n})")
        unl = np.setdiff1d(np.arange(n, dtype=np.int64), lab)
        frac = len(lab) / n if label_fraction is None else label_fraction
        self.n_labelled, self.n_unlabelled = batch_composition(frac, batch_size)
        if len(unl) == 0:
            self.n_labelled, self.n_unlabelled = int(batch_size), 0
        self.labelled = _Pool(lab, seed)
        self.unlabelled = _Pool(unl, seed + 1) if len(unl) else None

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next ``(labelled, unlabelled)`` index tensors."""
        il = self.labelled.take(self.n_labelled)
        iu = self.unlabelled.take(self.n_unlabelled) if self.unlabelled is not None else il[:0]
        return il, iu


def _loss_function(model: nn.Module, loss_config: Any) -> Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]]:
    if isinstance(loss_config, SemafoLossConfig):
        return semafo_loss
    if isinstance(loss_config, M2LossConfig):
        return m2_loss
    raise ValueError(f"loss_config must be a SemafoLossConfig or M2LossConfig, got {type(loss_config).__name__}")


def train_semisupervised(model: nn.Module, images: Any, factors: Any, config: SemiSupervisedConfig, loss_config: Any,
                         *, labelled_idx: Any | None = None, device: str | torch.device | None = None,
                         progress: bool = True, desc: str = "semi-supervised") -> TrainResult:
    r"""Train a SemafoVAE/SemafoHVAE or M2 model in place; returns a :class:`~hvae_lib.train.TrainResult`.

    Step :math:`t<` ``loss_config.warmup_steps``: loss :math:`-\overline{\mathcal L_{\text{sup}}}`
    on the labelled sub-batch only; afterwards :math:`-\overline{\mathcal L_{\text{sup}}}-\overline{\mathcal L_{\text{uns}}}`
    (semafovae.md §2.5). Adam(lr), global gradient-norm clip ``train.max_grad_norm``, and the
    non-finite guard of :func:`hvae_lib.train.train` (a step with a NaN/inf loss or gradient
    norm is skipped and counted). The history records running means of every logged term.

    Parameters
    ----------
    model : a :class:`~hvae_lib.models.SemafoVAE` / ``SemafoHVAE`` (with a
        :class:`~hvae_lib.objectives.SemafoLossConfig`) or :class:`~hvae_lib.models.M2VAE` (with an
        :class:`~hvae_lib.objectives.M2LossConfig`).
    images : ``[N, C, H, W]`` training images (uint8 or float, array or tensor).
    factors : ``[N, K]`` integer factor indices (only the labelled rows are read).
    config : :class:`SemiSupervisedConfig`.
    labelled_idx : override the subset (default :func:`labelled_subset` of ``config``).

    Used in: book/04_semafovae.md
    """
    loss_fn = _loss_function(model, loss_config)
    tc = config.train
    x_all = torch.as_tensor(images)
    y_all = torch.as_tensor(np.asarray(factors), dtype=torch.long)
    if x_all.ndim != 4 or y_all.ndim != 2 or x_all.shape[0] != y_all.shape[0]:
        raise ValueError(f"need images [N, C, H, W] and factors [N, K] with the same N; got "
                         f"{tuple(x_all.shape)}, {tuple(y_all.shape)}")
    n = int(x_all.shape[0])
    if labelled_idx is None:
        labelled_idx = labelled_subset(y_all.numpy(), config.label_fraction, config.label_seed, config.stratify)
    batches = SemiSupervisedBatches(n, labelled_idx, tc.batch_size, tc.seed, config.label_fraction)
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    model.to(device)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=tc.lr)
    gen = torch.Generator(device=device).manual_seed(tc.seed + 1)  # reparameterisation / Gumbel noise
    warmup = int(getattr(loss_config, "warmup_steps", 0))
    history: dict[str, list[float]] = {"step": []}
    sums: dict[str, float] = {}
    count = skipped = 0
    t0 = time.perf_counter()

    def batch(idx: torch.Tensor) -> torch.Tensor:
        x = x_all[idx].to(device)
        return x if x.is_floating_point() else x.float()

    bar = tqdm(total=tc.steps, desc=desc, disable=not progress, leave=False, mininterval=1.0)
    for step in range(1, tc.steps + 1):
        il, iu = batches.next()
        x_l, y_l = batch(il), y_all[il].to(device)
        x_u = batch(iu) if len(iu) else None
        loss, logs = loss_fn(model, x_l, y_l, x_u, loss_config, supervised_only=step <= warmup, generator=gen)
        optimizer.zero_grad(set_to_none=True)
        ok = bool(torch.isfinite(loss))
        if ok:
            loss.backward()
            max_norm = tc.max_grad_norm if tc.max_grad_norm is not None else float("inf")
            ok = bool(torch.isfinite(torch.nn.utils.clip_grad_norm_(params, max_norm)))
        if ok:
            optimizer.step()
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            count += 1
        else:
            optimizer.zero_grad(set_to_none=True)
            skipped += 1
        bar.update(1)
        if step % tc.log_every == 0 or step == tc.steps:
            if count:
                history["step"].append(float(step))
                for k, v in sums.items():
                    history.setdefault(k, []).extend([float("nan")] * (len(history["step"]) - 1 - len(history.get(k, []))))
                    history[k].append(v / count)
                bar.set_postfix(loss=f"{sums.get('loss', 0.0) / count:.1f}", refresh=False)
            sums, count = {}, 0
    bar.close()
    model.eval()
    return TrainResult(history=history, steps_done=tc.steps, skipped_steps=skipped, seconds=time.perf_counter() - t0)


def fit_semisupervised(build: Callable[[], nn.Module], images: Any, factors: Any, config: SemiSupervisedConfig,
                       loss_config: Any, *, key: Any, cache: ResultCache | None = None,
                       device: str | torch.device = "cpu", progress: bool = True,
                       desc: str = "semi-supervised") -> tuple[nn.Module, TrainResult]:
    """Build (seeded by ``config.train.seed``), then load from the :class:`~hvae_lib.train.ResultCache` or train.

    ``key`` holds what else determines the result (the model config); the cache key also
    covers ``config``, ``loss_config``, the images, the factors and the library version.

    Used in: book/04_semafovae.md
    """
    torch.manual_seed(config.train.seed)
    model = build()
    cache = cache if cache is not None else ResultCache()
    k = cache.key(key, config, loss_config, torch.as_tensor(images), torch.as_tensor(np.asarray(factors)))
    hit = cache.load(k, model)
    if hit is not None:
        return model.to(device).eval(), hit
    result = train_semisupervised(model, images, factors, config, loss_config, device=device, progress=progress,
                                  desc=desc)
    cache.store(k, model, result)
    return model, result


# ----------------------------------------------------------------------------- the label VAE alone
def train_label_vae(model: nn.Module, factors: Any, *, gamma_y: float = 10.0, steps: int = 300,
                    batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
                    log_every: int = 25) -> dict[str, list[float]]:
    r"""Train only the label VAE :math:`y\leftrightarrow u` of a SemafoVAE (step 1 of chapter 4).

    Maximises, per example, the label terms of the labelled objective

    .. math:: \gamma_y\log p(y\mid u) - \mathrm{KL}\big(q(u\mid y)\,\|\,\mathcal N(0,I)\big),\qquad u\sim q(u\mid y),

    over the parameters of :math:`q(u\mid y)` and :math:`p(y\mid u)` only; ``gamma_y=10`` is the
    authors' weight [SF: ``DefaultGammaPy``], ``gamma_y=1`` the label VAE's own ELBO of
    :math:`\log p(y)` (which can ignore :math:`u` when the factors are independent: then
    :math:`p(y)` needs no latent, and encoding :math:`y` costs as many nats as it saves).
    Batches are drawn epoch-wise from ``factors`` with a seeded generator; Adam(``lr``).

    Parameters
    ----------
    model : a :class:`~hvae_lib.models.SemafoVAE` (or ``SemafoHVAE``); trained in place.
    factors : ``[N, K]`` integer factor indices (the labelled examples).

    Returns
    -------
    history: ``step``, ``objective``, ``log_py_u``, ``kl_u`` (running means) and ``acc_py`` (mean
    per-factor accuracy of :math:`\arg\max p(y\mid u)` at :math:`u\sim q(u|y)`).

    Used in: book/04_semafovae.md
    """
    if int(steps) <= 0 or int(batch_size) <= 0 or int(log_every) <= 0 or not lr > 0 or not gamma_y >= 0:
        raise ValueError(f"need positive steps, batch_size, log_every, lr and gamma_y >= 0; got {steps}, "
                         f"{batch_size}, {log_every}, {lr}, {gamma_y}")
    f = torch.as_tensor(np.asarray(factors), dtype=torch.long)
    if f.ndim != 2 or len(f) == 0:
        raise ValueError(f"factors must be a non-empty [N, K] array, got shape {tuple(f.shape)}")
    device = next(model.parameters()).device
    params = [p for m in (model.label_encoder, model.label_head, model.label_decoder) for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    pool = _Pool(np.arange(len(f)), seed)
    gen = torch.Generator(device=device).manual_seed(seed + 1)
    history: dict[str, list[float]] = {"step": [], "objective": [], "log_py_u": [], "kl_u": [], "acc_py": []}
    sums = np.zeros(4)
    count = 0
    model.train()
    for step in range(1, int(steps) + 1):
        y = model.as_one_hot(f[pool.take(min(int(batch_size), len(f)))].to(device))
        mu, lv = model.encode_u(y)
        u = reparameterise(mu, lv, gen)
        logits = model.py_logits(u)
        log_py = soft_log_likelihood(logits, y, model.factor_sizes)
        kl = gaussian_kl(mu, lv).sum(-1)
        objective = (float(gamma_y) * log_py - kl).mean()
        opt.zero_grad(set_to_none=True)
        (-objective).backward()
        opt.step()
        sums += [float(objective.detach()), float(log_py.detach().mean()), float(kl.detach().mean()),
                 float(one_hot_accuracy(logits.detach(), y, model.factor_sizes))]
        count += 1
        if step % int(log_every) == 0 or step == int(steps):
            history["step"].append(float(step))
            for k, v in zip(("objective", "log_py_u", "kl_u", "acc_py"), sums / count):
                history[k].append(float(v))
            sums[:] = 0.0
            count = 0
    model.eval()
    return history
