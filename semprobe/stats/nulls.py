"""Permutation tests: the result object shared by the CCA and similarity nulls.

A permutation test compares an observed statistic with its values on permuted data.

* **Monte Carlo** (random permutations): ``p = (1 + #{T_b >= T_obs}) / (1 + B)``, the
  estimator that counts the observed data as one of the permutations, so a p-value is
  never zero (Phipson & Smyth, 2010, "Permutation p-values should never be zero",
  Stat. Appl. Genet. Mol. Biol. 9(1), eq. 2).
* **Exact** (every element of the permutation group, the identity included):
  ``p = #{T_b >= T_obs} / |G|``.

Null values within :data:`TIE_TOLERANCE` of the observed value count as ties (">="), so
rounding never makes a statistic that is invariant under the permutations (every value
equal) look significant: such a test has p = 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Null values this close to the observed statistic (absolute) count as ties.
TIE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class PermutationTest:
    """An observed statistic against its permutation null distribution.

    Attributes:
        statistic: what was computed each time, e.g. ``"in-sample first canonical correlation"``.
        null: which permutations: ``"pair_shuffle"`` (rows of the word side permuted against
            the image side) or ``"relabel"`` (the class order of the word vectors permuted).
        observed: the statistic on the data as given.
        null_values: the statistic under each permutation (the identity included when exact).
        exact: True when ``null_values`` covers the whole permutation group.
    """

    statistic: str
    null: str
    observed: float
    null_values: np.ndarray = field(repr=False)
    exact: bool

    @property
    def n_perm(self) -> int:
        """Number of permutations evaluated."""
        return int(self.null_values.size)

    @property
    def p_value(self) -> float:
        """One-sided p-value of the observed statistic (large values are extreme); see the module doc."""
        at_least = int(np.count_nonzero(self.null_values >= self.observed - TIE_TOLERANCE))
        if self.exact:
            return at_least / self.n_perm
        return (1 + at_least) / (1 + self.n_perm)

    def quantile(self, q: float) -> float:
        """The q-quantile of the null distribution (linear interpolation)."""
        return float(np.quantile(self.null_values, q))

    def to_dict(self) -> dict[str, Any]:
        """Plain-type summary: the null distribution is given by its mean and 5/50/95% quantiles."""
        return {
            "statistic": self.statistic,
            "null": self.null,
            "observed": float(self.observed),
            "p_value": self.p_value,
            "n_perm": self.n_perm,
            "exact": bool(self.exact),
            "null_mean": float(np.mean(self.null_values)),
            "null_q05": self.quantile(0.05),
            "null_q50": self.quantile(0.50),
            "null_q95": self.quantile(0.95),
        }
