"""The speed options on the CPU: the device-resident loader, mixed precision, channels-last, torch.compile."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from semprobe.data import load_dataset
from semprobe.data.dataset import random_crop_flip_batch
from trainers import loop, speed
from trainers.__main__ import main
from trainers.config import parse_args
from trainers.resident import ResidentLoader, use_resident

RUN = ["--dataset", "digits", "--arch", "small_cnn", "--max-train-images", "130", "--batch-size", "64",
       "--eval-steps", "2", "--steps", "2", "--quiet"]


def weights(run_dir):
    return torch.load(run_dir / "last.pt", weights_only=True)["model"]


def assert_equal_states(a, b):
    assert list(a) == list(b)
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]


@pytest.mark.parametrize("world_size, rank, batch", [(1, 0, 32), (2, 1, 16), (1, 0, 43)])
def test_the_resident_loader_gives_the_dataloaders_batches_bit_for_bit(world_size, rank, batch):
    dataset = load_dataset("digits", "train").subset(range(129))  # 129 = 3 x 43: a last batch of 0, 1 or 33
    loaders = []
    for _ in range(2):
        sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=4)
        sampler.set_epoch(3)
        loaders.append(sampler)
    resident = ResidentLoader(dataset, loaders[0], batch, torch.device("cpu"))
    reference = DataLoader(dataset, batch_size=batch, sampler=loaders[1],
                           drop_last=len(loaders[1]) % batch == 1)
    ours, theirs = list(resident), list(reference)
    assert len(resident) == len(reference) == len(ours) == len(theirs)
    for (x, y), (x_ref, y_ref) in zip(ours, theirs):
        assert torch.equal(x, x_ref) and torch.equal(y, y_ref) and x.dtype == torch.float32


def test_batch_crop_flip_gives_each_image_its_own_crop_and_flip_of_the_padded_image():
    images = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8)
    torch.manual_seed(5)
    out = random_crop_flip_batch(images, 2)
    torch.manual_seed(5)
    assert torch.equal(out, random_crop_flip_batch(images, 2))  # the seed fixes the draws
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    kinds = set()
    for image, source in zip(out, padded):
        found = [(top, left, flip) for top in range(5) for left in range(5) for flip in (False, True)
                 if torch.equal(image, (lambda c: c.flip(-1) if flip else c)(source[:, top:top + 8, left:left + 8]))]
        assert found, "an output image is no crop/flip of its input"
        kinds.update(found)
    assert len({k[:2] for k in kinds}) > 10 and {k[2] for k in kinds} == {False, True}


def test_resident_data_trains_to_the_dataloaders_weights_and_resumes_exactly_with_augmentation(tmp_path):
    loop.train(*parse_args(["pgd_at", *RUN, "--epochs", "1", "--data-on-device", "off", "--out",
                            str(tmp_path / "loader")]))
    loop.train(*parse_args(["pgd_at", *RUN, "--epochs", "1", "--data-on-device", "on", "--out",
                            str(tmp_path / "resident")]))
    assert_equal_states(weights(tmp_path / "loader"), weights(tmp_path / "resident"))
    augmented = ["pgd_at", *RUN, "--augment", "--data-on-device", "on"]
    loop.train(*parse_args([*augmented, "--epochs", "2", "--out", str(tmp_path / "whole")]))
    loop.train(*parse_args([*augmented, "--epochs", "1", "--out", str(tmp_path / "split")]))
    loop.train(*parse_args([*augmented, "--epochs", "2", "--resume", str(tmp_path / "split")]))
    assert_equal_states(weights(tmp_path / "whole"), weights(tmp_path / "split"))


def test_auto_keeps_the_cpu_on_the_dataloader_path():
    dataset = load_dataset("digits", "train")
    assert not use_resident("auto", dataset, torch.device("cpu"))
    assert use_resident("auto", dataset, torch.device("cuda"))  # decided from the size alone, no GPU needed
    assert use_resident("on", dataset, torch.device("cpu")) and not use_resident("off", dataset, torch.device("cuda"))


def test_bf16_autocast_runs_the_step_in_bf16_and_keeps_fp32_weights(tmp_path):
    config, _ = parse_args(["trades", *RUN, "--amp", "bf16", "--out", str(tmp_path / "x")])
    precision = speed.MixedPrecision(config.amp, torch.device("cpu"))
    model = torch.nn.Linear(4, 3)
    with precision.autocast():
        assert model(torch.rand(2, 4)).dtype == torch.bfloat16
    loop.train(*parse_args(["trades", *RUN, "--epochs", "1", "--amp", "bf16", "--out", str(tmp_path / "bf16")]))
    loop.train(*parse_args(["trades", *RUN, "--epochs", "1", "--out", str(tmp_path / "fp32")]))
    low, full = weights(tmp_path / "bf16"), weights(tmp_path / "fp32")
    assert all(v.dtype == full[k].dtype for k, v in low.items())
    assert not torch.equal(low["conv1.weight"], full["conv1.weight"])  # autocast did change the arithmetic
    assert torch.allclose(low["conv1.weight"], full["conv1.weight"], atol=0.05)  # but not the training


def test_fp16_with_its_gradient_scaler_resumes_exactly(tmp_path, monkeypatch):
    argv = ["pgd_at", *RUN, "--amp", "fp16"]
    loop.train(*parse_args([*argv, "--epochs", "2", "--out", str(tmp_path / "whole")]))
    loop.train(*parse_args([*argv, "--epochs", "1", "--out", str(tmp_path / "split")]))
    saved = torch.load(tmp_path / "split" / "last.pt", weights_only=True)["resume"]["grad_scaler"]
    assert saved["scale"] > 0 and saved["_growth_tracker"] == 3  # three steps (64, 64, 2 images) without overflow
    restored = []
    load = speed.MixedPrecision.load_state_dict
    monkeypatch.setattr(speed.MixedPrecision, "load_state_dict",
                        lambda self, state: (restored.append(state), load(self, state))[1])
    loop.train(*parse_args([*argv, "--epochs", "2", "--resume", str(tmp_path / "split")]))
    assert restored == [saved]
    assert_equal_states(weights(tmp_path / "whole"), weights(tmp_path / "split"))
    precision = speed.MixedPrecision("fp16", torch.device("cpu"))
    precision.load_state_dict(saved)
    assert precision.state_dict() == saved


def test_compile_and_the_contiguous_layout_train_the_same_weights_and_keep_the_checkpoint_keys(tmp_path,
                                                                                             monkeypatch):
    monkeypatch.setattr(speed, "COMPILE_BACKEND", "eager")  # dynamo traces our step; inductor is benchmarked
    runs = {"plain": ["trades"], "compiled": ["trades", "--compile"],
            "natural": ["natural"], "contiguous": ["natural", "--no-channels-last"]}
    for name, argv in runs.items():
        steps = [] if argv[0] == "natural" else ["--steps", "2"]
        # fake images: no exact ties for max-pooling to break differently in the two layouts (digits have many)
        loop.train(*parse_args([*argv, "--dataset", "fake:1x12x12:10:130:64", *RUN[2:-3], *steps, "--epochs", "1",
                                "--out", str(tmp_path / name)]))
    state = {name: weights(tmp_path / name) for name in runs}
    assert list(state["plain"]) == list(state["compiled"]) == list(state["contiguous"])
    # the same kernels (eager backend): equal to rounding; another layout: other oneDNN kernels, rounding
    # differences that three SGD steps grow to about 1e-4 (PGD's signs would amplify them, hence natural)
    for a, b, atol in (("plain", "compiled", 1e-5), ("natural", "contiguous", 1e-3)):
        for key in state[a]:
            assert torch.allclose(state[a][key].float(), state[b][key].float(), atol=atol), (a, b, key)
    # small_cnn prefers channels-last (benchmarks/channels_last.py); --no-channels-last turned it off
    assert state["natural"]["conv2.weight"].is_contiguous(memory_format=torch.channels_last)
    assert not state["natural"]["conv2.weight"].is_contiguous() and state["contiguous"]["conv2.weight"].is_contiguous()


@pytest.mark.parametrize("argv, message", [
    (["--amp", "fp8"], "'fp8' is not one of 'off', 'bf16', 'fp16'"),
    (["--data-on-device", "always"], "'always' is not one of 'auto', 'on', 'off'"),
])
def test_bad_speed_options_are_one_line_and_exit_2(tmp_path, capsys, argv, message):
    assert main(["pgd_at", *RUN, *argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err, err
    assert not (tmp_path / "run").exists()


def test_data_on_device_on_refuses_a_dataset_read_from_files(tmp_path, capsys):
    from PIL import Image

    for split in ("train", "test"):
        for name in ("cat", "dog"):
            folder = tmp_path / "data" / split / name
            folder.mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(folder / f"{i}.png")
    code = main(["pgd_at", "--dataset", f"imagefolder:{tmp_path / 'data'}", "--arch", "small_cnn", "--val-size", "2",
                 "--data-on-device", "on", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "--data-on-device on needs a dataset held in memory" in err, err
    assert not (tmp_path / "run").exists()


def test_data_on_device_on_refuses_extra_data(tmp_path, capsys):
    import numpy as np

    extra = tmp_path / "extra.npz"
    np.savez(extra, images=np.zeros((20, 8, 8, 1), dtype=np.uint8), labels=np.arange(20) % 10)
    code = main(["trades", *RUN, "--extra-data", str(extra), "--data-on-device", "on", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "--data-on-device on does not take --extra-data" in err, err
    assert not (tmp_path / "run").exists()
