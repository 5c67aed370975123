r"""The conditional semi-supervised VAE M2 (Kingma, Rezende, Mohamed & Welling 2014): the controllable baseline.

Generative model :math:`p(y)=\prod_f\mathrm{Cat}(y_f;1/K_f)`, :math:`p(z)=\mathcal N(0,I)`,
:math:`p(x\mid y,z)` Bernoulli; inference :math:`q(y\mid x)` (per-factor softmax) and
:math:`q(z\mid x,y)`. Per example (Kingma et al. 2014, eqs. 6–9):

.. math::
    \mathcal L(x,y)=\log p(x\mid y,z)+\log p(y)-\mathrm{KL}(q(z\mid x,y)\|p(z))+\alpha\log q(y\mid x),

.. math::
    \mathcal U(x)=\mathbb E_{q(y|x)}\big[\log p(x\mid y,z)+\log p(y)-\mathrm{KL}(q(z\mid x,y)\|p(z))\big]+H[q(y\mid x)].

[ours] With five factors the label space has :math:`3\cdot4\cdot8\cdot8\cdot8=6{,}144` joint
classes, so the exact sum over :math:`y` in :math:`\mathcal U` is replaced by one relaxed
one-hot sample :math:`\tilde y\sim q_\tau(y\mid x)` per factor (Gumbel-softmax, :math:`\tau=0.5`,
as SemafoVAE's pseudo-labels), and :math:`H[q(y|x)]` is the analytic per-factor entropy.
:math:`\log p(\tilde y)=-\sum_f\log K_f` is a constant, kept for the ELBO's value.
The image encoder/decoder are the convolutional :class:`~hvae_lib.models.vae.BetaVAE`'s (the same
as SemafoVAE's); :math:`q(y\mid x)` is a linear head on the encoder features, :math:`y` enters
:math:`q(z\mid x,y)` by concatenation with the features and the decoder by a linear map added to
its first layer (equivalent to concatenating :math:`[z,y]`). The labelled/unlabelled batch
composition, warm-up and step budget are SemafoVAE's (:mod:`!hvae_lib.train.semisup`).

Used in: :ref:`ch-semafovae`
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..config import ConfigBase
from ..distributions import (
    categorical_entropy,
    distortion,
    gaussian_kl,
    relaxed_one_hot,
    reparameterise,
    soft_log_likelihood,
    split_blocks,
)
from .blocks import GaussianHead
from .semafo import SemafoVAE
from .vae import BetaVAE, VAEConfig, check_temperature, labelled_vae_config

__all__ = ["M2Config", "M2Output", "M2VAE"]


@dataclass(frozen=True)
class M2Config(ConfigBase):
    """Architecture of :class:`M2VAE`.

    Attributes
    ----------
    vae : convolutional :class:`~hvae_lib.models.vae.VAEConfig` (Bernoulli), as SemafoVAE's.
    factor_sizes : classes per labelled factor.
    temperature : :math:`\\tau` of the relaxed pseudo-labels [ours].


    Used in: :ref:`ch-semafovae`
    """

    vae: VAEConfig = field(default_factory=labelled_vae_config)
    factor_sizes: tuple[int, ...] = (3, 4, 8, 8, 8)
    temperature: float = 0.5

    _nested = {"vae": VAEConfig}

    def __post_init__(self) -> None:
        check_temperature(self.temperature)
        if self.vae.architecture != "conv" or self.vae.likelihood != "bernoulli":
            raise ValueError("M2VAE uses the conv encoder/decoder with a Bernoulli likelihood")
        if len(self.factor_sizes) == 0 or any(int(k) <= 0 for k in self.factor_sizes):
            raise ValueError(f"factor_sizes must be positive integers, got {self.factor_sizes}")

    @property
    def label_dim(self) -> int:
        """:math:`d_y=\\sum_f K_f`."""
        return int(sum(self.factor_sizes))


@dataclass
class M2Output:
    """Terms of one M2 pass (``[B]``, nats): ``log_px``, ``log_py`` (prior), ``kl_z``,
    ``log_qy_x`` (labelled; zeros otherwise), ``entropy_qy`` (unlabelled; zeros otherwise); plus
    ``mu``, ``logvar``, ``z`` ``[B, D]``, ``y`` ``[B, d_y]``, ``qy_logits`` ``[B, d_y]``,
    ``decoder_out`` ``[B, C, H, W]``.

    Used in: :ref:`ch-semafovae`
    """

    labelled: bool
    log_px: torch.Tensor
    log_py: torch.Tensor
    kl_z: torch.Tensor
    log_qy_x: torch.Tensor
    entropy_qy: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor
    y: torch.Tensor
    qy_logits: torch.Tensor
    decoder_out: torch.Tensor

    def terms(self) -> dict[str, torch.Tensor]:
        """The ``[B]`` terms by name."""
        return {
            "log_px": self.log_px,
            "log_py": self.log_py,
            "kl_z": self.kl_z,
            "log_qy_x": self.log_qy_x,
            "entropy_qy": self.entropy_qy,
        }


class M2VAE(nn.Module):
    r"""M2 with the shared conv encoder/decoder (see the module docstring).

    ``forward(x, y=None, *, pseudo_label=None, generator=None, loss_config=None)`` -> :class:`M2Output`.

    Used in: :ref:`ch-semafovae`
    """

    def __init__(self, config: M2Config) -> None:
        super().__init__()
        self.config = config
        self.factor_sizes = tuple(int(k) for k in config.factor_sizes)
        d, dy, dense = int(config.vae.latent_dim), config.label_dim, int(config.vae.dense)
        self.vae = BetaVAE(config.vae)
        self.classifier = nn.Linear(dense, dy)  # q(y|x)
        self.z_head = GaussianHead(dense + dy, d)  # q(z|x,y)
        self.y_to_decoder = nn.Linear(dy, dense, bias=False)
        self.register_buffer(
            "log_prior_y", torch.tensor(-sum(math.log(k) for k in self.factor_sizes))
        )

    @property
    def latent_dim(self) -> int:
        """Dimension D of z."""
        return int(self.config.vae.latent_dim)

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def as_one_hot(self, y: torch.Tensor) -> torch.Tensor:
        """Factor indices ``[B, K]`` -> one-hot ``[B, d_y]`` (float one-hot passes)."""
        return SemafoVAE.as_one_hot(self, y)  # type: ignore[arg-type]

    def _reference(self) -> torch.Tensor:
        return next(self.parameters())

    @property
    def label_dim(self) -> int:
        """:math:`d_y`."""
        return self.config.label_dim

    def label_indices(self, logits: torch.Tensor) -> torch.Tensor:
        """Per-factor argmax ``[B, d_y] -> [B, K]``."""
        return torch.stack([b.argmax(-1) for b in split_blocks(logits, self.factor_sizes)], dim=-1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder features ``[B, C, H, W] -> [B, dense]``."""
        return self.vae.encoder_body(x)

    def encode_z(self, feat: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)`` ``[B, D]`` of :math:`q(z\\mid x,y)` from features and one-hot ``y``."""
        return self.z_head(torch.cat([feat, y], dim=-1))

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits ``[B, C, H, W]`` of :math:`p(x\\mid y,z)` (``y`` one-hot ``[B, d_y]``)."""
        body = self.vae.decoder_body
        h = body[1](body[0](z) + self.y_to_decoder(y))
        return body[2](h)

    def posterior_means(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of :math:`q(z\\mid x,\\hat y)`, :math:`\\hat y=\\arg\\max q(y|x)`: ``[B, D]``."""
        feat = self.features(x)
        y_hat = self.as_one_hot(self.label_indices(self.classifier(feat)))
        return self.encode_z(feat, y_hat)[0]

    def forward(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        *,
        pseudo_label: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        loss_config: Any = None,
    ) -> M2Output:
        """All terms of :math:`\\mathcal L(x,y)` (``y`` given) or :math:`\\mathcal U(x)`; draws ``[ỹ], z``."""
        hard = bool(getattr(loss_config, "hard", False))  # an hvae_lib.objectives.M2LossConfig
        sizes = self.factor_sizes
        feat = self.features(x)
        qy = self.classifier(feat)
        zeros = torch.zeros(x.shape[0], dtype=feat.dtype, device=feat.device)
        labelled = y is not None
        if labelled:
            y1 = self.as_one_hot(y)
            log_qy, ent = soft_log_likelihood(qy, y1, sizes), zeros
        else:
            y1 = (
                self.as_one_hot(pseudo_label)
                if pseudo_label is not None
                else relaxed_one_hot(
                    qy, sizes, float(self.config.temperature), generator, hard=hard
                )
            )
            log_qy, ent = zeros, categorical_entropy(qy, sizes)
        mu, logvar = self.encode_z(feat, y1)
        z = reparameterise(mu, logvar, generator)
        out = self.decode(z, y1)
        log_px = -distortion(x, out, "bernoulli")
        log_py = zeros + self.log_prior_y.to(zeros)  # sum_f sum_k y_fk log(1/K_f), blocks sum to 1
        kl = gaussian_kl(mu, logvar).sum(-1)
        return M2Output(
            labelled=labelled,
            log_px=log_px,
            log_py=log_py,
            kl_z=kl,
            log_qy_x=log_qy,
            entropy_qy=ent,
            mu=mu,
            logvar=logvar,
            z=z,
            y=y1,
            qy_logits=qy,
            decoder_out=out,
        )

    @torch.no_grad()
    def generate(
        self, y: torch.Tensor, generator: torch.Generator | None = None, *, sample_z: bool = True
    ) -> dict[str, torch.Tensor]:
        """Mean images ``[B, C, H, W]`` of :math:`p(x\\mid y,z)`, :math:`z\\sim\\mathcal N(0,I)` (or 0)."""
        y1 = self.as_one_hot(y)
        ref = self._reference()
        z = (
            torch.randn(
                (y1.shape[0], self.latent_dim),
                generator=generator,
                device=ref.device,
                dtype=ref.dtype,
            )
            if sample_z
            else torch.zeros((y1.shape[0], self.latent_dim), device=ref.device, dtype=ref.dtype)
        )
        return {"z": z, "images": torch.sigmoid(self.decode(z, y1))}
