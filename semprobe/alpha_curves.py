"""Attack success of PGD-LS as the label smoothing alpha grows (SPAT Fig. 4, Tables 1-2).

For every alpha, PGD-LS (SPAT eq. 8-10) attacks the same images from the same random
start; PGD-CE and PGD-KL run from that start too, as references. The clean forward pass
and the random starts are computed once per batch and shared by every attack, so the
whole curve costs the bare PGD runs plus one forward per run to read its outcome.

Success is reported two ways (SPAT does not say which it uses):

- ``success_all``: the fraction of all images that are misclassified after the attack
  (natural errors included), i.e. 1 - robust accuracy;
- ``success_correct``: the fraction of the images the model classifies correctly that
  the attack turns into errors.

:func:`matching_alpha` finds, by linear interpolation, the alpha at which PGD-LS reaches
PGD-KL's robust accuracy (the alpha SPAT reports beside its tables).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import torch

from semprobe import attacks
from semprobe.evaluation import batches, wilson_interval


@dataclass
class SuccessRate:
    """Outcome of one attack over the evaluated images."""

    robust: int  # images correct before and after the attack
    n: int  # all images
    n_correct: int  # images correct before the attack

    @property
    def robust_accuracy(self) -> float:
        return 100.0 * self.robust / self.n

    @property
    def success_all(self) -> float:
        return 100.0 - self.robust_accuracy

    @property
    def success_correct(self) -> float:
        return 100.0 * (self.n_correct - self.robust) / self.n_correct if self.n_correct else float("nan")

    def to_dict(self) -> dict:
        low, high = wilson_interval(self.robust, self.n)
        return {"robust": self.robust, "n": self.n, "n_correct": self.n_correct,
                "robust_accuracy": self.robust_accuracy, "robust_accuracy_ci95": [100 * low, 100 * high],
                "success_all": self.success_all, "success_correct": self.success_correct}


@dataclass
class AlphaCurve:
    """PGD-LS success per alpha for one model, with the PGD-CE and PGD-KL references."""

    label: str
    alphas: list[float]
    ls: list[SuccessRate]
    ce: SuccessRate
    kl: SuccessRate
    settings: dict = field(default_factory=dict)

    def matching_alpha(self) -> dict:
        return matching_alpha(self.alphas, [r.robust_accuracy for r in self.ls], self.kl.robust_accuracy)

    def to_dict(self) -> dict:
        return {"label": self.label, "settings": self.settings,
                "points": [{"alpha": a, **r.to_dict()} for a, r in zip(self.alphas, self.ls)],
                "pgd_ce": self.ce.to_dict(), "pgd_kl": self.kl.to_dict(),
                "alpha_matching_pgd_kl": self.matching_alpha()}


def matching_alpha(alphas: Sequence[float], robust: Sequence[float], target: float) -> dict:
    """The alpha where the robust-accuracy curve crosses ``target``, linearly interpolated.

    Points are taken in increasing alpha; the first crossing is returned as
    ``{"alpha": value, "bracket": [a0, a1]}``; without a crossing ``alpha`` is None and
    ``reason`` says on which side the whole curve lies.
    """
    points = sorted(zip(alphas, robust))
    for (a0, r0), (a1, r1) in zip(points, points[1:]):
        if r0 == target:
            return {"alpha": a0, "bracket": [a0, a0]}
        if (r0 - target) * (r1 - target) < 0:
            return {"alpha": a0 + (target - r0) * (a1 - a0) / (r1 - r0), "bracket": [a0, a1]}
    if points and points[-1][1] == target:
        return {"alpha": points[-1][0], "bracket": [points[-1][0]] * 2}
    side = "below" if all(r < target for _, r in points) else "above"
    return {"alpha": None, "reason": f"PGD-LS robust accuracy is {side} PGD-KL's at every alpha tried"}


def alpha_curve(
    model: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    alphas: Sequence[float],
    *,
    eps: float,
    step_size: float,
    steps: int = 20,
    batch_size: int = 128,
    device: torch.device | str = "cpu",
    seed: int = 0,
    label: str = "",
    ls_parametrization: str = "spat",
    progress=None,
) -> AlphaCurve:
    """PGD-LS at each alpha, PGD-CE and PGD-KL, from one shared random start per image."""
    attacks.check_budget(eps, step_size, steps)
    surrogates = [attacks.ls(a, ls_parametrization) for a in alphas] + [attacks.ce(), attacks.kl()]
    device = torch.device(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    robust = [0] * len(surrogates)
    n_correct = 0
    with attacks.model_mode(model, train=False):
        for part in batches(len(images), batch_size):
            x, y = images[part].to(device), labels[part].to(device)
            with torch.no_grad():
                correct = model(x).argmax(1) == y
            x, y = x[correct], y[correct]
            n_correct += len(y)
            if len(y) == 0:
                continue
            start = attacks.random_start(x, eps, "uniform", generator)
            for i, surrogate in enumerate(surrogates):
                objective = surrogate.bind(model, x, y)
                x_adv = attacks.iterate(objective, x, start.clone(), eps, step_size, steps)
                with torch.no_grad():
                    robust[i] += int((model(x_adv).argmax(1) == y).sum())
                if progress is not None:
                    progress.update(len(y))
    rates = [SuccessRate(r, len(labels), n_correct) for r in robust]
    settings = {"eps": eps, "step_size": step_size, "steps": steps, "random_start": "uniform, shared by all attacks",
                "ls_parametrization": ls_parametrization, "seed": seed}
    return AlphaCurve(label, [float(a) for a in alphas], rates[:-2], rates[-2], rates[-1], settings)
