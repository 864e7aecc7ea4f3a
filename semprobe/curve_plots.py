"""Renderers for robustness curves (SCARL Fig. 4 b, c): each takes curves, returns a Figure."""

from __future__ import annotations

from typing import Sequence

from semprobe.curves import Curve

AXIS_LABELS = {"eps": "perturbation budget eps", "steps": "PGD steps"}


def curves_figure(curves: Sequence[Curve], *, title: str = "", eps_in_255: bool = True):
    """Accuracy (%) against the swept value, one line per model, 95% intervals as bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.0, 3.6))
    for curve in curves:
        xs = [p.x * 255 if curve.swept == "eps" and eps_in_255 else p.x for p in curve.points]
        axis.plot(xs, [p.accuracy for p in curve.points], marker="o", markersize=3, label=curve.label)
        axis.fill_between(xs, [p.ci95[0] for p in curve.points], [p.ci95[1] for p in curve.points], alpha=0.2)
    swept = curves[0].swept if curves else ""
    label = AXIS_LABELS.get(swept, swept)
    axis.set_xlabel(label + (" (x/255)" if swept == "eps" and eps_in_255 else ""))
    if swept == "steps":
        axis.set_xscale("log")
    axis.set_ylabel("accuracy (%)")
    axis.set_ylim(0, 100)
    axis.grid(alpha=0.3)
    if title:
        axis.set_title(title)
    if len(curves) > 1 or (curves and curves[0].label):
        axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def alpha_curve_figure(curves, *, measure: str = "success_correct", title: str = ""):
    """SPAT Fig. 4: PGD-LS attack success (%) against alpha, a line per model, with that
    model's PGD-CE (dotted) and PGD-KL (dashed) success as horizontal references.

    ``measure`` is ``success_correct`` (over correctly classified images) or ``success_all``.
    The alpha axis is symmetric-log when the alphas span several decades below 0.01.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.4, 3.8))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, curve in enumerate(curves):
        colour = colours[i % len(colours)]
        axis.plot(curve.alphas, [getattr(r, measure) for r in curve.ls], marker="o", markersize=3, color=colour,
                  label=f"{curve.label} PGD-LS")
        axis.axhline(getattr(curve.ce, measure), color=colour, linestyle=":", linewidth=1,
                     label=f"{curve.label} PGD-CE")
        axis.axhline(getattr(curve.kl, measure), color=colour, linestyle="--", linewidth=1,
                     label=f"{curve.label} PGD-KL")
    positive = sorted(a for c in curves for a in c.alphas if a > 0)
    if positive and positive[0] < 0.01 and positive[-1] / positive[0] > 100:
        axis.set_xscale("symlog", linthresh=positive[0])
    axis.set_xlabel("label smoothing alpha")
    over = "correctly classified images" if measure == "success_correct" else "all images"
    axis.set_ylabel(f"attack success (%), over {over}")
    axis.set_ylim(0, 100)
    axis.grid(alpha=0.3)
    if title:
        axis.set_title(title)
    axis.legend(fontsize=7)
    figure.tight_layout()
    return figure
