"""The GPU path on a GPU (skipped without CUDA; benchmarks/gpu_check.sh runs these on a lent GPU).

What the CPU tests (tests/training/test_speed.py) cannot show: a seed gives the same
batches on the CPU and on the GPU with device-resident data; AMP trains and resumes exactly
on CUDA; the inductor-compiled network trains and keeps its checkpoint keys.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DistributedSampler

from semprobe.data import load_dataset
from trainers import loop
from trainers.config import parse_args
from trainers.resident import ResidentLoader

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

RUN = ["--dataset", "fake:3x32x32:10:256:64", "--arch", "preact_resnet18", "--batch-size", "64", "--augment",
       "--steps", "2", "--eval-steps", "2", "--val-size", "64", "--device", "cuda", "--quiet"]


def weights(run_dir):
    return torch.load(run_dir / "last.pt", weights_only=True)["model"]


def test_device_resident_batches_are_the_same_on_cpu_and_gpu():
    dataset = load_dataset("fake:3x32x32:10:256:64", "train", augment="crop_flip")
    batches = {}
    for device in ("cpu", "cuda"):
        sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=3)
        sampler.set_epoch(1)
        torch.manual_seed(11)
        batches[device] = [(x.cpu(), y.cpu()) for x, y in ResidentLoader(dataset, sampler, 64, torch.device(device))]
    assert len(batches["cpu"]) == len(batches["cuda"]) == 4
    for (x, y), (x_gpu, y_gpu) in zip(batches["cpu"], batches["cuda"]):
        assert torch.equal(x, x_gpu) and torch.equal(y, y_gpu)


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_amp_with_device_resident_data_trains_and_resumes_exactly_on_cuda(tmp_path, amp):
    argv = ["trades", *RUN, "--amp", amp, "--data-on-device", "on"]
    whole = loop.train(*parse_args([*argv, "--epochs", "2", "--out", str(tmp_path / "whole")]))
    loop.train(*parse_args([*argv, "--epochs", "1", "--out", str(tmp_path / "split")]))
    loop.train(*parse_args([*argv, "--epochs", "2", "--resume", str(tmp_path / "split")]))
    assert all(torch.isfinite(torch.tensor(record["train_loss"])) for record in whole.history)
    a, b = weights(tmp_path / "whole"), weights(tmp_path / "split")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(v.dtype != torch.bfloat16 and v.dtype != torch.float16 for v in a.values())


def test_inductor_compile_trains_and_keeps_the_checkpoint_keys(tmp_path):
    loop.train(*parse_args(["pgd_at", *RUN, "--epochs", "1", "--out", str(tmp_path / "eager")]))
    loop.train(*parse_args(["pgd_at", *RUN, "--epochs", "1", "--compile", "--out", str(tmp_path / "compiled")]))
    eager, compiled = weights(tmp_path / "eager"), weights(tmp_path / "compiled")
    assert list(eager) == list(compiled)
    assert all(torch.isfinite(v.float()).all() for v in compiled.values())
