"""The package is layered and imports only downward.

Two independent checks of the same layer list: import-linter's ``layers`` contract
(``[tool.importlinter]`` in pyproject.toml, run as ``lint-imports``), and an AST scan of every
``import`` / ``from`` statement under ``hvae_lib/`` (inside functions too) for upward imports,
imports between independent siblings, import cycles, imports of private names from another
module and imports of hvae_lib modules inside functions. A synthetic module graph checks that
the scan reports what it should.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    tomllib = None  # type: ignore[assignment]

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "hvae_lib"

# Lowest first; siblings of one layer are independent (they may not import each other).
LAYERS: list[tuple[str, ...]] = [
    ("hvae_lib.config",),
    ("hvae_lib.data", "hvae_lib.info", "hvae_lib.metrics", "hvae_lib.distributions"),
    ("hvae_lib.models",),
    ("hvae_lib.objectives",),
    ("hvae_lib.train",),
    ("hvae_lib.analysis",),
    ("hvae_lib.plots", "hvae_lib.widgets"),
    ("hvae_lib.experiments",),
    ("hvae_lib.book",),
]
# Outside the layers: the root imports nothing from the subpackages (it holds ``__version__``,
# which any layer may import); ``__main__`` is the entry point above everything.
ROOT = "hvae_lib"
TOP = ("hvae_lib.__main__",)


# ----------------------------------------------------------------------------- the scanner
def module_name(path: Path, root: Path = PACKAGE, package: str = ROOT) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = [package, *rel.parts]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def scan_imports(
    source: str, module: str, is_package: bool
) -> list[tuple[str, list[str], bool, int]]:
    """Every import of ``source``: ``(imported module, imported names, at module level, line)``.

    Relative imports are resolved against ``module``; ``inside a function`` covers every
    statement nested in a function or method body.
    """
    tree = ast.parse(source)
    out: list[tuple[str, list[str], bool, int]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
            )
            if isinstance(child, ast.Import):
                for alias in child.names:
                    out.append((alias.name, [], not in_function, child.lineno))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = module.split(".") if is_package else module.split(".")[:-1]
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                out.append((target, [a.name for a in child.names], not in_function, child.lineno))
            visit(child, nested)

    visit(tree, False)
    return out


def layer_of(module: str, layers: list[tuple[str, ...]] = LAYERS) -> tuple[int, str] | None:
    """``(layer index, sibling)`` of ``module`` (longest matching prefix), or ``None`` outside the layers."""
    best = None
    for i, siblings in enumerate(layers):
        for s in siblings:
            if module == s or module.startswith(s + "."):
                if best is None or len(s) > len(best[1]):
                    best = (i, s)
    return best


def build_graph(sources: dict[str, tuple[str, bool]]) -> tuple[dict[str, set[str]], list[str]]:
    """Module graph of ``{module: (source, is_package)}`` and the problems found while building it.

    An edge goes to the imported module, or to ``package.name`` when ``from package import
    name`` names a submodule.
    """
    graph: dict[str, set[str]] = {m: set() for m in sources}
    problems: list[str] = []
    for mod, (src, is_pkg) in sources.items():
        for target, names, top_level, line in scan_imports(src, mod, is_pkg):
            if not (target == ROOT or target.startswith(ROOT + ".")):
                continue
            if not top_level:
                problems.append(f"{mod}:{line} imports {target} inside a function")
            edges = [f"{target}.{n}" for n in names if f"{target}.{n}" in sources] or [target]
            for n in names:
                if (
                    n.startswith("_")
                    and not n.startswith("__")
                    and f"{target}.{n}" not in sources
                    and target != mod
                ):
                    problems.append(f"{mod}:{line} imports the private name {n} from {target}")
            for e in edges:
                if e != mod:
                    graph[mod].add(e)
    return graph, problems


def layer_violations(
    graph: dict[str, set[str]], layers: list[tuple[str, ...]] = LAYERS
) -> list[str]:
    """Upward imports and imports between independent siblings."""
    out = []
    for mod, targets in graph.items():
        for t in targets:
            if t == ROOT:
                continue
            if mod == ROOT:
                out.append(f"{ROOT} (the root) imports {t}")
                continue
            src, dst = layer_of(mod, layers), layer_of(t, layers)
            if mod in TOP or mod.startswith(tuple(p + "." for p in TOP)):
                continue
            if src is None:
                out.append(f"{mod} is in no layer")
                continue
            if dst is None:
                if t in TOP:
                    out.append(f"{mod} imports the entry point {t}")
                continue
            if dst[0] > src[0]:
                out.append(f"{mod} (layer {src[0]}) imports {t} (higher layer {dst[0]})")
            elif dst[0] == src[0] and dst[1] != src[1]:
                out.append(f"{mod} imports its independent sibling {t}")
    return out


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def package_sources(root: Path = PACKAGE, package: str = ROOT) -> dict[str, tuple[str, bool]]:
    return {
        module_name(p, root, package): (p.read_text(encoding="utf-8"), p.name == "__init__.py")
        for p in sorted(root.rglob("*.py"))
    }


def check(
    sources: dict[str, tuple[str, bool]], layers: list[tuple[str, ...]] = LAYERS
) -> list[str]:
    graph, problems = build_graph(sources)
    problems += layer_violations(graph, layers)
    problems += [f"import cycle: {' <-> '.join(c)}" for c in find_cycles(graph)]
    return problems


# ----------------------------------------------------------------------------- the tests
def test_every_module_is_in_a_layer() -> None:
    for mod in package_sources():
        assert mod == ROOT or mod in TOP or layer_of(mod) is not None, f"{mod} belongs to no layer"


def test_ast_scan_finds_no_upward_import_cycle_private_name_or_function_import() -> None:
    problems = check(package_sources())
    assert not problems, "\n".join(problems)


def test_root_package_imports_nothing_from_the_subpackages() -> None:
    src = (PACKAGE / "__init__.py").read_text(encoding="utf-8")
    assert not [t for t, *_ in scan_imports(src, ROOT, True) if t.startswith(ROOT)]


def test_checker_reports_an_upward_import_a_cycle_a_sibling_a_private_name_and_a_function_import() -> (
    None
):
    sources = {
        "hvae_lib": ("", True),
        "hvae_lib.config": ("", False),
        "hvae_lib.data": ("from ..info import x\n", True),  # independent sibling
        "hvae_lib.info": ("", True),
        "hvae_lib.models": ("from ..train import fit\n", True),  # upward (relative)
        "hvae_lib.models.vae": (
            "def f():\n    import hvae_lib.analysis\n",
            False,
        ),  # upward, in a function
        "hvae_lib.train": ("from hvae_lib.train.loop import _private\n", True),  # private name
        "hvae_lib.train.loop": ("from . import semisup\n", False),
        "hvae_lib.train.semisup": ("from .loop import train\n", False),  # cycle loop <-> semisup
        "hvae_lib.analysis": ("from hvae_lib.models import BetaVAE\n", True),  # fine (downward)
    }
    problems = check(sources)
    text = "\n".join(problems)
    assert "hvae_lib.models (layer 2) imports hvae_lib.train (higher layer 4)" in text
    assert "hvae_lib.models.vae (layer 2) imports hvae_lib.analysis (higher layer 5)" in text
    assert "hvae_lib.models.vae:2 imports hvae_lib.analysis inside a function" in text
    assert "hvae_lib.data imports its independent sibling hvae_lib.info" in text
    assert "imports the private name _private from hvae_lib.train.loop" in text
    assert "import cycle: hvae_lib.train.loop <-> hvae_lib.train.semisup" in text
    assert not any(p.startswith("hvae_lib.analysis") for p in problems)
    assert len(problems) == 6, text


def test_checker_reports_an_upward_import_in_a_temporary_module(tmp_path: Path) -> None:
    pkg = tmp_path / "hvae_lib"
    for sub in ("config", "models"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "config" / "__init__.py").write_text("from hvae_lib.models import BetaVAE\n")
    problems = check(package_sources(pkg))
    assert problems == ["hvae_lib.config (layer 0) imports hvae_lib.models (higher layer 2)"]


@pytest.mark.skipif(tomllib is None, reason="tomllib needs Python 3.11")
def test_pyproject_contract_lists_the_same_layers() -> None:
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "importlinter"
    ]
    assert cfg["root_package"] == ROOT
    (contract,) = [c for c in cfg["contracts"] if c["type"] == "layers"]
    listed = [tuple(s.strip() for s in layer.split("|")) for layer in contract["layers"]]
    assert listed == LAYERS[::-1]  # import-linter lists the highest layer first


def test_lint_imports_passes() -> None:
    exe = Path(sys.executable).parent / "lint-imports"
    if not exe.is_file():
        pytest.skip(f"import-linter is not installed next to {sys.executable}")
    proc = subprocess.run(
        [str(exe), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 kept, 0 broken" in proc.stdout, proc.stdout
