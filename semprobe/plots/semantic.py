"""Figures of the semantic diagnostics: each renderer takes result objects and returns a Figure.

* :func:`cca_grid` -- SCARL Fig. 1 / Fig. 5: a row per checkpoint, a column per image
  kind (natural, adversarial, ...), each panel the first canonical variates of the
  image side against the word side.
* :func:`similarity_grid` -- SCARL Fig. 2: class-similarity heatmaps of features and of
  word vectors on one colour scale, plus the RSA scatter of their entries.

matplotlib is imported inside the functions with the non-interactive Agg backend, so
importing this module is cheap and rendering works without a display. Save a figure with
``fig.savefig("cca.png", dpi=150)`` (PNG) or ``fig.savefig("cca.pdf")``.
"""

from __future__ import annotations

import contextlib

from typing import TYPE_CHECKING, Iterator, Mapping, Sequence

import numpy as np

from semprobe.errors import ConfigError
from semprobe.plots import pyplot

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from semprobe.stats.cca import CanonicalVariates, CCAReport
    from semprobe.stats.similarity import SimilarityReport

# Up to this many classes the class colours get a legend of class names.
MAX_LEGEND_CLASSES = 20
# Up to this many classes the similarity heatmaps print their values in the cells.
MAX_ANNOTATED_CLASSES = 12
# Characters per line of a CCA panel title (longer descriptions are wrapped, never clipped).
TITLE_WIDTH = 48


def _class_colours(n_classes: int) -> np.ndarray:
    """(K, 4) RGBA colours: tab10 / tab20 up to 20 classes, evenly spaced turbo beyond."""
    import matplotlib

    if n_classes <= 10:
        return np.asarray(matplotlib.colormaps["tab10"].colors)[:n_classes]
    if n_classes <= 20:
        return np.asarray(matplotlib.colormaps["tab20"].colors)[:n_classes]
    return matplotlib.colormaps["turbo"](np.linspace(0.0, 1.0, n_classes))


def _tick_size(n_classes: int) -> float:
    return float(min(8.0, 240.0 / max(n_classes, 1)))


def _panel_text(report: CCAReport | CanonicalVariates, column: str) -> tuple[CanonicalVariates, str, list[str] | None]:
    """Variates to draw, the panel title (wrapped to the panel's width) and the trap notes for one
    panel (None for projected variates, which have no fit of their own to warn about)."""
    import textwrap

    from semprobe.stats.cca import CCAReport

    if not isinstance(report, CCAReport):
        description = textwrap.fill(report.description, TITLE_WIDTH)
        return report, f"{column}\nr = {report.r:.2f}\n{description}", None
    in_sample, held_out = report.in_sample, report.held_out
    diagnostics = in_sample.diagnostics
    ci = f" [{held_out.ci[0]:.2f}, {held_out.ci[1]:.2f}]" if held_out.ci is not None else ""
    title = (
        f"{column}\nr = {in_sample.r:.2f} in sample (chance {diagnostics.chance_level:.2f})"
        f"\nheld-out r = {held_out.r:.2f}{ci}"
    )
    notes = []
    if diagnostics.saturated:
        notes.append(f"n = {diagnostics.n} <= dim_x + dim_y: in-sample r = 1 by construction")
    if diagnostics.labels_only:
        notes.append(f"the word side has {diagnostics.n_distinct_y} distinct rows spanning the labels: "
                     "r measures class separability, not semantics")
    return in_sample.variates, title, notes


def textwrap_lines(notes: Sequence[str], width: int = TITLE_WIDTH) -> list[str]:
    """Each note wrapped to ``width`` characters, as a list of lines."""
    import textwrap

    return [line for note in notes for line in textwrap.wrap(note, width)]


def cca_grid(
    reports_by_checkpoint: Mapping[str, Mapping[str, CCAReport | CanonicalVariates]],
    class_names: Sequence[str],
    *,
    jitter: float = 0.3,
    random_state: int = 0,
) -> Figure:
    """SCARL Fig. 1 / Fig. 5: first canonical variates, image side against word side.

    Args:
        reports_by_checkpoint: ``{checkpoint: {column: report}}``, e.g.
            ``{"pgd_at": {"natural": r1, "adversarial": r2}}``. A value is a
            :class:`~semprobe.stats.cca.CCAReport` (its in-sample variates are drawn; the
            title gives the in-sample r with the chance level and the held-out r with its
            CI; the saturation and one-hot-equivalence traps are noted on the panel, or
            once above the figure when every panel has them) or
            :class:`~semprobe.stats.cca.CanonicalVariates` (e.g. adversarial features
            projected with natural weights, :meth:`CCAReport.project`).
        class_names: the K class names, in class-index order (colours and legend).
        jitter: vertical jitter, as a fraction of the mean spacing between the K word-side
            values (the word side takes one value per class).
        random_state: seed of the jitter.

    Returns:
        A figure with one axes per (checkpoint, column) cell, rows in the order of the
        mapping, columns in order of first appearance, one axis range per row; an empty
        cell's axes is hidden.
        The class legend is shown for up to :data:`MAX_LEGEND_CLASSES` classes.
    """
    rows = list(reports_by_checkpoint)
    columns = list(dict.fromkeys(col for row in rows for col in reports_by_checkpoint[row]))
    if not rows or not columns:
        raise ConfigError("cca_grid needs at least one checkpoint with one report")
    n_classes = len(class_names)
    plt = pyplot()
    colours = _class_colours(n_classes)
    rng = np.random.default_rng(random_state)
    fig, axes = plt.subplots(
        len(rows), len(columns), figsize=(4.3 * len(columns) + 2.0, 4.2 * len(rows)), squeeze=False,
        layout="constrained", sharex="row", sharey="row",
    )
    panel_notes: dict[tuple[int, int], list[str]] = {}
    for i, row in enumerate(rows):
        for j, column in enumerate(columns):
            ax = axes[i, j]
            if column not in reports_by_checkpoint[row]:
                ax.set_visible(False)
                continue
            variates, title, notes = _panel_text(reports_by_checkpoint[row][column], column)
            if variates.labels.size and variates.labels.max() >= n_classes:
                raise ConfigError(f"{row}/{column}: labels go up to {variates.labels.max()}, but only {n_classes} class names")
            levels = np.unique(variates.y)
            spacing = (levels[-1] - levels[0]) / (levels.size - 1) if levels.size > 1 else 1.0
            y = variates.y + jitter * spacing * rng.uniform(-0.5, 0.5, size=variates.y.size)
            ax.scatter(variates.x, y, c=colours[variates.labels], s=9, alpha=0.7, linewidths=0)
            ax.set_title(title, fontsize=9)
            ax.tick_params(labelleft=True, labelbottom=True)  # shared ranges, but every panel keeps its numbers
            if notes is not None:
                panel_notes[(i, j)] = notes
            if i == len(rows) - 1:
                ax.set_xlabel("image-side canonical variate 1")
            if j == 0:
                ax.set_ylabel(f"{row}\nword-side canonical variate 1 (jittered)")
    everywhere = set.intersection(*(set(n) for n in panel_notes.values())) if panel_notes else set()
    for (i, j), notes in panel_notes.items():
        own = [note for note in notes if note not in everywhere]
        if own:
            axes[i, j].text(
                0.02, 0.98, "\n".join(textwrap_lines(own)), transform=axes[i, j].transAxes, va="top", ha="left",
                fontsize=8, color="darkred", bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"},
            )
    if everywhere:
        fig.suptitle("In every panel: " + "; ".join(sorted(everywhere)), fontsize=9, color="darkred")
    if n_classes <= MAX_LEGEND_CLASSES:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], marker="o", linestyle="", color=colours[k], label=name) for k, name in enumerate(class_names)]
        fig.legend(handles=handles, loc="outside right center", fontsize=8, title="class")
    return fig


def _unique_matrix(matrices: list[np.ndarray], what: str) -> np.ndarray:
    first = matrices[0]
    if any(not np.array_equal(first, m, equal_nan=True) for m in matrices[1:]):
        raise ConfigError(f"the reports disagree on the {what}; one checkpoint / embedding must give one matrix")
    return first


def _off_diagonal_range(matrices: Sequence[np.ndarray]) -> tuple[float, float]:
    """One colour range for every heatmap: the finite off-diagonal entries of all of them.

    The diagonal (1 for every inner product of normalised means and for every cosine
    matrix) is left out, so it cannot squeeze the scale; controls whose off-diagonal
    entries are all equal (one-hot vectors: 0) or near 0 (random vectors) stay inside it.
    """
    values = np.concatenate([m[~np.eye(len(m), dtype=bool)] for m in matrices])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    low, high = float(values.min()), float(values.max())
    return (low, high) if high > low else (low - 0.5, high + 0.5)


@contextlib.contextmanager
def _without_seaborn_redraws() -> Iterator[None]:
    """Skip the whole-figure draw seaborn's heatmap makes on every call.

    seaborn 0.13 draws the figure once per heatmap only to see whether its tick labels
    overlap and to rotate them if so; :func:`similarity_grid` sets every label's rotation
    itself right after, so that draw changes nothing but costs a second or more per
    panel, growing with the panels already on the figure (15 of the 20 seconds of a
    nine-panel grid). Where seaborn has no such hook this does nothing.
    """
    import seaborn.matrix

    original = getattr(seaborn.matrix, "_draw_figure", None)
    if original is None:
        yield
        return
    seaborn.matrix._draw_figure = lambda figure: None
    try:
        yield
    finally:
        seaborn.matrix._draw_figure = original


def similarity_grid(
    reports: Mapping[str, Mapping[str, SimilarityReport]],
    class_names: Sequence[str],
    *,
    cmap: str = "viridis",
    max_columns: int = 4,
) -> Figure:
    """SCARL Fig. 2: class-similarity heatmaps and the RSA scatter.

    Args:
        reports: ``{checkpoint: {embedding: SimilarityReport}}``. Each checkpoint's feature
            matrix and each embedding's word matrix is drawn once (all reports of a
            checkpoint must share its feature matrix, all reports of an embedding its word
            matrix).
        class_names: the K class names in class-index order: the tick labels of every
            heatmap, which all use this one order.
        cmap: colour map (brighter = more similar with the default, as in the paper).
        max_columns: panels per row.

    Returns:
        A figure with one seaborn heatmap per checkpoint (features) and per embedding
        (words), with the values in the cells up to :data:`MAX_ANNOTATED_CLASSES` classes,
        all on one colour scale set by the off-diagonal entries (:func:`_off_diagonal_range`)
        with one colour bar (an axes of its own), and a
        last panel scattering every feature-matrix entry against the matching
        word-matrix entry (off-diagonal pairs), one series per (checkpoint, embedding) with
        its RSA, CI and relabelling p-value in the legend. NaN entries are grey.
    """
    checkpoints = list(reports)
    embeddings = list(dict.fromkeys(e for c in checkpoints for e in reports[c]))
    if not checkpoints or not embeddings:
        raise ConfigError("similarity_grid needs at least one checkpoint with one report")
    n_classes = len(class_names)
    feature = {c: _unique_matrix([r.feature_matrix for r in reports[c].values()], f"feature matrix of {c}") for c in checkpoints}
    word = {
        e: _unique_matrix([reports[c][e].word_matrix for c in checkpoints if e in reports[c]], f"word matrix of {e}")
        for e in embeddings
    }
    panels = [(f"features: {c}", m) for c, m in feature.items()] + [(f"words: {e}", m) for e, m in word.items()]
    if any(m.shape != (n_classes, n_classes) for _, m in panels):
        raise ConfigError(f"every matrix must be {n_classes} x {n_classes}, one row per class name")
    vmin, vmax = _off_diagonal_range([m for _, m in panels])

    plt = pyplot()
    import matplotlib
    import seaborn as sns

    colour_map = matplotlib.colormaps[cmap]
    n_panels = len(panels) + 1
    n_cols = min(n_panels, max_columns)
    n_rows = -(-n_panels // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.6 * n_cols + 1.0, 4.4 * n_rows), squeeze=False, layout="constrained")
    flat = list(axes.ravel())
    for ax in flat[n_panels:]:
        fig.delaxes(ax)
    size = _tick_size(n_classes)
    annotate = n_classes <= MAX_ANNOTATED_CLASSES
    with _without_seaborn_redraws():
        for ax, (title, matrix) in zip(flat, panels):
            ax.set_facecolor("lightgrey")  # NaN cells
            sns.heatmap(matrix, ax=ax, vmin=vmin, vmax=vmax, cmap=colour_map, cbar=False, square=True,
                        annot=annotate, fmt=".2f", annot_kws={"fontsize": 5.5}, xticklabels=class_names,
                        yticklabels=class_names, linewidths=0)
            ax.set_title(title, fontsize=9)
            ax.tick_params(labelsize=size)
            ax.set_xticklabels(class_names, rotation=90, fontsize=size)
            ax.set_yticklabels(class_names, rotation=0, fontsize=size)
    scale = matplotlib.cm.ScalarMappable(norm=matplotlib.colors.Normalize(vmin, vmax), cmap=colour_map)
    fig.colorbar(scale, ax=flat[: len(panels)], shrink=0.8, extend="max",
                 label="similarity (scale of the off-diagonal entries; the diagonal is 1)")

    scatter = flat[len(panels)]
    rows, cols = np.triu_indices(n_classes, k=1)
    for c in checkpoints:
        for e, report in reports[c].items():
            ci = f" [{report.rsa_ci[0]:.2f}, {report.rsa_ci[1]:.2f}]" if report.rsa_ci is not None else ""
            p = f", p = {report.relabel.p_value:.3g}" if report.relabel is not None else ""
            value = "undefined (a side ranks no class pairs)" if report.rsa_note is not None else f"{report.rsa:.2f}"
            scatter.scatter(
                report.word_matrix[rows, cols], report.feature_matrix[rows, cols], s=10, alpha=0.7,
                label=f"{c} vs {e}: RSA {value}{ci}{p}",
            )
    scatter.set_xlabel("word similarity (cosine)")
    scatter.set_ylabel("feature similarity")
    scatter.set_title("off-diagonal entries (RSA = Spearman)", fontsize=9)
    scatter.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2))  # below: never over the points
    return fig
