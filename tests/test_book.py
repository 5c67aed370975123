"""The execution pipeline: parameters are injected, failures are reported, the book builds."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat
import pytest

from hvae_lib import book
from hvae_lib.book import (
    REPO_ROOT,
    execute_notebook,
    kernel_env,
    pair_differences,
    parameters_for,
    pipeline,
    strip_unchecked_outputs,
    toc_files,
)


@pytest.fixture(autouse=True)
def own_result_cache(tmp_path, monkeypatch):
    """Each test builds with a result cache of its own, so that no stored run of another test
    (or of an earlier test session) is reused in its place (:mod:`hvae_lib.book.reuse`)."""
    monkeypatch.setenv("HVAE_CACHE_DIR", str(tmp_path / "result-cache"))


def make_notebook(path: Path, body: str, params: str | None = None) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    if params is None:
        params = (
            "import os\nPROFILE = os.environ.get('HVAE_PROFILE', 'quick')\nDEVICE = 'auto'\n"
            "SEED = 0\nTHREADS = 1"
        )
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Tiny"), cell, nbformat.v4.new_code_cell(body)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def outputs_text(nb) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_parameters_are_injected(tmp_path):
    src = make_notebook(
        tmp_path / "nb.ipynb",
        "print(PROFILE, DEVICE, SEED, THREADS)\n"
        "import os; print('env', os.environ['HVAE_SEED'], os.environ['OMP_NUM_THREADS'])",
    )
    params = parameters_for("paper", "cpu", 7, 2)
    run = execute_notebook(
        src, tmp_path / "out" / "nb.ipynb", params, env=kernel_env(params), progress=False
    )
    assert run.ok, run.error
    text = outputs_text(nbformat.read(tmp_path / "out" / "nb.ipynb", as_version=4))
    assert "paper cpu 7 2" in text and "env 7 2" in text


def test_failing_cell_is_reported(tmp_path):
    src = make_notebook(tmp_path / "bad.ipynb", "raise RuntimeError('boom')")
    run = execute_notebook(
        src, tmp_path / "out.ipynb", parameters_for("quick", "cpu", 0, 1), progress=False
    )
    assert not run.ok and "boom" in run.error


@pytest.mark.parametrize(
    "args, message",
    [
        (["build", "--profile", "bogus"], "valid profiles are: quick, paper"),
        (["build", "--device", "tpu"], "valid devices are"),
        (["run", "missing.ipynb"], "no notebook at"),
    ],
)
def test_cli_rejects_bad_input(args, message, capsys):
    assert book.main(args) == 2
    assert message in capsys.readouterr().err


def test_cli_run_with_parameter_override(tmp_path):
    src = make_notebook(tmp_path / "nb.ipynb", "print('seed', SEED, 'profile', PROFILE)")
    out = tmp_path / "executed.ipynb"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hvae_lib",
            "run",
            str(src),
            "-p",
            "SEED",
            "11",
            "--device",
            "cpu",
            "-o",
            str(out),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "seed 11 profile quick" in outputs_text(nbformat.read(out, as_version=4))


def test_toc_lists_existing_files_in_order():
    files = toc_files(REPO_ROOT)
    names = [f.name for f in files]
    assert (
        names[0] == "intro.md" and "01_rate_distortion.ipynb" in names and names[-1] == "status.md"
    )


def test_strip_keeps_only_checked_outputs():
    nb = nbformat.v4.new_notebook()
    keep = nbformat.v4.new_code_cell(
        "# NBVAL_CHECK_OUTPUT\nprint(1)",
        execution_count=3,
        outputs=[nbformat.v4.new_output("stream", text="1\n")],
    )
    drop = nbformat.v4.new_code_cell(
        "print(2)", execution_count=4, outputs=[nbformat.v4.new_output("stream", text="2\n")]
    )
    nb.cells = [keep, drop]
    strip_unchecked_outputs(nb)
    assert keep.outputs and not drop.outputs
    assert keep.execution_count == 3 and drop.execution_count is None


def test_tiny_book_builds_with_status_page(tmp_path, monkeypatch):
    """End to end on a one-notebook book: papermill, glue, status page, jupyter-book -W -n.

    ``--output`` is given relative to the working directory, as ``make smoke`` does (a relative
    path once reached jupyter-book, which runs inside the staging folder, and failed there).
    """
    root = tmp_path / "repo"
    (root / "book").mkdir(parents=True)
    shutil.copy2(REPO_ROOT / "_config.yml", root / "_config.yml")
    shutil.copy2(REPO_ROOT / "book" / "references.bib", root / "book" / "references.bib")
    shutil.copy2(REPO_ROOT / "book" / "favicon.svg", root / "book" / "favicon.svg")
    shutil.copytree(REPO_ROOT / "book" / "_static", root / "book" / "_static")
    (root / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nchapters:\n  - file: book/tiny\n  - file: book/status\n"
    )
    (root / "book" / "intro.md").write_text(
        "# Intro\n\nSee {ref}`status` and {cite}`kingma2014autoencoding`.\n\n"
        "```{bibliography}\n```\n"
    )
    (root / "book" / "status.md").write_text("(status)=\n# Status\n")
    nb = make_notebook(
        root / "book" / "tiny.ipynb", "from myst_nb import glue\nglue('answer', 6 * 7)"
    )
    nb_obj = nbformat.read(nb, as_version=4)
    nb_obj.cells.append(nbformat.v4.new_markdown_cell("The answer is {glue:}`answer`."))
    nbformat.write(nb_obj, nb)
    monkeypatch.chdir(tmp_path)
    out = Path("elsewhere")  # --output outside the repository, relative to the working dir
    code = book.build("quick", "cpu", 0, 1, root=root, output=out, progress=False)
    assert code == 0
    html = (out / "_build" / "html" / "book" / "tiny.html").read_text()
    assert "42" in html
    status = (out / "_build" / "html" / "book" / "status.html").read_text()
    assert "book/tiny.ipynb" in status and "quick" in status and str(tmp_path) not in status
    meta = json.loads((out / "_build" / "status.json").read_text())
    assert meta["runs"][0]["ok"] and meta["parameters"]["THREADS"] == 1
    assert meta["jobs"] == pipeline.default_jobs(1) and meta["runs"][0]["cpu_seconds"] > 0
    assert "CPU time (s)" in status and "of wall time with up to" in status
    # a broken cross-reference makes the build fail (-W -n)
    (root / "book" / "intro.md").write_text("# Intro\n\nSee {ref}`no-such-label`.\n")
    assert book.build("quick", "cpu", 0, 1, root=root, progress=False) != 0


def test_offline_assets_config_and_copy(tmp_path):
    """--offline-assets: the staged config points at _assets/, and the files land there."""
    import yaml

    staging = tmp_path / "staging"
    staging.mkdir()
    shutil.copy2(REPO_ROOT / "_config.yml", staging / "_config.yml")
    book.use_offline_assets(staging)
    cfg = yaml.safe_load((staging / "_config.yml").read_text())["sphinx"]["config"]
    assert cfg["mathjax_path"] == "../_assets/mathjax/tex-mml-chtml.js"
    assert list(cfg["nb_ipywidgets_js"]) == [
        "../_assets/require.js",
        "../_assets/jupyter-widgets/html-manager/dist/embed-amd.js",
    ]
    assert cfg["bibtex_reference_style"] == "author_year"  # the rest of the config is kept
    modules = tmp_path / "node_modules"
    for src, _ in book.OFFLINE_ASSETS:
        p = modules / src
        if p.suffix == ".js":
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("// js")
        else:
            p.mkdir(parents=True)
            (p / "x.js").write_text("// js")
    out = book.copy_offline_assets(modules, tmp_path / "html")
    assert (out / "require.js").is_file()
    assert (out / "mathjax" / "x.js").is_file()
    assert (out / "jupyter-widgets" / "html-manager" / "dist" / "x.js").is_file()
    assert "_static" not in str(out)
    shutil.rmtree(modules / "mathjax")
    with pytest.raises(FileNotFoundError, match="offline asset"):
        book.copy_offline_assets(modules, tmp_path / "html2")


def test_offline_assets_need_lockfile_and_npm(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="no lockfile"):
        book.install_offline_assets(tmp_path)
    (tmp_path / "package-lock.json").write_text("{}")
    monkeypatch.setattr(pipeline.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="needs npm"):
        book.install_offline_assets(tmp_path)
    # an installed tree with a matching stamp is reused without npm
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / ".hvae-installed").write_text("{}")
    assert book.install_offline_assets(tmp_path) == tmp_path / "node_modules"


def test_sphinx_ext_removes_duplicate_scripts():
    from sphinx.builders.html._assets import _JavaScript

    from hvae_lib.book.sphinx_ext import dedupe_scripts

    scripts = [
        _JavaScript(None, body="const A = 1"),
        _JavaScript("a.js"),
        _JavaScript("", body="const A = 1"),
        _JavaScript("a.js", defer="defer"),
        _JavaScript("a.js"),
    ]
    ctx = {"script_files": scripts}
    dedupe_scripts(None, "p", "page.html", ctx, None)
    assert ctx["script_files"] is scripts and len(scripts) == 3
    assert [s.filename for s in scripts] == [None, "a.js", "a.js"]


def test_field_lists_keep_names_and_descriptions_apart():
    """The API page's docstring hook: ``name : description`` becomes a name and a description;
    prose and ``Used in`` after the fields close the section. Without the hook napoleon would
    read the description as a type (the negative control: the raw lines still have the colon)."""
    from hvae_lib.book.sphinx_ext import split_field_descriptions

    raw = [
        "Train it.",
        "",
        "Parameters",
        "----------",
        "model : the module; moved to",
        "    ``device``.",
        "a, b : two things",
        "x",
        "    described below its name",
        "",
        "The guard: skips NaN steps.",
        "",
        "Used in: :ref:`ch-x`",
    ]
    out = split_field_descriptions(raw)
    assert out[4:7] == ["model", "    the module; moved to", "    ``device``."]
    assert out[7:9] == ["a, b", "    two things"]
    assert out[9:11] == ["x", "    described below its name"]
    guard = out.index("The guard: skips NaN steps.")
    assert out[guard - 2 : guard] == ["", ""]  # the section is closed before the paragraph
    assert split_field_descriptions(["Returns", "-------", "model : the module"]) == [
        "Returns",
        "-------",
        "model : the module",
    ]  # other sections are left alone
    assert "model : the module; moved to" in raw


def test_reexported_names_resolve_to_their_module():
    from hvae_lib.book.sphinx_ext import canonical_name

    assert canonical_name("hvae_lib.train.train") == "hvae_lib.train.loop.train"
    assert canonical_name("hvae_lib.models.BetaVAE") == "hvae_lib.models.vae.BetaVAE"
    assert canonical_name("hvae_lib.train") == "hvae_lib.train"
    assert canonical_name("hvae_lib.train.no_such_name") is None


def test_injected_parameters_cell_is_removed_from_the_page(tmp_path):
    """papermill's injected cell gets ``remove-cell``; before the call it has no such tag (the
    control: the rendered page would show it)."""
    src = make_notebook(tmp_path / "nb.ipynb", "print(SEED)")
    out = tmp_path / "out.ipynb"
    params = parameters_for("quick", "cpu", 5, 1)
    assert execute_notebook(src, out, params, progress=False).ok

    def injected(nb):
        return [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]

    before = injected(nbformat.read(out, as_version=4))
    assert len(before) == 1 and "remove-cell" not in before[0].metadata["tags"]
    book.hide_injected_parameters(out)
    after = injected(nbformat.read(out, as_version=4))
    assert len(after) == 1 and "remove-cell" in after[0].metadata["tags"]


# ------------------------------------------------------------------- parallel execution, needs
def tiny_repo(root: Path, bodies: dict[str, str], meta: dict[str, Any] | None = None) -> Path:
    """A repository whose ``_toc.yml`` lists an intro page and the notebooks ``bodies`` (name:
    code of its last cell), in that order; ``meta`` gives a notebook its ``hvae`` metadata."""
    (root / "book").mkdir(parents=True)
    (root / "_config.yml").write_text("title: tiny\n")
    (root / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nchapters:\n"
        + "".join(f"  - file: book/{name}\n" for name in bodies)
    )
    (root / "book" / "intro.md").write_text("# Intro\n")
    for name, body in bodies.items():
        path = make_notebook(root / "book" / f"{name}.ipynb", body)
        if meta and name in meta:
            nb = nbformat.read(path, as_version=4)
            nb.metadata["hvae"] = meta[name]
            nbformat.write(nb, path)
    return root


def stamp(log: Path, name: str, wait_for: Sequence[str] = (), wait_s: float = 0.0) -> str:
    """Code that writes ``NAME.start`` and ``NAME.end`` (``time.time()``) into ``log``; between
    the two it waits until the notebooks ``wait_for`` have started, for at most ``wait_s``."""
    return "\n".join(
        [
            "import time",
            "from pathlib import Path",
            f"log = Path({str(log)!r})",
            f"(log / {name + '.start'!r}).write_text(repr(time.time()))",
            f"deadline = time.time() + {wait_s!r}",
            f"others = [log / (o + '.start') for o in {list(wait_for)!r}]",
            "while time.time() < deadline and not all(p.exists() for p in others):",
            "    time.sleep(0.02)",
            f"(log / {name + '.end'!r}).write_text(repr(time.time()))",
        ]
    )


def interval(log: Path, name: str) -> tuple[float, float]:
    return float((log / f"{name}.start").read_text()), float((log / f"{name}.end").read_text())


def runs_by_name(out: Path) -> dict[str, dict[str, Any]]:
    meta = json.loads((out / "_build" / "status.json").read_text())
    return {Path(r["path"]).stem: r for r in meta["runs"]}


@pytest.mark.parametrize("jobs", [2, 1])
def test_jobs_run_notebooks_at_once(tmp_path, jobs):
    """jobs=2: each of two notebooks waits (up to 60 s) until the other has started, so their
    run intervals overlap. jobs=1, the negative control: the same two notebooks (waiting 1 s at
    most) run one after the other, and the intervals do not overlap."""
    log = tmp_path / "log"
    log.mkdir()
    wait = 60.0 if jobs == 2 else 1.0
    root = tiny_repo(
        tmp_path / "repo",
        {"a": stamp(log, "a", ["b"], wait), "b": stamp(log, "b", ["a"], wait)},
    )
    assert book.build("quick", "cpu", 0, 1, root=root, html=False, progress=False, jobs=jobs) == 0
    (a0, a1), (b0, b1) = interval(log, "a"), interval(log, "b")
    if jobs == 2:
        assert max(a0, b0) < min(a1, b1)  # both were running at once
    else:
        assert a1 <= b0  # in the order of _toc.yml, one at a time
    meta = json.loads((root / "_build" / "status.json").read_text())
    assert meta["jobs"] == jobs and meta["execution_seconds"] > 0
    assert all(r["ok"] and r["finished"] > r["started"] for r in meta["runs"])
    status = (root / "_build" / "staging" / "book" / "status.md").read_text()
    assert f"jobs `{jobs}`" in status and "CPU time (s)" in status


def test_a_needed_notebook_finishes_first(tmp_path, capsys):
    """``second`` (listed first) needs ``first``, which waits up to 3 s for ``second`` to
    start: it starts only after ``first`` has ended although two could run at once. With
    ``only``, ``second`` runs alone on the executed copy of ``first`` from the last build."""
    log = tmp_path / "log"
    log.mkdir()
    root = tiny_repo(
        tmp_path / "repo",
        {"second": stamp(log, "second"), "first": stamp(log, "first", ["second"], 3.0)},
        meta={"second": {"needs": ["first"]}},
    )
    assert book.build("quick", "cpu", 0, 1, root=root, html=False, progress=False, jobs=2) == 0
    first, second = interval(log, "first"), interval(log, "second")
    assert second[0] >= first[1]
    runs = runs_by_name(root)
    assert runs["second"]["needs"] == ["first"] and runs["first"]["needs"] == []
    # --only: the selected notebook runs; what it needs is reused, not re-executed
    capsys.readouterr()
    code = book.build(
        "quick", "cpu", 0, 1, root=root, html=False, progress=False, jobs=2, only=["second"]
    )
    assert code == 0
    assert interval(log, "first") == first and interval(log, "second")[0] > second[1]
    assert "reusing the executed copy of book/first.ipynb" in capsys.readouterr().out
    assert list(runs_by_name(root)) == ["second"]
    assert (root / "_build" / "staging" / "book" / "first.ipynb").is_file()


def test_only_restores_the_claims_of_the_notebooks_it_does_not_run(tmp_path):
    """``claimer`` records a claim file (its value read from ``value``); ``reader`` copies the
    claim it finds into ``seen``. ``only=["reader"]`` runs the reader on the claims the last
    build kept; ``only=["claimer"]`` replaces them. Negative control: with the kept claims
    removed, the reader finds none and the build fails."""
    value, seen = tmp_path / "value", tmp_path / "seen"
    claimer = "\n".join(
        [
            "import os",
            "from pathlib import Path",
            "d = Path(os.environ['HVAE_CLAIMS_DIR'])",
            "d.mkdir(parents=True, exist_ok=True)",
            f"(d / 'claimer.json').write_text(Path({str(value)!r}).read_text())",
        ]
    )
    reader = "\n".join(
        [
            "import os",
            "from pathlib import Path",
            "claim = Path(os.environ['HVAE_CLAIMS_DIR']) / 'claimer.json'",
            f"Path({str(seen)!r}).write_text(claim.read_text())",
        ]
    )
    root = tiny_repo(
        tmp_path / "repo",
        {"claimer": claimer, "reader": reader},
        meta={"reader": {"needs": ["claimer"]}},
    )

    def build(only: list[str] | None = None) -> int:
        return book.build(
            "quick", "cpu", 0, 1, root=root, html=False, progress=False, jobs=1, only=only
        )

    value.write_text('{"v": 1}')
    assert build() == 0 and seen.read_text() == '{"v": 1}'
    seen.unlink()
    assert build(["reader"]) == 0 and seen.read_text() == '{"v": 1}'
    value.write_text('{"v": 2}')
    assert build(["claimer"]) == 0
    assert build(["reader"]) == 0 and seen.read_text() == '{"v": 2}'
    shutil.rmtree(root / "_build" / "executed" / "claims")
    seen.unlink()
    assert build(["reader"]) == 1 and not seen.exists()


def test_a_failing_notebook_fails_the_build_after_the_others(tmp_path, capsys):
    """``bad`` fails: ``good`` still runs and succeeds, ``after`` (needs bad) and ``later``
    (needs after) are not run, the build returns 1 and the report names them."""
    root = tiny_repo(
        tmp_path / "repo",
        {
            "bad": "raise RuntimeError('boom')",
            "good": "print('fine')",
            "after": "print('never')",
            "later": "print('never')",
        },
        meta={"after": {"needs": "bad"}, "later": {"needs": ["after"]}},
    )
    assert book.build("quick", "cpu", 0, 1, root=root, html=False, progress=False, jobs=2) == 1
    runs = runs_by_name(root)
    assert runs["good"]["ok"] and not runs["good"]["skipped"]
    assert not runs["bad"]["ok"] and not runs["bad"]["skipped"] and "boom" in runs["bad"]["error"]
    assert runs["after"]["skipped"] and runs["after"]["error"] == "not run: needs bad, which failed"
    assert runs["later"]["skipped"] and "needs after, which was not run" in runs["later"]["error"]
    good = nbformat.read(root / "_build" / "executed" / "book" / "good.ipynb", as_version=4)
    assert "fine" in outputs_text(good)
    assert not (root / "_build" / "executed" / "book" / "bad.ipynb").exists()
    err = capsys.readouterr().err
    assert f"FAILED: {root / 'book' / 'bad.ipynb'}" in err and "boom" in err
    assert "NOT RUN:" in err and "1 of 4 notebooks failed: bad" in err
    assert "not run because of it: after and later" in err
    status = (root / "_build" / "staging" / "book" / "status.md").read_text()
    assert "| `book/bad.ipynb` | FAILED |" in status
    assert "| `book/after.ipynb` | not run: needs bad, which failed |" in status


@pytest.mark.parametrize(
    "meta, message",
    [
        ({"a": {"needs": ["nosuch"]}}, "a.ipynb needs 'nosuch', which is not a notebook of"),
        ({"a": {"needs": ["nosuch"]}}, "valid names are 'a', 'b'"),
        ({"a": {"needs": "book/b"}, "b": {"needs": ["a"]}}, "cycle, so none of them could "),
        ({"a": {"needs": ["b"]}, "b": {"needs": ["a"]}}, "start: a -> b -> a (A -> B: A needs"),
        ({"a": {"needs": "all"}, "b": {"needs": "all"}}, "a, b declare `needs: all`"),
        ({"b": {"needs": ["b"]}}, "b -> b"),
        ({"a": {"needs": 3}}, "`needs` must be `all`, a notebook name or a list"),
        ({"a": {"need": ["b"]}}, "unknown key(s) ['need']; the valid key is 'needs'"),
    ],
)
def test_bad_needs_are_rejected_before_anything_runs(tmp_path, meta, message):
    root = tiny_repo(tmp_path / "repo", {"a": "print(1)", "b": "print(2)"}, meta)
    with pytest.raises(ValueError) as info:
        book.build("quick", "cpu", 0, 1, root=root, html=False, progress=False)
    assert message in str(info.value)
    assert not (root / "_build").exists()  # nothing staged, nothing run


def test_acyclic_needs_pass_the_check(tmp_path):
    """The control of the test above: a chain and `needs: all` on one notebook are fine."""
    root = tiny_repo(
        tmp_path / "repo",
        {"a": "", "b": "", "c": ""},
        {"b": {"needs": "a"}, "c": {"needs": "all"}},
    )
    a, b, c = (root / "book" / f"{n}.ipynb" for n in "abc")
    assert pipeline.dependency_graph([a, b, c], root) == {a: [], b: [a], c: [a, b]}


def test_cpu_time_is_the_kernels(tmp_path):
    """The CPU time of a notebook is its kernel's: at least the 1 s of CPU that ``burn``'s kernel
    spends (its own ``process_time``), and for ``sleepy``, run at the same time, less than its
    wall time minus most of its 2 s sleep (a CPU time taken from this process, or shared by the
    two workers, would count ``burn``'s second there too)."""
    root = tiny_repo(
        tmp_path / "repo",
        {
            "burn": "import time\nt = time.process_time()\n"
            "while time.process_time() - t < 1.0:\n    pass",
            "sleepy": "import time\ntime.sleep(2)",
        },
    )
    assert book.build("quick", "cpu", 0, 1, root=root, html=False, progress=False, jobs=2) == 0
    runs = runs_by_name(root)
    assert runs["burn"]["cpu_seconds"] >= 0.99
    assert runs["sleepy"]["cpu_seconds"] < runs["sleepy"]["seconds"] - 1.0
    assert runs["sleepy"]["cpu_seconds"] < runs["burn"]["cpu_seconds"]


def test_needs_are_read_from_the_md_front_matter(tmp_path):
    """A pair declares its needs in the .md front matter; sync carries them into the .ipynb.
    Without ``notebook_metadata_filter: hvae`` (the control) the pair check objects."""
    front = (
        "---\nhvae:\n  needs: [03_rate_splitting]\njupytext:\n  formats: ipynb,md:myst\n"
        "  notebook_metadata_filter: hvae\nkernelspec:\n  display_name: Python 3\n"
        "  language: python\n  name: python3\n---\n\n# X\n\n```{code-cell}\nx = 1\n```\n"
    )
    md = tmp_path / "x.md"
    md.write_text(front)
    assert book.sync(md) == 0
    nb = tmp_path / "x.ipynb"
    assert pipeline.notebook_needs(nb) == ["03_rate_splitting"]
    assert nbformat.read(nb, as_version=4).metadata["hvae"] == {"needs": ["03_rate_splitting"]}
    assert pair_differences(nb) == []
    md.write_text(front.replace("  notebook_metadata_filter: hvae\n", ""))
    assert any("notebook_metadata_filter" in d for d in pair_differences(nb))
    # the ledger reads every chapter's claims: it runs last
    notebooks = [f for f in toc_files(REPO_ROOT) if f.suffix == ".ipynb"]
    ledger = REPO_ROOT / "book" / "ledger.ipynb"
    assert pipeline.notebook_needs(ledger) == "all"
    graph = pipeline.dependency_graph(notebooks, REPO_ROOT)
    assert graph[ledger] == [nb for nb in notebooks if nb != ledger]


@pytest.mark.parametrize("value", ["0", "-2"])
def test_cli_rejects_bad_jobs(value, capsys):
    assert book.main(["build", "--jobs", value, "--no-html"]) == 2
    err = capsys.readouterr().err
    assert "jobs (notebooks executed at once) must be a whole number >= 1" in err
    assert f"got {int(value)}" in err


def test_default_jobs_divide_the_cores(monkeypatch):
    monkeypatch.setattr(pipeline, "available_cores", lambda: 8)
    assert [pipeline.default_jobs(t) for t in (1, 2, 3, 8, 16, 0)] == [8, 4, 2, 1, 1, 1]
    assert pipeline.check_jobs(None, 2) == 4 and pipeline.check_jobs(3, 2) == 3


def test_available_cores_follow_the_affinity(monkeypatch):
    """A container limited to 2 of the machine's 64 cores runs 2 notebooks at once, not 64."""
    if not hasattr(pipeline.os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this platform")
    monkeypatch.setattr(pipeline.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(pipeline.os, "cpu_count", lambda: 64)
    assert pipeline.available_cores() == 2 and pipeline.default_jobs(1) == 2


# ------------------------------------------------------------- reuse of executed notebooks
def counting(log: Path, name: str, extra: str = "") -> str:
    """Code that appends one ``x`` to ``log/NAME`` (one per execution), then runs ``extra``."""
    return "\n".join(
        [
            "from pathlib import Path",
            "import os",
            f"p = Path({str(log)!r}) / {name!r}",
            "p.write_text(p.read_text() + 'x' if p.exists() else 'x')",
            extra,
        ]
    )


def executions(log: Path, name: str) -> int:
    p = log / name
    return len(p.read_text()) if p.exists() else 0


def set_body(root: Path, name: str, body: str) -> None:
    path = root / "book" / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[-1].source = body
    nbformat.write(nb, path)


def test_a_second_build_reuses_what_did_not_change(tmp_path, capsys, monkeypatch):
    """``a`` writes side outputs into the claims folder (``a.json``, ``rows/rows_a.json``) and
    prints a random draw; ``b`` needs ``a`` and prints what ``a`` wrote; ``c`` stands alone.
    The second build executes nothing (each notebook's counter stays at 1), shows the first
    run's outputs, restores ``a``'s side files and says so on the status page. Changing ``c``
    runs ``c`` alone; changing ``a`` runs ``a`` and ``b`` (whose key holds ``a``'s), not
    ``c``. The negative controls: ``rerun`` and ``cache=False`` execute everything, and
    ``cache=False`` stores nothing and computes no key (a cached build with the key function
    broken fails, so the check can fail)."""
    log = tmp_path / "log"
    log.mkdir()
    write_a = (
        "import json, random\n"
        "claims = Path(os.environ['HVAE_CLAIMS_DIR'])\n"
        "(claims / 'rows').mkdir(parents=True, exist_ok=True)\n"
        "draw = random.random()\n"
        "(claims / 'a.json').write_text(json.dumps({'draw': draw}))\n"
        "(claims / 'rows' / 'rows_a.json').write_text('[1, 2]')\n"
        "print('draw', draw)"
    )
    read_b = (
        "claims = Path(os.environ['HVAE_CLAIMS_DIR'])\n"
        "print('b saw', (claims / 'a.json').read_text(), (claims / 'rows' / 'rows_a.json').read_text())"
    )
    root = tiny_repo(
        tmp_path / "repo",
        {
            "b": counting(log, "b", read_b),
            "a": counting(log, "a", write_a),
            "c": counting(log, "c", "print('c')"),
        },
        meta={"b": {"needs": ["a"]}},
    )
    staged = root / "_build" / "staging"

    def build(**kw: Any) -> dict[str, dict[str, Any]]:
        assert book.build("quick", "cpu", 0, 1, root=root, html=False, progress=False, **kw) == 0
        return runs_by_name(root)

    def shown(name: str) -> str:
        return outputs_text(nbformat.read(staged / "book" / f"{name}.ipynb", as_version=4))

    first = build(jobs=2)
    assert [executions(log, n) for n in "abc"] == [1, 1, 1]
    assert not any(r["reused"] for r in first.values())
    first_a, first_b = shown("a"), shown("b")
    assert "draw" in first_a and first_a.split()[1] in first_b  # b read what a wrote

    capsys.readouterr()
    second = build(jobs=2)
    assert [executions(log, n) for n in "abc"] == [1, 1, 1]  # nothing executed again
    assert all(r["reused"] and r["ok"] and r["stored_at"] for r in second.values())
    assert shown("a") == first_a and shown("b") == first_b
    assert (staged / "claims" / "a.json").is_file()
    assert (staged / "claims" / "rows" / "rows_a.json").read_text() == "[1, 2]"
    out = capsys.readouterr().out
    assert "reused book/a.ipynb" in out and "executing 0 notebooks (3 reused)" in out
    status = (staged / "book" / "status.md").read_text()
    assert "3 of 3 notebooks were not executed again" in status and "| ok, reused (ran " in status
    assert "No notebook was executed in this build." in status
    assert second["a"]["seconds"] == first["a"]["seconds"]  # the times of the run shown

    set_body(root, "c", counting(log, "c", "print('c changed')"))
    third = build(jobs=2)
    assert [executions(log, n) for n in "abc"] == [1, 1, 2]
    assert third["a"]["reused"] and third["b"]["reused"] and not third["c"]["reused"]
    assert "c changed" in shown("c")

    set_body(root, "a", counting(log, "a", write_a + "\nprint('a changed')"))
    fourth = build(jobs=2)
    assert [executions(log, n) for n in "abc"] == [2, 2, 2]
    assert not fourth["a"]["reused"] and not fourth["b"]["reused"] and fourth["c"]["reused"]
    assert shown("a") != first_a and shown("a").split()[1] in shown("b")

    build(jobs=2, rerun=True)  # negative control 1: executes everything
    assert [executions(log, n) for n in "abc"] == [3, 3, 3]
    store = tmp_path / "result-cache" / "executed"
    entries = sorted(p.name for p in store.iterdir())

    def no_keys(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("keys computed although nothing is stored or read")

    monkeypatch.setattr(book.pipeline, "notebook_keys", no_keys)
    build(jobs=2, cache=False)  # negative control 2: executes everything, stores nothing
    assert [executions(log, n) for n in "abc"] == [4, 4, 4]
    assert sorted(p.name for p in store.iterdir()) == entries
    with pytest.raises(AssertionError, match="keys computed"):  # the cached build needs them
        build(jobs=2)


def test_a_changed_environment_or_data_file_runs_the_notebook_again(tmp_path, monkeypatch):
    """The key holds the ``HVAE_*`` variables and the files a path-valued one names: a data
    file rewritten in place (same name, new size) runs the notebook again, and so does a new
    value of the variable; a failing notebook is never stored, so it runs every time."""
    log = tmp_path / "log"
    log.mkdir()
    data = tmp_path / "data.npz"
    data.write_bytes(b"first")
    monkeypatch.setenv("HVAE_DSPRITES_NPZ", str(data))
    root = tiny_repo(
        tmp_path / "repo",
        {"n": counting(log, "n", "print('n')"), "bad": counting(log, "bad", "raise ValueError")},
    )

    def build() -> None:
        book.build("quick", "cpu", 0, 1, root=root, html=False, progress=False, jobs=1)

    build()
    build()
    assert executions(log, "n") == 1 and executions(log, "bad") == 2  # bad: never stored
    data.write_bytes(b"second, longer")
    build()
    assert executions(log, "n") == 2
    monkeypatch.setenv("HVAE_DSPRITES_NPZ", str(tmp_path / "elsewhere.npz"))
    build()
    assert executions(log, "n") == 3
