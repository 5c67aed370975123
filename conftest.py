"""Shared test setup: one torch thread, the quick profile on the CPU, nothing read from a cache.

The environment variables are set before any kernel starts, so nbval's notebook kernels run
in the same test setting (quick profile, CPU, one thread). The result cache is write-only
(``HVAE_CACHE=write``) in a fresh folder of this session: every test and notebook trains its
models, and the browser tests, which run last, build the book from what the notebooks stored
instead of training everything a second time.
"""

from __future__ import annotations

import os
import tempfile

os.environ["HVAE_CACHE"] = "write"
os.environ["HVAE_CACHE_DIR"] = tempfile.mkdtemp(prefix="hvae-cache-")
# chapters record their claims here (hvae_lib.book.ledger), not in the checkout's _build/claims
os.environ["HVAE_CLAIMS_DIR"] = tempfile.mkdtemp(prefix="hvae-claims-")
os.environ["HVAE_PROFILE"] = "quick"
os.environ["HVAE_DEVICE"] = "cpu"
os.environ["HVAE_THREADS"] = "1"
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        default=False,
        help="also run tests marked slow (or set HVAE_SLOW=1)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # browser tests last: they build the book from the models the notebook tests stored
    items.sort(key=lambda item: "browser" in item.keywords)  # stable: keeps the rest in order
    if (
        config.getoption("--run-slow")
        or os.environ.get("HVAE_SLOW") == "1"
        or config.getoption("-m")
    ):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow or HVAE_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
