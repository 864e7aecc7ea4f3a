"""Plain-text tables for the terminal (and GitHub markdown), without dependencies."""

from __future__ import annotations

from typing import Sequence


def _cell(value: object, float_format: str) -> str:
    if isinstance(value, float):
        return format(value, float_format)
    return str(value)


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, float_format: str = ".2f", markdown: bool = False
) -> str:
    """Render ``rows`` under ``headers`` as aligned text, or as a markdown table.

    Text columns are left-aligned, numbers right-aligned; floats use ``float_format``.
    """
    cells = [[_cell(v, float_format) for v in row] for row in rows]
    numeric = [
        all(isinstance(row[i], (int, float)) for row in rows) if rows else False for i in range(len(headers))
    ]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return ("| " + " | ".join(parts) + " |") if markdown else "  ".join(parts).rstrip()

    out = [line(list(headers))]
    if markdown:
        out.append("| " + " | ".join(("-" * (w - 1) + ":") if num else "-" * w for w, num in zip(widths, numeric)) + " |")
    else:
        out.append("  ".join("-" * w for w in widths))
    out.extend(line(r) for r in cells)
    return "\n".join(out)
