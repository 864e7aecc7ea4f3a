"""How close is semprobe's PGD to its floor, and how does it compare with torchattacks?

For each model (small CNN on 1x28x28, PreAct ResNet-18 on 3x32x32), batch 128, eval mode:

- floor: one bare forward + backward with respect to the input (cross-entropy);
- ours: ``semprobe.attacks.gradient.pgd`` with 20 steps (CE, uniform start, step eps/4);
- torchattacks: ``torchattacks.PGD`` with the same eps, step, steps and random start.

The three are timed interleaved, round after round (ours and torchattacks in alternating
order), and the medians of the per-round ratios reported: ``ours / (20 * floor)``
(target <= 1.05) and ``ours / torchattacks`` (target <= 1).
torchattacks is only needed here: ``pip install --no-deps torchattacks``.

    .venv/bin/python benchmarks/attacks.py [--rounds 5] [--device cpu] [--models small_cnn preact_resnet18]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from semprobe import attacks
from semprobe.models import create_model

SETTINGS = {"small_cnn": (1, 28, 28), "preact_resnet18": (3, 32, 32)}
STEPS = 20
EPS = 8 / 255


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", nargs="+", default=list(SETTINGS))
    args = parser.parse_args()
    device = torch.device(args.device)
    try:
        import torchattacks
    except ImportError:
        torchattacks = None
        print("torchattacks is not installed (pip install --no-deps torchattacks): skipping that comparison")

    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, batch {args.batch_size}, "
          f"PGD-{STEPS}, eps {EPS:.4f}, {args.rounds} interleaved rounds (medians, seconds)")
    for name in args.models:
        torch.manual_seed(0)
        model = create_model(name, num_classes=10, in_channels=SETTINGS[name][0]).to(device).eval()
        x = torch.rand(args.batch_size, *SETTINGS[name], device=device)
        y = torch.randint(0, 10, (args.batch_size,), device=device)

        def floor() -> None:
            x_req = x.clone().requires_grad_(True)
            torch.autograd.grad(F.cross_entropy(model(x_req), y, reduction="sum"), x_req)

        def ours() -> None:
            attacks.pgd(model, x, y, eps=EPS, step_size=EPS / 4, steps=STEPS)

        theirs = None
        if torchattacks is not None:
            reference = torchattacks.PGD(model, eps=EPS, alpha=EPS / 4, steps=STEPS, random_start=True)

            def theirs() -> None:
                reference(x, y)

        for fn in (floor, ours) + ((theirs,) if theirs else ()):
            fn()  # warm-up
        times = {"floor": [], "ours": [], "torchattacks": []}
        ratios = {"floor": [], "torchattacks": []}
        for round_index in range(args.rounds):
            # Alternate the order of ours and torchattacks round by round, and compare the
            # two inside each round, so that a slow spell of the VM hits both alike.
            floor_s = statistics.median(timed(floor, device) for _ in range(5))
            pair = [("ours", ours)] + ([("torchattacks", theirs)] if theirs else [])
            if round_index % 2:
                pair.reverse()
            round_times = {key: timed(fn, device) for key, fn in pair}
            times["floor"].append(floor_s)
            for key, value in round_times.items():
                times[key].append(value)
            ratios["floor"].append(round_times["ours"] / (STEPS * floor_s))
            if theirs:
                ratios["torchattacks"].append(round_times["ours"] / round_times["torchattacks"])
        floor_s, ours_s = statistics.median(times["floor"]), statistics.median(times["ours"])
        line = (f"{name:16s} floor {floor_s * 1000:8.1f} ms  PGD-{STEPS} ours {ours_s:7.3f} s  "
                f"ours/(20*floor) {statistics.median(ratios['floor']):5.3f}")
        if theirs:
            theirs_s = statistics.median(times["torchattacks"])
            line += (f"  torchattacks {theirs_s:7.3f} s  ours/torchattacks {statistics.median(ratios['torchattacks']):5.3f}"
                     f"  (per-round ratios {min(ratios['torchattacks']):.3f}..{max(ratios['torchattacks']):.3f})")
        print(line, flush=True)

if __name__ == "__main__":
    main()
