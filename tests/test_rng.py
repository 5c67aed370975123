"""One vocabulary of randomness (issue 12): ``rng`` (a ``numpy.random.Generator``) and
``generator`` (a ``torch.Generator``), passed in by the caller.

The checks themselves (:func:`hvae_lib.config.check_rng`, :func:`hvae_lib.config.check_generator`) with their
negative controls, and a scan of the converted modules: no function takes an integer
``seed`` / ``random_state`` / ``observation_seed``, and none builds its own generator or seeds
a global RNG. A synthetic module checks that the scan reports what it should.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import numpy as np
import pytest
import torch

import hvae_lib
from hvae_lib.config import check_generator, check_rng

PACKAGE = Path(hvae_lib.__file__).resolve().parent

#: The packages and modules held to the vocabulary. Not scanned: ``hvae_lib.config`` (it turns
#: seeds into generators: ``seed_everything``, ``build_seeded``), ``hvae_lib.train`` (its batch
#: sources are built from ``TrainConfig.seed`` and checkpoint their generators' state: the one
#: place where a config seed becomes a stream) and ``hvae_lib.book`` (the pipeline passes the
#: reader's ``SEED`` parameter to the notebooks).
CONVERTED_PACKAGES = (
    "hvae_lib.info",
    "hvae_lib.metrics",
    "hvae_lib.data",
    "hvae_lib.models",
    "hvae_lib.objectives",
    "hvae_lib.analysis",
)
CONVERTED_MODULES = (
    "hvae_lib.distributions",
    "hvae_lib.experiments.ch01_rate_distortion",
    "hvae_lib.experiments.ch02_transitive",
    "hvae_lib.experiments.ch03_rate_splitting",
    "hvae_lib.experiments.ch04_semafovae",
    "hvae_lib.experiments.ch04_bench",
)
#: Parameter names of randomness that the vocabulary replaces.
SEED_NAMES = frozenset({"seed", "random_state", "observation_seed"})
#: Calls that build a generator or seed a global RNG.
SEEDING_CALLS = frozenset({"default_rng", "manual_seed", "RandomState", "SeedSequence", "seed"})
#: Functions whose whole point is to turn a config seed into a config (they stay).
ALLOWED = {
    "hvae_lib.experiments.ch03_rate_splitting.paper_train_config": "builds a TrainConfig(seed=...)",
}


def converted_modules() -> list[str]:
    names = list(CONVERTED_MODULES)
    for pkg in CONVERTED_PACKAGES:
        mod = importlib.import_module(pkg)
        names.append(pkg)
        names += [m.name for m in pkgutil.walk_packages(mod.__path__, pkg + ".")]
    return sorted(set(names))


def seed_parameters(module: str, source: str) -> list[str]:
    """``module.function(param)`` for every public function or method with a seed-named
    parameter and every call that builds a generator or seeds a global RNG
    (``module:line call``). Private helpers (``_name``) may take the integer that a public
    function drew from its ``rng`` or ``generator`` for a scikit-learn ``random_state`` or
    :func:`hvae_lib.config.build_seeded`; the calls inside them are scanned all the same."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name.startswith("_") and not node.name.startswith("__"):
                continue
            a = node.args
            for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs]:
                if arg.arg in SEED_NAMES and f"{module}.{node.name}" not in ALLOWED:
                    out.append(f"{module}.{node.name}({arg.arg})")
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name in SEEDING_CALLS:
                out.append(f"{module}:{node.lineno} {name}()")
    return out


def module_source(module: str) -> str:
    mod = importlib.import_module(module)
    return inspect.getsource(mod)


# ----------------------------------------------------------------------------- the checks
def test_check_rng_accepts_a_generator_and_refuses_everything_else() -> None:
    rng = np.random.default_rng(0)
    assert check_rng(rng) is rng
    for bad, shown in (
        (0, "int 0"),
        (None, "NoneType None"),
        (np.random.RandomState(0), "RandomState"),
    ):
        with pytest.raises(TypeError, match=rf"rng must be a numpy\.random\.Generator.*{shown}"):
            check_rng(bad)
    with pytest.raises(TypeError, match="default_rng"):  # says what to pass instead
        check_rng(torch.Generator())
    with pytest.raises(TypeError, match="^labels_rng must"):
        check_rng(1, "labels_rng")


def test_check_generator_checks_type_and_device() -> None:
    g = torch.Generator()
    assert check_generator(g) is g and check_generator(g, "cpu") is g
    assert check_generator(g, torch.device("cpu")) is g
    for bad in (0, None, np.random.default_rng(0)):
        with pytest.raises(TypeError, match=r"generator must be a torch\.Generator"):
            check_generator(bad)
    with pytest.raises(ValueError, match=r"generator is on cpu but must be on meta"):
        check_generator(g, "meta")  # negative control of the device check, without a GPU
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="must be on cuda"):
            check_generator(g, "cuda")
        assert check_generator(torch.Generator(device="cuda"), "cuda:0").device.type == "cuda"


# ----------------------------------------------------------------------------- the scan
def test_converted_modules_take_no_seed_and_build_no_generator() -> None:
    mods = converted_modules()
    assert "hvae_lib.metrics.dci" in mods and "hvae_lib.data.glyphs" in mods
    problems = [p for m in mods for p in seed_parameters(m, module_source(m))]
    assert problems == [], "\n".join(problems)


def test_scan_reports_a_seed_parameter_and_a_fresh_generator() -> None:
    src = (
        "import numpy as np\n"
        "def split(n, seed=0):\n"
        "    return np.random.default_rng(seed).permutation(n)\n"
        "def fit(x, *, random_state=None):\n"
        "    np.random.seed(0)\n"
        "def paper_train_config(seed=2):\n"
        "    return seed\n"
        "def ok(x, *, rng):\n"
        "    return _fit(x, int(rng.integers(2**31 - 1)))\n"
        "def _fit(x, seed):\n"
        "    return x\n"
        "def _fresh(seed):\n"
        "    return np.random.default_rng(seed)\n"
    )
    found = seed_parameters("m", src)
    assert "m.split(seed)" in found and "m.fit(random_state)" in found
    assert "m:3 default_rng()" in found and "m:5 seed()" in found
    assert "m.paper_train_config(seed)" in found  # the allow-list names one function exactly
    assert not any("ok" in p or "_fit" in p or "_fresh" in p for p in found)
    assert "m:13 default_rng()" in found  # a private helper's fresh generator is reported
    assert len(found) == 6, found
    allowed = seed_parameters(
        "hvae_lib.experiments.ch03_rate_splitting", "def paper_train_config(seed=2): pass\n"
    )
    assert allowed == []


def _global_streams() -> tuple[torch.Tensor, dict]:
    return torch.random.get_rng_state().clone(), np.random.get_state(legacy=False)


def _untouched(before: tuple[torch.Tensor, dict]) -> bool:
    t, n = _global_streams()
    old = before[1]["state"]
    same_np = (
        bool(np.array_equal(n["state"]["key"], old["key"])) and n["state"]["pos"] == old["pos"]
    )
    return bool(torch.equal(t, before[0])) and same_np


def test_library_paths_leave_the_global_streams_alone() -> None:
    """Evaluation, codes, generation and the training loop draw only from the generators they
    are given: torch's and NumPy's global states are the same after them. Control: a draw from
    the global stream is detected."""
    from hvae_lib.analysis import (
        conditional_samples,
        evaluate_semisupervised,
        evaluate_vae,
        top_layer_codes,
    )
    from hvae_lib.models import (
        BetaVAE,
        HierarchicalVAE,
        HierarchicalVAEConfig,
        SemafoConfig,
        VAEConfig,
        build_semafo,
    )
    from hvae_lib.objectives import vae_loss
    from hvae_lib.train import TrainConfig, train

    torch.manual_seed(123)
    np.random.seed(123)
    x = (torch.rand(12, 1, 8, 8) > 0.5).float()
    vae = BetaVAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=(8,)))
    hvae = HierarchicalVAE(HierarchicalVAEConfig(input_shape=(1, 8, 8), latent_dims=(3, 2)))
    semafo = build_semafo(
        SemafoConfig(
            vae=VAEConfig(
                input_shape=(1, 16, 16), latent_dim=4, architecture="conv", hidden=(8, 8), dense=16
            ),
            factor_sizes=(2, 3),
        )
    )
    f = np.stack([np.arange(6) % 2, np.arange(6) % 3], 1)
    x16 = (torch.rand(6, 1, 16, 16) > 0.5).float()
    before = _global_streams()
    g = torch.Generator().manual_seed(0)
    evaluate_vae(vae, x, generator=g)
    top_layer_codes(hvae, x, generator=g)
    conditional_samples(semafo, f, g)
    evaluate_semisupervised(semafo, x16, f, generator=g)
    train(vae, x, vae_loss(1.0), TrainConfig(steps=3, batch_size=4), progress=False)
    assert _untouched(before)
    torch.randn(1)  # the controls: one draw from either global stream is detected
    assert not _untouched(before)
    before = _global_streams()
    np.random.rand()
    assert not _untouched(before)
