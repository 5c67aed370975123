"""Typed configuration, profiles, devices, threads and seeds.

Every experiment in the book is described by small frozen dataclasses that round-trip to
JSON (:class:`ConfigBase`), so that a configuration can be printed in a notebook, stored next
to a checkpoint and used as a cache key.

Two *profiles* set the scale of every chapter:

``quick``
    CPU, minutes per chapter: small procedural datasets, few steps. The book is built with it.
``paper``
    The papers' own scale (datasets, architectures, step budgets) for a GPU run with papermill.

The paper profile has a *smoke* form (``smoke=True``, ``python -m hvae_lib build --profile
paper --smoke``): the paper's models, input shapes, estimators and code paths, with steps,
grid sides, dataset sizes and sample counts cut so that the whole book runs on a CPU in
minutes, and synthetic stand-ins for data files that are absent. Its numbers mean nothing;
every page it executes says so in a banner (:meth:`RunContext.show_banner`).

Used in: every chapter's first cells (``setup_notebook``), ``python -m hvae_lib build``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch

PROFILES: tuple[str, ...] = ("quick", "paper")
"""Valid profile names."""

DEVICE_CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda", "cuda:N")
"""Valid device specifications (``cuda:N`` selects GPU number N)."""

T = TypeVar("T", bound="ConfigBase")
T_module = TypeVar("T_module")


class ConfigBase:
    """Mixin for frozen dataclasses that round-trip to JSON.

    Nested ``ConfigBase`` dataclasses are serialised as dicts; tuples are stored as lists and
    restored as tuples (a dataclass field annotated ``tuple[...]`` comes back as a tuple).
    Unknown keys in :meth:`from_dict` raise ``ValueError`` naming the valid ones.

    Used in: :mod:`!hvae_lib.train` (cache keys, checkpoints), every chapter.
    """

    _nested: ClassVar[Mapping[str, type]] = {}

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-compatible ``dict`` of the fields (recursively)."""
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            out[f.name] = _to_jsonable(getattr(self, f.name))
        return out

    @classmethod
    def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
        """Build the dataclass from :meth:`to_dict` output; rejects unknown keys."""
        valid = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
        unknown = set(data) - set(valid)
        if unknown:
            raise ValueError(
                f"{cls.__name__}: unknown field(s) {sorted(unknown)}; valid fields are {sorted(valid)}"
            )
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            nested = cls._nested.get(name)
            if nested is not None and isinstance(value, Mapping):
                value = nested.from_dict(value)  # type: ignore[attr-defined]
            elif isinstance(value, list) and "tuple" in str(valid[name].type):
                value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
            kwargs[name] = value
        return cls(**kwargs)

    def to_json(self, **kwargs: Any) -> str:
        """Serialise to a JSON string (keys sorted, so equal configs give equal strings)."""
        return json.dumps(self.to_dict(), sort_keys=True, **kwargs)

    @classmethod
    def from_json(cls: type[T], text: str) -> T:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def replace(self: T, **changes: Any) -> T:
        """Return a copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


def _to_jsonable(value: Any) -> Any:
    if isinstance(value, ConfigBase):
        return value.to_dict()
    if isinstance(value, (tuple, list)):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


_LIBRARY_SOURCE_DIGEST: list[str] = []


def library_source_digest() -> str:
    """SHA-256 of every ``.py`` file of ``hvae_lib``, relative names and bytes (computed once
    per process): a stored result is reused only by the code that computed it.

    Used in: :func:`hvae_lib.experiments.ch04_bench.SemafoBench.evaluate` (cached evaluation
    rows), :func:`hvae_lib.book.reuse.notebook_key` (executed notebooks).
    """
    if not _LIBRARY_SOURCE_DIGEST:
        root = Path(__file__).resolve().parent
        h = hashlib.sha256()
        for f in sorted(root.rglob("*.py")):
            h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
        _LIBRARY_SOURCE_DIGEST.append(h.hexdigest())
    return _LIBRARY_SOURCE_DIGEST[0]


def check_profile(profile: str) -> str:
    """Validate a profile name.

    Raises
    ------
    ValueError
        If ``profile`` is not one of :data:`PROFILES`; the message lists the valid ones.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid profiles are: {', '.join(PROFILES)}")
    return profile


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn a device specification into a ``torch.device``.

    ``"auto"`` picks ``cuda`` when ``torch.cuda.is_available()`` and falls back to ``cpu``
    otherwise. ``"cuda"`` / ``"cuda:N"`` when no GPU is visible raise a ``RuntimeError`` that
    suggests ``auto`` or ``cpu`` (an explicit request is never silently downgraded).

    Raises
    ------
    ValueError
        For anything that is not one of :data:`DEVICE_CHOICES`.


    Used in: every chapter (``setup_notebook``), :mod:`hvae_lib.book`.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise ValueError(f"device must be a string, got {type(device).__name__}")
    spec = device.strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or (spec.startswith("cuda:") and spec[5:].isdigit()):
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device {device!r} was requested but torch.cuda.is_available() is False "
                "(no GPU or a CPU-only torch build); use device='auto' to fall back to the CPU"
            )
        index = int(spec[5:]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) are visible"
            )
        return torch.device(spec)
    raise ValueError(f"unknown device {device!r}; valid devices are: {', '.join(DEVICE_CHOICES)}")


def set_threads(threads: int) -> int:
    """Set the number of torch intra-op threads (and return it).

    ``threads <= 0`` means "all cores" (``os.cpu_count()``). The book runs its tests with one
    thread: on a shared 2-core machine torch at 2 threads can be much slower than at 1.
    """
    if not isinstance(threads, (int, np.integer)) or isinstance(threads, bool):
        raise ValueError(f"threads must be an integer, got {threads!r}")
    n = int(threads) if threads > 0 else (os.cpu_count() or 1)
    torch.set_num_threads(n)
    return n


def check_rng(rng: Any, name: str = "rng") -> np.random.Generator:
    """``rng`` if it is a ``numpy.random.Generator``; otherwise a ``TypeError`` that says what was passed.

    An integer seed, ``None``, a legacy ``RandomState`` or a ``torch.Generator`` are refused:
    build the generator once, where the seed is chosen (``np.random.default_rng(0)``, or
    ``ctx.rng(offset)`` in a chapter), and pass it on.

    Used in: every library function that draws NumPy random numbers
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{name} must be a numpy.random.Generator, e.g. numpy.random.default_rng(0); "
            f"got {type(rng).__name__} {rng!r}"
        )
    return rng


def check_generator(generator: Any, device: Any = None, name: str = "generator") -> torch.Generator:
    """``generator`` if it is a ``torch.Generator`` (on ``device``, when given); else an error.

    ``TypeError`` for anything that is not a ``torch.Generator`` (an integer seed, ``None``, a
    NumPy generator); ``ValueError`` when ``device`` is given and the generator lives on another
    device (a model on ``cuda`` needs ``torch.Generator(device="cuda")``).

    Used in: every library function that draws torch random numbers
    """
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"{name} must be a torch.Generator, e.g. torch.Generator().manual_seed(0); "
            f"got {type(generator).__name__} {generator!r}"
        )
    if device is not None:
        want, have = torch.device(device), generator.device
        if want.type != have.type or (
            want.index is not None and have.index is not None and want.index != have.index
        ):
            raise ValueError(
                f"{name} is on {have} but must be on {want}: "
                f"pass torch.Generator(device={str(want)!r}).manual_seed(...)"
            )
    return generator


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python's ``random``, NumPy's legacy global RNG and torch (CPU and all GPUs).

    Returns a fresh ``numpy.random.Generator`` seeded with ``seed``, which library functions
    take explicitly (the book never relies on NumPy's global state).
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return np.random.default_rng(seed)


def build_seeded(build: Callable[[], T_module], seed: int) -> T_module:
    """``build()`` with the global torch RNG seeded ``seed`` (module initialisers draw from it),
    inside ``torch.random.fork_rng`` so the caller's global RNG state is left as it was.

    The one place where a model's initialisation is seeded: :func:`hvae_lib.train.fit`, the
    β-grid, the factor classifier and the information estimators use it.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return build()


def env_default(name: str, default: str) -> str:
    """Read ``HVAE_<NAME>`` from the environment (the notebooks' parameter defaults)."""
    return os.environ.get(f"HVAE_{name.upper()}", default)


def check_smoke(profile: str, smoke: bool) -> bool:
    """Validate the smoke flag: a variant of the ``paper`` profile only.

    Raises
    ------
    ValueError
        If ``smoke`` is set with another profile (the message says what to use instead).
    """
    if not isinstance(smoke, (bool, np.bool_)):
        raise ValueError(f"smoke must be True or False, got {smoke!r}")
    if smoke and profile != "paper":
        raise ValueError(
            f"smoke is a variant of the paper profile (its models and code paths, steps and data "
            f"cut); it cannot be combined with profile {profile!r}: use --profile paper --smoke"
        )
    return bool(smoke)


SMOKE_BANNER_ID = "hvae-smoke-banner"
"""The display id of the smoke banner of a page (updated as stand-ins are used)."""

_STAND_INS: list[str] = []  # the synthetic stand-ins used by this kernel (smoke runs)


def smoke_banner_html(stand_ins: Sequence[str] = ()) -> str:
    """The HTML admonition at the top of a page executed in a smoke run of the paper profile."""
    import html

    used = (
        "these stand-ins for the paper's data: " + "; ".join(html.escape(s) for s in stand_ins)
        if stand_ins
        else "no synthetic stand-ins"
    )
    return (
        '<div class="admonition warning hvae-smoke-banner">'
        '<p class="admonition-title">Smoke run of the paper profile</p>'
        "<p>This page was executed with the paper profile's models, shapes and code paths, "
        f"but with steps and data cut, and {used}. Its numbers mean nothing, and no claim "
        "checked on it is evidence for or against a paper.</p></div>"
    )


def note_stand_in(description: str) -> None:
    """Record that a smoke run uses a synthetic stand-in (``description`` names it) and add it
    to the page's banner (:meth:`RunContext.show_banner`), when there is one.

    Used in: the chapters' data loaders (:mod:`hvae_lib.experiments`) in smoke runs
    """
    if description not in _STAND_INS:
        _STAND_INS.append(description)
    try:
        from IPython import get_ipython
        from IPython.display import HTML, update_display
    except ImportError:  # the library without IPython: nothing to show
        return
    if get_ipython() is not None:
        update_display(HTML(smoke_banner_html(_STAND_INS)), display_id=SMOKE_BANNER_ID)


def stand_ins_used() -> tuple[str, ...]:
    """The stand-ins :func:`note_stand_in` recorded in this process, in order."""
    return tuple(_STAND_INS)


def require(checks: Mapping[str, Any], *, smoke: bool = False) -> None:
    """Assert that every check of ``checks`` (name -> outcome) holds, as a chapter's assertion
    cell does: ``AssertionError(checks)`` when one fails.

    In a smoke run (``smoke=True``: steps and data cut, so a claim that needs training can
    fail for want of it) a failing check is reported, not raised; the page's banner says that
    its numbers mean nothing.

    Used in: the chapters' assertion cells
    """
    failed = [name for name, ok in checks.items() if not ok]
    if not failed:
        return
    if smoke:
        print(f"smoke run: {len(failed)} of {len(checks)} checks fail and are not asserted")
        return
    raise AssertionError(dict(checks))


@dataclass(frozen=True)
class RunContext(ConfigBase):
    """What a notebook's opening cell resolves: profile, device, seed, threads, smoke.

    Attributes
    ----------
    profile : ``"quick"`` or ``"paper"``.
    device : resolved device string (``"cpu"``, ``"cuda"``, ...).
    seed : the global seed.
    threads : torch intra-op threads actually set.
    smoke : the smoke form of the paper profile (steps and data cut; see the module
        docstring); always ``False`` for ``quick``.
    """

    profile: str
    device: str
    seed: int
    threads: int
    smoke: bool = False

    def show_banner(self) -> None:
        """Display the smoke banner (:func:`smoke_banner_html`) in a smoke run; nothing
        otherwise. Stand-ins noted later (:func:`note_stand_in`) update it in place.

        Used in: every chapter's opening cells
        """
        if not self.smoke:
            return
        from IPython.display import HTML, display

        display(HTML(smoke_banner_html(_STAND_INS)), display_id=SMOKE_BANNER_ID)

    @property
    def torch_device(self) -> torch.device:
        """The device as a ``torch.device``."""
        return torch.device(self.device)

    def rng(self, offset: int = 0) -> np.random.Generator:
        """A NumPy generator derived from the seed (``offset`` gives independent streams)."""
        return np.random.default_rng([self.seed, offset])

    def generator(self, offset: int = 0) -> torch.Generator:
        """A ``torch.Generator`` on this run's device, derived from the seed and ``offset``
        (the torch twin of :meth:`rng`: a named stream; the same ``offset`` gives the same
        draws, which is how chapter 4 scores every model with common random numbers)."""
        state = int(np.random.SeedSequence([self.seed, offset]).generate_state(1, np.uint64)[0])
        return torch.Generator(device=self.device).manual_seed(state % (2**63))


def setup_notebook(
    profile: str = "quick",
    device: str = "auto",
    seed: int = 0,
    threads: int = 1,
    smoke: bool = False,
    *,
    verbose: bool = True,
) -> RunContext:
    """Validate the parameters cell and prepare the process: seeds, threads, device.

    This is the fixed opening cell of every chapter. ``smoke=True`` (paper profile only)
    selects the smoke form of the paper profile; the chapter's settings function takes
    ``ctx.smoke`` and the page shows a banner (:meth:`RunContext.show_banner`).

    Raises
    ------
    ValueError
        Unknown profile or device, bad seed or thread count, smoke with a profile other than
        paper (messages list valid choices).
    """
    check_profile(profile)
    smoke = check_smoke(profile, smoke)
    dev = resolve_device(device)
    n = set_threads(int(threads))
    seed_everything(int(seed))
    ctx = RunContext(profile=profile, device=str(dev), seed=int(seed), threads=n, smoke=smoke)
    if verbose:
        print(
            f"hvae_lib: profile={ctx.profile} device={ctx.device} seed={ctx.seed} threads={ctx.threads}"
            + (" smoke" if smoke else "")
        )
    return ctx
