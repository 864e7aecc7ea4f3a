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
