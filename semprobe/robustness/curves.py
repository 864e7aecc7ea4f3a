"""Robustness curves: accuracy vs eps and accuracy vs number of PGD steps (SCARL Fig. 4 b, c).

Accuracy vs steps runs PGD once, for the largest step count, and reads the accuracy of
every intermediate iterate: PGD-k with the same start and step size is exactly the k-th
iterate of PGD-K, so one run of 500 steps gives every point of the curve.

Both curves run in the L-inf ball (the default) or the L2 ball (``norm="L2"``), recorded
in the curve's fixed settings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import torch

from semprobe import attacks
from semprobe.attacks.specs import AttackSpec
from semprobe.distributed import Processes
from semprobe.robustness.accuracy import AttackContext, predict, robust_flags, wilson_interval
from semprobe.robustness.sharding import chunk_generator, map_chunks
from semprobe.models.wrapper import wrap_model
from semprobe.options import parse_norm


@dataclass
class CurvePoint:
    """One point of a robustness curve: the swept value and the accuracy (%) with its 95% CI."""

    x: float
    accuracy: float
    ci95: tuple[float, float]
    n: int

    @classmethod
    def of_result(cls, x: float, result) -> CurvePoint:
        """An :class:`~semprobe.robustness.accuracy.AttackResult` (read from eval.json, say) as the point at
        ``x``: its accuracy, Wilson interval and number of images."""
        return cls(float(x), result.accuracy, tuple(result.ci95), result.n)


@dataclass
class Curve:
    """A robustness curve of one model: what was swept, what was fixed, and the points."""

    label: str
    swept: str
    fixed: dict
    points: list[CurvePoint] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _point(x: float, correct: int, n: int) -> CurvePoint:
    low, high = wilson_interval(correct, n)
    return CurvePoint(float(x), 100.0 * correct / n, (100.0 * low, 100.0 * high), n)


def accuracy_vs_eps(
    model: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps_values: Sequence[float],
    *,
    steps: int = 10,
    step_size_factor: float = 0.25,
    batch_size: int = 128,
    device: torch.device | str = "cpu",
    seed: int = 0,
    label: str = "",
    context: AttackContext | None = None,
    norm: str = "Linf",
    processes: Processes | None = None,
) -> Curve:
    """PGD-``steps`` (CE) accuracy at each eps, step size ``step_size_factor * eps`` (SCARL Fig. 4 b),
    in the ``norm`` ball (``Linf`` or ``L2``).

    ``model`` may be any classifier module (wrapped with :func:`semprobe.models.wrap_model`);
    chunks and ``processes`` as in :func:`semprobe.robustness.accuracy.evaluate`.
    """
    device = torch.device(device)
    model = wrap_model(model)
    clean = predict(model, images, batch_size, device, processes) == labels
    spec = AttackSpec(f"pgd{steps}", "pgd", steps, "ce", norm=parse_norm(norm))
    curve = Curve(label, "eps", {"steps": steps, "step_size": f"{step_size_factor}*eps", "loss": "ce",
                                 "norm": spec.norm})
    for eps in eps_values:
        if eps == 0:
            flags = clean
        else:
            flags = robust_flags(model, images, labels, spec, eps=eps, step_size=step_size_factor * eps,
                                 batch_size=batch_size, device=device, seed=seed, clean_correct=clean, context=context,
                                 processes=processes)
        curve.points.append(_point(eps, int(flags.sum()), len(labels)))
    return curve


def accuracy_vs_steps(
    model: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    step_counts: Sequence[int],
    *,
    eps: float,
    step_size: float,
    batch_size: int = 128,
    device: torch.device | str = "cpu",
    seed: int = 0,
    label: str = "",
    norm: str = "Linf",
    processes: Processes | None = None,
) -> Curve:
    """PGD-k (CE, uniform start) accuracy for each k in ``step_counts``, from one run (SCARL Fig. 4 c),
    in the ``norm`` ball (``Linf`` or ``L2``).

    ``model`` may be any classifier module (wrapped with :func:`semprobe.models.wrap_model`);
    chunks and ``processes`` as in :func:`semprobe.robustness.accuracy.evaluate`.
    """
    norm = parse_norm(norm)
    device = torch.device(device)
    model = wrap_model(model)
    wanted = sorted(set(int(k) for k in step_counts))
    clean = predict(model, images, batch_size, device, processes) == labels

    def attack_chunk(chunk: int, rows: slice) -> torch.Tensor:
        robust = clean[rows].unsqueeze(1).repeat(1, len(wanted))
        index = clean[rows].nonzero().squeeze(1)
        if len(index):
            x, y = images[rows][index].to(device), labels[rows][index].to(device)

            def observe(step: int, logits: torch.Tensor) -> None:
                if step in wanted:
                    robust[index, wanted.index(step)] = (logits.argmax(1) == y).cpu()

            attacks.pgd(model, x, y, eps=eps, step_size=step_size, steps=max(wanted),
                        generator=chunk_generator(seed, chunk, device), observe=observe, norm=norm)
        return robust

    robust = map_chunks(len(images), batch_size, attack_chunk, dtype=torch.bool, processes=processes, device=device)
    curve = Curve(label, "steps", {"eps": eps, "step_size": step_size, "loss": "ce", "norm": norm})
    curve.points = [_point(k, int(robust[:, i].sum()), len(labels)) for i, k in enumerate(wanted)]
    return curve
