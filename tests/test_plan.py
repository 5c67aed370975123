"""Tests of the compute plan (``python -m hvae_lib plan``), its timing, arithmetic and options."""

from __future__ import annotations

import argparse
import functools
import json
import math
import time

import pytest
import torch

from hvae_lib.book import plan as plan_mod
from hvae_lib.book.plan import (
    NOTEBOOKS,
    ComputePlan,
    add_arguments,
    compute_plan,
    format_plan,
    run,
    select_notebooks,
    settings_for,
)
from hvae_lib.config import resolve_device
from hvae_lib.experiments.ch01_rate_distortion import rate_distortion_settings
from hvae_lib.experiments.ch03_rate_splitting import rate_splitting_settings
from hvae_lib.experiments.ch04_semafovae import semafo_settings
from hvae_lib.train import TrainConfig, train

torch.set_num_threads(1)


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def _attr(obj: object, path: str) -> object:
    return functools.reduce(getattr, path.split("."), obj)


@pytest.fixture(scope="module")
def quick_plan() -> ComputePlan:
    # chapters 1 and 3 of the quick profile: MLPs on 32x32 and 8x8 images, about 2 s
    return compute_plan("quick", "cpu", steps=2, warmup=1, only=["01", "03"], threads=1)


def test_quick_plan_times_every_model(quick_plan: ComputePlan) -> None:
    assert quick_plan.measured and quick_plan.device == "cpu" and not quick_plan.failed
    assert {r.notebook for r in quick_plan.rows} == {"01_rate_distortion", "03_rate_splitting"}
    for r in quick_plan.rows:
        assert r.seconds_per_step is not None and r.seconds_per_step > 0, r
        assert 1 <= r.timed_steps <= 2
        assert r.memory_bytes is not None and r.memory_bytes >= 0
        assert r.memory_kind == "host RSS growth"
        assert r.parameters > 0 and r.count >= 1 and r.steps >= 1


def test_estimates_are_seconds_per_step_times_steps_times_count(quick_plan: ComputePlan) -> None:
    per_nb: dict[str, float] = {}
    for r in quick_plan.rows:
        expected = r.seconds_per_step * r.steps * r.count / 3600.0
        assert math.isclose(r.estimated_hours, expected, rel_tol=1e-12)
        assert math.isclose(r.estimated_seconds, 3600.0 * expected, rel_tol=1e-12)
        per_nb[r.notebook] = per_nb.get(r.notebook, 0.0) + expected
    for nb, hours in quick_plan.notebook_hours().items():
        assert math.isclose(hours, per_nb[nb], rel_tol=1e-12)
    assert math.isclose(quick_plan.total_hours, sum(per_nb.values()), rel_tol=1e-12)
    # the JSON form carries the same numbers
    d = json.loads(json.dumps(quick_plan.to_dict()))
    for row, r in zip(d["rows"], quick_plan.rows):
        assert row["estimated_hours"] == pytest.approx(r.estimated_hours)
        assert row["batch_shape"] == list(r.batch_shape)
    assert d["total_hours"] == pytest.approx(quick_plan.total_hours)
    text = format_plan(quick_plan)
    assert "01_rate_distortion" in text and "03_rate_splitting" in text and "total:" in text


def test_warmup_steps_are_discarded_and_the_median_is_reported() -> None:
    # a model whose first step sleeps 0.3 s and every later one 0.02 s: the warm-up step must
    # not enter the time per step
    calls = []

    def loss_fn(model, batch, *, step, generator):
        time.sleep(0.3 if not calls else 0.02)
        calls.append(step)
        loss = model(batch).pow(2).mean()
        return loss, {"loss": loss.detach()}

    data = torch.randn(32, 3)

    def run_steps(n: int) -> None:
        train(torch.nn.Linear(3, 1), data, loss_fn, TrainConfig(steps=n, batch_size=8))

    job = plan_mod._Job(
        notebook="x",
        model="linear",
        call="hvae_lib.train.train",
        device=torch.device("cpu"),
        parameters=4,
        batch_shape=(8, 3),
        steps=100,
        steps_from="chapter",
        count=1,
        run=run_steps,
    )
    m = plan_mod._measure(job, warmup=1, steps=3, max_seconds=60.0)
    assert m.timed_steps == 3 and len(calls) == 4  # 1 warm-up + 3 timed, then stopped
    assert 0.015 < m.seconds_per_step < 0.15
    # a time budget stops the call after the first timed step
    calls.clear()
    m = plan_mod._measure(job, warmup=1, steps=50, max_seconds=0.001)
    assert m.timed_steps == 1 and len(calls) == 2


def test_paper_step_counts_come_from_the_settings() -> None:
    dry = compute_plan("paper", "cpu", measure=False)
    assert not dry.measured and {r.notebook for r in dry.rows} == set(NOTEBOOKS)
    for r in dry.rows:
        assert r.seconds_per_step is None and r.estimated_hours is None
        if r.steps_from != "chapter":
            assert r.steps == _attr(settings_for(r.notebook, "paper"), r.steps_from), r
    rows = {(r.notebook, r.model): r for r in dry.rows}
    # spelled out for the big ones, read from the settings directly
    s1 = rate_distortion_settings("paper")
    (beta_vae,) = [r for r in dry.rows if r.notebook == "01_rate_distortion"]
    assert (beta_vae.steps, beta_vae.count) == (s1.sweep.train.steps, len(s1.sweep.betas))
    s3 = rate_splitting_settings("paper")
    chunk = [r for (nb, m), r in rows.items() if m.startswith("β-grid chunk (")]
    assert len(chunk) == 1 and chunk[0].steps == s3.train.steps
    # the paper's second dataset and the ladder grid, each 441 members as well
    s3c = rate_splitting_settings("paper", dataset="cifar10")
    (cifar,) = [r for (nb, m), r in rows.items() if m.startswith("β-grid chunk, CIFAR-10")]
    assert cifar.steps == s3c.train.steps == 500 * (50_000 // 256) and cifar.count == chunk[0].count
    (ladder,) = [r for (nb, m), r in rows.items() if m.startswith("ladder grid chunk")]
    assert ladder.steps == s3.train.steps
    assert ladder.count * ladder.members == s3.ladder_side**2 == 441
    assert chunk[0].members == s3.chunk_size
    assert chunk[0].count == math.ceil(s3.grid_side**2 / s3.chunk_size)
    assert chunk[0].batch_shape == (s3.train.batch_size, *s3.model.input_shape)
    s4 = semafo_settings("paper")
    semafo = rows[("04_semafovae", "SemafoVAE")]
    assert semafo.steps == s4.train.steps
    assert semafo.batch_shape == (s4.train.batch_size, *s4.flat.vae.input_shape)
    sweep = [r for r in dry.rows if "label-fraction sweep" in r.model]
    assert sweep[0].count == len(s4.label_fractions) - 1  # the chapter's own fraction is reused


def test_quick_dry_run_covers_every_notebook() -> None:
    dry = compute_plan("quick", "cpu", measure=False)
    assert [nb for nb in NOTEBOOKS if any(r.notebook == nb for r in dry.rows)] == list(NOTEBOOKS)
    for r in dry.rows:
        if r.steps_from != "chapter":
            assert r.steps == _attr(settings_for(r.notebook, "quick"), r.steps_from), r
    assert "DRY RUN" in format_plan(dry)


def test_unknown_profile_device_and_notebook_name_the_valid_ones(capsys) -> None:
    with pytest.raises(ValueError, match="quick, paper"):
        compute_plan("huge", "cpu", measure=False)
    with pytest.raises(ValueError, match="cuda:N"):
        compute_plan("quick", "tpu", measure=False)
    with pytest.raises(ValueError, match="04_semafovae"):
        select_notebooks(["no-such-chapter"])
    with pytest.raises(ValueError, match="steps"):
        compute_plan("quick", "cpu", steps=0, measure=False)
    assert run(_args("--profile", "huge", "--dry-run")) == 2
    assert "valid profiles are: quick, paper" in capsys.readouterr().err
    assert run(_args("--profile", "quick", "--device", "tpu", "--dry-run")) == 2
    assert "valid devices are: auto, cpu, cuda, cuda:N" in capsys.readouterr().err
    assert run(_args("--profile", "quick", "--only", "nothing", "--dry-run")) == 2
    err = capsys.readouterr().err
    assert all(nb in err for nb in NOTEBOOKS)
    if not torch.cuda.is_available():
        assert run(_args("--profile", "quick", "--device", "cuda", "--dry-run")) == 2
        assert "device='auto'" in capsys.readouterr().err


def test_auto_device_resolves_to_cuda_when_a_gpu_is_visible(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    dry = compute_plan("quick", "auto", measure=False)  # nothing runs, so no GPU is touched
    assert dry.device == "cuda"
    devices = {r.model: r.device for r in dry.rows}
    assert devices["SemafoVAE"] == "cuda"
    assert devices["InfoNCE critic (separable)"] == "cpu"  # the chapter keeps them on the CPU
    out = tmp_path / "plan.json"
    assert (
        run(_args("--profile", "quick", "--device", "auto", "--dry-run", "--json", str(out))) == 0
    )
    d = json.loads(out.read_text())
    assert d["device"] == "cuda" and d["profile"] == "quick"
    assert {row["device"] for row in d["rows"]} == {"cuda", "cpu"}


def test_cli_prints_the_table_and_writes_json(tmp_path, capsys) -> None:
    out = tmp_path / "sub" / "plan.json"
    code = run(
        _args(
            "--profile", "quick", "--device", "cpu", "--only", "01", "--steps", "1",
            "--json", str(out), "--quiet",
        )
    )  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    assert "01_rate_distortion" in text and "total:" in text and "02_" not in text
    d = json.loads(out.read_text())
    assert len(d["rows"]) == 1 and d["rows"][0]["seconds_per_step"] > 0
    assert d["rows"][0]["steps"] == rate_distortion_settings("quick").sweep.train.steps
