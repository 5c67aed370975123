"""The lower layer z1 (hvae_lib.analysis.layers): codes and I(y; z1 | z2).

Checks: shapes and reproducibility; the codes equal ``HierarchicalVAE.forward``'s for the same
generator state (so the feature split of q(z1|z2,x) is the model's own computation); the z2
part equals ``label_information`` on the same samples; the pair matrix against a reference
built only from the model's public ``forward`` (noise chosen to hit each z2_j); chunking does
not change the result; a closed-form stub where z1 carries the label and z2 does not, with
shuffled labels as the negative control.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hvae_lib.analysis.downstream import label_information
from hvae_lib.analysis.layers import (
    ConditionalLabelInformation,
    HierarchicalLowerPosterior,
    LowerLayerCodes,
    LowerLayerPosterior,
    conditional_label_information,
    lower_layer_codes,
    lower_layer_posterior,
)
from hvae_lib.models.hierarchical import HierarchicalVAE, HierarchicalVAEConfig

VARIANTS = [("separate", "mlp"), ("ladder", "mlp"), ("separate", "conv"), ("ladder", "conv")]


def tiny_model(inference: str, architecture: str = "mlp", **changes) -> HierarchicalVAE:
    torch.manual_seed(0)
    cfg = HierarchicalVAEConfig(
        input_shape=(1, 8, 8),
        latent_dims=(4, 3),
        architecture=architecture,
        inference=inference,
        hidden=16,
        prior_hidden=8,
        channels=4,
    )
    return HierarchicalVAE(cfg.replace(**changes) if changes else cfg)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def images() -> tuple[torch.Tensor, np.ndarray]:
    x = torch.rand(40, 1, 8, 8, generator=gen(123))
    return x, np.arange(40) % 3


@pytest.mark.parametrize("inference,architecture", VARIANTS)
def test_codes_shapes_and_agreement_with_forward(images, inference, architecture) -> None:
    x, _ = images
    model = tiny_model(inference, architecture)
    codes = lower_layer_codes(model, x, generator=gen(5))
    d1 = model.config.latent_sizes[0]
    assert isinstance(codes, LowerLayerCodes) and codes.num_points == 40
    for name in ("mu2", "logvar2", "z2"):
        assert getattr(codes, name).shape == (40, 3) and getattr(codes, name).dtype == np.float64
    for name in ("mu1", "logvar1", "z1"):
        assert getattr(codes, name).shape == (40, d1) and getattr(codes, name).dtype == np.float64
    # one batch draws the noise in forward's order: the same codes
    with torch.no_grad():
        out = model(x, generator=gen(5))
    np.testing.assert_allclose(codes.mu2, out.means[1].numpy(), atol=1e-6)
    np.testing.assert_allclose(codes.z2, out.samples[1].numpy(), atol=1e-6)
    np.testing.assert_allclose(codes.mu1, out.means[0].flatten(1).numpy(), atol=1e-5)
    np.testing.assert_allclose(codes.logvar1, out.logvars[0].flatten(1).numpy(), atol=1e-5)
    np.testing.assert_allclose(codes.z1, out.samples[0].flatten(1).numpy(), atol=1e-5)
    # negative control: another generator state gives other samples
    other = lower_layer_codes(model, x, generator=gen(6))
    assert np.abs(other.z1 - codes.z1).max() > 1e-3
    np.testing.assert_allclose(other.mu2, codes.mu2)


def test_codes_are_reproducible_with_the_same_generator_state(images) -> None:
    x, _ = images
    model = tiny_model("separate")
    a = lower_layer_codes(model, x, generator=gen(1), batch_size=16)
    b = lower_layer_codes(model, x, generator=gen(1), batch_size=16)
    for name in ("mu2", "logvar2", "z2", "mu1", "logvar1", "z1"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


@pytest.mark.parametrize("inference,architecture", VARIANTS)
def test_top_part_equals_label_information_on_the_same_samples(
    images, inference, architecture
) -> None:
    x, y = images
    model = tiny_model(inference, architecture)
    r = conditional_label_information(model, x, y, generator=gen(2))
    assert isinstance(r, ConditionalLabelInformation) and r.num_points == 40
    li = label_information(r.codes.mu2, r.codes.logvar2, y, samples=r.codes.z2)
    assert abs(r.top - li.plug_in) < 1e-8
    assert abs(r.top_se - li.plug_in_se) < 1e-8
    assert abs(r.top_leave_one_out - li.leave_one_out) < 1e-8
    assert abs(r.label_entropy - li.label_entropy) < 1e-12
    assert abs(r.plug_in - (r.joint - r.top)) < 1e-12
    assert r.joint <= r.label_entropy + 1e-9 and r.plug_in_se > 0
    assert all(math.isfinite(v) for v in (r.plug_in, r.leave_one_out, r.joint_leave_one_out))
    # reproducible with the same generator state
    again = conditional_label_information(model, x, y, generator=gen(2))
    assert again.plug_in == r.plug_in and again.joint == r.joint


@pytest.mark.parametrize("inference", ["separate", "ladder"])
def test_pair_matrix_against_a_reference_from_forward(images, inference) -> None:
    """q(z1_j | z2_j, x_i) for all pairs, from ``forward`` with noise that lands on z2_j."""
    x, y = images
    x, y = x[:24].double(), y[:24]
    model = tiny_model(inference).double()
    small = conditional_label_information(
        model, x, y, generator=gen(3), pair_batch=7, max_chunk_elements=50, batch_size=5
    )
    r = conditional_label_information(model, x, y, generator=gen(3), batch_size=5)
    for name in ("plug_in", "joint", "top", "leave_one_out", "plug_in_se"):
        assert abs(getattr(small, name) - getattr(r, name)) < 1e-10, name
    c = r.codes
    n = len(y)
    z2, z1 = torch.as_tensor(c.z2), torch.as_tensor(c.z1)
    logq = np.empty((n, n))  # [j, i]
    with torch.no_grad():
        for i in range(n):
            mu2, lv2 = torch.as_tensor(c.mu2[i]), torch.as_tensor(c.logvar2[i])
            eps2 = (z2 - mu2) / torch.exp(0.5 * lv2)
            out = model(x[i : i + 1].expand(n, -1, -1, -1), noise=[torch.zeros_like(z1), eps2])
            np.testing.assert_allclose(out.samples[1].numpy(), c.z2, atol=1e-10)
            for zs, mu, lv in ((z2, mu2, lv2), (z1, out.means[0], out.logvars[0])):
                u = (zs - mu) ** 2 / torch.exp(lv) + lv + math.log(2 * math.pi)
                logq[:, i] = (logq[:, i] if zs is z1 else 0.0) - 0.5 * u.sum(-1).numpy()

    def plug(lq: np.ndarray) -> float:
        same = y[:, None] == y[None, :]
        cond = np.log(np.where(same, np.exp(lq), 0).sum(1) / same.sum(1))
        return float(np.mean(cond - np.log(np.exp(lq).mean(1))))

    assert abs(plug(logq) - r.joint) < 1e-8


# ----------------------------------------------------------------------------- the closed form
class LabelInZ1:
    """A :class:`LowerLayerPosterior` stub: ``q(z2|x) = N(0, I)`` ignores x; the mean of
    ``q(z1|z2,x)`` is ``sep · onehot(class(x)) + 0.3 · z2[:, :1]`` with std 0.05, where the
    class is the single pixel value of ``x`` [B, 1, 1, 1]."""

    input_shape = (1, 1, 1)
    device = torch.device("cpu")
    dtype = torch.float64

    def __init__(self, num_classes: int, sep: float = 10.0, std: float = 0.05) -> None:
        self.m, self.sep, self.std = num_classes, sep, std

    def top(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.zeros(x.shape[0], 2, dtype=x.dtype)
        return z, z.clone()

    def x_features(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    def z_features(self, z2: torch.Tensor) -> torch.Tensor:
        return z2

    def combine(self, fx: torch.Tensor, fz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        onehot = torch.nn.functional.one_hot(fx[:, 0].round().long(), self.m).to(fz.dtype)
        mu = self.sep * onehot + 0.3 * fz[:, :1]
        return mu, torch.full_like(mu, 2 * math.log(self.std))


def test_closed_form_label_in_z1_and_shuffled_negative_control() -> None:
    m, n = 3, 300
    cls = np.arange(n) % m
    x = torch.as_tensor(cls, dtype=torch.float64).reshape(n, 1, 1, 1)
    stub = LabelInZ1(m)
    assert isinstance(stub, LowerLayerPosterior) and lower_layer_posterior(stub) is stub
    r = conditional_label_information(stub, x, cls, generator=gen(0))
    h = math.log(m)
    assert abs(r.label_entropy - h) < 1e-12
    assert abs(r.top) < 1e-12  # identical z2 components: exactly no information
    assert abs(r.plug_in - h) < 1e-6
    # leave-one-out, closed form: log((N - 1) / (N_y - 1)) for every point
    assert abs(r.leave_one_out - math.log((n - 1) / (n / m - 1))) < 1e-6
    # negative control: labels shuffled relative to the data
    shuffled = np.random.default_rng(0).permutation(cls)
    s = conditional_label_information(stub, x, shuffled, generator=gen(0))
    assert abs(s.plug_in) < 4 * s.plug_in_se and s.plug_in < 0.05, (s.plug_in, s.plug_in_se)
    assert abs(s.top) < 1e-12


def test_refuses_bad_inputs(images) -> None:
    x, y = images
    model = tiny_model("separate")
    with pytest.raises(TypeError, match="torch.Generator"):
        lower_layer_codes(model, x, generator=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected images"):
        lower_layer_codes(model, x[:, :, :4], generator=gen(0))
    with pytest.raises(ValueError, match="labels"):
        conditional_label_information(model, x, y[:-1], generator=gen(0))
    with pytest.raises(ValueError, match="two-layer"):
        lower_layer_codes(tiny_model("ladder", latent_dims=(4, 3, 2)), x, generator=gen(0))
    with pytest.raises(TypeError, match="LowerLayerPosterior"):
        lower_layer_posterior(object())  # type: ignore[arg-type]
    assert isinstance(lower_layer_posterior(model), HierarchicalLowerPosterior)
