"""Grids of adversarial examples: SPAT Fig. 2 (CW-inf at growing eps) and Fig. 3 (PGD-CE vs PGD-LS).

:func:`correct_examples` picks the images to show as the paper does: natural images the
model classifies correctly, one per class while classes last; :func:`attack_columns`
runs each named attack on them and records the predictions; :func:`example_grid` draws
them, a row per image (its true class on the left) and a column per attack, each panel
titled with the predicted class (red when wrong).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import torch

from semprobe import attacks


@dataclass
class ExampleColumn:
    """One column of the grid: the attacked images and the model's predictions on them."""

    name: str
    images: torch.Tensor  # (m, C, H, W) in [0, 1]
    predictions: list[int]

    def to_dict(self, classes: Sequence[str]) -> dict:
        return {"name": self.name, "predictions": [classes[p] for p in self.predictions]}


def spat_fig2_attacks(eps_values: Sequence[float] = (8 / 255, 16 / 255, 32 / 255), steps: int = 30) -> dict:
    """SPAT Fig. 2: CW-inf (PGD on the CW margin) at each eps, step eps/4."""
    return {f"CW-inf eps {e * 255:.0f}/255": (lambda model, x, y, e=e: attacks.pgd(
        model, x, y, eps=e, step_size=e / 4, steps=steps, loss=attacks.cw())) for e in eps_values}


def spat_fig3_attacks(eps: float = 32 / 255, alphas: Sequence[float] = (0.2, 0.8), steps: int = 20) -> dict:
    """SPAT Fig. 3: PGD-CE and PGD-LS at each alpha, from the same random start (same seed)."""
    def run(loss):
        def attack(model, x, y):
            generator = torch.Generator(device=x.device).manual_seed(0)
            return attacks.pgd(model, x, y, eps=eps, step_size=eps / 10, steps=steps, loss=loss, generator=generator)
        return attack

    columns = {f"PGD-CE eps {eps * 255:.0f}/255": run(attacks.ce())}
    columns.update({f"PGD-LS alpha {a:g}": run(attacks.ls(a)) for a in alphas})
    return columns


def correct_examples(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
                     count: int) -> torch.Tensor:
    """Indices of ``count`` images the model classifies correctly, in dataset order, one per class
    first (then more of the classes already shown); fewer when fewer are correct."""
    model.eval()
    with torch.no_grad():
        correct = (model(images).argmax(1) == labels).nonzero().squeeze(1).tolist()
    first_of_class, rest, seen = [], [], set()
    for index in correct:
        label = int(labels[index])
        (rest if label in seen else first_of_class).append(index)
        seen.add(label)
    return torch.tensor((first_of_class + rest)[:count], dtype=torch.long)


def attack_columns(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
                   attack_fns: Mapping[str, Callable]) -> list[ExampleColumn]:
    """The natural images and each attack's images, with the model's predictions."""
    model.eval()

    def predict(x: torch.Tensor) -> list[int]:
        with torch.no_grad():
            return model(x).argmax(1).tolist()

    columns = [ExampleColumn("natural", images, predict(images))]
    for name, attack in attack_fns.items():
        adversarial = attack(model, images, labels).detach()
        columns.append(ExampleColumn(name, adversarial, predict(adversarial)))
    return columns


def example_grid(columns: Sequence[ExampleColumn], labels: torch.Tensor, classes: Sequence[str], title: str = ""):
    """A row per image, a column per attack; titles are predictions (red where wrong), the true
    class stands left of each row."""
    from semprobe.plots import pyplot

    plt = pyplot()

    rows = len(labels)
    figure, axes = plt.subplots(rows, len(columns), figsize=(1.8 * len(columns), 1.9 * rows), squeeze=False)
    for j, column in enumerate(columns):
        for i in range(rows):
            ax = axes[i, j]
            image = column.images[i].detach().cpu().clamp(0, 1)
            if image.shape[0] == 1:
                ax.imshow(image[0].numpy(), cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(image.permute(1, 2, 0).numpy())
            predicted = column.predictions[i]
            ax.set_title(f"pred: {classes[predicted]}", fontsize=7,
                         color="black" if predicted == int(labels[i]) else "red")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(f"true: {classes[int(labels[i])]}", fontsize=7)
            if i == 0:
                ax.text(0.5, 1.35, column.name, transform=ax.transAxes, ha="center", fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10, y=1.03)  # above the column names
    figure.tight_layout()
    return figure
