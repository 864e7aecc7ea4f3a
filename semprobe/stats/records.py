"""The statistics of ``semprobe cca`` and ``semprobe simmatrix`` read back from their JSON.

The commands write each :class:`~semprobe.stats.cca_reporting.CCAReport` and
:class:`~semprobe.stats.similarity_reporting.SimilarityReport` with its ``to_dict``; the
JSON keeps the statistics, their bootstrap intervals and each permutation null as a
summary (its mean and quantiles, not every permuted value), so a report cannot be rebuilt
whole. What can be read back, and what :mod:`semprobe.paper.findings` reads, are these
records: a statistic (SCARL's CCA r of Fig. 1 and 5, or the RSA of Fig. 2) with its
interval and the summaries of its nulls, and a command document's entry by label.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class NullSummary:
    """A permutation null as :meth:`~semprobe.stats.nulls.PermutationTest.to_dict` records it."""

    statistic: str
    null: str
    observed: float
    p_value: float
    n_perm: int
    exact: bool
    null_mean: float
    null_q05: float
    null_q50: float
    null_q95: float

    @classmethod
    def from_dict(cls, record: Mapping[str, Any] | None) -> NullSummary | None:
        """The summary a JSON record holds (None stays None: the null was not computed)."""
        if record is None:
            return None
        return cls(**{name: record[name] for name in cls.__dataclass_fields__})

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class Statistic:
    """One statistic as a command recorded it: ``value`` (None when undefined), its 95% bootstrap
    ``ci`` (None when not computed), the class-relabelling and pair-shuffle nulls, the fit's
    ``diagnostics`` (CCA) and a ``note`` saying why an undefined statistic is undefined (RSA).
    ``n_fit``/``n_test``: the pairs the CCA was fitted on and correlated on (held-out CCA)."""

    value: float | None
    ci: tuple[float, float] | None
    relabel: NullSummary | None = None
    pair_shuffle: NullSummary | None = None
    diagnostics: dict = field(default_factory=dict)
    note: str | None = None
    n_fit: int | None = None
    n_test: int | None = None

    @property
    def defined(self) -> bool:
        """True when the statistic and its interval exist."""
        return self.value is not None and bool(self.ci)

    @property
    def relabel_p(self) -> float | None:
        return None if self.relabel is None else self.relabel.p_value

    def excess(self) -> tuple[float, tuple[float, float], float | None]:
        """``(excess, ci, p)``: the statistic minus the mean of its class-relabelling null, its
        interval shifted alike, and the relabelling p-value: what the words' geometry adds
        beyond any assignment of the same vectors to the classes (0 mean when no null)."""
        null_mean = 0.0 if self.relabel is None else self.relabel.null_mean
        return (self.value - null_mean, (self.ci[0] - null_mean, self.ci[1] - null_mean), self.relabel_p)

    @property
    def relabelling_is_degenerate(self) -> bool:
        """True when the word side spans the class labels (rank >= K-1): relabelling cannot change a CCA."""
        distinct = self.diagnostics.get("n_distinct_y")
        return distinct is not None and self.diagnostics.get("rank_y", 0) >= distinct - 1

    @classmethod
    def from_cca(cls, record: Mapping[str, Any], train: list | None = None, test: list | None = None) -> Statistic:
        """A :class:`~semprobe.stats.cca_reporting.CCAStatistic` record (``in_sample`` or ``held_out``
        of a report); ``train``/``test`` are the report's pair indices, for the pair counts."""
        diagnostics = dict(record.get("diagnostics") or {})
        ci = record.get("ci")
        return cls(record["r"], tuple(ci) if ci else None, NullSummary.from_dict(record.get("relabel")),
                   NullSummary.from_dict(record.get("pair_shuffle")), diagnostics,
                   n_fit=len(train or []) or diagnostics.get("n"), n_test=len(test or []) or None)

    @classmethod
    def from_rsa(cls, record: Mapping[str, Any]) -> Statistic:
        """The RSA of a :class:`~semprobe.stats.similarity_reporting.SimilarityReport` record."""
        ci = record.get("rsa_ci")
        return cls(record.get("rsa"), tuple(ci) if ci else None, NullSummary.from_dict(record.get("relabel")),
                   note=record.get("rsa_note"))


def lookup(mapping: Mapping[str, Any], label: str, what: str) -> Any:
    """``mapping[label]``, or a KeyError naming ``what`` and the entries it has."""
    if label not in mapping:
        raise KeyError(f"{what} has no entry {label!r}; it has {', '.join(mapping)}")
    return mapping[label]


def cca_statistic(document: Mapping[str, Any], label: str, column: str, which: str = "held_out",
                  what: str = "cca.json") -> Statistic:
    """``label``'s ``which`` statistic (``held_out`` or ``in_sample``) on ``column`` images
    (``natural``, ``adversarial``, ``adversarial_projected``) in a ``semprobe cca`` document."""
    report = lookup(lookup(document["sources"], label, what)["columns"], column, f"{what} ({label})")
    return Statistic.from_cca(report[which], report.get("train"), report.get("test"))


def rsa_statistic(document: Mapping[str, Any], label: str, embedding: str,
                  what: str = "simmatrix.json") -> Statistic:
    """The RSA of ``label``'s features (``"NAME (adversarial)"`` for attacked images) with
    ``embedding`` in a ``semprobe simmatrix`` document."""
    return Statistic.from_rsa(lookup(lookup(document["features"], label, what)["embeddings"], embedding, label))
