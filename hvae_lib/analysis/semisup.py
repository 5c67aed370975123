r"""Generation, traversals, interventions and evaluation of the semi-supervised models.

The procedures follow the authors' code [SF:L476–595, L950–985, L1535–1606]; [SF:L…] are lines
of ``examples/vae/semafo_final.py`` in the authors' repository trungnt13/odin-ai at commit
``9c6986a``.

* :func:`conditional_samples` (:math:`y\to u\to z_0\to z_1\to x`), :func:`prior_traversal`
  (:math:`\pm3\sigma` of :math:`p(z_0\mid u)`), :func:`intervene_z1` (:math:`z_0` held fixed,
  :math:`z_1` prior dimensions traversed) and :func:`posterior_traversal`;
  :func:`z1_kl_per_dim` (which :math:`z_1` dimensions are used) and :func:`traversal_smoothness`.
* :func:`evaluate_semisupervised` (unbiased test ELBO with :math:`y` latent, label accuracies).

Used in: :ref:`ch-semafovae`
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import check_generator
from ..distributions import gaussian_kl, split_blocks
from ..models.m2 import M2VAE
from ..models.semafo import SemafoVAE
from ..objectives.m2 import M2LossConfig
from ..objectives.semafo import SemafoLossConfig

__all__ = [
    "conditional_samples",
    "reconstructions",
    "prior_traversal",
    "intervene_z1",
    "z1_kl_per_dim",
    "traversal_smoothness",
    "posterior_traversal",
    "SemiSupervisedEvaluation",
    "evaluate_semisupervised",
]


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def conditional_samples(
    model: nn.Module,
    factors: Any,
    generator: torch.Generator | None = None,
    *,
    mean: bool = False,
    batch_size: int = 512,
) -> torch.Tensor:
    r"""Controllable generation: mean images ``[N, C, H, W]`` for requested factors ``[N, K]``.

    SemafoVAE: :math:`y\to u\sim q(u|y)\to z_0\sim p(z_0|u)\to z_1\sim p(z_1|z_0,u)\to\mathbb E[x]`
    (the same :math:`u` at both levels [ours]); M2: :math:`z\sim\mathcal N(0,I)`,
    :math:`\mathbb E[x\mid y,z]`. ``mean=True`` takes every latent at its mean; otherwise the
    latents are drawn from ``generator``, a ``torch.Generator`` on the model's device (required
    then: a ``TypeError`` for ``None``, so no draw falls back to the global RNG).

    Used in: :ref:`ch-semafovae`
    """
    if not mean:
        check_generator(generator, _device(model))
    f = torch.as_tensor(np.asarray(factors), dtype=torch.long)
    model.eval()
    out = []
    for s in range(0, len(f), batch_size):
        y = f[s : s + batch_size].to(_device(model))
        kw = (
            dict(sample_u=not mean, sample_z0=not mean, sample_z1=not mean)
            if hasattr(model, "prior_z0")
            else dict(sample_z=not mean)
        )
        out.append(model.generate(y, generator, **kw)["images"].cpu())
    return torch.cat(out) if out else torch.zeros(0)


@torch.no_grad()
def reconstructions(model: nn.Module, images: Any, *, batch_size: int = 512) -> torch.Tensor:
    r"""Mean reconstructions ``[N, C, H, W]`` of images ``[N, C, H, W]``, every latent at its mean.

    SemafoVAE: :math:`\mathbb E[x\mid z_0=\mathbb E q(z_0|x)]`; SemafoHVAE: both posterior means,
    top-down; M2: :math:`\mathbb E[x\mid \hat y, z]` with :math:`\hat y=\arg\max q(y|x)` and
    :math:`z` the mean of :math:`q(z|x,\hat y)`; a plain VAE: the decoder at the posterior mean.
    Scored against the images' own factors they give a model's controllability ceiling: what its
    decoder can draw when the code is right.

    Used in: :ref:`ch-semafovae`
    """
    x_all = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
    if x_all.ndim != 4:
        raise ValueError(f"images must be [N, C, H, W], got shape {tuple(x_all.shape)}")
    model.eval()
    dev = _device(model)
    out = []
    for s in range(0, len(x_all), batch_size):
        x = x_all[s : s + batch_size].to(dev).float()
        if isinstance(model, M2VAE):
            feat = model.features(x)
            y_hat = model.as_one_hot(model.label_indices(model.classifier(feat)))
            logits = model.decode(model.encode_z(feat, y_hat)[0], y_hat)
            out.append(torch.sigmoid(logits).cpu())
        elif isinstance(model, SemafoVAE):
            means = model.posterior_means(x)  # SemafoHVAE: [z1, z0], bottom-up
            z = [means[-1], means[0]] if isinstance(means, list) else [means]
            out.append(model.mean_image(*z).cpu())
        elif hasattr(model, "encode") and hasattr(model, "mean_image"):
            out.append(model.mean_image(model.encode(x)[0]).cpu())
        else:
            raise TypeError(f"cannot reconstruct with a {type(model).__name__}")
    return torch.cat(out) if out else torch.zeros(0)


def _grid(num_points: int, k: float) -> torch.Tensor:
    if int(num_points) < 2:
        raise ValueError(f"num_points must be >= 2, got {num_points}")
    if not k > 0:
        raise ValueError(f"traversal range k must be positive, got {k}")
    return torch.linspace(-float(k), float(k), int(num_points))


@torch.no_grad()
def prior_traversal(
    model: nn.Module,
    factors: Any,
    *,
    num_dims: int | None = None,
    k: float = 3.0,
    num_points: int = 11,
) -> dict[str, Any]:
    r"""Traverse :math:`z_0` dimensions of the controllable prior :math:`p(z_0\mid u)`.

    :math:`u=\mathbb E\,q(u\mid y)` for the requested factors, centre :math:`\mu=\mathbb E\,p(z_0\mid u)`;
    dimensions ordered by prior std, descending; each traversed over :math:`\mu_d\pm k\sigma_d`
    (authors ±3σ [SF:L1535–1606]; ``k=3`` [ours]). HVAE: :math:`z_1` at its prior mean.

    Parameters
    ----------
    factors : one label configuration ``[K]`` (factor indices).

    Returns
    -------
    dict: ``images`` ``[num_dims, num_points, C, H, W]``, ``dims`` ``[num_dims]``, ``std`` ``[num_dims]``,
    ``offsets`` ``[num_points]`` (in units of σ).


    Used in: :ref:`ch-semafovae`
    """
    model.eval()
    y = torch.as_tensor(np.asarray(factors), dtype=torch.long).reshape(1, -1).to(_device(model))
    u = model.encode_u(model.as_one_hot(y))[0]
    mu, lv = model.prior_z0(u)
    std = torch.exp(0.5 * lv)[0]
    order = torch.argsort(std, descending=True)[: num_dims or model.latent_dim]
    grid = _grid(num_points, k).to(mu)
    rows = []
    for d in order:
        z = mu.repeat(len(grid), 1)
        z[:, d] = mu[0, d] + grid * std[d]
        rows.append(model.mean_image(z, u=u.repeat(len(grid), 1), sample_z1=False).cpu())
    return {
        "images": torch.stack(rows),
        "dims": order.cpu(),
        "std": std[order].cpu(),
        "offsets": grid.cpu(),
    }


@torch.no_grad()
def intervene_z1(
    model: nn.Module,
    factors: Any,
    *,
    num_dims: int = 8,
    k: float = 3.0,
    num_points: int = 11,
    dims: Sequence[int] | None = None,
) -> dict[str, Any]:
    r"""Intervention at the :math:`z_1` level, :math:`z_0` held fixed (the authors' ``prior1_traverse``).

    :math:`u=\mathbb E\,q(u|y)`, :math:`z_0=\mathbb E\,p(z_0|u)` fixed; the ``num_dims``
    (flattened) dimensions of :math:`p(z_1\mid z_0,u)` with the largest std are traversed over
    :math:`\pm k\sigma`, the others at the prior mean (the authors' ordering). ``dims`` gives the
    flat indices to traverse instead, e.g. the dimensions with the largest KL from
    :func:`z1_kl_per_dim`: a collapsed dimension has the largest prior std and no effect on the
    image. Needs a :class:`~hvae_lib.models.semafo.SemafoHVAE`.

    Returns
    -------
    dict: ``images`` ``[num_dims, num_points, C, H, W]``, ``dims`` (flat indices), ``std``,
    ``offsets``, and ``base`` ``[C, H, W]`` (the image at the prior means).


    Used in: :ref:`ch-semafovae`
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
        order = torch.argsort(std_f, descending=True)[: int(num_dims)]
    else:
        order = torch.as_tensor(list(dims), dtype=torch.long, device=std_f.device)
        if order.numel() == 0 or bool((order < 0).any()) or bool((order >= std_f.numel()).any()):
            raise ValueError(f"dims must be non-empty flat indices of z1 in [0, {std_f.numel()})")
    grid = _grid(num_points, k).to(mu1)
    rows = []
    for d in order:
        z1 = mu_f.repeat(len(grid), 1)
        z1[:, d] = mu_f[d] + grid * std_f[d]
        rows.append(model.mean_image(z0.repeat(len(grid), 1), z1.view(len(grid), *shape)).cpu())
    base = model.mean_image(z0, mu1)[0].cpu()
    return {
        "images": torch.stack(rows),
        "dims": order.cpu(),
        "std": std_f[order].cpu(),
        "offsets": grid.cpu(),
        "base": base,
    }


@torch.no_grad()
def z1_kl_per_dim(
    model: nn.Module, images: Any, factors: Any, *, batch_size: int = 512
) -> torch.Tensor:
    r"""Mean KL of each (flattened) :math:`z_1` dimension over a dataset: ``[C1·R1·R1]`` nats.

    .. math:: \mathbb E_x\,\mathrm{KL}\big(q(z_{1,d}\mid x,z_0)\,\|\,p(z_{1,d}\mid z_0,u)\big),
              \quad z_0=\mathbb E\,q(z_0\mid x),\ u=\mathbb E\,q(u\mid y),

    with the true labels ``factors`` ``[N, K]``. Dimensions with (near) zero KL are collapsed:
    the decoder ignores them. Needs a :class:`~hvae_lib.models.semafo.SemafoHVAE`.

    Used in: :ref:`ch-semafovae`
    """
    if not getattr(model, "hierarchical", False):
        raise ValueError("z1_kl_per_dim needs a hierarchical model (SemafoHVAE)")
    model.eval()
    dev = _device(model)
    x_all = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
    f_all = torch.as_tensor(np.asarray(factors), dtype=torch.long)
    if len(x_all) != len(f_all) or len(x_all) == 0:
        raise ValueError(
            f"need as many images as label rows (non-empty), got {len(x_all)} and {len(f_all)}"
        )
    total = None
    for s in range(0, len(x_all), int(batch_size)):
        x = x_all[s : s + batch_size].to(dev).float()
        z0 = model.encode(x)[0]
        u = model.encode_u(model.as_one_hot(f_all[s : s + batch_size].to(dev)))[0]
        mq, lq = model.posterior_z1(x, z0)
        _, mp, lp = model.prior_z1(z0, u, sample=False)
        kl = gaussian_kl(mq, lq, mp, lp).flatten(1).sum(0)
        total = kl if total is None else total + kl
    return (total / len(x_all)).cpu()


def traversal_smoothness(images: torch.Tensor) -> float:
    r"""Largest step over the mean step of one traversal ``[num_points, C, H, W]``.

    With :math:`s_i=\operatorname{mean}|x_{i+1}-x_i|` (mean absolute pixel change between
    neighbouring images), returns :math:`\max_i s_i/\operatorname{mean}_i s_i`: 1 when every step
    changes the image equally, ``num_points - 1`` when the whole change happens in one step (a
    jump). Chapter 4 calls a traversal smooth when this is at most 3 [ours].

    Used in: :ref:`ch-semafovae`
    """
    x = torch.as_tensor(images).float()
    if x.ndim < 2 or x.shape[0] < 2:
        raise ValueError(
            f"need a traversal of at least 2 images [num_points, ...], got shape {tuple(x.shape)}"
        )
    steps = (x[1:] - x[:-1]).abs().flatten(1).mean(1)
    mean = float(steps.mean())
    if mean <= 0.0:
        raise ValueError("the traversal does not change the image: smoothness is undefined")
    return float(steps.max()) / mean


@torch.no_grad()
def posterior_traversal(
    model: nn.Module,
    x: torch.Tensor,
    *,
    num_dims: int | None = None,
    k: float = 2.5,
    num_points: int = 11,
    z1: str = "posterior",
) -> dict[str, Any]:
    r"""Traverse the posterior of one image (the authors' ``plot_latents_traverse``).

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
    dict: ``images`` ``[num_dims, num_points, C, H, W]``, ``dims``, ``std`` (the ranges' σ), ``offsets``.


    Used in: :ref:`ch-semafovae`
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
    order = torch.argsort(s_q)[: num_dims or model.latent_dim]
    scale = torch.maximum(s_q, s_p)
    grid = _grid(num_points, k).to(mu_q)
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
    return {
        "images": torch.stack(rows),
        "dims": order.cpu(),
        "std": scale[order].cpu(),
        "offsets": grid.cpu(),
    }


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


    Used in: :ref:`ch-semafovae`
    """

    elbo: float
    log_px: float
    rate: float
    terms: dict[str, float]
    acc_qy: np.ndarray
    acc_py: np.ndarray | None
    mu: np.ndarray


@torch.no_grad()
def evaluate_semisupervised(
    model: nn.Module,
    images: Any,
    factors: Any,
    *,
    generator: torch.Generator,
    batch_size: int = 512,
) -> SemiSupervisedEvaluation:
    r"""Evaluate a semi-supervised model on labelled test data (labels used only for accuracies).

    The ELBO treats the label as latent, as the unlabelled objectives do with unit weights, but
    draws an exact categorical :math:`y\sim q(y\mid\cdot)` (the argmax of a Gumbel-softmax
    sample, ``pseudo_labels="straight_through"``) so that the one-sample estimate is unbiased:

    * SemafoVAE/HVAE:
      :math:`\log p(x|z)+\log p(y|u)-[\log q(z_0|x)-\log p(z_0|u)]-\mathrm{KL}_u-\mathrm{KL}_{z_1}+H[q(y|z_0)]`,
      with the one-sample :math:`z_0` term (``mc_kl=True``), because :math:`u` depends on the
      :math:`z_0` sample through :math:`y`;
    * M2: :math:`\log p(x|y,z)+\log p(y)-\mathrm{KL}(q(z|x,y)\|p(z))+H[q(y|x)]`.

    Parameters
    ----------
    images : ``[N, C, H, W]``; factors : ``[N, K]`` integer indices; generator : a
    ``torch.Generator`` on the model's device, from which every draw comes, batch after batch.


    Used in: :ref:`ch-semafovae`
    """
    x_all = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
    f_all = torch.as_tensor(np.asarray(factors), dtype=torch.long)
    if x_all.ndim != 4 or f_all.ndim != 2 or len(x_all) != len(f_all) or len(x_all) == 0:
        raise ValueError(
            f"need non-empty images [N, C, H, W] and factors [N, K] with the same N; got "
            f"{tuple(x_all.shape)}, {tuple(f_all.shape)}"
        )
    is_semafo = isinstance(model, SemafoVAE)
    if not is_semafo and not isinstance(model, M2VAE):
        raise ValueError(
            f"model must be a SemafoVAE/SemafoHVAE or M2VAE, got {type(model).__name__}"
        )
    model.eval()
    dev = _device(model)
    gen = check_generator(generator, dev)
    lc: Any = (
        SemafoLossConfig(pseudo_labels="straight_through", mc_kl=True)
        if is_semafo
        else M2LossConfig(hard=True)
    )
    sums: dict[str, float] = {}
    hits_q = np.zeros(len(model.factor_sizes))
    hits_p = np.zeros(len(model.factor_sizes))
    mus = []
    for s in range(0, len(x_all), int(batch_size)):
        x = x_all[s : s + batch_size].to(dev).float()
        f = f_all[s : s + batch_size].to(dev)
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
        hits_q += (
            (torch.stack([b.argmax(-1) for b in split_blocks(qy, model.factor_sizes)], -1) == f)
            .sum(0)
            .cpu()
            .numpy()
        )
        for k, v in {"elbo": elbo, **out.terms()}.items():
            sums[k] = sums.get(k, 0.0) + float(v.sum())
        mus.append(mu.cpu().numpy().astype(np.float64))
    n = len(x_all)
    terms = {k: v / n for k, v in sums.items()}
    elbo_mean, log_px = terms.pop("elbo"), terms["log_px"]
    return SemiSupervisedEvaluation(
        elbo=elbo_mean,
        log_px=log_px,
        rate=log_px - elbo_mean,
        terms=terms,
        acc_qy=hits_q / n,
        acc_py=hits_p / n if is_semafo else None,
        mu=np.concatenate(mus),
    )
