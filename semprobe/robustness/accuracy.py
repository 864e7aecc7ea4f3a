"""Robust accuracy of a model under a list of attacks: the rows of SCARL Table 1.

An image counts as robust under an attack when the model classifies both the natural
image and the attack's output correctly (the natural image is itself inside the
eps-ball, so robust accuracy never exceeds clean accuracy, as in AutoAttack). Images
the model already gets wrong are therefore not attacked. Every accuracy comes with the
number of images, a 95% Wilson score interval, and the accuracy per class.

:func:`evaluate` returns an :class:`Evaluation`: a list of :class:`AttackResult` (one per
attack) that also knows the class names and offers ``to_dict``/``from_dict``,
``to_frame()`` (one row per attack and class) and a short printed summary.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import torch

from semprobe import results as _results
from semprobe.attacks.specs import AttackSpec, resolve_attacks
from semprobe.distributed import Processes
from semprobe.errors import ConfigError
from semprobe.stats.intervals import wilson_interval  # also re-exported: the accuracy intervals
from semprobe.models.wrapper import wrap_model
from semprobe.robustness.sharding import chunk_generator, chunk_seed, map_chunks


@dataclass
class AttackResult:
    """Accuracy under one attack, in percent, with its 95% interval and per-class values.

    ``per_image`` is one character per evaluated image, in the order of the images given,
    ``"1"`` where the image is robust: what paired comparisons of two models on the same
    images (McNemar, :func:`semprobe.stats.intervals.paired_comparison`) need.
    ``warnings`` are the attack's own reliability warnings (AutoAttack's checks, such as
    Square succeeding where the gradient attacks failed), each prefixed with its images.
    """

    attack: dict
    n: int
    correct: int
    accuracy: float
    ci95: tuple[float, float]
    per_class: list[float | None]
    seconds: float
    per_image: str = field(default="", repr=False)
    warnings: list[str] = field(default_factory=list)

    def flags(self) -> list[bool]:
        """The per-image robustness as booleans."""
        return [c == "1" for c in self.per_image]

    def to_dict(self) -> dict:
        """Every field in plain types: the record ``semprobe eval`` writes in ``eval.json``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> AttackResult:
        """The result :meth:`to_dict` (or ``eval.json``) recorded."""
        values = dict(record)
        values["ci95"] = tuple(values["ci95"])
        return cls(**values)

    def frame_rows(self, classes: Sequence[str] | None = None, per_class: bool = True) -> list[dict]:
        """:meth:`to_frame`'s rows as dicts."""
        row = {"attack": self.attack["name"], "accuracy": self.accuracy, "ci95_low": self.ci95[0],
               "ci95_high": self.ci95[1], "n": self.n, "correct": self.correct, "seconds": self.seconds,
               **_results.setting_columns(self.attack, skip=("name",))}
        if not per_class:
            return [row]
        names = _results.class_names(classes, len(self.per_class))
        return [{"attack": row["attack"], "class": name, "class_accuracy": value, **row}
                for name, value in zip(names, self.per_class)]

    def to_frame(self, classes: Sequence[str] | None = None, per_class: bool = True):
        """A pandas DataFrame: one row per class (``class``, ``class_accuracy``), with the overall
        accuracy, its interval and the attack's settings as columns; one row with ``per_class=False``."""
        return _results.frame(self.frame_rows(classes, per_class))

    def __str__(self) -> str:
        return (f"{self.attack['name']}: accuracy {self.accuracy:.1f}%{_results.interval(self.ci95, 1)} "
                f"({self.correct}/{self.n})")


class Evaluation(list):
    """What :func:`evaluate` returns: its :class:`AttackResult` list, in attack order, with the
    class names (``classes``, or None) that :meth:`to_frame` and the summary show."""

    def __init__(self, results: Sequence[AttackResult] = (), classes: Sequence[str] | None = None) -> None:
        super().__init__(results)
        self.classes = [str(c) for c in classes] if classes is not None else None

    def to_dict(self) -> dict:
        """``{"classes": [...] or None, "results": [AttackResult.to_dict(), ...]}``."""
        return {"classes": self.classes, "results": [r.to_dict() for r in self]}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Evaluation:
        """The evaluation :meth:`to_dict` (or a checkpoint's entry in ``eval.json``) recorded."""
        return cls([AttackResult.from_dict(r) for r in record["results"]], record.get("classes"))

    def to_frame(self, per_class: bool = True):
        """A pandas DataFrame: one row per attack and class (see :meth:`AttackResult.to_frame`)."""
        return _results.frame([row for r in self for row in r.frame_rows(self.classes, per_class)])

    def __str__(self) -> str:
        if not self:
            return "Evaluation: no attacks"
        first = self[0].attack
        classes = len(self.classes) if self.classes is not None else len(self[0].per_class)
        lines = [f"Evaluation: {self[0].n} images, {first.get('norm', 'Linf')} eps {first['eps']:.4g}, "
                 f"{classes} classes; accuracy %, an image counts when it and its attacked version are correct"]
        names = _results.class_names(self.classes, len(self[0].per_class))
        for r in self:
            known = [(value, name) for value, name in zip(r.per_class, names) if value is not None]
            weakest = f"  weakest class {min(known)[1]} {min(known)[0]:.1f}%" if known else ""
            steps = f"  ({r.attack['steps']} steps of {r.attack['step_size']:.4g})" if r.attack.get("kind") == "pgd" else ""
            lines.append(f"  {r.attack['name']:<12} {r.accuracy:5.1f}%{_results.interval(r.ci95, 1)}"
                         f"  {r.correct}/{r.n}{weakest}{steps}")
            lines += [f"    warning: {message}" for message in r.warnings]
        return _results.summary(lines)

    __repr__ = __str__


@dataclass
class AttackContext:
    """What some attacks need beyond the model: SCARL heads and word vectors, L_info's tau and c."""

    heads: torch.nn.Module | None = None
    word_vectors: torch.Tensor | None = None
    info_tau: float | None = None
    info_c: float | None = None


@torch.no_grad()
def predict(model: torch.nn.Module, images: torch.Tensor, batch_size: int, device: torch.device,
            processes: Processes | None = None) -> torch.Tensor:
    """Predicted labels of ``images`` (on the CPU), chunk by chunk (shared out over ``processes``)."""
    model.eval()
    return map_chunks(len(images), batch_size, lambda chunk, rows: model(images[rows].to(device)).argmax(1),
                      dtype=torch.int64, processes=processes, device=device)


def per_class_accuracy(correct: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list[float | None]:
    """Accuracy (%) of each class; ``None`` for a class without images."""
    out = []
    for k in range(num_classes):
        mask = labels == k
        out.append(float(correct[mask].float().mean() * 100) if mask.any() else None)
    return out


def robust_flags(
    model: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    spec: AttackSpec,
    *,
    eps: float,
    step_size: float | None,
    batch_size: int,
    device: torch.device,
    seed: int,
    clean_correct: torch.Tensor,
    context: AttackContext | None = None,
    progress=None,
    processes: Processes | None = None,
    warnings: list[str] | None = None,
) -> torch.Tensor:
    """Per image: correct on the natural image and on the attack's output (bool, CPU).

    The images are taken in chunks of ``batch_size`` (:mod:`semprobe.robustness.sharding`);
    each chunk attacks its correctly classified images with the random stream of
    ``(seed, chunk)`` (AutoAttack: that stream's seed), whichever process runs it.
    ``warnings``, a list, receives the attack's reliability warnings of every chunk, from
    every process, in chunk order, each prefixed with the chunk's images.
    """
    context = context or AttackContext()
    processes = processes or Processes()
    if spec.kind == "natural":
        return clean_correct.clone()
    chunk_warnings: list[tuple[int, str]] = []

    def attack_chunk(chunk: int, rows: slice) -> torch.Tensor:
        flags = clean_correct[rows].clone()
        index = flags.nonzero().squeeze(1) + rows.start
        if len(index):
            x, y = images[index].to(device), labels[index].to(device)
            messages: list[str] = []
            x_adv = spec.run(model, x, y, eps=eps, step_size=step_size, generator=chunk_generator(seed, chunk, device),
                             seed=chunk_seed(seed, chunk), heads=context.heads, word_vectors=context.word_vectors,
                             info_tau=context.info_tau, info_c=context.info_c, warnings=messages)
            chunk_warnings.extend((chunk, f"images {rows.start}-{rows.stop - 1}: {m}") for m in messages)
            with torch.no_grad():
                flags[index - rows.start] = (model(x_adv).argmax(1) == y).cpu()
        return flags

    flags = map_chunks(len(images), batch_size, attack_chunk, dtype=torch.bool, processes=processes, device=device,
                       progress=progress)
    if warnings is not None and spec.kind == "autoattack":  # the only attack that warns; one exchange
        everyone = [item for part in processes.gather_objects(chunk_warnings) for item in part]
        warnings.extend(message for _, message in sorted(everyone, key=lambda item: item[0]))
    return flags


def evaluate(
    model: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    specs: str | AttackSpec | Sequence[str | AttackSpec],
    *,
    eps: float,
    step_size: float | None = None,
    batch_size: int = 128,
    device: torch.device | str = "cpu",
    seed: int = 0,
    num_classes: int | None = None,
    context: AttackContext | None = None,
    progress_factory=None,
    norm: str = "Linf",
    classes: Sequence[str] | None = None,
    processes: Processes | None = None,
) -> Evaluation:
    """Accuracy under each attack of ``specs`` (one :class:`AttackResult` each, same order).

    ``specs`` are :class:`AttackSpec` objects or attack names (``"natural,pgd20"``,
    ``["fgsm", "pgd-ls:0.2"]``; see :mod:`semprobe.attacks.specs`), names run in the
    ``norm`` ball. ``classes`` names the classes (label order) in the result's table and
    summary; ``num_classes`` defaults to their number, else to the largest label + 1.

    The images are attacked in chunks of ``batch_size``, chunk c with the random stream of
    ``(seed, c)`` for every attack (:mod:`semprobe.robustness.sharding`): a result depends
    neither on which other attacks ran before it nor on how many processes shared the
    work. Under ``torchrun``, pass ``processes=semprobe.distributed.join()``: each process
    attacks its share of the chunks and every process returns the whole evaluation.
    ``progress_factory`` (name, total) -> a tqdm-like object, or None. ``model`` may be any
    classifier module (wrapped with :func:`semprobe.models.wrap_model`, no normalization added).
    """
    specs = resolve_attacks(specs, norm)
    if classes is not None and num_classes is not None and len(classes) != num_classes:
        raise ConfigError(f"{len(classes)} class names given for num_classes={num_classes}")
    device = torch.device(device)
    model = wrap_model(model)
    num_classes = num_classes or (len(classes) if classes is not None else int(labels.max()) + 1)
    model.eval()
    clean_correct = predict(model, images, batch_size, device, processes) == labels
    results = Evaluation(classes=classes)
    for spec in specs:
        started = time.perf_counter()
        bar = progress_factory(spec.name, len(labels)) if progress_factory and spec.kind != "natural" else None
        warnings: list[str] = []
        flags = robust_flags(model, images, labels, spec, eps=eps, step_size=step_size, batch_size=batch_size,
                             device=device, seed=seed, clean_correct=clean_correct, context=context, progress=bar,
                             processes=processes, warnings=warnings)
        if bar is not None:
            bar.close()
        n, correct = len(labels), int(flags.sum())
        low, high = wilson_interval(correct, n)
        results.append(AttackResult(
            attack=spec.describe(eps, step_size if step_size is not None else eps / 4),
            n=n, correct=correct, accuracy=100.0 * correct / n, ci95=(100.0 * low, 100.0 * high),
            per_class=per_class_accuracy(flags, labels, num_classes), seconds=time.perf_counter() - started,
            per_image="".join("1" if flag else "0" for flag in flags.tolist()), warnings=warnings,
        ))
    return results
