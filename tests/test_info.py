"""Tests of hvae_lib.info: exact discrete quantities, T1–T3, Gaussian closed forms, estimators.

T1–T3 are our formalisation, consistent with the paper's abstract.
The default run takes about 20-30 s on one thread; tests marked ``slow`` (seed sweeps of the
estimators, chapter-scale T1/T3 checks, about 1 min) run with ``HVAE_SLOW=1`` or
``--run-slow`` (see tests/conftest.py).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hvae_lib import info as I

torch.set_num_threads(1)

LOG2 = math.log(2.0)
slow = pytest.mark.slow

HYP = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def h2(e: float) -> float:
    """Binary entropy in nats."""
    return 0.0 if e in (0.0, 1.0) else -(e * math.log(e) + (1 - e) * math.log(1 - e))


# ================================================================== hypothesis strategies
weights = st.floats(min_value=0.0, max_value=1.0, allow_nan=False, allow_infinity=False)


def _normalise_rows(w: np.ndarray) -> np.ndarray:
    """Normalise the last axis; all-zero rows become uniform."""
    s = w.sum(axis=-1, keepdims=True)
    return np.where(s > 0, w / np.where(s > 0, s, 1.0), 1.0 / w.shape[-1])


@st.composite
def joint_tables(draw: st.DrawFn, ndim: int = 3, max_size: int = 4) -> np.ndarray:
    """Arbitrary joint tables (including zeros and tiny entries), sizes 1..max_size."""
    shape = tuple(draw(st.integers(1, max_size)) for _ in range(ndim))
    n = int(np.prod(shape))
    w = np.array(draw(st.lists(weights, min_size=n, max_size=n)), dtype=float)
    if w.sum() == 0:
        w[draw(st.integers(0, n - 1))] = 1.0
    return (w / w.sum()).reshape(shape)


@st.composite
def conditional_tables(
    draw: st.DrawFn, num_in: int, num_out: int, positive: bool = False
) -> np.ndarray:
    lo = 0.01 if positive else 0.0
    elems = st.floats(min_value=lo, max_value=1.0, allow_nan=False)
    w = np.array(
        draw(st.lists(elems, min_size=num_in * num_out, max_size=num_in * num_out)), dtype=float
    )
    return _normalise_rows(w.reshape(num_in, num_out))


@st.composite
def markov_chains(draw: st.DrawFn, max_size: int = 4) -> np.ndarray:
    a, b, c = (draw(st.integers(1, max_size)) for _ in range(3))
    p_a = _normalise_rows(np.array(draw(st.lists(weights, min_size=a, max_size=a)), dtype=float))
    p_b_a = draw(conditional_tables(a, b))
    p_c_b = draw(conditional_tables(b, c))
    return p_a[:, None, None] * p_b_a[:, :, None] * p_c_b[None, :, :]


# ====================================================================== hand-computed cases
def test_entropy_hand_cases() -> None:
    assert I.entropy([0.5, 0.5]) == pytest.approx(LOG2, abs=1e-15)
    assert I.entropy([0.5, 0.5], base=2) == pytest.approx(1.0, abs=1e-15)
    assert I.entropy(np.full(8, 1 / 8), base=2) == pytest.approx(3.0, abs=1e-14)
    assert I.entropy([1.0, 0.0, 0.0]) == 0.0
    assert I.entropy(np.full((2, 2), 0.25), base=2) == pytest.approx(2.0, abs=1e-15)  # joint
    assert I.entropy([0.9, 0.1]) == pytest.approx(h2(0.1), abs=1e-15)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.25, 0.5])
def test_binary_symmetric_channel(eps: float) -> None:
    p = 0.5 * np.array([[1 - eps, eps], [eps, 1 - eps]])
    assert I.mutual_information(p) == pytest.approx(LOG2 - h2(eps), abs=1e-14)
    assert I.mutual_information(p, base=2) == pytest.approx(1 - h2(eps) / LOG2, abs=1e-14)
    assert I.conditional_entropy(p) == pytest.approx(h2(eps), abs=1e-14)  # H(A|B)


def test_independent_variables_have_zero_information() -> None:
    rng = np.random.default_rng(1)
    pa, pb, pc = (I.random_joint(rng, (k,)) for k in (3, 4, 5))
    assert abs(I.mutual_information(np.outer(pa, pb))) < 1e-14
    p_abc = pa[:, None, None] * pb[None, :, None] * pc[None, None, :]
    assert abs(I.conditional_mutual_information(p_abc)) < 1e-14
    assert abs(I.co_information(p_abc)) < 1e-14
    assert I.conditional_entropy(np.outer(pa, pb)) == pytest.approx(I.entropy(pa), abs=1e-14)


def _xor() -> np.ndarray:
    p = np.zeros((2, 2, 2))
    for a in (0, 1):
        for b in (0, 1):
            p[a, b, a ^ b] = 0.25
    return p


def _copy3() -> np.ndarray:
    p = np.zeros((2, 2, 2))
    p[0, 0, 0] = p[1, 1, 1] = 0.5
    return p


def test_xor_and_copy_cases() -> None:
    xor = _xor()  # C = A xor B
    assert I.mutual_information(xor.sum(axis=2)) == pytest.approx(0.0, abs=1e-15)
    assert I.conditional_mutual_information(xor) == pytest.approx(LOG2, abs=1e-15)
    assert I.co_information(xor) == pytest.approx(-LOG2, abs=1e-15)  # synergy
    assert I.co_information(_copy3()) == pytest.approx(LOG2, abs=1e-15)  # redundancy
    assert I.co_information(_copy3(), base=2) == pytest.approx(1.0, abs=1e-15)


def test_co_information_is_symmetric() -> None:
    p = I.random_joint(np.random.default_rng(2), (2, 3, 4))
    ref = I.co_information(p)
    for perm in [(1, 0, 2), (2, 1, 0), (0, 2, 1), (1, 2, 0)]:
        assert I.co_information(p.transpose(perm)) == pytest.approx(ref, abs=1e-14)


def test_kl_divergence() -> None:
    assert I.kl_divergence([0.5, 0.5], [0.25, 0.75]) == pytest.approx(
        0.5 * math.log(2) + 0.5 * math.log(2 / 3), abs=1e-15
    )
    assert I.kl_divergence([0.3, 0.7], [0.3, 0.7]) == 0.0
    assert I.kl_divergence([0.5, 0.5], [1.0, 0.0]) == math.inf
    assert I.kl_divergence([1.0, 0.0], [0.5, 0.5], base=2) == pytest.approx(1.0)


# ========================================================================== validation
@pytest.mark.parametrize(
    "fn, table",
    [
        (I.entropy, [0.5, 0.6, -0.1]),
        (I.mutual_information, [[0.6, -0.1], [0.25, 0.25]]),
        (
            I.conditional_mutual_information,
            np.array([0.5, 0.25, 0.25, 0.25, 0, 0, 0, -0.25]).reshape(2, 2, 2),
        ),
        (I.co_information, np.array([1.25, -0.25, 0, 0, 0, 0, 0, 0]).reshape(2, 2, 2)),
    ],
)
def test_negative_entries_raise(fn, table) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="negative"):
        fn(table)


@pytest.mark.parametrize("total", [0.9, 1.1, 1 + 2e-9, 1 - 2e-9])
def test_totals_not_one_raise(total: float) -> None:
    p = np.array([[0.25, 0.25], [0.25, 0.25]]) * total
    with pytest.raises(ValueError, match="sums to"):
        I.mutual_information(p)
    with pytest.raises(ValueError, match="sums to"):
        I.entropy(p.ravel())
    with pytest.raises(ValueError, match="sums to"):
        I.transitive_bounds(p[:, :, None])


def test_totals_within_tolerance_are_accepted() -> None:
    p = np.array([0.5, 0.5]) * (1 + 5e-10)
    assert I.entropy(p) == pytest.approx(LOG2, abs=1e-8)


def test_other_validation_errors() -> None:
    with pytest.raises(ValueError, match="NaN"):
        I.entropy([0.5, np.nan])
    with pytest.raises(ValueError, match="2 axes"):
        I.mutual_information(np.full(4, 0.25))
    with pytest.raises(ValueError, match="3 axes"):
        I.conditional_mutual_information(np.full((2, 2), 0.25))
    with pytest.raises(ValueError, match="empty"):
        I.entropy([])
    with pytest.raises(ValueError, match="base"):
        I.entropy([0.5, 0.5], base=1)
    with pytest.raises(ValueError, match="array of numbers"):
        I.entropy(["a", "b"])
    with pytest.raises(ValueError, match="same shape"):
        I.kl_divergence([0.5, 0.5], [0.2, 0.3, 0.5])
    # batch: one bad table in the batch is reported
    batch = I.random_joints(np.random.default_rng(0), 5, (2, 2, 2))
    batch[3, 0, 0, 0] += 0.01
    with pytest.raises(ValueError, match="a table in the batch sums to"):
        I.transitive_bounds_batch(batch)
    with pytest.raises(ValueError, match="1 batch axes"):
        I.transitive_bounds_batch(batch[0])
    # conditional tables
    with pytest.raises(ValueError, match="every row"):
        I.labelled_joint(np.full((2, 2), 0.25), [[0.5, 0.4], [0.5, 0.5]])
    with pytest.raises(ValueError, match="rows"):
        I.labelled_joint(np.full((2, 2), 0.25), np.full((3, 2), 0.5))
    with pytest.raises(ValueError, match="do not chain"):
        I.chain_joint([0.5, 0.5], np.full((2, 3), 1 / 3), np.full((2, 2), 0.5))


def test_t3_validation() -> None:
    rng = np.random.default_rng(3)
    q_zx = I.random_conditional(rng, 3, 2)
    q = I.labelled_joint(I.random_joint(rng, (3, 4)), q_zx)
    with pytest.raises(ValueError, match="p_z_given_u must have shape"):
        I.conditional_prior_rate_identity(q, I.random_conditional(rng, 2, 4))
    with pytest.raises(ValueError, match="not the conditional"):
        I.conditional_prior_rate_identity(
            q, I.random_conditional(rng, 4, 2), I.random_conditional(rng, 3, 2)
        )
    with pytest.raises(ValueError, match="q_z_given_x must have shape"):
        I.conditional_prior_rate_identity(
            q, I.random_conditional(rng, 4, 2), I.random_conditional(rng, 2, 2)
        )
    with pytest.raises(ValueError, match="shape"):
        I.prior_rate_decomposition([0.5, 0.5], q_zx, [0.5, 0.5])


# ================================================================= T1 / T2 (hand cases)
def test_t1_equality_for_copy_chain() -> None:
    tb = I.transitive_bounds(_copy3())
    assert tb.lower == pytest.approx(LOG2, abs=1e-15)
    assert tb.i_ac == pytest.approx(LOG2, abs=1e-15)
    assert tb.upper == pytest.approx(LOG2, abs=1e-15)
    assert tb.is_markov and isinstance(tb.is_markov, bool)
    assert isinstance(tb.lower, float)


def test_t1_slack_for_xor_middle() -> None:
    # B = A xor C: I(A;B) = I(B;C) = 0, H(B) = log 2, I(A;C) = 0; not Markov (I(A;C|B) = log 2)
    p = _xor().transpose(0, 2, 1)
    tb = I.transitive_bounds(p)
    assert tb.lower == pytest.approx(-LOG2, abs=1e-15)
    assert tb.i_ac == pytest.approx(0.0, abs=1e-15)
    assert tb.i_ac_given_b == pytest.approx(LOG2, abs=1e-15)
    assert tb.h_b_given_ac == pytest.approx(0.0, abs=1e-15)
    assert not tb.is_markov
    assert I.transitive_bounds(p, base=2).lower == pytest.approx(-1.0, abs=1e-15)


# ============================================================ T1 / T2 / T3 (property-based)
@HYP
@given(joint_tables())
def test_t1_lower_bound_on_random_joints(p: np.ndarray) -> None:
    tb = I.transitive_bounds(p)
    assert tb.lower <= tb.i_ac + 1e-12
    # slack = I(A;C|B) + H(B|A,C), both >= 0
    assert tb.lower_slack == pytest.approx(tb.i_ac_given_b + tb.h_b_given_ac, abs=1e-12)
    assert tb.i_ac_given_b >= -1e-12 and tb.h_b_given_ac >= -1e-12
    assert tb.i_ac == pytest.approx(I.mutual_information(p.sum(axis=1)), abs=1e-12)
    assert tb.i_ac_given_b == pytest.approx(
        I.conditional_mutual_information(p.transpose(0, 2, 1)), abs=1e-12
    )


@HYP
@given(markov_chains())
def test_t2_ceiling_on_random_markov_chains(p: np.ndarray) -> None:
    tb = I.transitive_bounds(p)
    assert tb.is_markov
    assert abs(tb.i_ac_given_b) < 1e-12
    assert tb.i_ac <= tb.upper + 1e-12
    assert tb.lower <= tb.i_ac + 1e-12


@HYP
@given(
    st.integers(1, 5).flatmap(
        lambda nx: st.integers(1, 4).flatmap(
            lambda nz: st.integers(1, 4).flatmap(
                lambda nu: st.tuples(
                    st.just((nx, nz, nu)),
                    st.lists(weights, min_size=nx, max_size=nx),
                    conditional_tables(nx, nz),
                    conditional_tables(nz, nu),
                    conditional_tables(nu, nz, positive=True),
                )
            )
        )
    )
)
def test_t3_identity_on_random_chains(args) -> None:  # type: ignore[no-untyped-def]
    _, w_x, q_zx, q_uz, p_zu = args
    p_x = _normalise_rows(np.asarray(w_x, dtype=float))
    q = I.chain_joint(p_x, q_zx, q_uz)
    t3 = I.conditional_prior_rate_identity(q, p_zu, q_zx)
    assert abs(t3.residual) < 1e-12
    assert t3.rate == pytest.approx(t3.i_xz - t3.i_zu + t3.kl_prior, abs=1e-12)
    assert t3.i_xz <= t3.rate + t3.i_zu + 1e-12  # I(X;Z) <= R_u + I(Z;U)
    assert t3.kl_prior >= -1e-12
    # the encoder derived from the joint gives the same answer
    t3b = I.conditional_prior_rate_identity(q, p_zu)
    assert t3b.rate == pytest.approx(t3.rate, abs=1e-12)


@HYP
@given(
    st.integers(1, 5).flatmap(
        lambda nx: st.integers(1, 4).flatmap(
            lambda nz: st.integers(1, 4).flatmap(
                lambda nu: st.tuples(
                    st.lists(weights, min_size=nx * nu, max_size=nx * nu).map(
                        lambda w: np.asarray(w, dtype=float).reshape(nx, nu)
                    ),
                    conditional_tables(nx, nz),
                    conditional_tables(nu, nz, positive=True),
                )
            )
        )
    )
)
def test_t3_identity_labelled_is_expected_kl(args) -> None:  # type: ignore[no-untyped-def]
    w_xu, q_zx, p_zu = args
    if w_xu.sum() == 0:
        w_xu[0, 0] = 1.0
    p_xu = w_xu / w_xu.sum()
    t3 = I.conditional_prior_rate_identity(I.labelled_joint(p_xu, q_zx), p_zu, q_zx)
    assert abs(t3.residual) < 1e-12
    # with Z independent of U given X the rate is E_{p(x,u)} KL(q(z|x) || p(z|u))
    expected = sum(
        p_xu[x, u] * I.kl_divergence(q_zx[x], p_zu[u])
        for x in range(p_xu.shape[0])
        for u in range(p_xu.shape[1])
        if p_xu[x, u] > 0
    )
    assert t3.rate == pytest.approx(expected, abs=1e-12)


@HYP
@given(
    st.integers(1, 5).flatmap(
        lambda nx: st.integers(1, 5).flatmap(
            lambda nz: st.tuples(
                st.lists(weights, min_size=nx, max_size=nx),
                conditional_tables(nx, nz),
                conditional_tables(1, nz, positive=True),
            )
        )
    )
)
def test_prior_rate_decomposition(args) -> None:  # type: ignore[no-untyped-def]
    w_x, q_zx, p_z = args
    p_x = _normalise_rows(np.asarray(w_x, dtype=float))
    d = I.prior_rate_decomposition(p_x, q_zx, p_z[0])
    assert abs(d.residual) < 1e-12
    assert d.rate >= d.i_xz - 1e-12  # the rate caps I(X;Z)
    assert d.kl_marginal >= -1e-12


def test_t3_infinite_when_prior_misses_support() -> None:
    q = I.labelled_joint(np.full((2, 2), 0.25), np.full((2, 2), 0.5))
    t3 = I.conditional_prior_rate_identity(q, np.array([[1.0, 0.0], [0.5, 0.5]]))
    assert t3.rate == math.inf and t3.kl_prior == math.inf


def test_t3_rate_can_be_negative_on_unlabelled_chain() -> None:
    # X constant, Z uniform, U = Z: I(X;Z) = 0, I(Z;U) = log 2, prior p(z|u) = copy of u
    q = I.chain_joint([1.0], [[0.5, 0.5]], np.eye(2))
    t3 = I.conditional_prior_rate_identity(q, np.array([[0.9, 0.1], [0.1, 0.9]]))
    assert t3.rate < 0
    assert t3.rate == pytest.approx(-LOG2 - math.log(0.9), abs=1e-14)
    assert abs(t3.residual) < 1e-14


# ============================================================== vectorised batch checks
def test_batch_matches_scalar_and_is_fast() -> None:
    import time

    rng = np.random.default_rng(4)
    p = I.random_joints(rng, 10_000, (4, 4, 4), min_shape=(2, 2, 2))
    t0 = time.perf_counter()
    tb = I.transitive_bounds_batch(p)
    elapsed = time.perf_counter() - t0
    assert elapsed < 2.0
    s = tb.summary()
    assert s["n"] == 10_000 and s["min_lower_slack"] >= -1e-12
    assert s["max_slack_identity_error"] < 1e-12
    for m in [0, 17, 9999]:
        one = I.transitive_bounds(p[m])
        for name in [
            "i_ab",
            "i_bc",
            "i_ac",
            "h_b",
            "lower",
            "upper",
            "i_ac_given_b",
            "h_b_given_ac",
        ]:
            assert getattr(tb, name)[m] == pytest.approx(getattr(one, name), abs=1e-13)
        assert bool(tb.is_markov[m]) == one.is_markov


def test_batch_markov_chains_and_sparse_joints() -> None:
    rng = np.random.default_rng(5)
    chains = I.random_markov_chains(rng, 5_000, (3, 4, 2), alpha=0.5)
    s = I.transitive_bounds_batch(chains).summary()
    assert s["num_markov"] == 5_000
    assert s["min_upper_slack_markov"] >= -1e-12 and s["min_lower_slack"] >= -1e-12
    # sparse joints (alpha << 1) come close to T1 equality, never below it
    sparse = I.transitive_bounds_batch(I.random_joints(rng, 5_000, (3, 3, 3), alpha=0.05))
    assert -1e-12 <= sparse.lower_slack.min() < 1e-3


def test_t3_batch_matches_scalar() -> None:
    rng = np.random.default_rng(6)
    m, nx, nz, nu = 500, 5, 4, 3
    p_x = I.random_joints(rng, m, (nx,))
    q_zx = I.random_conditional(rng, nx, nz, n=m)
    q_uz = I.random_conditional(rng, nz, nu, n=m)
    p_zu = I.random_conditional(rng, nu, nz, n=m)
    q = p_x[:, :, None, None] * q_zx[:, :, :, None] * q_uz[:, None, :, :]
    t3 = I.conditional_prior_rate_identity_batch(q, p_zu, q_zx)
    assert np.abs(t3.residual).max() < 1e-12
    assert t3.information_slack.min() >= -1e-12
    one = I.conditional_prior_rate_identity(I.chain_joint(p_x[7], q_zx[7], q_uz[7]), p_zu[7])
    assert t3.rate[7] == pytest.approx(one.rate, abs=1e-13)
    assert t3.i_zu[7] == pytest.approx(one.i_zu, abs=1e-13)


# ====================================================================== random samplers
def test_random_tables_shapes_sums_and_reproducibility() -> None:
    a = I.random_joints(np.random.default_rng(7), 100, (4, 3, 2), min_shape=(2, 1, 2))
    b = I.random_joints(np.random.default_rng(7), 100, (4, 3, 2), min_shape=(2, 1, 2))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (100, 4, 3, 2)
    np.testing.assert_allclose(a.sum(axis=(1, 2, 3)), 1.0, atol=1e-12)
    assert (a >= 0).all()
    # zero padding: some tables use fewer than 4 values of A
    assert (a[:, 2:].sum(axis=(1, 2, 3)) == 0).any()
    c = I.random_conditional(np.random.default_rng(0), 3, 5, alpha=1e-3, n=50)  # tiny alpha
    np.testing.assert_allclose(c.sum(-1), 1.0, atol=1e-12)
    chain = I.random_markov_chain(np.random.default_rng(0), (2, 3, 4))
    assert chain.shape == (2, 3, 4)
    assert abs(I.conditional_mutual_information(chain.transpose(0, 2, 1))) < 1e-14
    with pytest.raises(TypeError, match="Generator"):
        I.random_joint(0, (2, 2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alpha"):
        I.random_joint(np.random.default_rng(0), (2, 2), alpha=0)
    with pytest.raises(ValueError, match="min_shape"):
        I.random_joints(np.random.default_rng(0), 3, (2, 2), min_shape=(3, 1))


# ===================================================================== Gaussian closed forms
@pytest.mark.parametrize("rho", [0.0, 0.3, -0.7, 0.99])
def test_gaussian_mi_bivariate(rho: float) -> None:
    cov = np.array([[1.0, rho], [rho, 1.0]])
    expected = -0.5 * math.log(1 - rho**2)
    assert I.gaussian_mutual_information(cov, 0, 1) == pytest.approx(expected, abs=1e-12)
    assert I.gaussian_mutual_information(cov * 4.0, [0], [1]) == pytest.approx(expected, abs=1e-12)
    assert I.mi_from_correlation(rho) == pytest.approx(expected, abs=1e-15)
    assert I.gaussian_mutual_information(cov, 0, 1, base=2) == pytest.approx(
        expected / LOG2, abs=1e-12
    )


def test_gaussian_mi_blocks_add_and_roundtrip() -> None:
    chain = I.gaussian_markov_chain([0.5, 0.9], [0.8, 0.3], dim=2)
    expected_ab = float(np.sum(I.mi_from_correlation(np.array([0.5, 0.9]))))
    assert chain.i_ab == pytest.approx(expected_ab, abs=1e-12)
    assert chain.i_ac == pytest.approx(
        float(np.sum(I.mi_from_correlation(np.array([0.4, 0.27])))), abs=1e-12
    )
    assert chain.i_ac <= min(chain.i_ab, chain.i_bc)  # T2 (data processing)
    # A is independent of C given B: I(A; C, B) = I(A; B)
    assert I.gaussian_mutual_information(
        chain.cov, chain.idx_a, chain.idx_b + chain.idx_c
    ) == pytest.approx(chain.i_ab, abs=1e-12)
    assert I.correlation_from_mi(I.mi_from_correlation(0.6)) == pytest.approx(0.6, abs=1e-14)
    assert I.correlation_from_mi(1.0) == pytest.approx(math.sqrt(1 - math.exp(-2)), abs=1e-15)
    assert I.gaussian_entropy(np.eye(1)) == pytest.approx(
        0.5 * math.log(2 * math.pi * math.e), abs=1e-14
    )


def test_gaussian_chain_samples_match_covariance() -> None:
    chain = I.gaussian_markov_chain(0.8, 0.6)
    a, b, c = chain.sample(20_000, np.random.default_rng(0))
    emp = np.corrcoef(np.hstack([a, b, c]).T)
    np.testing.assert_allclose(emp, chain.cov, atol=0.03)


def test_gaussian_pair_sampler() -> None:
    sampler = I.gaussian_pair_sampler(1.0, dim=2)
    x, y = sampler(20_000, torch.Generator().manual_seed(0))
    assert x.shape == (20_000, 2) and y.dtype == torch.float32
    rho = float(np.corrcoef(x[:, 0].numpy(), y[:, 0].numpy())[0, 1])
    assert rho == pytest.approx(I.correlation_from_mi(0.5), abs=0.01)


def test_gaussian_validation() -> None:
    with pytest.raises(ValueError, match="overlap"):
        I.gaussian_mutual_information(np.eye(3), [0, 1], [1, 2])
    with pytest.raises(ValueError, match="positive definite"):
        I.gaussian_mutual_information(np.ones((2, 2)), 0, 1)
    with pytest.raises(ValueError, match="symmetric"):
        I.gaussian_mutual_information(np.array([[1.0, 0.5], [0.2, 1.0]]), 0, 1)
    with pytest.raises(ValueError, match="outside"):
        I.gaussian_mutual_information(np.eye(2), 0, 2)
    with pytest.raises(ValueError, match="rho"):
        I.gaussian_markov_chain(1.0, 0.5)
    with pytest.raises(ValueError, match=">= 0"):
        I.correlation_from_mi(-0.1)


# ===================================================== bound formulas on fixed score matrices
@settings(max_examples=60, deadline=None)
@given(st.integers(2, 40), st.floats(0.1, 30.0), st.integers(0, 2**31 - 1))
def test_bound_formulas_on_arbitrary_scores(n: int, scale: float, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    scores = scale * torch.randn(n, n, generator=g, dtype=torch.float64)
    scores.diagonal().add_(scale * torch.rand(n, generator=g, dtype=torch.float64))
    nce = float(I.infonce_lower_bound(scores))
    assert nce <= math.log(n)  # exactly, by construction
    # log z <= z / e  =>  DV >= NWJ for the same critic
    assert float(I.dv_lower_bound(scores)) >= float(I.nwj_lower_bound(scores)) - 1e-9
    scores32 = scores.float() * 100.0  # extreme float32 scores: still capped
    assert float(I.infonce_lower_bound(scores32)) <= math.log(n)


def test_bound_formulas_with_optimal_critic() -> None:
    # Gaussian pair with I = 1 nat; the log density ratio is the optimal critic
    mi = 1.0
    rho = I.correlation_from_mi(mi)
    x, y = I.gaussian_pair_sampler(mi)(2000, torch.Generator().manual_seed(1))
    x, y = x.double()[:, 0], y.double()[:, 0]
    s2 = 1 - rho**2
    log_ratio = (
        -0.5 * (y[None, :] - rho * x[:, None]) ** 2 / s2
        - 0.5 * math.log(s2)
        + 0.5 * y[None, :] ** 2
    )
    assert float(I.infonce_lower_bound(log_ratio)) == pytest.approx(mi, abs=0.1)
    assert float(I.nwj_lower_bound(1.0 + log_ratio)) == pytest.approx(mi, abs=0.1)
    assert float(I.dv_lower_bound(log_ratio)) == pytest.approx(mi, abs=0.1)
    with pytest.raises(ValueError, match="square"):
        I.infonce_lower_bound(torch.zeros(3, 4))


# ============================================================================ estimators
GAUSS_1NAT = I.gaussian_pair_sampler(1.0)


def gen(seed: int = 0) -> torch.Generator:
    """A fresh CPU generator for one estimator call."""
    return torch.Generator().manual_seed(seed)


def test_infonce_gaussian_one_nat() -> None:
    r = I.infonce_estimate(GAUSS_1NAT, batch_size=512, generator=gen())
    assert r.method == "infonce" and "lower bound" in r.bound
    assert abs(r.estimate - 1.0) < 0.15
    assert r.estimate <= math.log(512) == r.upper_limit
    assert r.curve.shape == (300,) and np.all(r.curve <= math.log(512))
    assert r.eval_values.shape == (20,)


def test_nwj_gaussian_one_nat() -> None:
    r = I.nwj_estimate(GAUSS_1NAT, batch_size=512, generator=gen())
    assert r.method == "nwj"
    assert abs(r.estimate - 1.0) < 0.15
    assert np.isfinite(r.curve).all()


def test_mine_gaussian_one_nat() -> None:
    r = I.mine_estimate(GAUSS_1NAT, batch_size=512, generator=gen())
    assert r.method == "mine" and "Donsker" in r.bound
    assert abs(r.estimate - 1.0) < 0.15


def test_barber_agakov_gaussian_one_nat() -> None:
    h_y = I.gaussian_entropy(np.eye(1))
    r = I.barber_agakov_estimate(GAUSS_1NAT, h_y, generator=gen())
    assert abs(r.estimate - 1.0) < 0.1
    assert r.estimate <= 1.0 + 3 * r.stderr + 0.02  # a lower bound, up to sampling noise


def test_barber_agakov_categorical_bsc() -> None:
    eps = 0.1

    def bsc(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randint(0, 2, (n,), generator=g)
        flip = (torch.rand(n, generator=g) < eps).long()
        return x[:, None].float(), x ^ flip

    r = I.barber_agakov_estimate(bsc, LOG2, num_classes=2, num_steps=150, generator=gen())
    assert r.estimate == pytest.approx(LOG2 - h2(eps), abs=0.05)


def test_infonce_never_exceeds_log_n() -> None:
    # I = 8 nats >> log 32 = 3.47: InfoNCE saturates just below log N, never above
    sampler = I.gaussian_pair_sampler(8.0, dim=4)
    r = I.infonce_estimate(
        sampler, batch_size=32, num_steps=150, num_eval_batches=50, generator=gen()
    )
    assert r.upper_limit == pytest.approx(math.log(32))
    assert r.estimate <= math.log(32)
    assert np.all(r.curve <= math.log(32)) and np.all(r.eval_values <= math.log(32))
    assert r.estimate > math.log(32) - 0.6  # near saturation


def test_estimators_on_tensor_data_with_holdout() -> None:
    x, y = GAUSS_1NAT(4096, torch.Generator().manual_seed(3))
    r = I.infonce_estimate(
        (x, y.numpy()), batch_size=512, holdout=0.25, generator=gen(), device=torch.device("cpu")
    )
    assert r.eval_values.shape == (2,)  # 1024 held-out samples -> two disjoint batches of 512
    assert abs(r.estimate - 1.0) < 0.15
    r1 = I.infonce_estimate(
        (x[:, 0], y[:, 0]), batch_size=64, num_steps=20, holdout=0.0, generator=gen()
    )
    assert r1.upper_limit == pytest.approx(math.log(64))


def test_estimators_are_deterministic_and_leave_global_rng_alone() -> None:
    state = torch.random.get_rng_state()
    kw = dict(batch_size=64, num_steps=30, num_eval_batches=3)
    a = I.nwj_estimate(GAUSS_1NAT, generator=gen(11), **kw)  # type: ignore[arg-type]
    b = I.nwj_estimate(GAUSS_1NAT, generator=gen(11), **kw)  # type: ignore[arg-type]
    assert a.estimate == b.estimate
    np.testing.assert_array_equal(a.curve, b.curve)
    assert torch.equal(state, torch.random.get_rng_state())
    c = I.nwj_estimate(GAUSS_1NAT, generator=gen(12), **kw)  # type: ignore[arg-type]
    assert c.estimate != a.estimate
    g = gen(11)  # one generator used twice: the second call continues its stream
    first = I.nwj_estimate(GAUSS_1NAT, generator=g, **kw)  # type: ignore[arg-type]
    second = I.nwj_estimate(GAUSS_1NAT, generator=g, **kw)  # type: ignore[arg-type]
    assert first.estimate == a.estimate and second.estimate != first.estimate


def test_concat_critic_and_custom_module() -> None:
    r = I.infonce_estimate(
        GAUSS_1NAT,
        batch_size=64,
        num_steps=30,
        num_eval_batches=2,
        critic="concat",
        generator=gen(),
    )
    assert np.isfinite(r.estimate) and r.estimate <= math.log(64)
    critic = I.SeparableCritic(1, 1, hidden=16, embed=4)
    r2 = I.mine_estimate(
        GAUSS_1NAT, batch_size=64, num_steps=10, num_eval_batches=2, critic=critic, generator=gen()
    )
    assert np.isfinite(r2.estimate)


def test_estimator_input_validation() -> None:
    g = gen()
    with pytest.raises(ValueError, match="same number of rows"):
        I.infonce_estimate((torch.zeros(10, 1), torch.zeros(9, 1)), generator=g)
    with pytest.raises(ValueError, match="critic"):
        I.nwj_estimate(GAUSS_1NAT, critic="bilinear", num_steps=1, generator=g)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="holdout"):
        I.infonce_estimate((torch.zeros(10, 1), torch.zeros(10, 1)), holdout=1.5, generator=g)
    with pytest.raises(ValueError, match="ema_rate"):
        I.mine_estimate(GAUSS_1NAT, ema_rate=0.0, generator=g)
    with pytest.raises(ValueError, match="batch_size"):
        I.infonce_estimate(GAUSS_1NAT, batch_size=1, generator=g)
    with pytest.raises(ValueError, match="num_eval_batches"):
        I.nwj_estimate(GAUSS_1NAT, num_eval_batches=0, generator=g)
    with pytest.raises(ValueError, match="num_steps"):
        I.barber_agakov_estimate(GAUSS_1NAT, 1.0, num_steps=0, generator=g)
    with pytest.raises(ValueError, match="NaN"):
        I.infonce_estimate((torch.full((10, 1), float("nan")), torch.zeros(10, 1)), generator=g)
    with pytest.raises(ValueError, match="integer"):
        I.barber_agakov_estimate(
            (torch.zeros(10, 1), torch.zeros(10, 1)), LOG2, num_classes=2, generator=g
        )
    # negative controls: an integer seed where the generator belongs, or a NumPy generator
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator.*got int 0"):
        I.infonce_estimate(GAUSS_1NAT, generator=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="torch.Generator"):
        I.barber_agakov_estimate(GAUSS_1NAT, 1.0, generator=np.random.default_rng(0))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unexpected keyword argument 'seed'"):
        I.nwj_estimate(GAUSS_1NAT, seed=0)  # type: ignore[call-arg]


# ================================================================================= slow
@slow
@pytest.mark.parametrize("method", ["infonce", "nwj", "mine"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_estimators_robust_across_seeds(method: str, seed: int) -> None:
    fn = {"infonce": I.infonce_estimate, "nwj": I.nwj_estimate, "mine": I.mine_estimate}[method]
    for dim in (1, 2):
        r = fn(I.gaussian_pair_sampler(1.0, dim=dim), batch_size=512, generator=gen(seed))
        assert abs(r.estimate - 1.0) < 0.15, (method, seed, dim, r.estimate)


@slow
def test_t1_t3_at_chapter_scale() -> None:
    rng = np.random.default_rng(2022)
    tb = I.transitive_bounds_batch(I.random_joints(rng, 100_000, (4, 4, 4), min_shape=(2, 2, 2)))
    assert tb.summary()["min_lower_slack"] >= -1e-12
    m = 20_000
    q_zx = I.random_conditional(rng, 6, 4, n=m)
    q = (
        I.random_joints(rng, m, (6,))[:, :, None, None]
        * q_zx[..., None]
        * I.random_conditional(rng, 4, 3, n=m)[:, None]
    )
    t3 = I.conditional_prior_rate_identity_batch(q, I.random_conditional(rng, 3, 4, n=m), q_zx)
    assert np.abs(t3.residual).max() < 1e-12


def test_t3_subnormal_label_mass_does_not_underflow() -> None:
    # found by hypothesis: q(u) = 5e-324 times p(z|u) = 0.5 underflows to 0 if multiplied
    p_xu = np.array([[1.0, 5e-324]])
    q_zx = np.array([[0.0, 1.0]])
    p_zu = np.full((2, 2), 0.5)
    t3 = I.conditional_prior_rate_identity(I.labelled_joint(p_xu, q_zx), p_zu, q_zx)
    assert np.isfinite(t3.kl_prior)
    assert t3.rate == pytest.approx(np.log(2.0), abs=1e-15)
    assert abs(t3.residual) < 1e-12
