"""The reproduction ledger: machine-readable claims that each chapter records when it runs.

Every chapter that tests a claim of one of the two papers calls :func:`record_claims` at
its end with one :class:`Claim` per claim: what the paper says (its value or trend, as the paper's
abstract, text or the authors' code states it), what this execution obtained (a number computed in
the notebook, never typed in) and a verdict computed from the two. The files land in
:func:`claims_dir` (one JSON file per chapter); the ledger page (:ref:`ledger`)
reads them all and renders one table, so no number on that page is typed by hand.

During ``python -m hvae_lib build`` the directory is ``_build/staging/claims`` (recreated by
every build, so a page never shows a stale claim); an interactive run writes to
``$HVAE_CLAIMS_DIR`` or, by default, ``<repo>/_build/claims``.

A smoke run of the paper profile (steps and data cut, numbers meaningless) records its claims
with ``smoke=True``: their verdict is kept for the record but shown as
``"smoke run, not a verdict (computed: ...)"`` (:attr:`Claim.shown_verdict`), the ledger
counts none of them as reproduced, and its page says so in a banner (:func:`smoke_notice_html`).

Used in: every chapter's closing cell and :ref:`ledger`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "VERDICTS",
    "PAPERS",
    "Claim",
    "claims_dir",
    "record_claims",
    "load_claims",
    "verdict_from",
    "verdict_from_interval",
    "smoke_notice_html",
]

#: Allowed verdicts, from strongest to weakest.
VERDICTS: tuple[str, ...] = (
    "reproduced",  # the paper's value or trend is obtained at this scale
    "consistent",  # our formalisation / a check that holds; the paper gives no number
    "partially",  # the trend holds for some of the cases the paper shows
    "not reproduced",  # the trend does not hold at this scale
    "inconclusive",  # the seeds' 95% interval straddles the claim's threshold
    "not tested",  # out of reach in this profile (e.g. needs the paper's scale)
)

#: Short keys for the two papers the book reproduces.
PAPERS: dict[str, str] = {
    "ngo2022": "Ngo et al., The Transitive Information Theory and its Application to Deep "
    "Generative Models (arXiv:2203.05074)",
    "xiao2023": "Xiao & Bamler, Trading Information between Latents in Hierarchical "
    "Variational Autoencoders (ICLR 2023, arXiv:2302.04855)",
}


@dataclass
class Claim:
    """One claim of a paper, tested by a chapter.

    Attributes
    ----------
    id : short stable identifier, unique within the chapter (e.g. ``"T1"``).
    paper : a key of :data:`PAPERS`.
    claim : the claim in one sentence, as the book states it.
    paper_value : the paper's value or trend, worded as its source (the abstract, the text or
        the authors' code) gives it; say "our formalisation" where the statement is ours, and
        never invent a number.
    obtained : what this execution measured, formatted from computed values.
    verdict : one of :data:`VERDICTS`, computed in the notebook (see :func:`verdict_from`).
    chapter : the chapter's notebook name (filled in by :func:`record_claims`).
    profile : the profile the value was obtained in (filled in by :func:`record_claims`).
    section : optional anchor/label in the chapter where the evidence is shown.
    smoke : recorded by a smoke run of the paper profile (filled in by :func:`record_claims`):
        the verdict is not evidence (``shown_verdict``).
    fails_if : the result that would have made the check fail, in words (e.g. "the lower
        95% limit of posX controllability below 2× chance"); shown in the ledger.
    """

    id: str
    paper: str
    claim: str
    paper_value: str
    obtained: str
    verdict: str
    chapter: str = ""
    profile: str = ""
    section: str = ""
    smoke: bool = False
    fails_if: str = ""

    @property
    def shown_verdict(self) -> str:
        """The verdict that the ledger shows.

        ``verdict`` itself, or for a claim of a smoke run
        ``"smoke run, not a verdict (computed: <verdict>)"``.
        """
        if self.smoke:
            return f"smoke run, not a verdict (computed: {self.verdict})"
        return self.verdict

    def __post_init__(self) -> None:
        if self.paper not in PAPERS:
            raise ValueError(f"unknown paper {self.paper!r}; valid keys: {', '.join(PAPERS)}")
        if self.verdict not in VERDICTS:
            raise ValueError(
                f"unknown verdict {self.verdict!r}; valid verdicts: {', '.join(VERDICTS)}"
            )
        for name in ("id", "claim", "paper_value", "obtained"):
            if not str(getattr(self, name)).strip():
                raise ValueError(f"Claim.{name} must not be empty")


def verdict_from(holds: bool, *, partial: bool = False, tested: bool = True) -> str:
    """Map a computed check to a verdict: ``reproduced``, ``partially``, ``not reproduced``
    or ``not tested``."""
    if not tested:
        return "not tested"
    if holds:
        return "reproduced"
    return "partially" if partial else "not reproduced"


def verdict_from_interval(low: float, high: float, threshold: float, *, tested: bool = True) -> str:
    """The verdict of a claim "the quantity exceeds ``threshold``" from its 95% interval.

    ``reproduced`` when the whole interval ``[low, high]`` lies above the threshold,
    ``not reproduced`` when it lies at or below it, ``inconclusive`` when it straddles it
    (more seeds could decide); ``not tested`` when ``tested`` is false or an end is NaN
    (fewer than two seeds). For a claim "the quantity stays below", pass the negated
    interval and threshold.

    Used in: :ref:`ch-semafovae-verdicts`
    """
    if not tested or not (math.isfinite(low) and math.isfinite(high)):
        return "not tested"
    if low > high:
        raise ValueError(f"need low <= high, got [{low}, {high}]")
    if low > threshold:
        return "reproduced"
    if high <= threshold:
        return "not reproduced"
    return "inconclusive"


def claims_dir() -> Path:
    """Where claim files go: ``$HVAE_CLAIMS_DIR``, else ``<repo>/_build/claims``."""
    env = os.environ.get("HVAE_CLAIMS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "_build" / "claims"


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def record_claims(
    chapter: str,
    claims: Sequence[Claim],
    *,
    profile: str,
    smoke: bool = False,
    directory: Path | None = None,
) -> Path:
    """Write ``claims`` of ``chapter`` (e.g. ``"03_rate_splitting"``) to ``<dir>/<chapter>.json``.

    ``smoke=True`` (a smoke run of the paper profile) marks every claim and the file as
    recorded by a smoke run, whose verdicts are no evidence.

    Raises
    ------
    ValueError
        For an empty chapter name, no claims, or duplicate claim ids.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    if not chapter or "/" in chapter:
        raise ValueError(f"chapter must be a notebook name without a folder, got {chapter!r}")
    if not claims:
        raise ValueError("record_claims needs at least one Claim")
    ids = [c.id for c in claims]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"duplicate claim ids in {chapter}: {', '.join(dup)}")
    out_dir = Path(directory) if directory is not None else claims_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for c in claims:
        row = asdict(c)
        row["chapter"], row["profile"], row["smoke"] = chapter, profile, bool(smoke)
        rows.append({k: _clean(v) for k, v in row.items()})
    path = out_dir / f"{chapter}.json"
    data = {"chapter": chapter, "profile": profile, "smoke": bool(smoke), "claims": rows}
    path.write_text(json.dumps(data, indent=2))
    return path


def load_claims(
    directory: Path | None = None, chapters: Iterable[str] | None = None
) -> list[Claim]:
    """Read every claim file in ``directory`` (default :func:`claims_dir`), in chapter order.

    ``chapters`` restricts and orders the result (e.g. the notebooks of ``_toc.yml``).

    Raises
    ------
    ValueError
        If a file is not a valid claims file (the message names it).
    """
    d = Path(directory) if directory is not None else claims_dir()
    files = sorted(d.glob("*.json")) if d.is_dir() else []
    by_chapter: dict[str, list[Claim]] = {}
    for f in files:
        try:
            data = json.loads(f.read_text())
            by_chapter[data["chapter"]] = [Claim(**row) for row in data["claims"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{f} is not a valid claims file: {exc}") from exc
    order = list(chapters) if chapters is not None else sorted(by_chapter)
    return [c for ch in order for c in by_chapter.get(ch, [])]


def smoke_notice_html(num_smoke: int) -> str:
    """The banner of the ledger page when ``num_smoke`` of its claims come from a smoke run."""
    return (
        '<div class="admonition warning hvae-smoke-banner">'
        '<p class="admonition-title">Smoke run of the paper profile</p>'
        f"<p>{num_smoke} of the claims below were recorded by a smoke run (the paper "
        "profile's models and code paths with steps and data cut, and synthetic stand-ins for "
        "absent data files). Their numbers mean nothing: their verdicts are shown as "
        "<em>smoke run, not a verdict</em> and none of them is counted as reproduced, "
        "consistent or otherwise.</p></div>"
    )
