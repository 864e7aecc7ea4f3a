"""Extra pseudo-labelled data (RST, Carmon et al. 2019): the reader, RST's batch composition,
the augmentation, the loss on mixed batches, resume, several processes, the ``rst`` method,
the ``spat-rst-cifar10`` preset and every bad input, on sklearn's digits and synthetic images."""

from __future__ import annotations

import copy
import json
import math
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from semprobe import attacks
from semprobe.data import load_dataset
from semprobe.errors import ConfigError, DataError
from semprobe.models import create_model
from semprobe.models.checkpoint import load_checkpoint
from test_trainers_cli import fails_cleanly  # tests/training is on the path (pytest rootdir-relative imports)
from trainers import loop, methods
from trainers.__main__ import main
from trainers.config import parse_args, resolve
from trainers.distributed import ProcessInfo
from trainers.extra_data import (
    MixedBatchSampler, check_shares, labelled_counts, load_extra, mixed_loader, read_extra_data,
)  # fmt: skip
from trainers.methods import METHOD_STEPS, StepContext
from trainers.network import TrainingNetwork
from trainers.validation import STREAM_EXTRA, derive_seed, load_splits

RUN = ["--dataset", "digits", "--arch", "small_cnn"]
QUICK = [*RUN, "--max-train-images", "100", "--batch-size", "32", "--eval-steps", "1", "--quiet"]


def random_images(count: int, shape=(8, 8, 1), seed: int = 0) -> np.ndarray:
    """Noise images, N x H x W x C uint8: no two alike, and no crop or flip of one equals it."""
    return np.random.default_rng(seed).integers(0, 256, (count, *shape), dtype=np.uint8)


def write_npz(path, images, labels):
    np.savez(path, images=images, labels=labels)
    return str(path)


@pytest.fixture
def extra_file(tmp_path):
    """40 noise images with labels 0..9, as an .npz for digits."""
    return write_npz(tmp_path / "extra.npz", random_images(40), np.arange(40) % 10)


@pytest.fixture(scope="module")
def digits_train():
    return load_dataset("digits", "train")


# ----------------------------------------------------------------------------- the reader


def test_npz_of_channels_last_uint8_images_reads_as_pixels_in_0_1(tmp_path, digits_train):
    images, labels = random_images(12), np.arange(12) % 10
    extra = read_extra_data(write_npz(tmp_path / "x.npz", images, labels), digits_train)
    x, y = extra.tensors(torch.arange(12))
    assert x.dtype == torch.float32 and x.shape == (12, 1, 8, 8)
    assert torch.equal(x, torch.from_numpy(images.transpose(0, 3, 1, 2).astype(np.float32) / 255))
    assert torch.equal(y, torch.from_numpy(labels))
    image, label = extra[5]  # one item, as the loader takes it (digits: no augmentation)
    assert torch.equal(image, x[5]) and label == labels[5]


def test_npz_of_channels_first_float_images_reads_as_given(tmp_path, digits_train):
    images = np.random.default_rng(1).random((9, 1, 8, 8))  # float64 in [0, 1)
    labels = np.array([9, 0, 1, 2, 3, 4, 5, 6, 7], dtype=np.uint8)
    extra = read_extra_data(write_npz(tmp_path / "x.npz", images, labels), digits_train)
    x, y = extra.tensors(torch.arange(9))
    assert torch.equal(x, torch.from_numpy(images.astype(np.float32)))
    assert y.tolist() == labels.tolist() and y.dtype == torch.int64


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_rst_pickle_layout_reads_without_running_code(tmp_path, protocol):
    """RST's ti_500K_pseudo_labeled.pickle: a dict with uint8 'data' (N x 32 x 32 x 3), int64
    'extrapolated_targets' and the name and epoch of the model that labelled them."""
    labelled = load_dataset("fake:3x32x32:10:16:8", "train")
    images, labels = random_images(6, (32, 32, 3)), np.array([3, 1, 4, 1, 5, 9], dtype=np.int64)
    content = {"data": images, "extrapolated_targets": labels, "prediction_model": "vanilla",
               "prediction_model_epoch": np.int64(200)}
    path = tmp_path / "ti_500K_pseudo_labeled.pickle"
    path.write_bytes(pickle.dumps(content, protocol=protocol))
    x, y = read_extra_data(path, labelled).tensors(torch.arange(6))
    assert torch.equal(x, torch.from_numpy(images.transpose(0, 3, 1, 2).astype(np.float32) / 255))
    assert y.tolist() == labels.tolist()


class Touch:
    """Unpickling this calls os.system to create a file (what a malicious pickle does)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class Evaluate:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return eval, (f"open({self.marker!r}, 'w').close()",)


@pytest.mark.parametrize("payload", [Touch, Evaluate])
@pytest.mark.parametrize("where", ["whole", "labels"])
def test_a_malicious_pickle_is_refused_and_runs_nothing(tmp_path, capsys, payload, where):
    marker = tmp_path / "pwned"
    evil = payload(marker)
    content = evil if where == "whole" else {"data": random_images(4), "extrapolated_targets": evil}
    path = tmp_path / "extra.pickle"
    path.write_bytes(pickle.dumps(content))
    message = fails_cleanly(["rst", *QUICK, "--extra-data", str(path), "--out", str(tmp_path / "run")], capsys,
                            tmp_path / "run")
    assert "refused" in message and ("system" in message or "eval" in message)
    assert not marker.exists()
    with open(path, "rb") as file:  # the same file through the plain pickle module does run the code
        pickle.load(file)  # noqa: S301 - the point of the test
    assert marker.exists()


# ----------------------------------------------------------------------------- bad input


def bad_files(tmp_path) -> dict[str, tuple[str, str]]:
    """name -> (--extra-data path, part of the expected message)."""
    npz = lambda name, images, labels: write_npz(tmp_path / f"{name}.npz", images, labels)  # noqa: E731
    good_labels = np.arange(6) % 10
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"this is neither a zip archive nor a pickle")
    objects = tmp_path / "objects.npz"
    np.savez(objects, images=np.array([None, 1], dtype=object), labels=good_labels[:2])
    other_keys = tmp_path / "keys.npz"
    np.savez(other_keys, x=random_images(6), y=good_labels)
    return {
        "missing": (str(tmp_path / "absent.npz"), "no such file"),
        "folder": (str(tmp_path), "is a folder, not a file"),
        "unreadable": (str(garbage), "neither an .npz nor a readable pickle"),
        "object arrays": (str(objects), "without unpickling"),
        "other names": (str(other_keys), "expected 'images' and 'labels'"),
        "3-d images": (npz("flat", random_images(6)[..., 0], good_labels), "images of shape (6, 8, 8)"),
        "int32 images": (npz("int32", random_images(6).astype(np.int32), good_labels), "images of dtype int32"),
        "empty": (npz("empty", random_images(0), good_labels[:0]), "images of shape (0, 8, 8, 1)"),
        "other size": (npz("size", random_images(6, (32, 32, 3)), good_labels),
                       "its images are 32 x 32 with 3 channel(s), those of digits 8 x 8 with 1"),
        "other channels": (npz("channels", random_images(6, (8, 8, 3)), good_labels), "8 x 8 with 3 channel(s)"),
        "float size": (npz("fsize", np.zeros((6, 1, 9, 8)), good_labels), "its images are 9 x 8"),
        "uint8 channels first": (npz("first", random_images(6, (1, 8, 8)), good_labels), "look channels-first"),
        "float above 1": (npz("bright", np.full((6, 1, 8, 8), 1.5), good_labels), "in [0, 1]"),
        "float nan": (npz("nan", np.full((6, 1, 8, 8), np.nan), good_labels), "NaN or infinite"),
        "label 10": (npz("ten", random_images(6), np.array([0, 1, 2, 3, 4, 10])), "labels must be class indices in [0, 10), found 0 .. 10"),
        "label -1": (npz("negative", random_images(6), np.array([0, 1, 2, 3, 4, -1])), "found -1 .. 4"),
        "float labels": (npz("flabels", random_images(6), good_labels.astype(float)), "1-D integer array"),
        "label count": (npz("count", random_images(6), good_labels[:5]), "6 images but 5 labels"),
    }  # fmt: skip


BAD_FILES = ["missing", "folder", "unreadable", "object arrays", "other names", "3-d images", "int32 images", "empty",
             "other size", "other channels", "float size", "uint8 channels first", "float above 1", "float nan",
             "label 10", "label -1", "float labels", "label count"]


@pytest.mark.parametrize("case", BAD_FILES)
def test_a_bad_extra_data_file_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, case):
    path, expected = bad_files(tmp_path)[case]
    out = tmp_path / "run"
    message = fails_cleanly(["pgd_at", *QUICK, "--extra-data", path, "--out", str(out)], capsys, out)
    assert expected in message


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["rst"], "rst needs --extra-data FILE"),
        (["pgd_at", "--extra-fraction", "0.5"], "--extra-fraction needs --extra-data"),
        (["rst", "EXTRA", "--extra-fraction", "0"], "--extra-fraction must be in (0, 1), got 0.0"),
        (["rst", "EXTRA", "--extra-fraction", "1"], "--extra-fraction must be in (0, 1), got 1.0"),
        (["rst", "EXTRA", "--extra-fraction", "1.5"], "--extra-fraction must be in (0, 1), got 1.5"),
        (["rst", "EXTRA", "--extra-fraction", "-0.2"], "--extra-fraction must be in (0, 1), got -0.2"),
        (["rst", "EXTRA", "--extra-fraction", "nan"], "--extra-fraction must be in (0, 1), got nan"),
        (["rst", "EXTRA", "--extra-fraction", "0.01"], "--extra-fraction 0.01 of --batch-size 32 takes no extra image"),
        (["rst", "EXTRA", "--ls-parametrization", "torch"], "--ls-parametrization needs --alpha"),
        (["rst", "EXTRA", "--alpha", "1.5"], "alpha must be in [0, 1], got 1.5"),
        (["pgd_at", "--lr-schedule", "cosine", "--milestones", "5"], "--milestones applies to --lr-schedule piecewise"),
        (["pgd_at", "--lr-schedule", "cosine", "--lr-gamma", "0.2"], "--lr-gamma applies to --lr-schedule piecewise"),
        (["pgd_at", "--nesterov", "--momentum", "0"], "--nesterov needs a --momentum > 0"),
    ],
)
def test_bad_extra_data_options_are_one_line_exit_2(tmp_path, capsys, extra_file, argv, expected):
    method, *rest = argv
    rest = [item for part in rest for item in (["--extra-data", extra_file] if part == "EXTRA" else [part])]
    out = tmp_path / "run"
    assert expected in fails_cleanly([method, *QUICK, *rest, "--out", str(out)], capsys, out)


def test_a_composition_the_processes_cannot_share_is_refused_before_anything_is_written(
    tmp_path, capsys, monkeypatch, extra_file
):
    """36 images at 0.5 are 18 labelled and 18 extra: 4 processes cannot take equal shares."""
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "0")
    out = tmp_path / "run"
    argv = ["rst", *QUICK, "--batch-size", "36", "--extra-data", extra_file, "--out", str(out)]
    message = fails_cleanly(argv, capsys, out)
    assert "every batch holds 18 labelled and 18 extra images, which 4 processes cannot share equally" in message
    assert labelled_counts(42, 32, 0.25) == [24, 18]  # a short last batch
    with pytest.raises(ConfigError, match=r"the last batch \(2 of 2\) holds 18 labelled and 14 extra"):
        check_shares(labelled_counts(42, 32, 0.25), 32, 4)
    check_shares(labelled_counts(100, 32, 0.5), 32, 4)  # 16 and 16: fine


# ----------------------------------------------------------------------------- the batches


def run_parts(argv: list[str], world: ProcessInfo = ProcessInfo()):
    """The labelled split, the extra images and the mixed loader of a run's command line."""
    config, _ = parse_args(argv)
    splits = load_splits(config)
    extra = load_extra(config, splits.train, world.world_size)
    loader, sampler = mixed_loader(splits.train, extra, config, world)
    return config, splits.train, extra, loader, sampler


@pytest.mark.parametrize(
    "images, batch, fraction, extra_per_batch, batches",
    [(100, 32, 0.5, 16, 4), (100, 32, 0.25, 8, 4), (100, 32, 0.3, 9, 4), (100, 40, 0.7, 28, 3), (64, 16, 0.5, 8, 4)],
)
def test_every_batch_holds_int_b_times_f_extra_images_and_an_epoch_ceil_n_over_b_batches(
    tmp_path, extra_file, images, batch, fraction, extra_per_batch, batches
):
    """RST: int(B f) extra and B - int(B f) labelled images per batch, ceil(N / B) batches, the
    labelled ones the first of one permutation of the split (none twice in an epoch)."""
    argv = ["rst", *QUICK, "--max-train-images", str(images), "--batch-size", str(batch),
            "--extra-fraction", str(fraction), "--extra-data", extra_file, "--out", str(tmp_path / "r")]
    _, labelled, extra, loader, sampler = run_parts(argv)
    assert len(loader) == len(sampler) == batches
    raw_labelled = {tuple(image.flatten().tolist()) for image in labelled.tensors()[0]}
    raw_extra = {tuple(image.flatten().tolist()) for image in extra.tensors(torch.arange(len(extra)))[0]}
    assert not raw_labelled & raw_extra
    seen = []
    for x, y in loader:
        rows = [tuple(image.flatten().tolist()) for image in x]
        assert len(rows) == batch
        assert all(row in raw_labelled for row in rows[: batch - extra_per_batch])
        assert all(row in raw_extra for row in rows[batch - extra_per_batch :])
        seen += rows[: batch - extra_per_batch]
    assert len(seen) == batches * (batch - extra_per_batch) == len(set(seen))  # distinct: one permutation


def test_the_batches_are_rsts_draws_from_the_epochs_own_stream(tmp_path, digits_train):
    """An independent transcription of SemiSupervisedSampler.__iter__: one randperm of the labelled
    split per epoch, its next L indices per batch, then torch.randint (with replacement) for the rest."""
    path = write_npz(tmp_path / "small.npz", random_images(5), np.arange(5))  # 5 extra images, 16 per batch
    argv = ["rst", *QUICK, "--extra-data", path, "--seed", "7", "--out", str(tmp_path / "r")]
    _, labelled, extra, loader, sampler = run_parts(argv)
    for epoch in (0, 3):
        sampler.set_epoch(epoch)
        generator = torch.Generator().manual_seed(derive_seed(7, STREAM_EXTRA, epoch))
        order = torch.randperm(100, generator=generator)
        for step, (x, y) in enumerate(loader):
            take = order[16 * step : 16 * (step + 1)]
            draws = torch.randint(5, (16,), generator=generator)
            expected_x = torch.cat([labelled.tensors(take)[0], extra.tensors(draws)[0]])
            expected_y = torch.cat([labelled.labels[take], extra.labels[draws]])
            assert torch.equal(x, expected_x) and torch.equal(y, expected_y)
            assert len(set(draws.tolist())) < 16  # with replacement: 16 draws among 5 images repeat
        assert step == 3
    first = [x for x, _ in loader]
    sampler.set_epoch(0)
    assert not all(torch.equal(a, b) for a, b in zip(first, (x for x, _ in loader)))  # epochs differ


def test_a_labelled_split_smaller_than_a_batch_share_fills_up_with_extra_images(tmp_path, extra_file):
    """RST's last batch: fewer than L labelled images left, the rest of B extra (10 + 22 here)."""
    assert labelled_counts(10, 32, 0.5) == [10] and labelled_counts(100, 32, 0.5) == [16] * 4
    argv = ["rst", *QUICK, "--max-train-images", "10", "--extra-data", extra_file, "--out", str(tmp_path / "r")]
    _, labelled, extra, loader, _ = run_parts(argv)
    (x, _), = list(loader)
    raw_extra = {tuple(image.flatten().tolist()) for image in extra.tensors(torch.arange(len(extra)))[0]}
    assert len(x) == 32 and sum(tuple(image.flatten().tolist()) in raw_extra for image in x) == 22


def crop_flip_variants(image: torch.Tensor, padding: int) -> list[torch.Tensor]:
    """Every image RandomCrop(size, padding) + RandomHorizontalFlip can make of ``image``."""
    _, height, width = image.shape
    padded = F.pad(image, (padding,) * 4)
    crops = [padded[:, top : top + height, left : left + width]
             for top in range(2 * padding + 1) for left in range(2 * padding + 1)]
    return crops + [crop.flip(-1) for crop in crops]


@pytest.mark.parametrize("augment", [True, False])
def test_extra_images_go_through_the_labelled_splits_augmentation(tmp_path, extra_file, augment):
    argv = ["rst", *QUICK, "--augment" if augment else "--no-augment", "--extra-data", extra_file,
            "--out", str(tmp_path / "r")]
    _, _, extra, loader, sampler = run_parts(argv)
    torch.manual_seed(0)
    changed = 0
    for (x, _), (_, draws) in zip(loader, sampler.global_batches()):
        for image, raw in zip(x[16:], extra.tensors(draws)[0]):
            if augment:  # digits are 8 x 8: padding 1, as the labelled images
                assert any(torch.equal(image, variant) for variant in crop_flip_variants(raw, 1))
            else:
                assert torch.equal(image, raw)
            changed += not torch.equal(image, raw)
    assert (changed > 0) == augment


# ----------------------------------------------------------------------------- the loss


def test_an_rst_step_is_the_trades_loss_of_the_concatenated_batch(tmp_path, extra_file):
    """One rst step on the first mixed batch against an independent computation, in float64:
    the batch rebuilt from the stream (labelled images, then extra ones), the TRADES attack
    written out (eval mode, 0.001 N(0,1) start, signed steps on the summed KL, projection)
    and RST's trades_loss (CE + beta KL summed over the batch / its size, in train mode)."""
    argv = ["rst", *QUICK, "--eps", "0.3", "--step-size", "0.1", "--steps", "3", "--extra-data", extra_file,
            "--out", str(tmp_path / "r")]
    config, labelled, extra, loader, sampler = run_parts(argv)
    x, y = next(iter(loader))
    take, draws = next(sampler.global_batches())
    x_cat = torch.cat([labelled.tensors(take)[0], extra.tensors(draws)[0]]).double()
    y_cat = torch.cat([labelled.labels[take], extra.labels[draws]])
    assert torch.equal(x.double(), x_cat) and torch.equal(y, y_cat)

    torch.manual_seed(0)
    model = create_model("small_cnn", num_classes=10, in_channels=1).double()
    reference = copy.deepcopy(model)
    ctx = StepContext(config=config, network=TrainingNetwork(model).train(), model=model, num_classes=10,
                      generator=torch.Generator().manual_seed(1))
    result = METHOD_STEPS["rst"](ctx, x.double(), y, 0.0)

    reference.eval()
    with torch.no_grad():
        p_natural = F.softmax(reference(x_cat), dim=1)
    noise = 0.001 * torch.randn(x_cat.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x_adv = (x_cat + noise.clamp(-0.3, 0.3)).clamp(0, 1)
    for _ in range(3):
        x_adv.requires_grad_(True)
        kl = F.kl_div(F.log_softmax(reference(x_adv), dim=1), p_natural, reduction="sum")
        (grad,) = torch.autograd.grad(kl, [x_adv])
        x_adv = torch.min(torch.max(x_adv.detach() + 0.1 * grad.sign(), x_cat - 0.3), x_cat + 0.3).clamp(0, 1)
    reference.train()
    logits_adv, logits = reference(x_adv), reference(x_cat)
    natural_loss = F.cross_entropy(logits, y_cat)
    robust_loss = F.kl_div(F.log_softmax(logits_adv, dim=1), F.softmax(logits, dim=1), reduction="sum") / len(x_cat)
    assert result.terms["ce"].item() == pytest.approx(natural_loss.item(), rel=1e-9)
    assert result.terms["kl"].item() == pytest.approx(robust_loss.item(), rel=1e-9)
    assert result.loss.item() == pytest.approx((natural_loss + 6.0 * robust_loss).item(), rel=1e-9)
    assert robust_loss.item() > 1e-6  # the attack moved the images: the KL term is not trivially zero


# ----------------------------------------------------------------------------- the method and the preset


def test_rst_is_trades_with_the_kl_attack_and_with_alpha_spat_trades(extra_file):
    base = {"dataset": "digits", "arch": "small_cnn", "out": "unused", "extra_data": extra_file}
    rst = resolve("rst", base)
    assert (rst.beta, rst.steps, rst.random_start, rst.alpha, rst.extra_fraction) == (6.0, 10, "normal", None, 0.5)
    assert type(methods.training_surrogate(rst)) is attacks.KLDivergence
    assert METHOD_STEPS["rst"] is METHOD_STEPS["trades"] is METHOD_STEPS["spat_trades"]
    for preset in ({}, {"preset": "spat-rst-cifar10"}):
        with_alpha = resolve("rst", {**base, **preset, "alpha": 0.1})
        spat_trades = resolve("spat_trades", {**base, **preset, "alpha": 0.1})
        assert type(methods.training_surrogate(with_alpha)) is attacks.LabelSmoothed
        assert methods.training_surrogate(with_alpha) == methods.training_surrogate(spat_trades)
        assert {**with_alpha.to_dict(), "method": "spat_trades"} == spat_trades.to_dict()  # one run, two names
        assert with_alpha.random_start == "uniform"


def test_the_spat_rst_preset_is_rsts_schedule(extra_file):
    base = {"dataset": "digits", "arch": "small_cnn", "out": "unused", "extra_data": extra_file,
            "preset": "spat-rst-cifar10"}
    config = resolve("rst", base)
    assert (config.epochs, config.lr, config.lr_schedule, config.milestones, config.momentum, config.nesterov) == (
        200, 0.1, "cosine", [], 0.9, True)
    assert (config.weight_decay, config.batch_size, config.extra_fraction) == (5e-4, 256, 0.5)
    assert (config.eps, config.steps, config.step_size, config.beta, config.random_start) == (
        0.031, 10, 0.007, 6.0, "normal")
    assert config.alpha is None  # the table's RST row; RST + SPAT is spat_trades or rst --alpha
    assert resolve("spat_trades", base).alpha == resolve("spat_mart", base).alpha == 0.1  # SPAT Table 4
    assert resolve("spat_mart", base).beta == 5.0
    assert resolve("rst", {**base, "extra_fraction": 0.25}).extra_fraction == 0.25


def test_the_cosine_schedule_is_rsts_adjust_learning_rate(extra_file):
    """robust_self_training.py: lr = lr0 * 0.5 * (1 + cos((epoch - 1) / epochs * pi)) at the start of
    epoch 1, 2, ... (1-based)."""
    config = resolve("pgd_at", {"dataset": "digits", "arch": "small_cnn", "out": "unused", "epochs": 7,
                                "lr_schedule": "cosine", "lr": 0.2})
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=config.lr)
    scheduler = loop.lr_scheduler(optimizer, config)
    for epoch in range(1, 8):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(0.2 * 0.5 * (1 + np.cos((epoch - 1) / 7 * np.pi)))
        optimizer.step()
        scheduler.step()
    piecewise = resolve("pgd_at", {"dataset": "digits", "arch": "small_cnn", "out": "unused", "epochs": 8})
    assert isinstance(loop.lr_scheduler(optimizer, piecewise), torch.optim.lr_scheduler.MultiStepLR)


# ----------------------------------------------------------------------------- training and resuming


def test_resume_with_extra_data_gives_the_weights_of_an_uninterrupted_run(tmp_path, extra_file, train_interrupted,
                                                                           capsys):
    argv = ["rst", *QUICK, "--steps", "2", "--epochs", "3", "--lr-schedule", "cosine", "--nesterov", "--augment",
            "--extra-data", extra_file]
    whole = loop.train(*parse_args(argv + ["--out", str(tmp_path / "whole")]))
    assert [r["epoch"] for r in whole.history] == [1, 2, 3]
    train_interrupted(argv + ["--out", str(tmp_path / "resumed")], epoch=1)
    assert load_checkpoint(tmp_path / "resumed" / "last.pt").epoch == 1

    original = open(extra_file, "rb").read()  # another file under the same name is refused
    write_npz(extra_file, random_images(40, seed=1), np.arange(40) % 10)
    assert main(["rst", *QUICK, "--epochs", "3", "--resume", str(tmp_path / "resumed")]) == 2
    assert "is not the file the run in" in capsys.readouterr().err
    open(extra_file, "wb").write(original)
    assert main(["rst", *QUICK, "--epochs", "3", "--resume", str(tmp_path / "resumed")]) == 0

    a, b = (load_checkpoint(tmp_path / run / "last.pt") for run in ("whole", "resumed"))
    assert b.epoch == 3
    state_a, state_b = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert a.optimizer_state["param_groups"][0]["nesterov"] is True
    lines = [[json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
             for run in ("whole", "resumed")]
    strip = lambda records: [{k: v for k, v in r.items() if not k.endswith("time_s")} for r in records]  # noqa: E731
    assert strip(lines[0]) == strip(lines[1])
    assert [r["lr"] for r in lines[0]] == pytest.approx([0.1 * 0.5 * (1 + math.cos(math.pi * e / 3)) for e in range(3)])
    stored = json.loads((tmp_path / "whole" / "config.json").read_text())
    assert stored["extra_data"] == extra_file and len(stored["extra_data_sha256"]) == 64


def test_extra_data_changes_what_a_method_trains_on(tmp_path, extra_file):
    """The same run with and without extra images ends with other weights (the mixed batches are used)."""
    argv = ["pgd_at", *QUICK, "--steps", "2", "--epochs", "1"]
    loop.train(*parse_args(argv + ["--out", str(tmp_path / "plain")]))
    result = loop.train(*parse_args(argv + ["--extra-data", extra_file, "--out", str(tmp_path / "mixed")]))
    assert np.isfinite(result.history[0]["train_loss"])
    plain, mixed = (load_checkpoint(tmp_path / run / "last.pt").model.state_dict() for run in ("plain", "mixed"))
    assert not torch.equal(plain["conv1.weight"], mixed["conv1.weight"])


# ----------------------------------------------------------------------------- several processes


def test_each_process_takes_its_share_of_the_global_batch_with_the_same_fraction():
    """Two processes: rank r takes the r-th half of the batch's labelled images and of its extra
    images, so both hold 25% extra images and together the single process's batch."""
    single = MixedBatchSampler(100, 30, 32, 0.25, seed=3)
    ranks = [MixedBatchSampler(100, 30, 32, 0.25, seed=3, rank=r, world_size=2) for r in (0, 1)]
    for sampler in (single, *ranks):
        sampler.set_epoch(2)
    for whole, *shares in zip(single, *ranks):
        assert all(len(share) == 16 and sum(i >= 100 for i in share) == 4 for share in shares)
        labelled = shares[0][:12] + shares[1][:12]
        extra = shares[0][12:] + shares[1][12:]
        assert whole == labelled + extra
    with pytest.raises(ConfigError, match="8 extra images, which 3 processes cannot share"):
        MixedBatchSampler(100, 30, 32, 0.25, seed=3, rank=0, world_size=3)


@pytest.mark.slow  # end to end: two processes under torchrun
@pytest.mark.skipif(not torch.distributed.is_gloo_available(), reason="needs the Gloo backend")
def test_two_process_gloo_run_with_extra_data_equals_one_process(tmp_path, extra_file):
    argv = ["pgd_at", *QUICK, "--max-train-images", "64", "--epochs", "2", "--steps", "3", "--random-start", "none",
            "--lr", "0.05", "--extra-data", extra_file]
    loop.train(*parse_args([*argv, "--out", str(tmp_path / "single")]))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "trainers", *argv, "--out", str(tmp_path / "ddp")]
    finished = subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                              timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    single, ddp = (load_checkpoint(tmp_path / run / "last.pt") for run in ("single", "ddp"))
    state_single, state_ddp = single.model.state_dict(), ddp.model.state_dict()
    for name in state_single:
        assert torch.allclose(state_single[name].double(), state_ddp[name].double(), rtol=0, atol=1e-5), name
    records = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert [r["processes"] for r in records] == [2, 2]


def test_reading_errors_are_data_errors(tmp_path, digits_train):
    with pytest.raises(DataError, match="cannot read it"):
        read_extra_data(tmp_path / "absent.npz", digits_train)
