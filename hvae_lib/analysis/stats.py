r"""Seed-to-seed statistics: the mean of a few replicates and its 95% interval.

A verdict decided from one seed can be flipped by another; chapter 4 trains every model of its
evaluation table with several seeds and decides each claim from the Student-t interval

.. math:: \bar v \pm t_{1-\alpha/2,\,n-1}\; s/\sqrt n,

with :math:`s` the sample standard deviation of the :math:`n` replicates.

Used in: :ref:`ch-semafovae-seeds`, :ref:`ch-semafovae-verdicts`
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as _st

__all__ = ["SeedInterval", "mean_interval"]


@dataclass(frozen=True)
class SeedInterval:
    """Mean of ``n`` replicates with its two-sided ``level`` Student-t interval ``[low, high]``
    (NaN ends for ``n < 2``); ``values`` are the replicates themselves.

    Used in: :ref:`ch-semafovae-seeds`
    """

    mean: float
    low: float
    high: float
    n: int
    level: float
    values: tuple[float, ...]

    @property
    def half_width(self) -> float:
        """Half the interval's width (NaN for ``n < 2``)."""
        return (self.high - self.low) / 2.0

    def format(self, digits: int = 2) -> str:
        """``"mean [low, high]"`` rounded to ``digits`` (just the mean for ``n < 2``)."""
        if self.n < 2:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def mean_interval(values: Any, level: float = 0.95) -> SeedInterval:
    r"""Mean and Student-t interval of replicate values ``[n]`` (NaNs are not allowed).

    :math:`\bar v\pm t_{(1+\text{level})/2,\,n-1}\,s/\sqrt n` with the sample standard
    deviation :math:`s` (``ddof=1``). With ``n = 1`` the ends are NaN: one seed has no interval.

    Raises
    ------
    ValueError
        No values, a NaN or infinite value, or ``level`` outside (0, 1).

    Used in: :ref:`ch-semafovae-seeds`
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("mean_interval needs at least one value")
    if not np.isfinite(v).all():
        raise ValueError(f"mean_interval needs finite values, got {v.tolist()}")
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    m = float(v.mean())
    if v.size < 2:
        return SeedInterval(m, math.nan, math.nan, 1, float(level), (m,))
    half = (
        float(_st.t.ppf(0.5 + level / 2.0, v.size - 1)) * float(v.std(ddof=1)) / math.sqrt(v.size)
    )
    return SeedInterval(m, m - half, m + half, int(v.size), float(level), tuple(v.tolist()))
