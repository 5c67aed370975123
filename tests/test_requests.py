"""Requested factors for controllability: uniform, independent, reproducible; the controls.

Issue 13: every controllability number of chapter 4 was once computed on 10 label
configurations because each column was drawn from a freshly seeded generator. The checks
below fail on that pattern (``old_pattern``) and pass on :func:`sample_factor_requests`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hvae_lib.analysis import (
    FactorClassifierConfig,
    RotationSymmetry,
    controllability,
    expected_distinct_configurations,
    reconstructions,
    requests_distinct_fraction,
    sample_factor_requests,
    train_factor_classifier,
)
from hvae_lib.data import SHAPE_NAMES, SHAPE_ROTATION_ORDER, dsprites_lite
from hvae_lib.train import TrainConfig

torch.set_num_threads(1)

SIZES = (3, 4, 8, 8, 8)  # dSprites-lite


def old_pattern(sizes: tuple[int, ...], num: int, seed: int) -> np.ndarray:
    """The defect: a new generator with the same seed for every column."""
    return np.stack([np.random.default_rng([seed, 2]).integers(0, k, num) for k in sizes], 1)


def max_cramers_v(requested: np.ndarray, sizes: tuple[int, ...]) -> float:
    """Largest Cramér's V between two columns (0: independent, 1: one column fixes the other)."""
    best = 0.0
    n = len(requested)
    for a in range(len(sizes)):
        for b in range(a + 1, len(sizes)):
            table = np.zeros((sizes[a], sizes[b]))
            np.add.at(table, (requested[:, a], requested[:, b]), 1)
            expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / n
            chi2 = float(np.sum((table - expected) ** 2 / np.where(expected > 0, expected, 1)))
            best = max(best, np.sqrt(chi2 / (n * (min(sizes[a], sizes[b]) - 1))))
    return best


def test_requests_are_uniform_independent_and_cover_the_configurations() -> None:
    r = sample_factor_requests(SIZES, 1000, np.random.default_rng(0))
    assert r.shape == (1000, 5) and r.dtype == np.int64
    assert all(r[:, f].min() == 0 and r[:, f].max() == k - 1 for f, k in enumerate(SIZES))
    # uniform: each column's histogram passes a loose chi-square band (99.9% under H0)
    for f, k in enumerate(SIZES):
        counts = np.bincount(r[:, f], minlength=k)
        chi2 = float(np.sum((counts - 1000 / k) ** 2 / (1000 / k)))
        assert chi2 < {3: 13.8, 4: 16.3, 8: 24.3}[k], (f, counts)
    assert max_cramers_v(r, SIZES) < 0.15
    assert requests_distinct_fraction(r, SIZES) >= 0.9


def test_the_old_pattern_fails_the_same_checks() -> None:
    """Negative control: fresh generators per column collapse the requests."""
    r = old_pattern(SIZES, 1000, 0)
    assert len(np.unique(r, axis=0)) == 10
    assert requests_distinct_fraction(r, SIZES) < 0.05
    assert max_cramers_v(r, SIZES) > 0.9


def test_requests_are_reproducible_and_continue_the_stream() -> None:
    a = sample_factor_requests(SIZES, 50, np.random.default_rng(3))
    b = sample_factor_requests(SIZES, 50, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(3)
    first, second = sample_factor_requests(SIZES, 50, rng), sample_factor_requests(SIZES, 50, rng)
    np.testing.assert_array_equal(first, a)
    assert not np.array_equal(first, second)  # one stream, not a restart


def test_request_errors_say_what_is_valid() -> None:
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        sample_factor_requests(SIZES, 10, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        sample_factor_requests((3, 0), 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="num"):
        sample_factor_requests(SIZES, 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="shape"):
        requests_distinct_fraction(np.zeros((4, 2), int), SIZES)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    st.lists(st.integers(1, 6), min_size=1, max_size=3),
    st.integers(1, 60),
    st.integers(0, 2**32 - 1),
)
def test_expected_distinct_matches_simulation(sizes: list[int], num: int, seed: int) -> None:
    """E[#distinct] = M(1 - (1 - 1/M)^N) against a Monte-Carlo mean of 400 draws."""
    rng = np.random.default_rng(seed)
    sims = [len(np.unique(sample_factor_requests(sizes, num, rng), axis=0)) for _ in range(400)]
    want = expected_distinct_configurations(sizes, num)
    assert 1 - 1e-9 <= want <= min(num, int(np.prod(sizes))) + 1e-9
    # occupancy indicators are negatively correlated: Var <= M q (1 - q), q = want / M
    m = float(np.prod(sizes))
    q = want / m
    # (+ 5/400: a few rare events, each shifting the mean by 1/400, when the variance is tiny)
    assert abs(np.mean(sims) - want) <= 4 * np.sqrt(m * q * (1 - q) / 400) + 5 / 400


def test_expected_distinct_closed_form_and_control() -> None:
    """1000 requests of 6,144 configurations: about 923 distinct (not 1000, the naive guess)."""
    want = expected_distinct_configurations(SIZES, 1000)
    assert want == pytest.approx(6144 * (1 - (1 - 1 / 6144) ** 1000), rel=1e-12)
    assert 920 < want < 925
    assert expected_distinct_configurations((1,), 5) == 1.0


def lite_symmetry(ds) -> RotationSymmetry:
    return RotationSymmetry(
        shape_factor=0,
        orientation_factor=2,
        orientations=tuple(float(v) for v in ds.factor_values[2]),
        rotation_order=SHAPE_ROTATION_ORDER,
        shape_names=SHAPE_NAMES,
    )


def test_rotation_symmetry_matches_the_rendered_images() -> None:
    """Orientations the symmetry calls equal render to the same pixels, and only those."""
    ds = dsprites_lite().select({"scale": [3], "posX": [4], "posY": [4]})
    x, f = ds.render_all(), ds.all_factors()
    sym = lite_symmetry(ds)
    for s in range(3):
        rows = np.flatnonzero(f[:, 0] == s)
        for a in rows:
            for b in rows:
                same = bool(np.array_equal(x[a], x[b]))
                assert same == bool(sym.equivalent([s], [f[a, 2]], [f[b, 2]])[0]), (s, a, b)
    assert [sym.chance(s) for s in range(3)] == [0.5, 0.25, 0.125]
    with pytest.raises(ValueError):
        RotationSymmetry(0, 0, (0.0,), (1,))


@pytest.fixture(scope="module")
def lite_classifier():
    """A factor classifier on half of dSprites-lite (a few seconds on one core)."""
    ds = dsprites_lite()
    x, f = ds.render_all(), ds.all_factors()
    perm = np.random.default_rng(0).permutation(len(f))
    tr, te = perm[:3000], perm[3000:4500]
    cfg = FactorClassifierConfig(
        input_shape=(1, 32, 32),
        factor_sizes=ds.factor_sizes,
        channels=(8, 16, 16),
        hidden=64,
        train=TrainConfig(steps=400, batch_size=64, lr=2e-3, log_every=100),
    )
    clf, _ = train_factor_classifier(x[tr], f[tr], cfg, progress=False)
    return ds, clf, x[te], f[te]


def test_oracle_reaches_the_ceiling_and_an_ignoring_generator_sits_at_chance(
    lite_classifier,
) -> None:
    ds, clf, x_te, f_te = lite_classifier
    sym = lite_symmetry(ds)
    ceiling = controllability(clf, x_te, f_te, symmetry=sym)
    assert ceiling.mean > 0.6, ceiling.as_dict()  # the classifier learned something
    rng = np.random.default_rng(1)
    req = sample_factor_requests(ds.factor_sizes, 1500, rng)
    # the oracle draws exactly the requested factors with the procedural renderer
    oracle_images = ds.render_all()[ds.factors_to_index(req)]
    oracle = controllability(clf, oracle_images, req, symmetry=sym)
    assert abs(oracle.mean - ceiling.mean) < 0.04, (oracle.mean, ceiling.mean)
    # a generator that ignores the request: images for other, independent factors
    ignored = sample_factor_requests(ds.factor_sizes, 1500, rng)
    ignoring = controllability(
        clf, ds.render_all()[ds.factors_to_index(ignored)], req, symmetry=sym
    )
    assert abs(ignoring.mean - ignoring.mean_chance) < 0.03, ignoring.as_dict()
    assert ignoring.mean < oracle.mean - 0.3
    # the same oracle images scored against a shuffled request: the negative control
    shuffled = controllability(clf, oracle_images, req[rng.permutation(len(req))], symmetry=sym)
    assert abs(shuffled.mean - shuffled.mean_chance) < 0.03
    # per-shape orientation report, chance modulo symmetry
    assert {k: v[1] for k, v in oracle.orientation_by_shape.items()} == {
        "square": 0.5,
        "ellipse": 0.25,
        "heart": 0.125,
    }
    # without symmetry the square's orientation is partly unidentifiable: lower score
    plain = controllability(clf, oracle_images, req)
    assert plain.per_factor[2] < oracle.per_factor[2]
    assert plain.chance[2] == pytest.approx(1 / 8)
    assert oracle.chance[2] == pytest.approx(np.mean([[0.5, 0.25, 0.125][s] for s in req[:, 0]]))


def test_reconstructions_of_a_vae_have_the_input_shape() -> None:
    from hvae_lib.models import BetaVAE, VAEConfig

    model = BetaVAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,)))
    x = torch.rand(5, 1, 8, 8)
    r = reconstructions(model, x, batch_size=2)
    assert r.shape == x.shape and float(r.min()) >= 0 and float(r.max()) <= 1
    with pytest.raises(ValueError, match="N, C, H, W"):
        reconstructions(model, x[0])
