r"""Controllability of conditional generation, scored by a factor classifier (our FID replacement).

The authors' code reports FID (InceptionV3 at 299×299, 500 samples; trungnt13/odin-ai at commit
``9c6986a``, ``odin/bay/vi/disentanglement_gym.py``). The Inception weights cannot be
downloaded here, so (our choice) we train a small
convolutional **factor classifier** on the dataset's own images (seconds on dSprites-lite) and
score generated samples against the factors that were *requested*:

.. math::
    \mathrm{acc}_f=\frac1N\sum_{n=1}^N\mathbf 1\big[\arg\max_k c_f(\hat x_n)_k=y_{n,f}\big],
    \qquad \hat x_n\sim p(x\mid y_n),

per factor :math:`f`, with chance level :math:`1/K_f`. The classifier's own accuracy on held-out
real images is the ceiling. Optionally, :func:`classifier_frechet_distance` gives the Fréchet
distance between Gaussians fitted to the classifier's penultimate features of real and generated
images ("FD-cls"; it is **not** FID and must not be called so):

.. math::
    \mathrm{FD}=\|\mu_r-\mu_g\|^2+\mathrm{tr}\big(\Sigma_r+\Sigma_g-2(\Sigma_r^{1/2}\Sigma_g\Sigma_r^{1/2})^{1/2}\big).

Used in: :ref:`ch-semafovae`
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConfigBase, build_seeded, check_rng
from ..models.blocks import ConvEncoderBody
from ..train.loop import ImageFactorBatches, ResultCache, TrainConfig, TrainResult, fit, train

__all__ = [
    "FactorClassifierConfig",
    "FactorClassifier",
    "train_factor_classifier",
    "factor_accuracy",
    "ControllabilityResult",
    "RotationSymmetry",
    "controllability",
    "sample_factor_requests",
    "expected_distinct_configurations",
    "requests_distinct_fraction",
    "frechet_distance",
    "classifier_frechet_distance",
    "factor_consistency",
]


@dataclass(frozen=True)
class FactorClassifierConfig(ConfigBase):
    """A small conv classifier with one softmax head per factor.

    Attributes
    ----------
    input_shape : ``(C, H, W)``.
    factor_sizes : classes per factor.
    channels : stride-2 conv widths (:class:`~hvae_lib.models.blocks.ConvEncoderBody`).
    hidden : width of the penultimate (feature) layer.
    train : optimiser settings (cross-entropy summed over factors).


    Used in: :ref:`ch-semafovae`
    """

    input_shape: tuple[int, int, int] = (1, 32, 32)
    factor_sizes: tuple[int, ...] = (3, 4, 8, 8, 8)
    channels: tuple[int, ...] = (16, 32, 32)
    hidden: int = 128
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(steps=600, batch_size=64, lr=1e-3, log_every=50)
    )

    _nested = {"train": TrainConfig}

    def __post_init__(self) -> None:
        if len(self.input_shape) != 3 or any(int(s) <= 0 for s in self.input_shape):
            raise ValueError(f"input_shape must be (C, H, W), got {self.input_shape}")
        if len(self.factor_sizes) == 0 or any(int(k) <= 0 for k in self.factor_sizes):
            raise ValueError(f"factor_sizes must be positive integers, got {self.factor_sizes}")
        if int(self.hidden) <= 0:
            raise ValueError(f"hidden must be positive, got {self.hidden}")


class FactorClassifier(nn.Module):
    """``x [B, C, H, W] -> logits [B, sum K_f]`` (concatenated per-factor blocks).

    Used in: :ref:`ch-semafovae`
    """

    def __init__(self, config: FactorClassifierConfig) -> None:
        super().__init__()
        self.config = config
        c, h, w = (int(s) for s in config.input_shape)
        self.factor_sizes = tuple(int(k) for k in config.factor_sizes)
        body = ConvEncoderBody(c, h, config.channels)
        self.body = nn.Sequential(body, nn.Linear(body.out_features, int(config.hidden)), nn.ReLU())
        self.head = nn.Linear(int(config.hidden), sum(self.factor_sizes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``[B, hidden]`` (used by the Fréchet distance)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenated logits ``[B, sum K_f]``."""
        return self.head(self.features(x))

    def split(self, logits: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Per-factor logit blocks."""
        return torch.split(logits, list(self.factor_sizes), dim=-1)

    @torch.no_grad()
    def predict(self, x: Any, batch_size: int = 512) -> np.ndarray:
        """Predicted factor indices ``int64 [N, K]`` of images ``[N, C, H, W]`` (values in [0, 1])."""
        self.eval()
        dev = next(self.parameters()).device
        x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x)
        out = []
        for s in range(0, len(x), batch_size):
            logits = self(x[s : s + batch_size].to(dev).float())
            out.append(torch.stack([b.argmax(-1) for b in self.split(logits)], dim=-1).cpu())
        return (
            torch.cat(out).numpy() if out else np.zeros((0, len(self.factor_sizes)), dtype=np.int64)
        )


def _classifier_loss(
    model: FactorClassifier,
    batch: torch.Tensor,
    *,
    step: int = 0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    c, h, w = model.config.input_shape
    num_pix = c * h * w
    x = batch[:, :num_pix].reshape(-1, c, h, w)
    y = batch[:, num_pix:].long()
    logits = model.split(model(x))
    losses = [F.cross_entropy(lb, y[:, k]) for k, lb in enumerate(logits)]
    loss = torch.stack(losses).sum()
    acc = torch.stack(
        [(lb.argmax(-1) == y[:, k]).float().mean() for k, lb in enumerate(logits)]
    ).mean()
    return loss, {"loss": loss.detach(), "accuracy": acc.detach()}


def train_factor_classifier(
    images: Any,
    factors: Any,
    config: FactorClassifierConfig,
    *,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> tuple[FactorClassifier, TrainResult]:
    r"""Train a :class:`FactorClassifier` with :func:`!hvae_lib.train.train` (Adam, seeded).

    Loss :math:`\sum_f\mathrm{CE}(c_f(x),y_f)`. Images and factors are drawn together and
    packed per minibatch (:class:`ImageFactorBatches`), so the images are never copied whole.

    Parameters
    ----------
    images : ``[N, C, H, W]`` in [0, 1]; factors : ``[N, K]`` integer indices.


    Used in: :ref:`ch-semafovae`
    """
    x, f = _classifier_data(images, factors, config)
    model = build_seeded(lambda: FactorClassifier(config), config.train.seed)
    data = ImageFactorBatches(x, f, config.train.batch_size, config.train.seed)
    result = train(
        model,
        data,
        _classifier_loss,
        config.train,
        device=device,
        progress=progress,
        desc="factor classifier",
    )
    return model, result


def fit_factor_classifier(
    images: Any,
    factors: Any,
    config: FactorClassifierConfig,
    *,
    key: Any,
    cache: ResultCache | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> tuple[FactorClassifier, TrainResult]:
    """:func:`train_factor_classifier` through the result cache (:func:`!hvae_lib.train.fit`):
    the first notebook that needs the classifier trains it, the others load it.

    ``key`` names the data (e.g. its description); the cache key also covers ``config``, the
    images and the factors. Same training as :func:`train_factor_classifier`.

    Used in: :ref:`ch-semafovae`
    """
    x, f = _classifier_data(images, factors, config)
    return fit(
        lambda: FactorClassifier(config),
        ImageFactorBatches(x, f, config.train.batch_size, config.train.seed),
        _classifier_loss,
        config.train,
        key=("factor classifier", key, config),
        cache=cache,
        device=device,
        progress=progress,
        desc="factor classifier",
    )


def _classifier_data(
    images: Any, factors: Any, config: FactorClassifierConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
    f = torch.as_tensor(np.asarray(factors) if not torch.is_tensor(factors) else factors)
    if x.ndim != 4 or f.ndim != 2 or len(x) != len(f) or f.shape[1] != len(config.factor_sizes):
        raise ValueError(
            f"need images [N, C, H, W] and factors [N, {len(config.factor_sizes)}]; got "
            f"{tuple(x.shape)}, {tuple(f.shape)}"
        )
    return x, f


def factor_accuracy(classifier: FactorClassifier, images: Any, factors: Any) -> np.ndarray:
    """Per-factor accuracy ``float64 [K]`` of the classifier on (real) images with known factors.

    Used in: :ref:`ch-semafovae`
    """
    pred = classifier.predict(images)
    f = np.asarray(factors)
    if pred.shape != f.shape:
        raise ValueError(f"factors must have shape {pred.shape}, got {f.shape}")
    return (pred == f).mean(axis=0).astype(np.float64)


def _check_sizes(factor_sizes: Sequence[int]) -> tuple[int, ...]:
    sizes = tuple(int(k) for k in factor_sizes)
    if len(sizes) == 0 or any(k <= 0 for k in sizes):
        raise ValueError(f"factor_sizes must be positive integers, got {tuple(factor_sizes)}")
    return sizes


def sample_factor_requests(
    factor_sizes: Sequence[int], num: int, rng: np.random.Generator
) -> np.ndarray:
    r"""Requested factors ``int64 [num, K]``: every factor uniform, the factors independent.

    .. math::
        y_{n,f}\sim\mathrm{Uniform}\{0,\dots,K_f-1\},\quad\text{independent over } n, f,

    as in the authors' ``sample_fid`` protocol. The columns are drawn from the one ``rng``,
    one after the other, so the same ``rng`` state gives the same requests and no two columns
    share a stream (drawing each column from a freshly seeded generator would make them
    functions of one stream: the defect this function replaces).

    Used in: :ref:`ch-semafovae`
    """
    check_rng(rng)
    sizes = _check_sizes(factor_sizes)
    if int(num) < 1:
        raise ValueError(f"num must be a positive number of requests, got {num}")
    cols = [rng.integers(0, k, int(num), dtype=np.int64) for k in sizes]
    return np.stack(cols, axis=1)


def expected_distinct_configurations(factor_sizes: Sequence[int], num: int) -> float:
    r"""Expected number of distinct rows among ``num`` uniform, independent requests.

    With :math:`M=\prod_f K_f` configurations,
    :math:`\mathbb E[\#\text{distinct}]=M\big(1-(1-1/M)^{N}\big)`.

    Used in: :ref:`ch-semafovae`
    """
    m = float(np.prod(_check_sizes(factor_sizes), dtype=np.float64))
    if int(num) < 0:
        raise ValueError(f"num must be >= 0, got {num}")
    return -m * float(np.expm1(int(num) * np.log1p(-1.0 / m))) if m > 1 else float(num > 0)


def requests_distinct_fraction(requested: Any, factor_sizes: Sequence[int]) -> float:
    """Distinct requested configurations over the number expected under independence.

    About 1 for uniform, independent requests; far below 1 when the columns are functions of
    one another (the old defect gave 10 configurations in 1,000 requests, a fraction of 0.01).

    Used in: :ref:`ch-semafovae`
    """
    r = np.asarray(requested)
    sizes = _check_sizes(factor_sizes)
    if r.ndim != 2 or r.shape[1] != len(sizes) or len(r) == 0:
        raise ValueError(f"requested must have shape [N >= 1, {len(sizes)}], got {r.shape}")
    distinct = len(np.unique(r, axis=0))
    return distinct / expected_distinct_configurations(sizes, len(r))


@dataclass(frozen=True)
class RotationSymmetry:
    r"""Orientation scored modulo each shape's rotational symmetry.

    A shape of rotation order :math:`m` looks the same after a turn of :math:`2\pi/m` (the
    dSprites square: 4, the ellipse: 2, the heart: 1), so a classifier cannot tell those
    orientations apart and a generator cannot be asked to. Predicted and requested
    orientation :math:`a, b` count as equal for shape :math:`s` when

    .. math::
        \theta_a-\theta_b\equiv 0 \pmod{2\pi/m_s}.

    Attributes
    ----------
    shape_factor, orientation_factor : column indices of the shape and orientation factors.
    orientations : the orientation of each orientation class, radians ``[K_o]``.
    rotation_order : :math:`m_s` per shape class.
    shape_names : names of the shape classes (for reports).


    Used in: :ref:`ch-semafovae`
    """

    shape_factor: int
    orientation_factor: int
    orientations: tuple[float, ...]
    rotation_order: tuple[int, ...]
    shape_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if int(self.shape_factor) == int(self.orientation_factor):
            raise ValueError("shape_factor and orientation_factor must be different columns")
        if len(self.orientations) == 0:
            raise ValueError("orientations must hold at least one angle")
        if len(self.rotation_order) == 0 or any(int(m) < 1 for m in self.rotation_order):
            raise ValueError(f"rotation_order must be integers >= 1, got {self.rotation_order}")
        if self.shape_names and len(self.shape_names) != len(self.rotation_order):
            raise ValueError("need one shape name per rotation order")

    def _residue(self, shape: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        theta = np.asarray(self.orientations, dtype=np.float64)
        period = 2.0 * np.pi / np.asarray(self.rotation_order, dtype=np.float64)[shape]
        d = np.mod(theta[a] - theta[b], period)
        return np.minimum(d, period - d)

    def equivalent(self, shape: Any, a: Any, b: Any) -> np.ndarray:
        """``bool [N]``: orientation classes ``a`` and ``b`` look the same for ``shape``."""
        s, a, b = (np.asarray(v, dtype=np.int64) for v in (shape, a, b))
        return self._residue(s, a, b) < 1e-6

    def chance(self, shape: int) -> float:
        """Accuracy of a uniform guess when the request is uniform: mean equivalent-class size / K_o."""
        k = len(self.orientations)
        a, b = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
        return float(self.equivalent(np.full(k * k, int(shape)), a.ravel(), b.ravel()).mean())

    def name(self, shape: int) -> str:
        """The shape's name, or ``shape<i>``."""
        return self.shape_names[shape] if self.shape_names else f"shape{shape}"


@dataclass
class ControllabilityResult:
    """Per-factor accuracy of generated samples w.r.t. the requested factors.

    Attributes
    ----------
    per_factor : ``[K]`` accuracies; chance : ``[K]`` chance levels (``1/K_f``; for an
    orientation scored modulo symmetry, the mean over the requests of the shape's chance);
    names : factor names; n : number of samples; orientation_by_shape : with a
    :class:`RotationSymmetry`, ``{shape name: (accuracy, chance)}`` of the orientation.


    Used in: :ref:`ch-semafovae`
    """

    per_factor: np.ndarray
    chance: np.ndarray
    names: tuple[str, ...]
    n: int
    orientation_by_shape: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        """Mean accuracy over factors."""
        return float(np.mean(self.per_factor))

    @property
    def mean_chance(self) -> float:
        """Chance level of :attr:`mean` (the mean of :attr:`chance`)."""
        return float(np.mean(self.chance))

    def as_dict(self) -> dict[str, float]:
        """``{name: accuracy}`` plus ``"mean"``."""
        return {**{n: float(a) for n, a in zip(self.names, self.per_factor)}, "mean": self.mean}


def controllability(
    classifier: FactorClassifier,
    generated: Any,
    requested: Any,
    names: Sequence[str] | None = None,
    *,
    symmetry: RotationSymmetry | None = None,
) -> ControllabilityResult:
    r"""Score images ``[N, C, H, W]`` against requested factors ``int [N, K]`` (:math:`\mathrm{acc}_f`).

    With ``symmetry`` the orientation is scored modulo the requested shape's rotational
    symmetry (:class:`RotationSymmetry`), with the matching chance level. Scoring real images
    against their own factors gives the ceiling; scoring images against a request they ignore
    (e.g. a shuffled one) gives the chance level, up to sampling error.

    Used in: :ref:`ch-semafovae`
    """
    sizes = classifier.factor_sizes
    nm = tuple(names) if names is not None else tuple(f"factor{k}" for k in range(len(sizes)))
    if len(nm) != len(sizes):
        raise ValueError(f"need {len(sizes)} names, got {len(nm)}")
    req = np.asarray(requested)
    pred = classifier.predict(generated)
    if pred.shape != req.shape:
        raise ValueError(f"requested must have shape {pred.shape}, got {req.shape}")
    hits = pred == req
    chance = 1.0 / np.asarray(sizes, dtype=np.float64)
    by_shape: dict[str, tuple[float, float]] = {}
    if symmetry is not None:
        s, o = int(symmetry.shape_factor), int(symmetry.orientation_factor)
        if max(s, o) >= len(sizes) or sizes[o] != len(symmetry.orientations):
            raise ValueError(
                f"the symmetry's factors ({s}, {o}) and {len(symmetry.orientations)} "
                f"orientations do not match factor sizes {sizes}"
            )
        if len(symmetry.rotation_order) != sizes[s]:
            raise ValueError(f"need {sizes[s]} rotation orders, got {symmetry.rotation_order}")
        hits[:, o] = symmetry.equivalent(req[:, s], pred[:, o], req[:, o])
        per_shape = np.array([symmetry.chance(k) for k in range(sizes[s])])
        chance[o] = float(per_shape[req[:, s]].mean()) if len(req) else float(per_shape.mean())
        for k in range(sizes[s]):
            rows = req[:, s] == k
            if rows.any():
                by_shape[symmetry.name(k)] = (float(hits[rows, o].mean()), float(per_shape[k]))
    return ControllabilityResult(
        per_factor=hits.mean(axis=0).astype(np.float64),
        chance=chance,
        names=nm,
        n=int(len(req)),
        orientation_by_shape=by_shape,
    )


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2.0)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    r"""Fréchet (2-Wasserstein) distance between :math:`\mathcal N(\mu_1,\Sigma_1)` and
    :math:`\mathcal N(\mu_2,\Sigma_2)`.

    .. math::
        \|\mu_1-\mu_2\|^2+\mathrm{tr}\,\Sigma_1+\mathrm{tr}\,\Sigma_2
        -2\,\mathrm{tr}(\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2})^{1/2}

    computed with symmetric eigendecompositions (no SciPy); clipped at 0.

    Used in: :ref:`ch-semafovae`
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = (
        np.atleast_2d(np.asarray(cov1, np.float64)),
        np.atleast_2d(np.asarray(cov2, np.float64)),
    )
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != (mu1.size, mu1.size):
        raise ValueError("frechet_distance needs matching means [D] and covariances [D, D]")
    s1 = _sqrtm_psd(cov1)
    cross = _sqrtm_psd(s1 @ cov2 @ s1)
    d = float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(cross))
    return max(d, 0.0)


@torch.no_grad()
def classifier_frechet_distance(
    classifier: FactorClassifier, real: Any, generated: Any, batch_size: int = 512
) -> float:
    """FD-cls: Fréchet distance between the classifier-feature Gaussians of real and generated images.

    Not FID (no Inception network); comparable only between models scored by the same classifier
    and sample sizes.

    Used in: :ref:`ch-semafovae`
    """
    classifier.eval()
    dev = next(classifier.parameters()).device

    def feats(x: Any) -> np.ndarray:
        x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x).float()
        if len(x) < 2:
            raise ValueError("need at least two images per set")
        return (
            torch.cat(
                [
                    classifier.features(x[s : s + batch_size].to(dev)).cpu()
                    for s in range(0, len(x), batch_size)
                ]
            )
            .double()
            .numpy()
        )

    a, b = feats(real), feats(generated)
    return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def factor_consistency(classifier: FactorClassifier, traversals: Any) -> tuple[float, float]:
    r"""How much traversals keep the classifier's factor readings, and how much they change pixels.

    ``traversals`` ``[R, P, C, H, W]``: ``R`` traversals of ``P`` images each. For each traversal
    the reference is its centre image (index ``P // 2``). Returns

    * the fraction of (image, factor) pairs whose predicted factor equals the reference's, and
    * the mean absolute pixel difference to the reference,

    used in chapter 4 to compare interventions on :math:`z_0` and on :math:`z_1` [ours].

    Used in: :ref:`ch-semafovae`
    """
    x = torch.as_tensor(
        np.asarray(traversals) if not torch.is_tensor(traversals) else traversals
    ).float()
    if x.ndim != 5 or x.shape[1] < 2:
        raise ValueError(f"traversals must be [R, P >= 2, C, H, W], got shape {tuple(x.shape)}")
    r, p = int(x.shape[0]), int(x.shape[1])
    pred = classifier.predict(x.flatten(0, 1)).reshape(r, p, -1)
    centre = p // 2
    kept = float((pred == pred[:, centre : centre + 1]).mean())
    change = float((x - x[:, centre : centre + 1]).abs().mean())
    return kept, change
