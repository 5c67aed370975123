"""Disentanglement metrics: MIG, DCI, SAP, FactorVAE and BetaVAE scores.

Definitions follow google-research/disentanglement_lib (see :ref:`appendix-metrics`).
Arrays are **sample-major**: ``codes`` ``[N, D]`` (float), ``factors`` ``[N, K]`` (integer
class indices). Each metric is a pure function with an explicit random state, split into a
numeric core on arrays and a sampling wrapper:

* array metrics: :func:`mig`, :func:`dci`, :func:`sap` (cores: :func:`.mig_from_mutual_info`,
  :func:`.dci_from_importance`, :func:`.sap_from_score_matrix`);
* sampling metrics, which need fresh samples with one factor held fixed:
  :func:`.factor_vae_score`, :func:`.beta_vae_score` (cores: :func:`.factor_vae_from_votes`,
  :func:`.beta_vae_from_features`), fed by a :class:`.GroundTruthSampler`;
* :class:`.GridEncoder` encodes a dataset's factor grid once and serves codes by lookup;
* :func:`representation` encodes observations to posterior means, choosing the layer(s) of a
  hierarchical model;
* :func:`~hvae_lib.metrics.suite.evaluate_metrics` runs all five.
"""

from __future__ import annotations

from .beta_vae import beta_vae_features, beta_vae_from_features, beta_vae_score
from .dci import IMPORTANCE_METHODS, DCIScores, dci, dci_from_importance, importance_matrix
from .discrete import (
    discrete_entropy,
    discrete_mutual_info,
    histogram_discretize,
    plugin_mutual_info,
)
from .factor_vae import factor_vae_from_votes, factor_vae_score, factor_vae_votes, prune_dims
from .mig import mig, mig_from_mutual_info
from .probes import linear_probe_accuracy
from .representation import LAYER_CHOICES, representation
from .sampling import (
    GridEncoder,
    GroundTruthData,
    GroundTruthSampler,
    SyntheticFactors,
    sample_codes_and_factors,
)
from .sap import sap, sap_from_score_matrix, sap_score_matrix
from .suite import evaluate_metrics

__all__ = [
    "mig",
    "mig_from_mutual_info",
    "linear_probe_accuracy",
    "dci",
    "dci_from_importance",
    "importance_matrix",
    "DCIScores",
    "IMPORTANCE_METHODS",
    "sap",
    "sap_score_matrix",
    "sap_from_score_matrix",
    "factor_vae_score",
    "factor_vae_votes",
    "factor_vae_from_votes",
    "prune_dims",
    "beta_vae_score",
    "beta_vae_features",
    "beta_vae_from_features",
    "histogram_discretize",
    "discrete_mutual_info",
    "discrete_entropy",
    "plugin_mutual_info",
    "representation",
    "LAYER_CHOICES",
    "GroundTruthData",
    "GroundTruthSampler",
    "SyntheticFactors",
    "GridEncoder",
    "sample_codes_and_factors",
    "evaluate_metrics",
]
