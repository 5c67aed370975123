"""The API page (book/api.md) covers the library: every module it documents imports, and every
public module of ``hvae_lib`` is documented there or left out here with a reason."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import hvae_lib

API_PAGE = Path(__file__).resolve().parents[1] / "book" / "api.md"

#: Packages whose modules (the package and everything under it) the page does not render yet,
#: with the reason. The page names them in prose instead.
LEFT_OUT: dict[str, str] = {}


def documented_modules(text: str) -> list[str]:
    """Module names of the page's ``.. automodule::`` directives, in page order."""
    return re.findall(r"^\.\. automodule::\s+(\S+)\s*$", text, flags=re.MULTILINE)


def public_modules() -> list[str]:
    """Every module of ``hvae_lib`` whose dotted name has no part starting with ``_``."""
    names = ["hvae_lib"] + [m.name for m in pkgutil.walk_packages(hvae_lib.__path__, "hvae_lib.")]
    return [n for n in names if not any(part.startswith("_") for part in n.split("."))]


def left_out_reason(name: str) -> str | None:
    for pkg, reason in LEFT_OUT.items():
        if name == pkg or name.startswith(pkg + "."):
            return reason
    return None


def missing_from_page(modules: list[str], documented: list[str]) -> list[str]:
    """Modules neither documented on the page nor left out with a reason."""
    return [m for m in modules if m not in documented and left_out_reason(m) is None]


@pytest.fixture(scope="module")
def documented() -> list[str]:
    return documented_modules(API_PAGE.read_text(encoding="utf-8"))


def test_page_lists_modules_once(documented: list[str]) -> None:
    assert len(documented) > 30, documented
    assert len(documented) == len(set(documented)), (
        "a module is documented twice (duplicate objects)"
    )


def test_every_documented_module_imports(documented: list[str]) -> None:
    for name in documented:
        importlib.import_module(name)


def test_every_public_module_is_documented(documented: list[str]) -> None:
    modules = public_modules()
    assert "hvae_lib.models.vae" in modules and "hvae_lib.__main__" not in modules
    assert "hvae_lib.metrics._validation" not in modules
    assert missing_from_page(modules, documented) == []


def test_left_out_modules_are_really_left_out(documented: list[str]) -> None:
    assert [m for m in documented if left_out_reason(m)] == []
    for pkg in LEFT_OUT:
        importlib.import_module(pkg)  # a stale entry (package gone) fails here


def test_negative_control_missing_module_is_reported(documented: list[str]) -> None:
    fake = "hvae_lib.models.no_such_module"
    assert missing_from_page(public_modules() + [fake], documented) == [fake]
    assert documented_modules(".. automodule:: hvae_lib.x\n   :members:\n") == ["hvae_lib.x"]
