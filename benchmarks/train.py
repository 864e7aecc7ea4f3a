"""Time one training step of SCARL, of our TRADES, and of a straightforward TRADES loop.

A step is everything one batch costs: the training attack (PGD-KL, 10 steps of 2/255 at
eps 8/255 from TRADES' 0.001*N(0,1) start), the forward passes of the loss, backward and
the SGD update. Three variants:

- ``trades``: :func:`trainers.methods.trades` (the natural prediction of the attack is
  computed once per batch, the natural forward of the loss once);
- ``scarl``: :func:`trainers.methods.scarl` with the same attack (eq. 12 + L_info +
  L_struc, projection heads, 50-d class vectors, K = 10);
- ``naive``: TRADES as its description reads (written here): the attack recomputes the
  natural prediction in every step, and the loss runs the natural forward twice (once
  for the cross-entropy, once for the KL target).

All three train the same classifier (one set of weights, one optimizer each), so that
none gains or loses from where its weights happen to lie in memory.

The variants alternate step by step so that a slow spell of the machine hits all alike;
the rounds cycle through the six orders of the three, so each variant follows each
other one equally often. After ``--warmup`` rounds the median of ``--repeats`` rounds
(a multiple of 6 keeps the orders balanced) is printed with the ratios scarl/trades and
naive/trades.

    .venv/bin/python benchmarks/train.py [--repeats 12] [--arch small_cnn preact_resnet18]

Measured on the development machine (a VM with 2 AMD EPYC cores, torch 2.14.1, CPU),
batch 128, median seconds per step of 12 rounds, a quiet run:

    arch             trades   scarl   naive   scarl/trades  naive/trades
    small_cnn         0.531   0.545   0.934          1.026         1.758
    preact_resnet18  10.447  10.731  18.537          1.027         1.774

SCARL's extra work (two projection heads, L_info over K = 10 class vectors, L_struc over
at most 10 centres) is about 1 ms a step; the profiler finds the same convolution,
BatchNorm and pooling work in both steps, and the 1-4% between them moves with the
machine's noise (a run alternating only trades and scarl, 30 pairs on the small CNN,
gave 1.000).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import torch
import torch.nn.functional as F

from semprobe.models import ProjectionHeads, create_model
from trainers.config import TrainConfig
from trainers.methods import StepContext, scarl, trades
from trainers.network import FixedWords, TrainingNetwork, WordCentres

# (input shape per image): batch 128 for both
SHAPES = {"small_cnn": (1, 28, 28), "preact_resnet18": (3, 32, 32)}
NUM_CLASSES = 10
WORD_DIM = 50
EPS, STEP_SIZE, STEPS, BETA = 8 / 255, 2 / 255, 10, 6.0


def naive_trades_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
                      y: torch.Tensor) -> None:
    """TRADES as described: P(x) recomputed in every attack step, natural forward twice in the loss."""
    model.eval()
    x_adv = (x + 0.001 * torch.randn_like(x)).clamp(0, 1)
    for _ in range(STEPS):
        x_adv.requires_grad_(True)
        kl = F.kl_div(F.log_softmax(model(x_adv), dim=1), F.softmax(model(x), dim=1), reduction="sum")
        (grad,) = torch.autograd.grad(kl, x_adv)
        x_adv = torch.min(torch.max(x_adv.detach() + STEP_SIZE * grad.sign(), x - EPS), x + EPS).clamp(0, 1)
    model.train()
    optimizer.zero_grad()
    loss_natural = F.cross_entropy(model(x), y)
    loss_robust = F.kl_div(F.log_softmax(model(x_adv), dim=1), F.softmax(model(x), dim=1),
                           reduction="sum") / len(x)
    (loss_natural + BETA * loss_robust).backward()
    optimizer.step()


def method_step(step_fn, ctx: StepContext, optimizer: torch.optim.Optimizer, x: torch.Tensor,
                y: torch.Tensor) -> None:
    """One step of a trainers method, as the training loop runs it."""
    ctx.network.train()
    result = step_fn(ctx, x, y, 50.0)
    optimizer.zero_grad(set_to_none=True)
    result.loss.backward()
    optimizer.step()


def _config(method: str) -> TrainConfig:
    config = TrainConfig(method=method, dataset="fake", arch="", out="", eps=EPS, steps=STEPS,
                         step_size=STEP_SIZE, random_start="normal", beta=BETA)
    if method == "scarl":
        config.base, config.embedding, config.tau, config.c = "trades", "random", 0.1, 50000.0
        config.centre_momentum, config.lambda1, config.lambda2, config.ramp_epochs = 0.1, 1.0, 1.0, 100.0
        config.info, config.use_info, config.use_struc, config.proj_dim = "bound", True, True, 64
    return config


def _sgd(module: torch.nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(module.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)


def time_steps(arch: str, batch: int, repeats: int, warmup: int) -> dict[str, float]:
    """Median seconds per step of each variant, interleaved round by round."""
    shape = SHAPES[arch]
    torch.manual_seed(0)
    model = create_model(arch, num_classes=NUM_CLASSES, in_channels=shape[0])
    x, y = torch.rand(batch, *shape), torch.randint(0, NUM_CLASSES, (batch,))

    network = TrainingNetwork(model)
    ctx = StepContext(config=_config("trades"), network=network, model=model, num_classes=NUM_CLASSES,
                      generator=torch.Generator().manual_seed(0))
    optimizer = _sgd(network)

    heads = ProjectionHeads(model.feature_dim, WORD_DIM, out_dim=64)
    network_s = TrainingNetwork(model, heads, FixedWords(torch.randn(NUM_CLASSES, WORD_DIM)))
    ctx_s = StepContext(config=_config("scarl"), network=network_s, model=model, num_classes=NUM_CLASSES,
                        generator=torch.Generator().manual_seed(0),
                        word_centres=WordCentres(NUM_CLASSES, 64, 0.1, seed=0, device=torch.device("cpu")))
    optimizer_s = _sgd(network_s)

    optimizer_n = _sgd(model)
    steps = {
        "trades": lambda: method_step(trades, ctx, optimizer, x, y),
        "scarl": lambda: method_step(scarl, ctx_s, optimizer_s, x, y),
        "naive": lambda: naive_trades_step(model, optimizer_n, x, y),
    }
    orders = list(itertools.permutations(steps))
    times: dict[str, list[float]] = {name: [] for name in steps}
    for round_index in range(warmup + repeats):
        for name in orders[round_index % len(orders)]:
            started = time.perf_counter()
            steps[name]()
            if round_index >= warmup:
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"PGD-KL {STEPS} steps; median seconds per training step of {args.repeats} interleaved rounds")
    print(f"{'arch':<16} {'trades':>8} {'scarl':>8} {'naive':>8}  {'scarl/trades':>12}  {'naive/trades':>12}")
    for arch in args.arch:
        median = time_steps(arch, args.batch, args.repeats, args.warmup)
        print(f"{arch:<16} {median['trades']:8.3f} {median['scarl']:8.3f} {median['naive']:8.3f}  "
              f"{median['scarl'] / median['trades']:12.3f}  {median['naive'] / median['trades']:12.3f}", flush=True)


if __name__ == "__main__":
    main()
