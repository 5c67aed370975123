"""Analysis: evaluation of trained models, downstream probes and bounds, controllability,
traversals and the semi-supervised evaluation.

* :mod:`.evaluation` — rate, distortion, ELBO, active units, empirical entropy, the β sweep
  (:ref:`ch-rate-distortion`); optimal critics and binary chains
  (:ref:`ch-transitive`).
* :mod:`.downstream` — per-layer rates, PSNR, classifier probes, label information, the
  distortion and Fano bounds, the binomial tolerance and the per-budget frontier
  (:ref:`ch-rate-splitting`).
* :mod:`.controllability` — the factor classifier, controllability and Fréchet distances
  (:ref:`ch-semafovae`).
* :mod:`.semisup` — conditional samples, traversals, interventions and the semi-supervised
  evaluation (:ref:`ch-semafovae`).

The module :mod:`hvae_lib.analysis.controllability` and its function
:func:`~hvae_lib.analysis.controllability.controllability` share a name; the package exports
the function (``from hvae_lib.analysis import controllability``).
"""

from .controllability import (
    ControllabilityResult,
    FactorClassifier,
    FactorClassifierConfig,
    classifier_frechet_distance,
    controllability,
    factor_accuracy,
    factor_consistency,
    frechet_distance,
    train_factor_classifier,
)
from .downstream import (
    PROBES,
    BoundCheck,
    FanoCheck,
    LabelInformation,
    RateEvaluation,
    SampleScore,
    TopLayerCodes,
    best_per_budget,
    binomial_lower_limit,
    check_distortion_bound,
    check_fano_bound,
    distortion_lower_bound,
    evaluate_grid,
    evaluate_model,
    evaluate_rates,
    faithful_probe_accuracy,
    fano_f,
    fano_inverse,
    fit_image_classifier,
    gaussian_sse_lower_bound,
    inception_style_score,
    label_distribution,
    label_information,
    probe_accuracy,
    psnr,
    reconstruction_psnr,
    sample_quality,
    top_layer_codes,
)
from .evaluation import (
    BetaSweepConfig,
    BetaSweepResult,
    VAEEvaluation,
    active_units,
    beta_sweep,
    binary_symmetric_chain,
    check_rate_distortion_monotone,
    empirical_entropy,
    evaluate_vae,
    evaluate_with_labels,
    gaussian_pair_log_ratio,
    monte_carlo_rate,
    optimal_critic_values,
)
from .semisup import (
    SemiSupervisedEvaluation,
    conditional_samples,
    evaluate_semisupervised,
    intervene_z1,
    posterior_traversal,
    prior_traversal,
    traversal_smoothness,
    z1_kl_per_dim,
)

__all__ = [
    "VAEEvaluation",
    "evaluate_vae",
    "monte_carlo_rate",
    "empirical_entropy",
    "active_units",
    "BetaSweepConfig",
    "BetaSweepResult",
    "beta_sweep",
    "check_rate_distortion_monotone",
    "evaluate_with_labels",
    "gaussian_pair_log_ratio",
    "optimal_critic_values",
    "binary_symmetric_chain",
    "PROBES",
    "RateEvaluation",
    "evaluate_rates",
    "psnr",
    "reconstruction_psnr",
    "TopLayerCodes",
    "top_layer_codes",
    "probe_accuracy",
    "faithful_probe_accuracy",
    "label_distribution",
    "LabelInformation",
    "label_information",
    "SampleScore",
    "inception_style_score",
    "fit_image_classifier",
    "sample_quality",
    "fano_f",
    "fano_inverse",
    "distortion_lower_bound",
    "gaussian_sse_lower_bound",
    "BoundCheck",
    "check_distortion_bound",
    "FanoCheck",
    "check_fano_bound",
    "evaluate_model",
    "evaluate_grid",
    "binomial_lower_limit",
    "best_per_budget",
    "FactorClassifierConfig",
    "FactorClassifier",
    "train_factor_classifier",
    "factor_accuracy",
    "ControllabilityResult",
    "controllability",
    "frechet_distance",
    "classifier_frechet_distance",
    "factor_consistency",
    "conditional_samples",
    "prior_traversal",
    "intervene_z1",
    "z1_kl_per_dim",
    "traversal_smoothness",
    "posterior_traversal",
    "SemiSupervisedEvaluation",
    "evaluate_semisupervised",
]
