"""The smoke form of the paper profile: stand-in data, settings cuts, the flag's path, the build."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

from hvae_lib import book
from hvae_lib.book import REPO_ROOT, kernel_env, parameters_for
from hvae_lib.book.ledger import Claim, load_claims, record_claims, smoke_notice_html
from hvae_lib.config import (
    RunContext,
    check_smoke,
    require,
    setup_notebook,
    smoke_banner_html,
)
from hvae_lib.data import (
    DSPRITES_SMOKE_STEP,
    DSprites,
    dsprites_smoke,
    dsprites_subset,
    load_dataset,
    load_svhn,
    synthetic_svhn,
)
from hvae_lib.experiments import (
    ch01_rate_distortion,
    ch02_transitive,
    ch03_rate_splitting,
    ch04_semafovae,
)


# ------------------------------------------------------------------------------ stand-ins
def test_synthetic_svhn_has_svhns_shapes_dtypes_and_labels():
    d = synthetic_svhn(300, np.random.default_rng(0))
    assert d.images.shape == (300, 3, 32, 32) and d.images.dtype == np.float32
    assert d.images.min() >= 0.0 and d.images.max() <= 1.0
    assert d.labels.dtype == np.int64 and set(np.unique(d.labels)) == set(range(10))
    raw = synthetic_svhn(5, np.random.default_rng(0), dtype="uint8")
    assert raw.images.dtype == np.uint8 and raw.images.shape == (5, 3, 32, 32)


def test_synthetic_svhn_is_a_function_of_the_rng():
    a, b = (
        synthetic_svhn(20, np.random.default_rng(3)),
        synthetic_svhn(20, np.random.default_rng(3)),
    )
    c = synthetic_svhn(20, np.random.default_rng(4))
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, c.images)  # control: another seed, other images


def test_synthetic_svhn_images_carry_their_label():
    """The digit is visible: a nearest-class-mean classifier on half the images beats chance
    on the other half by far (labels shuffled: chance, the control)."""
    d = synthetic_svhn(2000, np.random.default_rng(1))
    # foreground/background colours are random: standardise each image's grey levels
    x = d.images.mean(1).reshape(len(d.labels), -1)
    x = (x - x.mean(1, keepdims=True)) / (x.std(1, keepdims=True) + 1e-6)
    x = x * np.sign(x[:, :1] * -1 + 1e-9)  # the corner is background: make the digit positive

    def accuracy(labels):
        means = np.stack([x[:1000][labels[:1000] == c].mean(0) for c in range(10)])
        pred = np.argmax(x[1000:] @ means.T, axis=1)
        return float((pred == labels[1000:]).mean())

    assert accuracy(d.labels) > 0.3
    assert accuracy(np.random.default_rng(0).permutation(d.labels)) < 0.2


def test_synthetic_svhn_refuses_bad_arguments():
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        synthetic_svhn(3, 0)
    with pytest.raises(ValueError, match="at least 1"):
        synthetic_svhn(0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown dtype"):
        synthetic_svhn(3, np.random.default_rng(0), dtype="float64")


def test_dsprites_smoke_is_a_64x64_subgrid():
    ds = dsprites_smoke()
    assert ds.resolution == 64 and ds.factor_sizes == (3, 2, 4, 8, 8) and len(ds) == 1536
    assert load_dataset("dsprites_smoke").factor_sizes == ds.factor_sizes
    full = DSprites().subgrid(DSPRITES_SMOKE_STEP)
    f = ds.all_factors()[[0, 700, 1535]]
    assert np.array_equal(ds.images(f), full.images(f))
    imgs = ds.images(f)
    assert imgs.dtype == np.uint8 and set(np.unique(imgs)) <= {0, 1}


def test_dsprites_subset_keeps_every_factor_range():
    ds = DSprites()
    idx = dsprites_subset(ds, 3072, np.random.default_rng(0))
    assert len(np.unique(idx)) == 3072 and np.all(np.diff(idx) > 0)
    f = ds.index_to_factors(idx)
    assert tuple(f.max(0) + 1) == ds.factor_sizes == (3, 6, 40, 32, 32)
    assert np.array_equal(idx, dsprites_subset(ds, 3072, np.random.default_rng(0)))
    with pytest.raises(ValueError, match="num_images"):
        dsprites_subset(ds, 0, np.random.default_rng(0))


def test_missing_svhn_stays_an_error_outside_smoke(monkeypatch, tmp_path):
    monkeypatch.delenv(ch03_rate_splitting.SVHN_DIR_ENV, raising=False)
    paper = ch03_rate_splitting.rate_splitting_settings("paper")
    with pytest.raises(ValueError, match="HVAE_SVHN_DIR"):
        ch03_rate_splitting.load_grid_data(paper, np.random.default_rng(0))
    with pytest.raises(FileNotFoundError, match="SVHN file not found"):
        ch03_rate_splitting.load_grid_data(
            paper.replace(data_dir=str(tmp_path)), np.random.default_rng(0)
        )
    smoke = ch03_rate_splitting.rate_splitting_settings("paper", smoke=True)
    data = ch03_rate_splitting.load_grid_data(smoke, np.random.default_rng(0))
    assert tuple(data.x_train.shape) == (smoke.num_train, 3, 32, 32)
    assert tuple(data.x_test.shape) == (smoke.num_test, 3, 32, 32)
    assert "synthetic" in data.name
    # a smoke run with a folder set reads the files, and a missing file is still an error
    with pytest.raises(FileNotFoundError, match="SVHN file not found"):
        ch03_rate_splitting.load_grid_data(
            smoke.replace(data_dir=str(tmp_path)), np.random.default_rng(0)
        )


def test_svhn_limit_cuts_real_files(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    x = np.random.default_rng(0).integers(0, 256, size=(32, 32, 3, 40), dtype=np.uint8)
    y = np.arange(40).reshape(-1, 1) % 10 + 1
    for split in ("train", "test"):
        scipy_io.savemat(str(tmp_path / f"{split}_32x32.mat"), {"X": x, "y": y})
    smoke = ch03_rate_splitting.rate_splitting_settings("paper", smoke=True)
    data = ch03_rate_splitting.load_grid_data(
        smoke.replace(data_dir=str(tmp_path), num_train=30, num_test=12), np.random.default_rng(0)
    )
    assert len(data.y_train) == 30 and len(data.y_test) == 12 and "SVHN," in data.name
    assert len(load_svhn(tmp_path, "train").labels) == 40


def test_semafo_data_subset_keeps_the_factor_sizes(monkeypatch):
    monkeypatch.delenv(ch04_semafovae.DSPRITES_NPZ_ENV, raising=False)
    data = ch04_semafovae.load_semafo_data(
        "dsprites", 0.05, np.random.default_rng(0), num_images=400
    )
    assert len(data.f_train) + len(data.f_test) == 400
    assert data.factor_sizes == (3, 6, 40, 32, 32)
    assert tuple(data.x_train.shape[1:]) == (1, 64, 64)
    assert "400 random images" in data.description


# ------------------------------------------------------------------------------- settings
SETTINGS = {
    "ch01": ch01_rate_distortion.rate_distortion_settings,
    "ch02": ch02_transitive.transitive_settings,
    "ch03": ch03_rate_splitting.rate_splitting_settings,
    "ch04": ch04_semafovae.semafo_settings,
}


def _steps(settings) -> list[int]:
    """Every ``steps`` of every TrainConfig in the settings (nested), and ``*_steps`` counts."""
    out = []

    def walk(d):
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v)
            elif k == "steps" or k.endswith("_steps"):
                out.append(int(v))

    walk(settings.to_dict())
    return out


@pytest.mark.parametrize("chapter", sorted(SETTINGS))
def test_smoke_settings_cut_steps_and_keep_the_architecture(chapter):
    fn = SETTINGS[chapter]
    paper, smoke = fn("paper"), fn("paper", smoke=True)
    assert smoke != paper
    assert max(_steps(smoke)) <= 50 < max(_steps(paper))
    same = {
        "ch01": lambda s: (
            s.sweep.model,
            s.sweep.betas,
            s.sweep.train.batch_size,
            s.sweep.train.lr,
        ),
        "ch02": lambda s: (
            s.model,
            s.beta,
            s.train.batch_size,
            s.train.lr,
            s.mi_values,
            s.alphas,
            s.estimator_batch,
            s.estimator_dim,
            s.label_factors,
        ),
        "ch03": lambda s: (
            s.dataset,
            s.model,
            s.bound_model,
            s.train.batch_size,
            s.train.lr,
            s.beta_low,
            s.beta_high,
            s.probes,
            s.bound_resolution,
            s.tight_bound_betas,
        ),
        "ch04": lambda s: (
            s.dataset,
            s.flat,
            s.hierarchical,
            s.loss.replace(warmup_steps=0),
            s.authors_loss.replace(warmup_steps=0),
            s.train.batch_size,
            s.train.lr,
            s.label_fractions,
            s.dci_importance,
            s.digits_resolution,
            s.digits_hidden,
            s.digits_latent_dim,
        ),
    }[chapter]
    assert same(smoke) == same(paper)


def test_smoke_settings_cut_the_sizes():
    s1 = ch01_rate_distortion.rate_distortion_settings("paper", smoke=True)
    assert s1.dataset == "dsprites_smoke"
    s2 = ch02_transitive.transitive_settings("paper", smoke=True)
    assert s2.dataset == "dsprites_smoke" and s2.joints_per_alpha <= 1000
    s3 = ch03_rate_splitting.rate_splitting_settings("paper", smoke=True)
    assert s3.grid_side == 3 and 1.0 in s3.beta_values and 1.0 in s3.bound_beta_values
    assert s3.synthetic_data and s3.num_train > 0 and s3.num_samples < 1000
    assert not ch03_rate_splitting.rate_splitting_settings("paper").synthetic_data
    s4 = ch04_semafovae.semafo_settings("paper", smoke=True)
    assert 0 < s4.num_images <= 5000 and s4.metric_codes <= 1000
    assert ch04_semafovae.semafo_settings("paper").num_images == 0


@pytest.mark.parametrize("chapter", sorted(SETTINGS))
def test_quick_settings_are_unaffected(chapter):
    fn = SETTINGS[chapter]
    assert fn("quick") == fn("quick", smoke=False)
    with pytest.raises(ValueError, match="variant of the paper profile"):
        fn("quick", smoke=True)


def test_quick_settings_keep_their_values():
    """The fields the smoke form added have the values that the quick profile used before."""
    s3 = ch03_rate_splitting.rate_splitting_settings("quick")
    assert (s3.num_train, s3.synthetic_data, s3.bench_steps) == (0, False, 50)
    assert ch04_semafovae.semafo_settings("quick").num_images == 0


# --------------------------------------------------------------------- the flag's path
def test_smoke_with_quick_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="use --profile paper --smoke"):
        parameters_for("quick", "cpu", 0, 1, smoke=True)
    with pytest.raises(ValueError, match="variant of the paper profile"):
        check_smoke("quick", True)
    with pytest.raises(ValueError, match="variant of the paper profile"):
        setup_notebook("quick", "cpu", 0, 1, True, verbose=False)
    proc = subprocess.run(
        [sys.executable, "-m", "hvae_lib", "build", "--profile", "quick", "--smoke", "--no-html"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "HVAE_SMOKE": "0"},
    )
    assert proc.returncode == 2
    assert "smoke is a variant of the paper profile" in proc.stderr
    assert "--profile paper --smoke" in proc.stderr


def test_smoke_parameter_and_environment():
    params = parameters_for("paper", "cpu", 0, 1, smoke=True)
    assert params["SMOKE"] is True and kernel_env(params)["HVAE_SMOKE"] == "1"
    quick = parameters_for("quick", "cpu", 0, 1)
    assert quick["SMOKE"] is False and kernel_env(quick)["HVAE_SMOKE"] == "0"


def test_setup_notebook_carries_the_flag():
    ctx = setup_notebook("paper", "cpu", 0, 1, True, verbose=False)
    assert ctx.smoke is True and RunContext.from_json(ctx.to_json()) == ctx
    assert setup_notebook("quick", "cpu", 0, 1, verbose=False).smoke is False


def test_banner_names_the_stand_ins():
    html = smoke_banner_html(["SVHN (synthetic)", "a <b>"])
    assert "Smoke run of the paper profile" in html and "numbers mean nothing" in html.lower()
    assert "SVHN (synthetic)" in html and "a &lt;b&gt;" in html
    assert "no synthetic stand-ins" in smoke_banner_html([])


def test_require_raises_outside_smoke_and_reports_in_smoke(capsys):
    require({"a": True, "b": True})
    with pytest.raises(AssertionError):
        require({"a": True, "b": False})
    require({"a": True, "b": False}, smoke=True)
    assert "1 of 2 checks fail" in capsys.readouterr().out


def test_smoke_claims_are_not_verdicts(tmp_path):
    claim = Claim("X1", "xiao2023", "a claim", "a trend", "0.1", "reproduced")
    record_claims("03_rate_splitting", [claim], profile="paper", smoke=True, directory=tmp_path)
    record_claims("02_transitive_information", [claim], profile="quick", directory=tmp_path)
    smoke, plain = (
        {c.chapter: c for c in load_claims(tmp_path)}[k]
        for k in ("03_rate_splitting", "02_transitive_information")
    )
    assert smoke.smoke and smoke.shown_verdict.startswith("smoke run, not a verdict")
    assert "reproduced" in smoke.shown_verdict  # the computed verdict is kept for the record
    assert not plain.smoke and plain.shown_verdict == "reproduced"
    assert json.loads((tmp_path / "03_rate_splitting.json").read_text())["smoke"] is True
    assert "1 of the claims" in smoke_notice_html(1)


def _tiny_repo(root: Path, bodies: dict[str, str]) -> Path:
    """A repository whose ``_toc.yml`` lists an intro page and one notebook per ``bodies``
    entry (name: its code, after a parameters cell with the defaults of the chapters)."""
    (root / "book").mkdir(parents=True)
    (root / "_config.yml").write_text("title: tiny\n")
    (root / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nchapters:\n"
        + "".join(f"  - file: book/{name}\n" for name in bodies)
    )
    (root / "book" / "intro.md").write_text("# Intro\n")
    for name, body in bodies.items():
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        params = nbformat.v4.new_code_cell(
            "import os\nPROFILE = 'quick'\nDEVICE = 'auto'\nSEED = 0\nTHREADS = 1\n"
            "SMOKE = bool(int(os.environ.get('HVAE_SMOKE', '0')))"
        )
        params.metadata["tags"] = ["parameters"]
        nb.cells = [
            nbformat.v4.new_markdown_cell(f"# {name}"),
            params,
            nbformat.v4.new_code_cell(body),
        ]
        nbformat.write(nb, root / "book" / f"{name}.ipynb")
    return root


def test_peak_memory_is_the_kernels_and_smoke_reaches_it(tmp_path):
    """Each notebook's ``max_rss`` is its own kernel's: ``big`` holds 400 MiB that ``small``
    (run at the same time: the control) does not, and the status page shows the column. A
    smoke build injects ``SMOKE = True`` and ``HVAE_SMOKE=1``."""
    root = _tiny_repo(
        tmp_path / "repo",
        {
            "big": "import numpy as np\nx = np.ones(400 * 2**20 // 8)\nprint(SMOKE, os.environ['HVAE_SMOKE'])",
            "small": "print(SMOKE, os.environ['HVAE_SMOKE'])",
        },
    )
    code = book.build(
        "paper", "cpu", 0, 1, root=root, html=False, progress=False, jobs=2, smoke=True
    )
    assert code == 0
    status = json.loads((root / "_build" / "status.json").read_text())
    assert status["parameters"]["SMOKE"] is True
    runs = {Path(r["path"]).stem: r for r in status["runs"]}
    # the floor of both is the worker's own size when it starts the kernel (see run_worker)
    assert runs["big"]["max_rss"] >= max(400 * 2**20, runs["small"]["max_rss"] + 200 * 2**20)
    assert runs["small"]["max_rss"] > 10 * 2**20  # a Python kernel, not nothing
    page = (root / "_build" / "staging" / "book" / "status.md").read_text()
    assert "peak memory (MiB)" in page and "smoke" in page
    for name in ("big", "small"):
        nb = nbformat.read(root / "_build" / "executed" / "book" / f"{name}.ipynb", as_version=4)
        assert "True 1" in "".join(o.get("text", "") for o in nb.cells[-1].outputs)


# ----------------------------------------------------------------------- the smoke build
@pytest.mark.slow
def test_smoke_build_runs_every_notebook(tmp_path):
    """``build --profile paper --smoke`` executes every notebook and builds the HTML on 2 CPU
    cores in at most 15 minutes; every chapter page carries the banner, the ledger's smoke
    claims are not verdicts, and every kernel stayed under 8 GiB."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hvae_lib",
            "build",
            "--profile",
            "paper",
            "--smoke",
            "--device",
            "cpu",
            "--jobs",
            "2",
            "--threads",
            "1",
            "--no-cache",
            "--no-progress",
            "--output",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "HVAE_SVHN_DIR": "", "HVAE_DSPRITES_NPZ": "", "HVAE_GRID_DIR": ""},
        timeout=20 * 60,
    )
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert wall <= 15 * 60, f"the smoke build took {wall:.0f} s"
    status = json.loads((tmp_path / "_build" / "status.json").read_text())
    assert status["parameters"]["SMOKE"] is True
    for run in status["runs"]:
        assert run["ok"], run
        assert run["max_rss"] is not None and run["max_rss"] < 8 * 2**30, run
    html = tmp_path / "_build" / "html" / "book"
    for page in ("01_rate_distortion", "02_transitive_information", "03_rate_splitting"):
        assert "Smoke run of the paper profile" in (html / f"{page}.html").read_text()
    assert "Smoke run of the paper profile" in (html / "04_semafovae.html").read_text()
    ledger = (html / "ledger.html").read_text()
    assert "smoke run, not a verdict" in ledger
    assert "Smoke run of the paper profile" in ledger


def test_dci_stages_cut_the_boosting_and_default_to_the_faithful_100():
    """``num_stages`` (the smoke form's cut of DCI) reaches the classifiers; 100 is the default,
    and the default gives the same scores as passing 100 (the quick and paper profiles)."""
    from hvae_lib.metrics import dci
    from hvae_lib.metrics.dci import _make_classifier

    assert _make_classifier("gbt", 0).n_estimators == 100
    assert _make_classifier("gbt", 0, 5).n_estimators == 5
    assert _make_classifier("hist_gbt", 0, 7).max_iter == 7
    rng = np.random.default_rng(0)
    f = np.stack([rng.integers(0, 3, 200), rng.integers(0, 4, 200)], 1)
    z = np.column_stack([f + rng.normal(0, 0.3, f.shape), rng.normal(size=(200, 2))])
    kw = dict(importance="hist_gbt")
    a = dci(z[:150], f[:150], z[150:], f[150:], rng=np.random.default_rng(1), **kw)
    b = dci(z[:150], f[:150], z[150:], f[150:], rng=np.random.default_rng(1), num_stages=100, **kw)
    assert a == b
    c = dci(z[:150], f[:150], z[150:], f[150:], rng=np.random.default_rng(1), num_stages=2, **kw)
    assert c != a
    with pytest.raises(ValueError, match="num_stages"):
        dci(z[:150], f[:150], z[150:], f[150:], rng=np.random.default_rng(1), num_stages=0)
