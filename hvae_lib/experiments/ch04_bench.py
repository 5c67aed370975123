r"""Chapter 4's test bench: one data split, one scoring classifier and one set of requests,
shared by the six pages of the SemafoVAE part, and the models' training and evaluation.

* :class:`SemafoBench` — built by :meth:`SemafoBench.prepare` from a profile's settings and the
  notebook's :class:`~hvae_lib.config.RunContext`; :meth:`~SemafoBench.fit_semafo`,
  :meth:`~SemafoBench.fit_vae`, :meth:`~SemafoBench.fit_m2` train (or load from the result
  cache) one model of one **replicate**; :meth:`~SemafoBench.evaluate` and
  :meth:`~SemafoBench.evaluate_vae` give its row of the evaluation table; with
  ``figures=False`` (the rows of the seed replicates, the sweep and the ablations) the row is
  read from the result cache when the same weights were scored by the same code before.
* :data:`TABLE_MODELS` — the seven rows of the seeded evaluation table.

Replicates [ours]: replicate ``r`` trains with the seed ``SEED + r`` (initialisation,
minibatch order, noise) and labels the subset drawn with the authors' label seed ``1 + r``
(another labelled tenth). The test split, the scoring classifier, the requests and the
evaluation's random numbers stay those of ``SEED``, so the replicates differ only in what is
trained, and every model is scored with the same random numbers (common random numbers).

Used in: :ref:`ch-semafovae`, :ref:`ch-semafovae-evaluation`, :ref:`ch-semafovae-seeds`,
:ref:`ch-semafovae-verdicts`, :ref:`ch-semafovae-labels`
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..analysis import (
    ControllabilityResult,
    FactorClassifier,
    FactorClassifierConfig,
    SeedInterval,
    active_units,
    classifier_frechet_distance,
    conditional_samples,
    controllability,
    evaluate_semisupervised,
    evaluate_vae,
    fit_factor_classifier,
    mean_interval,
    reconstructions,
    sample_factor_requests,
)
from ..config import RunContext, library_source_digest
from ..distributions import split_blocks
from ..metrics import dci, linear_probe_accuracy, mig, representation, sap
from ..models import M2VAE, BetaVAE, M2Config, SemafoVAE, build_semafo
from ..models.semafo import SemafoConfig
from ..objectives import M2LossConfig, vae_loss
from ..objectives.semafo import SemafoLossConfig
from ..train import TrainConfig, TrainResult, fit, fit_semisupervised
from ..train.loop import ResultCache, fingerprint
from ..train.semisup import SemiSupervisedConfig
from .ch04_semafovae import SemafoSettings, SemiSupervisedData, load_semafo_data

__all__ = [
    "TABLE_MODELS",
    "TABLE_METRICS",
    "SemafoBench",
    "seed_summary",
    "train_replicates",
    "replicate_frame",
    "write_rows",
    "read_rows",
]

#: The rows of the seeded evaluation table, in the order the chapter shows them.
TABLE_MODELS: tuple[str, ...] = (
    "SemafoVAE",
    "SemafoHVAE",
    "labels only",
    "authors' objective",
    "M2",
    "VAE",
    "β-VAE",
)

#: The columns whose seed intervals the table shows (row key -> column title).
TABLE_METRICS: dict[str, str] = {
    "control_mean": "control (means)",
    "elbo": "test ELBO",
    "log_px": "log p(x|z)",
    "dci_d": "DCI-D",
    "mig": "MIG",
}

# named streams of the run context (offsets of RunContext.rng / RunContext.generator)
_DATA, _REQUESTS, _CODES, _DCI, _SAP = 1, 2, 3, 5, 6
_ELBO, _SAMPLES, _SHUFFLE = 10, 17, 23


@dataclass
class SemafoBench:
    """What every notebook of chapter 4 scores its models with (see the module docstring).

    Attributes
    ----------
    settings : the profile's :class:`~hvae_lib.experiments.ch04_semafovae.SemafoSettings`.
    ctx : the notebook's run context (device, seed, named random streams).
    data : the train/test split (:func:`~hvae_lib.experiments.ch04_semafovae.load_semafo_data`).
    classifier : the factor classifier that scores controllability (trained on the training
        images; through the result cache, so the first notebook trains it).
    requested : ``int [num_generated, K]`` factor requests, uniform and independent
        (:func:`~hvae_lib.analysis.sample_factor_requests`).
    code_subset : indices of the training codes used by MIG, DCI, SAP and the probes.

    Used in: :ref:`ch-semafovae`
    """

    settings: SemafoSettings
    ctx: RunContext
    data: SemiSupervisedData
    classifier: FactorClassifier
    classifier_result: TrainResult
    requested: np.ndarray
    code_subset: np.ndarray

    @classmethod
    def prepare(
        cls, settings: SemafoSettings, ctx: RunContext, *, progress: bool = True
    ) -> SemafoBench:
        """Load the data, fit (or load) the factor classifier and draw the requests."""
        data = load_semafo_data(
            settings.dataset,
            settings.test_fraction,
            ctx.rng(_DATA),
            num_images=settings.num_images,
        )
        clf_cfg = FactorClassifierConfig(
            input_shape=tuple(data.x_train.shape[1:]),
            factor_sizes=data.factor_sizes,
            train=TrainConfig(
                steps=settings.classifier_steps,
                batch_size=64,
                lr=settings.classifier_lr,
                seed=ctx.seed,
                log_every=100,
            ),
        )
        classifier, clf_res = fit_factor_classifier(
            data.x_train,
            data.f_train,
            clf_cfg,
            key=data.description,
            device=ctx.device,
            progress=progress,
        )
        classifier.eval()
        requested = sample_factor_requests(
            data.factor_sizes, settings.num_generated, ctx.rng(_REQUESTS)
        )
        subset = ctx.rng(_CODES).permutation(len(data.f_train))[: settings.metric_codes]
        return cls(settings, ctx, data, classifier, clf_res, requested, subset)

    # ------------------------------------------------------------------ configurations
    @property
    def names(self) -> tuple[str, ...]:
        """The factor names ``[K]``."""
        return self.data.factor_names

    @property
    def sizes(self) -> tuple[int, ...]:
        """The factor sizes ``[K]``."""
        return self.data.factor_sizes

    def semisup(
        self, replicate: int = 0, fraction: float | None = None, steps: int | None = None
    ) -> SemiSupervisedConfig:
        """The semi-supervised settings of ``replicate`` (seed ``SEED + r``, label seed
        ``label_seed + r``), optionally at another label fraction or step count."""
        r = _check_replicate(replicate)
        cfg = self.settings.semisup(fraction)
        train = cfg.train.replace(seed=self.ctx.seed + r)
        if steps is not None:
            train = train.replace(steps=int(steps))
        return cfg.replace(train=train, label_seed=self.settings.label_seed + r)

    @property
    def labels_only_loss(self) -> SemafoLossConfig:
        """The warm-up objective, labelled images only, for the whole budget (step 2's model)."""
        return self.settings.loss.replace(warmup_steps=self.settings.train.steps)

    def table_spec(self, name: str) -> tuple[str, Any, Any]:
        """``(kind, model config, loss config)`` of a row of :data:`TABLE_MODELS`."""
        s = self.settings
        specs: dict[str, tuple[str, Any, Any]] = {
            "SemafoVAE": ("semafo", s.flat, s.loss),
            "SemafoHVAE": ("semafo", s.hierarchical, s.loss),
            "labels only": ("semafo", s.flat, self.labels_only_loss),
            "authors' objective": ("semafo", s.flat, s.authors_loss),
            "M2": ("m2", None, None),
            "VAE": ("vae", 1.0, None),
            "β-VAE": ("vae", s.beta_vae_beta, None),
        }
        if name not in specs:
            raise ValueError(f"unknown table model {name!r}; valid: {', '.join(specs)}")
        return specs[name]

    # ------------------------------------------------------------------ training
    def fit_semafo(
        self,
        config: SemafoConfig,
        loss: SemafoLossConfig,
        *,
        replicate: int = 0,
        fraction: float | None = None,
        desc: str = "SemafoVAE",
    ) -> tuple[nn.Module, TrainResult]:
        """Train (or load) a SemafoVAE/SemafoHVAE of ``replicate`` (see :meth:`semisup`)."""
        return fit_semisupervised(
            lambda: build_semafo(config),
            self.data.x_train,
            self.data.f_train,
            self.semisup(replicate, fraction),
            loss,
            key={"model": config, "data": self.data.description},
            device=self.ctx.device,
            desc=desc,
        )

    def fit_vae(
        self, beta: float, *, replicate: int = 0, desc: str = "VAE"
    ) -> tuple[nn.Module, TrainResult]:
        """Train (or load) the VAE (``beta = 1``) or β-VAE baseline of ``replicate``: the
        SemafoVAE image model's encoder and decoder, same steps and batch, Adam at
        ``baseline_lr``."""
        s = self.settings
        cfg = s.train.replace(seed=self.ctx.seed + _check_replicate(replicate), lr=s.baseline_lr)
        return fit(
            lambda: BetaVAE(s.flat.vae),
            self.data.x_train,
            vae_loss(float(beta)),
            cfg,
            key={"model": s.flat.vae, "beta": float(beta), "data": self.data.description},
            device=self.ctx.device,
            desc=desc,
        )

    @property
    def m2_config(self) -> M2Config:
        """M2 on the same image model, the same factors and relaxation temperature."""
        s = self.settings
        return M2Config(vae=s.flat.vae, factor_sizes=self.sizes, temperature=s.flat.temperature)

    def fit_m2(self, *, replicate: int = 0, desc: str = "M2") -> tuple[nn.Module, TrainResult]:
        """Train (or load) M2 of ``replicate`` with the same labelled subset, batch
        composition and warm-up as SemafoVAE."""
        cfg = self.m2_config
        return fit_semisupervised(
            lambda: M2VAE(cfg),
            self.data.x_train,
            self.data.f_train,
            self.semisup(replicate),
            M2LossConfig(warmup_steps=self.settings.loss.warmup_steps),
            key={"model": cfg, "data": self.data.description},
            device=self.ctx.device,
            desc=desc,
        )

    def fit_table_model(self, name: str, replicate: int = 0) -> tuple[nn.Module, TrainResult]:
        """Train (or load) the row ``name`` of :data:`TABLE_MODELS` for ``replicate``."""
        kind, cfg, loss = self.table_spec(name)
        desc = f"{name}, replicate {replicate}"
        if kind == "semafo":
            return self.fit_semafo(cfg, loss, replicate=replicate, desc=desc)
        if kind == "m2":
            return self.fit_m2(replicate=replicate, desc=desc)
        return self.fit_vae(cfg, replicate=replicate, desc=desc)

    def table_row(self, name: str, replicate: int = 0) -> dict[str, Any]:
        r"""Train (or load) and evaluate the row ``name`` of ``replicate``; the explaining
        extras (linear probes, M2's DCI on :math:`[z, q(y\mid x)]`) for replicate 0 only."""
        model, res = self.fit_table_model(name, replicate)
        extras = replicate == 0  # replicate 0 also draws the figures of its pages
        if self.table_spec(name)[0] == "vae":
            return self.evaluate_vae(name, model, res, extras=extras, figures=extras)
        return self.evaluate(name, model, res, extras=extras, figures=extras)

    # ------------------------------------------------------------------ the evaluation cache
    def _row_key(self, kind: str, name: str, model: nn.Module, extras: bool) -> str:
        """What a row depends on: the weights scored, the classifier that scores them, the
        settings and seed (the split, the requests, the named streams), the row's kind and
        options, and the library's source code (a changed metric recomputes every row)."""
        return ResultCache().key(
            "semafo-row",
            kind,
            name,
            bool(extras),
            self.settings,
            self.ctx.seed,
            str(self.ctx.device),
            _state_digest(model),
            _state_digest(self.classifier),
            library_source_digest(),
        )

    def _cached_row(
        self, kind: str, name: str, model: nn.Module, extras: bool, compute: Any
    ) -> dict[str, Any]:
        """``compute()``'s row without its figure-only keys (``_*``), through the result
        cache: ``root/rows/KEY.json`` (stored unless the cache is off; read unless it is off
        or write-only). A cached row equals a computed one key for key (NaN as NaN)."""
        cache = ResultCache()
        key = self._row_key(kind, name, model, extras)
        path = cache.root / "rows" / f"{key}.json"
        if cache.enabled and not cache.write_only:
            try:
                return {k: _restored(v) for k, v in json.loads(path.read_text()).items()}
            except (OSError, json.JSONDecodeError):
                pass  # a miss or a damaged entry: compute and overwrite
        row = {k: _jsonable(v) for k, v in compute().items() if not k.startswith("_")}
        if cache.enabled:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(row))
            tmp.replace(path)
        return {k: _restored(v) for k, v in row.items()}

    # ------------------------------------------------------------------ scoring
    def controls(
        self, model: nn.Module, *, mean: bool
    ) -> tuple[ControllabilityResult, torch.Tensor]:
        """Controllability on the bench's requests: images ``[M, C, H, W]`` generated for them
        (every latent sampled, or at its mean), scored by the factor classifier modulo the
        shapes' symmetry. The latents come from one named stream, the same for every model."""
        images = conditional_samples(model, self.requested, self.ctx.generator(_SAMPLES), mean=mean)
        return (
            controllability(
                self.classifier, images, self.requested, self.names, symmetry=self.data.symmetry
            ),
            images,
        )

    def recon_ceiling(self, model: nn.Module) -> float:
        """The model's own ceiling: its reconstructions of held-out images scored against
        their factors."""
        recon = reconstructions(model, self.data.x_test)
        return controllability(
            self.classifier, recon, self.data.f_test, self.names, symmetry=self.data.symmetry
        ).mean

    def codes(self, model: nn.Module) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Posterior means of the top latent (:math:`z_0`, M2's :math:`z`, the VAE's
        :math:`z`): ``(train codes [n, D], their factors [n, K], test codes [M, D])``."""
        enc = model if hasattr(model, "posterior_means") else (lambda x: model.encode(x)[0])
        sub = self.code_subset
        dev = self.ctx.device
        return (
            representation(enc, self.data.x_train[sub].float(), device=dev),
            self.data.f_train[sub],
            representation(enc, self.data.x_test.float(), device=dev),
        )

    def m2_label_codes(self, model: M2VAE) -> tuple[np.ndarray, np.ndarray]:
        r"""M2's :math:`[z, q(y\mid x)]`: posterior means of :math:`z` beside the classifier's
        probabilities ``[*, D + d_y]`` (train subset, test), because M2's decoder reads
        :math:`y` directly and its :math:`z` need not hold the label at all."""

        @torch.no_grad()
        def enc(x: torch.Tensor) -> torch.Tensor:
            logits = model.classifier(model.features(x))
            probs = [b.softmax(-1) for b in split_blocks(logits, model.factor_sizes)]
            return torch.cat([model.posterior_means(x), *probs], dim=-1)

        dev = self.ctx.device
        return (
            representation(enc, self.data.x_train[self.code_subset].float(), device=dev),
            representation(enc, self.data.x_test.float(), device=dev),
        )

    def _metrics(
        self, z_tr: np.ndarray, f_tr: np.ndarray, z_te: np.ndarray, *, probes: bool = True
    ) -> dict[str, Any]:
        s = self.settings
        d = dci(
            z_tr,
            f_tr,
            z_te,
            self.data.f_test,
            rng=self.ctx.rng(_DCI),  # the same classifier seeds for every model
            importance=s.dci_importance,
            num_stages=s.dci_stages,
        )
        return dict(
            mig=mig(z_tr, f_tr),
            dci_d=d["disentanglement"],
            dci_c=d["completeness"],
            dci_i=d["informativeness_test"],
            sap=sap(z_tr, f_tr, z_te, self.data.f_test, rng=self.ctx.rng(_SAP)),
            probe=(
                linear_probe_accuracy(z_tr, f_tr, z_te, self.data.f_test)
                if probes
                else np.full(len(self.sizes), np.nan)
            ),
        )

    def evaluate(
        self,
        name: str,
        model: nn.Module,
        result: TrainResult | None = None,
        *,
        extras: bool = True,
        figures: bool = True,
    ) -> dict[str, Any]:
        r"""One row of the evaluation table for a semi-supervised model (SemafoVAE/HVAE, M2).

        Keys: ``elbo``, ``log_px``, ``rate`` (nats per image); the test rate's parts
        ``kl_z0``, ``kl_u``, ``kl_z1``, ``nll_y`` (:math:`-\log p(y\mid u)`, for M2
        :math:`-\log p(y)`) and ``entropy`` (:math:`H[q(y\mid\cdot)]`); ``acc_qy``,
        ``acc_py``; ``control_sampled``, ``control_mean``, ``control_recon``; ``fd_cls``
        (generated for the bench's requests, latents sampled); ``mig``, ``dci_*``, ``sap``,
        ``probe`` (``[K]`` linear probes on the top latent); for M2 also ``dci_zy_d`` (DCI on
        :math:`[z, q(y\mid x)]`); ``active``, ``train_s``; and ``_ev``, ``_control``,
        ``_control_s``, ``_images_mean`` for figures. ``extras=False`` skips the probes (NaN)
        and M2's second DCI, which cost about 4 s and 7 s a row on a CPU core.
        ``figures=False`` drops the ``_*`` keys, lists come back as lists, and the row goes
        through the result cache (the same weights, settings and code score once).
        """
        if not figures:
            return self._cached_row(
                "semisup",
                name,
                model,
                extras,
                lambda: self.evaluate(name, model, result, extras=extras, figures=True),
            )
        ev = evaluate_semisupervised(
            model, self.data.x_test, self.data.f_test, generator=self.ctx.generator(_ELBO)
        )
        c_s, imgs = self.controls(model, mean=False)
        c_m, imgs_m = self.controls(model, mean=True)
        # the negative control: the same images scored against a request they ignore (one
        # shuffle, the same for every model)
        shuffled = self.requested[self.ctx.rng(_SHUFFLE).permutation(len(self.requested))]
        ignore = controllability(
            self.classifier, imgs_m, shuffled, self.names, symmetry=self.data.symmetry
        )
        z_tr, f_tr, z_te = self.codes(model)
        semafo = isinstance(model, SemafoVAE)
        t = ev.terms
        row: dict[str, Any] = dict(
            model=name,
            elbo=ev.elbo,
            log_px=ev.log_px,
            rate=ev.rate,
            kl_z0=t["kl_z0"] if semafo else t["kl_z"],
            kl_u=t["kl_u"] if semafo else np.nan,
            kl_z1=t["kl_z1"] if semafo else np.nan,
            nll_y=-(t["log_py_u"] if semafo else t["log_py"]),
            entropy=t["entropy_qy"],
            acc_qy=float(ev.acc_qy.mean()),
            acc_py=float(ev.acc_py.mean()) if ev.acc_py is not None else np.nan,
            control_sampled=c_s.mean,
            control_mean=c_m.mean,
            control_recon=self.recon_ceiling(model),
            fd_cls=classifier_frechet_distance(self.classifier, self.data.x_test, imgs),
            **self._metrics(z_tr, f_tr, z_te),
            active=int(active_units(ev.mu).sum()),
            train_s=result.seconds if result is not None else np.nan,
            control_ignore=ignore.mean,
            control_chance=c_m.mean_chance,
            control_per_factor=c_m.per_factor.tolist(),
            chance_per_factor=np.asarray(c_m.chance).tolist(),
            _ev=ev,
            _control=c_m,
            _control_s=c_s,
            _images_mean=imgs_m,
        )
        if isinstance(model, M2VAE):
            row["dci_zy_d"] = np.nan
            if extras:
                zy_tr, zy_te = self.m2_label_codes(model)
                row["dci_zy_d"] = self._metrics(zy_tr, f_tr, zy_te, probes=False)["dci_d"]
        return row

    def evaluate_vae(
        self,
        name: str,
        model: nn.Module,
        result: TrainResult | None = None,
        *,
        extras: bool = True,
        figures: bool = True,
    ) -> dict[str, Any]:
        """One row for an unconditional VAE / β-VAE: no labels and no requests, so the
        controllability columns are NaN and FD-cls scores as many unconditional samples as
        the requests. ``figures`` as in :meth:`evaluate` (this row has no figure keys; with
        ``False`` it goes through the result cache)."""
        if not figures:
            return self._cached_row(
                "vae",
                name,
                model,
                extras,
                lambda: self.evaluate_vae(name, model, result, extras=extras, figures=True),
            )
        ev = evaluate_vae(model, self.data.x_test, generator=self.ctx.generator(_ELBO))
        z_tr, f_tr, z_te = self.codes(model)
        samples = model.sample(len(self.requested), self.ctx.generator(_SAMPLES))
        return dict(
            model=name,
            elbo=ev.elbo,
            log_px=-ev.mean_distortion,
            rate=ev.mean_rate,
            kl_z0=ev.mean_rate,
            kl_u=np.nan,
            kl_z1=np.nan,
            nll_y=np.nan,
            entropy=np.nan,
            acc_qy=np.nan,
            acc_py=np.nan,
            control_sampled=np.nan,
            control_mean=np.nan,
            control_recon=self.recon_ceiling(model),
            fd_cls=classifier_frechet_distance(self.classifier, self.data.x_test, samples.cpu()),
            **self._metrics(z_tr, f_tr, z_te, probes=extras),
            active=int(active_units(ev.mu).sum()),
            train_s=result.seconds if result is not None else np.nan,
        )


def train_replicates(
    bench: SemafoBench, models: Sequence[str], replicates: Sequence[int]
) -> dict[str, dict[int, dict[str, Any]]]:
    """Train (or load) and evaluate each of ``models`` (names of :data:`TABLE_MODELS`) for each
    replicate: ``{model: {replicate: row}}``, in that order.

    Used in: :ref:`ch-semafovae-seeds`, :ref:`ch-semafovae-seeds-2`
    """
    return {m: {int(r): bench.table_row(m, int(r)) for r in replicates} for m in models}


def replicate_frame(rows: Mapping[str, Mapping[int, Mapping[str, Any]]]) -> Any:
    """A ``pandas.DataFrame`` with one line per (model, replicate) and the columns of
    :data:`TABLE_METRICS` plus the training time, for a page to display.

    Used in: :ref:`ch-semafovae-seeds`, :ref:`ch-semafovae-seeds-2`
    """
    import pandas as pd  # the book's extra, not the library's dependency

    records = [
        {
            "model": m,
            "replicate": r,
            **{title: float(row[key]) for key, title in TABLE_METRICS.items()},
            "train s": float(row["train_s"]),
        }
        for m, reps in rows.items()
        for r, row in reps.items()
    ]
    return pd.DataFrame(records).set_index(["model", "replicate"])


def _jsonable(v: Any) -> Any:
    if isinstance(v, (np.floating, float)):
        return float(v) if np.isfinite(v) else None
    if isinstance(v, (np.integer, int)) and not isinstance(v, bool):
        return int(v)
    if isinstance(v, np.ndarray):
        return [_jsonable(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def _restored(v: Any) -> Any:
    """The inverse of :func:`_jsonable` for a cached row: ``None`` back to NaN, in lists too."""
    if v is None:
        return np.nan
    if isinstance(v, list):
        return [_restored(x) for x in v]
    return v


def _state_digest(model: nn.Module) -> str:
    """:func:`~hvae_lib.train.loop.fingerprint` of a module's named parameters and buffers."""
    items = sorted(model.state_dict().items())
    return fingerprint([k for k, _ in items], *(v for _, v in items))


def write_rows(
    directory: Path, notebook: str, rows: Mapping[str, Mapping[int, Mapping[str, Any]]]
) -> Path:
    """Write evaluation rows ``{model: {replicate: row}}`` (their public keys: scalars and
    per-factor lists; NaN as ``null``) to ``directory/semafo_rows_<notebook>.json``, for the
    verdict notebook to read (:func:`read_rows`). Returns the file.

    Used in: :ref:`ch-semafovae-verdicts`
    """
    out = [
        {
            "model": name,
            "replicate": int(r),
            **{k: _jsonable(v) for k, v in row.items() if not k.startswith("_") and k != "model"},
        }
        for name, reps in rows.items()
        for r, row in reps.items()
    ]
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"semafo_rows_{notebook}.json"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"notebook": notebook, "rows": out}, indent=1))
    tmp.replace(path)
    return path


def read_rows(directory: Path) -> dict[str, dict[int, dict[str, Any]]]:
    """Every row written by :func:`write_rows` in ``directory``: ``{model: {replicate: row}}``
    (``null`` back to NaN). A row written twice (same model and replicate) must agree.

    Raises
    ------
    ValueError
        A file that is not a rows file (named), or two files disagreeing on a row.

    Used in: :ref:`ch-semafovae-verdicts`
    """
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for f in sorted(Path(directory).glob("semafo_rows_*.json")):
        try:
            rows = json.loads(f.read_text())["rows"]
            for row in rows:
                name, r = row.pop("model"), int(row.pop("replicate"))
                row = {k: (np.nan if v is None else v) for k, v in row.items()}
                seen = out.setdefault(name, {}).get(r)
                if seen is not None and seen.get("elbo") != row.get("elbo"):
                    raise ValueError(f"{f} disagrees with another file on {name!r} replicate {r}")
                out[name][r] = row
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{f} is not a rows file: {exc}") from exc
    return out


def _check_replicate(replicate: int) -> int:
    r = int(replicate)
    if r < 0 or r != replicate:
        raise ValueError(f"replicate must be a non-negative integer, got {replicate!r}")
    return r


def seed_summary(
    rows: Mapping[str, Sequence[Mapping[str, Any]]], key: str, level: float = 0.95
) -> dict[str, SeedInterval | None]:
    """Per model, the :func:`~hvae_lib.analysis.mean_interval` of ``key`` over its replicate
    rows (``None`` where the value is NaN, e.g. controllability of a VAE).

    Used in: :ref:`ch-semafovae-verdicts`
    """
    out: dict[str, SeedInterval | None] = {}
    for name, reps in rows.items():
        vals = np.array([float(r[key]) for r in reps], dtype=np.float64)
        out[name] = None if np.isnan(vals).any() else mean_interval(vals, level)
    return out
