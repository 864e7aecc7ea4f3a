"""What every result object offers besides its numbers: a pandas table and a short summary.

The result types (:class:`~semprobe.robustness.accuracy.Evaluation`,
:class:`~semprobe.stats.cca.CCAReport`, :class:`~semprobe.stats.similarity.SimilarityReport`,
:class:`~semprobe.robustness.alpha_curves.AlphaCurve`) build their ``to_frame()`` rows and their
``__str__`` lines with these helpers, so that every table and summary spells numbers,
intervals and p-values the same way. pandas is imported only by :func:`frame`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from semprobe.errors import ConfigError

#: The most warning lines a summary shows (the rest are counted).
SUMMARY_WARNINGS = 3


def frame(rows: Iterable[Mapping[str, Any]]):
    """A :class:`pandas.DataFrame` of ``rows`` (one dict per row, same keys), pandas imported here."""
    try:
        import pandas
    except ImportError:
        raise ConfigError("to_frame() needs pandas: pip install pandas") from None
    return pandas.DataFrame(list(rows))


def setting_columns(settings: Mapping[str, Any], skip: Sequence[str] = ()) -> dict[str, Any]:
    """Settings as table columns: lists become tuples (hashable, so they group), dicts their repr."""
    columns = {}
    for key, value in settings.items():
        if key in skip:
            continue
        if isinstance(value, (list, tuple)):
            value = tuple(value)
        elif isinstance(value, Mapping):
            value = repr(dict(value))
        columns[key] = value
    return columns


def class_names(classes: Sequence[str] | None, count: int) -> list[str]:
    """``classes`` as a list, or ``"0"``, ``"1"``, ... when the names are not known."""
    if classes is None:
        return [str(k) for k in range(count)]
    if len(classes) != count:
        raise ConfigError(f"{len(classes)} class names given for {count} classes")
    return [str(name) for name in classes]


def number(value: float | None, digits: int = 3) -> str:
    """``value`` with ``digits`` decimals; ``-`` for None or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def interval(ci: Sequence[float] | None, digits: int = 3, level: float = 0.95) -> str:
    """`` [95% CI low, high]`` (with a leading space), or empty text when there is none."""
    if ci is None:
        return ""
    return f" [{level:.0%} CI {number(ci[0], digits)}, {number(ci[1], digits)}]"


def p_value(test: Any, label: str) -> str:
    """``label p = 0.012 (999 perms)`` of a :class:`~semprobe.stats.nulls.PermutationTest`
    (``exact``: every permutation), or ``label p = -`` when the test was not run."""
    if test is None:
        return f"{label} p = -"
    kind = "exact" if test.exact else f"{test.n_perm} perms"
    return f"{label} p = {test.p_value:.3g} ({kind})"


def warning_lines(warnings: Sequence[str]) -> list[str]:
    """At most :data:`SUMMARY_WARNINGS` ``warning: ...`` lines, and a count of the rest."""
    lines = [f"  warning: {w}" for w in warnings[:SUMMARY_WARNINGS]]
    if len(warnings) > SUMMARY_WARNINGS:
        lines.append(f"  ... and {len(warnings) - SUMMARY_WARNINGS} more warning(s) in .warnings")
    return lines


def settings_line(settings: Mapping[str, Any], keys: Sequence[str]) -> str:
    """``  settings: key value, ...`` for the ``keys`` present in ``settings``."""
    shown = ", ".join(f"{key} {_plain(settings[key])}" for key in keys if key in settings)
    return f"  settings: {shown}"


def summary(lines: Sequence[str]) -> str:
    """The lines of a printed summary as one text."""
    return "\n".join(lines)


def _plain(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "/".join(_plain(v) for v in value)
    return str(value)
