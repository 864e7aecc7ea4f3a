"""What does a whole alpha curve cost compared with the bare PGD runs it needs?

``semprobe.robustness.alpha_curves.alpha_curve`` over A alphas runs A PGD-LS attacks plus PGD-CE and
PGD-KL; the bare cost is A + 2 calls of ``attacks.pgd`` with the same settings on the same
images. Target: curve / bare <= 1.1. Timed interleaved (alternating which goes first),
medians of ``--rounds``.

    .venv/bin/python benchmarks/alpha_curve.py [--rounds 3] [--model small_cnn] [--alphas 11]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from semprobe import attacks
from semprobe.robustness.alpha_curves import alpha_curve
from semprobe.models import create_model

SHAPES = {"small_cnn": (1, 28, 28), "preact_resnet18": (3, 32, 32)}
EPS, STEPS = 8 / 255, 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="small_cnn", choices=sorted(SHAPES))
    parser.add_argument("--alphas", type=int, default=11, help="number of alphas, evenly spaced in [0, 1]")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = create_model(args.model, num_classes=10, in_channels=SHAPES[args.model][0]).eval()
    x = torch.rand(args.batch_size, *SHAPES[args.model])
    with torch.no_grad():
        y = model(x).argmax(1)  # every image "correct", so every image is attacked by both
    alphas = [i / (args.alphas - 1) for i in range(args.alphas)]
    losses = [attacks.ls(a) for a in alphas] + [attacks.ce(), attacks.kl()]

    def curve() -> None:
        alpha_curve(model, x, y, alphas, eps=EPS, step_size=EPS / 10, steps=STEPS, batch_size=args.batch_size)

    def bare() -> None:
        for loss in losses:
            attacks.pgd(model, x, y, eps=EPS, step_size=EPS / 10, steps=STEPS, loss=loss)

    times = {"curve": [], "bare": []}
    for round_index in range(args.rounds):
        order = [("curve", curve), ("bare", bare)]
        for name, fn in order[::-1] if round_index % 2 else order:  # alternate who goes first
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    curve_s, bare_s = statistics.median(times["curve"]), statistics.median(times["bare"])
    print(f"{args.model}, batch {args.batch_size}, {args.alphas} alphas + CE + KL, PGD-{STEPS}: "
          f"curve {curve_s:.2f} s, bare PGD runs {bare_s:.2f} s, ratio {curve_s / bare_s:.3f}")


if __name__ == "__main__":
    main()
