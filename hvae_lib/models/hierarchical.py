r"""Hierarchical VAEs with generalized top-down inference and per-layer rates (rate splitting).

Xiao & Bamler, *Trading Information between Latents in Hierarchical Variational
Autoencoders*, ICLR 2023. Layers are numbered **bottom-up**: :math:`z_1` sits next to
:math:`x`, :math:`z_L` is the top layer (the authors' code calls :math:`z_1` ``y`` and
:math:`z_2` ``z``; see :func:`!betas_from_authors`).

Generative model (the decoder sees only :math:`z_1`)

.. math::
    p_\theta(x, z_{1:L}) = p(z_L)\prod_{l=1}^{L-1} p_\theta(z_l\mid z_{>l})\;p_\theta(x\mid z_1),
    \qquad p(z_L)=\mathcal N(0, I).

Generalized top-down inference (latents inferred in the generative order)

.. math::
    q_\phi(z_{1:L}\mid x) = q_\phi(z_L\mid x)\prod_{l=1}^{L-1} q_\phi(z_l\mid z_{>l}, x).

Because both joints factorise in the same order, the chain rule of KL splits the total rate
into non-negative per-layer rates (the decomposition the paper states; the proof in the book is
ours):

.. math::
    \mathrm{KL}[q(z_{1:L}|x)\,\|\,p(z_{1:L})] &= R(z_L) + \sum_{l=1}^{L-1} R(z_l\mid z_{>l}),\\
    R(z_l\mid z_{>l}) &= \mathbb E_{q(z_{>l}|x)}\mathrm{KL}[q(z_l|z_{>l},x)\,\|\,p(z_l|z_{>l})].

:meth:`HierarchicalVAE.forward` estimates each rate with the analytic Gaussian KL evaluated at
**one** reparameterised ancestral sample of the higher layers (as the authors do), and the
distortion :math:`D = -\log p(x\mid z_1)` at the sampled :math:`z_1`. The rate-splitting
objective is :math:`\mathbb E_x[D + \sum_l \beta_l R_l]` with ``betas[l-1]`` weighting
:math:`R(z_l\mid z_{>l})` (and ``betas[L-1]`` weighting :math:`R(z_L)`).

Two inference variants:

``"separate"``
    every conditional :math:`q(z_l\mid z_{>l}, x)` has its **own** network on :math:`x`, merged with
    a branch on :math:`z_{>l}` (the authors' main model ``HVAE_Fixed_z``).
``"ladder"``
    one shared deterministic feature :math:`d(x)`; each lower layer combines a bottom-up
    Gaussian estimate :math:`(\hat\mu,\hat\sigma^2)` computed from :math:`d(x)` with the
    conditional prior by precision weighting (Sønderby et al. 2016; the authors' LVAE
    variant), see :func:`precision_weighted_merge`.

Two bodies: ``"mlp"`` (all blocks MLPs; :func:`prototype_preset` is the CPU prototype) and
``"conv"`` (the authors' convolutional geometry; :math:`z_1` is a ``[latent_dims[0], 4, 4]``
tensor, higher layers are vectors). :func:`paper_preset` gives the authors' SVHN/CIFAR-10
model (475,811 parameters) and their MNIST geometry (122,713 parameters).

Every standard deviation is ``softplus(.) + std_floor`` (one convention for posteriors and
conditional priors; the authors' code mixes softplus-std without a floor and softplus-variance,
which made two of their grid points diverge).

Used in: :ref:`ch-rate-splitting`
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConfigBase
from ..distributions import LIKELIHOODS, diag_gaussian, distortion, gaussian_kl
from .blocks import mlp
from .vae import check_choice, check_input_shape

ARCHITECTURES: tuple[str, ...] = ("mlp", "conv")
"""Valid values of ``architecture`` in :class:`HierarchicalVAEConfig`."""

INFERENCE_VARIANTS: tuple[str, ...] = ("separate", "ladder")
"""Valid values of ``inference`` in :class:`HierarchicalVAEConfig`."""

PAPER_PRESETS: tuple[str, ...] = ("svhn", "cifar10", "mnist")
"""Names accepted by :func:`paper_preset`."""

BOTTOM: int = 4
"""Spatial size of the convolutional bottom latent :math:`z_1` (4×4, as in the authors' code)."""


# ----------------------------------------------------------------------------------------------
# configuration
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HierarchicalVAEConfig(ConfigBase):
    """Architecture of a :class:`HierarchicalVAE` (round-trips to JSON).

    Attributes
    ----------
    input_shape : ``(C, H, W)`` of the images.
    latent_dims : sizes of the layers **bottom-up**, ``(dim z_1, ..., dim z_L)``, ``L >= 2``.
        With ``architecture="conv"``, ``latent_dims[0]`` is the number of channels of the
        convolutional :math:`z_1` of shape ``[latent_dims[0], 4, 4]``; higher layers are vectors.
    architecture : ``"mlp"`` or ``"conv"`` (conv needs square images of size ``4·2^k`` or 28).
    inference : ``"separate"`` (own x-network per layer; the authors' main model) or
        ``"ladder"`` (shared feature ``d(x)``, precision-weighted merge with the prior).
    hidden : width of the MLP layers (mlp body; the dense layers of intermediate layers for conv).
    prior_hidden : hidden width of each conditional prior :math:`p(z_l\\mid z_{>l})` (one
        hidden ReLU layer; the authors use ``dim z_1 / 2``).
    channels : convolution channels ``c`` (conv body).
    likelihood : ``"gaussian"`` (fixed ``sigma``; decoder outputs the mean, no output
        nonlinearity) or ``"bernoulli"`` (decoder outputs logits).
    sigma : the Gaussian likelihood's standard deviation. It acts as a global β scale:
        :math:`(\\sigma, \\beta)` and :math:`(\\sigma', \\beta\\sigma^2/\\sigma'^2)` train the same model.
    std_floor : added to every ``softplus`` standard deviation.


    Used in: :ref:`ch-rate-splitting`
    """

    input_shape: tuple[int, int, int] = (1, 8, 8)
    latent_dims: tuple[int, ...] = (16, 8)
    architecture: str = "mlp"
    inference: str = "separate"
    hidden: int = 64
    prior_hidden: int = 32
    channels: int = 32
    likelihood: str = "gaussian"
    sigma: float = 0.1
    std_floor: float = 1e-4

    def __post_init__(self) -> None:
        check_choice("architecture", self.architecture, ARCHITECTURES)
        check_choice("inference variant", self.inference, INFERENCE_VARIANTS)
        check_choice("likelihood", self.likelihood, LIKELIHOODS)
        check_input_shape(self.input_shape)
        if len(self.latent_dims) < 2:
            raise ValueError(
                f"a hierarchical VAE needs L >= 2 layers, got latent_dims={self.latent_dims}"
            )
        if any(int(d) <= 0 for d in self.latent_dims):
            raise ValueError(f"latent_dims must be positive, got {self.latent_dims}")
        for name in ("hidden", "prior_hidden", "channels"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not (self.sigma > 0 and math.isfinite(self.sigma)):
            raise ValueError(f"sigma must be positive and finite, got {self.sigma}")
        if not (self.std_floor >= 0 and math.isfinite(self.std_floor)):
            raise ValueError(f"std_floor must be non-negative and finite, got {self.std_floor}")
        if self.architecture == "conv":
            _, h, w = self.input_shape
            if h != w:
                raise ValueError(f"the conv architecture needs square images, got {h}x{w}")
            conv_resolutions(int(h))  # raises for unsupported sizes

    @property
    def num_layers(self) -> int:
        """Number of latent layers L."""
        return len(self.latent_dims)

    @property
    def latent_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Per-layer sample shapes without the batch dimension, bottom-up."""
        dims = [int(d) for d in self.latent_dims]
        first: tuple[int, ...] = (
            (dims[0], BOTTOM, BOTTOM) if self.architecture == "conv" else (dims[0],)
        )
        return (first, *((d,) for d in dims[1:]))

    @property
    def latent_sizes(self) -> tuple[int, ...]:
        """Number of scalar dimensions of each layer, bottom-up."""
        return tuple(math.prod(s) for s in self.latent_shapes)


def conv_resolutions(resolution: int) -> list[int]:
    """Spatial sizes of the conv chain from the input down to 4×4.

    ``4·2^k`` halves each step (``[32, 16, 8, 4]``); 28 follows the authors' MNIST geometry
    ``[28, 14, 7, 4]`` (the last step is a kernel-4, stride-1, unpadded convolution).

    Raises
    ------
    ValueError
        For any other size.


    Used in: :ref:`ch-rate-splitting`
    """
    r = int(resolution)
    if r == 28:
        return [28, 14, 7, 4]
    if r >= 2 * BOTTOM and r % BOTTOM == 0 and (r // BOTTOM) & (r // BOTTOM - 1) == 0:
        out = [r]
        while out[-1] > BOTTOM:
            out.append(out[-1] // 2)
        return out
    raise ValueError(
        f"the conv architecture supports image sizes 8, 16, 32, 64, ... and 28, got {r}"
    )


def _down(c_in: int, c_out: int, r_in: int, r_out: int) -> nn.Conv2d:
    if r_out * 2 == r_in:
        return nn.Conv2d(c_in, c_out, kernel_size=4, stride=2, padding=1)
    return nn.Conv2d(c_in, c_out, kernel_size=4, stride=1, padding=0)  # 7 -> 4


def _up(c_in: int, c_out: int, r_in: int, r_out: int) -> nn.ConvTranspose2d:
    if r_in * 2 == r_out:
        return nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1)
    return nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=1, padding=0)  # 4 -> 7


def _conv_chain(c_in: int, c: int, resolutions: Sequence[int]) -> nn.Sequential:
    """ReLU convolutions through ``resolutions`` (len k+1 gives k convolutions, c channels)."""
    layers: list[nn.Module] = []
    for r_in, r_out in zip(resolutions[:-1], resolutions[1:]):
        layers += [_down(c_in, c, r_in, r_out), nn.ReLU()]
        c_in = c
    return nn.Sequential(*layers)


# ----------------------------------------------------------------------------------------------
# Gaussian heads and the ladder merge
# ----------------------------------------------------------------------------------------------
class SoftplusGaussianHead(nn.Module):
    """A layer producing ``2k`` features/channels split into a mean and a softplus std.

    ``h`` ``[B, F]`` (or ``[B, C, H, W]`` for a conv layer) -> ``(mu, std)`` each of shape
    ``[B, *shape]``, with :math:`\\sigma = \\mathrm{softplus}(s) + \\text{floor}`.

    Used in: :ref:`ch-rate-splitting`
    """

    def __init__(self, layer: nn.Module, shape: Sequence[int], floor: float) -> None:
        super().__init__()
        self.layer = layer
        self.shape = tuple(int(s) for s in shape)
        self.floor = float(floor)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(mu, std)``, each ``[B, *shape]``."""
        mu, s = self.layer(h).chunk(2, dim=1)
        mu = mu.reshape(mu.shape[0], *self.shape)
        s = s.reshape(s.shape[0], *self.shape)
        return mu, F.softplus(s) + self.floor


def precision_weighted_merge(
    mu_hat: torch.Tensor, std_hat: torch.Tensor, mu_p: torch.Tensor, std_p: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Ladder-VAE merge of a bottom-up Gaussian estimate with the conditional prior.

    .. math::
        \sigma^2 = \frac{\hat\sigma^2\sigma_p^2}{\hat\sigma^2+\sigma_p^2},\qquad
        \mu = \frac{\hat\mu\,\sigma_p^2 + \mu_p\,\hat\sigma^2}{\hat\sigma^2+\sigma_p^2}

    (Sønderby et al. 2016; the product of the two Gaussian densities, renormalised). All
    arguments broadcast (typically ``[B, *shape]``). Returns ``(mu, std)``.

    Used in: :ref:`ch-rate-splitting`
    """
    v_hat, v_p = std_hat**2, std_p**2
    total = v_hat + v_p
    mu = (mu_hat * v_p + mu_p * v_hat) / total
    return mu, torch.sqrt(v_hat * v_p / total)


@contextlib.contextmanager
def _without_distribution_validation() -> Iterator[None]:
    """Build ``torch.distributions`` objects without argument validation inside the block.

    Validation raises on NaN parameters, so a diverged model would crash instead of
    producing a non-finite loss that the training loops' non-finite guard skips; it is also
    data-dependent control flow, which ``torch.func.vmap`` (the ensemble trainer) cannot batch.
    """
    previous = torch.distributions.Distribution._validate_args
    torch.distributions.Distribution.set_default_validate_args(False)
    try:
        yield
    finally:
        torch.distributions.Distribution.set_default_validate_args(previous)


def _logvar(std: torch.Tensor) -> torch.Tensor:
    return 2.0 * torch.log(std)


def _flat_cat(zs: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([z.flatten(1) for z in zs], dim=1)


def _layer_name(l: int, L: int) -> str:
    """``z_{>l}`` as a short string: ``z2`` when only one layer is above, else ``z>l``."""
    return f"z{l + 1}" if l + 1 == L else f"z>{l}"


# ----------------------------------------------------------------------------------------------
# building blocks of the two inference variants
# ----------------------------------------------------------------------------------------------
class _TopPosterior(nn.Module):
    """:math:`q(z_L\\mid x)` for the separate variant: body on x, then a Gaussian head."""

    def __init__(self, body: nn.Module, head: SoftplusGaussianHead) -> None:
        super().__init__()
        self.body, self.head = body, head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.body(x))


class _ConditionalPosterior(nn.Module):
    """:math:`q(z_l\\mid z_{>l}, x)`: [x-branch ‖ z-branch] -> merge -> Gaussian head."""

    def __init__(
        self, x_branch: nn.Module, z_branch: nn.Module, merge: nn.Module, head: SoftplusGaussianHead
    ) -> None:
        super().__init__()
        self.x_branch, self.z_branch, self.merge, self.head = x_branch, z_branch, merge, head

    def forward(self, x: torch.Tensor, above: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.cat([self.x_branch(x), self.z_branch(above)], dim=1)
        return self.head(self.merge(h))


class _ConditionalPrior(nn.Module):
    """:math:`p(z_l\\mid z_{>l})`: one hidden ReLU layer, then a Gaussian head."""

    def __init__(self, d_above: int, hidden: int, shape: Sequence[int], floor: float) -> None:
        super().__init__()
        size = math.prod(shape)
        self.body = nn.Sequential(nn.Linear(d_above, hidden), nn.ReLU())
        self.head = SoftplusGaussianHead(nn.Linear(hidden, 2 * size), shape, floor)

    def forward(self, above: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.body(above))


class _BottomUp(nn.Module):
    """Ladder variant: a Gaussian estimate of one layer from the shared feature ``d(x)``."""

    def __init__(self, body: nn.Module, head: SoftplusGaussianHead) -> None:
        super().__init__()
        self.body, self.head = body, head

    def forward(self, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.body(d))


# ----------------------------------------------------------------------------------------------
# output
# ----------------------------------------------------------------------------------------------
@dataclass
class HierarchicalOutput:
    r"""What :meth:`HierarchicalVAE.forward` returns (``B`` examples, ``L`` layers).

    Per-layer sequences are indexed **bottom-up**: entry ``l-1`` belongs to :math:`z_l`.

    Attributes
    ----------
    distortion : ``[B]`` nats, :math:`-\log p(x\mid z_1)` at the sampled :math:`z_1`.
    rates : ``[B, L]`` nats; column ``l-1`` is the analytic
        :math:`\mathrm{KL}[q(z_l|z_{>l},x)\|p(z_l|z_{>l})]` at the sampled :math:`z_{>l}` (a
        one-sample estimate of :math:`R(z_l\mid z_{>l})`); the last column is :math:`R(z_L)`.
    means, logvars : per layer ``[B, *shape_l]``, mean and log-variance of
        :math:`q(z_l\mid z_{>l},x)` at the sampled higher layers (``means[-1]`` is the top
        posterior mean :math:`\mu_L(x)`): the library's one posterior parameterisation
        ``(mu, logvar)``, as in every model.
    prior_means, prior_logvars : per layer, the same for :math:`p(z_l\mid z_{>l})` at the
        sampled higher layers (zeros for the top layer).
    samples : per layer the reparameterised sample :math:`z_l`.
    decoder_out : ``[B, C, H, W]`` logits (Bernoulli) or means (Gaussian) at :math:`z_1`.


    Used in: :ref:`ch-rate-splitting`
    """

    distortion: torch.Tensor
    rates: torch.Tensor
    means: tuple[torch.Tensor, ...]
    logvars: tuple[torch.Tensor, ...]
    prior_means: tuple[torch.Tensor, ...]
    prior_logvars: tuple[torch.Tensor, ...]
    samples: tuple[torch.Tensor, ...]
    decoder_out: torch.Tensor

    @property
    def rate(self) -> torch.Tensor:
        """``[B]``: total rate :math:`\\sum_l R_l`."""
        return self.rates.sum(-1)

    @property
    def elbo(self) -> torch.Tensor:
        """``[B]``: :math:`-(D + \\sum_l R_l)`."""
        return -(self.distortion + self.rate)

    def objective(self, betas: Sequence[float] | torch.Tensor) -> torch.Tensor:
        """``[B]``: :math:`D + \\sum_l \\beta_l R_l` (``betas`` bottom-up, length L)."""
        b = torch.as_tensor(betas, dtype=self.rates.dtype, device=self.rates.device)
        if b.shape != self.rates.shape[-1:]:
            raise ValueError(
                f"need {self.rates.shape[-1]} betas (one per layer), got {tuple(b.shape)}"
            )
        return self.distortion + (self.rates * b).sum(-1)

    def loss(self, betas: Sequence[float] | torch.Tensor) -> torch.Tensor:
        """Scalar batch mean of :meth:`objective`."""
        return self.objective(betas).mean()

    def log_ratio(self) -> torch.Tensor:
        r"""``[B]``: :math:`\log q(z_{1:L}\mid x) - \log p(z_{1:L})` at the drawn samples.

        An unbiased one-sample Monte-Carlo estimate of the total rate
        :math:`\mathrm{KL}[q(z_{1:L}|x)\|p(z_{1:L})]`; its average over samples equals the
        average of ``rates.sum(-1)`` (the decomposition), which the tests check.
        """
        total = torch.zeros_like(self.distortion)
        with _without_distribution_validation():
            for mu, lv, mp, lvp, z in zip(
                self.means, self.logvars, self.prior_means, self.prior_logvars, self.samples
            ):
                q = diag_gaussian(mu.flatten(1), lv.flatten(1))
                p = diag_gaussian(mp.flatten(1), lvp.flatten(1))
                total = total + q.log_prob(z.flatten(1)) - p.log_prob(z.flatten(1))
        return total


# ----------------------------------------------------------------------------------------------
# the model
# ----------------------------------------------------------------------------------------------
class HierarchicalVAE(nn.Module):
    r"""L-layer VAE with generalized top-down inference (see the module docstring).

    ``forward(x)``: ``x`` ``[B, C, H, W]`` -> :class:`HierarchicalOutput` with ``distortion``
    ``[B]`` and ``rates`` ``[B, L]``. Device-agnostic: move it with ``.to(device)``; every
    tensor it creates follows its inputs. The likelihood's σ is stored in the config **and**
    as the buffer ``sigma``; loading a state dict whose σ differs from the config raises (a
    guard against the authors' bug of evaluating with the wrong σ).

    Used in: :ref:`ch-rate-splitting`
    """

    def __init__(self, config: HierarchicalVAEConfig) -> None:
        super().__init__()
        self.config = config
        cfg = config
        c_in, h, w = (int(s) for s in cfg.input_shape)
        num_in = c_in * h * w
        shapes, sizes = cfg.latent_shapes, cfg.latent_sizes
        L, hid, fl = cfg.num_layers, int(cfg.hidden), float(cfg.std_floor)
        conv = cfg.architecture == "conv"
        c = int(cfg.channels)
        res = conv_resolutions(h) if conv else []
        flat_x = nn.Flatten()
        above_sizes = [sum(sizes[l:]) for l in range(1, L)]  # above_sizes[l-1] = dim z_{>l}

        # conditional priors p(z_l | z_{>l}), l = 1..L-1
        self.priors = nn.ModuleList(
            _ConditionalPrior(above_sizes[i], int(cfg.prior_hidden), shapes[i], fl)
            for i in range(L - 1)
        )

        def flat_head(f: int, i: int) -> SoftplusGaussianHead:
            return SoftplusGaussianHead(nn.Linear(f, 2 * sizes[i]), shapes[i], fl)

        if cfg.inference == "separate":
            posts: list[nn.Module] = []
            for i in range(L - 1):  # layer l = i + 1
                if not conv:
                    posts.append(
                        _ConditionalPosterior(
                            nn.Sequential(flat_x, nn.Linear(num_in, hid), nn.ReLU()),
                            nn.Sequential(nn.Linear(above_sizes[i], hid), nn.ReLU()),
                            nn.Sequential(nn.Linear(2 * hid, hid), nn.ReLU()),
                            flat_head(hid, i),
                        )
                    )
                elif i == 0:  # convolutional z_1: the authors' q(z1 | z2, x)
                    m = res[-2]
                    x_branch = _conv_chain(c_in, c, res[:-1])
                    c_x = c if len(res) > 2 else c_in
                    z_branch = nn.Sequential(
                        nn.Linear(above_sizes[0], c * BOTTOM * BOTTOM),
                        nn.ReLU(),
                        nn.Unflatten(1, (c, BOTTOM, BOTTOM)),
                        _up(c, c, BOTTOM, m),
                        nn.ReLU(),
                    )
                    merge = nn.Sequential(_down(c_x + c, c, m, BOTTOM), nn.ReLU())
                    head = SoftplusGaussianHead(
                        nn.Conv2d(c, 2 * shapes[0][0], 3, 1, 1), shapes[0], fl
                    )
                    posts.append(_ConditionalPosterior(x_branch, z_branch, merge, head))
                else:  # intermediate vector layer of a conv model (our generalisation, L >= 3)
                    posts.append(
                        _ConditionalPosterior(
                            nn.Sequential(
                                _conv_chain(c_in, c, res),
                                nn.Flatten(),
                                nn.Linear(c * BOTTOM * BOTTOM, hid),
                                nn.ReLU(),
                            ),
                            nn.Sequential(nn.Linear(above_sizes[i], hid), nn.ReLU()),
                            nn.Sequential(nn.Linear(2 * hid, hid), nn.ReLU()),
                            flat_head(hid, i),
                        )
                    )
            if conv:
                top_body: nn.Module = nn.Sequential(_conv_chain(c_in, c, res), nn.Flatten())
                top_feat = c * BOTTOM * BOTTOM
            else:
                top_body = nn.Sequential(flat_x, mlp([num_in, hid, hid], final_activation=True))
                top_feat = hid
            posts.append(_TopPosterior(top_body, flat_head(top_feat, L - 1)))
            self.posteriors = nn.ModuleList(posts)
        else:  # ladder: shared d(x), bottom-up estimates, precision-weighted merge
            if conv:
                self.shared: nn.Module = _conv_chain(c_in, c, res[:-1])
                c_d, m = (c if len(res) > 2 else c_in), res[-2]

                def reduce() -> list[nn.Module]:
                    return [_down(c_d, c, m, BOTTOM), nn.ReLU()]

                ups: list[nn.Module] = []
                for i in range(L - 1):
                    if i == 0:
                        ups.append(
                            _BottomUp(
                                nn.Sequential(*reduce()),
                                SoftplusGaussianHead(
                                    nn.Conv2d(c, 2 * shapes[0][0], 3, 1, 1), shapes[0], fl
                                ),
                            )
                        )
                    else:
                        ups.append(
                            _BottomUp(
                                nn.Sequential(
                                    *reduce(),
                                    nn.Flatten(),
                                    nn.Linear(c * BOTTOM * BOTTOM, hid),
                                    nn.ReLU(),
                                ),
                                flat_head(hid, i),
                            )
                        )
                ups.append(
                    _BottomUp(
                        nn.Sequential(*reduce(), nn.Flatten()),
                        flat_head(c * BOTTOM * BOTTOM, L - 1),
                    )
                )
            else:
                self.shared = nn.Sequential(flat_x, mlp([num_in, hid, hid], final_activation=True))
                ups = [
                    _BottomUp(nn.Sequential(nn.Linear(hid, hid), nn.ReLU()), flat_head(hid, i))
                    for i in range(L - 1)
                ]
                ups.append(_BottomUp(nn.Identity(), flat_head(hid, L - 1)))
            self.posteriors = nn.ModuleList(ups)

        # decoder p(x | z_1): Gaussian mean or Bernoulli logits, no output nonlinearity
        if conv:
            ups_res = list(reversed(res))
            layers: list[nn.Module] = []
            ch = shapes[0][0]
            for j, (r_in, r_out) in enumerate(zip(ups_res[:-1], ups_res[1:])):
                last = j == len(ups_res) - 2
                layers.append(_up(ch, c_in if last else c, r_in, r_out))
                if not last:
                    layers.append(nn.ReLU())
                ch = c
            self.decoder: nn.Module = nn.Sequential(*layers)
        else:
            self.decoder = nn.Sequential(
                mlp([sizes[0], hid, hid, num_in]), nn.Unflatten(1, (c_in, h, w))
            )
        self.register_buffer("sigma", torch.tensor(float(cfg.sigma)))

    # -- bookkeeping ---------------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        """Number of latent layers L."""
        return self.config.num_layers

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def block_parameter_counts(self) -> dict[str, int]:
        """Trainable parameters per block, e.g. for L = 2 (separate inference)
        ``{"q(z2|x)": ..., "q(z1|z2,x)": ..., "p(z1|z2)": ..., "p(x|z1)": ...}``; the ladder
        variant adds ``"d(x)"`` and names the bottom-up blocks ``"q^(z_l|d)"``.
        """

        def n(mod: nn.Module) -> int:
            return sum(p.numel() for p in mod.parameters() if p.requires_grad)

        L = self.num_layers
        out: dict[str, int] = {}
        if self.config.inference == "ladder":
            out["d(x)"] = n(self.shared)
            for l in range(L, 0, -1):
                out[f"q^(z{l}|d)"] = n(self.posteriors[l - 1])
        else:
            out[f"q(z{L}|x)"] = n(self.posteriors[L - 1])
            for l in range(L - 1, 0, -1):
                out[f"q(z{l}|{_layer_name(l, L)},x)"] = n(self.posteriors[l - 1])
        for l in range(L - 1, 0, -1):
            out[f"p(z{l}|{_layer_name(l, L)})"] = n(self.priors[l - 1])
        out["p(x|z1)"] = n(self.decoder)
        return out

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ):  # type: ignore[override]
        """``nn.Module.load_state_dict`` that refuses a stored σ different from ``config.sigma``."""
        if "sigma" in state_dict:
            stored = float(torch.as_tensor(state_dict["sigma"]))
            if not math.isclose(stored, float(self.config.sigma), rel_tol=1e-6):
                raise ValueError(
                    f"state dict was trained with sigma={stored}, but this model's config has "
                    f"sigma={self.config.sigma}; build the model from the matching config"
                )
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or tuple(x.shape[1:]) != tuple(int(s) for s in self.config.input_shape):
            raise ValueError(
                f"expected input [B, {', '.join(str(int(s)) for s in self.config.input_shape)}], "
                f"got {tuple(x.shape)}"
            )

    def _reference(self) -> torch.Tensor:
        return self.sigma

    # -- noise ---------------------------------------------------------------------------------
    def draw_noise(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> list[torch.Tensor]:
        """Standard-normal noise for one forward pass, drawn **top-down** (z_L first).

        Returns a list indexed bottom-up (entry ``l-1`` has shape ``[B, *shape_l]``).
        :meth:`forward` draws exactly these tensors in this order when ``noise`` is not given,
        so passing ``draw_noise(...)`` with the same generator state reproduces it (the
        ensemble trainer relies on this).
        """
        ref = self._reference()
        device = ref.device if device is None else device
        dtype = ref.dtype if dtype is None else dtype
        out: list[torch.Tensor] = [torch.empty(0)] * self.num_layers
        for i in reversed(range(self.num_layers)):
            out[i] = torch.randn(
                (int(batch_size), *self.config.latent_shapes[i]),
                generator=generator,
                device=device,
                dtype=dtype,
            )
        return out

    # -- the passes ----------------------------------------------------------------------------
    def _posterior_params(
        self,
        i: int,
        x: torch.Tensor,
        d: torch.Tensor | None,
        above: torch.Tensor | None,
        prior: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of :math:`q(z_{i+1}\\mid z_{>i+1}, x)`."""
        L = self.num_layers
        if self.config.inference == "separate":
            if i == L - 1:
                return self.posteriors[i](x)
            return self.posteriors[i](x, above)
        mu_hat, std_hat = self.posteriors[i](d)
        if i == L - 1:
            return mu_hat, std_hat
        assert prior is not None
        return precision_weighted_merge(mu_hat, std_hat, prior[0], prior[1])

    def forward(
        self,
        x: torch.Tensor,
        generator: torch.Generator | None = None,
        noise: Sequence[torch.Tensor] | None = None,
    ) -> HierarchicalOutput:
        r"""Distortion and per-layer rates per example; see :class:`HierarchicalOutput`.

        One top-down ancestral pass: :math:`z_L\sim q(z_L|x)`; for :math:`l = L-1,\dots,1`
        evaluate :math:`q(z_l|z_{>l},x)` and :math:`p(z_l|z_{>l})` at the sampled
        :math:`z_{>l}` (never detached, so :math:`R(z_l|z_{>l})` trains the higher posteriors
        too), take the analytic KL summed over the layer's dimensions, and sample :math:`z_l`.

        Parameters
        ----------
        x : ``[B, C, H, W]`` images (``[0, 1]`` for the Bernoulli likelihood).
        generator : torch generator for the noise (on ``x``'s device); ``None`` uses torch's
            global RNG.
        noise : optional pre-drawn standard-normal noise, as returned by :meth:`draw_noise`.
        """
        self._check_input(x)
        L = self.num_layers
        if noise is None:
            noise = self.draw_noise(x.shape[0], generator=generator, device=x.device, dtype=x.dtype)
        if len(noise) != L:
            raise ValueError(f"need {L} noise tensors, got {len(noise)}")
        d = self.shared(x) if self.config.inference == "ladder" else None
        means: list[torch.Tensor] = [x] * L
        stds, pmeans, pstds, zs, kls = (
            list(means),
            list(means),
            list(means),
            list(means),
            list(means),
        )
        for i in reversed(range(L)):
            if i == L - 1:
                above = None
                mu, std = self._posterior_params(i, x, d, None, None)
                mu_p, std_p = torch.zeros_like(mu), torch.ones_like(std)
                kl = gaussian_kl(mu, _logvar(std))
            else:
                above = _flat_cat(zs[i + 1 :])
                mu_p, std_p = self.priors[i](above)
                mu, std = self._posterior_params(i, x, d, above, (mu_p, std_p))
                kl = gaussian_kl(mu, _logvar(std), mu_p, _logvar(std_p))
            means[i], stds[i], pmeans[i], pstds[i] = mu, std, mu_p, std_p
            zs[i] = mu + std * noise[i]
            kls[i] = kl.flatten(1).sum(-1)
        out = self.decoder(zs[0])
        with _without_distribution_validation():
            dist = distortion(x, out, self.config.likelihood, float(self.config.sigma))
        return HierarchicalOutput(
            distortion=dist,
            rates=torch.stack(kls, dim=-1),
            means=tuple(means),
            logvars=tuple(_logvar(s) for s in stds),
            prior_means=tuple(pmeans),
            prior_logvars=tuple(_logvar(s) for s in pstds),
            samples=tuple(zs),
            decoder_out=out,
        )

    def rate_per_layer(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``[B, L]`` per-layer rates of ``x`` (column ``l-1``: :math:`R(z_l\\mid z_{>l})`; see :meth:`forward`)."""
        return self.forward(x, generator=generator).rates

    def top_posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, C, H, W] -> (mu_L, logvar_L)`` each ``[B, dim z_L]``: :math:`q(z_L\\mid x)`."""
        self._check_input(x)
        d = self.shared(x) if self.config.inference == "ladder" else None
        mu, std = self._posterior_params(self.num_layers - 1, x, d, None, None)
        return mu, _logvar(std)

    def posterior_means(self, x: torch.Tensor) -> list[torch.Tensor]:
        r"""Posterior means propagated top-down, listed **bottom-up** (entry ``l-1`` is :math:`\bar z_l`).

        :math:`\bar z_L = \mathbb E\,q(z_L|x)`, then :math:`\bar z_l = \mathbb E\,q(z_l\mid
        \bar z_{>l}, x)` (the authors' reconstruction protocol). Bottom-up, like every
        per-layer sequence of the library (the top layer is last), as
        :func:`hvae_lib.metrics.representation.representation` expects. ``x`` ``[B, C, H, W]``.
        """
        self._check_input(x)
        L = self.num_layers
        d = self.shared(x) if self.config.inference == "ladder" else None
        bars: list[torch.Tensor] = [x] * L
        for i in reversed(range(L)):
            if i == L - 1:
                bars[i] = self._posterior_params(i, x, d, None, None)[0]
            else:
                above = _flat_cat(bars[i + 1 :])
                prior = self.priors[i](above)
                bars[i] = self._posterior_params(i, x, d, above, prior)[0]
        return bars

    def decode(self, z1: torch.Tensor) -> torch.Tensor:
        """``[B, *shape_1] -> [B, C, H, W]`` decoder output (logits or means)."""
        return self.decoder(z1)

    def mean_image(self, z1: torch.Tensor) -> torch.Tensor:
        """:math:`\\mathbb E[x\\mid z_1]` in data space: sigmoid of logits, or the Gaussian mean."""
        out = self.decode(z1)
        return torch.sigmoid(out) if self.config.likelihood == "bernoulli" else out

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior-mean reconstruction :math:`\\mathbb E[x\\mid\\bar z_1]` ``[B, C, H, W]`` (unclamped)."""
        return self.mean_image(self.posterior_means(x)[0])

    @torch.no_grad()
    def sample(
        self, n: int, generator: torch.Generator | None = None, *, sample_lower: bool = True
    ) -> torch.Tensor:
        r"""Ancestral samples: :math:`z_L\sim\mathcal N(0,I)`, :math:`z_l\sim p(z_l|z_{>l})`
        (or its mean with ``sample_lower=False``), image = :meth:`mean_image` of :math:`z_1`.

        Returns ``[n, C, H, W]`` (unclamped; clamp before image metrics).
        """
        ref = self._reference()
        L = self.num_layers
        zs: list[torch.Tensor] = [ref] * L
        zs[L - 1] = torch.randn(
            (int(n), *self.config.latent_shapes[L - 1]),
            generator=generator,
            device=ref.device,
            dtype=ref.dtype,
        )
        for i in reversed(range(L - 1)):
            mu, std = self.priors[i](_flat_cat(zs[i + 1 :]))
            if sample_lower:
                eps = torch.randn(mu.shape, generator=generator, device=ref.device, dtype=ref.dtype)
                zs[i] = mu + std * eps
            else:
                zs[i] = mu
        return self.mean_image(zs[0])


# ----------------------------------------------------------------------------------------------
# presets
# ----------------------------------------------------------------------------------------------
def prototype_preset(
    input_shape: tuple[int, int, int] = (1, 8, 8), **changes: Any
) -> HierarchicalVAEConfig:
    """The CPU prototype (ours): MLP body, ``dim z_2 = 8``, ``dim z_1 = 16``,
    hidden 64, prior hidden 32, Gaussian σ = 0.1; 35,184 parameters on 8×8 digits.

    Used in: :ref:`ch-rate-splitting`
    """
    cfg = HierarchicalVAEConfig(
        input_shape=input_shape,
        latent_dims=(16, 8),
        architecture="mlp",
        inference="separate",
        hidden=64,
        prior_hidden=32,
        likelihood="gaussian",
        sigma=0.1,
        std_floor=1e-4,
    )
    return cfg.replace(**changes) if changes else cfg


def paper_preset(dataset: str = "svhn", **changes: Any) -> HierarchicalVAEConfig:
    """The authors' ``HVAE_Fixed_z`` architecture (paper profile).

    ``"svhn"`` / ``"cifar10"``: 32×32×3 input, ``c = 32``, ``dim z_2 = 32``,
    :math:`z_1` = 32×4×4, prior hidden 256, Gaussian σ = 0.71: **475,811 parameters** in the
    blocks ``q(z2|x)`` 67,232, ``q(z1|z2,x)`` 102,592, ``p(z1|z2)`` 271,616, ``p(x|z1)`` 34,371.
    ``"mnist"``: 28×28×1, ``c = 16``, ``dim z_2 = 20``, :math:`z_1` = 16×4×4, prior hidden 128:
    122,713 parameters. The MNIST likelihood used in the paper is unverified (σ = 0.71 here).
    ``changes`` override fields (e.g. ``inference="ladder"``).

    Raises
    ------
    ValueError
        For an unknown dataset name.


    Used in: :ref:`ch-rate-splitting`
    """
    key = str(dataset).lower().replace("-", "")
    if key in ("svhn", "cifar10"):
        cfg = HierarchicalVAEConfig(
            input_shape=(3, 32, 32),
            latent_dims=(32, 32),
            architecture="conv",
            inference="separate",
            hidden=256,
            prior_hidden=256,
            channels=32,
            likelihood="gaussian",
            sigma=0.71,
            std_floor=1e-4,
        )
    elif key == "mnist":
        cfg = HierarchicalVAEConfig(
            input_shape=(1, 28, 28),
            latent_dims=(16, 20),
            architecture="conv",
            inference="separate",
            hidden=128,
            prior_hidden=128,
            channels=16,
            likelihood="gaussian",
            sigma=0.71,
            std_floor=1e-4,
        )
    else:
        raise ValueError(f"unknown paper preset {dataset!r}; valid: {', '.join(PAPER_PRESETS)}")
    return cfg.replace(**changes) if changes else cfg


__all__ = [
    "ARCHITECTURES",
    "INFERENCE_VARIANTS",
    "PAPER_PRESETS",
    "HierarchicalVAEConfig",
    "HierarchicalVAE",
    "HierarchicalOutput",
    "SoftplusGaussianHead",
    "precision_weighted_merge",
    "conv_resolutions",
    "prototype_preset",
    "paper_preset",
]
