"""All five metrics on one representation, with the study budgets by default."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..config import check_rng
from .beta_vae import beta_vae_score
from .dci import ImportanceMethod, dci
from .factor_vae import factor_vae_score
from .mig import mig
from .sampling import GroundTruthSampler, sample_codes_and_factors
from .sap import sap

__all__ = ["evaluate_metrics"]


def evaluate_metrics(
    sampler: GroundTruthSampler,
    *,
    rng: np.random.Generator,
    num_train: int = 10_000,
    num_test: int = 5_000,
    num_bins: int = 20,
    dci_importance: ImportanceMethod = "gbt",
    dci_num_train: int | None = None,
    dci_num_test: int | None = None,
    dci_n_jobs: int = 1,
    sap_continuous: bool = False,
    factor_vae_kwargs: dict[str, Any] | None = None,
    beta_vae_kwargs: dict[str, Any] | None = None,
    metrics: tuple[str, ...] = ("mig", "dci", "sap", "factor_vae", "beta_vae"),
) -> dict[str, dict[str, float]]:
    """Evaluate MIG, DCI, SAP, FactorVAE and BetaVAE on one representation.

    disentanglement_lib restarts ``RandomState(0)`` for every metric, so MIG, DCI and SAP see
    the same 10,000 training codes. Here one training set (``num_train``) and one test set
    (``num_test``) are drawn first and shared by MIG (train only), DCI and SAP; FactorVAE,
    BetaVAE and the classifiers of DCI and SAP get their own child generators
    (``rng.spawn(5)``: data, FactorVAE, BetaVAE, DCI, SAP).

    Parameters
    ----------
    sampler : GroundTruthSampler
        Preferably ``GridEncoder(...).sampler()`` (table lookups).
    rng : numpy.random.Generator
    num_train, num_test : int
        Study budgets 10,000 / 5,000.
    num_bins : int
        MIG histogram bins.
    dci_importance : {"gbt", "hist_gbt"}
        ``"gbt"`` is the faithful, slow default; ``"hist_gbt"`` the fast option.
    dci_num_train, dci_num_test : int or None
        Use only the first samples of the shared sets for DCI (a reduced budget; state it).
    dci_n_jobs : int
        Factors fitted in parallel by DCI.
    sap_continuous : bool
        SAP variant (study: discrete).
    factor_vae_kwargs, beta_vae_kwargs : dict or None
        Extra keyword arguments (budgets) for those scores.
    metrics : tuple of str
        Subset of metrics to compute.

    Returns
    -------
    dict
        ``{"mig": {"discrete_mig"}, "dci": {...}, "sap": {"SAP_score"},
        "factor_vae": {...}, "beta_vae": {...}, "seconds": {metric: wall time}}``.


    Used in: :ref:`appendix-metrics`
    """
    unknown = set(metrics) - {"mig", "dci", "sap", "factor_vae", "beta_vae"}
    if unknown:
        raise ValueError(f"unknown metric(s) {sorted(unknown)}")
    # the first three children are those of rng.spawn(3): adding DCI's and SAP's kept the rest
    data_rng, fvae_rng, bvae_rng, dci_rng, sap_rng = check_rng(rng).spawn(5)
    out: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    z_tr, v_tr = sample_codes_and_factors(sampler, num_train, data_rng)
    z_te, v_te = sample_codes_and_factors(sampler, num_test, data_rng)
    seconds["sampling"] = time.perf_counter() - t0

    if "mig" in metrics:
        t0 = time.perf_counter()
        out["mig"] = {"discrete_mig": mig(z_tr, v_tr, num_bins=num_bins)}
        seconds["mig"] = time.perf_counter() - t0
    if "dci" in metrics:
        t0 = time.perf_counter()
        ntr = dci_num_train or num_train
        nte = dci_num_test or num_test
        out["dci"] = dci(
            z_tr[:ntr],
            v_tr[:ntr],
            z_te[:nte],
            v_te[:nte],
            rng=dci_rng,
            importance=dci_importance,
            n_jobs=dci_n_jobs,
        )
        seconds["dci"] = time.perf_counter() - t0
    if "sap" in metrics:
        t0 = time.perf_counter()
        out["sap"] = {
            "SAP_score": sap(z_tr, v_tr, z_te, v_te, continuous=sap_continuous, rng=sap_rng)
        }
        seconds["sap"] = time.perf_counter() - t0
    if "factor_vae" in metrics:
        t0 = time.perf_counter()
        out["factor_vae"] = factor_vae_score(*sampler, rng=fvae_rng, **(factor_vae_kwargs or {}))
        seconds["factor_vae"] = time.perf_counter() - t0
    if "beta_vae" in metrics:
        t0 = time.perf_counter()
        out["beta_vae"] = beta_vae_score(*sampler, rng=bvae_rng, **(beta_vae_kwargs or {}))
        seconds["beta_vae"] = time.perf_counter() - t0
    out["seconds"] = seconds
    return out
