"""Renderers for robustness curves (SCARL Fig. 4 b, c): each takes curves, returns a Figure."""

from __future__ import annotations

from typing import Sequence

from semprobe.robustness.curves import Curve

AXIS_LABELS = {"eps": "perturbation budget eps", "steps": "PGD steps"}
INTEGER_AXES = ("epoch", "batch size")


DASHES = ("-", "--", ":", "-.")


def line_styles(curves: Sequence[Curve]) -> list[tuple[int, str]]:
    """``(colour number, line style)`` per curve. Curves that differ only in their ``metric`` (the clean and
    the PGD accuracy of the same runs, as in SPAT Fig. 5) share a colour and differ in line style, so each
    setting reads as one colour; otherwise every curve has its own colour and a solid line."""
    metrics = list(dict.fromkeys(curve.fixed.get("metric") for curve in curves))
    if len(metrics) < 2 or None in metrics:
        return [(i, "-") for i in range(len(curves))]
    groups: dict[tuple, int] = {}
    styles = []
    for curve in curves:
        setting = tuple(sorted((k, repr(v)) for k, v in curve.fixed.items() if k != "metric"))
        styles.append((groups.setdefault(setting, len(groups)), DASHES[metrics.index(curve.fixed["metric"]) % len(DASHES)]))
    return styles


def curves_figure(curves: Sequence[Curve], *, title: str = "", eps_in_255: bool = True):
    """Accuracy (%) against the swept value, one line per model, 95% intervals as bands."""
    from semprobe.plots import pyplot

    plt = pyplot()

    figure, axis = plt.subplots(figsize=(5.0, 3.6))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for curve, (group, dash) in zip(curves, line_styles(curves)):
        xs = [p.x * 255 if curve.swept == "eps" and eps_in_255 else p.x for p in curve.points]
        colour = colours[group % len(colours)]
        axis.plot(xs, [p.accuracy for p in curve.points], marker="o", markersize=3, label=curve.label,
                  color=colour, linestyle=dash)
        axis.fill_between(xs, [p.ci95[0] for p in curve.points], [p.ci95[1] for p in curve.points], alpha=0.2,
                          facecolor=colour)
    swept = curves[0].swept if curves else ""
    label = AXIS_LABELS.get(swept, swept)
    axis.set_xlabel(label + (" (x/255)" if swept == "eps" and eps_in_255 else ""))
    if swept == "steps":
        axis.set_xscale("log")
    if swept in INTEGER_AXES:
        from matplotlib.ticker import MaxNLocator

        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_ylabel("accuracy (%)")
    axis.set_ylim(0, 100)
    axis.grid(alpha=0.3)
    if title:
        axis.set_title(title)
    if len(curves) > 1 or (curves and curves[0].label):
        axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def alpha_curve_figure(curves, *, measure: str = "success_all", title: str = ""):
    """SPAT Fig. 4: PGD-LS attack success (%) against alpha, a line per model with its 95% Wilson
    band, that model's PGD-CE (dotted) and PGD-KL (dashed) success as horizontal references, and
    the alpha where PGD-LS matches PGD-KL marked (a vertical line, its bootstrap interval shaded).

    ``measure`` is ``success_all`` (over all images, 1 - robust accuracy: the definition the
    matching alpha and the demo's summary use) or ``success_correct`` (over correctly
    classified images). The alpha axis is symmetric-log when the alphas span several
    decades below 0.01.
    """
    from semprobe.plots import pyplot

    plt = pyplot()

    figure, axis = plt.subplots(figsize=(5.8, 4.0))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, curve in enumerate(curves):
        colour = colours[i % len(colours)]
        values = [getattr(r, measure) for r in curve.ls]
        bands = [r.ci95(measure) for r in curve.ls]
        axis.plot(curve.alphas, values, marker="o", markersize=3, color=colour, label=f"{curve.label} PGD-LS")
        axis.fill_between(curve.alphas, [b[0] for b in bands], [b[1] for b in bands], color=colour, alpha=0.15,
                          linewidth=0)
        axis.axhline(getattr(curve.ce, measure), color=colour, linestyle=":", linewidth=1,
                     label=f"{curve.label} PGD-CE")
        axis.axhline(getattr(curve.kl, measure), color=colour, linestyle="--", linewidth=1,
                     label=f"{curve.label} PGD-KL")
        match = curve.matching_alpha()
        if match.get("alpha") is not None:
            axis.axvline(match["alpha"], color=colour, linestyle="-.", linewidth=0.8)
            if match.get("ci95"):
                axis.axvspan(*match["ci95"], color=colour, alpha=0.08, linewidth=0)
            level = getattr(curve.kl, measure)
            below = level > 90  # a line near the top gets its label below it, inside the axes
            axis.annotate(f"= PGD-KL at {match['alpha']:.2g}", (match["alpha"], level), textcoords="offset points",
                          xytext=(4, -4 if below else 4), va="top" if below else "bottom", fontsize=7, color=colour)
    positive = sorted(a for c in curves for a in c.alphas if a > 0)
    if positive and positive[0] < 0.01 and positive[-1] / positive[0] > 100:
        axis.set_xscale("symlog", linthresh=positive[0])
    axis.set_xlabel("label smoothing alpha")
    over = "correctly classified images" if measure == "success_correct" else "all images"
    axis.set_ylabel(f"attack success (%), over {over}")
    axis.set_ylim(0, 100)
    axis.grid(alpha=0.3)
    if title:
        axis.set_title(title, fontsize=9)
    axis.legend(fontsize=7, loc="best")
    figure.text(0.01, 0.01, "bands: 95% Wilson intervals; dash-dot: alpha matching PGD-KL (shaded: bootstrap 95% CI)",
                fontsize=6, color="0.35")
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    return figure
