r"""Evaluating trained VAEs: rate, distortion, active units, the β sweep; optimal critics and
binary chains for the information chapters.

Used in: :ref:`ch-rate-distortion`, :ref:`ch-transitive`, :ref:`ch-semafovae`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..config import ConfigBase, check_generator
from ..distributions import diag_gaussian, standard_normal_like
from ..info.estimators import infonce_lower_bound, nwj_lower_bound
from ..info.gaussian import correlation_from_mi, gaussian_pair_sampler
from ..models.vae import BetaVAE, VAEConfig, VAEOutput
from ..objectives.vae import vae_loss
from ..train.loop import ResultCache, TrainConfig, TrainResult, fit


@dataclass
class VAEEvaluation:
    """Per-example terms of a VAE on a dataset of ``N`` examples with ``D`` latent dimensions.

    Attributes
    ----------
    distortion, rate : ``[N]`` nats (distortion at one posterior sample, rate analytic).
    rate_per_dim : ``[N, D]`` nats.
    mu : ``[N, D]`` posterior means.
    """

    distortion: np.ndarray
    rate: np.ndarray
    rate_per_dim: np.ndarray
    mu: np.ndarray

    @property
    def mean_distortion(self) -> float:
        """:math:`\\mathbb E_x[D(x)]` in nats."""
        return float(self.distortion.mean())

    @property
    def mean_rate(self) -> float:
        """:math:`\\mathbb E_x[R(x)]` in nats."""
        return float(self.rate.mean())

    @property
    def elbo(self) -> float:
        """:math:`\\mathbb E_x[\\mathrm{ELBO}(x)] = -(D + R)` in nats."""
        return -(self.mean_distortion + self.mean_rate)


_EVALUATION_TERMS: tuple[str, ...] = ("distortion", "rate", "rate_per_dim", "mu")


def _concat_terms(outputs: Iterable[VAEOutput], keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Concatenate the per-example fields ``keys`` (``[B, ...]`` tensors) of a stream of model
    outputs along the batch into ``[N, ...]`` CPU arrays."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for out in outputs:
        for k in parts:
            parts[k].append(getattr(out, k).cpu().numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


@torch.no_grad()
def evaluate_vae(
    model: BetaVAE, data: torch.Tensor, *, generator: torch.Generator, batch_size: int = 512
) -> VAEEvaluation:
    """Run ``model`` over ``data`` ``[N, C, H, W]`` in batches and collect per-example terms.

    The posterior sample of each example is drawn from ``generator``, a ``torch.Generator`` on
    the model's device, batch after batch, so the same generator state gives the same
    evaluation.
    """
    model.eval()
    device = next(model.parameters()).device
    gen = check_generator(generator, device)

    def outputs() -> Iterator[VAEOutput]:
        for start in range(0, data.shape[0], batch_size):
            x = data[start : start + batch_size].to(device)
            x = x if x.is_floating_point() else x.float()
            yield model(x, generator=gen)

    return VAEEvaluation(**_concat_terms(outputs(), _EVALUATION_TERMS))


@torch.no_grad()
def monte_carlo_rate(
    model: BetaVAE,
    data: torch.Tensor,
    *,
    generator: torch.Generator,
    num_samples: int = 64,
    batch_size: int = 256,
) -> tuple[float, float]:
    r"""Monte-Carlo estimate of the mean rate and its standard error.

    .. math::
        \hat R = \frac1N\sum_{n}\frac1S\sum_{s}\big[\log q(z_{ns}\mid x_n) - \log p(z_{ns})\big],
        \quad z_{ns}\sim q(z\mid x_n),

    a check of the analytic KL that :class:`~hvae_lib.models.vae.BetaVAE` reports. ``data``:
    ``[N, C, H, W]``; the samples :math:`z_{ns}` come from ``generator`` (a ``torch.Generator``
    on the model's device). Returns ``(estimate, standard error)`` in nats.
    """
    model.eval()
    device = next(model.parameters()).device
    gen = check_generator(generator, device)
    per_example = []
    for start in range(0, data.shape[0], batch_size):
        x = data[start : start + batch_size].to(device)
        mu, logvar = model.encode(x if x.is_floating_point() else x.float())
        q, p = diag_gaussian(mu, logvar), standard_normal_like(mu)
        eps = torch.randn((num_samples, *mu.shape), generator=gen, device=device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps
        per_example.append((q.log_prob(z) - p.log_prob(z)).mean(0).cpu())
    values = torch.cat(per_example).double()
    return float(values.mean()), float(values.std() / np.sqrt(len(values)))


def empirical_entropy(images: torch.Tensor | np.ndarray) -> tuple[float, int]:
    r"""Entropy of the empirical distribution of a set of binary images, and its support size.

    .. math:: H[p_\text{data}] = -\sum_{x} \tfrac{c_x}{N}\ln\tfrac{c_x}{N},

    where :math:`c_x` counts the copies of image :math:`x` among the :math:`N` (``ln N`` when
    all are distinct). ``images``: ``[N, ...]`` with values in {0, 1}; rows are bit-packed
    before counting, so the full dSprites grid (737,280 × 64 × 64) takes seconds.
    Returns ``(entropy in nats, number of distinct images)``.
    """
    arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if arr.ndim < 2 or arr.shape[0] == 0:
        raise ValueError(f"images must be [N, ...] with N >= 1, got shape {arr.shape}")
    flat = arr.reshape(arr.shape[0], -1)
    # a block of rows at a time, so that the full 64×64 grid needs no full-size temporaries
    # (a bool mask and a uint8 copy of 2.8 GB each); the packed rows take 1/8 of the images
    step = max(1, (1 << 24) // max(1, flat.shape[1]))
    packed = np.empty((flat.shape[0], (flat.shape[1] + 7) // 8), dtype=np.uint8)
    for start in range(0, flat.shape[0], step):
        block = flat[start : start + step]
        if not ((block == 0) | (block == 1)).all():
            raise ValueError("empirical_entropy expects binary images (values 0 and 1)")
        packed[start : start + step] = np.packbits(block.astype(np.uint8, copy=False), axis=1)
    rows = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, counts = np.unique(rows, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum()), int(len(counts))


def active_units(mu: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    r"""Active units (Burda et al. 2016): dimension d is active if
    :math:`\mathrm{Var}_x\big(\mathbb E_{q(z|x)}[z_d]\big) > \delta` (default :math:`\delta = 0.01`).

    ``mu``: ``[N, D]`` posterior means -> boolean mask ``[D]``.
    """
    mu = np.asarray(mu, dtype=np.float64)
    if mu.ndim != 2 or mu.shape[0] < 2:
        raise ValueError(f"mu must be [N, D] with N >= 2, got shape {mu.shape}")
    return mu.var(axis=0) > threshold


@dataclass(frozen=True)
class BetaSweepConfig(ConfigBase):
    """A β sweep: one :class:`.BetaVAE` per β, same architecture, data and optimiser.

    Attributes
    ----------
    betas : the β values (weights of the rate in the loss).
    model : the architecture.
    train : the optimiser settings (shared; every β starts from the same initialisation).
    """

    betas: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0)
    model: VAEConfig = field(default_factory=VAEConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    _nested = {"model": VAEConfig, "train": TrainConfig}


@dataclass
class BetaSweepResult:
    """Models, training histories and evaluations of a β sweep (index-aligned with ``betas``)."""

    betas: list[float]
    models: list[BetaVAE]
    results: list[TrainResult]
    evaluations: list[VAEEvaluation]

    def table(self) -> list[dict[str, float]]:
        """One row per β: mean distortion, rate, ELBO and number of active units."""
        return [
            {
                "beta": b,
                "distortion": e.mean_distortion,
                "rate": e.mean_rate,
                "elbo": e.elbo,
                "active_units": int(active_units(e.mu).sum()),
            }
            for b, e in zip(self.betas, self.evaluations)
        ]


def beta_sweep(
    config: BetaSweepConfig,
    train_data: torch.Tensor,
    eval_data: torch.Tensor,
    *,
    generator: torch.Generator,
    device: str | torch.device = "cpu",
    cache: ResultCache | None = None,
    progress: bool = True,
) -> BetaSweepResult:
    """Train one β-VAE per β (or load it from the cache) and evaluate it on ``eval_data``.

    ``train_data`` / ``eval_data``: ``[N, C, H, W]`` float tensors in ``[0, 1]``. Training is
    seeded by ``config.train.seed`` (every β starts from the same initialisation); the
    evaluations (:func:`evaluate_vae`) draw their posterior samples from ``generator``, a
    ``torch.Generator`` on ``device``, one β after the other.
    """
    check_generator(generator, device)
    models, results, evals = [], [], []
    for beta in config.betas:
        model, res = fit(
            lambda: BetaVAE(config.model),
            train_data,
            vae_loss(beta),
            config.train,
            key=("beta_vae", config.model, float(beta)),
            cache=cache,
            device=device,
            progress=progress,
            desc=f"beta={beta:g}",
        )
        models.append(model)
        results.append(res)
        evals.append(evaluate_vae(model, eval_data, generator=generator))
    return BetaSweepResult(list(map(float, config.betas)), models, results, evals)


def check_rate_distortion_monotone(
    rates: Sequence[float], distortions: Sequence[float], betas: Sequence[float], tol: float = 0.0
) -> bool:
    """True if, as β grows, the rate does not increase and the distortion does not decrease
    (each within ``tol`` nats): the qualitative shape of a rate–distortion sweep."""
    order = np.argsort(betas)
    r = np.asarray(rates)[order]
    d = np.asarray(distortions)[order]
    return bool(np.all(np.diff(r) <= tol) and np.all(np.diff(d) >= -tol))


@torch.no_grad()
def evaluate_with_labels(
    model,
    x: torch.Tensor,
    u: torch.Tensor | None,
    batch_size: int = 512,
    *,
    generator: torch.Generator,
) -> tuple[VAEEvaluation, np.ndarray]:
    """:func:`evaluate_vae` for a standard (``u=None``) or conditional-prior VAE (labels ``u`` ``[N, K]``);
    also returns the posterior log-variances ``[N, D]`` (for the mixtures of
    :func:`hvae_lib.info.aggregate.aggregate_information`). The posterior samples come from
    ``generator``, a ``torch.Generator`` on the model's device.

    Used in: :ref:`ch-transitive`
    """
    device = next(model.parameters()).device
    gen = check_generator(generator, device)
    model.eval()

    def outputs() -> Iterator[VAEOutput]:
        for s in range(0, x.shape[0], batch_size):
            xb = x[s : s + batch_size].to(device).float()
            yield (
                model(xb, generator=gen)
                if u is None
                else model(xb, u[s : s + batch_size].to(device).float(), generator=gen)
            )

    cat = _concat_terms(outputs(), (*_EVALUATION_TERMS, "logvar"))
    logvar = cat.pop("logvar")
    return VAEEvaluation(**cat), logvar


def gaussian_pair_log_ratio(x: torch.Tensor, y: torch.Tensor, mi: float) -> torch.Tensor:
    r"""The optimal critic's log density ratio on all pairs of a batch of Gaussian pairs.

    For the pairs of :func:`~hvae_lib.info.gaussian.gaussian_pair_sampler` (``d`` components with
    correlation :math:`\rho=\sqrt{1-e^{-2I/d}}` each),

    .. math::
        \log\frac{p(x_i,y_j)}{p(x_i)p(y_j)} = -\tfrac d2\log(1-\rho^2)
        - \frac{\rho^2(\lVert x_i\rVert^2 + \lVert y_j\rVert^2) - 2\rho\,x_i^\top y_j}{2(1-\rho^2)}.

    ``x, y``: ``[N, d]`` -> ``[N, N]`` (float64). InfoNCE's optimal critic is this ratio; NWJ's
    is the ratio plus 1 (Poole et al. 2019).

    Used in: :ref:`ch-transitive`
    """
    x, y = x.double(), y.double()
    d = x.shape[1]
    rho = float(correlation_from_mi(float(mi) / d))
    one_m = 1.0 - rho * rho
    sq = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :]
    return -0.5 * d * math.log(one_m) - (rho * rho * sq - 2.0 * rho * x @ y.T) / (2.0 * one_m)


def optimal_critic_values(
    mi: float, dim: int, batch_size: int, num_batches: int, *, generator: torch.Generator
) -> dict[str, np.ndarray]:
    r"""Per-batch InfoNCE and NWJ values of the *analytic optimal critic* on Gaussian pairs.

    With the critic fixed at its optimum the estimators' own bias and variance show without
    any training noise: InfoNCE stays below :math:`\log N` (batch size :math:`N`), NWJ is
    unbiased for :math:`I` but its variance grows quickly with :math:`I` (the density ratio it
    averages over the negative pairs has variance :math:`e^{2I}-1` under :math:`p(x)p(y)`).

    The batches of :func:`~hvae_lib.info.gaussian.gaussian_pair_sampler` are drawn one after
    the other from ``generator``, a CPU ``torch.Generator``. Returns
    ``{"infonce": [num_batches], "nwj": [num_batches]}`` in nats.

    Used in: :ref:`ch-transitive`
    """
    sampler = gaussian_pair_sampler(float(mi), int(dim))
    gen = check_generator(generator, "cpu")
    nce, nwj = np.empty(num_batches), np.empty(num_batches)
    for b in range(int(num_batches)):
        x, y = sampler(int(batch_size), gen)
        r = gaussian_pair_log_ratio(x, y, mi)
        nce[b] = float(infonce_lower_bound(r))
        nwj[b] = float(nwj_lower_bound(r + 1.0))
    return {"infonce": nce, "nwj": nwj}


def binary_symmetric_chain(eps_ab: float, eps_bc: float) -> np.ndarray:
    r"""Joint table ``p[a, b, c]`` (2×2×2) of a binary symmetric Markov chain :math:`A\to B\to C`.

    :math:`A` is a fair bit, :math:`B` flips it with probability :math:`\varepsilon_{AB}` and
    :math:`C` flips :math:`B` with probability :math:`\varepsilon_{BC}`. With values
    :math:`\pm1` the correlations are :math:`1-2\varepsilon`, and
    :math:`\mathrm{corr}(A,C)=(1-2\varepsilon_{AB})(1-2\varepsilon_{BC})`, as in the Gaussian
    chain with :math:`\rho = 1-2\varepsilon`.

    Used in: :ref:`ch-transitive`
    """
    for e in (eps_ab, eps_bc):
        if not 0.0 <= e <= 1.0:
            raise ValueError(f"flip probabilities must be in [0, 1], got {e}")
    flip1 = np.array([[1 - eps_ab, eps_ab], [eps_ab, 1 - eps_ab]])
    flip2 = np.array([[1 - eps_bc, eps_bc], [eps_bc, 1 - eps_bc]])
    return 0.5 * flip1[:, :, None] * flip2[None, :, :]
