"""Benchmark of the procedural dSprites renderer.

Renders the full original grid (737,280 binary 64×64 images, 3.0 GB of uint8, held in
memory) in batches, then dSprites-lite (6,144 images of 32×32), each from a cold start
(fresh instance: no cached templates), and prints times and images per second; the full
grid is timed twice, streamed batch by batch (``iter_batches``, nothing held) and held
(``render_all``, which also pays for faulting in 3 GB of fresh memory).
Target: the full grid in at most 60 s on 2 CPU cores.

Usage::

    .venv/bin/python benchmarks/bench_dsprites.py [--batch-size 32768] [--no-full] [--repeat 3]

Used in: README (benchmarks), :ref:`ch-rate-distortion` (the quick/paper data choice).
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

from hvae_lib.data import DSprites, dsprites_lite  # noqa: E402
from hvae_lib.data.dsprites import _procedural_backend  # noqa: E402


def _cold(fn):
    """Run ``fn`` with an empty renderer/template cache (renderers are shared between instances)."""

    def run():
        _procedural_backend.cache_clear()
        return fn()

    return run


def _time(fn, repeat: int) -> tuple[float, np.ndarray]:
    best, out = float("inf"), None
    for _ in range(repeat):
        out = None  # free the previous result first
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=32768)
    ap.add_argument("--repeat", type=int, default=1, help="repetitions (best time is reported)")
    ap.add_argument("--no-full", action="store_true", help="skip the 737,280-image grid")
    args = ap.parse_args(argv)
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}"
    )

    t, lite = _time(_cold(lambda: dsprites_lite().render_all()), max(args.repeat, 3))
    print(
        f"dsprites_lite  {lite.shape[0]:>7,d} x {lite.shape[2]}x{lite.shape[3]}: "
        f"{t:7.3f} s  ({lite.shape[0] / t:12,.0f} images/s)  {lite.nbytes / 2**20:8.1f} MiB"
    )

    t, sub = _time(
        _cold(lambda: DSprites(64, step={"orientation": 4, "posX": 4, "posY": 4}).render_all()), 3
    )
    print(
        f"64x64 subgrid  {sub.shape[0]:>7,d} x 64x64: {t:7.3f} s  ({sub.shape[0] / t:12,.0f} images/s)  "
        f"{sub.nbytes / 2**20:8.1f} MiB"
    )
    del sub

    if not args.no_full:

        def stream() -> int:
            total = 0
            for _, imgs in DSprites(64).iter_batches(args.batch_size):
                total += int(imgs.sum(dtype=np.int64))
            return total

        t, _ = _time(_cold(stream), args.repeat)
        print(
            f"full grid      {737280:>7,d} x 64x64: {t:7.3f} s  ({737280 / t:12,.0f} images/s)  "
            f"streamed in batches of {args.batch_size:,d} (nothing held)"
        )
        t, full = _time(
            _cold(lambda: DSprites(64).render_all(batch_size=args.batch_size)), args.repeat
        )
        n = full.shape[0]
        print(
            f"full grid      {n:>7,d} x 64x64: {t:7.3f} s  ({n / t:12,.0f} images/s)  "
            f"{full.nbytes / 2**30:8.2f} GiB  (target <= 60 s)"
        )
        t0 = time.perf_counter()
        mean = float(full.mean(dtype=np.float64))
        print(f"mean pixel {mean:.4f} (checked in {time.perf_counter() - t0:.1f} s)")
        del full
        _procedural_backend.cache_clear()
        t0 = time.perf_counter()
        ds = DSprites(64)
        ds.images(ds.all_factors()[::1024])  # one image per template: renders all 720
        print(f"720 templates (cold) in {time.perf_counter() - t0:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
