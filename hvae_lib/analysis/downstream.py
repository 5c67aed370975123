r"""Downstream evaluation of hierarchical VAEs and the rate-splitting bounds.

Three tasks use different parts of a VAE (Xiao & Bamler 2023, slides p.4):

* **reconstruction** — :func:`evaluate_rates`, :func:`psnr`, :func:`reconstruction_psnr`;
* **representation learning** from the top layer :math:`z_2` — :func:`top_layer_codes`,
  :func:`probe_accuracy` (logistic regression, k-NN, RBF-SVM from scikit-learn on the
  posterior mean :math:`\mu_2` and on a sampled :math:`z_2`), :func:`label_information`
  (Monte-Carlo :math:`\hat I(\text{label}; z_2)`, plug-in and leave-one-out);
* **generation** — :func:`inception_style_score`, :func:`sample_quality` with a classifier
  trained on the dataset (:func:`fit_image_classifier`, or the small CNN of
  :func:`fit_cnn_classifier`).

Two protocols for the representation and generation numbers of :func:`evaluate_model`. Ours
(the default): probes of :math:`\mu_L` fitted on the training codes and scored on the test
codes (:data:`PROBES`), one IS split. The authors' (``faithful=True``; timxzz/HIT at commit
0b34fbefc56899636ec5951de210ec7300a74e2f, ``utils_eval.py``): probes of :math:`\mu_L`
fitted on a random 80 % of the **test** codes and scored on the other 20 %
(:func:`faithful_probe_accuracy`) with the authors' probe set (:data:`FAITHFUL_PROBES`), and
the IS over 5 splits with a CNN classifier trained on the dataset (:func:`fit_cnn_classifier`).

The bounds, as checkable functions (Xiao & Bamler 2023, arXiv:2302.04855; the paper's full text
was not available to us, so its statements follow the authors' ICLR 2023 slides):

* distortion bound — **the paper's** (slides p.5):
  :math:`\mathbb E[D] \ge H[p_{\rm data}] - \mathbb E[\sum_l R_l]`; the proof via
  :math:`D + R = -\mathrm{ELBO} \ge -\log p_\theta(x)` and the Gaussian form
  (:func:`gaussian_sse_lower_bound`) are **our derivation**. See :func:`check_distortion_bound`.
* Fano-type classification bound — **the paper's** (slides p.6):
  :math:`\text{accuracy} \le f^{-1}(I(\text{label}; z_2)) \le f^{-1}(\mathbb E R(z_2))` with
  :math:`f(\alpha)=H[p(\text{label})]+\alpha\log\alpha+(1-\alpha)\log\frac{1-\alpha}{M-1}`.
  The proof, the monotone branch :math:`[1/M, 1]` on which :func:`fano_inverse` inverts
  :math:`f` exactly (Brent's method instead of the authors' unbounded Nelder–Mead), the
  empirical label distribution in :math:`H`, and the scope remark (the bound covers
  classifiers of a **sampled** :math:`z_2`, not of :math:`\mu_2`) are **our derivation**.
  See :func:`check_fano_bound`.

Two criteria of the chapter's claims, both our formalisations: :func:`check_rate_control`
(two prices steer two rates: each rate falls with its own β, not with the other) and
:func:`optima_separation` (no one VAE fits all: no member within the seed-to-seed spread of
the best on every task).

Differences from the authors' evaluation code, on purpose: images are clamped to the data
range before every image metric; PSNR uses ``data_range = 1`` (not inferred from the
targets); test-set averages are sums divided by N (not means of batch means); the MI
estimator has a leave-one-out variant besides the authors' plug-in one.

Randomness is passed in: posterior and prior samples come from a ``torch.Generator``
(``generator``, on the model's device), the probes' and classifiers' seeds from a
``numpy.random.Generator`` (``rng``, one draw per scikit-learn estimator).

Used in: :ref:`ch-rate-splitting`
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.optimize import brentq
from scipy.special import xlogy

from ..config import build_seeded, check_generator, check_rng
from ..models.hierarchical import HierarchicalVAE

__all__ = [
    "PROBES",
    "FAITHFUL_PROBES",
    "RateEvaluation",
    "evaluate_rates",
    "psnr",
    "reconstruction_psnr",
    "TopLayerCodes",
    "top_layer_codes",
    "probe_accuracy",
    "faithful_probe_accuracy",
    "LabelInformation",
    "label_information",
    "label_distribution",
    "SampleScore",
    "inception_style_score",
    "fit_image_classifier",
    "CNNClassifier",
    "fit_cnn_classifier",
    "sample_quality",
    "fano_f",
    "fano_inverse",
    "distortion_lower_bound",
    "gaussian_sse_lower_bound",
    "BoundCheck",
    "check_distortion_bound",
    "measure_distortion_and_rate",
    "FanoCheck",
    "check_fano_bound",
    "evaluate_model",
    "evaluate_grid",
    "binomial_lower_limit",
    "best_per_budget",
    "RateControlCheck",
    "check_rate_control",
    "OptimaSeparation",
    "optima_separation",
]

PROBES: tuple[str, ...] = ("logistic", "knn", "rbf_svm")
"""Classifier probes of :func:`probe_accuracy` (our default protocol)."""

FAITHFUL_PROBES: tuple[str, ...] = ("logistic_5seeds", "rbf_svm", "linear_svm", "knn")
"""The authors' probe set, in the order of their evaluation (timxzz/HIT at commit
0b34fbefc56899636ec5951de210ec7300a74e2f, ``utils_eval.py``, ``cal_accs`` and
``simple_clf_acc``): logistic regression (saga) averaged over 5 seeds, an RBF-kernel SVM, a
linear-kernel SVM (``SVC(kernel="linear")``) and k-NN with scikit-learn's default
:math:`k = 5`. The default probes of :func:`faithful_probe_accuracy` and of
:func:`evaluate_model` with ``faithful=True``."""

_VALID_PROBES: tuple[str, ...] = ("logistic", "knn", "rbf_svm", "linear_svm", "logistic_5seeds")
_NUM_LOGISTIC_SEEDS = 5


def _as_tensor(x: Any) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    return t if t.is_floating_point() else t.float()


def _as_numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _model_device(model: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    p = next(model.parameters())
    return p.device, p.dtype


def _check_images(model: HierarchicalVAE, data: torch.Tensor) -> None:
    shape = tuple(int(s) for s in model.config.input_shape)
    if data.dim() != 4 or tuple(data.shape[1:]) != shape or data.shape[0] == 0:
        raise ValueError(
            f"expected images [N, {', '.join(map(str, shape))}] with N >= 1, got {tuple(data.shape)}"
        )


# ----------------------------------------------------------------------------------------------
# reconstruction
# ----------------------------------------------------------------------------------------------
@dataclass
class RateEvaluation:
    r"""Per-example terms of a hierarchical VAE on ``N`` examples (``L`` layers), in nats.

    Attributes
    ----------
    distortion : ``[N]`` :math:`-\log p(x\mid z_1)` at one posterior sample.
    rates : ``[N, L]``; column ``l-1`` is the one-sample estimate of :math:`R(z_l\mid z_{>l})`,
        the last column :math:`R(z_L)`.


    Used in: :ref:`ch-rate-splitting`
    """

    distortion: np.ndarray
    rates: np.ndarray

    @property
    def mean_rates(self) -> np.ndarray:
        """``[L]`` dataset averages (sum / N) of the per-layer rates."""
        return self.rates.mean(0)

    @property
    def total_rate(self) -> float:
        """:math:`\\mathbb E_x \\sum_l R_l`."""
        return float(self.rates.sum(1).mean())

    @property
    def mean_distortion(self) -> float:
        """:math:`\\mathbb E_x D`."""
        return float(self.distortion.mean())

    @property
    def elbo(self) -> float:
        """:math:`-\\mathbb E_x(D + \\sum_l R_l)`."""
        return -(self.mean_distortion + self.total_rate)


@torch.no_grad()
def evaluate_rates(
    model: HierarchicalVAE,
    data: torch.Tensor | np.ndarray,
    *,
    generator: torch.Generator,
    batch_size: int = 512,
) -> RateEvaluation:
    """Per-example distortion and per-layer rates on a test set.

    ``data`` ``[N, C, H, W]``; one posterior sample per example from ``generator``, a
    ``torch.Generator`` on the model's device. Averages are sums over all N divided by N
    (the authors average per-batch means, over-weighting the last batch).

    Used in: :ref:`ch-rate-splitting`
    """
    data = _as_tensor(data)
    _check_images(model, data)
    model.eval()
    device, dtype = _model_device(model)
    gen = check_generator(generator, device)
    dist, rates = [], []
    for start in range(0, data.shape[0], int(batch_size)):
        x = data[start : start + int(batch_size)].to(device, dtype)
        out = model(x, generator=gen)
        dist.append(out.distortion.cpu().numpy())
        rates.append(out.rates.cpu().numpy())
    return RateEvaluation(
        np.concatenate(dist).astype(np.float64), np.concatenate(rates).astype(np.float64)
    )


def psnr(
    target: torch.Tensor | np.ndarray,
    reconstruction: torch.Tensor | np.ndarray,
    *,
    data_range: float = 1.0,
    clamp: bool = True,
    reduction: str = "dataset",
) -> float | np.ndarray:
    r"""Peak signal-to-noise ratio in dB.

    .. math:: \mathrm{PSNR} = 10\log_{10}\frac{\text{data\_range}^2}{\mathrm{MSE}}

    Parameters
    ----------
    target, reconstruction : ``[N, ...]`` images of equal shape.
    data_range : the range of the data (1 for images in ``[0, 1]``); fixed, never inferred
        from the targets.
    clamp : clamp ``reconstruction`` to ``[0, data_range]`` first.
    reduction : ``"dataset"`` — one PSNR of the MSE over all pixels of all images (what
        ``torchmetrics.PeakSignalNoiseRatio()`` accumulates); ``"mean"`` — the mean of
        per-image PSNRs; ``"none"`` — ``[N]`` per-image PSNRs.


    Used in: :ref:`ch-rate-splitting`
    """
    t = _as_numpy(target).astype(np.float64)
    r = _as_numpy(reconstruction).astype(np.float64)
    if t.shape != r.shape or t.ndim < 1 or t.shape[0] == 0:
        raise ValueError(
            f"target {t.shape} and reconstruction {r.shape} must have the same shape [N, ...]"
        )
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    if clamp:
        r = np.clip(r, 0.0, data_range)
    err = (t - r) ** 2
    with np.errstate(divide="ignore"):
        if reduction == "dataset":
            return float(10.0 * np.log10(data_range**2 / err.mean()))
        per_image = 10.0 * np.log10(data_range**2 / err.reshape(err.shape[0], -1).mean(1))
    if reduction == "mean":
        return float(per_image.mean())
    if reduction == "none":
        return per_image
    raise ValueError(f"unknown reduction {reduction!r}; valid: dataset, mean, none")


@torch.no_grad()
def reconstruction_psnr(
    model: HierarchicalVAE,
    data: torch.Tensor | np.ndarray,
    *,
    batch_size: int = 512,
    data_range: float = 1.0,
    reduction: str = "dataset",
) -> float | np.ndarray:
    r"""PSNR of posterior-mean reconstructions :math:`\mathbb E[x\mid\bar z_1]`, clamped to the range.

    :math:`\bar z_2=\mu_2(x)`, :math:`\bar z_1` the mean of :math:`q(z_1\mid\bar z_2, x)` (the
    authors' protocol, :meth:`.HierarchicalVAE.reconstruct`), then :func:`psnr`.

    Used in: :ref:`ch-rate-splitting`
    """
    data = _as_tensor(data)
    _check_images(model, data)
    model.eval()
    device, dtype = _model_device(model)
    recs = [
        model.reconstruct(data[s : s + int(batch_size)].to(device, dtype)).cpu()
        for s in range(0, data.shape[0], int(batch_size))
    ]
    return psnr(data, torch.cat(recs), data_range=data_range, clamp=True, reduction=reduction)


# ----------------------------------------------------------------------------------------------
# representation learning
# ----------------------------------------------------------------------------------------------
@dataclass
class TopLayerCodes:
    r"""Top-layer codes of ``N`` examples (``d = dim z_L``).

    Attributes
    ----------
    mean : ``[N, d]`` posterior mean :math:`\mu_L(x)` (deterministic in x).
    logvar : ``[N, d]`` posterior log-variance :math:`\log\sigma_L^2(x)`.
    sample : ``[N, d]`` one sample :math:`z_L\sim q(z_L\mid x)` per example.


    Used in: :ref:`ch-rate-splitting`
    """

    mean: np.ndarray
    logvar: np.ndarray
    sample: np.ndarray


@torch.no_grad()
def top_layer_codes(
    model: HierarchicalVAE,
    data: torch.Tensor | np.ndarray,
    *,
    generator: torch.Generator,
    batch_size: int = 512,
) -> TopLayerCodes:
    """Posterior mean, std and one sample of the top layer :math:`q(z_L\\mid x)` for ``data``
    ``[N, C, H, W]``; the sample is drawn from ``generator``, a ``torch.Generator`` on the
    model's device.

    Used in: :ref:`ch-rate-splitting`
    """
    data = _as_tensor(data)
    _check_images(model, data)
    model.eval()
    device, dtype = _model_device(model)
    gen = check_generator(generator, device)
    mus, logvars, zs = [], [], []
    for s in range(0, data.shape[0], int(batch_size)):
        mu, logvar = model.top_posterior(data[s : s + int(batch_size)].to(device, dtype))
        eps = torch.randn(mu.shape, generator=gen, device=device, dtype=dtype)
        mus.append(mu.cpu())
        logvars.append(logvar.cpu())
        zs.append((mu + torch.exp(0.5 * logvar) * eps).cpu())
    return TopLayerCodes(
        torch.cat(mus).double().numpy(),
        torch.cat(logvars).double().numpy(),
        torch.cat(zs).double().numpy(),
    )


def _check_probes(probes: Sequence[str]) -> tuple[str, ...]:
    """``probes`` as a tuple; a ``ValueError`` naming the valid probes for an unknown name."""
    if isinstance(probes, str):
        raise ValueError(
            f"probes must be a sequence of probe names, not the string {probes!r}; "
            f"valid names: {', '.join(_VALID_PROBES)}"
        )
    names = tuple(probes)
    for name in names:
        if name not in _VALID_PROBES:
            raise ValueError(f"unknown probe {name!r}; valid: {', '.join(_VALID_PROBES)}")
    return names


def _make_probe(name: str, random_state: int) -> Any:
    """One unfitted scikit-learn estimator; ``"logistic_5seeds"`` gives one of its 5 fits."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    if name == "logistic":
        return LogisticRegression(max_iter=2000, random_state=random_state)
    if name == "knn":
        return KNeighborsClassifier(n_neighbors=5)
    if name == "rbf_svm":
        return SVC(kernel="rbf", random_state=random_state)
    if name == "linear_svm":
        return SVC(kernel="linear", random_state=random_state)
    if name == "logistic_5seeds":
        # saga and scikit-learn's default max_iter=100, as the authors; multinomial is
        # scikit-learn's default for more than two classes (the authors ask for it by name)
        return LogisticRegression(solver="saga", max_iter=100, random_state=random_state)
    raise ValueError(f"unknown probe {name!r}; valid: {', '.join(_VALID_PROBES)}")


def _fit_predict(
    name: str, xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, *, rng: np.random.Generator
) -> np.ndarray:
    """Predicted labels of one probe: ``[N_test]``, or ``[5, N_test]`` for
    ``"logistic_5seeds"`` (one row per seed). One ``rng`` draw per estimator, in order."""
    if name != "logistic_5seeds":
        clf = _make_probe(name, int(rng.integers(2**31 - 1)))
        clf.fit(xtr, ytr)
        return np.asarray(clf.predict(xte))
    from sklearn.exceptions import ConvergenceWarning

    rows = []
    for _ in range(_NUM_LOGISTIC_SEEDS):
        clf = _make_probe(name, int(rng.integers(2**31 - 1)))
        with warnings.catch_warnings():
            # the authors' 100 saga epochs need not converge; that is part of their protocol
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(xtr, ytr)
        rows.append(np.asarray(clf.predict(xte)))
    return np.stack(rows)


def probe_accuracy(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    *,
    rng: np.random.Generator,
    probes: Sequence[str] = PROBES,
) -> dict[str, float]:
    """Test accuracy of scikit-learn classifiers fitted on ``train_features``.

    Probes (scikit-learn defaults otherwise, features not rescaled, as the authors):
    ``"logistic"`` — ``LogisticRegression`` (lbfgs, multinomial, ``max_iter=2000``; ours);
    ``"knn"`` — ``KNeighborsClassifier(5)``; ``"rbf_svm"`` — ``SVC(kernel="rbf")``;
    ``"linear_svm"`` — ``SVC(kernel="linear")``; ``"logistic_5seeds"`` — the mean accuracy of
    5 fits of ``LogisticRegression(solver="saga", max_iter=100)`` (multinomial) with 5
    seeds. The last two, and the settings of all but ``"logistic"``, are the authors'
    (timxzz/HIT at commit 0b34fbefc56899636ec5951de210ec7300a74e2f, ``utils_eval.py``,
    ``simple_clf_acc``; they seed the 5 logistic fits 0 to 4 and take scikit-learn's default
    100 iterations, whose convergence warnings are silenced here).

    Parameters
    ----------
    train_features, test_features : ``[N, d]``.
    train_labels, test_labels : ``[N]`` integer labels.
    rng : ``numpy.random.Generator``; one draw ``rng.integers(2**31 - 1)`` per estimator, in
        the order of ``probes``, is its ``random_state`` (drawn for ``"knn"`` too, which ignores
        it); ``"logistic_5seeds"`` takes 5 draws one after the other, one per fit.
    probes : names from :data:`PROBES` and :data:`FAITHFUL_PROBES`; an unknown name is a
        ``ValueError`` that lists the valid ones.

    Returns ``{probe: accuracy}``.


    Used in: :ref:`ch-rate-splitting`
    """
    check_rng(rng)
    probes = _check_probes(probes)
    xtr, xte = (
        np.asarray(train_features, dtype=np.float64),
        np.asarray(test_features, dtype=np.float64),
    )
    ytr, yte = np.asarray(train_labels), np.asarray(test_labels)
    if xtr.ndim != 2 or xte.ndim != 2 or xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"features must be [N, d] with equal d, got {xtr.shape} and {xte.shape}")
    if len(ytr) != len(xtr) or len(yte) != len(xte):
        raise ValueError("features and labels differ in length")
    if len(np.unique(ytr)) < 2:
        raise ValueError("the training labels contain a single class")
    return {
        name: float((pred == yte).mean())
        for name, pred in _probe_predictions(xtr, ytr, xte, rng=rng, probes=probes).items()
    }


def _probe_predictions(
    xtr: np.ndarray,
    ytr: np.ndarray,
    xte: np.ndarray,
    *,
    rng: np.random.Generator,
    probes: Sequence[str],
) -> dict[str, np.ndarray]:
    """``{probe: predicted labels}``, ``[N_test]`` (``[5, N_test]`` for ``"logistic_5seeds"``,
    so that ``(pred == y).mean()`` is the mean accuracy of its 5 fits); one ``rng`` draw per
    estimator, in order."""
    out: dict[str, np.ndarray] = {}
    for name in _check_probes(probes):
        out[name] = _fit_predict(name, xtr, ytr, xte, rng=rng)
    return out


def faithful_probe_accuracy(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    rng: np.random.Generator,
    probes: Sequence[str] | None = None,
    test_fraction: float = 0.2,
) -> dict[str, float]:
    r"""The authors' protocol: one random permutation of the **test-set** codes, fit on 80 %,
    score on the remaining 20 % (noisy on small test sets; :func:`probe_accuracy` with train
    and test codes is our default).

    The authors' setting (timxzz/HIT at commit 0b34fbefc56899636ec5951de210ec7300a74e2f,
    ``utils_eval.py``, ``simple_clf_acc``): the codes :math:`\mu_L` of the test set, one
    permutation from a fixed seed (42), the last ``int(0.2 N)`` points held out, and the probes
    of :data:`FAITHFUL_PROBES`. Here the permutation comes from ``rng`` and the first
    ``max(1, round(test_fraction * N))`` permuted points are held out.

    Parameters
    ----------
    features : ``[N, d]`` codes (the test set's).
    labels : ``[N]`` integer labels.
    rng : ``numpy.random.Generator``; draws the permutation, then the probes' seeds
        (:func:`probe_accuracy`).
    probes : probe names; ``None`` (the default) means :data:`FAITHFUL_PROBES`.
    test_fraction : the held-out share, in ``(0, 1)``.

    Returns ``{probe: accuracy}`` on the held-out points.

    Used in: :ref:`ch-rate-splitting`
    """
    check_rng(rng)
    names = _check_probes(FAITHFUL_PROBES if probes is None else probes)
    x, y = np.asarray(features), np.asarray(labels)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if x.ndim != 2 or y.shape != (len(x),):
        raise ValueError(f"need features [N, d] and labels [N], got {x.shape} and {y.shape}")
    num_test = max(1, int(round(test_fraction * len(x))))
    if len(x) - num_test < 2:
        raise ValueError(
            f"need at least 2 training points after holding out {num_test} of {len(x)} "
            f"(test_fraction={test_fraction}); pass more codes or a smaller test_fraction in (0, 1)"
        )
    perm = rng.permutation(len(x))
    te, tr = perm[:num_test], perm[num_test:]
    return probe_accuracy(x[tr], y[tr], x[te], y[te], probes=names, rng=rng)


def label_distribution(labels: np.ndarray, num_classes: int | None = None) -> np.ndarray:
    """Empirical class probabilities ``[M]`` of integer ``labels`` in ``0..M-1``.

    Used in: :ref:`ch-rate-splitting`
    """
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0 or not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ValueError("labels must be a non-empty 1-D array of non-negative integers")
    m = int(y.max()) + 1 if num_classes is None else int(num_classes)
    if m <= y.max():
        raise ValueError(f"num_classes={num_classes} but labels go up to {y.max()}")
    return np.bincount(y, minlength=m).astype(np.float64) / y.size


@dataclass
class LabelInformation:
    r"""Monte-Carlo estimates of :math:`I_q(\text{label}; z)` in nats.

    Attributes
    ----------
    plug_in : the authors' estimator (each point's own mixture component included; biased
        upward; at most the empirical label entropy).
    leave_one_out : the same with each point's own component removed from both mixtures
        (points whose class has a single member are left out of the average).
    label_entropy : the empirical label entropy :math:`H` (nats), the plug-in's ceiling.
    num_points : N.
    plug_in_se : Monte-Carlo standard error of ``plug_in``: the standard deviation of the N
        per-point terms over :math:`\sqrt N` (the one sample per point is the only randomness
        once the points are fixed).
    bayes_accuracy : accuracy, on the same samples, of the Bayes classifier of the empirical
        mixture, :math:`\hat y(z_j)=\arg\max_l\sum_{i: l_i=l} q(z_j\mid x_i)`: the most
        accurate classifier of :math:`z` under the distribution whose information the plug-in
        estimates, so the tightest accuracy to hold against its Fano bound.


    Used in: :ref:`ch-rate-splitting`
    """

    plug_in: float
    leave_one_out: float
    label_entropy: float
    num_points: int
    plug_in_se: float = math.nan
    bayes_accuracy: float = math.nan


def label_information(
    mean: np.ndarray | torch.Tensor,
    logvar: np.ndarray | torch.Tensor,
    labels: np.ndarray,
    *,
    samples: np.ndarray | torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    max_chunk_elements: int = 4_000_000,
) -> LabelInformation:
    r"""Monte-Carlo estimate of :math:`I_q(\text{label}; z)` with mixture marginals.

    With one sample :math:`z_j\sim q(z\mid x_j)` per point and diagonal Gaussians
    :math:`q(z\mid x_i)=\mathcal N(\mu_i,\sigma_i^2)`,

    .. math::
        \hat I = \frac1N\sum_j\Big[\log\frac{1}{N_{l_j}}\sum_{i: l_i=l_j} q(z_j\mid x_i)
                 - \log\frac1N\sum_i q(z_j\mid x_i)\Big]

    (plug-in; the authors' ``MI_given_dist_q_by_mc``). The leave-one-out variant drops
    :math:`i=j` from both sums (and uses :math:`N_{l_j}-1`, :math:`N-1`), removing the self-term
    bias that makes the plug-in saturate at :math:`H(\text{labels})`. The same pass gives the
    Monte-Carlo standard error of the plug-in and the accuracy of the Bayes classifier of the
    plug-in mixture on the samples (:class:`LabelInformation`). Cost :math:`O(N^2 d)` in
    float64, in chunks of at most ``max_chunk_elements`` (cap N around 2,000 on a CPU).

    Which one to use (our derivation). For :math:`x` uniform on the N evaluation points the
    two mixtures are *exact*, so the plug-in is an unbiased one-sample estimate of the
    information :math:`I_{\rm emp}(\text{label}; z)` of that empirical distribution, which
    obeys :math:`I_{\rm emp}\le\mathbb E_{\rm emp}R(z)` and the Fano bound for accuracies
    measured on the same points; it overestimates the population value (narrow posteriors
    memorise the points). The leave-one-out variant targets the population value but is
    biased **downward** when posteriors are narrow compared with the spacing of the points
    (it can even be negative), so it can make the Fano bound look violated. Feed the plug-in
    to :func:`check_fano_bound`; report the leave-one-out value as a less optimistic
    estimate. Neither ordering between them is guaranteed.

    Parameters
    ----------
    mean, logvar : ``[N, d]`` posterior mean and log-variance of each point.
    labels : ``[N]`` integer labels.
    samples : ``[N, d]`` one sample per point; when ``None`` they are drawn from
        ``generator``.
    generator : ``torch.Generator`` (any device; the draws are moved to the CPU), required
        when ``samples`` is ``None`` (a ``TypeError`` otherwise) and unused when they are given.


    Used in: :ref:`ch-rate-splitting`
    """
    mu = torch.as_tensor(_as_numpy(mean), dtype=torch.float64)
    lv = torch.as_tensor(_as_numpy(logvar), dtype=torch.float64)
    y = np.asarray(labels)
    if mu.dim() != 2 or mu.shape != lv.shape or len(y) != mu.shape[0] or mu.shape[0] < 2:
        raise ValueError(
            f"need mean and logvar [N, d] (N >= 2) and labels [N], got {tuple(mu.shape)}, "
            f"{tuple(lv.shape)}, {y.shape}"
        )
    if not bool(torch.isfinite(lv).all()):
        raise ValueError("logvar must be finite (a positive variance)")
    sd = torch.exp(0.5 * lv)
    n, d = mu.shape
    if samples is None:
        gen = check_generator(generator, name="generator (needed when samples is None)")
        eps = torch.randn(mu.shape, generator=gen, dtype=torch.float64, device=gen.device)
        z = mu + sd * eps.cpu()
    else:
        z = torch.as_tensor(_as_numpy(samples), dtype=torch.float64)
        if z.shape != mu.shape:
            raise ValueError(f"samples must be [N, d] = {tuple(mu.shape)}, got {tuple(z.shape)}")
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    lab = torch.as_tensor(inverse)
    inv_sd = 1.0 / sd
    const = -torch.log(sd).sum(1) - 0.5 * d * math.log(2 * math.pi)  # [N] over components i
    chunk = max(1, int(max_chunk_elements) // max(1, n * d))
    plug, loo = np.empty(n), np.full(n, np.nan)
    bayes_correct = np.empty(n, dtype=bool)
    num_classes = len(counts)
    cnt = torch.as_tensor(counts, dtype=torch.float64)
    for s in range(0, n, chunk):
        zj = z[s : s + chunk]  # [c, d]
        u = (zj[:, None, :] - mu[None, :, :]) * inv_sd[None, :, :]
        logq = -0.5 * (u**2).sum(-1) + const[None, :]  # [c, N] log q(z_j | x_i)
        rows = torch.arange(zj.shape[0])
        same = lab[s : s + chunk, None] == lab[None, :]
        nl = cnt[lab[s : s + chunk]]
        cond = torch.logsumexp(
            torch.where(same, logq, torch.full_like(logq, -math.inf)), 1
        ) - torch.log(nl)
        marg = torch.logsumexp(logq, 1) - math.log(n)
        plug[s : s + chunk] = (cond - marg).numpy()
        # the Bayes classifier of the plug-in mixture: p(l | z_j) ∝ sum_{i: l_i = l} q(z_j | x_i)
        per_class = torch.stack(
            [
                torch.logsumexp(
                    torch.where(lab[None, :] == k, logq, torch.full_like(logq, -math.inf)), 1
                )
                for k in range(num_classes)
            ],
            1,
        )  # [c, M]
        bayes_correct[s : s + chunk] = (per_class.argmax(1) == lab[s : s + chunk]).numpy()
        logq[rows, rows + s] = -math.inf
        ok = nl > 1
        cond_l = torch.logsumexp(
            torch.where(same, logq, torch.full_like(logq, -math.inf)), 1
        ) - torch.log((nl - 1).clamp(min=1))
        marg_l = torch.logsumexp(logq, 1) - math.log(n - 1)
        loo[s : s + chunk] = torch.where(
            ok, cond_l - marg_l, torch.full_like(marg_l, math.nan)
        ).numpy()
    p = counts / n
    h = float(-(p * np.log(p)).sum())
    loo_mean = float(np.nanmean(loo)) if np.isfinite(loo).any() else float("nan")
    return LabelInformation(
        plug_in=float(plug.mean()),
        leave_one_out=loo_mean,
        label_entropy=h,
        num_points=int(n),
        plug_in_se=float(plug.std(ddof=1) / math.sqrt(n)),
        bayes_accuracy=float(bayes_correct.mean()),
    )


# ----------------------------------------------------------------------------------------------
# generation
# ----------------------------------------------------------------------------------------------
@dataclass
class SampleScore:
    r"""Inception-Score-style sample metric; ``score = diversity × sharpness`` per split.

    Attributes
    ----------
    score : mean over splits of :math:`\exp\{\mathbb E_x \mathrm{KL}[p(y|x)\|p(y)]\}`.
    diversity : mean over splits of :math:`e^{H[p(y)]}` (at most M).
    sharpness : mean over splits of :math:`e^{-\mathbb E_x H[p(y|x)]}` (at most 1).
    score_std : standard deviation of ``score`` over splits (0 for one split).


    Used in: :ref:`ch-rate-splitting`
    """

    score: float
    diversity: float
    sharpness: float
    score_std: float = 0.0


def inception_style_score(probs: np.ndarray, *, splits: int = 1) -> SampleScore:
    r"""IS from classifier probabilities ``probs`` ``[N, M]`` of generated samples.

    .. math::
        \mathrm{IS} = \exp\Big\{\mathbb E_x \mathrm{KL}[p(y|x)\|p(y)]\Big\}
        = \underbrace{e^{H[p(y)]}}_{\text{diversity}}\times
          \underbrace{e^{-\mathbb E_x H[p(y|x)]}}_{\text{sharpness}},\qquad
        p(y)=\mathbb E_x\,p(y|x)

    (Salimans et al. 2016; the factorisation as in the authors' slides p.7). ``splits`` equal
    parts are scored separately and averaged (the authors use 5 splits of 2,000).

    Used in: :ref:`ch-rate-splitting`
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < int(splits) or int(splits) < 1:
        raise ValueError(
            f"probs must be [N, M] with N >= splits >= 1, got {p.shape}, splits={splits}"
        )
    if (p < -1e-9).any() or not np.allclose(p.sum(1), 1.0, atol=1e-6):
        raise ValueError("each row of probs must be a probability vector")
    scores, divs, sharps = [], [], []
    for part in np.array_split(p, int(splits)):
        marginal = part.mean(0)
        h_marg = float(-xlogy(marginal, marginal).sum())
        h_cond = float(-xlogy(part, part).sum(1).mean())
        divs.append(math.exp(h_marg))
        sharps.append(math.exp(-h_cond))
        scores.append(divs[-1] * sharps[-1])
    return SampleScore(
        score=float(np.mean(scores)),
        diversity=float(np.mean(divs)),
        sharpness=float(np.mean(sharps)),
        score_std=float(np.std(scores)),
    )


def fit_image_classifier(
    images: np.ndarray | torch.Tensor,
    labels: np.ndarray,
    *,
    rng: np.random.Generator,
    C: float = 1.0,
    max_iter: int = 2000,
) -> Any:
    """A dataset-specific classifier for :func:`sample_quality`: multinomial logistic regression
    on raw pixels (scikit-learn; about 97 % test accuracy on 8×8 digits). Any object with
    ``predict_proba`` on ``[N, C·H·W]`` pixel rows can replace it (e.g. a CNN wrapper for the
    paper profile).

    ``images`` ``[N, C, H, W]`` (or ``[N, F]``), ``labels`` ``[N]``; ``rng`` a
    ``numpy.random.Generator``, one draw of which is the estimator's ``random_state``. Returns
    the fitted estimator.

    Used in: :ref:`ch-rate-splitting`
    """
    from sklearn.linear_model import LogisticRegression

    check_rng(rng)
    x = _as_numpy(images).reshape(len(images), -1).astype(np.float64)
    y = np.asarray(labels)
    if len(y) != len(x) or len(np.unique(y)) < 2:
        raise ValueError("need as many labels as images and at least two classes")
    seed = int(rng.integers(2**31 - 1))
    return LogisticRegression(C=C, max_iter=int(max_iter), random_state=seed).fit(x, y)


class _SmallCNN(torch.nn.Module):
    """Two 3×3 convolutions (ReLU, 2×2 max-pooling each), a 2×2 adaptive average pool and a
    linear layer: ``[N, C, H, W]`` (``H, W >= 4``) to ``[N, M]`` logits."""

    def __init__(self, in_channels: int, num_classes: int, channels: tuple[int, int]) -> None:
        super().__init__()
        c1, c2 = channels
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(in_channels, c1, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(c1, c2, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.AdaptiveAvgPool2d(2),
        )
        self.head = torch.nn.Linear(4 * c2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


class CNNClassifier(torch.nn.Module):
    r"""A small CNN image classifier of ``M`` classes with a scikit-learn-like interface.

    Built and trained by :func:`fit_cnn_classifier`. :meth:`predict_proba` takes flattened
    pixel rows, so the classifier drops into :func:`sample_quality`; its columns follow
    ``classes_`` (ascending labels, as in scikit-learn).

    Parameters
    ----------
    net : the network, ``[N, C, H, W]`` images to ``[N, M]`` logits.
    input_shape : ``(C, H, W)`` of the images it was trained on.
    classes : ``[M]`` the distinct training labels, ascending.

    Attributes
    ----------
    input_shape : tuple of int
        ``(C, H, W)``, the shape each flattened row is reshaped to.
    classes_ : numpy.ndarray
        ``[M]`` the label of each output column.


    Used in: :ref:`ch-rate-splitting`
    """

    def __init__(
        self, net: torch.nn.Module, input_shape: tuple[int, int, int], classes: np.ndarray
    ) -> None:
        super().__init__()
        self.net = net
        self.input_shape = tuple(int(s) for s in input_shape)
        self.classes_ = np.asarray(classes)

    @property
    def device(self) -> torch.device:
        """The device of the network's parameters (inputs are moved there)."""
        return next(self.parameters()).device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, M]`` logits of images ``x`` ``[N, C, H, W]``."""
        return self.net(x)

    def _images(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
        per_image = int(np.prod(self.input_shape))
        if t.dim() < 1 or t.numel() % per_image or t.shape[0] * per_image != t.numel():
            raise ValueError(
                f"expected images [N, {per_image}] or [N, {', '.join(map(str, self.input_shape))}],"
                f" got {tuple(t.shape)}"
            )
        return t.reshape(t.shape[0], *self.input_shape)

    @torch.no_grad()
    def predict_proba(
        self, x_flat: np.ndarray | torch.Tensor, batch_size: int = 1024
    ) -> np.ndarray:
        """Class probabilities ``[N, M]`` (float64, rows sum to 1) of pixel rows ``x_flat``
        ``[N, C·H·W]`` (or images ``[N, C, H, W]``), in the order of ``classes_``.

        Used in: :ref:`ch-rate-splitting`
        """
        x = self._images(x_flat)
        was_training = self.training
        self.eval()
        device = self.device
        dtype = next(self.parameters()).dtype
        out = [
            torch.softmax(self.net(x[s : s + batch_size].to(device, dtype)).double(), 1).cpu()
            for s in range(0, x.shape[0], int(batch_size))
        ]
        self.train(was_training)
        if not out:
            return np.empty((0, len(self.classes_)))
        return torch.cat(out).numpy()

    def predict(self, x_flat: np.ndarray | torch.Tensor) -> np.ndarray:
        """``[N]`` the most probable label of each row (see :meth:`predict_proba`).

        Used in: :ref:`ch-rate-splitting`
        """
        return self.classes_[self.predict_proba(x_flat).argmax(1)]

    def accuracy(
        self, images: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor
    ) -> float:
        """Share of ``images`` (``[N, C, H, W]`` or ``[N, C·H·W]``) classified as ``labels``
        ``[N]``.

        Used in: :ref:`ch-rate-splitting`
        """
        y = _as_numpy(labels).reshape(-1)
        pred = self.predict(images)
        if len(pred) != len(y) or len(y) == 0:
            raise ValueError(
                f"need as many labels as images (N >= 1), got {len(y)} and {len(pred)}"
            )
        return float((pred == y).mean())


def fit_cnn_classifier(
    images: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    *,
    generator: torch.Generator,
    steps: int = 1500,
    batch_size: int = 64,
    lr: float = 1e-3,
    channels: tuple[int, int] = (32, 64),
    device: str | torch.device | None = None,
) -> CNNClassifier:
    r"""Train a small CNN on a labelled image dataset, the classifier of the authors' IS protocol.

    The authors score samples with a CNN trained on the dataset (for MNIST two 3×3
    convolutions, dropout and two linear layers, Adadelta for 14 epochs; timxzz/HIT at commit
    0b34fbefc56899636ec5951de210ec7300a74e2f, ``mnist_classifier.py``; a ResNet-18 and a
    DenseNet-121 for SVHN and CIFAR-10) and average the IS over 5 splits
    (``utils_eval.py``, ``inception_score_on_samples_N``). Ours is smaller and the same for
    every dataset: two 3×3 convolutions with ReLU and 2×2 max-pooling (``channels``), a 2×2
    adaptive average pool and one linear layer, trained with Adam on the cross-entropy for
    ``steps`` minibatches, without dropout. Images are used as they come (no normalisation).

    Parameters
    ----------
    images : ``[N, C, H, W]`` training images, ``H, W >= 4`` (tested for ``C`` in {1, 3} and
        ``H, W`` in {8, 16, 32, 64}).
    labels : ``[N]`` integer labels with at least two distinct values; the output columns are
        the distinct labels, ascending (``CNNClassifier.classes_``).
    generator : ``torch.Generator`` (any device). One draw seeds the initialisation (built
        under ``torch.random.fork_rng``, :func:`hvae_lib.config.build_seeded`, so the global
        stream is untouched); then every epoch draws one permutation of the N images, cut
        into minibatches of ``batch_size`` (the last, shorter one included).
    steps : number of Adam steps.
    batch_size : minibatch size (at most N is used).
    lr : Adam learning rate.
    channels : output channels of the two convolutions.
    device : where to train; ``None`` means the device of ``images`` when it is a tensor, else
        the CPU.

    Returns
    -------
    CNNClassifier
        The trained network in eval mode, on ``device``.

    Used in: :ref:`ch-rate-splitting`
    """
    gen = check_generator(generator)
    x = images.detach() if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    y_raw = _as_numpy(labels).reshape(-1)
    if x.dim() != 4 or x.shape[2] < 4 or x.shape[3] < 4:
        raise ValueError(f"expected images [N, C, H, W] with H, W >= 4, got {tuple(x.shape)}")
    if x.shape[0] < 2 or len(y_raw) != x.shape[0]:
        raise ValueError(
            f"need N >= 2 images with one label each, got {x.shape[0]} images and "
            f"{len(y_raw)} labels"
        )
    classes, y_idx = np.unique(y_raw, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"need at least two classes, got only label {classes.tolist()}")
    if int(steps) < 1 or int(batch_size) < 1 or not lr > 0:
        raise ValueError(
            f"need steps >= 1, batch_size >= 1 and lr > 0, got {steps}, {batch_size}, {lr}"
        )
    if len(channels) != 2 or min(int(c) for c in channels) < 1:
        raise ValueError(f"channels must be two positive integers, got {channels}")
    dev = (
        torch.device(device)
        if device is not None
        else (x.device if isinstance(images, torch.Tensor) else torch.device("cpu"))
    )
    x = (x if x.is_floating_point() else x.float()).to(dev, torch.float32)
    if not bool(torch.isfinite(x).all()):
        raise ValueError("images must be finite")
    y = torch.as_tensor(y_idx, dtype=torch.long, device=dev)
    c1, c2 = int(channels[0]), int(channels[1])
    init = int(torch.randint(2**62, (1,), generator=gen, device=gen.device).item())
    net = build_seeded(lambda: _SmallCNN(int(x.shape[1]), len(classes), (c1, c2)), init).to(dev)
    model = CNNClassifier(net, tuple(int(s) for s in x.shape[1:]), classes)
    opt = torch.optim.Adam(model.parameters(), lr=float(lr))
    n, bs = int(x.shape[0]), min(int(batch_size), int(x.shape[0]))
    model.train()
    order = torch.empty(0, dtype=torch.long)
    pos = n
    for _ in range(int(steps)):
        if pos >= n:
            order, pos = torch.randperm(n, generator=gen, device=gen.device).to(dev), 0
        idx = order[pos : pos + bs]
        pos += bs
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()


@torch.no_grad()
def sample_quality(
    model: HierarchicalVAE,
    classifier: Any,
    *,
    generator: torch.Generator,
    num_samples: int = 2000,
    splits: int = 1,
    data_range: float = 1.0,
) -> SampleScore:
    r"""IS-style score of ancestral samples.

    :math:`z_L\sim\mathcal N(0,I)`, :math:`z_l\sim p(z_l|z_{>l})` sampled, image = decoder mean
    **clamped** to ``[0, data_range]`` (the authors do not clamp), classified by
    ``classifier.predict_proba`` on flattened pixels, then :func:`inception_style_score`.
    Noise from ``generator``, a ``torch.Generator`` on the model's device. The authors'
    protocol is ``splits=5`` with 2,000 samples per split and a CNN trained on the dataset
    (:func:`fit_cnn_classifier`).

    Used in: :ref:`ch-rate-splitting`
    """
    if int(num_samples) < int(splits):
        raise ValueError(f"num_samples must be >= splits, got {num_samples}, {splits}")
    model.eval()
    device, _ = _model_device(model)
    gen = check_generator(generator, device)
    x = model.sample(int(num_samples), generator=gen).clamp(0.0, float(data_range))
    probs = classifier.predict_proba(x.reshape(x.shape[0], -1).cpu().double().numpy())
    return inception_style_score(probs, splits=splits)


# ----------------------------------------------------------------------------------------------
# Fano-type bound
# ----------------------------------------------------------------------------------------------
def _check_label_probs(label_probs: Sequence[float] | np.ndarray) -> tuple[np.ndarray, float, int]:
    p = np.asarray(label_probs, dtype=np.float64)
    if p.ndim != 1 or p.size < 2:
        raise ValueError(f"label_probs must list M >= 2 class probabilities, got shape {p.shape}")
    if (p < 0).any() or not math.isclose(float(p.sum()), 1.0, abs_tol=1e-6):
        raise ValueError(f"label_probs must be non-negative and sum to 1, got sum {p.sum():.6g}")
    return p, float(-xlogy(p, p).sum()), int(p.size)


def fano_f(
    alpha: float | np.ndarray, label_probs: Sequence[float] | np.ndarray
) -> float | np.ndarray:
    r""":math:`f(\alpha)=H[p(\text{label})]+\alpha\log\alpha+(1-\alpha)\log\frac{1-\alpha}{M-1}` (nats).

    Fano: a classifier with accuracy :math:`\alpha` has :math:`I(\text{label};\hat y)\ge f(\alpha)`.
    :math:`f` decreases on :math:`[0, 1/M]` and increases on :math:`[1/M, 1]` from
    :math:`H-\log M\le 0` to :math:`H` (our derivation). ``M`` is ``len(label_probs)``.

    Used in: :ref:`ch-rate-splitting`
    """
    _, h, m = _check_label_probs(label_probs)
    a = np.asarray(alpha, dtype=np.float64)
    if ((a < 0) | (a > 1)).any():
        raise ValueError("alpha must lie in [0, 1]")
    val = h + xlogy(a, a) + xlogy(1 - a, (1 - a) / (m - 1))
    return float(val) if val.ndim == 0 else val


def fano_inverse(
    information: float | np.ndarray,
    label_probs: Sequence[float] | np.ndarray,
    *,
    xtol: float = 1e-12,
) -> float | np.ndarray:
    r"""Largest accuracy compatible with :math:`I` nats of label information: :math:`f^{-1}(I)`.

    Inverts :func:`fano_f` on its increasing branch :math:`[1/M, 1]` by Brent's method
    (``scipy.optimize.brentq``; the root is bracketed because :math:`f(1/M)\le 0\le I`), and
    returns 1 for :math:`I\ge H`. Exact to ``xtol`` and monotone non-decreasing in :math:`I`.
    Negative :math:`I` (possible for Monte-Carlo estimates) is treated as 0. Use the
    empirical label distribution of the evaluation set (:func:`label_distribution`); with
    non-uniform labels :math:`f^{-1}(0) > 1/M`.

    ``information`` may be a scalar or an array (element-wise).

    Used in: :ref:`ch-rate-splitting`
    """
    p, h, m = _check_label_probs(label_probs)
    vals = np.asarray(information, dtype=np.float64)
    if np.isnan(vals).any():
        raise ValueError("information contains NaN")
    lo = 1.0 / m

    def one(i: float) -> float:
        i = max(float(i), 0.0)
        if i >= h:
            return 1.0
        g = lambda a: float(fano_f(a, p)) - i  # noqa: E731
        if g(lo) >= 0:  # only when H = log M and I = 0
            return lo
        return float(brentq(g, lo, 1.0, xtol=xtol, rtol=4 * np.finfo(float).eps))

    out = np.vectorize(one, otypes=[np.float64])(vals)
    return float(out) if out.ndim == 0 else out


# ----------------------------------------------------------------------------------------------
# the bounds as checks
# ----------------------------------------------------------------------------------------------
def distortion_lower_bound(data_entropy: float, total_rate: float) -> float:
    r"""The paper's reconstruction bound :math:`\mathbb E[D]\ge H[p_{\rm data}]-\mathbb E[\sum_l R_l]` (nats).

    Only the **total** rate enters, not its split. ``data_entropy`` is :math:`H[p_{\rm data}]`
    in nats (differential entropy for continuous data — usually unknown, so in practice the
    bound is qualitative: iso-rate lines are iso-bound lines).

    Used in: :ref:`ch-rate-splitting`
    """
    return float(data_entropy) - float(total_rate)


def gaussian_sse_lower_bound(
    data_entropy: float, total_rate: float, sigma: float, num_pixels: int
) -> float:
    r"""Our Gaussian form of the distortion bound (fixed-σ decoder over ``n`` pixels):

    .. math::
        \mathbb E\|x-f_\theta(z_1)\|^2 \ge 2\sigma^2\Big(H[p_{\rm data}]-\mathbb E R
        - n\log(\sigma\sqrt{2\pi})\Big).

    Used in: :ref:`ch-rate-splitting`
    """
    if not sigma > 0 or int(num_pixels) <= 0:
        raise ValueError(f"need sigma > 0 and num_pixels > 0, got {sigma}, {num_pixels}")
    return (
        2
        * sigma**2
        * (
            float(data_entropy)
            - float(total_rate)
            - int(num_pixels) * math.log(sigma * math.sqrt(2 * math.pi))
        )
    )


@dataclass
class BoundCheck:
    """Outcome of a bound check ``value >= bound - tolerance`` (or ``<=`` for upper bounds).

    Attributes
    ----------
    name : what was checked.
    value : the measured quantity.
    bound : the bound.
    tolerance : slack allowed for estimation noise.
    holds : whether the inequality holds within the tolerance.


    Used in: :ref:`ch-rate-splitting`
    """

    name: str
    value: float
    bound: float
    tolerance: float
    holds: bool

    @property
    def margin(self) -> float:
        """Distance to the bound on the valid side (negative when violated, ignoring tolerance)."""
        return self.value - self.bound if self.name.endswith(">=") else self.bound - self.value


def measure_distortion_and_rate(
    model: HierarchicalVAE,
    data: torch.Tensor | np.ndarray,
    *,
    generator: torch.Generator,
    num_samples: int,
) -> tuple[float, float, float]:
    r"""``(E[D], E[R], se)`` over ``num_samples`` posterior samples of every example, in nats.

    Runs :func:`evaluate_rates` ``num_samples`` times, drawing from ``generator`` one pass after
    the other. ``se`` is the Monte-Carlo standard error of :math:`\mathbb E[D+R]`: with
    :math:`s_n^2` the sample variance of :math:`D+R` of example :math:`n` over the ``S`` passes,
    :math:`\mathrm{se}=\sqrt{\sum_n s_n^2/S}\,/\,N`. The inputs of
    :func:`check_distortion_bound`.

    Used in: :ref:`ch-rate-splitting`
    """
    if int(num_samples) < 2:
        raise ValueError(f"num_samples must be >= 2 for a standard error, got {num_samples}")
    evs = [evaluate_rates(model, data, generator=generator) for _ in range(int(num_samples))]
    dist = np.stack([e.distortion for e in evs])  # [S, N]
    rate = np.stack([e.rates.sum(1) for e in evs])  # [S, N]
    total = dist + rate
    se = math.sqrt(total.var(axis=0, ddof=1).sum() / int(num_samples)) / total.shape[1]
    return float(dist.mean()), float(rate.mean()), se


def check_distortion_bound(
    mean_distortion: float, total_rate: float, data_entropy: float, *, tolerance: float = 0.0
) -> BoundCheck:
    r"""Check the paper's :math:`\mathbb E[D] \ge H[p_{\rm data}] - \mathbb E[R]` (nats, test averages).

    Used in: :ref:`ch-rate-splitting`
    """
    bound = distortion_lower_bound(data_entropy, total_rate)
    return BoundCheck(
        "E[D] >=",
        float(mean_distortion),
        bound,
        float(tolerance),
        bool(mean_distortion >= bound - tolerance),
    )


@dataclass
class FanoCheck:
    r"""Outcome of :func:`check_fano_bound`.

    Attributes
    ----------
    accuracy : measured test accuracy of a classifier of sampled :math:`z_2`.
    information_bound : :math:`f^{-1}(I)`.
    rate_bound : :math:`f^{-1}(\mathbb E R(z_2))` (``nan`` if no rate was given).
    tolerance : allowed excess for the finite test set.
    holds : ``accuracy <= information_bound + tolerance``.
    chain_holds : ``information_bound <= rate_bound`` (i.e. the estimate of :math:`I` does not
        exceed the rate; ``True`` when no rate was given).


    Used in: :ref:`ch-rate-splitting`
    """

    accuracy: float
    information_bound: float
    rate_bound: float
    tolerance: float
    holds: bool
    chain_holds: bool


def check_fano_bound(
    accuracy: float,
    information: float,
    label_probs: Sequence[float] | np.ndarray,
    *,
    top_rate: float | None = None,
    num_test: int | None = None,
    tolerance: float | None = None,
) -> FanoCheck:
    r"""Check :math:`\text{accuracy}\le f^{-1}(I(\text{label};z_2))\le f^{-1}(\mathbb E R(z_2))`.

    The paper's bound; it covers classifiers of a **sampled** :math:`z_2` (a classifier of
    :math:`\mu_2(x)` may exceed it — our derivation). ``tolerance`` defaults to
    :math:`2\sqrt{\alpha(1-\alpha)/N_{\rm test}}` (two binomial standard errors) when
    ``num_test`` is given, else 0.

    Used in: :ref:`ch-rate-splitting`
    """
    acc = float(accuracy)
    if not 0 <= acc <= 1:
        raise ValueError(f"accuracy must lie in [0, 1], got {accuracy}")
    if tolerance is None:
        tolerance = 2 * math.sqrt(acc * (1 - acc) / int(num_test)) if num_test else 0.0
    b_info = float(fano_inverse(information, label_probs))
    b_rate = float(fano_inverse(top_rate, label_probs)) if top_rate is not None else float("nan")
    chain = True if top_rate is None else bool(b_info <= b_rate + 1e-12)
    return FanoCheck(
        accuracy=acc,
        information_bound=b_info,
        rate_bound=b_rate,
        tolerance=float(tolerance),
        holds=bool(acc <= b_info + tolerance),
        chain_holds=chain,
    )


# ----------------------------------------------------------------------------------------------
# everything for one model
# ----------------------------------------------------------------------------------------------
def evaluate_model(
    model: HierarchicalVAE,
    train_images: torch.Tensor | np.ndarray,
    train_labels: np.ndarray,
    test_images: torch.Tensor | np.ndarray,
    test_labels: np.ndarray,
    *,
    generator: torch.Generator,
    rng: np.random.Generator,
    classifier: Any = None,
    probes: Sequence[str] | None = None,
    mi_points: int = 2000,
    num_samples: int | None = None,
    faithful: bool = False,
) -> dict[str, Any]:
    r"""All downstream numbers of one model as a flat ``dict`` (one row of a grid table).

    Keys: ``rate_1 ... rate_L``, ``total_rate``, ``distortion``, ``psnr`` (test set);
    ``acc_mu_<probe>`` (probes on :math:`\mu_L`) and ``acc_z_<probe>`` (on one sampled
    :math:`z_L`), both fit on train codes and scored on test codes; ``mi_plug_in``,
    ``mi_loo``, ``label_entropy`` (:func:`label_information` on the first ``mi_points`` test
    points) and ``mi_plug_in_se`` (its Monte-Carlo standard error); on the same ``k`` points,
    the inputs of the Fano check: ``acc_fano_<probe>`` (the probes of the sampled :math:`z_L`
    scored on those points only), ``acc_fano_bayes`` (the Bayes classifier of the plug-in
    mixture, ``LabelInformation.bayes_accuracy``), ``fano_num_points`` (``k``), and
    ``fano_info``, ``fano_rate`` (:math:`f^{-1}` of the plug-in estimate — see
    :func:`label_information` for why the plug-in is the right input to the bound — and of
    :math:`R(z_L)`, with the label distribution of those points); and with a ``classifier``
    ``is_score``, ``is_diversity``, ``is_sharpness`` (:func:`sample_quality`).

    ``generator`` (a ``torch.Generator`` on the model's device) draws, in order, the test
    posterior samples of the rates, the sampled train and test codes and the generated images;
    ``rng`` (a ``numpy.random.Generator``) seeds the probes, on :math:`\mu_L` then on
    :math:`z_L`.

    With ``faithful=True`` (the authors' protocol, timxzz/HIT at commit
    0b34fbefc56899636ec5951de210ec7300a74e2f, ``utils_eval.py``) two things change:
    ``acc_mu_<probe>`` comes from :func:`faithful_probe_accuracy` on the **test** codes
    :math:`\mu_L` alone (fit on a random 80 %, scored on the other 20 %; ``rng`` draws the
    permutation before the probes' seeds), and the IS is averaged over 5 splits, with the
    extra key ``is_score_std`` (its standard deviation over the splits; pass a classifier from
    :func:`fit_cnn_classifier` for the authors' kind of classifier). The Fano inputs do **not**
    change: ``acc_z_<probe>`` and ``acc_fano_<probe>`` stay fitted on the training codes and
    scored on the test codes, because the bound is checked against the information measured on
    the first ``mi_points`` test points and must be held against classifiers scored on those
    same points. The rng draws of the sampled-code probes follow those of the faithful
    :math:`\mu_L` probes. With ``faithful=False`` (the default) the row is what it was before
    the faithful mode existed, draw for draw.

    Parameters
    ----------
    model : the trained model.
    train_images, test_images : ``[N, C, H, W]`` images.
    train_labels, test_labels : ``[N]`` integer labels.
    generator : ``torch.Generator`` on the model's device.
    rng : ``numpy.random.Generator``.
    classifier : an object with ``predict_proba`` on ``[N, C·H·W]`` pixel rows, or ``None``
        (no IS keys).
    probes : probe names for both :math:`\mu_L` and :math:`z_L`; ``None`` means
        :data:`PROBES`, or :data:`FAITHFUL_PROBES` when ``faithful``.
    mi_points : the number of test points of the information estimate and the Fano check.
    num_samples : generated images for the IS; ``None`` means 2,000, or 10,000 (5 splits of
        2,000, the authors' number) when ``faithful``.
    faithful : the authors' protocol for the :math:`\mu_L` probes and the IS (above).

    Used in: :ref:`ch-rate-splitting`
    """
    check_rng(rng)
    check_generator(generator, _model_device(model)[0])
    probes = _check_probes((FAITHFUL_PROBES if faithful else PROBES) if probes is None else probes)
    if num_samples is None:
        num_samples = 10_000 if faithful else 2000
    ytr, yte = np.asarray(train_labels), np.asarray(test_labels)
    row: dict[str, Any] = {}
    rates = evaluate_rates(model, test_images, generator=generator)
    for l, r in enumerate(rates.mean_rates):
        row[f"rate_{l + 1}"] = float(r)
    row["total_rate"] = rates.total_rate
    row["distortion"] = rates.mean_distortion
    row["psnr"] = float(reconstruction_psnr(model, test_images))
    tr = top_layer_codes(model, train_images, generator=generator)
    te = top_layer_codes(model, test_images, generator=generator)
    if faithful:  # the authors' protocol: 80/20 split of the test codes
        mu_acc = faithful_probe_accuracy(te.mean, yte, probes=probes, rng=rng)
    else:
        mu_acc = probe_accuracy(tr.mean, ytr, te.mean, yte, probes=probes, rng=rng)
    for name, acc in mu_acc.items():
        row[f"acc_mu_{name}"] = acc
    k = min(int(mi_points), len(yte))
    # the same rng draws as probe_accuracy; the predictions also give the accuracy on the MI
    # points. In both modes fitted on train codes: the Fano check needs scores on the MI points
    predictions = _probe_predictions(tr.sample, ytr, te.sample, rng=rng, probes=probes)
    for name, pred in predictions.items():
        row[f"acc_z_{name}"] = float((pred == yte).mean())
        row[f"acc_fano_{name}"] = float((pred[..., :k] == yte[:k]).mean())
    info = label_information(te.mean[:k], te.logvar[:k], yte[:k], samples=te.sample[:k])
    row["mi_plug_in"], row["mi_loo"], row["label_entropy"] = (
        info.plug_in,
        info.leave_one_out,
        info.label_entropy,
    )
    row["mi_plug_in_se"] = info.plug_in_se
    row["acc_fano_bayes"] = info.bayes_accuracy
    row["fano_num_points"] = k
    # H(y), I and the accuracies of the Fano check all on the same k points
    probs = label_distribution(yte[:k], num_classes=int(max(ytr.max(), yte.max())) + 1)
    row["fano_info"] = float(fano_inverse(info.plug_in, probs))
    row["fano_rate"] = float(fano_inverse(row[f"rate_{model.num_layers}"], probs))
    if classifier is not None:
        s = sample_quality(
            model,
            classifier,
            num_samples=int(num_samples),
            splits=5 if faithful else 1,
            generator=generator,
        )
        row["is_score"], row["is_diversity"], row["is_sharpness"] = (
            s.score,
            s.diversity,
            s.sharpness,
        )
        if faithful:
            row["is_score_std"] = s.score_std
    return row


def evaluate_grid(
    models: Sequence[HierarchicalVAE],
    betas: Sequence[Sequence[float]],
    train_images: torch.Tensor | np.ndarray,
    train_labels: np.ndarray,
    test_images: torch.Tensor | np.ndarray,
    test_labels: np.ndarray,
    *,
    generator: torch.Generator,
    rng: np.random.Generator,
    classifier: Any = None,
    probes: Sequence[str] | None = None,
    mi_points: int = 2000,
    num_samples: int | None = None,
    faithful: bool = False,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    r""":func:`evaluate_model` for every member of a grid, as columns ``{name: [G] array}``.

    ``models`` and ``betas`` have one entry per member (e.g. ``grid.models()`` and
    ``grid.betas`` of a :class:`!hvae_lib.train.ensemble.GridResult`); the columns ``beta_1 ...
    beta_L`` hold the rate weights. Every member is evaluated from the same state of
    ``generator`` (a ``torch.Generator`` on the models' device) and ``rng`` (a
    ``numpy.random.Generator``): common random numbers across the grid. Both are restored to
    the state they came in with before each member, so they leave advanced by one member's draws.
    ``probes``, ``num_samples`` and ``faithful`` are passed on: ``faithful=True`` is the
    authors' protocol for the :math:`\mu_L` probes and the IS (see :func:`evaluate_model`).

    Used in: :ref:`ch-rate-splitting`
    """
    from tqdm.auto import tqdm

    if len(models) != len(betas) or len(models) == 0:
        raise ValueError(
            f"need one beta tuple per model, got {len(models)} models and {len(betas)} betas"
        )
    check_generator(generator)
    check_rng(rng)
    generator_state, rng_state = generator.get_state(), rng.bit_generator.state
    rows = []
    for m, b in tqdm(
        list(zip(models, betas)), desc="evaluate grid", disable=not progress, leave=False
    ):
        generator.set_state(generator_state)
        rng.bit_generator.state = rng_state
        row = {f"beta_{l + 1}": float(v) for l, v in enumerate(b)}
        row.update(
            evaluate_model(
                m,
                train_images,
                train_labels,
                test_images,
                test_labels,
                classifier=classifier,
                probes=probes,
                mi_points=mi_points,
                num_samples=num_samples,
                faithful=faithful,
                generator=generator,
                rng=rng,
            )
        )
        rows.append(row)
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


def binomial_lower_limit(
    successes: int | np.ndarray, trials: int, confidence: float
) -> float | np.ndarray:
    r"""One-sided Clopper–Pearson lower confidence limit of a binomial proportion.

    With :math:`k` successes in :math:`n` trials, the limit :math:`p_L` solves
    :math:`P(\mathrm{Bin}(n, p_L)\ge k) = 1-\text{confidence}`, i.e.
    :math:`p_L = \mathrm{Beta}^{-1}(1-\text{confidence};\,k,\,n-k+1)` (and 0 for
    :math:`k = 0`). The true accuracy exceeds :math:`p_L` with probability at least
    ``confidence``. A measured accuracy therefore *violates* an upper bound :math:`b` at that
    confidence only if :math:`p_L > b`.

    ``successes`` may be an integer array (element-wise).

    Used in: :ref:`ch-rate-splitting`
    """
    from scipy.stats import beta

    n = int(trials)
    k = np.asarray(successes)
    if n <= 0 or (k < 0).any() or (k > n).any():
        raise ValueError(f"need 0 <= successes <= trials and trials > 0, got {successes}, {trials}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    k = k.astype(np.float64)
    with np.errstate(invalid="ignore"):
        out = np.where(k > 0, beta.ppf(1.0 - confidence, np.maximum(k, 1e-300), n - k + 1), 0.0)
    return float(out) if out.ndim == 0 else out


def best_per_budget(cost: np.ndarray, value: np.ndarray) -> np.ndarray:
    r"""Boolean mask of the models that are best for their budget.

    Model :math:`i` is kept if no model :math:`j` has :math:`\text{cost}_j\le\text{cost}_i`
    and :math:`\text{value}_j>\text{value}_i`: it is on the upper-left Pareto frontier of
    (total rate, metric). The authors draw the upper convex hull of the same points, a subset
    of this frontier.

    ``cost``, ``value``: ``[G]``. Returns ``[G]`` bool.

    Used in: :ref:`ch-rate-splitting`
    """
    c, v = np.asarray(cost, dtype=np.float64), np.asarray(value, dtype=np.float64)
    if c.shape != v.shape or c.ndim != 1 or c.size == 0:
        raise ValueError(
            f"cost and value must be non-empty [G] arrays of equal shape, got {c.shape}, {v.shape}"
        )
    dominated = (c[None, :] <= c[:, None]) & (v[None, :] > v[:, None])
    return ~dominated.any(axis=1)


@dataclass
class RateControlCheck:
    r"""Outcome of :func:`check_rate_control`.

    Attributes
    ----------
    top_falls : :math:`R(z_2)` does not rise by more than ``tolerance`` along any
        :math:`\beta_2` step, at every :math:`\beta_1`.
    bottom_falls : the same for :math:`R(z_1\mid z_2)` along :math:`\beta_1`, at every
        :math:`\beta_2`.
    top_responds : at every :math:`\beta_1`, :math:`R(z_2)` at the smallest :math:`\beta_2`
        exceeds :math:`R(z_2)` at the largest by at least ``min_drop``.
    bottom_responds : the same for :math:`R(z_1\mid z_2)` along :math:`\beta_1`.
    collapse_somewhere : the top layer carries less than ``collapse_below`` nats at some
        member but not at all of them.
    tolerance, min_drop, collapse_below : the settings (nats).


    Used in: :ref:`ch-rate-splitting`
    """

    top_falls: bool
    bottom_falls: bool
    top_responds: bool
    bottom_responds: bool
    collapse_somewhere: bool
    tolerance: float
    min_drop: float
    collapse_below: float

    @property
    def holds(self) -> bool:
        """All five conditions."""
        return bool(
            self.top_falls
            and self.bottom_falls
            and self.top_responds
            and self.bottom_responds
            and self.collapse_somewhere
        )

    def as_dict(self) -> dict[str, bool]:
        """The five conditions by name (for a chapter's printed checks)."""
        t, d = self.tolerance, self.min_drop
        return {
            f"R(z2) falls as beta2 grows, at every beta1 (tolerance {t:g} nats)": self.top_falls,
            f"R(z1|z2) falls as beta1 grows, at every beta2 (tolerance {t:g} nats)": (
                self.bottom_falls
            ),
            f"R(z2) drops by >= {d:g} nats across beta2, at every beta1": self.top_responds,
            f"R(z1|z2) drops by >= {d:g} nats across beta1, at every beta2": (self.bottom_responds),
            f"the top layer collapses (R(z2) < {self.collapse_below:g} nats) somewhere and "
            "not everywhere": self.collapse_somewhere,
        }


def check_rate_control(
    rate_top: np.ndarray,
    rate_bottom: np.ndarray,
    *,
    tolerance: float = 0.5,
    min_drop: float = 1.0,
    collapse_below: float = 0.5,
) -> RateControlCheck:
    r"""Do two prices control the two rates of a :math:`K\times K` grid independently?

    ``rate_top`` and ``rate_bottom`` are ``[K, K]`` matrices of :math:`R(z_2)` and
    :math:`R(z_1\mid z_2)` (nats), **rows** :math:`\beta_1` ascending, **columns**
    :math:`\beta_2` ascending (``table[col].to_numpy().reshape(K, K)`` of a grid built by
    ``beta_grid(b, b)``). Our formalisation of "each β steers its own rate": along its own
    price each rate is non-increasing within ``tolerance``,

    .. math::
        R_2[i, j+1] - R_2[i, j] \le \text{tol}, \qquad R_1[i+1, j] - R_1[i, j] \le \text{tol},

    it falls by at least ``min_drop`` from the cheapest to the most expensive price at every
    value of the other price (:math:`R_2[i, 0]-R_2[i, K-1]\ge\text{min\_drop}` for all
    :math:`i`, and the same for :math:`R_1` down the columns), and the top layer collapses
    (below ``collapse_below``) somewhere but not everywhere. A rate that ignores its price
    fails the drop; swapping the axes (``check_rate_control(rate_top.T, rate_bottom.T)``:
    :math:`R(z_2)` against :math:`\beta_1`) fails where making one layer expensive pushes
    information into the other, the chapter's negative control.

    Used in: :ref:`ch-rate-splitting`
    """
    r2 = np.asarray(rate_top, dtype=np.float64)
    r1 = np.asarray(rate_bottom, dtype=np.float64)
    if r2.ndim != 2 or r2.shape[0] != r2.shape[1] or r2.shape[0] < 2 or r1.shape != r2.shape:
        raise ValueError(
            f"rate_top and rate_bottom must be equal [K, K] matrices with K >= 2, got "
            f"{r2.shape} and {r1.shape}"
        )
    if not (np.isfinite(r2).all() and np.isfinite(r1).all()):
        raise ValueError("the rates must be finite")
    collapsed = r2 < float(collapse_below)
    return RateControlCheck(
        top_falls=bool((np.diff(r2, axis=1) <= tolerance).all()),
        bottom_falls=bool((np.diff(r1, axis=0) <= tolerance).all()),
        top_responds=bool((r2[:, 0] - r2[:, -1] >= min_drop).all()),
        bottom_responds=bool((r1[0, :] - r1[-1, :] >= min_drop).all()),
        collapse_somewhere=bool(0 < collapsed.sum() < collapsed.size),
        tolerance=float(tolerance),
        min_drop=float(min_drop),
        collapse_below=float(collapse_below),
    )


@dataclass
class OptimaSeparation:
    r"""Outcome of :func:`optima_separation` for ``T`` tasks on a grid of ``G`` members.

    Attributes
    ----------
    optimum : ``[T]`` grid index of each task's optimum (on the first seed).
    candidates : ``[M]`` the distinct optima, ascending: the members trained on both seeds.
    best : ``[T]`` each task's metric at its optimum, re-measured on the second seed.
    spread : ``[T]`` the seed-to-seed spread of each task's metric: the largest
        :math:`|m_t^{(a)} - m_t^{(b)}|` over the candidates.
    shortfall : ``[T, G]`` ``best[t]`` minus member ``g``'s metric on the first seed.
    fits_all : ``[G]`` bool, member ``g`` is within the spread of the best on every task,
        ``shortfall[:, g] <= spread``.
    margin : ``[T, T]``; ``margin[t, u]`` is task ``t``'s metric at its own optimum minus at
        task ``u``'s optimum, both on the second seed (0 on the diagonal).
    separated : ``[T, T]`` bool, ``margin > spread[:, None]`` (False on the diagonal).


    Used in: :ref:`ch-rate-splitting`
    """

    optimum: np.ndarray
    candidates: np.ndarray
    best: np.ndarray
    spread: np.ndarray
    shortfall: np.ndarray
    fits_all: np.ndarray
    margin: np.ndarray
    separated: np.ndarray

    @property
    def distinct(self) -> bool:
        """Every task has its own optimum."""
        return bool(len(set(self.optimum.tolist())) == len(self.optimum))

    @property
    def holds(self) -> bool:
        """Whether no one model fits all, that is, the optima are distinct and no member is
        within the seed-to-seed spread of the best on every task."""
        return bool(self.distinct and not self.fits_all.any())

    @property
    def min_excess(self) -> np.ndarray:
        """``[G]`` how far each member falls short beyond the spread on its worst task,
        ``max_t (shortfall[t, g] - spread[t])`` (in that task's units; positive iff the
        member does not fit all)."""
        return (self.shortfall - self.spread[:, None]).max(axis=0)

    @property
    def pairwise_separated(self) -> bool:
        """Whether the stronger statement holds, that each optimum beats every other optimum
        on its own task by more than that task's spread (second seed)."""
        off = ~np.eye(len(self.optimum), dtype=bool)
        return bool(self.distinct and self.separated[off].all())


def optima_separation(
    first: np.ndarray,
    second: np.ndarray,
    candidates: Sequence[int],
) -> OptimaSeparation:
    r"""Does one model fit all ``T`` tasks, given the seed-to-seed spread of the metrics?

    ``first`` ``[T, G]``: the tasks' metrics (larger is better) of every grid member, trained
    with one seed; each task's optimum :math:`o_t` is its argmax. ``candidates`` ``[M]``: the
    grid indices of the distinct optima, ascending (``sorted(set(first.argmax(1)))``), retrained
    with a second seed; ``second`` ``[T, M]``: their metrics. With the spread
    :math:`s_t=\max_{m}|m^{(a)}_t(m)-m^{(b)}_t(m)|` over the candidates and the best re-measured
    on the second seed, :math:`b_t=m^{(b)}_t(o_t)` (which took no part in choosing the optimum,
    so no winner's curse), member :math:`g` *fits all* when

    .. math:: b_t - m^{(a)}_t(g) \;\le\; s_t \quad\text{for every task } t.

    Our formalisation of "no one VAE fits all": the optima are distinct and no member fits
    all. It fails when one member is near-best everywhere (e.g. when the tasks are the same
    task) or when the spread is as large as the differences between members. The stronger
    pairwise statement (each optimum beats the others on its own task by more than
    :math:`s_t` on the second seed) is reported too (``OptimaSeparation.separated``).

    Used in: :ref:`ch-rate-splitting`
    """
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    cand = np.asarray(candidates, dtype=np.int64)
    if a.ndim != 2 or a.shape[0] < 2 or a.shape[1] < 2:
        raise ValueError(f"first must be [T, G] with T, G >= 2, got {a.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("the metrics must be finite")
    optimum = a.argmax(axis=1)
    expected = np.unique(optimum)
    if cand.shape != expected.shape or (cand != expected).any():
        raise ValueError(
            f"candidates must be the distinct optima {expected.tolist()}, got {cand.tolist()}"
        )
    if b.shape != (a.shape[0], len(cand)):
        raise ValueError(f"second must be [T, M] = {(a.shape[0], len(cand))}, got {b.shape}")
    spread = np.abs(a[:, cand] - b).max(axis=1)
    col = np.searchsorted(cand, optimum)  # [T] the column of each optimum in ``second``
    best = b[np.arange(len(optimum)), col]
    shortfall = best[:, None] - a
    margin = best[:, None] - b[:, col]
    separated = margin > spread[:, None]
    np.fill_diagonal(separated, False)
    return OptimaSeparation(
        optimum=optimum,
        candidates=cand,
        best=best,
        spread=spread,
        shortfall=shortfall,
        fits_all=(shortfall <= spread[:, None]).all(axis=0),
        margin=margin,
        separated=separated,
    )
