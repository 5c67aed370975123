r"""SemafoVAE and SemafoHVAE (Ngo et al., arXiv:2203.05074): a VAE with a *controllable* prior.

Citations: [SF:L…] are lines of ``examples/vae/semafo_final.py`` in the authors' repository
trungnt13/odin-ai at commit ``9c6986a`` (the authors' choice);
[image_networks.py:L] are lines of ``odin/networks/image_networks.py`` in the same repository and
commit; [ours] marks our recommendation or interpretation.

Generative model (the flat :class:`SemafoVAE` drops :math:`z_1`) [SF:L351–470, L823–924]

.. math::
    p(u)&=\mathcal N(0,I),\\
    p(y\mid u)&=\prod_f \mathrm{Cat}(y_f;\mathrm{softmax}(W_f g_\psi(u))),\\
    p(z_0\mid u)&=\mathcal N(\mu_\theta(u),\mathrm{diag}\,\sigma^2_\theta(u)),

.. math::
    p(z_1\mid z_0,u)&=\mathcal N(\mu_1(h(z_0),u),\mathrm{diag}\,\sigma_1^2(h(z_0),u)),\\
    p(x\mid z_0,z_1)&=\mathrm{Bernoulli}(\mathrm{logits}=f_\theta(z_0,z_1)),

with :math:`h(z_0)` an intermediate (8×8) decoder feature map. Inference: :math:`q(z_0\mid x)`,
:math:`q(z_1\mid x,z_0)`, the classifier :math:`q_\tau(y\mid z_0)` (one linear layer, a relaxed
one-hot / Gumbel-softmax with :math:`\tau=0.5` per factor [SF:L210–231]) and the label encoder
:math:`q(u\mid y)`. :math:`y` is the concatenation of one one-hot block per discretised factor
(dSprites-lite: 3+4+8+8+8 = 31) and :math:`d_u=d_y` [SF:L410–415].

Objectives [SF:L603–697], per example, with
:math:`\widehat{\mathrm{KL}}_{z_0}=\mathrm{KL}(q(z_0\mid x)\|p(z_0\mid u))`,
:math:`\mathrm{KL}_u=\mathrm{KL}(q(u\mid y)\|\mathcal N(0,I))` and
:math:`\mathrm{KL}_{z_1}=\mathrm{KL}(q(z_1\mid x,z_0)\|p(z_1\mid z_0,u))`:

.. math::
    \mathcal L_{\text{sup}}&=\gamma_s\big[\log p(x\mid z)+\gamma_y\log p(y\mid u)+\gamma_{qy}\log q(y\mid z_0)\big]\\
      &\quad{}-\beta_s\big[\widehat{\mathrm{KL}}_{z_0}+\mathrm{KL}_u\big]-\beta_1\mathrm{KL}_{z_1},

.. math::
    \mathcal L_{\text{uns}}&=\gamma_u\big[\log p(x\mid z)+\gamma_y\log p(\tilde y\mid u)\big]\\
      &\quad{}-\beta_u\big[\widehat{\mathrm{KL}}_{z_0}+\mathrm{KL}_u\big]+\lambda_H H[q(y\mid z_0)]
      -\beta_1\mathrm{KL}_{z_1},

:math:`\tilde y\sim q_\tau(y\mid z_0)` reparameterised. The authors' defaults are
:math:`\gamma_s=1,\gamma_u=10,\gamma_y=10,\beta=1,\lambda_H=1,\tau=0.5` [SF:L307–345]; the
authors weight the labelled classifier term with :math:`\gamma_y` too (``gamma_qy=None``).

Choices where the paper leaves room (the paper's text was not available to us):

* [ours, recommended] :math:`\log q(y\mid z_0)` on labels is the categorical log-likelihood
  (cross-entropy); ``concrete_logprob=True`` uses the authors' Concrete density of the clipped
  one-hot [SF:L188–193].
* pseudo-labels (``pseudo_labels``): ``"relaxed"``, the reparameterised Concrete sample with
  gradients into the encoder (authors); ``"stop_gradient"``, the same sample with its gradient
  stopped (the authors' ``NoReparams`` ablation); ``"straight_through"``, the one-hot argmax
  forward and the relaxed gradient backward (ours, not one of the authors' variants).
* [ours] :math:`H[q(y\mid z_0)]` is the analytic categorical entropy summed over factors;
  ``entropy="mc"`` uses the authors' one-sample :math:`-\log q_\tau(\tilde y\mid z_0)`, the
  entropy of the *relaxed* distribution. The two are different objectives, not two estimators
  of one: the relaxed entropy is not the categorical one, and against the pseudo-label term it
  pushes back differently (chapter 4 trains both).
* [ours] one :math:`u` sample is shared by :math:`p(z_0\mid u)` and :math:`p(z_1\mid z_0,u)`
  (the authors re-infer a second :math:`u` for the lower level [SF:L869–924]).
* :math:`\mathrm{KL}_u` and :math:`\mathrm{KL}_{z_1}` are analytic; :math:`\widehat{\mathrm{KL}}_{z_0}`
  is analytic given the sampled :math:`u` by default, ``mc_kl=True`` gives the authors'
  one-sample :math:`\log q(z_0\mid x)-\log p(z_0\mid u)` [SF:L603–661].
* Architecture [ours]: the image encoder/decoder is exactly the convolutional
  :class:`~hvae_lib.models.vae.BetaVAE`'s (ReLU, no ``CenterAt0``), so that the VAE/β-VAE baselines
  share it; the authors use ELU and :math:`x\mapsto 2x-1` [image_networks.py:436–535].

Used in: :ref:`ch-semafovae`
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConfigBase
from ..distributions import (
    categorical_entropy,
    concrete_log_prob,
    diag_log_prob,
    distortion,
    gaussian_kl,
    relaxed_one_hot,
    reparameterise,
    soft_log_likelihood,
    split_blocks,
)
from .blocks import GaussianHead, mlp
from .vae import BetaVAE, VAEConfig, check_temperature, labelled_vae_config

__all__ = [
    "SEMAFO_VARIANTS",
    "ENTROPY_ESTIMATORS",
    "PSEUDO_LABELS",
    "estimator_choices",
    "SemafoConfig",
    "SemafoOutput",
    "SemafoVAE",
    "SemafoHVAE",
    "build_semafo",
]

SEMAFO_VARIANTS: tuple[str, ...] = ("flat", "hierarchical")
"""``flat``: :class:`SemafoVAE` (:math:`z_0` only); ``hierarchical``: :class:`SemafoHVAE`."""

ENTROPY_ESTIMATORS: tuple[str, ...] = ("analytic", "mc")
PSEUDO_LABELS: tuple[str, ...] = ("relaxed", "stop_gradient", "straight_through")
r"""How the unlabelled pass uses its pseudo-label :math:`\tilde y`: the reparameterised Concrete
sample (authors), the same sample without its gradient (the authors' ``NoReparams``), or a
straight-through one-hot (ours)."""
r"""Estimators of :math:`H[q(y\mid z_0)]`: the analytic categorical entropy [ours] or the
one-sample Concrete one [SF]."""


def estimator_choices(loss_config: Any = None) -> tuple[bool, str, str, bool]:
    """``(concrete_logprob, pseudo_labels, entropy, mc_kl)`` read from a loss configuration.

    ``loss_config`` is a :class:`!hvae_lib.objectives.SemafoLossConfig` (or any object with these
    fields); ``None`` or a missing field gives the defaults
    ``(False, "relaxed", "analytic", False)``.
    The model computes its terms with these estimators; the coefficients of the objectives are
    applied in :mod:`!hvae_lib.objectives`.

    Used in: :ref:`ch-semafovae`
    """
    entropy = str(getattr(loss_config, "entropy", "analytic"))
    if entropy not in ENTROPY_ESTIMATORS:
        raise ValueError(
            f"unknown entropy estimator {entropy!r}; valid: {', '.join(ENTROPY_ESTIMATORS)}"
        )
    pseudo = str(getattr(loss_config, "pseudo_labels", "relaxed"))
    if pseudo not in PSEUDO_LABELS:
        raise ValueError(f"unknown pseudo_labels {pseudo!r}; valid: {', '.join(PSEUDO_LABELS)}")
    return (
        bool(getattr(loss_config, "concrete_logprob", False)),
        pseudo,
        entropy,
        bool(getattr(loss_config, "mc_kl", False)),
    )


def _positive_ints(values: Any, name: str) -> None:
    if any(int(v) <= 0 for v in values):
        raise ValueError(f"{name} must be positive integers, got {tuple(values)}")


@dataclass(frozen=True)
class SemafoConfig(ConfigBase):
    r"""Architecture of a :class:`SemafoVAE` (``variant="flat"``) or :class:`SemafoHVAE`.

    Attributes
    ----------
    vae : image encoder/decoder, a convolutional :class:`~hvae_lib.models.vae.VAEConfig`;
        ``vae.latent_dim`` is :math:`d_z` of :math:`z_0`; the likelihood must be Bernoulli [SF].
    factor_sizes : number of classes of each labelled factor; :math:`d_y` is their sum.
    label_latent_dim : :math:`d_u`; ``None`` means :math:`d_u=d_y` [SF:L410–415].
    label_hidden : hidden widths of :math:`q(u\mid y)` and of :math:`p(y\mid u)` (mirrored);
        authors 2×512 [SF:L62–80], quick profile 2×128 [ours].
    prior_hidden : hidden widths of :math:`p(z_0\mid u)`; authors (256,) [SF:L416–425].
    temperature : :math:`\tau` of the relaxed one-hot :math:`q_\tau(y\mid z_0)`; authors 0.5.
    variant : ``"flat"`` or ``"hierarchical"``.
    z1_attach : resolution of the decoder (and encoder) feature map that :math:`z_1` attaches to.
    z1_channels : channels of :math:`z_1`; its resolution is ``z1_attach // z1_stride``.
    z1_kernel, z1_stride : convolutions between the feature map and :math:`z_1` (padding
        ``(k - s) // 2``); authors k8 s4 (2×2×32) [SF:L235–305], quick k4 s2 (4×4×8) [ours].
    z1_deter_channels : channels of the deterministic path :math:`d=\mathrm{Conv}(h)`.
    z1_u_hidden : hidden width of :math:`a(u)`, the :math:`u\to z_1` skip.
    c_deter, c_residual, c_pz_u : the authors' path coefficients (all 1) [SF:L235–305].


    Used in: :ref:`ch-semafovae`
    """

    vae: VAEConfig = field(default_factory=labelled_vae_config)
    factor_sizes: tuple[int, ...] = (3, 4, 8, 8, 8)
    label_latent_dim: int | None = None
    label_hidden: tuple[int, ...] = (128, 128)
    prior_hidden: tuple[int, ...] = (64,)
    temperature: float = 0.5
    variant: str = "flat"
    z1_attach: int = 8
    z1_channels: int = 8
    z1_kernel: int = 4
    z1_stride: int = 2
    z1_deter_channels: int = 8
    z1_u_hidden: int = 64
    c_deter: float = 1.0
    c_residual: float = 1.0
    c_pz_u: float = 1.0

    _nested = {"vae": VAEConfig}

    def __post_init__(self) -> None:
        if self.variant not in SEMAFO_VARIANTS:
            raise ValueError(
                f"unknown variant {self.variant!r}; valid: {', '.join(SEMAFO_VARIANTS)}"
            )
        check_temperature(self.temperature)
        if self.vae.architecture != "conv":
            raise ValueError(
                "SemafoVAE needs a convolutional image encoder/decoder (vae.architecture='conv')"
            )
        if self.vae.likelihood != "bernoulli":
            raise ValueError(
                "SemafoVAE uses a Bernoulli image decoder (vae.likelihood='bernoulli')"
            )
        if len(self.factor_sizes) == 0:
            raise ValueError("factor_sizes must name at least one factor")
        _positive_ints(self.factor_sizes, "factor_sizes")
        _positive_ints(self.label_hidden, "label_hidden")
        _positive_ints(self.prior_hidden, "prior_hidden")
        if self.label_latent_dim is not None and int(self.label_latent_dim) <= 0:
            raise ValueError(
                f"label_latent_dim must be positive or None, got {self.label_latent_dim}"
            )
        _positive_ints(
            (
                self.z1_attach,
                self.z1_channels,
                self.z1_kernel,
                self.z1_stride,
                self.z1_deter_channels,
                self.z1_u_hidden,
            ),
            "z1 sizes",
        )
        if (
            self.z1_attach % self.z1_stride
            or (self.z1_kernel - self.z1_stride) % 2
            or self.z1_kernel < self.z1_stride
        ):
            raise ValueError(
                "need z1_attach divisible by z1_stride and z1_kernel - z1_stride even and >= 0, got "
                f"attach={self.z1_attach}, kernel={self.z1_kernel}, stride={self.z1_stride}"
            )

    @property
    def label_dim(self) -> int:
        """:math:`d_y=\\sum_f K_f`."""
        return int(sum(self.factor_sizes))

    @property
    def u_dim(self) -> int:
        """:math:`d_u` (``label_latent_dim`` or :math:`d_y`)."""
        return int(self.label_latent_dim) if self.label_latent_dim is not None else self.label_dim

    @property
    def z1_shape(self) -> tuple[int, int, int]:
        """``(C1, R1, R1)`` of :math:`z_1`."""
        r = self.z1_attach // self.z1_stride
        return (int(self.z1_channels), r, r)


@dataclass
class SemafoOutput:
    r"""Every term of one SemafoVAE pass (``B`` examples); all ``[B]`` terms are in nats.

    Attributes
    ----------
    labelled : whether the pass used true labels (:math:`\mathcal L_{\text{sup}}`) or
        pseudo-labels (:math:`\mathcal L_{\text{uns}}`).
    log_px : ``[B]`` :math:`\log p(x\mid z_0,z_1)` at one posterior sample.
    log_py_u : ``[B]`` :math:`\log p(y\mid u)` (labelled) or the soft-target
        :math:`\sum_f\sum_k\tilde y_{fk}\log p_{fk}(u)` (unlabelled).
    log_qy_z : ``[B]`` :math:`\log q(y\mid z_0)` of the true labels (zeros when unlabelled).
    entropy_qy : ``[B]`` :math:`H[q(y\mid z_0)]` estimate (zeros when labelled).
    kl_z0 : ``[B]`` :math:`\mathrm{KL}(q(z_0\mid x)\|p(z_0\mid u))` (analytic or one-sample).
    kl_u : ``[B]`` :math:`\mathrm{KL}(q(u\mid y)\|\mathcal N(0,I))` (analytic).
    kl_z1 : ``[B]`` :math:`\mathrm{KL}(q(z_1\mid x,z_0)\|p(z_1\mid z_0,u))` (zeros when flat).
    mu, logvar, z0 : ``[B, D]`` posterior of :math:`z_0` and its sample.
    prior_mu, prior_logvar : ``[B, D]`` :math:`p(z_0\mid u)`.
    u : ``[B, d_u]`` the sample of :math:`q(u\mid y)`; ``y`` ``[B, d_y]`` the (pseudo-)label used.
    qy_logits, py_logits : ``[B, d_y]`` logits of :math:`q(y\mid z_0)` and :math:`p(y\mid u)`.
    z1 : ``[B, C1, R1, R1]`` or ``None``; decoder_out : ``[B, C, H, W]`` Bernoulli logits.


    Used in: :ref:`ch-semafovae`
    """

    labelled: bool
    log_px: torch.Tensor
    log_py_u: torch.Tensor
    log_qy_z: torch.Tensor
    entropy_qy: torch.Tensor
    kl_z0: torch.Tensor
    kl_u: torch.Tensor
    kl_z1: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    z0: torch.Tensor
    prior_mu: torch.Tensor
    prior_logvar: torch.Tensor
    u: torch.Tensor
    y: torch.Tensor
    qy_logits: torch.Tensor
    py_logits: torch.Tensor
    z1: torch.Tensor | None
    decoder_out: torch.Tensor

    def terms(self) -> dict[str, torch.Tensor]:
        """The ``[B]`` objective terms by name (for logging)."""
        return {
            "log_px": self.log_px,
            "log_py_u": self.log_py_u,
            "log_qy_z": self.log_qy_z,
            "entropy_qy": self.entropy_qy,
            "kl_z0": self.kl_z0,
            "kl_u": self.kl_u,
            "kl_z1": self.kl_z1,
        }


# ----------------------------------------------------------------------------- models
class SemafoVAE(nn.Module):
    r"""SemafoVAE with a flat latent :math:`z_0` (see the module docstring).

    ``forward(x [B, C, H, W], y=None, *, pseudo_label=None, generator=None)`` ->
    :class:`SemafoOutput`. ``y`` are true labels (integer factor indices ``[B, K]`` or the
    concatenated one-hot ``[B, d_y]``) and select :math:`\mathcal L_{\text{sup}}`; without
    ``y`` the pass is unlabelled and samples :math:`\tilde y\sim q_\tau(y\mid z_0)`, unless
    ``pseudo_label`` fixes it (used by the consistency test). Random draws, in this order:
    :math:`z_0`, Gumbel noise (unlabelled, not fixed), :math:`u`, :math:`z_1` (HVAE).

    Device-agnostic; every tensor it creates follows its inputs.

    Used in: :ref:`ch-semafovae`
    """

    hierarchical: bool = False

    def __init__(self, config: SemafoConfig) -> None:
        super().__init__()
        want = "hierarchical" if self.hierarchical else "flat"
        if config.variant != want:
            raise ValueError(
                f"{type(self).__name__} needs variant={want!r}, got {config.variant!r}; "
                "use build_semafo(config) to pick the class from the variant"
            )
        self.config = config
        self.factor_sizes = tuple(int(k) for k in config.factor_sizes)
        d, dy, du = int(config.vae.latent_dim), config.label_dim, config.u_dim
        self.vae = BetaVAE(
            config.vae
        )  # image encoder q(z0|x) and decoder p(x|z) [ours: shared with baselines]
        self.classifier = nn.Linear(d, dy)  # q(y|z0): a single linear layer [SF:L210–231]
        nn.init.xavier_normal_(self.classifier.weight)
        lh = tuple(int(h) for h in config.label_hidden)
        self.label_encoder = (
            nn.Sequential(mlp([dy, *lh], final_activation=True)) if lh else nn.Identity()
        )
        self.label_head = GaussianHead(lh[-1] if lh else dy, du)  # q(u|y)
        self.label_decoder = mlp([du, *reversed(lh), dy])  # p(y|u) logits
        ph = tuple(int(h) for h in config.prior_hidden)
        self.prior_body = (
            nn.Sequential(mlp([du, *ph], final_activation=True)) if ph else nn.Identity()
        )
        self.prior_head = GaussianHead(ph[-1] if ph else du, d)  # p(z0|u)

    # -- properties
    @property
    def latent_dim(self) -> int:
        """:math:`d_z` of :math:`z_0`."""
        return int(self.config.vae.latent_dim)

    @property
    def label_dim(self) -> int:
        """:math:`d_y`."""
        return self.config.label_dim

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def _reference(self) -> torch.Tensor:
        return next(self.parameters())

    # -- labels
    def as_one_hot(self, y: torch.Tensor) -> torch.Tensor:
        """Integer factor indices ``[B, K]`` -> concatenated one-hot ``[B, d_y]``; float ``[B, d_y]`` passes."""
        ref = self._reference()
        if not torch.is_tensor(y):
            y = torch.as_tensor(y)
        if y.is_floating_point():
            if y.ndim != 2 or y.shape[1] != self.label_dim:
                raise ValueError(
                    f"one-hot labels must have shape [B, {self.label_dim}], got {tuple(y.shape)}"
                )
            return y.to(device=ref.device, dtype=ref.dtype)
        if y.ndim != 2 or y.shape[1] != len(self.factor_sizes):
            raise ValueError(
                f"factor indices must have shape [B, {len(self.factor_sizes)}], got {tuple(y.shape)}"
            )
        y = y.to(ref.device).long()
        for k, size in enumerate(self.factor_sizes):
            if bool((y[:, k] < 0).any()) or bool((y[:, k] >= size).any()):
                raise ValueError(
                    f"factor {k} indices must lie in [0, {size}), got range "
                    f"[{int(y[:, k].min())}, {int(y[:, k].max())}]"
                )
        return torch.cat(
            [F.one_hot(y[:, k], s) for k, s in enumerate(self.factor_sizes)], dim=-1
        ).to(ref.dtype)

    def label_indices(self, logits_or_onehot: torch.Tensor) -> torch.Tensor:
        """Per-factor argmax: ``[B, d_y] -> [B, K]`` int64."""
        return torch.stack(
            [b.argmax(-1) for b in split_blocks(logits_or_onehot, self.factor_sizes)], dim=-1
        )

    # -- networks
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, C, H, W] -> (mu, logvar)`` ``[B, D]`` of :math:`q(z_0\\mid x)`."""
        return self.vae.encode(x)

    def encode_u(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, d_y]`` (one-hot or relaxed) ``-> (mu, logvar)`` ``[B, d_u]`` of :math:`q(u\\mid y)`."""
        return self.label_head(self.label_encoder(y))

    def prior_z0(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, d_u] -> (mu, logvar)`` ``[B, D]`` of :math:`p(z_0\\mid u)`."""
        return self.prior_head(self.prior_body(u))

    def qy_logits(self, z0: torch.Tensor) -> torch.Tensor:
        """``[B, D] -> [B, d_y]`` logits of :math:`q(y\\mid z_0)`."""
        return self.classifier(z0)

    def py_logits(self, u: torch.Tensor) -> torch.Tensor:
        """``[B, d_u] -> [B, d_y]`` logits of :math:`p(y\\mid u)`."""
        return self.label_decoder(u)

    def posterior_means(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """Posterior mean of :math:`z_0` ``[B, D]`` (the interface of :func:`hvae_lib.metrics.representation`)."""
        return self.encode(x)[0]

    # -- decoding (overridden by the HVAE)
    def _decode_train(
        self,
        x: torch.Tensor,
        z0: torch.Tensor,
        u: torch.Tensor,
        generator: torch.Generator | None,
        feat: Any,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        return self.vae.decode(z0), torch.zeros(z0.shape[0], dtype=z0.dtype, device=z0.device), None

    def _encode_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, Any]:
        mu, logvar = self.encode(x)
        return mu, logvar, None

    def decode(
        self,
        z0: torch.Tensor,
        z1: torch.Tensor | None = None,
        u: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        sample_z1: bool = True,
    ) -> torch.Tensor:
        """Bernoulli logits ``[B, C, H, W]`` of :math:`p(x\\mid z_0[,z_1])` (``z1``, ``u`` unused when flat)."""
        return self.vae.decode(z0)

    def mean_image(
        self,
        z0: torch.Tensor,
        z1: torch.Tensor | None = None,
        u: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        sample_z1: bool = True,
    ) -> torch.Tensor:
        """:math:`\\mathbb E[x\\mid z]` = sigmoid of the logits, ``[B, C, H, W]``."""
        return torch.sigmoid(self.decode(z0, z1, u, generator, sample_z1))

    # -- the objective terms
    def forward(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        *,
        pseudo_label: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        loss_config: Any = None,
    ) -> SemafoOutput:
        r"""All terms of :math:`\mathcal L_{\text{sup}}` (``y`` given) or :math:`\mathcal L_{\text{uns}}`.

        Parameters
        ----------
        x : ``[B, C, H, W]`` images in [0, 1].
        y : true labels, factor indices ``[B, K]`` or one-hot ``[B, d_y]``; ``None`` = unlabelled.
        pseudo_label : unlabelled only: use this ``[B, K]``/``[B, d_y]`` instead of sampling :math:`\tilde y`.
        generator : seeded ``torch.Generator`` for every random draw.
        loss_config : estimator choices (``concrete_logprob``, ``pseudo_labels``, ``entropy``,
            ``mc_kl``), read
            from a :class:`!hvae_lib.objectives.SemafoLossConfig` (see :func:`estimator_choices`);
            the coefficients are applied by :func:`!hvae_lib.objectives.labelled_objective` /
            :func:`!hvae_lib.objectives.unlabelled_objective`.
        """
        concrete_logprob, pseudo, entropy_estimator, mc_kl = estimator_choices(loss_config)
        sizes, tau = self.factor_sizes, float(self.config.temperature)
        mu, logvar, feat = self._encode_train(x)
        z0 = reparameterise(mu, logvar, generator)
        qy = self.qy_logits(z0)
        zeros = torch.zeros(x.shape[0], dtype=z0.dtype, device=z0.device)
        labelled = y is not None
        if labelled:
            if pseudo_label is not None:
                raise ValueError("pseudo_label is only used for unlabelled passes (y=None)")
            y_used = self.as_one_hot(y)
            log_qy = (
                concrete_log_prob(qy, y_used, sizes, tau)
                if concrete_logprob
                else soft_log_likelihood(qy, y_used, sizes)
            )
            entropy = zeros
        else:
            log_qy = zeros
            if pseudo_label is not None:
                y_used = self.as_one_hot(pseudo_label)
            else:
                hard = pseudo == "straight_through"
                y_used = relaxed_one_hot(qy, sizes, tau, generator, hard=hard)
                if pseudo == "stop_gradient":  # NoReparams: no gradient through y~
                    y_used = y_used.detach()
            if entropy_estimator == "analytic":
                entropy = categorical_entropy(qy, sizes)
            else:  # one-sample -log q_tau(y~|z0) at the (relaxed) pseudo-label [SF]
                entropy = -concrete_log_prob(qy, y_used, sizes, tau)
        mu_u, logvar_u = self.encode_u(y_used)
        u = reparameterise(mu_u, logvar_u, generator)
        kl_u = gaussian_kl(mu_u, logvar_u).sum(-1)
        py = self.py_logits(u)
        log_py = soft_log_likelihood(py, y_used, sizes)
        mu_p, logvar_p = self.prior_z0(u)
        if mc_kl:
            kl_z0 = diag_log_prob(z0, mu, logvar) - diag_log_prob(z0, mu_p, logvar_p)
        else:
            kl_z0 = gaussian_kl(mu, logvar, mu_p, logvar_p).sum(-1)
        out, kl_z1, z1 = self._decode_train(x, z0, u, generator, feat)
        log_px = -distortion(x, out, "bernoulli")
        return SemafoOutput(
            labelled=labelled,
            log_px=log_px,
            log_py_u=log_py,
            log_qy_z=log_qy,
            entropy_qy=entropy,
            kl_z0=kl_z0,
            kl_u=kl_u,
            kl_z1=kl_z1,
            mu=mu,
            logvar=logvar,
            z0=z0,
            prior_mu=mu_p,
            prior_logvar=logvar_p,
            u=u,
            y=y_used,
            qy_logits=qy,
            py_logits=py,
            z1=z1,
            decoder_out=out,
        )

    # -- generation
    @torch.no_grad()
    def generate(
        self,
        y: torch.Tensor,
        generator: torch.Generator | None = None,
        *,
        sample_u: bool = True,
        sample_z0: bool = True,
        sample_z1: bool = True,
    ) -> dict[str, torch.Tensor]:
        r"""Controllable generation :math:`y\to u\to z_0\ (\to z_1)\to x` [SF:L476–595].

        Parameters
        ----------
        y : requested labels, factor indices ``[B, K]`` or one-hot ``[B, d_y]``.
        generator : seeded ``torch.Generator``.
        sample_u, sample_z0, sample_z1 : draw from :math:`q(u|y)`, :math:`p(z_0|u)`,
            :math:`p(z_1|z_0,u)`, or take their means (the authors show both).

        Returns
        -------
        dict with ``images`` ``[B, C, H, W]`` (mean images), ``u``, ``z0`` and, for the HVAE, ``z1``.
        """
        yo = self.as_one_hot(y)
        mu_u, lv_u = self.encode_u(yo)
        u = reparameterise(mu_u, lv_u, generator) if sample_u else mu_u
        mu_p, lv_p = self.prior_z0(u)
        z0 = reparameterise(mu_p, lv_p, generator) if sample_z0 else mu_p
        out: dict[str, torch.Tensor] = {"u": u, "z0": z0, "prior_mu": mu_p, "prior_logvar": lv_p}
        if self.hierarchical:
            z1, _, _ = self.prior_z1(z0, u, generator, sample=sample_z1)  # type: ignore[attr-defined]
            out["z1"] = z1
            out["images"] = self.mean_image(z0, z1)
        else:
            out["images"] = self.mean_image(z0)
        return out


def _layer_by_resolution(modules: nn.Sequential, x: torch.Tensor, resolution: int) -> int:
    """Index after which a Sequential's activation first has spatial size ``resolution`` (post-activation)."""
    found = -1
    for i, m in enumerate(modules):
        x = m(x)
        if (
            x.ndim == 4
            and x.shape[-1] == resolution
            and not isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
        ):
            found = i
            break
    if found < 0:
        raise ValueError(
            f"no feature map of resolution {resolution} in the conv body; choose z1_attach among "
            "the encoder/decoder's intermediate resolutions (e.g. 8)"
        )
    return found


class SemafoHVAE(SemafoVAE):
    r"""SemafoVAE with a second, spatial latent :math:`z_1` at an intermediate decoder map.

    With :math:`h=h(z_0)` the decoder's ``z1_attach``×``z1_attach`` feature map and :math:`e` the
    encoder's map of the same size [SF:L235–305, L869–924]:

    * prior :math:`[m,s]=\mathrm{Conv}(h)+c_{pz\_u}\,\mathrm{reshape}(a(u))`,
      :math:`p(z_1\mid z_0,u)=\mathcal N(m,(\mathrm{softplus}(s)+e^{-7})^2)`;
    * posterior :math:`q(z_1\mid x,z_0)`: :math:`\mathrm{Conv}(\mathrm{concat}[h,e])`, same form;
    * output to the decoder: :math:`\mathrm{ConvT}(\mathrm{concat}[z_1,c_{deter}\mathrm{Conv}(h)])+c_{residual}h`.

    The same :math:`u` sample feeds :math:`p(z_0|u)` and :math:`p(z_1|z_0,u)` [ours].
    ``posterior_means(x)`` returns ``[mean z1 [B, C1, R1, R1], mean z0 [B, D]]`` (bottom-up,
    like every per-layer sequence of the library: the top layer :math:`z_0` is last).

    Used in: :ref:`ch-semafovae`
    """

    hierarchical = True

    def __init__(self, config: SemafoConfig) -> None:
        super().__init__(config)
        c, res, _ = (int(s) for s in config.vae.input_shape)
        a = int(config.z1_attach)
        enc_body = self.vae.encoder_body[0]  # ConvEncoderBody
        dec_body = self.vae.decoder_body[2]  # ConvDecoderBody
        with torch.no_grad():
            self._enc_split = _layer_by_resolution(enc_body.net, torch.zeros(1, c, res, res), a)
            h0 = torch.zeros(1, dec_body.c0, dec_body.bottom, dec_body.bottom)
            if dec_body.bottom == a:
                self._dec_split = -1
            else:
                self._dec_split = _layer_by_resolution(dec_body.net, h0, a)
            e = enc_body.net[: self._enc_split + 1](torch.zeros(1, c, res, res))
            h = dec_body.net[: self._dec_split + 1](h0)
        ce, ch = int(e.shape[1]), int(h.shape[1])
        c1, r1, _ = config.z1_shape
        k, s = int(config.z1_kernel), int(config.z1_stride)
        p = (k - s) // 2
        self.z1_prior_conv = nn.Conv2d(ch, 2 * c1, k, s, p)
        self.z1_post_conv = nn.Conv2d(ch + ce, 2 * c1, k, s, p)
        self.z1_deter = nn.Conv2d(ch, int(config.z1_deter_channels), k, s, p)
        self.z1_out = nn.ConvTranspose2d(c1 + int(config.z1_deter_channels), ch, k, s, p)
        self.z1_u = mlp([config.u_dim, int(config.z1_u_hidden), 2 * c1 * r1 * r1])  # a(u)

    # -- pieces of the conv bodies
    def _enc_feature_and_stats(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        net = self.vae.encoder_body[0].net
        e = net[: self._enc_split + 1](x)
        flat = net[self._enc_split + 1 :](e)
        feat = self.vae.encoder_body[2](self.vae.encoder_body[1](flat))
        mu, logvar = self.vae.head(feat)
        return mu, logvar, e

    def _dec_feature(self, z0: torch.Tensor) -> torch.Tensor:
        body = self.vae.decoder_body[2]
        h = body.fc(self.vae.decoder_body[1](self.vae.decoder_body[0](z0)))
        h = h.view(z0.shape[0], body.c0, body.bottom, body.bottom)
        return body.net[: self._dec_split + 1](h)

    def _dec_rest(self, h: torch.Tensor) -> torch.Tensor:
        return self.vae.decoder_body[2].net[self._dec_split + 1 :](h)

    @staticmethod
    def _gauss(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m, s = params.chunk(2, dim=1)
        std = F.softplus(s) + math.exp(-7.0)
        return m, 2.0 * torch.log(std)

    def _z1_prior_params(
        self, h: torch.Tensor, u: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        c1, r1, _ = self.config.z1_shape
        skip = self.z1_u(u).view(u.shape[0], 2 * c1, r1, r1)
        return self._gauss(self.z1_prior_conv(h) + float(self.config.c_pz_u) * skip)

    def _merge(self, h: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        d = float(cfg.c_deter) * self.z1_deter(h)
        return self.z1_out(torch.cat([z1, d], dim=1)) + float(cfg.c_residual) * h

    # -- overrides
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, C, H, W] -> (mu, logvar)`` ``[B, D]`` of :math:`q(z_0\\mid x)`."""
        mu, logvar, _ = self._enc_feature_and_stats(x)
        return mu, logvar

    def _encode_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, Any]:
        return self._enc_feature_and_stats(x)

    def _decode_train(
        self,
        x: torch.Tensor,
        z0: torch.Tensor,
        u: torch.Tensor,
        generator: torch.Generator | None,
        feat: Any,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        h = self._dec_feature(z0)
        mu_q, lv_q = self._gauss(self.z1_post_conv(torch.cat([h, feat], dim=1)))
        mu_p, lv_p = self._z1_prior_params(h, u)
        z1 = reparameterise(mu_q, lv_q, generator)
        kl = gaussian_kl(mu_q, lv_q, mu_p, lv_p).flatten(1).sum(-1)
        return self._dec_rest(self._merge(h, z1)), kl, z1

    def posterior_z1(self, x: torch.Tensor, z0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)`` ``[B, C1, R1, R1]`` of :math:`q(z_1\\mid x,z_0)`."""
        _, _, e = self._enc_feature_and_stats(x)
        return self._gauss(self.z1_post_conv(torch.cat([self._dec_feature(z0), e], dim=1)))

    def prior_z1(
        self,
        z0: torch.Tensor,
        u: torch.Tensor,
        generator: torch.Generator | None = None,
        sample: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(z1, mu, logvar)`` ``[B, C1, R1, R1]`` of :math:`p(z_1\\mid z_0,u)` (``z1`` = mean if not ``sample``)."""
        mu, lv = self._z1_prior_params(self._dec_feature(z0), u)
        z1 = reparameterise(mu, lv, generator) if sample else mu
        return z1, mu, lv

    def decode(
        self,
        z0: torch.Tensor,
        z1: torch.Tensor | None = None,
        u: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        sample_z1: bool = True,
    ) -> torch.Tensor:
        """Bernoulli logits ``[B, C, H, W]``; without ``z1`` it is drawn from :math:`p(z_1\\mid z_0,u)`
        (``u`` required then), or its mean when ``sample_z1=False``."""
        h = self._dec_feature(z0)
        if z1 is None:
            if u is None:
                raise ValueError("SemafoHVAE.decode needs z1, or u to draw z1 from p(z1|z0,u)")
            mu, lv = self._z1_prior_params(h, u)
            z1 = reparameterise(mu, lv, generator) if sample_z1 else mu
        return self._dec_rest(self._merge(h, z1))

    def posterior_means(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``[mean z1 [B, C1, R1, R1], mean z0 [B, D]]``: bottom-up, means propagated top-down."""
        mu, _, e = self._enc_feature_and_stats(x)
        m1, _ = self._gauss(self.z1_post_conv(torch.cat([self._dec_feature(mu), e], dim=1)))
        return [m1, mu]


def build_semafo(config: SemafoConfig) -> SemafoVAE:
    """:class:`SemafoVAE` or :class:`SemafoHVAE` according to ``config.variant``.

    Used in: :ref:`ch-semafovae`
    """
    if config.variant == "flat":
        return SemafoVAE(config)
    if config.variant == "hierarchical":
        return SemafoHVAE(config)
    raise ValueError(f"unknown variant {config.variant!r}; valid: {', '.join(SEMAFO_VARIANTS)}")
