"""Does a bf16 attack change robust accuracy, and does torch.compile speed up a training step?

1. ``--checkpoint`` (default: the study's PGD-AT model) on the first ``--images`` Fashion-MNIST
   test images: PGD-20 (eps 0.1, step eps/4, one shared uniform start) in fp32 and under
   ``torch.autocast`` in bf16 on ``--device``; robust accuracy of both, how many images the
   two disagree on, and McNemar's exact p-value of the difference (semprobe.stats).
   semprobe's evaluation stays fp32 unless asked; this measures what asking would cost.
2. One TRADES training step (:func:`trainers.methods.trades`, batch 128, PGD-KL 10 steps) of the
   small CNN, eager against ``torch.compile`` (inductor) of the network and the attacked
   classifier, as ``--compile`` does; the two alternate step by step after compiling, and
   the median of ``--repeats`` steps is printed with the speed-up.

    .venv/bin/python benchmarks/amp_and_compile.py [--checkpoint PATH] [--images 1000] [--repeats 12]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train import _config, _sgd, method_step  # noqa: E402  (benchmarks/train.py)

from semprobe import attacks  # noqa: E402
from semprobe.data import load_dataset  # noqa: E402
from semprobe.models import create_model  # noqa: E402
from semprobe.models.loading import load_model  # noqa: E402
from semprobe.stats.intervals import mcnemar_exact  # noqa: E402
from trainers.methods import StepContext, trades  # noqa: E402
from trainers.network import TrainingNetwork  # noqa: E402

STUDY_PGD_AT = Path(__file__).resolve().parent.parent / "figures/study/runs/pgd_at/best.pt"


def bf16_attack(checkpoint: Path, images: int, device: torch.device) -> None:
    model = load_model(str(checkpoint)).to(device).eval()
    x, y = load_dataset("fashion-mnist", "test").tensors(torch.arange(images))
    x, y = x.to(device), y.to(device)
    correct = {}
    for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        flags = []
        for start in range(0, images, 250):
            xb, yb = x[start:start + 250], y[start:start + 250]
            generator = torch.Generator(device=device).manual_seed(start)
            context = torch.autocast(device.type, dtype=dtype) if dtype else torch.enable_grad()
            with context:
                x_adv = attacks.pgd(model, xb, yb, eps=0.1, step_size=0.025, steps=20, generator=generator)
            with torch.no_grad():  # the verdict in fp32 for both
                flags.append(model(x_adv).argmax(1) == yb)
        correct[name] = torch.cat(flags).cpu()
    differ = int((correct["fp32"] != correct["bf16"]).sum())
    only_fp32 = int((correct["fp32"] & ~correct["bf16"]).sum())
    p_value = mcnemar_exact(only_fp32, differ - only_fp32)
    print(f"{checkpoint.name} on {images} Fashion-MNIST test images, PGD-20 eps 0.1: robust accuracy fp32 "
          f"{100 * correct['fp32'].float().mean():.2f}%, bf16 attack {100 * correct['bf16'].float().mean():.2f}%; "
          f"{differ} images differ ({only_fp32} robust only against the fp32 attack), McNemar p = {p_value:.3g}")


def compile_speedup(repeats: int) -> None:
    torch.manual_seed(0)
    x, y = torch.rand(128, 1, 28, 28), torch.randint(0, 10, (128,))
    runs = {}
    for name in ("eager", "compiled"):
        model = create_model("small_cnn", num_classes=10, in_channels=1)
        network = TrainingNetwork(model)
        if name == "compiled":
            network.compile()
            model.compile()
        ctx = StepContext(config=_config("trades"), network=network, model=model, num_classes=10,
                          generator=torch.Generator().manual_seed(0))
        optimizer = _sgd(network)
        started = time.perf_counter()
        method_step(trades, ctx, optimizer, x, y)  # compiles on the first call
        runs[name] = (ctx, optimizer, time.perf_counter() - started)
    times = {name: [] for name in runs}
    for index in range(repeats):
        for name in (("eager", "compiled") if index % 2 else ("compiled", "eager")):
            ctx, optimizer, _ = runs[name]
            started = time.perf_counter()
            method_step(trades, ctx, optimizer, x, y)
            times[name].append(time.perf_counter() - started)
    eager, compiled = (statistics.median(times[n]) for n in ("eager", "compiled"))
    print(f"TRADES step, small_cnn, batch 128, CPU {torch.get_num_threads()} threads: eager {eager:.3f} s, "
          f"compiled {compiled:.3f} s (first call {runs['compiled'][2]:.1f} s), speed-up {eager / compiled:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=STUDY_PGD_AT)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=12)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    bf16_attack(args.checkpoint, args.images, torch.device(args.device))
    compile_speedup(args.repeats)


if __name__ == "__main__":
    main()
