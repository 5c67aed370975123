"""Benchmark of the batched β-grid trainer and the grid evaluation (rate splitting).

Trains our CPU prototype (MLP hierarchical VAE, 35,184 parameters, σ = 0.1,
Adam 1e-3, batch 128) on scikit-learn digits (1,400 train / 397 test), first as one model
with :func:`hvae_lib.train.train`, then as a K×K grid with :func:`hvae_lib.train.train_grid`,
and prints the time per step, per model-step and the speed-up; the training throughput of the
authors' SVHN/CIFAR preset (475,811 parameters) at batch 256; then times the evaluation of
the whole grid (:func:`hvae_lib.analysis.evaluate_model`: test rates, PSNR, RBF-SVM and
logistic probes on μ2 and a sampled z2, MI, Fano bounds, IS with a pixel classifier).
Wall and CPU time are both reported: on a shared machine wall time exceeds CPU time / threads.

Target: the 7×7 grid at 2,000 steps in about a minute on 2 cores.

Usage::

    .venv/bin/python benchmarks/bench_ensemble.py [--threads 2] [--side 7] [--steps 2000]
        [--single-steps 300] [--no-eval]

Used in: README (benchmarks), :ref:`ch-rate-splitting` (the quick/full profile budget).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from hvae_lib.analysis import evaluate_model, fit_image_classifier  # noqa: E402
from hvae_lib.data import load_digits_dataset  # noqa: E402
from hvae_lib.models import HierarchicalVAE, paper_preset, prototype_preset  # noqa: E402
from hvae_lib.objectives import hierarchical_loss  # noqa: E402
from hvae_lib.train import (  # noqa: E402
    TrainConfig,
    beta_grid,
    build_seeded,
    log_spaced_betas,
    train,
    train_grid,
)


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(t: tuple[float, float]) -> tuple[float, float]:
    return time.perf_counter() - t[0], time.process_time() - t[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--side", type=int, default=7, help="grid side K (K×K members)")
    ap.add_argument("--steps", type=int, default=2000, help="grid training steps")
    ap.add_argument(
        "--single-steps", type=int, default=300, help="steps for the single-model timing"
    )
    ap.add_argument("--no-eval", action="store_true", help="skip the grid evaluation")
    ap.add_argument(
        "--paper-steps",
        type=int,
        default=20,
        help="training steps of the paper preset for the throughput figure (0: skip)",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, {os.cpu_count()} CPUs, "
        f"{torch.get_num_threads()} torch threads, load average {os.getloadavg()[0]:.2f}"
    )

    rng = np.random.default_rng(0)  # the script's one NumPy stream: split, then the probes
    d = load_digits_dataset()
    perm = rng.permutation(len(d.labels))
    te, tr = perm[:397], perm[397:]
    x = torch.from_numpy(d.images)
    xtr, xte, ytr, yte = x[tr], x[te], d.labels[tr], d.labels[te]
    cfg = prototype_preset()
    print(
        f"model: {HierarchicalVAE(cfg).num_parameters():,} parameters; data: {len(tr)} train / {len(te)} test"
    )

    tc1 = TrainConfig(steps=args.single_steps, batch_size=128, lr=1e-3, seed=0, log_every=100)
    model = build_seeded(lambda: HierarchicalVAE(cfg), 0)
    train(
        model, xtr, hierarchical_loss((1.0, 1.0)), tc1.replace(steps=20), progress=False
    )  # warm-up
    model = build_seeded(lambda: HierarchicalVAE(cfg), 0)
    t = _clock()
    train(model, xtr, hierarchical_loss((1.0, 1.0)), tc1, progress=False)
    wall1, cpu1 = _since(t)
    per_step1 = wall1 / args.single_steps
    print(
        f"1 model:   {1e3 * per_step1:7.2f} ms/step wall ({1e3 * cpu1 / args.single_steps:.2f} ms CPU), "
        f"{args.single_steps} steps"
    )

    values = log_spaced_betas(args.side)
    betas = beta_grid(values, values)
    g = len(betas)
    tc = TrainConfig(steps=args.steps, batch_size=128, lr=1e-3, seed=0, log_every=100)
    t = _clock()
    grid = train_grid(cfg, betas, xtr, tc, progress=False)
    wall, cpu = _since(t)
    per_step = wall / args.steps
    print(
        f"{args.side}x{args.side} grid: {1e3 * per_step:7.2f} ms/step wall ({1e3 * cpu / args.steps:.2f} ms CPU), "
        f"{1e3 * per_step / g:.3f} ms per model-step; {args.steps} steps in {wall:.1f} s wall / {cpu:.1f} s CPU; "
        f"speed-up vs {g} single runs: {per_step1 * g / per_step:.1f}x"
    )
    skipped = sum(r.skipped_steps for r in grid.results)
    print(f"           skipped (non-finite) member-steps: {skipped}")

    if not args.no_eval:
        t = _clock()
        clf = fit_image_classifier(xtr, ytr, rng=rng)
        gen = torch.Generator().manual_seed(0)  # the grid lives on the CPU here
        rows = [
            evaluate_model(
                m,
                xtr,
                ytr,
                xte,
                yte,
                classifier=clf,
                probes=("logistic", "rbf_svm"),
                mi_points=397,
                num_samples=2000,
                generator=gen,
                rng=rng,
            )
            for m in grid.models()
        ]
        wall_e, cpu_e = _since(t)
        print(
            f"evaluation of {g} models: {wall_e:.1f} s wall / {cpu_e:.1f} s CPU "
            f"({1e3 * wall_e / g:.0f} ms per model)"
        )
        r2 = np.array([r["rate_2"] for r in rows]).reshape(args.side, args.side)
        r1 = np.array([r["rate_1"] for r in rows]).reshape(args.side, args.side)
        ps = np.array([r["psnr"] for r in rows]).reshape(args.side, args.side)
        np.set_printoptions(precision=1, suppress=True, linewidth=120)
        print("beta values:", np.round(values, 3))
        print("R(z2) [rows beta1 ascending, columns beta2 ascending]\n", r2)
        print("R(z1|z2)\n", r1)
        print("PSNR (dB)\n", ps)
        viol = sum(
            1
            for r in rows
            if r["acc_z_rbf_svm"]
            > r["fano_info"] + 2 * np.sqrt(r["acc_z_rbf_svm"] * (1 - r["acc_z_rbf_svm"]) / len(te))
        )
        print(
            f"Fano check on sampled z2 (RBF-SVM, plug-in MI, tolerance 2 s.e.): {viol} violations of {g}"
        )
    if args.paper_steps > 0:
        # the authors' SVHN/CIFAR architecture (475,811 parameters), batch 256, Adam 3e-4
        pcfg = paper_preset("svhn")
        pmodel = build_seeded(lambda: HierarchicalVAE(pcfg), 0)
        xp = torch.rand(2048, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        ptc = TrainConfig(steps=args.paper_steps, batch_size=256, lr=3e-4, seed=0, log_every=10)
        train(
            pmodel, xp, hierarchical_loss((1.0, 1.0)), ptc.replace(steps=2), progress=False
        )  # warm-up
        t = _clock()
        train(pmodel, xp, hierarchical_loss((1.0, 1.0)), ptc, progress=False)
        wall_p, cpu_p = _since(t)
        print(
            f"paper preset ({pmodel.num_parameters():,} parameters, 32x32x3, batch 256): "
            f"{args.paper_steps * 256 / wall_p:.0f} examples/s wall ({1e3 * wall_p / args.paper_steps:.0f} ms/step, "
            f"{cpu_p / args.paper_steps * 1e3:.0f} ms CPU/step); one epoch of SVHN (73,257) ≈ "
            f"{73257 / (args.paper_steps * 256 / wall_p) / 60:.1f} min"
        )
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
