"""Shared test setup: one torch thread, the quick profile on the CPU, nothing read from a cache.

The environment variables are set before any kernel starts, so nbval's notebook kernels run
in the same test setting (quick profile, CPU, one thread). The result cache is a fresh folder
of this test session (read and write): the first notebook that needs a model trains it, a later
one that needs the same model (chapter 4's pages share their seed-0 models) loads it, and the
browser tests, which run last, build the book from what the notebooks stored instead of
training everything a second time. A cached model is bit-identical to the one trained in the
same setting, so a notebook's checked outputs do not depend on which of them trained it.
"""

from __future__ import annotations

import os
import shutil
import tempfile

os.environ["HVAE_CACHE"] = "1"
#: The folders this process made (and so removes when the run ends): none under ``make test``,
#: which sets both variables for its two pytest runs, and none in pytest-xdist's workers,
#: which inherit the controller's.
_MADE_HERE: list[str] = []


def _temp_folder(variable: str, prefix: str) -> None:
    if not os.environ.get(variable):
        os.environ[variable] = tempfile.mkdtemp(prefix=prefix)
        _MADE_HERE.append(os.environ[variable])


# One cache and one claims folder per test run: set by `make test` for both of its pytest runs
# (and inherited by pytest-xdist's workers), else made here and removed at the end of the run.
_temp_folder("HVAE_CACHE_DIR", "hvae-cache-")
# chapters record their claims here (hvae_lib.book.ledger), not in the checkout's _build/claims
_temp_folder("HVAE_CLAIMS_DIR", "hvae-claims-")
os.environ["HVAE_PROFILE"] = "quick"
os.environ["HVAE_DEVICE"] = "cpu"
# One thread unless HVAE_THREADS says otherwise: the suite must also pass with 2 (another
# floating-point path, as on another CPU), which CI checks.
os.environ.setdefault("HVAE_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", os.environ["HVAE_THREADS"])
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ["HVAE_THREADS"]) or (os.cpu_count() or 1))

#: Notebooks first, so that pytest-xdist (``--dist loadfile``, each notebook whole on one
#: worker) starts the long ones at once, in an order that lets the result cache (one per test
#: run) serve what a page shares with an earlier one: 04 trains the models that 05 and 08
#: evaluate again (and the factor classifier that every page of chapter 4 scores with), so it
#: goes first, beside chapter 3, and the other pages of chapter 4 start once it is done.
#: Measured cold on one core (quick profile): 04 about 220 s, 05 about 220, 06 and 07 about
#: 280 each with the classifier cached (about 300 when they train it), 08 about 280, 03 about
#: 210, 01 about 105, 02 about 50.
NOTEBOOK_ORDER = (
    "04_semafovae",
    "03_rate_splitting",
    "06_semafovae_seeds",
    "05_semafovae_evaluation",
    "07_semafovae_seeds_2",
    "08_semafovae_labels",
    "01_rate_distortion",
    "02_transitive_information",
)
#: Notebooks that read what other notebooks wrote (evaluation rows, claims): marked
#: ``after_chapters``; ``make test`` runs them in its second pytest run, after every chapter
#: of the first has finished, and a single-worker run reaches them last.
AFTER_CHAPTERS = ("09_semafovae_verdicts", "ledger")


def _schedule_rank(item: pytest.Item) -> tuple[int, int]:
    if "browser" in item.keywords:
        return (3, 0)  # last: they build the book from the models the notebook tests stored
    stem = item.path.stem
    if item.path.suffix == ".ipynb":
        if stem in NOTEBOOK_ORDER:
            return (0, NOTEBOOK_ORDER.index(stem))
        if stem in AFTER_CHAPTERS:
            return (2, AFTER_CHAPTERS.index(stem))
        return (0, len(NOTEBOOK_ORDER))
    return (1, 0)


def pytest_unconfigure(config: pytest.Config) -> None:
    # only the process that made the folders removes them (the controller, after its workers)
    for path in _MADE_HERE:
        shutil.rmtree(path, ignore_errors=True)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        default=False,
        help="also run tests marked slow (or set HVAE_SLOW=1)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.suffix == ".ipynb" and item.path.stem in AFTER_CHAPTERS:
            item.add_marker(pytest.mark.after_chapters)
    items.sort(key=_schedule_rank)  # stable: keeps the order within each file
    if (
        config.getoption("--run-slow")
        or os.environ.get("HVAE_SLOW") == "1"
        or "slow" in (config.getoption("-m") or "")
    ):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow or HVAE_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
