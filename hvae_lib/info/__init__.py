"""Information theory for the book: exact discrete quantities, Gaussian closed forms,
variational MI estimators, and the transitive-information checks T1–T3.

T1–T3 are our formalisation, consistent with the abstract of Ngo et al.,
*The Transitive Information Theory and its Application to Deep Generative Models*
(arXiv:2203.05074); they are not the paper's own theorem statements.

Submodules
----------
discrete
    ``entropy``, ``conditional_entropy``, ``mutual_information``,
    ``conditional_mutual_information``, ``co_information``, ``kl_divergence`` (numpy, nats;
    ``base=2`` for bits), with input validation.
random_tables
    Dirichlet samplers of joint tables, conditionals and Markov chains (vectorised).
transitive
    ``transitive_bounds`` (T1, T2) and its batch version, ``conditional_prior_rate_identity``
    (T3), ``prior_rate_decomposition`` (standard VAE rate).
aggregate
    ``aggregate_information``: I(X;Z), I(Z;U) and the rate of a trained Gaussian encoder
    with exact mixture densities of the aggregate posterior (chapter 2).
gaussian
    ``gaussian_mutual_information``, ``gaussian_markov_chain``, ``gaussian_pair_sampler``.
estimators
    Barber–Agakov, InfoNCE, NWJ and MINE estimators trained with torch.


Used in: :ref:`ch-transitive`
"""

from __future__ import annotations

from .aggregate import (
    AggregateInformation,
    aggregate_information,
    diag_gaussian_log_density_matrix,
    mixture_log_density,
)
from .discrete import (
    SUM_TOL,
    co_information,
    conditional_entropy,
    conditional_mutual_information,
    entropy,
    kl_divergence,
    mutual_information,
    validate_conditional,
    validate_joint,
)
from .estimators import (
    ConcatCritic,
    MIEstimate,
    SeparableCritic,
    barber_agakov_estimate,
    dv_lower_bound,
    infonce_estimate,
    infonce_lower_bound,
    mine_estimate,
    nwj_estimate,
    nwj_lower_bound,
)
from .gaussian import (
    GaussianChain,
    correlation_from_mi,
    gaussian_entropy,
    gaussian_markov_chain,
    gaussian_mutual_information,
    gaussian_pair_sampler,
    mi_from_correlation,
)
from .random_tables import (
    random_conditional,
    random_joint,
    random_joints,
    random_markov_chain,
    random_markov_chains,
)
from .transitive import (
    MARKOV_TOL,
    PriorRateDecomposition,
    RateIdentity,
    TransitiveBounds,
    chain_joint,
    conditional_prior_rate_identity,
    conditional_prior_rate_identity_batch,
    labelled_joint,
    prior_rate_decomposition,
    transitive_bounds,
    transitive_bounds_batch,
)

__all__ = [
    # aggregate posterior
    "AggregateInformation",
    "aggregate_information",
    "diag_gaussian_log_density_matrix",
    "mixture_log_density",
    # discrete
    "SUM_TOL",
    "validate_joint",
    "validate_conditional",
    "entropy",
    "conditional_entropy",
    "mutual_information",
    "conditional_mutual_information",
    "co_information",
    "kl_divergence",
    # random tables
    "random_joint",
    "random_joints",
    "random_conditional",
    "random_markov_chain",
    "random_markov_chains",
    # transitive information
    "MARKOV_TOL",
    "TransitiveBounds",
    "transitive_bounds",
    "transitive_bounds_batch",
    "RateIdentity",
    "labelled_joint",
    "chain_joint",
    "conditional_prior_rate_identity",
    "conditional_prior_rate_identity_batch",
    "PriorRateDecomposition",
    "prior_rate_decomposition",
    # gaussian
    "gaussian_entropy",
    "gaussian_mutual_information",
    "mi_from_correlation",
    "correlation_from_mi",
    "GaussianChain",
    "gaussian_markov_chain",
    "gaussian_pair_sampler",
    # estimators
    "MIEstimate",
    "SeparableCritic",
    "ConcatCritic",
    "infonce_lower_bound",
    "nwj_lower_bound",
    "dv_lower_bound",
    "infonce_estimate",
    "nwj_estimate",
    "mine_estimate",
    "barber_agakov_estimate",
]
