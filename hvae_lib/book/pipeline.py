"""The book's execution pipeline: papermill executes, jupyter-book renders.

Each chapter is written once, as a MyST Markdown notebook ``book/NAME.md`` paired by
jupytext with ``book/NAME.ipynb``, which is derived from it and keeps only the reference
outputs of the ``# NBVAL_CHECK_OUTPUT`` cells (nbval runs the ``.ipynb``; a test checks that
the inputs of each pair are equal).

``python -m hvae_lib build`` reads ``_toc.yml`` and executes every notebook it lists (inputs
from its ``.md``) with papermill (parameters ``PROFILE``, ``DEVICE``, ``SEED``, ``THREADS``,
``SMOKE`` injected into the cell tagged ``parameters``) into a staging copy of the book under
``_build/staging``. Up to ``--jobs`` notebooks run at once (default: the cores divided by
``--threads``), each in a worker process of its own (forked by a fresh ``multiprocessing``
forkserver) that starts one kernel, with the kernel's environment passed to it explicitly, so
concurrent runs share no environment state. A notebook that needs others declares it in its metadata, in
the front matter of its ``.md``::

    jupytext:
      notebook_metadata_filter: hvae   # so that jupytext keeps the key in the .md
    hvae:
      needs: [03_rate_splitting]       # notebook names of _toc.yml, or: needs: all

and starts only once those have finished OK; if one of them failed it is not run (reported as
not run). ``--profile paper --smoke`` runs the smoke form of the paper profile (its models and
code paths, steps and data cut; :func:`hvae_lib.config.setup_notebook`). The build then writes
a status page (wall and CPU time, peak memory, profile, device, hardware and
library versions of every notebook) and builds the HTML with jupyter-book
(``execute_notebooks: off``, ``-W -n --keep-going``) into ``_build/html``. It exits non-zero
when a cell fails or Sphinx warns. A notebook that an earlier build ran OK with the same cells,
parameters, ``hvae_lib`` source, environment, versions, hardware and needs is not executed
again: the book shows that run and the status page says so (:mod:`hvae_lib.book.reuse`;
``--rerun`` executes it anyway).

``python -m hvae_lib run NOTEBOOK -p NAME VALUE ...`` executes one notebook the same way.

``python -m hvae_lib refresh NOTEBOOK`` re-executes a chapter in the test setting (quick
profile, CPU, one thread, cache off) and stores in its ``.ipynb`` only the outputs of cells
marked ``# NBVAL_CHECK_OUTPUT``: these are the reference values that nbval compares against.
``python -m hvae_lib sync NOTEBOOK`` carries an edit of the ``.md`` into the ``.ipynb``
without executing anything (unchanged cells keep their stored outputs).

Used in: README (both commands), tests/test_book.py.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..config import PROFILES, check_profile, check_smoke, resolve_device
from ..train import cache_enabled_by_env, default_cache_dir
from . import grid as grid_command
from . import plan as plan_command
from . import reuse

REPO_ROOT = Path(__file__).resolve().parents[2]
PARAMETER_NAMES = ("PROFILE", "DEVICE", "SEED", "THREADS", "SMOKE")
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"


NEEDS_KEY = "hvae"  # the notebook metadata key that holds ``needs``
NEEDS_ALL = "all"  # ``needs: all``: every other notebook of the build


@dataclass
class NotebookRun:
    """The outcome of executing one notebook.

    ``seconds`` is the wall time of its execution, ``cpu_seconds`` the CPU time (user + system)
    of its kernel and ``max_rss`` its kernel's peak resident memory in bytes, ``None`` where
    they were not measured (a run in this process). A notebook that
    was not run because a notebook it needs failed has ``ok=False`` and ``skipped=True``.
    ``started`` and ``finished`` are seconds after the build began executing (its worker
    process included); ``needs`` names the notebooks it waited for. A notebook not executed
    because an earlier build had run it with the same key (:mod:`hvae_lib.book.reuse`) has
    ``reused=True``, ``stored_at`` the time of that run and that run's times.
    """

    path: str
    seconds: float
    ok: bool
    error: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    cpu_seconds: float | None = None
    max_rss: int | None = None
    skipped: bool = False
    needs: list[str] = field(default_factory=list)
    started: float | None = None
    finished: float | None = None
    reused: bool = False
    stored_at: str = ""


def toc_files(root: Path = REPO_ROOT) -> list[Path]:
    """Source files listed in ``root/_toc.yml`` (root page, chapters, sections), in order.

    Each entry ``file: book/x`` is resolved to ``book/x.ipynb``, ``.md`` or ``.myst``.

    Raises
    ------
    FileNotFoundError
        If ``_toc.yml`` or a listed file is missing (the message names it).
    """
    import yaml

    toc_path = root / "_toc.yml"
    if not toc_path.is_file():
        raise FileNotFoundError(f"no table of contents at {toc_path}")
    toc = yaml.safe_load(toc_path.read_text())
    names: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("root", "file"):
                if key in node:
                    names.append(str(node[key]))
            for value in node.values():
                if isinstance(value, (list, dict)):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    out: list[Path] = []
    for name in names:
        base = root / name
        candidates = (
            [base] if base.suffix else [base.with_suffix(s) for s in (".ipynb", ".md", ".myst")]
        )
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise FileNotFoundError(
                f"_toc.yml lists {name!r} but none of {[str(c) for c in candidates]} exists"
            )
        out.append(found)
    return out


def parameters_for(
    profile: str, device: str, seed: int, threads: int, smoke: bool = False
) -> dict[str, Any]:
    """The papermill parameters for every notebook (validated; ``smoke`` only with ``paper``)."""
    check_profile(profile)
    check_smoke(profile, smoke)
    resolve_device(device)
    if threads < 0:
        raise ValueError(f"threads must be >= 0 (0 = all cores), got {threads}")
    return {
        "PROFILE": profile,
        "DEVICE": device,
        "SEED": int(seed),
        "THREADS": int(threads),
        "SMOKE": bool(smoke),
    }


def kernel_env(params: dict[str, Any], cache: bool = True) -> dict[str, str]:
    """Environment for the kernel: ``HVAE_*`` mirrors of the parameters (a flag as ``1`` or
    ``0``, e.g. ``HVAE_SMOKE``) and BLAS threads."""
    env = {f"HVAE_{k}": str(int(v) if isinstance(v, bool) else v) for k, v in params.items()}
    threads = int(params.get("THREADS", 1)) or (os.cpu_count() or 1)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    env["HVAE_CACHE"] = "1" if cache else "0"
    return env


def execute_notebook(
    src: Path,
    dst: Path,
    parameters: dict[str, Any],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    progress: bool = True,
) -> NotebookRun:
    """Execute ``src`` with papermill into ``dst``; never raises for a failing cell.

    The kernel runs in ``cwd`` (default: the folder of ``dst``) with ``env`` added to the
    environment. A failing cell is reported in the returned :class:`NotebookRun`; ``dst`` then
    holds the notebook executed up to the failure.

    ``env`` is set in ``os.environ`` while papermill runs (the kernel inherits it), so two
    threads must not call this at once; :func:`build` runs each notebook in a worker process
    of its own instead.
    """
    import papermill as pm

    dst.parent.mkdir(parents=True, exist_ok=True)
    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(
            str(src),
            str(dst),
            parameters=parameters,
            cwd=str(cwd or dst.parent),
            kernel_name="python3",
            progress_bar=progress,
            log_output=False,
        )
        ok, error = True, ""
    except Exception as exc:  # papermill raises PapermillExecutionError for a failed cell
        ok, error = False, f"{type(exc).__name__}: {exc}"
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return NotebookRun(
        path=str(src),
        seconds=time.perf_counter() - t0,
        ok=ok,
        error=error,
        parameters=dict(parameters),
    )


def hardware_summary() -> dict[str, str]:
    """CPU model and core count, GPU name (if any) and the OS, for the status page."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": f"{cpu} ({os.cpu_count()} cores)", "os": platform.platform()}
    try:
        import torch

        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    except Exception:  # noqa: BLE001
        info["gpu"] = "unknown"
    return info


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries the book depends on."""
    from importlib import metadata

    out = {"python": platform.python_version(), "hvae_lib": __version__}
    for dist in (
        "torch",
        "numpy",
        "scikit-learn",
        "matplotlib",
        "seaborn",
        "papermill",
        "jupyter-book",
        "sphinx",
        "myst-nb",
        "ipywidgets",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def status_markdown(
    runs: Sequence[NotebookRun],
    params: dict[str, Any],
    root: Path = REPO_ROOT,
    *,
    jobs: int | None = None,
    wall_seconds: float | None = None,
) -> str:
    """The status page: one row per notebook (status, wall and CPU time, the kernel's peak
    resident memory), hardware, versions.

    Parameters
    ----------
    runs : the notebooks' outcomes, in the order of ``_toc.yml``.
    params : the parameters of the build.
    root : the repository; paths are shown relative to it.
    jobs : how many notebooks could run at once (shown when given).
    wall_seconds : the wall time of the whole execution (shown when given).
    """
    hw = hardware_summary()
    lines = [
        "(status)=",
        "# Build status",
        "",
        "This page is written by `python -m hvae_lib build` each time the book is built.",
        "",
        ":::{admonition} Hardware and settings of this build",
        ":class: note",
        f"Built {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} with profile "
        f"`{params['PROFILE']}`"
        + (" (smoke: steps and data cut, numbers mean nothing)" if params.get("SMOKE") else "")
        + f", device `{params['DEVICE']}`, seed `{params['SEED']}`, "
        f"threads `{params['THREADS']}`"
        + (f", jobs `{jobs}`" if jobs is not None else "")
        + f", on CPU: {hw['cpu']}; GPU: {hw['gpu']}; {hw['os']}.",
        ":::",
        "",
    ]
    reused = [r for r in runs if r.reused]
    if wall_seconds is not None and len(reused) == len(runs):
        lines += ["No notebook was executed in this build.", ""]
    elif wall_seconds is not None:
        kernel_cpu = sum(r.cpu_seconds or 0.0 for r in runs if not r.reused)
        lines += [
            f"Executing the notebooks took {wall_seconds:.1f} s of wall time"
            + (f" with up to {jobs} at once" if jobs is not None else "")
            + f", and their kernels {kernel_cpu:.1f} s of CPU time. A notebook's CPU time is "
            "its kernel's (user and system), so with several threads it can exceed its wall "
            "time; its peak memory is the largest resident set size of its kernel.",
            "",
        ]
    if reused:
        lines += [
            f"{len(reused)} of {len(runs)} notebooks were not executed again: an earlier build "
            "had run them with the same cells, parameters, `hvae_lib` source, `HVAE_*` "
            "environment, library versions and hardware, and after the same runs of the "
            "notebooks they need, so this book shows that run; the table gives its date and "
            "its times. `python -m hvae_lib build --rerun` executes every notebook.",
            "",
        ]
    lines += [
        "| notebook | status | wall time (s) | CPU time (s) | peak memory (MiB) | profile | device |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for r in runs:
        rel = (
            Path(r.path).resolve().relative_to(root.resolve())
            if Path(r.path).is_absolute()
            else Path(r.path)
        )
        if r.skipped:
            state, wall, cpu, rss = r.error or "not run", "", "", ""
        else:
            state, wall = ("ok" if r.ok else "FAILED"), f"{r.seconds:.1f}"
            if r.reused:
                state = f"ok, reused (ran {r.stored_at})"
            cpu = "" if r.cpu_seconds is None else f"{r.cpu_seconds:.1f}"
            rss = "" if r.max_rss is None else f"{r.max_rss / 2**20:.0f}"
        lines.append(
            f"| `{rel}` | {state} | {wall} | {cpu} | {rss} | "
            f"{r.parameters.get('PROFILE', '')}{' (smoke)' if r.parameters.get('SMOKE') else ''}"
            f" | {r.parameters.get('DEVICE', '')} |"
        )
    lines += ["", "| library | version |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in library_versions().items()]
    lines.append("")
    return "\n".join(lines)


PAIRED_FORMATS = "ipynb,md:myst"


def paired_source(notebook: Path) -> Path | None:
    """The MyST Markdown source ``NAME.md`` paired with ``NAME.ipynb`` by jupytext, if any.

    A chapter is written once, as ``book/NAME.md`` (front matter ``jupytext: formats:
    ipynb,md:myst``); ``book/NAME.ipynb`` is derived from it and keeps only the reference
    outputs of the ``# NBVAL_CHECK_OUTPUT`` cells. Returns ``None`` for a notebook without a
    paired ``.md``.
    """
    notebook = Path(notebook)
    md = notebook.with_suffix(".md")
    if notebook.suffix != ".ipynb" or not md.is_file():
        return None
    head = md.read_text(encoding="utf-8")[:2000]
    return md if "formats: ipynb,md:myst" in head else None


def read_inputs(notebook: Path) -> Any:
    """The notebook to execute: the inputs of the paired ``.md`` (the source people edit) when
    there is one, else the ``.ipynb`` itself (nbformat v4)."""
    import jupytext
    import nbformat

    md = paired_source(notebook)
    if md is None:
        return nbformat.read(notebook, as_version=4)
    nb = jupytext.read(md)
    nb.metadata.get("jupytext", {}).pop("text_representation", None)
    return nb


def notebook_needs(notebook: Path) -> list[str] | str:
    """The notebooks that ``notebook`` declares it needs: a list of names, or ``"all"``.

    The declaration is the notebook metadata ``hvae: {needs: ...}``, read with
    :func:`read_inputs`, so for a jupytext pair from the front matter of the ``.md`` (which
    also needs ``jupytext: notebook_metadata_filter: hvae``, else jupytext drops the key when
    it writes the ``.md``). ``needs`` is a list of notebook names of ``_toc.yml``
    (``03_rate_splitting`` or ``book/03_rate_splitting``), one such name, or ``all`` (every
    other notebook of the build). A notebook without the key needs none (an empty list).

    Raises
    ------
    ValueError
        If the ``hvae`` metadata is not a mapping, has a key other than ``needs``, or ``needs``
        is neither ``all``, a name nor a list of names (the message names the notebook).
    """
    notebook = Path(notebook)
    meta = read_inputs(notebook).metadata.get(NEEDS_KEY)
    where = f"{notebook.name}: the `{NEEDS_KEY}` metadata"
    if meta is None:
        return []
    if not isinstance(meta, dict):
        raise ValueError(
            f"{where} must be a mapping such as `{NEEDS_KEY}: {{needs: [NAME]}}`, got {meta!r}"
        )
    unknown = sorted(str(k) for k in meta if k != "needs")
    if unknown:
        raise ValueError(f"{where} has the unknown key(s) {unknown}; the valid key is 'needs'")
    needs = meta.get("needs")
    if needs is None:
        return []
    if needs == NEEDS_ALL:
        return NEEDS_ALL
    if isinstance(needs, str):
        needs = [needs]
    if not isinstance(needs, list) or not all(isinstance(n, str) and n for n in needs):
        raise ValueError(
            f"{where}: `needs` must be `{NEEDS_ALL}`, a notebook name or a list of notebook "
            f"names, got {needs!r}"
        )
    return list(needs)


def dependency_graph(notebooks: Sequence[Path], root: Path = REPO_ROOT) -> dict[Path, list[Path]]:
    """The notebooks that each of ``notebooks`` needs (see :func:`notebook_needs`), checked.

    Returns a mapping from each notebook to those it needs, in the order of ``notebooks``;
    ``needs: all`` stands for every other notebook.

    Raises
    ------
    ValueError
        If a notebook needs a name that is none of ``notebooks`` (the message names it and
        lists the valid names), or if the needs form a cycle (the message shows the cycle).
    """
    notebooks = [Path(nb) for nb in notebooks]
    names: dict[str, Path] = {}
    for nb in notebooks:
        names[nb.stem] = nb
        try:
            names[nb.relative_to(root).with_suffix("").as_posix()] = nb
        except ValueError:  # a notebook outside root: its stem only
            pass
    needs_all: set[Path] = set()
    graph: dict[Path, list[Path]] = {}
    for nb in notebooks:
        declared = notebook_needs(nb)
        if declared == NEEDS_ALL:
            needs_all.add(nb)
            graph[nb] = [other for other in notebooks if other != nb]
            continue
        unknown = [name for name in declared if name not in names]
        if unknown:
            raise ValueError(
                f"{nb.name} needs {', '.join(map(repr, unknown))}, which is not a notebook of "
                f"_toc.yml; valid names are {', '.join(repr(n.stem) for n in notebooks)} "
                f"(or `needs: {NEEDS_ALL}`)"
            )
        wanted = {names[name] for name in declared}
        graph[nb] = [other for other in notebooks if other in wanted]
    state: dict[Path, str] = {}
    path: list[Path] = []

    def visit(nb: Path) -> None:
        state[nb] = "visiting"
        path.append(nb)
        for dep in graph[nb]:
            if state.get(dep) == "visiting":
                cycle = [*path[path.index(dep) :], dep]
                alls = sorted(n.stem for n in cycle if n in needs_all)
                raise ValueError(
                    "the notebooks' needs form a cycle, so none of them could start: "
                    + " -> ".join(n.stem for n in cycle)
                    + " (A -> B: A needs B"
                    + (f"; {', '.join(alls)} declare `needs: {NEEDS_ALL}`" if alls else "")
                    + "); remove one of these needs"
                )
            if dep not in state:
                visit(dep)
        path.pop()
        state[nb] = "done"

    for nb in notebooks:
        if nb not in state:
            visit(nb)
    return graph


def default_jobs(threads: int) -> int:
    """How many notebooks :func:`build` runs at once by default: the cores divided by the
    threads per notebook, at least 1 (``threads=0``, all cores per notebook: 1). The cores are
    those this process may run on (a container's CPU set), not all of the machine's."""
    cores = available_cores()
    return max(1, cores // threads) if threads > 0 else 1


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. a container's CPU set; where
    the platform cannot tell, ``os.cpu_count()``), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def check_jobs(jobs: int | None, threads: int) -> int:
    """The number of notebooks to run at once: ``jobs``, or :func:`default_jobs` for ``None``.

    Raises
    ------
    ValueError
        If ``jobs`` is not a whole number >= 1 (the message says what is valid).
    """
    if jobs is None:
        return default_jobs(threads)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(
            f"jobs (notebooks executed at once) must be a whole number >= 1, or unset for the "
            f"default, the cores divided by the threads per notebook (here "
            f"{default_jobs(threads)}); got {jobs!r}"
        )
    return jobs


def run_worker(job: dict[str, Any]) -> None:
    """Execute one notebook for :func:`execute_notebooks`, in a worker process of its own.

    ``job`` holds ``src``, ``dst``, ``cwd`` (absolute paths), ``parameters``, ``progress``,
    ``env`` (the whole environment of the kernel: this process's ``os.environ`` is replaced by
    it) and ``result``, a file that receives the JSON of ``seconds`` (wall), ``ok``, ``error``,
    ``cpu_seconds`` and ``max_rss``. That CPU time (user + system) is the one of the processes
    this worker reaped while papermill ran: the kernel, which papermill waits for when it shuts
    it down, and whatever the kernel reaped in turn; the worker's own time is not in it.
    ``max_rss`` (bytes) is the largest peak resident set size among those processes (the
    kernel's, on Linux ``ru_maxrss`` of ``RUSAGE_CHILDREN``), ``None`` where the platform
    does not report it. Linux keeps a process's peak across ``exec``, so the figure is at least
    this worker's size when it forks the kernel (about 220 MiB with papermill loaded): an upper
    bound on the kernel's own peak, exact once the kernel outgrows that.
    """
    import resource

    os.environ.clear()
    os.environ.update(job["env"])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    try:
        run = execute_notebook(
            Path(job["src"]),
            Path(job["dst"]),
            job["parameters"],
            cwd=Path(job["cwd"]),
            progress=bool(job["progress"]),
        )
        seconds, ok, error = run.seconds, run.ok, run.error
    except Exception as exc:  # noqa: BLE001 - reported as the notebook's failure
        seconds, ok, error = time.perf_counter() - t0, False, f"{type(exc).__name__}: {exc}"
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # kilobytes on Linux, bytes on macOS; the worker reaps no other processes before papermill
    rss_unit = 1 if sys.platform == "darwin" else 1024
    max_rss = int(after.ru_maxrss) * rss_unit if after.ru_maxrss else None
    result = {
        "seconds": seconds,
        "ok": ok,
        "error": error,
        "cpu_seconds": cpu,
        "max_rss": max_rss,
    }
    Path(job["result"]).write_text(json.dumps(result))


def worker_context() -> Any:
    """The ``multiprocessing`` context of the notebook workers.

    ``forkserver`` where the platform has it: one fresh server process (started on first use,
    with this module and papermill imported) forks each worker, so a worker starts in a
    moment, shares no state with the caller's threads, and gets its environment only from its
    job. Elsewhere ``spawn`` (a fresh interpreter per worker).
    """
    import multiprocessing

    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__, "papermill"])
        return ctx
    return multiprocessing.get_context("spawn")


def _names(items: Sequence[Path]) -> str:
    stems = [p.stem for p in items]
    return ", ".join(stems) if len(stems) < 2 else ", ".join(stems[:-1]) + " and " + stems[-1]


def _not_run(nb: Path, blocked: Sequence[Path], runs: dict[Path, NotebookRun]) -> str:
    """Why ``nb`` is not run: the notebooks it needs that failed or were not run."""
    failed = [d for d in blocked if not runs[d].skipped]
    not_run = [d for d in blocked if runs[d].skipped]
    reasons = [f"needs {_names(failed)}, which failed"] if failed else []
    if not_run:
        reasons.append(f"needs {_names(not_run)}, which was not run")
    return "not run: " + "; ".join(reasons)


def execute_notebooks(
    notebooks: Sequence[Path],
    graph: dict[Path, list[Path]],
    params: dict[str, Any],
    env: dict[str, str],
    *,
    root: Path,
    staging: Path,
    executed: Path,
    jobs: int = 1,
    progress: bool = True,
    poll_seconds: float = 0.1,
) -> tuple[list[NotebookRun], float]:
    """Execute the staged copies of ``notebooks``, up to ``jobs`` at once, in needs order.

    Each notebook runs in a worker process of its own (:func:`run_worker`,
    :func:`worker_context`) with one kernel, whose environment is this process's
    ``os.environ`` plus ``env``, passed to the worker explicitly. A notebook starts, in the
    order of ``notebooks``, once every notebook of ``notebooks`` that it needs (``graph``) has
    finished OK; it is not run if one of them failed or was not run. Needs outside
    ``notebooks`` are not waited for. An executed copy gets its injected parameters cell
    hidden; a successful one is also copied to ``executed``. A failing notebook does not stop
    the others and raises nothing.

    Returns
    -------
    tuple[list[NotebookRun], float]
        The runs in the order of ``notebooks``, and the wall time of the whole execution.
    """
    import tempfile

    order = [Path(nb) for nb in notebooks]
    selected = set(order)
    waits = {nb: [d for d in graph.get(nb, []) if d in selected] for nb in order}
    runs: dict[Path, NotebookRun] = {}
    pending = list(order)
    running: dict[Path, tuple[Any, Path, float]] = {}  # process, result file, start
    kernel_environment = {**os.environ, **env}
    ctx = worker_context()

    def report(nb: Path, run: NotebookRun) -> None:
        runs[nb] = run
        head = f"[{len(runs)}/{len(order)}]"
        if run.skipped:
            print(f"{head} not run {nb.relative_to(root)}: {run.error}", flush=True)
            return
        cpu = "?" if run.cpu_seconds is None else f"{run.cpu_seconds:.1f}"
        times = f"{run.seconds:.1f} s wall, {cpu} s CPU" + (
            "" if run.max_rss is None else f", peak {run.max_rss / 2**20:.0f} MiB"
        )
        if run.ok:
            print(f"{head} ok {nb.relative_to(root)} in {times}", flush=True)
        else:
            first = run.error.splitlines()[0] if run.error else ""
            print(f"{head} FAILED {nb.relative_to(root)} after {times}\n    {first}", flush=True)

    def start(nb: Path, folder: Path) -> None:
        dst = (staging / nb.relative_to(root)).resolve()
        result = folder / f"{order.index(nb)}.json"
        job = {
            "src": str(dst),
            "dst": str(dst),
            "cwd": str(dst.parent),
            "parameters": params,
            "progress": progress,
            "env": kernel_environment,
            "result": str(result),
        }
        print(
            f"started {nb.relative_to(root)} (profile={params['PROFILE']}, "
            f"device={params['DEVICE']}, threads={params['THREADS']})",
            flush=True,
        )
        process = ctx.Process(target=run_worker, args=(job,), name=f"hvae-{nb.stem}")
        started = time.perf_counter() - t0
        process.start()  # the first start also starts the forkserver
        running[nb] = (process, result, started)

    def finish(nb: Path) -> None:
        process, result, started = running.pop(nb)
        finished = time.perf_counter() - t0
        out = (
            json.loads(result.read_text())
            if result.is_file()
            else {
                "seconds": finished - started,
                "ok": False,
                "error": f"the worker process exited with code {process.exitcode} "
                "without a result; see its messages above",
                "cpu_seconds": None,
                "max_rss": None,
            }
        )
        dst = staging / nb.relative_to(root)
        if dst.is_file():
            hide_injected_parameters(dst)
        if out["ok"]:
            (executed / nb.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(dst, executed / nb.relative_to(root))
        report(
            nb,
            NotebookRun(
                path=str(nb),  # the chapter, not its staged copy
                seconds=float(out["seconds"]),
                ok=bool(out["ok"]),
                error=str(out["error"]),
                parameters=dict(params),
                cpu_seconds=out["cpu_seconds"],
                max_rss=out.get("max_rss"),
                needs=[d.stem for d in waits[nb]],
                started=started,
                finished=finished,
            ),
        )

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hvae-build-") as tmp:
        try:
            while pending or running:
                changed = True
                while changed:  # not run: something it needs failed or was not run
                    changed = False
                    for nb in list(pending):
                        blocked = [d for d in waits[nb] if d in runs and not runs[d].ok]
                        if blocked:
                            pending.remove(nb)
                            now = time.perf_counter() - t0
                            run = NotebookRun(
                                path=str(nb),
                                seconds=0.0,
                                ok=False,
                                error=_not_run(nb, blocked, runs),
                                parameters=dict(params),
                                skipped=True,
                                needs=[d.stem for d in waits[nb]],
                                started=now,
                                finished=now,
                            )
                            report(nb, run)
                            changed = True
                for nb in list(pending):
                    if len(running) < jobs and all(d in runs and runs[d].ok for d in waits[nb]):
                        pending.remove(nb)
                        start(nb, Path(tmp))
                if not running:
                    if pending:  # cannot happen for a graph checked by dependency_graph
                        raise RuntimeError(f"cannot start {_names(pending)}: needs form a cycle")
                    break
                time.sleep(poll_seconds)
                for nb in [nb for nb, (p, _, _) in running.items() if not p.is_alive()]:
                    running[nb][0].join()
                    finish(nb)
        finally:  # interrupted: Ctrl-C reaches the workers too; give them time to stop kernels
            deadline = time.monotonic() + 5.0
            for process, _, _ in running.values():
                process.join(max(0.0, deadline - time.monotonic()))
                if process.is_alive():
                    process.terminate()
                    process.join()
    return [runs[nb] for nb in order], time.perf_counter() - t0


def _copy_sources(root: Path, staging: Path, notebooks: Iterable[Path] = ()) -> None:
    """Stage ``_config.yml``, ``_toc.yml`` and ``book/`` for jupyter-book.

    Of each jupytext pair only the ``.ipynb`` is staged (written from the ``.md``), so that
    jupyter-book sees one file per document.
    """
    import nbformat

    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(root / name, staging / name)
    paired = {md.resolve() for nb in (root / "book").glob("*.ipynb") if (md := paired_source(nb))}

    def ignore(folder: str, names: list[str]) -> set[str]:
        skip = {n for n in names if n in {".ipynb_checkpoints", "__pycache__", "_build"}}
        return skip | {n for n in names if (Path(folder) / n).resolve() in paired}

    shutil.copytree(root / "book", staging / "book", ignore=ignore)
    for nb in notebooks:
        if paired_source(nb) is not None:
            nbformat.write(read_inputs(nb), staging / nb.relative_to(root))


def _copy_side_outputs(source: Path, target: Path, stem: str) -> None:
    """Make the side outputs of notebook ``stem`` under ``target`` those under ``source``
    (:func:`hvae_lib.book.reuse.side_outputs`): its old ones there are removed first."""
    for f in reuse.side_outputs(target, stem):
        f.unlink()
    for f in reuse.side_outputs(source, stem):
        dst = target / f.relative_to(source)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dst)


def hide_injected_parameters(path: Path) -> None:
    """Tag papermill's ``injected-parameters`` cell ``remove-cell`` in an executed notebook, so
    the rendered page does not show it (the parameters cell itself is collapsed by its own
    ``hide-input`` tag)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
            changed = True
    if changed:
        nbformat.write(nb, path)


# ---------------------------------------------------------------------------- offline assets
#: The npm project (``web/package.json`` + committed ``package-lock.json``) that pins them.
WEB_DIR = REPO_ROOT / "web"
#: Where the assets are served from, relative to the HTML root. Deliberately not ``_static``:
#: jupyter-book 1 injects every JavaScript file under a static path into every page.
ASSETS_URL_DIR = "_assets"
#: (source under ``web/node_modules``, destination under ``_build/html/_assets``)
OFFLINE_ASSETS: tuple[tuple[str, str], ...] = (
    ("mathjax/es5", "mathjax"),  # MathJax 3.2.2, all components
    ("@jupyter-widgets/html-manager/dist", "jupyter-widgets/html-manager/dist"),  # ipywidgets 8.1
    ("requirejs/require.js", "require.js"),  # RequireJS 2.3.8
)
MATHJAX_ENTRY = "mathjax/tex-mml-chtml.js"  # the component Sphinx loads from the CDN by default
WIDGETS_ENTRY = "jupyter-widgets/html-manager/dist/embed-amd.js"
REQUIRE_ENTRY = "require.js"


def install_offline_assets(web_dir: Path = WEB_DIR) -> Path:
    """Install the pinned JavaScript with ``npm ci`` (from the lockfile) unless it is there.

    Returns ``web_dir / "node_modules"``.

    Raises
    ------
    RuntimeError
        If npm is missing or ``npm ci`` fails (the message says how to fix it).
    FileNotFoundError
        If ``web/package-lock.json`` is missing.
    """
    lock = web_dir / "package-lock.json"
    if not lock.is_file():
        raise FileNotFoundError(f"no lockfile at {lock}; the offline assets are pinned there")
    modules = web_dir / "node_modules"
    stamp = modules / ".hvae-installed"
    if stamp.is_file() and stamp.read_text() == lock.read_text():
        return modules
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            "--offline-assets needs npm (Node.js) to install the pinned MathJax, "
            "widget manager and RequireJS from the npm registry; install Node.js "
            "(e.g. `apt-get install npm`) or build without --offline-assets"
        )
    print(f"installing the offline assets: npm ci in {web_dir}", flush=True)
    code = subprocess.call(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=str(web_dir)
    )
    if code != 0:
        raise RuntimeError(f"`npm ci` failed in {web_dir} (exit {code}); see npm's message above")
    stamp.write_text(lock.read_text())
    return modules


def offline_sphinx_config() -> dict[str, Any]:
    """Sphinx settings that load MathJax and the widget manager from ``_assets/``.

    Sphinx prefixes a relative script path with ``_static/``, hence the ``../``; the
    resulting relative URL resolves to ``<html root>/_assets/...`` from every page.
    """
    up = f"../{ASSETS_URL_DIR}"
    return {
        "mathjax_path": f"{up}/{MATHJAX_ENTRY}",
        "nb_ipywidgets_js": {
            f"{up}/{REQUIRE_ENTRY}": {},
            f"{up}/{WIDGETS_ENTRY}": {},
        },
        # module URIs (and so the widget fonts) resolve under _assets/ (hvae_lib.book.sphinx_ext)
        "hvae_requirejs_paths": {"@jupyter-widgets": f"../{ASSETS_URL_DIR}/jupyter-widgets"},
    }


def use_offline_assets(staging: Path) -> None:
    """Add :func:`offline_sphinx_config` to the staged ``_config.yml``."""
    import yaml

    path = staging / "_config.yml"
    config = yaml.safe_load(path.read_text())
    config.setdefault("sphinx", {}).setdefault("config", {}).update(offline_sphinx_config())
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))


def copy_offline_assets(modules: Path, html_dir: Path) -> Path:
    """Copy :data:`OFFLINE_ASSETS` from ``node_modules`` into ``html_dir/_assets``."""
    dest_root = html_dir / ASSETS_URL_DIR
    for src_rel, dst_rel in OFFLINE_ASSETS:
        src, dst = modules / src_rel, dest_root / dst_rel
        if not src.exists():
            raise FileNotFoundError(f"offline asset {src} is missing; delete {modules} and rebuild")
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    return dest_root


def needs_order(notebooks: Sequence[Path], graph: dict[Path, list[Path]]) -> list[Path]:
    """``notebooks`` ordered so that each comes after those of them it needs (``graph``,
    acyclic), otherwise in their given order."""
    chosen = set(notebooks)
    out: list[Path] = []
    seen: set[Path] = set()

    def visit(nb: Path) -> None:
        if nb in seen:
            return
        seen.add(nb)
        for d in graph.get(nb, []):
            if d in chosen:
                visit(d)
        out.append(nb)

    for nb in notebooks:
        visit(nb)
    return out


def notebook_keys(
    notebooks: Sequence[Path],
    graph: dict[Path, list[Path]],
    params: dict[str, Any],
    env: dict[str, str],
    staging: Path,
    root: Path,
) -> dict[Path, str]:
    """The reuse key (:func:`hvae_lib.book.reuse.notebook_key`) of each of ``notebooks``, from
    its staged copy, after the keys of the notebooks it needs."""
    versions, hardware = library_versions(), hardware_summary()
    keys: dict[Path, str] = {}
    for nb in needs_order(notebooks, graph):
        keys[nb] = reuse.notebook_key(
            staging / nb.relative_to(root),
            params,
            env,
            [keys[d] for d in graph.get(nb, []) if d in keys],
            versions=versions,
            hardware=hardware,
        )
    return keys


def build(
    profile: str = "quick",
    device: str = "auto",
    seed: int = 0,
    threads: int = 1,
    *,
    root: Path = REPO_ROOT,
    output: Path | None = None,
    only: Iterable[str] | None = None,
    cache: bool = True,
    html: bool = True,
    progress: bool = True,
    offline_assets: bool = False,
    jobs: int | None = None,
    smoke: bool = False,
    rerun: bool = False,
) -> int:
    """Execute the book's notebooks and build the HTML; return a process exit code.

    Parameters
    ----------
    profile, device, seed, threads : the notebooks' parameters (``threads=0``: all cores).
    smoke : the smoke form of the paper profile (parameter ``SMOKE``; ``paper`` only).
    root : the repository (holding ``_config.yml``, ``_toc.yml``, ``book/``).
    output : where ``_build/`` goes (default ``root``); the HTML lands in ``output/_build/html``.
    only : execute only notebooks whose file name contains one of these strings; the others
        are staged as executed by the last build into the same ``output`` (kept in
        ``_build/executed``, their claims in ``_build/executed/claims``, so that the ledger
        still reads them), or unexecuted if there is none (their glue references then warn).
        For quick iterations, not for a publishable build.
    cache : allow the notebooks to use the result cache, and keep executed notebooks in it
        (``<cache>/executed``, :mod:`hvae_lib.book.reuse`): a notebook whose key (cells,
        parameters, ``hvae_lib`` source, ``HVAE_*`` environment, versions, hardware and the
        keys of what it needs) matches a stored run is not executed again, unless ``rerun``
        or ``only`` is given; the status page says which were reused.
    rerun : execute every selected notebook even where a stored run has the same key.
    html : run jupyter-book after executing.
    offline_assets : serve MathJax 3, the jupyter-widgets HTML manager and RequireJS from the
        book (``_build/html/_assets``, installed by npm from ``web/package-lock.json``) instead
        of their CDNs, so the book typesets math and shows widgets without a network.
    jobs : how many notebooks run at once, each in a worker process with one kernel (default
        :func:`default_jobs`: the cores divided by ``threads``, at least 1). A notebook starts
        once those it needs (:func:`notebook_needs`) have finished OK; one whose needs failed
        is not run. Progress bars are shown only for ``jobs=1``. The workers are started by
        ``multiprocessing`` (:func:`worker_context`), so a script that calls ``build`` must
        guard its entry point with ``if __name__ == "__main__":``.

    Raises
    ------
    ValueError
        For bad parameters or ``jobs``, a notebook that needs a notebook ``_toc.yml`` does not
        list, or needs that form a cycle; all checked before anything runs.
    """
    params = parameters_for(profile, device, seed, threads, smoke)
    jobs = check_jobs(jobs, params["THREADS"])
    # absolute: jupyter-book runs with the staging folder as its working directory
    output = (Path(output) if output is not None else root).resolve()
    staging = output / "_build" / "staging"
    files = toc_files(root)
    notebooks = [f for f in files if f.suffix == ".ipynb"]
    graph = dependency_graph(notebooks, root)
    modules = install_offline_assets(root / "web") if offline_assets and html else None
    _copy_sources(root, staging, notebooks)
    if modules is not None:
        use_offline_assets(staging)
    env = kernel_env(params, cache=cache)
    env["HVAE_CLAIMS_DIR"] = str((staging / "claims").resolve())  # read by book/ledger.ipynb
    selected = [f for f in notebooks if only is None or any(s in f.name for s in only)]
    executed = output / "_build" / "executed"
    # the side outputs (claims) of the notebooks in `executed`, kept beside them for --only
    executed_claims = executed / "claims"
    for nb in notebooks:
        previous = executed / nb.relative_to(root)
        if nb not in selected and previous.is_file():
            shutil.copy2(previous, staging / nb.relative_to(root))
            _copy_side_outputs(executed_claims, staging / "claims", nb.stem)
            print(
                f"reusing the executed copy of {nb.relative_to(root)} from the last build",
                flush=True,
            )
    kernel_environment = {**os.environ, **env}
    store = default_cache_dir() / "executed" if cache else None
    # the keys read every HVAE_* data path and the library source: only when runs are stored
    keys = (
        notebook_keys(notebooks, graph, params, kernel_environment, staging, root)
        if store is not None
        else {}
    )
    reused: dict[Path, NotebookRun] = {}
    if store is not None and only is None and not rerun:
        for nb in needs_order(selected, graph):
            waits = [d for d in graph.get(nb, []) if d in selected]
            entry = reuse.lookup(store, nb.stem, keys[nb])
            if entry is None or not all(d in reused for d in waits):
                continue
            rel = nb.relative_to(root)
            reuse.restore(entry, staging / rel, staging / "claims")
            (executed / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(entry.notebook, executed / rel)
            known = set(NotebookRun.__dataclass_fields__)
            record = {k: v for k, v in entry.run.items() if k in known}
            record.update(
                path=str(nb), reused=True, stored_at=entry.stored_at, started=None, finished=None
            )
            reused[nb] = NotebookRun(**record)
            print(
                f"reused {rel}: run on {entry.stored_at} with the same key ({keys[nb][:12]}: "
                "cells, parameters, hvae_lib, environment, versions, hardware, needs)",
                flush=True,
            )
    to_run = [nb for nb in selected if nb not in reused]
    print(
        f"executing {len(to_run)} notebooks"
        + (f" ({len(reused)} reused)" if reused else "")
        + f", up to {jobs} at once, {params['THREADS'] or 'all'} thread(s) each",
        flush=True,
    )
    began = _dt.datetime.now(_dt.timezone.utc)
    executed_runs, wall = execute_notebooks(
        to_run,
        graph,
        params,
        env,
        root=root,
        staging=staging,
        executed=executed,
        jobs=jobs,
        progress=progress and jobs == 1,
    )
    if store is not None:
        for r in executed_runs:
            if r.ok:
                nb = Path(r.path)
                reuse.save(
                    store,
                    nb.stem,
                    keys[nb],
                    staging / nb.relative_to(root),
                    staging / "claims",
                    asdict(r),
                    stored_at=(began + _dt.timedelta(seconds=r.finished or 0.0)).strftime(
                        "%Y-%m-%d %H:%M UTC"
                    ),
                )
    # what `executed` now holds for each notebook that ran OK or was reused: its side outputs
    for nb in [Path(r.path) for r in executed_runs if r.ok] + list(reused):
        _copy_side_outputs(staging / "claims", executed_claims, nb.stem)
    by_path = {Path(r.path): r for r in executed_runs}
    runs = [reused.get(nb) or by_path[nb] for nb in selected]
    kernel_cpu = sum(r.cpu_seconds or 0.0 for r in executed_runs)
    print(f"executed in {wall:.1f} s wall, {kernel_cpu:.1f} s CPU in the kernels", flush=True)
    status_path = staging / "book" / "status.md"
    status_path.write_text(status_markdown(runs, params, root, jobs=jobs, wall_seconds=wall))
    (output / "_build").mkdir(parents=True, exist_ok=True)
    (output / "_build" / "status.json").write_text(
        json.dumps(
            {
                "parameters": params,
                "jobs": jobs,
                "execution_seconds": wall,
                "runs": [r.__dict__ for r in runs],
                "hardware": hardware_summary(),
                "versions": library_versions(),
            },
            indent=2,
        )
    )
    failed = [r for r in runs if not r.ok]
    code = 0
    if html:
        cmd = [
            sys.executable,
            "-c",
            "import sys; from jupyter_book.cli.main import main; sys.exit(main())",
            "build",
            str(staging),
            "--path-output",
            str(output),
            "-W",
            "-n",
            "--keep-going",
            "--all",
        ]
        print("building HTML:", " ".join(cmd), flush=True)
        code = subprocess.call(cmd, cwd=str(staging))
        index = output / "_build" / "html" / "index.html"
        if modules is not None:
            print(
                f"offline assets copied to {copy_offline_assets(modules, index.parent)}", flush=True
            )
        if code == 0:
            print(f"book written to {index}")
        else:
            print(f"jupyter-book failed (exit {code}); see the warnings above", file=sys.stderr)
    for r in failed:
        if not r.skipped:
            print(f"FAILED: {r.path}\n{r.error}", file=sys.stderr)
    for r in failed:
        if r.skipped:
            print(f"NOT RUN: {r.path} ({r.error})", file=sys.stderr)
    if failed:
        broken = [Path(r.path) for r in failed if not r.skipped]
        not_run = [Path(r.path) for r in failed if r.skipped]
        print(
            f"{len(broken)} of {len(runs)} notebooks failed: {_names(broken)}"
            + (f"; not run because of it: {_names(not_run)}" if not_run else ""),
            file=sys.stderr,
        )
    return 1 if failed else (1 if code else 0)


def resolve_notebook(path: Path) -> Path:
    """The ``.ipynb`` of a chapter given either file of its jupytext pair.

    Raises
    ------
    FileNotFoundError
        If neither the file nor its paired ``.ipynb`` exists (the message names the path).
    ValueError
        If a ``.md`` is given that is not a paired notebook source (no ``formats:
        ipynb,md:myst`` in its front matter).
    """
    path = Path(path)
    if path.suffix == ".md":
        nb = path.with_suffix(".ipynb")
        if not path.is_file():
            raise FileNotFoundError(f"no notebook source at {path.resolve()}")
        if paired_source(nb) is None and not nb.is_file():
            raise ValueError(
                f"{path} is not a notebook: its front matter has no "
                f"`jupytext: formats: {PAIRED_FORMATS}`"
            )
        return nb
    if not path.is_file():
        raise FileNotFoundError(f"no notebook at {path.resolve()}")
    return path


def run_one(
    notebook: Path,
    params: dict[str, Any],
    output: Path | None = None,
    cache: bool = True,
    progress: bool = True,
) -> int:
    """Execute one notebook (``python -m hvae_lib run``; the ``.md`` or the ``.ipynb`` of a
    pair, whose inputs come from the ``.md``); return an exit code."""
    import nbformat

    try:
        notebook = resolve_notebook(Path(notebook)).resolve()
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    dst = (
        Path(output) if output is not None else REPO_ROOT / "_build" / "executed" / notebook.name
    ).resolve()
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(read_inputs(notebook), dst)
    run = execute_notebook(
        dst,
        dst,
        params,
        cwd=notebook.parent,
        env=kernel_env(params, cache=cache),
        progress=progress,
    )
    if run.ok:
        print(f"executed {notebook} -> {dst} in {run.seconds:.1f} s")
        return 0
    print(f"FAILED after {run.seconds:.1f} s: {run.error}", file=sys.stderr)
    return 1


def strip_unchecked_outputs(nb: Any) -> Any:
    """Keep outputs only in cells marked ``# NBVAL_CHECK_OUTPUT``.

    The source notebooks keep just the reference outputs that nbval compares, so they stay
    small and their diffs readable. Checked cells keep their execution count (nbval treats a
    cell without one as never run); all other cells lose theirs.
    """
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if CHECK_MARK not in cell.source:
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
    nb.metadata.pop("papermill", None)
    return nb


def sync_inputs(notebook: Path) -> Any:
    """The stored ``.ipynb`` with the inputs of its paired ``.md`` and the outputs it had.

    This is ``jupytext --sync`` with the ``.md`` always taken as the source of the inputs (no
    reliance on file times): cells whose source is unchanged keep their stored outputs, so a
    prose edit needs no re-execution. Returns the combined notebook (not written).
    """
    import nbformat
    from jupytext.combine import combine_inputs_with_outputs

    notebook = Path(notebook)
    inputs = read_inputs(notebook)
    if paired_source(notebook) is None:
        return inputs
    if not notebook.is_file():
        return inputs
    return combine_inputs_with_outputs(inputs, nbformat.read(notebook, as_version=4))


_SAVE_FIGURE = "save_figure("
#: cell metadata that belongs to the inputs of a cell (compared across a pair)
_INPUT_METADATA = ("tags", "mystnb")


def pair_differences(notebook: Path) -> list[str]:
    """How the inputs of a pair's ``.ipynb`` differ from its ``.md`` (empty when they agree).

    Compared per cell: the cell type, the source and the input metadata (``tags`` and the
    ``mystnb`` options such as an image's alt text). So is the notebook metadata ``hvae`` (what
    the notebook needs, :func:`notebook_needs`), which the ``.md`` keeps only if its front matter
    has ``jupytext: notebook_metadata_filter: hvae``. A notebook without a paired ``.md`` is
    itself a difference.
    """
    import nbformat

    notebook = Path(notebook)
    if paired_source(notebook) is None:
        return [f"{notebook.name}: no paired {notebook.with_suffix('.md').name}"]
    md_nb = read_inputs(notebook)
    stored = nbformat.read(notebook, as_version=4)
    md_cells, nb_cells = md_nb.cells, stored.cells
    out = []
    if md_nb.metadata.get(NEEDS_KEY) != stored.metadata.get(NEEDS_KEY):
        out.append(f"{notebook.name}: its `{NEEDS_KEY}` metadata differs from its .md")
    kept = str(md_nb.metadata.get("jupytext", {}).get("notebook_metadata_filter", ""))
    if NEEDS_KEY in md_nb.metadata and NEEDS_KEY not in kept.replace(" ", "").split(","):
        out.append(
            f"{notebook.name}: its .md declares `{NEEDS_KEY}` without "
            f"`jupytext: notebook_metadata_filter: {NEEDS_KEY}` (jupytext would drop it)"
        )
    if len(md_cells) != len(nb_cells):
        out.append(f"{notebook.name}: {len(nb_cells)} cells, its .md has {len(md_cells)}")
    for i, (a, b) in enumerate(zip(md_cells, nb_cells)):
        meta_a = {k: a.metadata.get(k) for k in _INPUT_METADATA if k in a.metadata}
        meta_b = {k: b.metadata.get(k) for k in _INPUT_METADATA if k in b.metadata}
        if a.cell_type != b.cell_type or a.source != b.source or meta_a != meta_b:
            first = (a.source.splitlines() or [""])[0][:60]
            out.append(f"{notebook.name}: cell {i} differs from its .md ({first!r})")
    return out


def checked_cell_problems(nb: Any) -> list[str]:
    """Cells that break the stored-outputs convention of a derived ``.ipynb``.

    A cell marked ``# NBVAL_CHECK_OUTPUT`` needs stored outputs and an execution count (nbval
    skips a cell without one); every other cell must store none.
    """
    out = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if CHECK_MARK in cell.source:
            if not cell.outputs:
                out.append(f"cell {i}: checked but no stored outputs")
            if cell.execution_count is None:
                out.append(f"cell {i}: checked but no execution count")
        elif cell.outputs:
            out.append(f"cell {i}: not checked but stores {len(cell.outputs)} outputs")
    return out


def figures_without_alt(nb: Any) -> list[int]:
    """Indices of code cells that save a figure (``save_figure(``) without alt text in their
    ``mystnb.image.alt`` option."""
    out = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and _SAVE_FIGURE in cell.source:
            alt = cell.metadata.get("mystnb", {}).get("image", {}).get("alt", "")
            if not str(alt).strip():
                out.append(i)
    return out


def write_paired(nb: Any, notebook: Path) -> None:
    """Write the derived ``.ipynb`` of a pair: checked outputs only, no papermill metadata."""
    import nbformat

    nb = strip_unchecked_outputs(nb)
    nb.metadata.setdefault("jupytext", {})["formats"] = PAIRED_FORMATS
    nb.metadata["jupytext"].pop("text_representation", None)
    nbformat.validate(nb)
    nbformat.write(nb, notebook)


def sync(notebook: Path) -> int:
    """``python -m hvae_lib sync``: rewrite a pair's ``.ipynb`` from its ``.md`` (no execution)."""
    notebook = resolve_notebook(Path(notebook)).resolve()
    write_paired(sync_inputs(notebook), notebook)
    print(f"synced {notebook.name} from {notebook.with_suffix('.md').name}")
    return 0


def refresh(notebook: Path) -> int:
    """Re-execute a notebook in the test setting and store its checked outputs.

    The inputs come from the paired ``.md``; the run uses the quick profile on the CPU with one
    thread and no cache (as ``make test`` does), and only the outputs of cells marked
    ``# NBVAL_CHECK_OUTPUT`` are written to the ``.ipynb``: these are the reference values
    that nbval compares against.
    """
    import nbformat

    notebook = resolve_notebook(Path(notebook)).resolve()
    params = parameters_for("quick", "cpu", 0, 1)
    tmp = REPO_ROOT / "_build" / "refresh" / notebook.name
    tmp.parent.mkdir(parents=True, exist_ok=True)
    source = sync_inputs(notebook)
    nbformat.write(source, tmp)
    run = execute_notebook(
        tmp, tmp, params, cwd=notebook.parent, env=kernel_env(params, cache=False)
    )
    if not run.ok:
        print(f"FAILED: {run.error}", file=sys.stderr)
        return 1
    executed = nbformat.read(tmp, as_version=4)
    executed.cells = [
        c for c in executed.cells if "injected-parameters" not in c.metadata.get("tags", [])
    ]
    if len(source.cells) != len(executed.cells):
        raise RuntimeError(
            f"{notebook.name}: {len(executed.cells)} executed cells for {len(source.cells)} inputs"
        )
    for src_cell, ex_cell in zip(source.cells, executed.cells):
        if src_cell.cell_type == "code":
            src_cell.outputs = ex_cell.outputs
            src_cell.execution_count = (
                ex_cell.execution_count
            )  # nbval skips checked cells without one
    write_paired(source, notebook)
    print(f"refreshed {notebook} in {run.seconds:.1f} s")
    return 0


def _parse_value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point of ``python -m hvae_lib``."""
    parser = argparse.ArgumentParser(
        prog="python -m hvae_lib", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--profile",
            default=os.environ.get("HVAE_PROFILE", "quick"),
            help=f"one of: {', '.join(PROFILES)} (default: $HVAE_PROFILE or quick)",
        )
        p.add_argument(
            "--device",
            default=os.environ.get("HVAE_DEVICE", "auto"),
            help="auto (GPU if available, else CPU), cpu, cuda or cuda:N",
        )
        p.add_argument("--seed", type=int, default=int(os.environ.get("HVAE_SEED", "0")))
        p.add_argument(
            "--threads",
            type=int,
            default=int(os.environ.get("HVAE_THREADS", "1")),
            help="torch/BLAS threads per notebook (default 1; 0 = all cores). One thread is "
            "the robust choice on a small or shared machine: measured on 2 busy cores, "
            "chapter 1 took 291 s with 2 threads and 90-134 s with 1",
        )
        p.add_argument(
            "--no-cache",
            action="store_true",
            help="retrain everything (ignore the result cache; also when $HVAE_CACHE is 0)",
        )
        p.add_argument("--no-progress", action="store_true", help="hide progress bars")
        p.add_argument(
            "--smoke",
            action="store_true",
            default=os.environ.get("HVAE_SMOKE", "0") == "1",
            help="with --profile paper: its models, shapes and code paths with steps and data "
            "cut and synthetic stand-ins for missing data files, to run on a CPU in minutes "
            "(numbers mean nothing; every page says so); default: $HVAE_SMOKE=1",
        )

    b = sub.add_parser("build", help="execute the notebooks in _toc.yml and build the HTML book")
    common(b)
    b.add_argument(
        "--only", nargs="+", metavar="NAME", help="execute only notebooks whose name contains NAME"
    )
    b.add_argument(
        "--no-html", action="store_true", help="execute the notebooks but skip jupyter-book"
    )
    b.add_argument(
        "--rerun",
        action="store_true",
        help="execute every notebook, also those an earlier build ran with the same cells, "
        "parameters, hvae_lib, environment, versions and hardware (by default they are reused "
        "from the result cache; --no-cache neither reuses nor stores them)",
    )
    b.add_argument(
        "--offline-assets",
        action="store_true",
        help="serve MathJax, the widget manager and RequireJS from the book (pinned in "
        "web/package-lock.json, installed with npm) instead of CDNs",
    )
    b.add_argument(
        "--output",
        type=Path,
        default=None,
        help="folder that receives _build/ (default: the repository)",
    )
    b.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="notebooks executed at once, each with its own kernel (default: the cores "
        f"divided by --threads, at least 1; here {default_jobs(1)} with one thread). A "
        "notebook that declares `hvae: {needs: [NAME, ...]}` (or `needs: all`) in its front "
        "matter starts after those have finished OK",
    )
    r = sub.add_parser("run", help="execute one notebook with papermill")
    r.add_argument("notebook", type=Path)
    common(r)
    r.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="set a parameter (repeatable); VALUE is parsed as YAML (numbers, true/false)",
    )
    r.add_argument("-o", "--output", type=Path, help="executed copy (default _build/executed/NAME)")
    f = sub.add_parser(
        "refresh",
        help="re-execute a chapter (its .md or .ipynb) and store the outputs "
        "of its NBVAL_CHECK_OUTPUT cells in the .ipynb",
    )
    f.add_argument("notebook", type=Path, nargs="+")
    y = sub.add_parser(
        "sync",
        help="rewrite a chapter's .ipynb from its .md (inputs), keeping the stored "
        "outputs of unchanged cells; no execution",
    )
    y.add_argument("notebook", type=Path, nargs="+")
    grid_command.add_arguments(
        sub.add_parser(
            "grid",
            help="train chapter 3's beta grid into a directory (one process, or sharded "
            "under torchrun)",
        )
    )
    plan_command.add_arguments(
        sub.add_parser(
            "plan",
            help="time a few steps of every model of a profile and estimate its compute",
        )
    )
    args = parser.parse_args(argv)
    if args.command == "grid":
        return grid_command.run(args)
    if args.command == "plan":
        return plan_command.run(args)

    try:
        if args.command == "refresh":
            return max(refresh(nb) for nb in args.notebook)
        if args.command == "sync":
            return max(sync(nb) for nb in args.notebook)
        params = parameters_for(args.profile, args.device, args.seed, args.threads, args.smoke)
        if args.command == "build":
            return build(
                **{k: params[k.upper()] for k in ("profile", "device", "seed", "threads", "smoke")},
                only=args.only,
                cache=not args.no_cache and cache_enabled_by_env(),
                html=not args.no_html,
                progress=not args.no_progress,
                output=args.output,
                offline_assets=args.offline_assets,
                jobs=args.jobs,
                rerun=args.rerun,
            )
        for name, value in args.parameter:
            params[name] = _parse_value(value)
        params.update(
            parameters_for(
                str(params["PROFILE"]),
                str(params["DEVICE"]),  # re-validate
                int(params["SEED"]),
                int(params["THREADS"]),
                bool(params["SMOKE"]),
            )
        )
        return run_one(
            args.notebook,
            params,
            args.output,
            cache=not args.no_cache and cache_enabled_by_env(),
            progress=not args.no_progress,
        )
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
