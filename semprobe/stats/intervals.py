"""Confidence intervals and tests for accuracies: one model, two independent ones, two on the same images.

Pure Python (``math`` only), so the commands that report accuracies load nothing heavy.

- :func:`wilson_interval`: the Wilson score interval of one proportion.
- :func:`mover_difference`: the difference of two *independent* estimates from their
  intervals (MOVER, Zou & Donner 2008; with Wilson intervals it is Newcombe's 1998
  method 10 for unpaired proportions).
- :func:`paired_difference_interval`: the difference of two accuracies measured on the
  *same* images (Newcombe 1998, "Improved confidence intervals for the difference between
  binomial proportions based on paired data", method 10: the Wilson intervals of both
  accuracies combined with a correction for their correlation phi).
- :func:`mcnemar_exact`: McNemar's exact test of equal accuracy on the same images, the
  two-sided binomial test of the discordant pairs (b successes of b + c at 1/2).
- :func:`paired_comparison`: both, from two per-image correctness vectors.

Two models evaluated on the same test images make correlated errors; the paired
interval uses that and is narrower than the unpaired one whenever the correlation is
positive, which it nearly always is.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

Z_95 = 1.959963984540054


def wilson_interval(correct: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``correct / n`` (as fractions)."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = correct / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def mover_difference(estimate1: float, ci1, estimate2: float, ci2) -> tuple[float, float, float]:
    """``(d, low, high)``: d = estimate1 - estimate2 and its MOVER interval from the two CIs.

    low = d - sqrt((e1 - l1)^2 + (u2 - e2)^2), high = d + sqrt((u1 - e1)^2 + (e2 - l2)^2)
    (Zou & Donner 2008, eq. 5; Newcombe 1998, method 10, for Wilson intervals). For two
    independent estimates; for two accuracies on the same images use
    :func:`paired_difference_interval`.
    """
    (low1, high1), (low2, high2) = ci1, ci2
    difference = estimate1 - estimate2
    low = difference - math.sqrt((estimate1 - low1) ** 2 + (high2 - estimate2) ** 2)
    high = difference + math.sqrt((high1 - estimate1) ** 2 + (estimate2 - low2) ** 2)
    return difference, low, high


def _paired_phi(both: int, only_first: int, only_second: int, neither: int) -> float:
    """Newcombe's (1998, method 10) continuity-corrected correlation of the paired 2x2 table."""
    n = both + only_first + only_second + neither
    margins = (both + only_first) * (only_second + neither) * (both + only_second) * (only_first + neither)
    if margins == 0:
        return 0.0
    cross = both * neither - only_first * only_second
    corrected = cross - n / 2 if cross > n / 2 else (cross if cross < 0 else 0.0)
    return corrected / math.sqrt(margins)


def paired_difference_interval(
    both: int, only_first: int, only_second: int, neither: int, z: float = Z_95
) -> tuple[float, float, float]:
    """``(d, low, high)`` for d = p1 - p2, two accuracies on the same n images (Newcombe 1998, method 10).

    The table counts images right for both models, for the first only, for the second
    only, and for neither. p1 = (both + only_first) / n, p2 = (both + only_second) / n,
    [l_i, u_i] their Wilson intervals and phi the corrected correlation of the table:

        low  = d - sqrt((p1 - l1)^2 - 2 phi (p1 - l1)(u2 - p2) + (u2 - p2)^2)
        high = d + sqrt((p2 - l2)^2 - 2 phi (p2 - l2)(u1 - p1) + (u1 - p1)^2)

    With phi = 0 this is the unpaired interval (:func:`mover_difference`).
    """
    counts = (both, only_first, only_second, neither)
    if min(counts) < 0:
        raise ValueError(f"counts must be >= 0, got {counts}")
    n = sum(counts)
    if n == 0:
        return (float("nan"), float("nan"), float("nan"))
    p1, p2 = (both + only_first) / n, (both + only_second) / n
    (l1, u1), (l2, u2) = wilson_interval(both + only_first, n, z), wilson_interval(both + only_second, n, z)
    phi = _paired_phi(*counts)
    d = p1 - p2
    low = d - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    high = d + math.sqrt(max(0.0, (p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2))
    return d, max(-1.0, low), min(1.0, high)


def _log_binomial_half(m: int, k: int) -> float:
    """log(C(m, k) / 2^m)."""
    return math.lgamma(m + 1) - math.lgamma(k + 1) - math.lgamma(m - k + 1) - m * math.log(2.0)


def mcnemar_exact(only_first: int, only_second: int) -> float:
    """Two-sided exact McNemar p-value: ``min(1, 2 P(X <= min(b, c)))`` for X ~ Binomial(b + c, 1/2).

    Only the discordant images count: ``only_first`` right for the first model alone,
    ``only_second`` for the second alone. 1 when there are none.
    """
    if only_first < 0 or only_second < 0:
        raise ValueError(f"counts must be >= 0, got {only_first}, {only_second}")
    m = only_first + only_second
    if m == 0:
        return 1.0
    k = min(only_first, only_second)
    logs = [_log_binomial_half(m, i) for i in range(k + 1)]
    top = max(logs)
    tail = math.exp(top) * sum(math.exp(v - top) for v in logs)
    return min(1.0, 2.0 * tail)


@dataclass
class PairedComparison:
    """Two accuracies on the same images: the 2x2 counts, the difference (first - second) with its
    paired 95% interval (Newcombe method 10), and McNemar's exact p-value, all in fractions."""

    n: int
    both: int
    only_first: int
    only_second: int
    neither: int
    accuracy_first: float
    accuracy_second: float
    difference: float
    ci95: tuple[float, float]
    mcnemar_p: float

    def to_dict(self) -> dict:
        return asdict(self)


def paired_comparison(first: Sequence[bool], second: Sequence[bool]) -> PairedComparison:
    """Compare two per-image correctness vectors of the same images, in the same order."""
    if len(first) != len(second):
        raise ValueError(f"the two models were scored on different numbers of images ({len(first)}, {len(second)})")
    both = sum(1 for a, b in zip(first, second) if a and b)
    only_first = sum(1 for a, b in zip(first, second) if a and not b)
    only_second = sum(1 for a, b in zip(first, second) if b and not a)
    n = len(first)
    neither = n - both - only_first - only_second
    difference, low, high = paired_difference_interval(both, only_first, only_second, neither)
    return PairedComparison(
        n=n, both=both, only_first=only_first, only_second=only_second, neither=neither,
        accuracy_first=(both + only_first) / n if n else float("nan"),
        accuracy_second=(both + only_second) / n if n else float("nan"),
        difference=difference, ci95=(low, high), mcnemar_p=mcnemar_exact(only_first, only_second),
    )
