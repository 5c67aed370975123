"""Random discrete joint tables, conditionals and Markov chains (Dirichlet draws).

All samplers take an explicit ``numpy.random.Generator`` and are vectorised, so that the
chapter can draw tens of thousands of tables in milliseconds. A Dirichlet with
concentration ``alpha`` is drawn as normalised ``Gamma(alpha, 1)`` variables;
``alpha = 1`` is uniform on the simplex, ``alpha < 1`` gives sparse, nearly deterministic
tables (useful to approach the equality cases of the bounds), ``alpha > 1`` gives
near-uniform ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..config import check_rng

__all__ = [
    "random_joint",
    "random_joints",
    "random_conditional",
    "random_markov_chain",
    "random_markov_chains",
]


def _check_shape(shape: Sequence[int], name: str = "shape") -> tuple[int, ...]:
    out = tuple(int(s) for s in shape)
    if len(out) == 0 or any(s < 1 for s in out):
        raise ValueError(f"{name} must be a non-empty sequence of positive sizes; got {shape!r}")
    return out


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not alpha > 0:
        raise ValueError(f"Dirichlet concentration alpha must be > 0; got {alpha!r}")
    return alpha


def _dirichlet_last_axis(
    rng: np.random.Generator, size: tuple[int, ...], alpha: float, mask: np.ndarray | None = None
) -> np.ndarray:
    """Dirichlet(alpha) along the last axis of an array of shape ``size``.

    ``mask`` (broadcastable to ``size``) restricts the support; cells outside it are 0.
    Rows whose gamma draws all underflow to 0 (possible for tiny ``alpha``) get their
    mass on one uniformly chosen allowed cell, which is the ``alpha -> 0`` limit.
    """
    g = rng.gamma(alpha, 1.0, size=size)
    if mask is not None:
        g = np.where(mask, g, 0.0)
    tot = g.sum(axis=-1, keepdims=True)
    bad = tot[..., 0] <= 0
    if np.any(bad):
        allowed = np.ones(size, dtype=bool) if mask is None else np.broadcast_to(mask, size)
        u = rng.random(size) * allowed  # random positive score on allowed cells
        pick = np.argmax(u, axis=-1)
        onehot = np.zeros(size)
        np.put_along_axis(onehot, pick[..., None], 1.0, axis=-1)
        g = np.where(bad[..., None], onehot, g)
        tot = g.sum(axis=-1, keepdims=True)
    return g / tot


def random_joint(rng: np.random.Generator, shape: Sequence[int], alpha: float = 1.0) -> np.ndarray:
    r"""One random joint table :math:`p \sim \mathrm{Dirichlet}(\alpha\mathbf 1)` over all cells.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    shape : sequence of int
        Table shape, e.g. ``(3, 2, 4)`` for ``p[a, b, c]``.
    alpha : float
        Dirichlet concentration (``1`` = uniform on the simplex).

    Returns
    -------
    numpy.ndarray, shape ``shape``
        Non-negative, sums to 1 (to about ``1e-16``).


    Used in: :ref:`ch-transitive`
    """
    check_rng(rng)
    shp = _check_shape(shape)
    flat = _dirichlet_last_axis(rng, (int(np.prod(shp)),), _check_alpha(alpha))
    return flat.reshape(shp)


def random_joints(
    rng: np.random.Generator,
    n: int,
    shape: Sequence[int],
    alpha: float = 1.0,
    min_shape: Sequence[int] | None = None,
) -> np.ndarray:
    r"""A batch of ``n`` independent random joint tables, optionally with random sizes.

    Each table is :math:`\mathrm{Dirichlet}(\alpha\mathbf 1)` over its cells. With
    ``min_shape``, table ``m`` first draws its own alphabet sizes
    :math:`|A_m| \in \{\text{min}_0,\dots,\text{shape}_0\}` (and so on, uniformly and
    independently per axis) and is zero-padded to ``shape``. Zero padding changes no
    entropy or mutual information, so a batch with mixed alphabet sizes can be checked in
    one vectorised call.

    Parameters
    ----------
    rng : numpy.random.Generator
    n : int
        Number of tables ``M``.
    shape : sequence of int
        (Maximum) table shape, e.g. ``(4, 4, 4)``.
    alpha : float
        Dirichlet concentration.
    min_shape : sequence of int, optional
        Smallest alphabet sizes, e.g. ``(2, 2, 2)``; ``None`` means every table uses the
        full ``shape``.

    Returns
    -------
    numpy.ndarray, shape ``[M, *shape]``


    Used in: :ref:`ch-transitive`
    """
    check_rng(rng)
    shp = _check_shape(shape)
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be >= 1; got {n}")
    alpha = _check_alpha(alpha)
    mask = None
    if min_shape is not None:
        lo = _check_shape(min_shape, "min_shape")
        if len(lo) != len(shp) or any(a > b for a, b in zip(lo, shp)):
            raise ValueError(
                f"min_shape {lo} must have one entry per axis of shape {shp}, each <= it"
            )
        mask = np.ones((n,) + shp, dtype=bool)
        for ax, (a, b) in enumerate(zip(lo, shp)):
            sizes = rng.integers(a, b + 1, size=n)
            idx_shape = [1] * (len(shp) + 1)
            idx_shape[ax + 1] = b
            ar = np.arange(b).reshape(idx_shape)
            mask &= ar < sizes.reshape((n,) + (1,) * len(shp))
        mask = mask.reshape(n, -1)
    flat = _dirichlet_last_axis(rng, (n, int(np.prod(shp))), alpha, mask)
    return flat.reshape((n,) + shp)


def random_conditional(
    rng: np.random.Generator,
    num_condition: int,
    num_outcome: int,
    alpha: float = 1.0,
    n: int | None = None,
) -> np.ndarray:
    r"""A random conditional table (channel) :math:`q(o\mid c)`, rows i.i.d. Dirichlet.

    Parameters
    ----------
    rng : numpy.random.Generator
    num_condition : int
        Number of conditioning values (rows).
    num_outcome : int
        Number of outcomes (columns).
    alpha : float
        Dirichlet concentration of every row.
    n : int, optional
        Batch size; ``None`` returns a single table.

    Returns
    -------
    numpy.ndarray, shape ``[num_condition, num_outcome]`` (or ``[n, num_condition, num_outcome]``)
        Every row sums to 1. Example: ``q_z_given_x = random_conditional(rng, n_x, n_z)``.


    Used in: :ref:`ch-transitive`
    """
    check_rng(rng)
    nc, no = _check_shape((num_condition, num_outcome), "(num_condition, num_outcome)")
    size = (nc, no) if n is None else (int(n), nc, no)
    return _dirichlet_last_axis(rng, size, _check_alpha(alpha))


def random_markov_chain(
    rng: np.random.Generator, shape: Sequence[int] = (3, 3, 3), alpha: float = 1.0
) -> np.ndarray:
    r"""A random Markov chain :math:`A \to B \to C` as a joint table ``p[a, b, c]``.

    .. math:: p(a,b,c) = p(a)\,p(b\mid a)\,p(c\mid b),

    with :math:`p(a)` and every row of :math:`p(b\mid a)`, :math:`p(c\mid b)` drawn from
    :math:`\mathrm{Dirichlet}(\alpha\mathbf 1)`. Hence :math:`I(A;C\mid B)=0` exactly.

    Parameters
    ----------
    rng : numpy.random.Generator
    shape : (int, int, int)
        Alphabet sizes ``(|A|, |B|, |C|)``.
    alpha : float
        Dirichlet concentration.

    Returns
    -------
    numpy.ndarray, shape ``[A, B, C]``


    Used in: :ref:`ch-transitive`
    """
    return random_markov_chains(rng, 1, shape, alpha)[0]


def random_markov_chains(
    rng: np.random.Generator, n: int, shape: Sequence[int] = (3, 3, 3), alpha: float = 1.0
) -> np.ndarray:
    r"""A batch of ``n`` random Markov chains :math:`A\to B\to C` (see :func:`random_markov_chain`).

    Parameters
    ----------
    rng : numpy.random.Generator
    n : int
        Number of chains ``M``.
    shape : (int, int, int)
        Alphabet sizes.
    alpha : float
        Dirichlet concentration.

    Returns
    -------
    numpy.ndarray, shape ``[M, A, B, C]``


    Used in: :ref:`ch-transitive`
    """
    check_rng(rng)
    a, b, c = _check_shape(shape) if len(tuple(shape)) == 3 else _bad_chain_shape(shape)
    alpha = _check_alpha(alpha)
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be >= 1; got {n}")
    p_a = _dirichlet_last_axis(rng, (n, a), alpha)
    p_b_a = _dirichlet_last_axis(rng, (n, a, b), alpha)
    p_c_b = _dirichlet_last_axis(rng, (n, b, c), alpha)
    return p_a[:, :, None, None] * p_b_a[:, :, :, None] * p_c_b[:, None, :, :]


def _bad_chain_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    raise ValueError(f"a chain A -> B -> C needs shape (|A|, |B|, |C|); got {tuple(shape)!r}")
