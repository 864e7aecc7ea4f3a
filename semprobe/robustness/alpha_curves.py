"""Attack success of PGD-LS as the label smoothing alpha grows (SPAT Fig. 4, Tables 1-2).

For every alpha, PGD-LS (SPAT eq. 8-10) attacks the same images from the same random
start; PGD-CE and PGD-KL run from that start too, as references. The clean forward pass
and the random starts are computed once per batch and shared by every attack, so the
whole curve costs the bare PGD runs plus one forward per run to read its outcome.
Every attack runs in the L-inf ball (the default) or the L2 ball (``norm="L2"``).

Success is reported two ways (SPAT does not say which it uses):

- ``success_all``: the fraction of all images that are misclassified after the attack
  (natural errors included), i.e. 1 - robust accuracy;
- ``success_correct``: the fraction of the images the model classifies correctly that
  the attack turns into errors.

:func:`matching_alpha` finds, by linear interpolation, the alpha at which PGD-LS reaches
PGD-KL's robust accuracy (the alpha SPAT reports beside its tables);
:func:`matching_alpha_interval` gives it a 95% percentile bootstrap interval over the
images (every attack's per-image outcome is kept, so each bootstrap sample re-reads the
whole curve and PGD-KL on the same resampled images).

An :class:`AlphaCurve` prints as a few lines (the references, robust accuracy per alpha,
the matching alpha), ``to_frame()`` is a pandas table with one row per attack, and
``to_dict``/``from_dict`` are what ``semprobe alpha-curve`` writes and reads back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from semprobe import attacks
from semprobe import results as _results
from semprobe.distributed import Processes
from semprobe.robustness.accuracy import wilson_interval
from semprobe.robustness.sharding import chunk_generator, map_chunks
from semprobe.models.wrapper import wrap_model
from semprobe.options import parse_norm


@dataclass
class SuccessRate:
    """Outcome of one attack over the evaluated images."""

    robust: int  # images correct before and after the attack
    n: int  # all images
    n_correct: int  # images correct before the attack
    per_image: np.ndarray | None = None  # bool per image, in the order evaluated: correct after the attack

    @property
    def robust_accuracy(self) -> float:
        return 100.0 * self.robust / self.n

    @property
    def success_all(self) -> float:
        return 100.0 - self.robust_accuracy

    @property
    def success_correct(self) -> float:
        return 100.0 * (self.n_correct - self.robust) / self.n_correct if self.n_correct else float("nan")

    def ci95(self, measure: str) -> tuple[float, float]:
        """95% Wilson interval (%) of ``robust_accuracy``, ``success_all`` or ``success_correct``."""
        if measure == "success_correct":
            low, high = wilson_interval(self.n_correct - self.robust, self.n_correct)
            return 100 * low, 100 * high
        low, high = wilson_interval(self.robust, self.n)
        return (100 * low, 100 * high) if measure == "robust_accuracy" else (100 - 100 * high, 100 - 100 * low)

    def to_dict(self) -> dict:
        record = {"robust": self.robust, "n": self.n, "n_correct": self.n_correct,
                  "robust_accuracy": self.robust_accuracy, "robust_accuracy_ci95": list(self.ci95("robust_accuracy")),
                  "success_all": self.success_all, "success_all_ci95": list(self.ci95("success_all")),
                  "success_correct": self.success_correct,
                  "success_correct_ci95": list(self.ci95("success_correct"))}
        if self.per_image is not None:
            record["per_image"] = "".join("1" if flag else "0" for flag in self.per_image.tolist())
        return record

    @classmethod
    def from_dict(cls, record: dict) -> SuccessRate:
        """The rate :meth:`to_dict` recorded (its derived numbers are recomputed)."""
        flags = record.get("per_image")
        per_image = None if flags is None else np.array([c == "1" for c in flags], dtype=bool)
        return cls(int(record["robust"]), int(record["n"]), int(record["n_correct"]), per_image)

    def frame_row(self) -> dict:
        """:meth:`to_dict` without the per-image outcomes, each interval as ``_low``/``_high`` columns."""
        row = {}
        for key, value in self.to_dict().items():
            if key.endswith("_ci95"):
                row[f"{key[:-5]}_ci95_low"], row[f"{key[:-5]}_ci95_high"] = value
            elif key != "per_image":
                row[key] = value
        return row


# a printed curve shows the robust accuracy of at most ALPHA_LINES x ALPHAS_PER_LINE alphas
ALPHAS_PER_LINE = 8
ALPHA_LINES = 3


@dataclass(repr=False)
class AlphaCurve:
    """PGD-LS success per alpha for one model, with the PGD-CE and PGD-KL references."""

    label: str
    alphas: list[float]
    ls: list[SuccessRate]
    ce: SuccessRate
    kl: SuccessRate
    settings: dict = field(default_factory=dict)

    def matching_alpha(self, n_boot: int = 1000, seed: int = 0) -> dict:
        """:func:`matching_alpha`, with its bootstrap interval when the per-image outcomes are kept."""
        match = matching_alpha(self.alphas, [r.robust_accuracy for r in self.ls], self.kl.robust_accuracy)
        if self.kl.per_image is not None and all(r.per_image is not None for r in self.ls):
            flags = np.stack([r.per_image for r in self.ls], axis=1)
            match.update(matching_alpha_interval(self.alphas, flags, self.kl.per_image, n_boot=n_boot, seed=seed))
        return match

    def to_dict(self) -> dict:
        """Plain types, as ``semprobe alpha-curve`` writes each curve in ``alpha_curve.json``."""
        return {"label": self.label, "settings": self.settings,
                "points": [{"alpha": a, **r.to_dict()} for a, r in zip(self.alphas, self.ls)],
                "pgd_ce": self.ce.to_dict(), "pgd_kl": self.kl.to_dict(),
                "alpha_matching_pgd_kl": self.matching_alpha(seed=int(self.settings.get("seed", 0)))}

    @classmethod
    def from_dict(cls, record: dict) -> AlphaCurve:
        """The curve :meth:`to_dict` recorded (the matching alpha is recomputed from the outcomes)."""
        points = record["points"]
        return cls(record["label"], [float(p["alpha"]) for p in points], [SuccessRate.from_dict(p) for p in points],
                   SuccessRate.from_dict(record["pgd_ce"]), SuccessRate.from_dict(record["pgd_kl"]),
                   dict(record.get("settings", {})))

    def to_frame(self):
        """A pandas DataFrame, one row per attack (``pgd-ls`` at each ``alpha``, then ``pgd-ce``
        and ``pgd-kl``): robust accuracy and both success rates with their 95% intervals, the
        curve's label and settings as columns."""
        attacks_run = [("pgd-ls", a, r) for a, r in zip(self.alphas, self.ls)] + [("pgd-ce", None, self.ce),
                                                                                  ("pgd-kl", None, self.kl)]
        settings = _results.setting_columns(self.settings)
        return _results.frame({"label": self.label, "attack": name, "alpha": alpha, **rate.frame_row(), **settings}
                              for name, alpha, rate in attacks_run)

    def __str__(self) -> str:
        s = self.settings
        lines = [f"AlphaCurve {self.label!r}: PGD-LS vs the smoothing alpha, {self.ce.n} images "
                 f"({self.ce.n_correct} correct), {s.get('norm', 'Linf')} eps {s.get('eps', float('nan')):.4g}, "
                 f"{s.get('steps')} steps of {s.get('step_size', float('nan')):.4g}, seed {s.get('seed')}"]
        for name, rate in (("PGD-CE", self.ce), ("PGD-KL", self.kl)):
            lines.append(f"  {name}  robust accuracy {rate.robust_accuracy:.1f}%  success {rate.success_all:.1f}% "
                         f"of all, {rate.success_correct:.1f}% of correct")
        points = [f"{a:g}: {r.robust_accuracy:.1f}" for a, r in zip(self.alphas, self.ls)]
        rows = [points[i:i + ALPHAS_PER_LINE] for i in range(0, len(points), ALPHAS_PER_LINE)]
        lines.append("  PGD-LS robust accuracy % by alpha:")
        lines += ["    " + ", ".join(row) for row in rows[:ALPHA_LINES]]
        if len(rows) > ALPHA_LINES:
            lines.append(f"    ... {len(points) - ALPHA_LINES * ALPHAS_PER_LINE} more alphas in to_frame()")
        match = self.matching_alpha(seed=int(s.get("seed", 0)))
        value = f"{match['alpha']:.3f}{_results.interval(match.get('ci95'))}" if match["alpha"] is not None else (
            f"none ({match['reason']})")
        lines.append(f"  alpha where PGD-LS matches PGD-KL's robust accuracy: {value}")
        return _results.summary(lines)

    __repr__ = __str__


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


def matching_alpha_interval(
    alphas: Sequence[float], ls_flags: np.ndarray, kl_flags: np.ndarray, *, n_boot: int = 1000, seed: int = 0,
    confidence: float = 0.95,
) -> dict:
    """Percentile bootstrap interval of the matching alpha, resampling images with replacement.

    ``ls_flags`` is images x alphas (robust after PGD-LS at each alpha), ``kl_flags`` the
    images' outcome under PGD-KL. Each replicate recomputes every robust accuracy on the
    same resampled images and interpolates again; replicates with no crossing are counted
    (``undefined_share``) and left out of the interval. Returns ``{"ci95": [low, high] or
    None, "n_boot", "undefined_share"}``.
    """
    ls_flags = np.asarray(ls_flags, dtype=np.float64)
    kl_flags = np.asarray(kl_flags, dtype=np.float64)
    n = len(kl_flags)
    rng = np.random.default_rng(seed)
    table = np.concatenate([ls_flags, kl_flags[:, None]], axis=1)
    values = []
    for start in range(0, n_boot, 100):
        draws = min(100, n_boot - start)
        weights = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(draws)]).astype(np.float64)
        accuracies = 100.0 * (weights @ table) / n
        for row in accuracies:
            values.append(matching_alpha(alphas, row[:-1].tolist(), float(row[-1]))["alpha"])
    defined = np.array([v for v in values if v is not None], dtype=np.float64)
    tail = 100 * (1 - confidence) / 2
    interval = [float(np.percentile(defined, tail)), float(np.percentile(defined, 100 - tail))] if len(defined) else None
    return {"ci95": interval, "n_boot": n_boot, "undefined_share": 1.0 - len(defined) / n_boot}


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
    norm: str = "Linf",
    processes: Processes | None = None,
) -> AlphaCurve:
    """PGD-LS at each alpha, PGD-CE and PGD-KL, from one shared random start per image,
    in the ``norm`` ball (``Linf`` or ``L2``) of radius ``eps``.

    The images go in chunks of ``batch_size``; chunk c draws its random start from the
    stream of ``(seed, c)`` (:mod:`semprobe.robustness.sharding`), so the curve is the same
    whether one process or several (``processes``, under ``torchrun``) share the chunks.
    ``progress`` (tqdm-like) counts images. ``model`` may be any classifier module (wrapped
    with :func:`semprobe.models.wrap_model`).
    """
    attacks.check_budget(eps, step_size, steps, norm)
    norm = parse_norm(norm)
    model = wrap_model(model)
    surrogates = [attacks.ls(a, ls_parametrization) for a in alphas] + [attacks.ce(), attacks.kl()]
    device = torch.device(device)

    def attack_chunk(chunk: int, rows: slice) -> torch.Tensor:
        """Column 0: correct on the natural image; column 1 + i: correct after attack i."""
        x, y = images[rows].to(device), labels[rows].to(device)
        with torch.no_grad():
            correct = model(x).argmax(1) == y
        outcome = torch.zeros(len(y), 1 + len(surrogates), dtype=torch.bool)
        outcome[:, 0] = correct.cpu()
        x, y = x[correct], y[correct]
        if len(y):
            start = attacks.random_start(x, eps, "uniform", chunk_generator(seed, chunk, device), norm)
            for i, surrogate in enumerate(surrogates):
                objective = surrogate.bind(model, x, y)
                x_adv = attacks.iterate(objective, x, start.clone(), eps, step_size, steps, norm=norm)
                with torch.no_grad():
                    outcome[correct.cpu(), 1 + i] = (model(x_adv).argmax(1) == y).cpu()
        return outcome

    with attacks.model_mode(model, train=False):
        outcome = map_chunks(len(images), batch_size, attack_chunk, dtype=torch.bool, processes=processes,
                             device=device, progress=progress)
    n_correct = int(outcome[:, 0].sum())
    flags = outcome[:, 1:].numpy()
    rates = [SuccessRate(int(flags[:, i].sum()), len(labels), n_correct, flags[:, i].copy())
             for i in range(len(surrogates))]
    settings = {"norm": norm, "eps": eps, "step_size": step_size, "steps": steps, "random_start": "uniform, shared by all attacks",
                "ls_parametrization": ls_parametrization, "seed": seed}
    return AlphaCurve(label, [float(a) for a in alphas], rates[:-2], rates[-2], rates[-1], settings)
