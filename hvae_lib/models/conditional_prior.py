r"""A VAE whose prior is a learned conditional Gaussian :math:`p(z\mid u)` of a discrete label.

Generative model :math:`p_\psi(z\mid u)=\mathcal N(\mu_\psi(u),\mathrm{diag}\,\sigma^2_\psi(u))` with
:math:`u` a one-hot code (or concatenated one-hots) of observed labels, and the decoder
:math:`p_\theta(x\mid z)` of a :class:`~hvae_lib.models.vae.BetaVAE`; inference
:math:`q_\phi(z\mid x)`, the same encoder. The forward pass returns, per example,

.. math::
    D(x) &= -\log p_\theta(x\mid z),\ z\sim q_\phi(z\mid x),\\
    R_u(x, u) &= \mathrm{KL}\big(q_\phi(z\mid x)\,\|\,p_\psi(z\mid u)\big)\ \text{(analytic)},

and the loss is :math:`\mathbb E[D + \beta R_u]`. By T3 (our formalisation)
the average rate is :math:`\mathbb E R_u = I_q(X;Z) - I_q(Z;U) +
\mathbb E_{q(u)}\mathrm{KL}(q(z\mid u)\|p(z\mid u))`: the information that :math:`z` shares
with :math:`u` is not charged. It is the labelled half of SemafoVAE's objective with the
label itself in place of the label-VAE latent.

The training loop (:func:`!hvae_lib.train.train`) draws minibatches from one tensor, so images
and labels travel together: :func:`pack_images_labels` flattens each image and appends its
label code (``uint8`` when both are binary), and the loss of :func:`!conditional_prior_loss`
unpacks them.

Used in: :ref:`ch-transitive`
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..config import ConfigBase
from ..distributions import reparameterise
from .blocks import GaussianHead, mlp
from .vae import BetaVAE, VAEConfig, VAEOutput, vae_output

__all__ = [
    "ConditionalPriorVAEConfig",
    "ConditionalPriorVAE",
    "pack_images_labels",
    "unpack_images_labels",
]


@dataclass(frozen=True)
class ConditionalPriorVAEConfig(ConfigBase):
    """Architecture of a :class:`ConditionalPriorVAE`.

    Attributes
    ----------
    vae : encoder and decoder (the same as a :class:`~hvae_lib.models.vae.BetaVAE`'s).
    label_dim : size ``K`` of the label code :math:`u` (e.g. 16 for a one-hot of 16 classes).
    prior_hidden : hidden widths of the prior network :math:`u\\mapsto(\\mu,\\log\\sigma^2)`;
        ``()`` makes it linear, which for a one-hot :math:`u` is a table of one Gaussian per
        label.
    """

    vae: VAEConfig = field(default_factory=VAEConfig)
    label_dim: int = 10
    prior_hidden: tuple[int, ...] = ()

    _nested = {"vae": VAEConfig}

    def __post_init__(self) -> None:
        if int(self.label_dim) <= 0:
            raise ValueError(f"label_dim must be positive, got {self.label_dim}")
        if any(int(h) <= 0 for h in self.prior_hidden):
            raise ValueError(f"prior_hidden widths must be positive, got {self.prior_hidden}")


class ConditionalPriorVAE(nn.Module):
    r"""VAE with the learned conditional prior :math:`p(z\mid u)` (see the module docstring).

    ``forward(x [B, C, H, W], u [B, K])`` -> :class:`~hvae_lib.models.vae.VAEOutput` whose ``rate``
    ``[B]`` is :math:`\mathrm{KL}(q(z\mid x)\,\|\,p(z\mid u))` and ``rate_per_dim`` ``[B, D]``
    its per-dimension terms. Device-agnostic like :class:`~hvae_lib.models.vae.BetaVAE`.

    Used in: :ref:`ch-transitive`
    """

    def __init__(self, config: ConditionalPriorVAEConfig) -> None:
        super().__init__()
        self.config = config
        self.vae = BetaVAE(config.vae)  # encoder body, Gaussian head and decoder
        k, d = int(config.label_dim), int(config.vae.latent_dim)
        body: nn.Module = (
            mlp([k, *config.prior_hidden], final_activation=True)
            if config.prior_hidden
            else nn.Identity()
        )
        feat = int(config.prior_hidden[-1]) if config.prior_hidden else k
        self.prior_net = nn.Sequential(body)
        self.prior_head = GaussianHead(feat, d)

    @property
    def latent_dim(self) -> int:
        """Dimension D of the latent."""
        return self.vae.latent_dim

    @property
    def label_dim(self) -> int:
        """Size K of the label code."""
        return int(self.config.label_dim)

    def _check_u(self, u: torch.Tensor, batch: int | None = None) -> torch.Tensor:
        if (
            u.ndim != 2
            or u.shape[1] != self.label_dim
            or (batch is not None and u.shape[0] != batch)
        ):
            want = f"[{batch if batch is not None else 'B'}, {self.label_dim}]"
            raise ValueError(f"u must have shape {want}, got {tuple(u.shape)}")
        return u if u.is_floating_point() else u.float()

    def prior(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""``[B, K] -> (mu [B, D], logvar [B, D])`` of :math:`p(z\mid u)`."""
        return self.prior_head(self.prior_net(self._check_u(u)))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""``[B, C, H, W] -> (mu [B, D], logvar [B, D])`` of :math:`q(z\mid x)`."""
        return self.vae.encode(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``[B, D] -> [B, C, H, W]`` decoder output (logits or means)."""
        return self.vae.decode(z)

    def mean_image(self, z: torch.Tensor) -> torch.Tensor:
        r"""Expected image :math:`\mathbb E[x\mid z]` ``[B, C, H, W]``."""
        return self.vae.mean_image(z)

    def forward(
        self, x: torch.Tensor, u: torch.Tensor, generator: torch.Generator | None = None
    ) -> VAEOutput:
        r"""Distortion and rate :math:`\mathrm{KL}(q(z|x)\|p(z|u))` per example.

        .. math::
            R_u = \tfrac12\sum_d\Big(\log\tfrac{\sigma_{p,d}^2}{\sigma_{q,d}^2}
            + \tfrac{\sigma_{q,d}^2 + (\mu_{q,d}-\mu_{p,d})^2}{\sigma_{p,d}^2} - 1\Big)
        """
        u = self._check_u(u, x.shape[0])
        mu, logvar = self.encode(x)
        mu_p, logvar_p = self.prior(u)
        return vae_output(self.vae, x, mu, logvar, generator, mu_p, logvar_p)

    @torch.no_grad()
    def sample(self, u: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        r"""Mean images ``[B, C, H, W]`` of :math:`z\sim p(z\mid u)` for labels ``u [B, K]``."""
        mu_p, logvar_p = self.prior(u.to(next(self.parameters()).device))
        return self.mean_image(reparameterise(mu_p, logvar_p, generator))

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def pack_images_labels(
    images: torch.Tensor | np.ndarray, u: torch.Tensor | np.ndarray
) -> torch.Tensor:
    """One row per example: the flattened image followed by its label code.

    Parameters
    ----------
    images : ``[N, C, H, W]`` (e.g. ``uint8`` binary dSprites).
    u : ``[N, K]`` label codes (one-hot or concatenated one-hots).

    Returns
    -------
    Tensor ``[N, C*H*W + K]``: ``uint8`` when both inputs hold only 0 and 1 (binary images,
    one-hot labels; 4× smaller than float), else ``float32``. Unpack with
    :func:`unpack_images_labels`.


    Used in: :ref:`ch-transitive`
    """
    x = torch.as_tensor(images)
    lab = torch.as_tensor(u)
    if x.ndim != 4 or lab.ndim != 2 or x.shape[0] != lab.shape[0]:
        raise ValueError(
            f"need images [N, C, H, W] and u [N, K] with the same N; got {tuple(x.shape)}, {tuple(lab.shape)}"
        )
    flat = x.reshape(x.shape[0], -1)

    def binary(t: torch.Tensor) -> bool:
        # a block of rows at a time: the comparisons' temporaries of the whole 64×64 dSprites
        # grid (737,280 rows) would take 3 × 3 GB on top of the images
        step = max(1, (1 << 24) // max(1, t[0].numel()))
        return all(bool(((c == 0) | (c == 1)).all()) for c in t.split(step))

    dtype = torch.uint8 if binary(flat) and binary(lab) else torch.float32
    return torch.cat([flat.to(dtype), lab.to(dtype)], dim=1)


def unpack_images_labels(
    batch: torch.Tensor, image_shape: tuple[int, int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`pack_images_labels`: ``[B, C*H*W + K] -> (x [B, C, H, W], u [B, K])`` (float)."""
    num_pix = int(np.prod(image_shape))
    if batch.ndim != 2 or batch.shape[1] <= num_pix:
        raise ValueError(f"a packed batch needs shape [B, {num_pix} + K]; got {tuple(batch.shape)}")
    batch = batch if batch.is_floating_point() else batch.float()
    return batch[:, :num_pix].reshape(-1, *(int(s) for s in image_shape)), batch[:, num_pix:]
