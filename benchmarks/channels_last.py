"""Time forward + backward of every registry model on CPU, with and without channels_last.

One step is a training-mode forward pass, cross-entropy on random labels and a backward
pass to the weights and to the input (as adversarial training needs). The two layouts
alternate step by step on the same weights and data; after ``--warmup`` steps the median
of ``--repeats`` steps is printed with the speed-up of channels_last. The result decides
each architecture's ``prefers_channels_last``.

    .venv/bin/python benchmarks/channels_last.py [--repeats 5] [--arch small_cnn ...]

Measured on the development machine (a VM with 2 AMD EPYC cores, torch 2.14.1, oneDNN
3.12), seconds per step, two full runs with ``--repeats 5``:

    arch             input    batch  contiguous     channels_last  speed-up
    small_cnn        1x28x28    128  0.132 / 0.119  0.081 / 0.092  1.63x / 1.29x
    preact_resnet18  3x32x32    128  2.565 / 2.180  1.934 / 1.771  1.33x / 1.23x
    resnet18         3x32x32    128  2.558 / 2.353  1.803 / 1.664  1.42x / 1.41x
    resnet50         3x32x32     32  2.129 / 1.838  1.342 / 1.641  1.59x / 1.12x
    wrn_28_10        3x32x32     32  4.230 / 4.191  3.918 / 3.822  1.08x / 1.10x
    wrn_34_10        3x32x32     32  4.587 / 5.472  4.182 / 4.697  1.10x / 1.17x

channels_last is faster for every architecture, so all of them prefer it. The VM's speed
drifts (earlier runs that timed the layouts one after the other were up to 2.5x slower
and disagreed with each other), hence the interleaving.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from semprobe.models import create_model

# (input shape per image, batch size): batch 128 for the small nets, 32 for the big ones.
SETTINGS: dict[str, tuple[tuple[int, int, int], int]] = {
    "small_cnn": ((1, 28, 28), 128),
    "preact_resnet18": ((3, 32, 32), 128),
    "resnet18": ((3, 32, 32), 128),
    "resnet50": ((3, 32, 32), 32),
    "wrn_28_10": ((3, 32, 32), 32),
    "wrn_34_10": ((3, 32, 32), 32),
}


def time_steps(arch: str, repeats: int, warmup: int) -> tuple[float, float]:
    """Median seconds of one forward + backward step of ``arch``: (contiguous, channels_last).

    The two layouts alternate step by step on the same weights and data, so a slow spell
    of a shared machine hits both alike.
    """
    shape, batch = SETTINGS[arch]
    torch.manual_seed(0)
    plain = create_model(arch, in_channels=shape[0], channels_last=False).train()
    last = create_model(arch, in_channels=shape[0], channels_last=True).train()
    last.load_state_dict(plain.state_dict())
    images = torch.rand(batch, *shape)
    labels = torch.randint(0, plain.num_classes, (batch,))
    seconds: dict[bool, list[float]] = {False: [], True: []}
    for step in range(warmup + repeats):
        for channels_last, model in ((False, plain), (True, last)):
            x = images.clone().requires_grad_(True)
            start = time.perf_counter()
            F.cross_entropy(model(x), labels).backward()
            if step >= warmup:
                seconds[channels_last].append(time.perf_counter() - start)
            model.zero_grad(set_to_none=True)
    return statistics.median(seconds[False]), statistics.median(seconds[True])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per setting")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per setting")
    args = parser.parse_args()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    print(f"{'arch':16} {'input':9} {'batch':>5} {'contiguous':>11} {'channels_last':>14} {'speed-up':>9}")
    for arch in args.arch:
        shape, batch = SETTINGS[arch]
        plain, last = time_steps(arch, args.repeats, args.warmup)
        size = "x".join(map(str, shape))
        print(f"{arch:16} {size:9} {batch:>5} {plain:>11.3f} {last:>14.3f} {plain / last:>8.2f}x", flush=True)


if __name__ == "__main__":
    main()
