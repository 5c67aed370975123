"""Executed notebooks kept across builds: what makes a warm build warm.

A notebook that ran OK is stored in the result cache, in ``<cache>/executed/<stem>-<key>/``:
the executed notebook, the files it wrote into the claims folder and the record of its run
(wall and CPU time, peak memory, when). A later build whose notebook has the same key shows
that copy instead of executing the notebook again.

The key (:func:`notebook_key`) is a SHA-256 of everything that decides what a notebook
prints:

- its cells (type, source and metadata) and the notebook's metadata, as staged for execution;
- the parameters (profile, device, seed, threads, smoke);
- every ``HVAE_*`` variable of the kernel's environment except the two that only say where
  the cache and the claims live (and the browser tests' own), with, for a variable that names
  an existing file or folder, the names, sizes and modification times of the files there (a
  data file replaced in place changes the key);
- the bytes of every ``.py`` file of ``hvae_lib``
  (:func:`hvae_lib.config.library_source_digest`);
- the versions of Python and of the book's libraries, and the hardware (CPU model and core
  count, GPU, OS);
- the keys of the notebooks it needs (``hvae: needs``), so that a change upstream runs the
  notebooks downstream again.

A notebook is reused only when every notebook it needs in the same build was reused too.
``python -m hvae_lib build --rerun`` executes everything (and stores the new runs);
``--no-cache`` neither reads nor writes the store.

A notebook's *side outputs* are the files under the claims folder named after it (any
subfolder): ``<stem>.json`` (:func:`hvae_lib.book.ledger.record_claims`) and
``*_<stem>.json`` (e.g. :func:`hvae_lib.experiments.ch04_bench.write_rows`). They are stored
with it and put back when it is reused, so that the notebooks that read them (the ledger, the
verdict page) find them whether their authors ran again or not.

Used in: :func:`hvae_lib.book.pipeline.build`; tests/test_book.py.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import library_source_digest

KEY_FORMAT = 1  # bump when the key's contents change, so that old entries are not matched
IGNORED_ENV = ("HVAE_CACHE_DIR", "HVAE_CLAIMS_DIR")  # where things live, not what they hold
IGNORED_ENV_PREFIXES = ("HVAE_BROWSER",)  # the browser tests' switches
KEEP_PER_NOTEBOOK = 3  # stored runs kept per notebook (the newest)
MAX_FINGERPRINT_FILES = 10_000  # a variable naming a huge folder: the first files, sorted


def path_fingerprint(value: str) -> list[list[Any]] | None:
    """``[[name, size, mtime_ns], ...]`` of the file ``value`` names, or of the files in the
    folder it names (sorted, at most ``MAX_FINGERPRINT_FILES``); ``None`` when ``value``
    names nothing that exists."""
    if not value:
        return None
    try:
        p = Path(value).expanduser()
        if p.is_file():
            st = p.stat()
            return [[p.name, st.st_size, st.st_mtime_ns]]
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file())[:MAX_FINGERPRINT_FILES]
            return [
                [str(f.relative_to(p)), (st := f.stat()).st_size, st.st_mtime_ns] for f in files
            ]
    except OSError:  # unreadable, too long a name: only the value itself counts
        return None
    return None


def keyed_environment(env: Mapping[str, str]) -> dict[str, list[Any]]:
    """The ``HVAE_*`` variables of ``env`` that enter the key, each as ``[value,
    path_fingerprint(value)]``."""
    return {
        k: [v, path_fingerprint(v)]
        for k, v in sorted(env.items())
        if k.startswith("HVAE_") and k not in IGNORED_ENV and not k.startswith(IGNORED_ENV_PREFIXES)
    }


def notebook_key(
    staged: Path,
    params: Mapping[str, Any],
    env: Mapping[str, str],
    needs: Sequence[str],
    *,
    versions: Mapping[str, str],
    hardware: Mapping[str, str],
) -> str:
    """The key of the staged notebook ``staged`` (what will be executed), run with ``params``
    in the kernel environment ``env``, after the notebooks whose keys are ``needs``; 32 hex
    digits. Outputs and execution counts of the staged file do not enter it."""
    import nbformat

    nb = nbformat.read(staged, as_version=4)
    payload = {
        "format": KEY_FORMAT,
        "metadata": nb.metadata,
        "cells": [[c.cell_type, c.source, c.get("metadata", {})] for c in nb.cells],
        "parameters": dict(params),
        "env": keyed_environment(env),
        "library": library_source_digest(),
        "versions": dict(versions),
        "hardware": dict(hardware),
        "needs": list(needs),
    }
    text = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def side_outputs(claims: Path, stem: str) -> list[Path]:
    """The files under ``claims`` that belong to the notebook ``stem``: named ``<stem>.json``
    or ``*_<stem>.json``, in any subfolder; sorted."""
    if not claims.is_dir():
        return []
    return sorted(
        f
        for f in claims.rglob("*.json")
        if f.is_file() and (f.stem == stem or f.stem.endswith(f"_{stem}"))
    )


@dataclass
class StoredRun:
    """One stored execution: its ``folder``, the run's record ``run`` (the fields of
    :class:`hvae_lib.book.pipeline.NotebookRun`) and ``stored_at`` (UTC, ISO 8601)."""

    folder: Path
    run: dict[str, Any]
    stored_at: str

    @property
    def notebook(self) -> Path:
        return self.folder / "notebook.ipynb"


def entry_folder(store: Path, stem: str, key: str) -> Path:
    return Path(store) / f"{stem}-{key}"


def lookup(store: Path, stem: str, key: str) -> StoredRun | None:
    """The stored run of notebook ``stem`` with ``key``, or ``None`` if there is none or it is
    incomplete or unreadable (then the notebook simply runs again)."""
    folder = entry_folder(store, stem, key)
    try:
        meta = json.loads((folder / "run.json").read_text())
        if meta.get("key") != key or not (folder / "notebook.ipynb").is_file():
            return None
        return StoredRun(folder, dict(meta["run"]), str(meta["stored_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save(
    store: Path,
    stem: str,
    key: str,
    notebook: Path,
    claims: Path,
    run: Mapping[str, Any],
    *,
    keep: int = KEEP_PER_NOTEBOOK,
    stored_at: str | None = None,
) -> Path:
    """Store the executed ``notebook`` of ``stem`` under ``key``, with its side outputs from
    ``claims`` (:func:`side_outputs`) and ``run`` (its record); ``stored_at`` says when it ran
    (default: now, UTC). Written to a temporary folder
    and renamed, so a reader never sees half an entry; the oldest entries of ``stem`` beyond
    ``keep`` are removed. Returns the entry's folder."""
    store = Path(store)
    store.mkdir(parents=True, exist_ok=True)
    final = entry_folder(store, stem, key)
    tmp = store / f".{stem}-{key}.{os.getpid()}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "side").mkdir(parents=True)
    shutil.copy2(notebook, tmp / "notebook.ipynb")
    for f in side_outputs(claims, stem):
        dst = tmp / "side" / f.relative_to(claims)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dst)
    if stored_at is None:
        stored_at = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    (tmp / "run.json").write_text(
        json.dumps({"key": key, "stored_at": stored_at, "run": dict(run)}, indent=1, default=str)
    )
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    entries = sorted(
        (p for p in store.glob(f"{stem}-*") if p.is_dir() and len(p.name) == len(final.name)),
        key=lambda p: p.stat().st_mtime_ns,
    )
    for old in entries[:-keep] if keep > 0 else []:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def restore(entry: StoredRun, notebook: Path, claims: Path) -> list[Path]:
    """Put a stored run back: its notebook to ``notebook`` and its side outputs under
    ``claims``. Returns the side files written."""
    notebook.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(entry.notebook, notebook)
    written = []
    side = entry.folder / "side"
    for f in sorted(side.rglob("*")) if side.is_dir() else []:
        if f.is_file():
            dst = claims / f.relative_to(side)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dst)
            written.append(dst)
    return written
