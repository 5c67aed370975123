r"""Variational mutual-information estimators trained with torch.

Four estimators of :math:`I(X;Y)` from samples, each returning an :class:`MIEstimate`
(estimate in nats, training curve, which bound it is):

.. list-table::
   :header-rows: 1
   :widths: 14 46 40

   * - estimator
     - bound (population value, optimal critic/decoder)
     - bias and variance
   * - Barber–Agakov
     - :math:`I\ge H(Y)+\mathbb E\log r(y\mid x)`
     - lower bound, gap :math:`\mathbb E\,\mathrm{KL}(p(y|x)\|r(y|x))`; low variance; needs the
       true :math:`H(Y)`
   * - InfoNCE
     - :math:`I\ge \log N + \mathbb E\big[f(x_i,y_i) - \log\sum_j e^{f(x_i,y_j)}\big]`
     - lower bound, **never above** :math:`\log N`; low variance; badly biased if
       :math:`I\gtrsim\log N`
   * - NWJ (f-div.)
     - :math:`I\ge \mathbb E_p f - e^{-1}\mathbb E_{p_xp_y}e^{f}`
     - lower bound, unbiased minibatch estimate; variance grows like :math:`e^{I}`
   * - MINE (DV)
     - :math:`I\ge \mathbb E_p T-\log\mathbb E_{p_xp_y}e^{T}`
     - tighter than NWJ for the same critic; the minibatch log of a mean is biased, high
       variance

Implementation notes
--------------------
* **Critics** score all :math:`N^2` pairs of a batch: ``scores[i, j] = f(x_i, y_j)``, the
  diagonal being samples of :math:`p(x,y)` and the off-diagonal entries samples of
  :math:`p(x)p(y)`. The default *separable* critic :math:`f(x,y) = g(x)^\top h(y)` (two
  small MLPs) costs two MLP passes per batch; ``critic="concat"`` evaluates an MLP on
  the :math:`N^2` concatenated pairs (more flexible, about :math:`N` times slower).
* **Training**: Adam on fresh batches (a sampler) or on random minibatches of the training
  split (tensors). ``curve`` holds the bound's value on each training batch, in nats.
* **Final estimate**: the trained critic is evaluated, without gradients, on
  ``num_eval_batches`` batches that were *not* used for training (fresh samples from a
  sampler, or the held-out split of tensor data), and averaged. This removes the upward
  bias of evaluating on the batches the critic was fitted to and averages out the
  per-batch noise; ``stderr`` is the standard error across evaluation batches.
* **Reproducibility**: every estimator takes one CPU ``torch.Generator`` (``generator``).
  It draws, in order, the seed of the parameter initialisation (run under
  ``torch.random.fork_rng`` by :func:`hvae_lib.config.build_seeded`), the held-out split of
  tensor data, the training batches and the evaluation batches, so the global RNG state is
  untouched and the same generator state gives the same result on one machine/device.
  Everything runs on ``device`` (default CPU); nothing calls ``.cuda()``.

The InfoNCE, NWJ and DV formulas are available as pure functions of a score matrix
(:func:`infonce_lower_bound`, :func:`nwj_lower_bound`, :func:`dv_lower_bound`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal, TypeVar, Union

import numpy as np
import torch
from torch import Tensor, nn

from ..config import build_seeded, check_generator

__all__ = [
    "MIEstimate",
    "SeparableCritic",
    "ConcatCritic",
    "infonce_lower_bound",
    "nwj_lower_bound",
    "dv_lower_bound",
    "infonce_estimate",
    "nwj_estimate",
    "mine_estimate",
    "barber_agakov_estimate",
]

PairSampler = Callable[[int, torch.Generator], "tuple[Tensor, Tensor]"]
PairData = Union["tuple[Tensor | np.ndarray, Tensor | np.ndarray]", PairSampler]
CriticSpec = Union[Literal["separable", "concat"], nn.Module]


# ================================================================================ result
@dataclass
class MIEstimate:
    """Result of a variational MI estimator.

    Attributes
    ----------
    method : str
        ``"infonce"``, ``"nwj"``, ``"mine"`` or ``"barber_agakov"``.
    estimate : float
        Estimate of :math:`I(X;Y)` in nats, averaged over held-out evaluation batches.
    stderr : float
        Standard error of ``estimate`` across evaluation batches (0 if only one).
    curve : numpy.ndarray, shape ``[num_steps]``
        Value of the bound on each training batch, in nats.
    bound : str
        Which bound this is, its direction and its bias.
    upper_limit : float
        A hard ceiling of the estimator: ``log(N_eval)`` for InfoNCE, ``inf`` otherwise.
    eval_values : numpy.ndarray, shape ``[num_eval_batches]``
        Per-batch values behind ``estimate`` (for MINE: per-batch DV values, while
        ``estimate`` pools all evaluation pairs).
    batch_size : int
        Training batch size ``N``.
    """

    method: str
    estimate: float
    stderr: float
    curve: np.ndarray
    bound: str
    upper_limit: float = math.inf
    eval_values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    batch_size: int = 0


# =============================================================================== critics
def _mlp(d_in: int, hidden: int, d_out: int, num_hidden: int = 2) -> nn.Sequential:
    layers: list[nn.Module] = []
    d = d_in
    for _ in range(num_hidden):
        layers += [nn.Linear(d, hidden), nn.ReLU()]
        d = hidden
    layers.append(nn.Linear(d, d_out))
    return nn.Sequential(*layers)


class SeparableCritic(nn.Module):
    r"""Separable critic :math:`f(x,y) = g(x)^\top h(y)` scoring all pairs of a batch.

    Parameters
    ----------
    d_x, d_y : int
        Input dimensions.
    hidden : int
        Width of the two hidden layers of each MLP.
    embed : int
        Dimension of :math:`g(x)` and :math:`h(y)`.

    ``forward(x [N, d_x], y [N, d_y]) -> scores [N, N]`` with ``scores[i, j] = f(x_i, y_j)``.
    """

    def __init__(self, d_x: int, d_y: int, hidden: int = 64, embed: int = 16) -> None:
        super().__init__()
        self.g = _mlp(d_x, hidden, embed)
        self.h = _mlp(d_y, hidden, embed)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.g(x) @ self.h(y).T


class ConcatCritic(nn.Module):
    r"""Joint critic :math:`f(x,y) = \mathrm{MLP}([x, y])` evaluated on all :math:`N^2` pairs.

    Parameters
    ----------
    d_x, d_y : int
        Input dimensions.
    hidden : int
        Width of the two hidden layers.

    ``forward(x [N, d_x], y [M, d_y]) -> scores [N, M]``. Costs :math:`NM` MLP
    evaluations per call, so keep ``N`` small (e.g. 128) on a CPU.
    """

    def __init__(self, d_x: int, d_y: int, hidden: int = 64) -> None:
        super().__init__()
        self.f = _mlp(d_x + d_y, hidden, 1)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        n, m = x.shape[0], y.shape[0]
        xy = torch.cat([x[:, None, :].expand(n, m, -1), y[None, :, :].expand(n, m, -1)], dim=-1)
        return self.f(xy).squeeze(-1)


def _make_critic(critic: CriticSpec, d_x: int, d_y: int, hidden: int, embed: int) -> nn.Module:
    if isinstance(critic, nn.Module):
        return critic
    if critic == "separable":
        return SeparableCritic(d_x, d_y, hidden, embed)
    if critic == "concat":
        return ConcatCritic(d_x, d_y, hidden)
    raise ValueError(f"critic must be 'separable', 'concat' or an nn.Module; got {critic!r}")


# ===================================================================== bounds on scores
def _check_scores(scores: Tensor) -> int:
    if scores.ndim != 2 or scores.shape[0] != scores.shape[1] or scores.shape[0] < 2:
        raise ValueError(
            f"scores must be a square [N, N] matrix with N >= 2; got {tuple(scores.shape)}"
        )
    return int(scores.shape[0])


def _offdiag_logmeanexp(scores: Tensor) -> Tensor:
    """``log mean_{i != j} exp(scores[i, j])`` (the product-of-marginals pairs)."""
    n = scores.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=scores.device)
    masked = scores.masked_fill(eye, float("-inf"))
    return torch.logsumexp(masked.reshape(-1), dim=0) - math.log(n * (n - 1))


def infonce_lower_bound(scores: Tensor) -> Tensor:
    r"""InfoNCE (CPC) bound from an ``[N, N]`` score matrix with positives on the diagonal.

    .. math::
        I_{\mathrm{NCE}} = \log N + \frac1N\sum_{i=1}^N\Big[f(x_i,y_i)
        - \log\sum_{j=1}^N e^{f(x_i,y_j)}\Big] \;\le\; \log N

    Each bracket is ``<= 0`` because the log-sum-exp includes its own term, so the value
    never exceeds :math:`\log N` (exactly, also in floating point). In expectation it is a
    lower bound on :math:`I(X;Y)` for any critic (van den Oord et al. 2018; Poole et al.
    2019), tight only if :math:`I \ll \log N`.

    Parameters
    ----------
    scores : Tensor, shape ``[N, N]``
        ``scores[i, j] = f(x_i, y_j)``.

    Returns
    -------
    Tensor
        Scalar float64, in nats (differentiable); ``<= log N`` exactly.


    Used in: :ref:`ch-transitive`
    """
    n = _check_scores(scores)
    # each term is <= 0 exactly (the log-sum-exp includes the diagonal term); adding log N
    # in float64 keeps the result <= log N after rounding
    return math.log(n) + (scores.diagonal() - torch.logsumexp(scores, dim=1)).mean().double()


def nwj_lower_bound(scores: Tensor) -> Tensor:
    r"""NWJ (:math:`f`-divergence, "MINE-f") bound from an ``[N, N]`` score matrix.

    .. math::
        I_{\mathrm{NWJ}} = \mathbb E_{p(x,y)}[f] - e^{-1}\,\mathbb E_{p(x)p(y)}[e^{f}]
        \approx \frac1N\sum_i f_{ii} - \frac{1}{e\,N(N-1)}\sum_{i\ne j} e^{f_{ij}}

    A lower bound on :math:`I(X;Y)` for every critic, tight at
    :math:`f^* = 1 + \log\frac{p(x,y)}{p(x)p(y)}` (Nguyen, Wainwright & Jordan 2010). The
    minibatch value is an *unbiased* estimate of the bound, but its variance grows
    exponentially with :math:`I` (the :math:`e^{f}` term is dominated by rare pairs).

    Parameters
    ----------
    scores : Tensor, shape ``[N, N]``

    Returns
    -------
    Tensor
        Scalar, in nats (differentiable).


    Used in: :ref:`ch-transitive`
    """
    _check_scores(scores)
    return scores.diagonal().mean() - torch.exp(_offdiag_logmeanexp(scores) - 1.0)


def dv_lower_bound(scores: Tensor) -> Tensor:
    r"""Donsker–Varadhan bound (the objective of MINE) from an ``[N, N]`` score matrix.

    .. math::
        I_{\mathrm{DV}} = \mathbb E_{p(x,y)}[T] - \log\mathbb E_{p(x)p(y)}[e^{T}]
        \;\ge\; I_{\mathrm{NWJ}}(T + \text{best constant})

    A lower bound in population for every critic (Belghazi et al. 2018). The minibatch
    value is *biased upwards* (the log of a sample mean underestimates the log of the
    mean, by Jensen), and its gradient is biased; MINE corrects the gradient with a
    moving average (see :func:`mine_estimate`).

    Parameters
    ----------
    scores : Tensor, shape ``[N, N]``

    Returns
    -------
    Tensor
        Scalar, in nats (differentiable).


    Used in: :ref:`ch-transitive`
    """
    _check_scores(scores)
    return scores.diagonal().mean() - _offdiag_logmeanexp(scores)


# ========================================================================== data handling
def _as_2d_tensor(a: Tensor | np.ndarray, name: str) -> Tensor:
    """Float32 tensor of shape ``[N, d]`` (a 1-d input becomes ``[N, 1]``)."""
    t = torch.as_tensor(a).to(torch.float32)
    if t.ndim == 1:
        t = t[:, None]
    if t.ndim != 2:
        raise ValueError(f"{name} must have shape [N, d]; got {tuple(t.shape)}")
    return t


class _Source:
    """Training and evaluation batches from tensors (with a held-out split) or a sampler.

    All of them are drawn from the one CPU ``generator``, one after the other.
    """

    def __init__(
        self,
        data: PairData,
        batch_size: int,
        holdout: float,
        generator: torch.Generator,
        device: torch.device,
        y_dtype: torch.dtype | None = torch.float32,
    ) -> None:
        if batch_size < 2:
            raise ValueError(f"batch_size must be >= 2; got {batch_size}")
        self.device = device
        self.y_dtype = y_dtype
        self.gen = generator
        self.sampler: PairSampler | None = None
        if callable(data):
            self.sampler = data
            self.batch_size = self.eval_batch_size = int(batch_size)
            x0, y0 = self._check_pair(*data(2, self.gen))  # shapes only
        else:
            if not isinstance(data, (tuple, list)) or len(data) != 2:
                raise TypeError(
                    "data must be a pair (x, y) of tensors/arrays or a sampler(n, generator)"
                )
            x, y = self._check_pair(*data)
            n = x.shape[0]
            if not 0.0 <= holdout < 1.0:
                raise ValueError(f"holdout must be in [0, 1); got {holdout}")
            perm = torch.randperm(n, generator=self.gen)
            num_hold = int(round(holdout * n))
            if holdout > 0 and num_hold < 2:
                raise ValueError(
                    f"holdout={holdout} leaves fewer than 2 of {n} samples for evaluation"
                )
            if n - num_hold < 2:
                raise ValueError(
                    f"holdout={holdout} leaves fewer than 2 of {n} samples for training"
                )
            tr = perm[num_hold:]
            ho = (
                perm[:num_hold] if num_hold > 0 else tr
            )  # holdout = 0: evaluate on the training data
            self.x_tr, self.y_tr = x[tr].to(device), y[tr].to(device)
            self.x_ev, self.y_ev = x[ho].to(device), y[ho].to(device)
            self.batch_size = min(int(batch_size), self.x_tr.shape[0])
            self.eval_batch_size = min(int(batch_size), self.x_ev.shape[0])
            x0, y0 = x, y
        self.d_x = int(x0.shape[1])
        self.d_y = int(y0.shape[1]) if y0.ndim == 2 else 1

    def _check_pair(self, x: Tensor | np.ndarray, y: Tensor | np.ndarray) -> tuple[Tensor, Tensor]:
        xt = _as_2d_tensor(x, "x")
        if self.y_dtype is None:  # categorical labels
            yt = torch.as_tensor(y)
            if yt.ndim != 1 or yt.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
                raise ValueError(
                    f"categorical y must be a 1-d integer tensor [N]; got {tuple(yt.shape)} {yt.dtype}"
                )
            yt = yt.long()
        else:
            yt = _as_2d_tensor(y, "y")
        if xt.shape[0] != yt.shape[0]:
            raise ValueError(
                f"x and y must have the same number of rows; got {xt.shape[0]} and {yt.shape[0]}"
            )
        if xt.dtype.is_floating_point and not torch.isfinite(xt).all():
            raise ValueError("x contains NaN or infinite values")
        if yt.dtype.is_floating_point and not torch.isfinite(yt).all():
            raise ValueError("y contains NaN or infinite values")
        return xt, yt

    def train_batch(self) -> tuple[Tensor, Tensor]:
        if self.sampler is not None:
            x, y = self._check_pair(*self.sampler(self.batch_size, self.gen))
            return x.to(self.device), y.to(self.device)
        idx = torch.randperm(self.x_tr.shape[0], generator=self.gen)[: self.batch_size].to(
            self.device
        )
        return self.x_tr[idx], self.y_tr[idx]

    def eval_batches(self, num_batches: int) -> Iterator[tuple[Tensor, Tensor]]:
        if self.sampler is not None:
            for _ in range(num_batches):
                x, y = self._check_pair(*self.sampler(self.eval_batch_size, self.gen))
                yield x.to(self.device), y.to(self.device)
            return
        # tensors: up to num_batches disjoint chunks of the held-out split
        m, b = self.x_ev.shape[0], self.eval_batch_size
        num_chunks = max(1, m // b)
        for k in range(min(num_batches, num_chunks)):
            sl = slice(k * b, (k + 1) * b)
            yield self.x_ev[sl], self.y_ev[sl]


def _resolve_device(device: str | torch.device) -> torch.device:
    return torch.device(device)


def _check_counts(num_steps: int, num_eval_batches: int) -> None:
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1; got {num_steps}")
    if num_eval_batches < 1:
        raise ValueError(f"num_eval_batches must be >= 1; got {num_eval_batches}")


def _initialisation_seed(generator: torch.Generator) -> int:
    """Check that ``generator`` is a CPU ``torch.Generator`` and draw the seed of the
    parameter initialisation from it (the first draw of every estimator)."""
    check_generator(generator, "cpu")
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator))


def _init_module(build: Callable[[], nn.Module], seed: int, device: torch.device) -> nn.Module:
    return build_seeded(build, seed).to(device)


def _stderr(values: np.ndarray) -> float:
    return float(values.std(ddof=1) / math.sqrt(values.size)) if values.size > 1 else 0.0


def _setup_critic(
    data: PairData,
    batch_size: int,
    num_steps: int,
    num_eval_batches: int,
    holdout: float,
    generator: torch.Generator,
    device: str | torch.device,
    critic: CriticSpec,
    hidden: int,
    embed: int,
) -> tuple[_Source, nn.Module]:
    """Check the counts, build the batch source and the seeded critic of a score-based estimator."""
    seed = _initialisation_seed(generator)
    _check_counts(num_steps, num_eval_batches)
    dev = _resolve_device(device)
    src = _Source(data, batch_size, holdout, generator, dev)
    f = _init_module(lambda: _make_critic(critic, src.d_x, src.d_y, hidden, embed), seed, dev)
    return src, f


_BOUNDS = {
    "infonce": "lower bound on I(X;Y) (in expectation); never exceeds log N; biased low when I ~ log N",
    "nwj": "lower bound on I(X;Y); unbiased minibatch estimate of the bound; high variance (~exp(I))",
    "mine": "Donsker-Varadhan lower bound on I(X;Y) (population); minibatch values biased upwards; high variance",
    "barber_agakov": "lower bound H(Y) + E log r(y|x); gap E KL(p(y|x)||r(y|x)); needs the true H(Y); low variance",
}
"""``MIEstimate.bound``: which bound each method is, its direction and its bias."""


def _result(
    method: str,
    curve: np.ndarray,
    vals: np.ndarray,
    src: _Source,
    estimate: float | None = None,
    upper_limit: float = math.inf,
) -> MIEstimate:
    """:class:`MIEstimate` from per-batch evaluation values (``estimate`` defaults to their mean)."""
    return MIEstimate(
        method=method,
        estimate=float(vals.mean()) if estimate is None else estimate,
        stderr=_stderr(vals),
        curve=curve,
        bound=_BOUNDS[method],
        upper_limit=upper_limit,
        eval_values=vals,
        batch_size=src.batch_size,
    )


def _train_critic(
    critic: nn.Module,
    source: _Source,
    objective: Callable[[Tensor], Tensor],
    num_steps: int,
    lr: float,
    surrogate: Callable[[Tensor], Tensor] | None = None,
) -> np.ndarray:
    """Maximise ``objective(scores)`` (or ``surrogate``) with Adam; return the curve of ``objective``.

    ``scores = critic(x, y)`` on each training batch: a score matrix for the critics, or the
    per-sample log-likelihoods of a Barber-Agakov decoder.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1; got {num_steps}")
    opt = torch.optim.Adam(critic.parameters(), lr=lr)
    curve = np.empty(num_steps)
    critic.train()
    for step in range(num_steps):
        x, y = source.train_batch()
        scores = critic(x, y)
        value = objective(scores)
        loss = -(surrogate(scores) if surrogate is not None else value)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        curve[step] = float(value.detach())
    critic.eval()
    return curve


def _evaluate(
    critic: nn.Module, source: _Source, num_eval_batches: int, fn: Callable[[Tensor], Tensor]
) -> np.ndarray:
    vals = []
    with torch.no_grad():
        for x, y in source.eval_batches(num_eval_batches):
            vals.append(float(fn(critic(x, y))))
    return np.asarray(vals)


def _bound_estimate(
    method: str,
    lower_bound: Callable[[Tensor], Tensor],
    src: _Source,
    critic: nn.Module,
    num_steps: int,
    lr: float,
    num_eval_batches: int,
) -> MIEstimate:
    """Train ``critic`` on ``lower_bound(scores)`` and average it over held-out batches.

    InfoNCE (``method="infonce"``) reports its ceiling ``log(N_eval)`` as ``upper_limit``.
    """
    curve = _train_critic(critic, src, lower_bound, num_steps, lr)
    vals = _evaluate(critic, src, num_eval_batches, lower_bound)
    cap = math.log(src.eval_batch_size) if method == "infonce" else math.inf
    return _result(method, curve, vals, src, upper_limit=cap)


_F = TypeVar("_F", bound=Callable[..., MIEstimate])


def _with_common_doc(fn: _F) -> _F:
    """Insert the shared parameter documentation at ``<<COMMON_PARAMETERS>>``."""
    if fn.__doc__:
        fn.__doc__ = fn.__doc__.replace("    <<COMMON_PARAMETERS>>\n", _COMMON_DOC)
    return fn


_COMMON_DOC = """\
    data : (x, y) or callable
        Either tensors/arrays ``x [N, d_x]`` and ``y [N, d_y]`` (1-d arrays are treated as
        ``[N, 1]``), split by a random permutation (drawn from ``generator``) into a training
        part and a held-out fraction ``holdout``; or a sampler ``sampler(n, generator) ->
        (x, y)`` drawing fresh CPU tensors with the given ``torch.Generator`` (e.g.
        :func:`~hvae_lib.info.gaussian.gaussian_pair_sampler`).
    batch_size : int
        Batch size ``N`` (pairs per step; the critic scores all ``N^2`` combinations).
    num_steps : int
        Adam steps.
    lr : float
        Adam learning rate.
    critic : {"separable", "concat"} or nn.Module
        Critic architecture, or a module mapping ``(x [N, d_x], y [N, d_y])`` to scores
        ``[N, N]``.
    hidden, embed : int
        MLP width and separable-embedding dimension for the built-in critics.
    num_eval_batches : int
        Number of held-out batches averaged for ``estimate`` (tensor data: at most the
        number of disjoint batches in the held-out split).
    holdout : float
        Held-out fraction for tensor data (``0`` evaluates on the training data, which
        is biased upwards by overfitting). Ignored for samplers.
    generator : torch.Generator
        A CPU generator (``torch.Generator().manual_seed(0)``), the only source of randomness:
        the initialisation seed, the split, the training and the evaluation batches are drawn
        from it one after the other.
    device : str or torch.device
        Where to train (default CPU).
"""


# ============================================================================ estimators
@_with_common_doc
def infonce_estimate(
    data: PairData,
    *,
    batch_size: int = 512,
    num_steps: int = 300,
    lr: float = 2e-3,
    critic: CriticSpec = "separable",
    hidden: int = 64,
    embed: int = 16,
    num_eval_batches: int = 20,
    holdout: float = 0.2,
    generator: torch.Generator,
    device: str | torch.device = "cpu",
) -> MIEstimate:
    r"""InfoNCE estimate of :math:`I(X;Y)`: a lower bound that can never exceed :math:`\log N`.

    Trains a critic to maximise :func:`infonce_lower_bound` on ``N``-way batches, then
    averages it over held-out batches of the same size:

    .. math::
        \hat I = \log N + \frac1N\sum_i\Big[f(x_i,y_i) - \log\sum_j e^{f(x_i,y_j)}\Big]
        \;\le\;\log N.

    *Direction and bias*: a lower bound in expectation for every critic; low variance;
    strongly biased downwards once :math:`I(X;Y)` approaches :math:`\log N` (at ``N = 512``,
    :math:`\log N = 6.24` nats).

    Parameters
    ----------
    <<COMMON_PARAMETERS>>

    Returns
    -------
    MIEstimate
        ``method="infonce"``, ``upper_limit = log(N_eval)``.


    Used in: :ref:`ch-transitive`
    """
    src, f = _setup_critic(
        data,
        batch_size,
        num_steps,
        num_eval_batches,
        holdout,
        generator,
        device,
        critic,
        hidden,
        embed,
    )
    return _bound_estimate("infonce", infonce_lower_bound, src, f, num_steps, lr, num_eval_batches)


@_with_common_doc
def nwj_estimate(
    data: PairData,
    *,
    batch_size: int = 512,
    num_steps: int = 300,
    lr: float = 2e-3,
    critic: CriticSpec = "separable",
    hidden: int = 64,
    embed: int = 16,
    num_eval_batches: int = 20,
    holdout: float = 0.2,
    generator: torch.Generator,
    device: str | torch.device = "cpu",
) -> MIEstimate:
    r"""NWJ estimate of :math:`I(X;Y)` (the :math:`f`-divergence bound, "MINE-f").

    .. math::
        \hat I = \frac1N\sum_i f(x_i,y_i) - \frac{1}{e\,N(N-1)}\sum_{i\ne j}e^{f(x_i,y_j)}

    *Direction and bias*: a lower bound for every critic, and the minibatch value is an
    unbiased estimate of it (no :math:`\log N` cap). The price is **high variance**,
    growing roughly like :math:`e^{I}`: the training curve is noisy and single-batch
    values scatter widely at large :math:`I`. The reported ``estimate`` averages
    ``num_eval_batches`` held-out batches to tame this.

    Parameters
    ----------
    <<COMMON_PARAMETERS>>

    Returns
    -------
    MIEstimate
        ``method="nwj"``.


    Used in: :ref:`ch-transitive`
    """
    src, f = _setup_critic(
        data,
        batch_size,
        num_steps,
        num_eval_batches,
        holdout,
        generator,
        device,
        critic,
        hidden,
        embed,
    )
    return _bound_estimate("nwj", nwj_lower_bound, src, f, num_steps, lr, num_eval_batches)


@_with_common_doc
def mine_estimate(
    data: PairData,
    *,
    batch_size: int = 512,
    num_steps: int = 300,
    lr: float = 2e-3,
    ema_rate: float = 0.01,
    critic: CriticSpec = "separable",
    hidden: int = 64,
    embed: int = 16,
    num_eval_batches: int = 20,
    holdout: float = 0.2,
    generator: torch.Generator,
    device: str | torch.device = "cpu",
) -> MIEstimate:
    r"""MINE: the Donsker–Varadhan bound with the moving-average gradient correction.

    .. math::
        I_{\mathrm{DV}}(T) = \mathbb E_{p(x,y)}[T] - \log\mathbb E_{p(x)p(y)}[e^{T}]

    The minibatch gradient of :math:`\log\overline{e^{T}}` is biased, so training follows
    Belghazi et al. (2018): the denominator is replaced by an exponential moving average
    :math:`m_t = (1-\alpha)m_{t-1} + \alpha\,\overline{e^{T}}` (``alpha = ema_rate``),
    i.e. the surrogate :math:`\overline{T}_{\text{joint}} - \overline{e^{T}}_{\text{marg}}/
    \mathrm{sg}(m_t)`, whose gradient is the DV gradient with the moving average in the
    denominator. ``curve`` records the plain minibatch DV value.

    The final ``estimate`` pools all held-out evaluation pairs into one DV value
    (:math:`\overline{T}` over all positive pairs minus the log-mean-exp over all negative
    pairs), which shrinks the upward log-of-mean bias that single batches have.

    *Direction and bias*: a lower bound in population; per-batch values are biased upwards
    and have **high variance** (like NWJ, growing with :math:`I`).

    Parameters
    ----------
    <<COMMON_PARAMETERS>>
    ema_rate : float
        Moving-average rate :math:`\alpha\in(0,1]` (``1`` recovers the plain biased DV
        gradient).

    Returns
    -------
    MIEstimate
        ``method="mine"``; ``eval_values`` are per-batch DV values.


    Used in: :ref:`ch-transitive`
    """
    if not 0.0 < ema_rate <= 1.0:
        raise ValueError(f"ema_rate must be in (0, 1]; got {ema_rate}")
    src, f = _setup_critic(
        data,
        batch_size,
        num_steps,
        num_eval_batches,
        holdout,
        generator,
        device,
        critic,
        hidden,
        embed,
    )
    state: dict[str, Tensor] = {}

    def surrogate(scores: Tensor) -> Tensor:
        lme = _offdiag_logmeanexp(scores)  # log of the batch mean of e^T
        with torch.no_grad():
            if "log_ma" not in state or ema_rate == 1.0:
                state["log_ma"] = lme.detach()
            else:  # m_t = (1 - a) m_{t-1} + a * mean(e^T), in log space
                state["log_ma"] = torch.logaddexp(
                    math.log1p(-ema_rate) + state["log_ma"], math.log(ema_rate) + lme.detach()
                )
        return scores.diagonal().mean() - torch.exp(lme - state["log_ma"])

    curve = _train_critic(f, src, dv_lower_bound, num_steps, lr, surrogate=surrogate)
    pos: list[Tensor] = []
    neg_lse: list[Tensor] = []
    num_neg = 0
    vals = []
    with torch.no_grad():
        for x, y in src.eval_batches(num_eval_batches):
            s = f(x, y)
            vals.append(float(dv_lower_bound(s)))
            n = s.shape[0]
            pos.append(s.diagonal())
            neg_lse.append(_offdiag_logmeanexp(s) + math.log(n * (n - 1)))
            num_neg += n * (n - 1)
        pooled = torch.cat(pos).mean() - (
            torch.logsumexp(torch.stack(neg_lse), 0) - math.log(num_neg)
        )
    v = np.asarray(vals)
    return _result("mine", curve, v, src, estimate=float(pooled))


class _GaussianDecoder(nn.Module):
    """``r(y|x) = N(mu(x), diag sigma^2(x))``; ``forward`` returns ``log r(y|x)`` per sample."""

    def __init__(self, d_x: int, d_y: int, hidden: int) -> None:
        super().__init__()
        self.net = _mlp(d_x, hidden, 2 * d_y)
        self.d_y = d_y

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        out = self.net(x)
        mu, log_var = out[:, : self.d_y], out[:, self.d_y :].clamp(-12.0, 12.0)
        return (-0.5 * (math.log(2 * math.pi) + log_var + (y - mu) ** 2 * torch.exp(-log_var))).sum(
            -1
        )


class _CategoricalDecoder(nn.Module):
    """``r(y|x) = Categorical(softmax(logits(x)))``; ``forward`` returns ``log r(y|x)``."""

    def __init__(self, d_x: int, num_classes: int, hidden: int) -> None:
        super().__init__()
        self.net = _mlp(d_x, hidden, num_classes)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return torch.log_softmax(self.net(x), dim=-1).gather(1, y[:, None]).squeeze(1)


def _mean_log_likelihood(log_lik: Tensor) -> Tensor:
    """Mean of the per-sample ``log r(y|x)`` returned by a decoder, shape ``[N] -> []``."""
    return log_lik.mean()


def barber_agakov_estimate(
    data: PairData,
    entropy_y: float,
    *,
    num_classes: int | None = None,
    batch_size: int = 512,
    num_steps: int = 300,
    lr: float = 2e-3,
    hidden: int = 64,
    num_eval_batches: int = 20,
    holdout: float = 0.2,
    generator: torch.Generator,
    device: str | torch.device = "cpu",
) -> MIEstimate:
    r"""Barber–Agakov estimate: :math:`I(X;Y)\ge H(Y) + \mathbb E_{p(x,y)}\log r(y\mid x)`.

    A decoder :math:`r(y\mid x)` is trained by maximum likelihood; the estimate is
    ``entropy_y`` plus its mean held-out log-likelihood. This is the bound behind the
    reconstruction and classifier terms of a VAE / SemafoVAE objective (Barber & Agakov 2003;
    the link to SemafoVAE's terms is our derivation).

    *Direction and bias*: a lower bound, with gap
    :math:`\mathbb E_{p(x)}\mathrm{KL}(p(y\mid x)\,\|\,r(y\mid x))` (biased low by the
    decoder's misfit); low variance. It **needs the true entropy** :math:`H(Y)` (discrete
    :math:`y`) or differential entropy :math:`h(Y)` (continuous :math:`y`), known in
    closed form for synthetic data (e.g. :func:`~hvae_lib.info.gaussian.gaussian_entropy`).

    Parameters
    ----------
    data : (x, y) or callable
        As for :func:`infonce_estimate`. If ``num_classes`` is given, ``y`` must be a 1-d
        integer tensor of class indices ``[N]`` and the decoder is categorical; otherwise
        ``y [N, d_y]`` is real and the decoder is a diagonal Gaussian
        :math:`\mathcal N(\mu(x), \mathrm{diag}\,\sigma^2(x))`.
    entropy_y : float
        Known :math:`H(Y)` (or :math:`h(Y)`) in nats.
    num_classes : int, optional
        Number of classes of a categorical ``y``.
    batch_size, num_steps, lr, hidden, num_eval_batches, holdout, generator, device
        As for :func:`infonce_estimate` (``hidden`` is the decoder's MLP width).

    Returns
    -------
    MIEstimate
        ``method="barber_agakov"``.


    Used in: :ref:`ch-transitive`
    """
    seed = _initialisation_seed(generator)
    _check_counts(num_steps, num_eval_batches)
    dev = _resolve_device(device)
    categorical = num_classes is not None
    src = _Source(
        data, batch_size, holdout, generator, dev, y_dtype=None if categorical else torch.float32
    )
    if categorical:
        nc = int(num_classes)  # type: ignore[arg-type]

        def build() -> nn.Module:
            return _CategoricalDecoder(src.d_x, nc, hidden)
    else:

        def build() -> nn.Module:
            return _GaussianDecoder(src.d_x, src.d_y, hidden)

    dec = _init_module(build, seed, dev)
    h = float(entropy_y)

    # maximise the mean log-likelihood; H(Y) is added to the curve and values in float64
    curve = h + _train_critic(dec, src, _mean_log_likelihood, num_steps, lr)
    vals = h + _evaluate(dec, src, num_eval_batches, _mean_log_likelihood)
    return _result("barber_agakov", curve, vals, src)
