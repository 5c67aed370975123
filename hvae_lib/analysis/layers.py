r"""The lower layer :math:`z_1` of a two-layer hierarchical VAE: codes and label information.

* :func:`lower_layer_codes` — one ancestral posterior sample per point,
  :math:`z_2\sim q(z_2\mid x)`, :math:`z_1\sim q(z_1\mid z_2, x)`, with the parameters of
  both posteriors (for probes on :math:`\mu_1`, e.g.
  :func:`~hvae_lib.analysis.downstream.probe_accuracy`).
* :func:`conditional_label_information` — a Monte-Carlo estimate of
  :math:`I_q(y; z_1\mid z_2)` by the chain rule
  :math:`I(y; z_1, z_2) - I(y; z_2)`, both terms with the plug-in mixture estimator of
  :func:`~hvae_lib.analysis.downstream.label_information` (**our formalisation** of the
  information the lower layer adds about the label; the paper measures only the top layer).

Both functions are written against a narrow interface, :class:`LowerLayerPosterior`
(:math:`q(z_2|x)`, and :math:`q(z_1|z_2,x)` factorised as a feature of :math:`x`, a
feature of :math:`z_2` and a head on the pair), so that the :math:`N^2` pairs
:math:`(x_i, z_{2,j})` of the estimator cost one head evaluation each instead of a full
network pass. :func:`lower_layer_posterior` builds it from a two-layer
:class:`~hvae_lib.models.hierarchical.HierarchicalVAE`, both inference variants:

``"separate"``
    :math:`q(z_1|z_2,x)` is ``head(merge([x_branch(x) ‖ z_branch(z_2)]))``: the x-feature is
    ``x_branch(x)``, the z-feature ``z_branch(z_2)``, the pair head ``merge`` then ``head``.
``"ladder"``
    the x-feature is the bottom-up estimate :math:`(\hat\mu_1,\hat\sigma_1)` computed from
    :math:`d(x)`, the z-feature the conditional prior :math:`p(z_1|z_2)`, the pair head their
    precision-weighted merge (closed form, no network).

Randomness is passed in: the posterior samples come from ``generator``, a
``torch.Generator`` on the model's device.

Used in: :ref:`ch-rate-splitting`
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from ..config import check_generator
from ..models.hierarchical import HierarchicalVAE, precision_weighted_merge

__all__ = [
    "LowerLayerPosterior",
    "HierarchicalLowerPosterior",
    "lower_layer_posterior",
    "LowerLayerCodes",
    "lower_layer_codes",
    "ConditionalLabelInformation",
    "conditional_label_information",
]

_LOG_2PI = math.log(2.0 * math.pi)


# ----------------------------------------------------------------------------------------------
# the narrow interface
# ----------------------------------------------------------------------------------------------
@runtime_checkable
class LowerLayerPosterior(Protocol):
    r"""What :func:`lower_layer_codes` and :func:`conditional_label_information` need of a model.

    The two-layer inference model :math:`q(z_2\mid x)\,q(z_1\mid z_2, x)` with the lower
    conditional factorised as
    :math:`(\mu_1,\log\sigma_1^2) = \texttt{combine}(\texttt{x\_features}(x),
    \texttt{z\_features}(z_2))`, where ``combine`` acts row by row (row ``k`` of its output
    depends only on row ``k`` of both inputs).

    Attributes
    ----------
    input_shape : ``(C, H, W)`` of the images.
    device, dtype : where and in which precision the networks run (data and noise are moved
        there).

    Methods
    -------
    top(x)
        ``[B, C, H, W]`` -> ``(mu2, logvar2)``, each ``[B, d2]``: :math:`q(z_2\mid x)`.
    x_features(x)
        ``[B, C, H, W]`` -> ``[B, ...]``: the part of :math:`q(z_1|z_2,x)` that sees only
        :math:`x` (computed once per point).
    z_features(z2)
        ``[B, d2]`` -> ``[B, ...]``: the part that sees only :math:`z_2` (once per sample).
    combine(fx, fz)
        paired rows of both features -> ``(mu1, logvar1)``, each ``[B, D1]`` (:math:`z_1`
        flattened, ``D1 = dim z_1``).


    Used in: :ref:`ch-rate-splitting`
    """

    input_shape: tuple[int, int, int]
    device: torch.device
    dtype: torch.dtype

    def top(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def x_features(self, x: torch.Tensor) -> torch.Tensor: ...

    def z_features(self, z2: torch.Tensor) -> torch.Tensor: ...

    def combine(self, fx: torch.Tensor, fz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


class HierarchicalLowerPosterior:
    r""":class:`LowerLayerPosterior` of a two-layer :class:`~hvae_lib.models.hierarchical.HierarchicalVAE`.

    Reuses the model's blocks without copying them (see the module docstring for the split
    of each inference variant); the diagonal pairs reproduce
    :meth:`HierarchicalVAE.forward`'s ``means[0]`` and ``logvars[0]`` (the tests check
    it). ``top`` is :meth:`HierarchicalVAE.top_posterior`.

    Raises
    ------
    ValueError
        For a model with ``L != 2`` layers, or whose posterior block lacks the expected parts.


    Used in: :ref:`ch-rate-splitting`
    """

    def __init__(self, model: HierarchicalVAE) -> None:
        if model.num_layers != 2:
            raise ValueError(f"need a two-layer model (L = 2), got L = {model.num_layers}")
        self.model = model
        self.inference = model.config.inference
        self.input_shape = tuple(int(s) for s in model.config.input_shape)
        p = next(model.parameters())
        self.device, self.dtype = p.device, p.dtype
        block = model.posteriors[0]
        parts = ("x_branch", "z_branch", "merge", "head") if self.inference == "separate" else ()
        missing = [name for name in parts if not hasattr(block, name)]
        if missing:
            raise ValueError(f"the posterior block q(z1|z2,x) lacks {missing}")

    def top(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, C, H, W] -> (mu2, logvar2)``, each ``[B, d2]``."""
        return self.model.top_posterior(x)

    def x_features(self, x: torch.Tensor) -> torch.Tensor:
        """Separate: ``x_branch(x)``; ladder: ``[mu_hat ‖ std_hat]`` along dim 1."""
        block = self.model.posteriors[0]
        if self.inference == "separate":
            return block.x_branch(x)
        mu_hat, std_hat = block(self.model.shared(x))
        return torch.cat([mu_hat, std_hat], dim=1)

    def z_features(self, z2: torch.Tensor) -> torch.Tensor:
        """Separate: ``z_branch(z2)``; ladder: ``[mu_p ‖ std_p]`` of :math:`p(z_1|z_2)`."""
        if self.inference == "separate":
            return self.model.posteriors[0].z_branch(z2)
        mu_p, std_p = self.model.priors[0](z2)
        return torch.cat([mu_p, std_p], dim=1)

    def combine(self, fx: torch.Tensor, fz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Paired rows -> ``(mu1, logvar1)``, each ``[B, D1]``."""
        if self.inference == "separate":
            block = self.model.posteriors[0]
            mu, std = block.head(block.merge(torch.cat([fx, fz], dim=1)))
        else:
            mu_hat, std_hat = fx.chunk(2, dim=1)
            mu_p, std_p = fz.chunk(2, dim=1)
            mu, std = precision_weighted_merge(mu_hat, std_hat, mu_p, std_p)
        return mu.flatten(1), 2.0 * torch.log(std.flatten(1))


def lower_layer_posterior(model: HierarchicalVAE | LowerLayerPosterior) -> LowerLayerPosterior:
    """``model`` itself when it already implements :class:`LowerLayerPosterior`, else
    :class:`HierarchicalLowerPosterior` of it (and ``model.eval()``).

    Raises
    ------
    TypeError
        For anything else.


    Used in: :ref:`ch-rate-splitting`
    """
    if isinstance(model, HierarchicalVAE):
        model.eval()
        return HierarchicalLowerPosterior(model)
    if isinstance(model, LowerLayerPosterior):
        return model
    raise TypeError(
        "model must be a two-layer HierarchicalVAE or implement LowerLayerPosterior, "
        f"got {type(model).__name__}"
    )


# ----------------------------------------------------------------------------------------------
# codes
# ----------------------------------------------------------------------------------------------
@dataclass
class LowerLayerCodes:
    r"""Codes of both layers of ``N`` examples (``d2 = dim z_2``, ``D1 = dim z_1``).

    Every array is float64; a convolutional :math:`z_1` ``[C1, 4, 4]`` is flattened in
    ``(C, H, W)`` order to ``D1 = 16·C1`` columns.

    Attributes
    ----------
    mu2, logvar2 : ``[N, d2]`` mean and log-variance of :math:`q(z_2\mid x)`.
    z2 : ``[N, d2]`` one sample :math:`z_2\sim q(z_2\mid x)` per example.
    mu1, logvar1 : ``[N, D1]`` mean and log-variance of :math:`q(z_1\mid z_2, x)` **at the
        sampled** :math:`z_2` (not at :math:`\mu_2`; compare
        :meth:`~hvae_lib.models.hierarchical.HierarchicalVAE.posterior_means`).
    z1 : ``[N, D1]`` one sample :math:`z_1\sim q(z_1\mid z_2, x)` per example.


    Used in: :ref:`ch-rate-splitting`
    """

    mu2: np.ndarray
    logvar2: np.ndarray
    z2: np.ndarray
    mu1: np.ndarray
    logvar1: np.ndarray
    z1: np.ndarray

    @property
    def num_points(self) -> int:
        """N."""
        return int(self.mu2.shape[0])


def _images(post: LowerLayerPosterior, data: Any) -> torch.Tensor:
    if isinstance(data, torch.Tensor):
        t = data
    else:
        t = torch.as_tensor(np.asarray(data))
    if not t.is_floating_point():
        t = t.float()
    shape = tuple(int(s) for s in post.input_shape)
    if t.dim() != 4 or tuple(t.shape[1:]) != shape or t.shape[0] == 0:
        raise ValueError(
            f"expected images [N, {', '.join(map(str, shape))}] with N >= 1, got {tuple(t.shape)}"
        )
    return t


@torch.no_grad()
def _codes(
    post: LowerLayerPosterior, x: torch.Tensor, gen: torch.Generator, batch_size: int
) -> tuple[LowerLayerCodes, torch.Tensor, torch.Tensor]:
    """Codes, and the x-features and network-precision z2 samples (for the pair pass)."""
    dev, dt = post.device, post.dtype
    out: dict[str, list[torch.Tensor]] = {k: [] for k in ("mu2", "lv2", "z2", "mu1", "lv1", "z1")}
    feats: list[torch.Tensor] = []
    for s in range(0, x.shape[0], int(batch_size)):
        xb = x[s : s + int(batch_size)].to(dev, dt)
        mu2, lv2 = post.top(xb)
        # noise top-down, z2 first (the order of HierarchicalVAE.draw_noise / forward)
        eps2 = torch.randn(mu2.shape, generator=gen, device=dev, dtype=dt)
        z2 = mu2 + torch.exp(0.5 * lv2) * eps2
        fx = post.x_features(xb)
        mu1, lv1 = post.combine(fx, post.z_features(z2))
        eps1 = torch.randn(mu1.shape, generator=gen, device=dev, dtype=dt)
        z1 = mu1 + torch.exp(0.5 * lv1) * eps1
        for k, v in zip(out, (mu2, lv2, z2, mu1, lv1, z1)):
            out[k].append(v)
        feats.append(fx)
    cat = {k: torch.cat(v) for k, v in out.items()}
    codes = LowerLayerCodes(
        *(cat[k].detach().cpu().double().numpy() for k in ("mu2", "lv2", "z2", "mu1", "lv1", "z1"))
    )
    return codes, torch.cat(feats), cat["z2"]


@torch.no_grad()
def lower_layer_codes(
    model: HierarchicalVAE | LowerLayerPosterior,
    data: torch.Tensor | np.ndarray,
    *,
    generator: torch.Generator,
    batch_size: int = 512,
) -> LowerLayerCodes:
    r"""One ancestral posterior sample of both layers per example, with the posteriors' parameters.

    .. math::
        z_2 = \mu_2(x) + \sigma_2(x)\,\epsilon_2,\qquad
        z_1 = \mu_1(z_2, x) + \sigma_1(z_2, x)\,\epsilon_1,\qquad
        \epsilon_2, \epsilon_1 \sim\mathcal N(0, I),

    the noise drawn per batch in the order of
    :meth:`~hvae_lib.models.hierarchical.HierarchicalVAE.forward` (:math:`\epsilon_2` first),
    so one batch reproduces ``forward(x, generator=...)``'s ``means``, ``logvars`` and
    ``samples`` for the same generator state.

    Parameters
    ----------
    model : a two-layer :class:`~hvae_lib.models.hierarchical.HierarchicalVAE` (either
        inference variant) or any :class:`LowerLayerPosterior`.
    data : ``[N, C, H, W]`` images.
    generator : ``torch.Generator`` on the model's device (the only randomness).
    batch_size : examples per network call.

    Returns
    -------
    LowerLayerCodes
        ``mu2, logvar2, z2`` ``[N, d2]`` and ``mu1, logvar1, z1`` ``[N, D1]``, float64.


    Used in: :ref:`ch-rate-splitting`
    """
    post = lower_layer_posterior(model)
    gen = check_generator(generator, post.device)
    return _codes(post, _images(post, data), gen, batch_size)[0]


# ----------------------------------------------------------------------------------------------
# I(y; z1 | z2)
# ----------------------------------------------------------------------------------------------
@dataclass
class ConditionalLabelInformation:
    r"""Plug-in Monte-Carlo estimates (nats) of the label information of both layers.

    Attributes
    ----------
    plug_in : :math:`\hat I(y; z_1\mid z_2) = \hat I(y; z_1, z_2) - \hat I(y; z_2)`; can be
        slightly negative by Monte-Carlo noise.
    plug_in_se : its Monte-Carlo standard error, the standard deviation of the N per-point
        differences over :math:`\sqrt N`.
    joint, joint_se : :math:`\hat I(y; z_1, z_2)` (plug-in, at most ``label_entropy``) and
        its standard error.
    top, top_se : :math:`\hat I(y; z_2)` (plug-in) on the same :math:`z_2` samples; equal to
        :func:`~hvae_lib.analysis.downstream.label_information` of
        ``(codes.mu2, codes.logvar2, labels, samples=codes.z2)``.
    leave_one_out, joint_leave_one_out, top_leave_one_out : the same three with each point's
        own component removed from both mixtures, as in
        :func:`~hvae_lib.analysis.downstream.label_information` (``nan`` when every class
        has a single member).
    label_entropy : the empirical label entropy :math:`H(y)` (nats).
    num_points : N.
    codes : the samples and posterior parameters the estimate used.


    Used in: :ref:`ch-rate-splitting`
    """

    plug_in: float
    plug_in_se: float
    joint: float
    joint_se: float
    top: float
    top_se: float
    leave_one_out: float
    joint_leave_one_out: float
    top_leave_one_out: float
    label_entropy: float
    num_points: int
    codes: LowerLayerCodes


def _gaussian_logq(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``z`` ``[c, d]`` against components ``mu, logvar`` ``[N, d]`` -> ``[c, N]`` log densities."""
    inv_sd = torch.exp(-0.5 * logvar)
    const = -0.5 * logvar.sum(1) - 0.5 * mu.shape[1] * _LOG_2PI
    u = (z[:, None, :] - mu[None, :, :]) * inv_sd[None, :, :]
    return -0.5 * (u**2).sum(-1) + const[None, :]


def _mixture_terms(
    logq: torch.Tensor, rows: slice, lab: torch.Tensor, cnt: torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """Plug-in and leave-one-out per-point terms of the samples ``rows`` (``logq`` ``[c, N]``)."""
    n = logq.shape[1]
    lj = lab[rows]
    same = lj[:, None] == lab[None, :]
    nl = cnt[lj]
    neg = torch.full_like(logq, -math.inf)
    cond = torch.logsumexp(torch.where(same, logq, neg), 1) - torch.log(nl)
    plug = cond - (torch.logsumexp(logq, 1) - math.log(n))
    own = torch.arange(logq.shape[0]) + rows.start
    loo_q = logq.clone()
    loo_q[torch.arange(logq.shape[0]), own] = -math.inf
    cond_l = torch.logsumexp(torch.where(same, loo_q, neg), 1) - torch.log((nl - 1).clamp(min=1))
    loo = cond_l - (torch.logsumexp(loo_q, 1) - math.log(n - 1))
    loo = torch.where(nl > 1, loo, torch.full_like(loo, math.nan))
    return plug.numpy(), loo.numpy()


def _pair_logq1(
    post: LowerLayerPosterior,
    feats: torch.Tensor,
    z2: torch.Tensor,
    z1: torch.Tensor,
    rows: slice,
    pair_batch: int,
) -> torch.Tensor:
    r"""``[c, N]``: :math:`\log q(z_{1,j}\mid z_{2,j}, x_i)` for the samples ``j`` in ``rows``."""
    n = feats.shape[0]
    fz = post.z_features(z2[rows])
    c = fz.shape[0]
    z1j = z1[rows]  # [c, D1] float64
    out = torch.empty(c, n, dtype=torch.float64)
    ci = max(1, int(pair_batch) // c)
    for s in range(0, n, ci):
        fx = feats[s : s + ci]
        k = fx.shape[0]
        fx_pairs = fx.unsqueeze(0).expand(c, *fx.shape).reshape(c * k, *fx.shape[1:])
        fz_pairs = fz.unsqueeze(1).expand(c, k, *fz.shape[1:]).reshape(c * k, *fz.shape[1:])
        mu, lv = post.combine(fx_pairs, fz_pairs)
        mu = mu.double().cpu().reshape(c, k, -1)
        lv = lv.double().cpu().reshape(c, k, -1)
        u2 = (z1j[:, None, :] - mu) ** 2 * torch.exp(-lv)
        out[:, s : s + k] = -0.5 * (u2 + lv).sum(-1) - 0.5 * mu.shape[-1] * _LOG_2PI
    return out


@torch.no_grad()
def conditional_label_information(
    model: HierarchicalVAE | LowerLayerPosterior,
    data: torch.Tensor | np.ndarray,
    labels: np.ndarray,
    *,
    generator: torch.Generator,
    batch_size: int = 512,
    pair_batch: int = 16_384,
    max_chunk_elements: int = 4_000_000,
    progress: Callable[[int, int], None] | None = None,
) -> ConditionalLabelInformation:
    r"""Monte-Carlo estimate of :math:`I_q(y; z_1\mid z_2)` by the chain rule (our formalisation).

    With :math:`x` uniform on the N points and one joint sample
    :math:`w_j=(z_{2,j}, z_{1,j})\sim q(z_2|x_j)\,q(z_1|z_2,x_j)` per point
    (:func:`lower_layer_codes`), the mixture components are
    :math:`q(w_j\mid x_i) = q(z_{2,j}\mid x_i)\,q(z_{1,j}\mid z_{2,j}, x_i)` and

    .. math::
        \hat I(y; w) &= \frac1N\sum_j\Big[\log\frac{1}{N_{y_j}}\sum_{i: y_i=y_j} q(w_j\mid x_i)
                 - \log\frac1N\sum_i q(w_j\mid x_i)\Big],\\
        \hat I(y; z_1\mid z_2) &= \hat I(y; z_1, z_2) - \hat I(y; z_2),

    with :math:`\hat I(y; z_2)` the same estimator on the :math:`z_2` parts alone
    (:func:`~hvae_lib.analysis.downstream.label_information`'s plug-in). Both terms are
    unbiased one-sample estimates of the information of the empirical distribution, so the
    difference is one of :math:`I_{\rm emp}(y; z_1\mid z_2)\ge 0`; the estimate itself can be
    negative by Monte-Carlo noise (both terms use the same samples, which shrinks the noise of
    the difference; see ``plug_in_se``). Like every plug-in it overestimates the population
    value when posteriors are narrow (each point's own component).

    Cost: :math:`q(z_{1,j}\mid z_{2,j}, x_i)` is needed for all :math:`N^2` pairs. The
    x-feature is computed once per point and the z-feature once per sample
    (:class:`LowerLayerPosterior`), then the pair head runs :math:`N^2` times in calls of at
    most ``pair_batch`` pairs (separate variant: the merge layer and the Gaussian head,
    :math:`2h^2 + 2hD_1` multiply-adds per pair for the MLP body of width :math:`h`, a
    convolution on ``[2c, 8, 8]`` maps per pair for the conv body; ladder variant: the
    closed-form precision-weighted merge with :math:`p(z_1|z_{2,j})`, :math:`O(D_1)` per pair).
    Memory :math:`O(\text{pair\_batch}\cdot(h + D_1))` besides the ``[N, N]``-row chunks.
    Measured on the CPU prototype (:func:`~hvae_lib.models.hierarchical.prototype_preset`,
    one thread, N = 1,000): about 3 s (separate) and 0.6 s (ladder); time grows as
    :math:`N^2`.

    Parameters
    ----------
    model : a two-layer :class:`~hvae_lib.models.hierarchical.HierarchicalVAE` or any
        :class:`LowerLayerPosterior`.
    data : ``[N, C, H, W]`` images, ``N >= 2``.
    labels : ``[N]`` integer labels.
    generator : ``torch.Generator`` on the model's device (the samples).
    batch_size : examples per network call of the sampling pass.
    pair_batch : pairs :math:`(i, j)` per call of the pair head.
    max_chunk_elements : bound on ``rows × N × d2`` of the :math:`z_2` density chunks (as in
        :func:`~hvae_lib.analysis.downstream.label_information`).
    progress : optional ``progress(done, N)`` called after each chunk of samples.

    Returns
    -------
    ConditionalLabelInformation


    Used in: :ref:`ch-rate-splitting`
    """
    post = lower_layer_posterior(model)
    gen = check_generator(generator, post.device)
    x = _images(post, data)
    y = np.asarray(labels)
    n = int(x.shape[0])
    if y.shape != (n,) or n < 2 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"need N >= 2 images and [N] integer labels, got {n} and {y.shape}")
    codes, feats, z2_net = _codes(post, x, gen, batch_size)
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    lab = torch.as_tensor(inverse)
    cnt = torch.as_tensor(counts, dtype=torch.float64)
    mu2, lv2 = torch.as_tensor(codes.mu2), torch.as_tensor(codes.logvar2)
    z2, z1 = torch.as_tensor(codes.z2), torch.as_tensor(codes.z1)
    d2 = mu2.shape[1]
    chunk = max(1, int(max_chunk_elements) // max(1, n * d2))
    terms = {k: np.empty(n) for k in ("top", "joint", "top_loo", "joint_loo")}
    for s in range(0, n, chunk):
        rows = slice(s, min(n, s + chunk))
        logq2 = _gaussian_logq(z2[rows], mu2, lv2)  # [c, N] log q(z2_j | x_i)
        logq1 = _pair_logq1(post, feats, z2_net, z1, rows, pair_batch)
        terms["top"][rows], terms["top_loo"][rows] = _mixture_terms(logq2, rows, lab, cnt)
        terms["joint"][rows], terms["joint_loo"][rows] = _mixture_terms(
            logq2 + logq1, rows, lab, cnt
        )
        if progress is not None:
            progress(rows.stop, n)
    diff = terms["joint"] - terms["top"]
    diff_loo = terms["joint_loo"] - terms["top_loo"]
    p = counts / n
    root = math.sqrt(n)

    def nanmean(a: np.ndarray) -> float:
        return float(np.nanmean(a)) if np.isfinite(a).any() else math.nan

    return ConditionalLabelInformation(
        plug_in=float(diff.mean()),
        plug_in_se=float(diff.std(ddof=1) / root),
        joint=float(terms["joint"].mean()),
        joint_se=float(terms["joint"].std(ddof=1) / root),
        top=float(terms["top"].mean()),
        top_se=float(terms["top"].std(ddof=1) / root),
        leave_one_out=nanmean(diff_loo),
        joint_leave_one_out=nanmean(terms["joint_loo"]),
        top_leave_one_out=nanmean(terms["top_loo"]),
        label_entropy=float(-(p * np.log(p)).sum()),
        num_points=n,
        codes=codes,
    )
