"""Benchmark of the disentanglement metrics at the study budgets.

Setting: the 5 dSprites factors (3, 6, 40, 32, 32 values; 737,280 grid points), a
10-dimensional deterministic synthetic representation (partly disentangled, partly mixed,
one near-dead code, two noise codes), 10,000 train / 5,000 test codes for MIG, DCI and SAP,
and FactorVAE / BetaVAE at their full budgets served from a cached grid (GridEncoder).

Runs
----
* ``fast``: the full suite with ``dci(importance="hist_gbt")``.
* ``default``: the full suite with the faithful ``GradientBoostingClassifier()`` DCI
  (minutes); ``--skip-default`` leaves it out.
* deviation: both DCI variants on the *same* codes, for the synthetic representation (the
  two suite runs) and a random rotation of it (entangled), as absolute differences.

``--dsprites`` additionally times encoding the procedural dSprites grid (``hvae_lib.data``)
with a small random convolutional encoder, at the given ``--resolution``.

Measured (shared 2-core CPU, scikit-learn 1.9.1, ``--n-jobs 1``; the machine was shared with
other jobs, so times vary by up to about 1.5x):

* grid cache: 737,280 synthetic codes in 0.4 s; the procedural dSprites grid with a small conv
  encoder (``--dsprites``): 32 s at 32x32, 127 s at 64x64 (2 torch threads).
* full suite, fast DCI: 20 s (DCI 18, SAP 1.2, BetaVAE 0.6, FactorVAE 0.2, MIG 0.1).
* full suite, default DCI: 313 s (DCI 310).
* |fast - default| DCI, synthetic codes: D 0.0015, C 0.0010, I_train 0.0016, I_test 0.0033;
  rotated codes: D 0.029, C 0.027, I_train 0.017, I_test 0.033 (default DCI 447 s there).

Usage::

    .venv/bin/python benchmarks/bench_metrics.py [--skip-default] [--n-jobs 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hvae_lib.metrics import (  # noqa: E402
    GridEncoder,
    SyntheticFactors,
    dci,
    evaluate_metrics,
    sample_codes_and_factors,
)

DSPRITES_SIZES = (3, 6, 40, 32, 32)


def _hash_noise(x: np.ndarray, salt: float) -> np.ndarray:
    """Deterministic pseudo-noise in [-0.5, 0.5) from the observation (a fixed function)."""
    s = np.sin(x @ np.array([12.9898, 78.233, 37.719, 4.581, 93.989]) + salt) * 43758.5453
    return s - np.floor(s) - 0.5


def synthetic_encoder(obs: np.ndarray) -> np.ndarray:
    """Deterministic 10-code representation of factor observations [n, 5] -> [n, 10]."""
    u = (obs + 0.5) / np.array(DSPRITES_SIZES)  # in (0, 1)
    shape, scale, orient, px, py = u.T
    eps = [0.05 * _hash_noise(obs, float(i)) for i in range(10)]
    z = np.stack(
        [
            shape + 0.3 * scale + eps[0],
            scale + eps[1],
            np.cos(2 * np.pi * orient) + eps[2],
            0.5 * np.sin(2 * np.pi * orient) + 0.2 * shape + eps[3],
            px + eps[4],
            py + eps[5],
            0.5 * px + 0.5 * py + eps[6],
            0.01 * px,  # near-dead: std below the FactorVAE prune threshold
            eps[8] * 20,
            eps[9] * 20,
        ],
        axis=1,
    )
    return z


def run_suite(grid: GridEncoder, importance: str, n_jobs: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    res = evaluate_metrics(
        grid.sampler(), rng=np.random.default_rng(0), dci_importance=importance, dci_n_jobs=n_jobs
    )
    res["seconds"]["total"] = time.perf_counter() - t0
    return res


def dci_deviation(
    codes_tr, f_tr, codes_te, f_te, n_jobs: int, skip_default: bool, rng: np.random.Generator
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for method in ("hist_gbt",) + (() if skip_default else ("gbt",)):
        t0 = time.perf_counter()
        out[method] = dci(codes_tr, f_tr, codes_te, f_te, importance=method, n_jobs=n_jobs, rng=rng)
        out[method]["seconds"] = time.perf_counter() - t0
    if not skip_default:
        out["abs_diff"] = {
            k: abs(out["hist_gbt"][k] - out["gbt"][k])
            for k in (
                "disentanglement",
                "completeness",
                "informativeness_train",
                "informativeness_test",
            )
        }
    return out


def time_dsprites_grid(resolution: int) -> dict[str, Any]:
    import torch

    from hvae_lib.config import build_seeded
    from hvae_lib.data import DSprites
    from hvae_lib.metrics import representation

    ds = DSprites(resolution=resolution)

    def build() -> torch.nn.Module:
        net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 16, 4, 2, 1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(16, 16, 4, 2, 1),
            torch.nn.ReLU(),
            torch.nn.Flatten(),
            torch.nn.LazyLinear(10),
        )
        net(torch.zeros(1, 1, resolution, resolution))  # initialise the lazy layer here too
        return net

    enc = build_seeded(build, 0)

    def encode(obs: np.ndarray) -> np.ndarray:
        return representation(enc, obs, layers="top", batch_size=4096)

    t0 = time.perf_counter()
    GridEncoder(ds, encode, batch_size=8192)  # encode the whole grid once (timed)
    secs = time.perf_counter() - t0
    return {
        "grid_points": len(ds),
        "resolution": resolution,
        "seconds": secs,
        "torch_threads": torch.get_num_threads(),
    }


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--skip-default", action="store_true", help="skip the slow faithful DCI runs")
    p.add_argument("--n-jobs", type=int, default=1, help="factors fitted in parallel by DCI")
    p.add_argument("--dsprites", action="store_true", help="also time encoding the dSprites grid")
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--json", type=Path, default=None, help="write all figures to this file")
    args = p.parse_args()

    import sklearn

    report: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "sklearn": sklearn.__version__,
        },
        "setting": {
            "factor_sizes": DSPRITES_SIZES,
            "codes": 10,
            "num_train": 10_000,
            "num_test": 5_000,
        },
    }
    ds = SyntheticFactors(DSPRITES_SIZES)
    t0 = time.perf_counter()
    grid = GridEncoder(ds, synthetic_encoder, batch_size=65_536)
    report["grid_encode_seconds"] = time.perf_counter() - t0
    print(
        f"grid: {len(ds)} points encoded in {report['grid_encode_seconds']:.2f} s "
        f"({grid.encoder_calls} encoder calls)",
        flush=True,
    )

    for name, importance in (("fast", "hist_gbt"),) + (
        () if args.skip_default else (("default", "gbt"),)
    ):
        res = run_suite(grid, importance, args.n_jobs)
        report[f"suite_{name}"] = res
        secs = ", ".join(f"{k} {v:.1f}" for k, v in res["seconds"].items())
        print(f"suite {name} (DCI {importance}): {secs} s", flush=True)
        for key, val in res.items():
            if key != "seconds":
                print(f"  {key}: " + ", ".join(f"{k}={v:.4f}" for k, v in val.items()), flush=True)

    # DCI deviation on the same codes. evaluate_metrics draws its train/test codes from the
    # first child of rng.spawn(5); redraw them here to score a rotated (entangled) copy.
    rng = np.random.default_rng(0).spawn(5)[0]
    z_tr, f_tr = sample_codes_and_factors(grid.sampler(), 10_000, rng)
    z_te, f_te = sample_codes_and_factors(grid.sampler(), 5_000, rng)
    keys = ("disentanglement", "completeness", "informativeness_train", "informativeness_test")
    if not args.skip_default:
        fast, default = report["suite_fast"]["dci"], report["suite_default"]["dci"]
        report["dci_deviation_synthetic"] = {k: abs(fast[k] - default[k]) for k in keys}
        print(
            "DCI synthetic |fast - default|: "
            + ", ".join(f"{k}={v:.4f}" for k, v in report["dci_deviation_synthetic"].items()),
            flush=True,
        )
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(10, 10)))
    dev = dci_deviation(
        z_tr @ q, f_tr, z_te @ q, f_te, args.n_jobs, args.skip_default, np.random.default_rng(2)
    )
    report["dci_deviation_rotated"] = dev
    for method, val in dev.items():
        print(
            f"DCI rotated {method}: " + ", ".join(f"{k}={v:.4f}" for k, v in val.items()),
            flush=True,
        )

    if args.dsprites:
        report["dsprites_grid"] = time_dsprites_grid(args.resolution)
        print(f"dSprites grid encoding: {report['dsprites_grid']}", flush=True)

    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2, default=float))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
