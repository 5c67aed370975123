r"""The β-VAE (Kingma & Welling 2014; Higgins et al. 2017) as a rate–distortion machine.

Generative model :math:`p(z)=\mathcal N(0,I)`, :math:`p_\theta(x\mid z)` Bernoulli (logits)
or Gaussian with a fixed :math:`\sigma`; inference :math:`q_\phi(z\mid x)=\mathcal N(\mu_\phi(x),
\mathrm{diag}\,\sigma^2_\phi(x))`. The forward pass returns the two terms of the negative ELBO
per example, **distortion** :math:`D(x)=\mathbb E_q[-\log p(x|z)]` (one reparameterised sample)
and **rate** :math:`R(x)=\mathrm{KL}(q(z|x)\|p(z))` (analytic), as separate tensors, so that
:math:`\mathrm{ELBO}=-(D+R)` and the β-VAE loss is :math:`\mathbb E[D+\beta R]`.

Used in: :ref:`ch-rate-distortion`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..config import ConfigBase
from ..distributions import LIKELIHOODS, distortion, gaussian_kl, reparameterise
from .blocks import ConvDecoderBody, ConvEncoderBody, GaussianHead, mlp

ARCHITECTURES: tuple[str, ...] = ("mlp", "conv")


def check_choice(kind: str, value: str, valid: tuple[str, ...]) -> None:
    """Raise ``ValueError("unknown <kind> <value>; valid: ...")`` unless ``value`` is in ``valid``.

    Used in: :ref:`ch-rate-distortion`, :ref:`ch-rate-splitting`
    """
    if value not in valid:
        raise ValueError(f"unknown {kind} {value!r}; valid: {', '.join(valid)}")


def check_input_shape(input_shape: tuple[int, ...]) -> None:
    """Raise ``ValueError`` unless ``input_shape`` is ``(C, H, W)`` with positive sizes.

    Used in: :ref:`ch-rate-distortion`, :ref:`ch-rate-splitting`
    """
    if len(input_shape) != 3 or any(int(s) <= 0 for s in input_shape):
        raise ValueError(f"input_shape must be (C, H, W) with positive sizes, got {input_shape}")


@dataclass(frozen=True)
class VAEConfig(ConfigBase):
    """Architecture of a :class:`BetaVAE`.

    Attributes
    ----------
    input_shape : ``(C, H, W)`` of the images.
    latent_dim : dimension D of z.
    architecture : ``"mlp"`` (flattened input) or ``"conv"`` (stride-2 convolutions down to 4×4).
    hidden : MLP hidden widths (encoder; the decoder mirrors them) or conv channel widths.
    dense : width of the dense layer between the conv body and the Gaussian head (conv only).
    likelihood : ``"bernoulli"`` (logits) or ``"gaussian"`` (fixed ``sigma``).
    sigma : standard deviation of the Gaussian likelihood.
    """

    input_shape: tuple[int, int, int] = (1, 32, 32)
    latent_dim: int = 10
    architecture: str = "mlp"
    hidden: tuple[int, ...] = (512, 256)
    dense: int = 128
    likelihood: str = "bernoulli"
    sigma: float = 1.0

    def __post_init__(self) -> None:
        check_choice("architecture", self.architecture, ARCHITECTURES)
        check_choice("likelihood", self.likelihood, LIKELIHOODS)
        check_input_shape(self.input_shape)
        if int(self.latent_dim) <= 0:
            raise ValueError(f"latent_dim must be positive, got {self.latent_dim}")
        if not self.sigma > 0:
            raise ValueError(f"sigma must be positive, got {self.sigma}")


def labelled_vae_config() -> VAEConfig:
    """The default image encoder/decoder of the labelled models (SemafoVAE/HVAE and M2).

    A convolutional, Bernoulli :class:`VAEConfig` for ``(1, 32, 32)`` images: ``latent_dim=10``,
    conv channels ``(16, 32, 32)``, a dense layer of 128.

    Used in: :ref:`ch-semafovae`
    """
    return VAEConfig(
        input_shape=(1, 32, 32),
        latent_dim=10,
        architecture="conv",
        hidden=(16, 32, 32),
        dense=128,
    )


def check_temperature(temperature: float) -> None:
    r"""Raise ``ValueError`` unless the relaxed one-hot temperature :math:`\tau` is positive and finite.

    Used in: :ref:`ch-semafovae`
    """
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature (tau) must be positive and finite, got {temperature}")


@dataclass
class VAEOutput:
    """What :meth:`BetaVAE.forward` returns (``B`` examples, ``D`` latent dimensions).

    Attributes
    ----------
    distortion : ``[B]`` nats, :math:`-\\log p(x\\mid z)` at one sample ``z ~ q(z|x)``.
    rate : ``[B]`` nats, analytic :math:`\\mathrm{KL}(q(z|x)\\|\\mathcal N(0,I))`.
    rate_per_dim : ``[B, D]`` the rate's per-dimension terms (they sum to ``rate``).
    mu, logvar : ``[B, D]`` posterior parameters.
    z : ``[B, D]`` the sample used for the distortion.
    decoder_out : ``[B, C, H, W]`` logits (Bernoulli) or means (Gaussian) at ``z``.
    """

    distortion: torch.Tensor
    rate: torch.Tensor
    rate_per_dim: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor
    decoder_out: torch.Tensor

    @property
    def elbo(self) -> torch.Tensor:
        """``[B]``: :math:`-(D + R)`."""
        return -(self.distortion + self.rate)

    def loss(self, beta: float = 1.0) -> torch.Tensor:
        """Scalar β-VAE loss :math:`\\frac1B\\sum_b D_b + \\beta R_b`."""
        return (self.distortion + beta * self.rate).mean()


class BetaVAE(nn.Module):
    """β-VAE with an MLP or convolutional encoder/decoder.

    ``forward(x)``: ``x`` ``[B, C, H, W]`` -> :class:`VAEOutput`. Device-agnostic: move it with
    ``.to(device)``; every tensor it creates follows its inputs.

    Used in: :ref:`ch-rate-distortion`.
    """

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        c, h, w = (int(s) for s in config.input_shape)
        d = int(config.latent_dim)
        if config.architecture == "mlp":
            num_in = c * h * w
            self.encoder_body: nn.Module = nn.Sequential(
                nn.Flatten(), mlp([num_in, *config.hidden], final_activation=True)
            )
            feat = int(config.hidden[-1]) if config.hidden else num_in
            dec_sizes = [d, *reversed(config.hidden), num_in]
            self.decoder_body: nn.Module = nn.Sequential(mlp(dec_sizes), nn.Unflatten(1, (c, h, w)))
        else:
            if h != w:
                raise ValueError(f"conv architecture needs square images, got {h}x{w}")
            body = ConvEncoderBody(c, h, config.hidden)
            self.encoder_body = nn.Sequential(
                body, nn.Linear(body.out_features, config.dense), nn.ReLU()
            )
            feat = int(config.dense)
            self.decoder_body = nn.Sequential(
                nn.Linear(d, config.dense),
                nn.ReLU(),
                ConvDecoderBody(config.dense, c, h, tuple(reversed(config.hidden))),
            )
        self.head = GaussianHead(feat, d)

    @property
    def latent_dim(self) -> int:
        """Dimension D of the latent."""
        return int(self.config.latent_dim)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, C, H, W] -> (mu [B, D], logvar [B, D])`` of :math:`q(z\\mid x)`."""
        return self.head(self.encoder_body(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``[B, D] -> [B, C, H, W]`` decoder output (logits or means)."""
        return self.decoder_body(z)

    def mean_image(self, z: torch.Tensor) -> torch.Tensor:
        """Expected image :math:`\\mathbb E[x\\mid z]` in data space: sigmoid of logits, or means."""
        out = self.decode(z)
        return torch.sigmoid(out) if self.config.likelihood == "bernoulli" else out

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> VAEOutput:
        """Distortion and rate per example; see :class:`VAEOutput`."""
        mu, logvar = self.encode(x)
        return vae_output(self, x, mu, logvar, generator)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` latents from the prior and return mean images ``[n, C, H, W]``."""
        p = next(self.parameters())
        z = torch.randn((n, self.latent_dim), generator=generator, device=p.device, dtype=p.dtype)
        return self.mean_image(z)

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def vae_output(
    vae: BetaVAE,
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    generator: torch.Generator | None = None,
    prior_mu: torch.Tensor | None = None,
    prior_logvar: torch.Tensor | None = None,
) -> VAEOutput:
    r"""Finish a VAE pass from the posterior ``(mu, logvar)`` ``[B, D]`` of the images ``x``.

    Draws ``z ~ q(z|x)`` (one reparameterised sample with ``generator``), decodes it with
    ``vae`` and returns the distortion :math:`-\log p(x\mid z)` and the analytic rate
    :math:`\mathrm{KL}(q(z|x)\|p(z))`, against :math:`\mathcal N(0,I)` or, if given, the
    diagonal Gaussian prior ``(prior_mu, prior_logvar)`` ``[B, D]``; see :class:`VAEOutput`.

    Used in: :ref:`ch-rate-distortion`
    """
    z = reparameterise(mu, logvar, generator)
    out = vae.decode(z)
    dist = distortion(x, out, vae.config.likelihood, vae.config.sigma)
    kl_dims = gaussian_kl(mu, logvar, prior_mu, prior_logvar)
    return VAEOutput(
        distortion=dist,
        rate=kl_dims.sum(-1),
        rate_per_dim=kl_dims,
        mu=mu,
        logvar=logvar,
        z=z,
        decoder_out=out,
    )
