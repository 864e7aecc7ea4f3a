"""Tests of semprobe.data and semprobe.data.idx: registry, file layouts, splits, phrases, safety.

Everything runs offline: the real datasets are replaced by small directory trees of the
real layouts written into tmp_path, except Fashion-MNIST, which is read from Debian's
dataset-fashion-mnist package when it is installed. Sockets refuse to connect.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import semprobe.data as data
from semprobe.data import (
    DatasetInfo,
    ImageDataset,
    dataset_info,
    default_phrase,
    list_datasets,
    load_dataset,
    random_crop_flip,
    read_aliases,
)
from semprobe.errors import ConfigError, DataError
from semprobe.data.idx import read_idx

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path, no_network):
    """No network, no $SEMPROBE_DATA and an empty download cache for every test."""
    monkeypatch.delenv("SEMPROBE_DATA", raising=False)
    monkeypatch.setenv("SEMPROBE_CACHE", str(tmp_path / "cache"))


def as_bytes(images: torch.Tensor) -> list[bytes]:
    """Each float image in [0,1] as the bytes of its uint8 pixels (for set comparisons)."""
    return [bytes(image) for image in (images * 255).round().to(torch.uint8).numpy()]


# --------------------------------------------------------------------------- writers of fake trees


def write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    """Write a uint8 array as an IDX file (independently of semprobe.data.idx)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if gz else payload)


def write_fashion_mnist(folder: Path, num_train: int, num_test: int, gz: bool) -> np.ndarray:
    """A tiny Fashion-MNIST in ``folder``; returns its training images."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(num_train)
    train_images = rng.integers(0, 256, (num_train, 28, 28), dtype=np.uint8)
    suffix = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{suffix}", train_images, gz)
    write_idx(folder / f"train-labels-idx1-ubyte{suffix}", np.arange(num_train) % 10, gz)
    write_idx(folder / f"t10k-images-idx3-ubyte{suffix}", rng.integers(0, 256, (num_test, 28, 28)), gz)
    write_idx(folder / f"t10k-labels-idx1-ubyte{suffix}", np.arange(num_test) % 10, gz)
    return train_images


def write_pickle(path: Path, obj: object, protocol: int = pickle.DEFAULT_PROTOCOL) -> None:
    with open(path, "wb") as handle:
        pickle.dump(obj, handle, protocol=protocol)


def write_cifar10(root: Path, protocol: int = pickle.DEFAULT_PROTOCOL, per_batch: int = 4) -> dict:
    """cifar-10-batches-py with five training batches, a test batch and the meta file."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        count = 6 if name == "test_batch" else per_batch
        batch = {
            b"batch_label": name.encode(),
            b"labels": rng.integers(0, 10, count).tolist(),
            b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
            b"filenames": [f"{name}_{i}.png".encode() for i in range(count)],
        }
        write_pickle(folder / name, batch, protocol)
        batches[name] = batch
    write_pickle(folder / "batches.meta", {b"label_names": [n.encode() for n in data.CIFAR10_CLASSES]}, protocol)
    return batches


def write_cifar100(root: Path, names: list[str] | None = None) -> dict:
    """cifar-100-python with train, test and meta."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    splits = {}
    for name, count in (("train", 8), ("test", 4)):
        splits[name] = {
            b"fine_labels": rng.integers(0, 100, count).tolist(),
            b"coarse_labels": rng.integers(0, 20, count).tolist(),
            b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
        }
        write_pickle(folder / name, splits[name])
    names = list(data.CIFAR100_CLASSES) if names is None else names
    write_pickle(folder / "meta", {b"fine_label_names": [n.encode() for n in names], b"coarse_label_names": []})
    return splits


TINY_WORDS = {
    "n01443537": "goldfish, Carassius auratus",
    "n01629819": "European fire salamander, Salamandra salamandra",
    "n02123045": "tabby, tabby cat",
    "n09999999": "unused synset, not in wnids",
}
TINY_WNIDS = ["n02123045", "n01443537", "n01629819"]  # wnids.txt is not sorted
TINY_COLORS = {"n01443537": (250, 10, 10), "n01629819": (10, 250, 10), "n02123045": (10, 10, 250)}


def write_tinyimagenet(root: Path, reorganised_val: bool = False) -> Path:
    """tiny-imagenet-200 with 3 classes, 3 training and 2 validation JPEGs each."""
    folder = root / "tiny-imagenet-200"
    folder.mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(TINY_WNIDS) + "\n")
    (folder / "words.txt").write_text("".join(f"{wnid}\t{words}\n" for wnid, words in TINY_WORDS.items()))
    annotations = []
    for wnid in TINY_WNIDS:
        images = folder / "train" / wnid / "images"
        images.mkdir(parents=True)
        (folder / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
        for i in range(3):
            Image.new("RGB", (64, 64), TINY_COLORS[wnid]).save(images / f"{wnid}_{i}.JPEG")
        for i in range(2):
            name = f"val_{wnid}_{i}.JPEG"
            target = folder / "val" / (wnid if reorganised_val else "images")
            target.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (64, 64), TINY_COLORS[wnid]).save(target / name)
            annotations.append(f"{name}\t{wnid}\t0\t0\t63\t63")
    if not reorganised_val:
        (folder / "val" / "val_annotations.txt").write_text("\n".join(annotations) + "\n")
    return folder


# --------------------------------------------------------------------------- registry and options


def test_registry_names():
    assert list_datasets() == ["cifar10", "cifar100", "tinyimagenet", "fashion-mnist", "digits", "fake"]


def test_unknown_dataset_lists_known_ones():
    with pytest.raises(ConfigError, match="unknown dataset 'imagenet'.*cifar10, cifar100, tinyimagenet"):
        load_dataset("imagenet")
    with pytest.raises(ConfigError, match="fashion-mnist"):
        dataset_info("mnist")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"split": "validation"}, "unknown split"),
        ({"augment": "flip"}, "augment must be"),
        ({"val_size": 0}, "val_size must be"),
        ({"val_size": 2.5}, "val_size must be"),
        ({"val_size": 512}, "leaves no training images"),
        ({"seed": -1}, "seed must be"),
    ],
)
def test_bad_options_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        load_dataset("fake", **kwargs)


# --------------------------------------------------------------------------- fake


def test_fake_default_splits_shapes_and_ranges():
    info = dataset_info("fake")
    assert info == DatasetInfo(
        name="fake",
        num_classes=10,
        image_shape=(1, 28, 28),
        classes=tuple(f"class{k}" for k in range(10)),
        phrases=tuple(f"class{k}" for k in range(10)),
        normalization=None,
        augmentation="none",
    )
    sizes = {split: len(load_dataset("fake", split)) for split in data.SPLITS}
    assert sizes == {"train": 502, "val": 10, "test": 256, "train_full": 512}
    dataset = load_dataset("fake", "test")
    image, label = dataset[3]
    assert image.dtype == torch.float32 and image.shape == (1, 28, 28)
    assert isinstance(label, int) and 0 <= label < 10
    images, labels = dataset.tensors()
    assert images.shape == (256, 1, 28, 28) and images.min() >= 0 and images.max() <= 1
    assert labels.dtype == torch.int64 and set(labels.tolist()) == set(range(10))


@pytest.mark.parametrize(
    "name, shape, classes, num_train, num_test",
    [
        ("fake:3x32x32:5", (3, 32, 32), 5, 512, 256),
        ("fake:2x5x7:3:40:20", (2, 5, 7), 3, 40, 20),
    ],
)
def test_fake_spec_forms(name, shape, classes, num_train, num_test):
    info = dataset_info(name)
    assert (info.name, info.image_shape, info.num_classes) == (name, shape, classes)
    train_full = load_dataset(name, "train_full")
    assert len(train_full) == num_train and train_full[0][0].shape == shape
    assert len(load_dataset(name, "test")) == num_test
    assert len(load_dataset(name, "val")) == max(1, num_train // 50)


@pytest.mark.parametrize(
    "name", ["fake:3x32:10", "fake:3x32x32", "fake:0x4x4:2", "fake:1x4x4:1", "fake:1x4x4:2:10", "fake:axbxc:2"]
)
def test_bad_fake_spec_names_the_accepted_forms(name):
    with pytest.raises(ConfigError, match="fake:CxHxW:K or fake:CxHxW:K:NTRAIN:NTEST"):
        load_dataset(name)


def test_fake_is_learnable_by_nearest_class_mean():
    train_images, train_labels = load_dataset("fake", "train_full").tensors()
    test_images, test_labels = load_dataset("fake", "test").tensors()
    means = torch.stack([train_images[train_labels == k].mean(0) for k in range(10)]).flatten(1)
    predictions = torch.cdist(test_images.flatten(1), means).argmin(1)
    assert (predictions == test_labels).float().mean() > 0.9


# --------------------------------------------------------------------------- validation split


def test_val_and_train_partition_train_full():
    name = "fake:1x6x6:4:200:10"
    train = as_bytes(load_dataset(name, "train").tensors()[0])
    val = as_bytes(load_dataset(name, "val", val_size=40).tensors()[0])
    val_default_train = as_bytes(load_dataset(name, "train", val_size=40).tensors()[0])
    full = as_bytes(load_dataset(name, "train_full").tensors()[0])
    assert len(set(full)) == 200  # the fake images are all distinct
    assert len(val) == 40 and len(val_default_train) == 160 and len(train) == 196
    assert not set(val) & set(val_default_train)
    assert Counter(val) + Counter(val_default_train) == Counter(full)


def test_val_split_is_stratified_and_seeded():
    val = load_dataset("fake", "val", val_size=100)
    counts = torch.bincount(val.labels, minlength=10)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 100
    again = load_dataset("fake", "val", val_size=100)
    other_seed = load_dataset("fake", "val", val_size=100, seed=1)
    assert torch.equal(val.tensors()[0], again.tensors()[0])
    assert not torch.equal(val.tensors()[0], other_seed.tensors()[0])
    assert load_dataset("fake", "train", val_size=100, seed=1).split == "train"


def test_stratified_sample_keeps_class_proportions():
    labels = torch.tensor([0] * 70 + [1] * 20 + [2] * 10)
    chosen = data._stratified_sample(labels, 10, seed=3)
    assert torch.bincount(labels[chosen]).tolist() == [7, 2, 1]
    assert chosen.unique().numel() == 10 and torch.all(chosen[1:] > chosen[:-1])


# --------------------------------------------------------------------------- digits


def test_digits_splits_values_and_classes():
    info = dataset_info("digits")
    assert info.classes == ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    assert info.image_shape == (1, 8, 8) and info.normalization is None and info.augmentation == "none"
    test = load_dataset("digits", "test")
    assert len(test) == 360 and len(load_dataset("digits", "train_full")) == 1437
    assert len(load_dataset("digits", "val")) == 28 and len(load_dataset("digits", "train")) == 1409
    assert torch.bincount(test.labels).min() >= 35
    images, _ = test.tensors()
    assert images.shape == (360, 1, 8, 8) and images.max() == 1.0 and images.min() == 0.0
    assert torch.equal(images * 16, (images * 16).round())  # scikit-learn's 0..16 divided by 16
    assert torch.equal(images, load_dataset("digits", "test").tensors()[0])


# --------------------------------------------------------------------------- fashion-mnist


@pytest.fixture
def debian_fashion_mnist():
    if not DEBIAN_FASHION_MNIST.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{DEBIAN_FASHION_MNIST} is missing on CI; install the dataset-fashion-mnist package")
        pytest.skip(f"{DEBIAN_FASHION_MNIST} is absent (Debian package dataset-fashion-mnist not installed)")


def test_fashion_mnist_from_debian_files(debian_fashion_mnist):
    train = load_dataset("fashion-mnist", "train")
    val = load_dataset("fashion-mnist", "val")
    test = load_dataset("fashion-mnist", "test")
    assert (len(train), len(val), len(test)) == (59000, 1000, 10000)
    assert test.labels[0] == 9 and test.labels[1] == 2  # ankle boot, pullover
    assert load_dataset("fashion-mnist", "train_full").labels[:3].tolist() == [9, 0, 0]
    assert torch.bincount(test.labels).tolist() == [1000] * 10
    assert torch.bincount(torch.cat([train.labels, val.labels])).tolist() == [6000] * 10
    image, label = train[0]
    assert image.shape == (1, 28, 28) and 0 <= image.min() and image.max() <= 1 and label == train.labels[0]
    assert train.classes[0] == "T-shirt/top" and train.phrases[0] == "t-shirt top"
    assert train.phrases[9] == "ankle boot"
    assert train.info.normalization == {"mean": [0.2860], "std": [0.3530]}
    assert train.info.augmentation == "none"


def test_data_dir_then_env_then_system(monkeypatch, tmp_path, no_system_data):
    env_images = write_fashion_mnist(tmp_path / "env" / "fashion-mnist", 20, 5, gz=True)
    write_fashion_mnist(tmp_path / "arg" / "FashionMNIST" / "raw", 30, 5, gz=False)
    write_fashion_mnist(no_system_data / "fashion-mnist", 40, 5, gz=True)
    write_fashion_mnist(tmp_path / "flat", 50, 5, gz=False)
    assert len(load_dataset("fashion-mnist", "train_full")) == 40
    monkeypatch.setenv("SEMPROBE_DATA", str(tmp_path / "env"))
    env = load_dataset("fashion-mnist", "train_full")
    assert len(env) == 20
    assert torch.equal(env.tensors()[0][:, 0], torch.from_numpy(env_images).float() / 255)
    assert torch.equal(env.labels, torch.arange(20) % 10)
    assert len(load_dataset("fashion-mnist", "train_full", data_dir=tmp_path / "arg")) == 30
    assert len(load_dataset("fashion-mnist", "train_full", data_dir=tmp_path / "flat")) == 50
    assert len(load_dataset("fashion-mnist", "test", data_dir=tmp_path / "arg")) == 5


def test_corrupt_idx_file_is_named(tmp_path):
    folder = tmp_path / "fashion-mnist"
    write_fashion_mnist(folder, 20, 5, gz=True)
    bad = folder / "train-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:100])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        load_dataset("fashion-mnist", data_dir=tmp_path)
    assert len(load_dataset("fashion-mnist", "test", data_dir=tmp_path)) == 5
    swapped = folder / "t10k-labels-idx1-ubyte.gz"
    swapped.write_bytes((folder / "t10k-images-idx3-ubyte.gz").read_bytes())
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz has IDX magic number 0x0803, expected 0x0801"):
        load_dataset("fashion-mnist", "test", data_dir=tmp_path)


def test_read_idx_checks_header_against_size(tmp_path):
    path = tmp_path / "values.idx"
    values = np.arange(24, dtype=">i2").reshape(2, 3, 4)
    header = bytes([0, 0, 0x0B, 3]) + b"".join(n.to_bytes(4, "big") for n in (2, 3, 4))
    path.write_bytes(header + values.tobytes())
    result = read_idx(path)
    assert result.dtype == np.int16 and result.dtype.isnative and np.array_equal(result, values)
    path.write_bytes(header + values.tobytes() + b"\0")
    with pytest.raises(DataError, match=r"values.idx holds 65 bytes but its IDX header \(2, 3, 4\) needs 64"):
        read_idx(path)
    path.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(path)
    with pytest.raises(DataError, match="cannot read IDX file"):
        read_idx(tmp_path / "missing.idx")


# --------------------------------------------------------------------------- cifar


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar10_tree(tmp_path, protocol):
    batches = write_cifar10(tmp_path, protocol)
    train_full = load_dataset("cifar10", "train_full", data_dir=tmp_path)
    assert len(train_full) == 20 and len(load_dataset("cifar10", "test", data_dir=tmp_path)) == 6
    assert len(load_dataset("cifar10", "val", data_dir=tmp_path)) == 1
    assert len(load_dataset("cifar10", "train", data_dir=tmp_path)) == 19
    images, labels = train_full.tensors()
    first = batches["data_batch_1"]
    assert labels[:4].tolist() == first[b"labels"]
    assert torch.equal(images[1, 0] * 255, torch.from_numpy(first[b"data"][1, :1024].reshape(32, 32)).float())
    assert torch.equal(images[1, 2] * 255, torch.from_numpy(first[b"data"][1, 2048:].reshape(32, 32)).float())
    assert labels[4:8].tolist() == batches["data_batch_2"][b"labels"]
    info = train_full.info
    assert info.classes == data.CIFAR10_CLASSES and info.phrases[1] == "car" and info.phrases[0] == "airplane"
    assert info.normalization == {"mean": [0.4914, 0.4822, 0.4465], "std": [0.2470, 0.2435, 0.2616]}
    assert info.augmentation == "crop_flip"


def test_cifar10_builtin_phrases_without_files(no_system_data):
    info = dataset_info("cifar10")
    assert info.classes[1] == "automobile" and info.phrases[1] == "car"


def test_cifar100_tree_and_meta_names(tmp_path):
    splits = write_cifar100(tmp_path)
    test = load_dataset("cifar100", "test", data_dir=tmp_path)
    assert test.labels.tolist() == splits["test"][b"fine_labels"]
    assert len(load_dataset("cifar100", "train_full", data_dir=tmp_path)) == 8
    assert len(data.CIFAR100_CLASSES) == 100 and list(data.CIFAR100_CLASSES) == sorted(data.CIFAR100_CLASSES)
    assert test.classes == data.CIFAR100_CLASSES
    assert test.phrases[1] == "aquarium fish" and test.phrases[test.classes.index("maple_tree")] == "maple tree"
    assert test.info.normalization["mean"] == [0.5071, 0.4865, 0.4409]
    renamed = [name.upper() for name in data.CIFAR100_CLASSES]
    write_cifar100(tmp_path / "renamed", renamed)
    info = dataset_info("cifar100", tmp_path / "renamed")
    assert info.classes[1] == "AQUARIUM_FISH" and info.phrases[1] == "aquarium fish"
    (tmp_path / "cifar-100-python" / "meta").unlink()
    assert load_dataset("cifar100", "test", data_dir=tmp_path).classes == data.CIFAR100_CLASSES


class RunsCode:
    """Pickles into a call of os.system: loading it must never run the command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_pickle_that_would_run_code_is_refused(tmp_path):
    write_cifar10(tmp_path)
    marker = tmp_path / "ran"
    write_pickle(
        tmp_path / "cifar-10-batches-py" / "data_batch_1",
        {b"data": RunsCode(f"touch {marker}"), b"labels": [0]},
    )
    with pytest.raises(DataError, match=r"data_batch_1 asks to run posix\.system; refused"):
        load_dataset("cifar10", data_dir=tmp_path)
    write_pickle(tmp_path / "cifar-10-batches-py" / "batches.meta", RunsCode(f"touch {marker}"))
    with pytest.raises(DataError, match="batches.meta asks to run"):
        dataset_info("cifar10", tmp_path)
    assert not marker.exists()


def test_damaged_cifar_files_are_named(tmp_path):
    write_cifar10(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    (folder / "test_batch").write_bytes(b"\x80\x04garbage")
    with pytest.raises(DataError, match="cannot read .*test_batch"):
        load_dataset("cifar10", "test", data_dir=tmp_path)
    write_pickle(folder / "test_batch", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]})
    with pytest.raises(DataError, match="test_batch holds labels outside 0..9"):
        load_dataset("cifar10", "test", data_dir=tmp_path)
    write_pickle(folder / "test_batch", {b"data": np.zeros((2, 3072), np.uint8)})
    with pytest.raises(DataError, match="test_batch has no 'labels' entry"):
        load_dataset("cifar10", "test", data_dir=tmp_path)


# --------------------------------------------------------------------------- tinyimagenet


@pytest.mark.parametrize("reorganised_val", [False, True])
def test_tinyimagenet_tree(tmp_path, reorganised_val):
    write_tinyimagenet(tmp_path, reorganised_val)
    info = dataset_info("tinyimagenet", tmp_path)
    assert info.classes == ("goldfish", "European fire salamander", "tabby")  # sorted wnids
    assert info.phrases == ("goldfish", "european fire salamander", "tabby")
    assert info.image_shape == (3, 64, 64) and info.augmentation == "crop_flip"
    assert info.normalization == {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    train_full = load_dataset("tinyimagenet", "train_full", data_dir=tmp_path)
    assert train_full.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    test = load_dataset("tinyimagenet", "test", data_dir=tmp_path)
    assert sorted(test.labels.tolist()) == [0, 0, 1, 1, 2, 2]
    images, labels = test.tensors()
    assert images.shape == (6, 3, 64, 64) and images.dtype == torch.float32
    colors = torch.tensor([TINY_COLORS[wnid] for wnid in sorted(TINY_WNIDS)]).float() / 255
    assert torch.allclose(images.mean((2, 3)), colors[labels], atol=0.05)
    image, label = test[2]
    assert torch.equal(image, images[2]) and label == labels[2]
    assert len(load_dataset("tinyimagenet", "val", data_dir=tmp_path)) == 1
    assert len(load_dataset("tinyimagenet", "train", data_dir=tmp_path)) == 8


def test_tinyimagenet_odd_images_become_rgb_64(tmp_path):
    folder = write_tinyimagenet(tmp_path)
    Image.new("L", (32, 48), 128).save(folder / "train" / "n01443537" / "images" / "n01443537_0.JPEG")
    image, _ = load_dataset("tinyimagenet", "train_full", data_dir=tmp_path)[0]
    assert image.shape == (3, 64, 64) and torch.allclose(image, torch.full_like(image, 128 / 255), atol=0.02)
    (folder / "train" / "n01443537" / "images" / "n01443537_1.JPEG").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="cannot read image .*n01443537_1.JPEG"):
        load_dataset("tinyimagenet", "train_full", data_dir=tmp_path)[1]


def test_tinyimagenet_info_needs_files(tmp_path, no_system_data):
    with pytest.raises(DataError, match="tinyimagenet not found: looked for tiny-imagenet-200/"):
        dataset_info("tinyimagenet", tmp_path)


# --------------------------------------------------------------------------- missing data, downloads


def test_missing_data_names_the_places_searched(monkeypatch, tmp_path, no_system_data):
    monkeypatch.setenv("SEMPROBE_DATA", str(tmp_path / "env"))
    with pytest.raises(DataError) as caught:
        load_dataset("cifar10", data_dir=tmp_path / "arg")
    message = str(caught.value)
    assert "\n" not in message and "cifar-10-batches-py/" in message
    # names the flag that fetches the files (and where they go) and the folders to put them in by hand
    assert data.CIFAR10_URL in message and "--data-dir" in message
    assert f"pass --download (download=True in Python) to fetch them from {data.CIFAR10_URL} into {tmp_path / 'arg'}" \
        in message
    for place in (tmp_path / "arg", tmp_path / "env", no_system_data, tmp_path / "cache" / "data"):
        assert str(place) in message
    with pytest.raises(DataError, match="fashion-mnist not found: looked for fashion-mnist/ or FashionMNIST/raw/"):
        load_dataset("fashion-mnist", "test")


def test_download_goes_to_data_dir_then_is_read(monkeypatch, tmp_path, no_system_data):
    fetched = []

    def fake_fetch(url, root, md5):
        fetched.append((url, root, md5))
        name = url.rsplit("/", 1)[1].removesuffix(".gz")
        count = 30 if name.startswith("train") else 5
        values = np.zeros((count, 28, 28)) if "images" in name else np.arange(count) % 10
        root.mkdir(parents=True, exist_ok=True)
        write_idx(root / name, values, gz=False)

    monkeypatch.setattr(data, "_fetch_archive", fake_fetch)
    dataset = load_dataset("fashion-mnist", "train_full", data_dir=tmp_path / "arg", download=True)
    assert len(dataset) == 30
    assert [url.rsplit("/", 1)[1] for url, _, _ in fetched] == list(data.FASHION_MNIST_MD5)
    assert {root for _, root, _ in fetched} == {tmp_path / "arg" / "FashionMNIST" / "raw"}
    assert len(load_dataset("fashion-mnist", "test", data_dir=tmp_path / "arg")) == 5  # found, no new fetch
    assert len(fetched) == 4


def test_failed_download_is_a_data_error(monkeypatch, tmp_path, no_system_data):
    def unreachable(url, root, md5):
        raise OSError("network is unreachable")

    monkeypatch.setattr(data, "_fetch_archive", unreachable)
    with pytest.raises(DataError, match=r"downloading cifar100 from https://\S+ into .*cache/data failed \(network is unreachable\)"):
        load_dataset("cifar100", download=True)


# --------------------------------------------------------------------------- augmentation


def test_random_crop_flip_is_a_shifted_window_of_the_padded_image():
    torch.manual_seed(0)
    image = torch.randint(1, 256, (3, 8, 8), dtype=torch.uint8)
    padded = torch.zeros((3, 16, 16), dtype=torch.uint8)
    padded[:, 4:12, 4:12] = image
    candidates = [padded[:, top : top + 8, left : left + 8] for top in range(9) for left in range(9)]
    candidates += [crop.flip(-1) for crop in candidates]
    outputs = [random_crop_flip(image, 4) for _ in range(50)]
    for output in outputs:
        assert output.shape == image.shape and output.dtype == torch.uint8
        assert any(torch.equal(output, candidate) for candidate in candidates)
    assert any(not torch.equal(output, image) for output in outputs)


def test_augmentation_in_getitem_only_when_asked(tmp_path):
    write_cifar10(tmp_path)
    plain = load_dataset("cifar10", "train_full", data_dir=tmp_path)
    assert plain.augmentation == "none"
    assert all(torch.equal(plain[i][0], plain.tensors([i])[0][0]) for i in range(len(plain)))
    augmented = load_dataset("cifar10", "train_full", data_dir=tmp_path, augment=True)
    assert augmented.augmentation == "crop_flip"
    torch.manual_seed(0)
    draws = [augmented[i % 5] for i in range(20)]
    for i, (image, label) in enumerate(draws):
        assert image.shape == (3, 32, 32) and 0 <= image.min() and image.max() <= 1
        assert label == plain.labels[i % 5]
    assert any(not torch.equal(image, plain[i % 5][0]) for i, (image, _) in enumerate(draws))
    assert torch.equal(augmented.tensors()[0], plain.tensors()[0])
    assert augmented.subset([0, 1]).augmentation == "crop_flip"


def test_crop_padding_is_4_for_32_and_8_for_64(monkeypatch, tmp_path):
    paddings = []
    # ImageDataset looks the augmentation up in its own module
    monkeypatch.setattr(data.dataset, "random_crop_flip", lambda image, padding: paddings.append(padding) or image)
    write_cifar10(tmp_path)
    write_tinyimagenet(tmp_path)
    load_dataset("cifar10", data_dir=tmp_path, augment=True)[0]
    load_dataset("tinyimagenet", data_dir=tmp_path, augment=True)[0]
    assert paddings == [4, 8]


def test_small_sets_have_no_default_augmentation_but_can_force_it():
    assert load_dataset("digits", "test", augment=True).augmentation == "none"
    forced = load_dataset("fake:3x32x32:4", "test", augment="crop_flip")
    torch.manual_seed(1)
    assert any(not torch.equal(forced[0][0], forced.tensors([0])[0][0]) for _ in range(10))


# --------------------------------------------------------------------------- phrases and aliases


def test_default_phrase():
    assert default_phrase("aquarium_fish") == "aquarium fish"
    assert default_phrase("T-shirt/top") == "t-shirt top"
    assert default_phrase("Ankle boot") == "ankle boot"


def test_aliases_from_json_text_and_dict(tmp_path):
    json_file = tmp_path / "aliases.json"
    json_file.write_text(json.dumps({"class1": "one thing", "class3": "three"}))
    text_file = tmp_path / "aliases.txt"
    text_file.write_text("# phrases for GloVe\n\nclass1 = one thing\n  class3=three  \n")
    assert read_aliases(json_file) == read_aliases(text_file) == {"class1": "one thing", "class3": "three"}
    for aliases in (json_file, str(text_file), {"class1": "one thing", "class3": "three"}):
        dataset = load_dataset("fake", "test", aliases=aliases)
        assert dataset.phrases[:4] == ("class0", "one thing", "class2", "three")
        assert dataset.info.phrases == dataset.phrases
    override = tmp_path / "car.txt"
    override.write_text("automobile = motor car\n")
    assert dataset_info("cifar10", aliases=override).phrases[1] == "motor car"


def test_alias_file_with_unknown_class_lists_both(tmp_path):
    text_file = tmp_path / "aliases.txt"
    text_file.write_text("automobile = car\ncar = auto\nlorry = truck\n")
    with pytest.raises(DataError, match=r"aliases.txt names classes that cifar10 does not have: car, lorry; "
                       r"its classes are: airplane, automobile, bird"):
        dataset_info("cifar10", aliases=text_file)


@pytest.mark.parametrize(
    "content, message",
    [
        ("class1 car\n", r"aliases.txt:1: expected 'class name = phrase'"),
        ("class1 = \n", r"aliases.txt:1: expected 'class name = phrase'"),
        ("class1 = a\nclass1 = b\n", r"aliases.txt:2: class 'class1' is given a phrase twice"),
        ('{"class1": 3}', r"the phrase for 'class1' must be a non-empty string"),
        ('{"class1": ', r"is not valid JSON"),
    ],
)
def test_malformed_alias_files(tmp_path, content, message):
    path = tmp_path / "aliases.txt"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        read_aliases(path)


def test_missing_alias_file(tmp_path):
    with pytest.raises(DataError, match="cannot read alias file"):
        load_dataset("fake", aliases=tmp_path / "nope.txt")


# --------------------------------------------------------------------------- ImageDataset


def test_image_dataset_subset_tensors_and_loader():
    dataset = load_dataset("fake:3x8x8:3:30:12", "test")
    subset = dataset.subset([5, 0, 7])
    assert isinstance(subset, ImageDataset) and len(subset) == 3
    assert subset.split == "test" and subset.info is dataset.info and subset.classes == dataset.classes
    images, labels = dataset.tensors(torch.tensor([5, 0, 7]))
    assert torch.equal(subset.tensors()[0], images) and torch.equal(subset.labels, labels)
    assert dataset.tensors([])[0].shape == (0, 3, 8, 8)
    batch_images, batch_labels = next(iter(torch.utils.data.DataLoader(dataset, batch_size=4)))
    assert batch_images.shape == (4, 3, 8, 8) and torch.equal(batch_labels, dataset.labels[:4])
    assert repr(dataset) == "ImageDataset('fake:3x8x8:3:30:12', split='test', n=12)"


def test_image_dataset_checks_its_inputs():
    info = dataset_info("fake:1x4x4:2")
    with pytest.raises(DataError, match=r"images must be uint8 of shape \(N, 1, 4, 4\)"):
        ImageDataset(torch.zeros((2, 1, 4, 4)), [0, 1], info, "test")
    with pytest.raises(DataError, match="the number of images and of labels differ"):
        ImageDataset(torch.zeros((2, 1, 4, 4), dtype=torch.uint8), [0], info, "test")


def test_import_is_cheap():
    code = "import sys, semprobe.data; print(sorted({'torchvision', 'sklearn', 'PIL'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
