"""The GPU check's measurements (run by benchmarks/gpu_check.sh): attack and training speed on one device.

Synthetic CIFAR-shaped data, no downloads. Measured, on ``--device`` (default cuda):

1. PGD-20 against its floor: :func:`semprobe.attacks.pgd` (20 steps, eps 8/255) against 20 x
   one forward + backward to the input, PreAct ResNet-18, batch 256, eval mode (the floor
   and target of benchmarks/attacks.py: PGD-20 <= 1.05 x floor).
2. Training steps: ``python -m trainers`` runs (through :func:`trainers.loop.train`) of
   TRADES and SCARL on ``fake`` CIFAR-shaped images with crop + flip, batch 128, each two
   epochs of ``--steps`` batches; the second epoch's ``train_time_s`` per step is reported
   (the first pays cuDNN's autotuning). Each in fp32 with the DataLoader, and with
   ``--amp bf16 --data-on-device on``.
3. The anchor: the same number of steps of a transcription of the TRADES reference loop
   (yaodongyu/TRADES ``train_trades_cifar10.py``: a DataLoader with two workers (kept between
   epochs, so that the short epochs here do not pay their start-up twice), fp32, the
   natural logits recomputed inside every attack step, the natural forward run twice in
   the loss), :func:`benchmarks.train.naive_trades_step`, on the same images.
4. Peak GPU memory of each (``torch.cuda.max_memory_allocated``; not measured on the CPU).

Targets on a GPU: PGD-20 <= 1.05 x floor; a SCARL step with AMP and device-resident data at
most half the reference TRADES step. ``--quick`` shrinks everything (small CNN, 16x16
images, batch 8, 2 steps, PGD-2, the reference's DataLoader without workers) to check the
control flow on a CPU in seconds; its
timings mean nothing. The results go to ``--out`` (markdown) and the same name with
``.json``.

    python benchmarks/gpu_check.py [--device cuda] [--quick] [--steps 40] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ scripts as modules
from attacks import timed  # noqa: E402  (benchmarks/attacks.py)
from train import naive_trades_step  # noqa: E402  (benchmarks/train.py)

from semprobe import attacks  # noqa: E402
from semprobe.data import load_dataset  # noqa: E402
from semprobe.models import create_model  # noqa: E402
from trainers import loop  # noqa: E402
from trainers.config import parse_args  # noqa: E402

EPS = 8 / 255


@dataclass(frozen=True)
class Scale:
    """The sizes of one check: the full one for a GPU, or the quick one for a CPU."""

    arch: str
    image: str  # CxHxW
    pgd_batch: int
    pgd_steps: int
    train_batch: int
    train_steps: int
    attack_steps: int


FULL = Scale("preact_resnet18", "3x32x32", 256, 20, 128, 40, 10)
QUICK = Scale("small_cnn", "3x16x16", 8, 2, 8, 2, 2)
VARIANTS = {  # name -> (method, extra options)
    "trades fp32, DataLoader": ("trades", ["--data-on-device", "off"]),
    "trades bf16, on device": ("trades", ["--amp", "bf16", "--data-on-device", "on"]),
    "scarl fp32, DataLoader": ("scarl", ["--data-on-device", "off", "--embedding", "random"]),
    "scarl bf16, on device": ("scarl", ["--amp", "bf16", "--data-on-device", "on", "--embedding", "random"]),
}
REFERENCE = "TRADES reference loop (fp32, DataLoader)"


def peak_memory(device: torch.device) -> float | None:
    """Peak allocated GPU memory since the last reset, in MiB (None on the CPU)."""
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**20


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def pgd_against_floor(scale: Scale, device: torch.device, rounds: int) -> dict:
    """Median seconds of the floor (one forward + backward to the input) and of PGD, and their ratio."""
    channels = int(scale.image.split("x")[0])
    shape = tuple(int(v) for v in scale.image.split("x"))
    torch.manual_seed(0)
    model = create_model(scale.arch, num_classes=10, in_channels=channels).to(device).eval()
    x = torch.rand(scale.pgd_batch, *shape, device=device)
    y = torch.randint(0, 10, (scale.pgd_batch,), device=device)

    def floor() -> None:
        x_req = x.clone().requires_grad_(True)
        torch.autograd.grad(F.cross_entropy(model(x_req), y, reduction="sum"), x_req)

    def pgd() -> None:
        attacks.pgd(model, x, y, eps=EPS, step_size=EPS / 4, steps=scale.pgd_steps)

    reset_peak(device)
    floor(), pgd()  # warm-up (cuDNN autotuning)
    floors = [statistics.median(timed(floor, device) for _ in range(5)) for _ in range(rounds)]
    runs = [timed(pgd, device) for _ in range(rounds)]
    floor_s, pgd_s = statistics.median(floors), statistics.median(runs)
    return {"arch": scale.arch, "batch": scale.pgd_batch, "steps": scale.pgd_steps, "floor_s": floor_s,
            "pgd_s": pgd_s, "ratio": pgd_s / (scale.pgd_steps * floor_s), "peak_mib": peak_memory(device)}


def dataset_name(scale: Scale) -> str:
    return f"fake:{scale.image}:10:{scale.train_batch * scale.train_steps}:{scale.train_batch}"


def trainer_step_time(scale: Scale, device: torch.device, method: str, options: list[str], work: Path) -> dict:
    """Seconds per step of the second of two epochs of a trainers run, and its peak memory."""
    out = work / f"{method}-{len(list(work.iterdir()))}"
    argv = [method, "--dataset", dataset_name(scale), "--arch", scale.arch, "--augment", "--device", str(device),
            "--batch-size", str(scale.train_batch), "--steps", str(scale.attack_steps), "--epochs", "2",
            "--val-size", str(scale.train_batch), "--eval-steps", "1", "--quiet", "--out", str(out), *options]
    reset_peak(device)
    result = loop.train(*parse_args(argv))
    seconds = result.history[-1]["train_time_s"] / scale.train_steps
    return {"step_s": seconds, "peak_mib": peak_memory(device)}


def reference_step_time(scale: Scale, device: torch.device, workers: int = 2) -> dict:
    """Seconds per step of the transcribed TRADES reference loop over a DataLoader of the same images."""
    train = load_dataset(dataset_name(scale), "train", augment="crop_flip")
    # persistent workers: the second epoch's time is then the steady state of the reference's long epochs,
    # not two worker start-ups over a few steps
    loader = torch.utils.data.DataLoader(train, batch_size=scale.train_batch, shuffle=True, drop_last=True,
                                         num_workers=workers, persistent_workers=workers > 0,
                                         pin_memory=device.type == "cuda")
    channels = int(scale.image.split("x")[0])
    torch.manual_seed(0)
    model = create_model(scale.arch, num_classes=10, in_channels=channels).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=2e-4)
    reset_peak(device)
    times = []
    for epoch in range(2):
        started = time.perf_counter()
        for x, y in loader:
            naive_trades_step(model, optimizer, x.to(device, non_blocking=True), y.to(device, non_blocking=True))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - started) / len(loader))
    return {"step_s": times[-1], "peak_mib": peak_memory(device)}


def markdown(report: dict) -> str:
    """The results as the markdown table benchmarks/RESULTS.md takes."""
    pgd = report["pgd"]
    memory = lambda v: "n/a" if v is None else f"{v:.0f}"  # noqa: E731
    lines = [
        f"device: {report['device_name']}; torch {report['torch']}; {'QUICK (control flow only)' if report['quick'] else 'full'}",
        "",
        f"PGD-{pgd['steps']} on {pgd['arch']}, batch {pgd['batch']}: {pgd['pgd_s'] * 1000:.1f} ms, floor "
        f"(forward + backward) {pgd['floor_s'] * 1000:.2f} ms, PGD / ({pgd['steps']} x floor) = {pgd['ratio']:.3f} "
        f"(target <= 1.05); peak memory {memory(pgd['peak_mib'])} MiB",
        "",
        "| training step | seconds per step | / reference | peak MiB |",
        "|---|---|---|---|",
    ]
    reference = report["training"][REFERENCE]["step_s"]
    for name, row in report["training"].items():
        lines.append(f"| {name} | {row['step_s']:.4f} | {row['step_s'] / reference:.2f} | {memory(row['peak_mib'])} |")
    scarl_fast = report["training"]["scarl bf16, on device"]["step_s"] / reference
    lines += ["", f"SCARL with AMP and data on the device / TRADES reference: {scarl_fast:.2f} (target <= 0.5)"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the control flow on a CPU")
    parser.add_argument("--steps", type=int, help="training steps per epoch (default 40; quick 2)")
    parser.add_argument("--rounds", type=int, default=5, help="timed PGD rounds (default 5)")
    parser.add_argument("--out", default="benchmarks/gpu_check_results.md")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: error: no CUDA device here; use --device cpu --quick to check the control flow",
              file=sys.stderr)
        return 2
    scale = QUICK if args.quick else FULL
    if args.steps:
        scale = Scale(**{**scale.__dict__, "train_steps": args.steps})
    report = {"device": str(device), "quick": args.quick, "torch": torch.__version__,
              "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU",
              "scale": scale.__dict__}
    print(f"gpu_check: PGD-{scale.pgd_steps} against its floor on {report['device_name']}", flush=True)
    report["pgd"] = pgd_against_floor(scale, device, 1 if args.quick else args.rounds)
    report["training"] = {}
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as work:
        for name, (method, options) in VARIANTS.items():
            print(f"gpu_check: {name}", flush=True)
            report["training"][name] = trainer_step_time(scale, device, method, options, Path(work))
    print(f"gpu_check: {REFERENCE}", flush=True)
    # quick: no worker processes (each would import torch again, for two steps)
    report["training"][REFERENCE] = reference_step_time(scale, device, workers=0 if args.quick else 2)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.write_text(markdown(report))
    print(markdown(report), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
