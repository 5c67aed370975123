"""The reproduction ledger's claim files (hvae_lib.book.ledger)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hvae_lib.book.ledger import (
    PAPERS,
    VERDICTS,
    Claim,
    claims_dir,
    load_claims,
    record_claims,
    verdict_from,
)


def _claim(i: str = "c1", **kw: str) -> Claim:
    base = dict(
        id=i,
        paper="xiao2023",
        claim="rates split per layer",
        paper_value="exact identity",
        obtained="residual 1e-16",
        verdict="reproduced",
    )
    base.update(kw)
    return Claim(**base)  # type: ignore[arg-type]


def test_round_trip_and_order(tmp_path: Path) -> None:
    record_claims("02_b", [_claim("x")], profile="quick", directory=tmp_path)
    path = record_claims(
        "01_a",
        [_claim("a"), _claim("b", verdict="not reproduced")],
        profile="paper",
        directory=tmp_path,
    )
    assert json.loads(path.read_text())["chapter"] == "01_a"
    got = load_claims(tmp_path)
    assert [(c.chapter, c.id) for c in got] == [("01_a", "a"), ("01_a", "b"), ("02_b", "x")]
    assert got[0].profile == "paper" and got[2].profile == "quick"
    assert got[1].verdict == "not reproduced"
    # restricting and ordering by the table of contents; a missing chapter gives nothing
    got = load_claims(tmp_path, chapters=["02_b", "03_missing", "01_a"])
    assert [c.id for c in got] == ["x", "a", "b"]


def test_rerecording_replaces_the_chapter(tmp_path: Path) -> None:
    record_claims("01_a", [_claim("a"), _claim("b")], profile="quick", directory=tmp_path)
    record_claims("01_a", [_claim("c")], profile="quick", directory=tmp_path)
    assert [c.id for c in load_claims(tmp_path)] == ["c"]


def test_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown paper"):
        _claim(paper="nobody2020")
    with pytest.raises(ValueError, match="unknown verdict"):
        _claim(verdict="sort of")
    with pytest.raises(ValueError, match="must not be empty"):
        _claim(obtained="  ")
    with pytest.raises(ValueError, match="duplicate claim ids"):
        record_claims("01_a", [_claim("a"), _claim("a")], profile="quick", directory=tmp_path)
    with pytest.raises(ValueError, match="at least one"):
        record_claims("01_a", [], profile="quick", directory=tmp_path)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json is not a valid claims file"):
        load_claims(tmp_path)


def test_verdict_from_and_constants() -> None:
    assert verdict_from(True) == "reproduced"
    assert verdict_from(False) == "not reproduced"
    assert verdict_from(False, partial=True) == "partially"
    assert verdict_from(True, tested=False) == "not tested"
    assert set(PAPERS) == {"ngo2022", "xiao2023"}
    assert "consistent" in VERDICTS


def test_claims_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HVAE_CLAIMS_DIR", str(tmp_path / "c"))
    assert claims_dir() == tmp_path / "c"
    record_claims("01_a", [_claim()], profile="quick")
    assert (tmp_path / "c" / "01_a.json").is_file()
    monkeypatch.delenv("HVAE_CLAIMS_DIR")
    assert claims_dir().name == "claims" and claims_dir().parent.name == "_build"


def test_fails_if_round_trips_and_inconclusive_is_counted(tmp_path: Path) -> None:
    """A claim says what would have made it fail; the ledger reads it back."""
    c = Claim(
        id="X1",
        paper="ngo2022",
        claim="c",
        paper_value="p",
        obtained="o",
        verdict="inconclusive",
        fails_if="the lower 95% limit at or below 0",
    )
    record_claims("09_x", [c], profile="quick", directory=tmp_path)
    (back,) = load_claims(tmp_path)
    assert back.fails_if == "the lower 95% limit at or below 0"
    assert back.verdict == "inconclusive" and back.shown_verdict == "inconclusive"
    with pytest.raises(ValueError, match="unknown verdict"):
        Claim(id="X", paper="ngo2022", claim="c", paper_value="p", obtained="o", verdict="maybe")
