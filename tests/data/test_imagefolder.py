"""``imagefolder:PATH`` datasets: torchvision's ImageFolder layout, from Python, the commands and the trainers."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from semprobe.models.checkpoint import save_checkpoint
from semprobe.data import dataset_info, load_dataset
from semprobe.errors import ConfigError, DataError
from semprobe.models import create_model

# class folder -> colour of its images; the folder names exercise the phrase rules
COLOURS = {"golden_retriever": (200, 30, 30), "tabby-cat": (30, 200, 30), "zebra": (30, 30, 200)}
CLASSES = tuple(sorted(COLOURS))


def write_tree(root, test_name="test", sizes=(20, 16), per_class=(6, 2), skip_test_class=None):
    """A tiny ImageFolder tree; every image of a class is its colour (width x height ``sizes``)."""
    for split, count in (("train", per_class[0]), (test_name, per_class[1])):
        for name, colour in COLOURS.items():
            if split != "train" and name == skip_test_class:
                continue
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                file = folder / ("sub" if i == 0 else ".") / f"{i}.png"  # ImageFolder also reads nested files
                file.parent.mkdir(exist_ok=True)
                Image.new("RGB", sizes, colour).save(file)
    (root / "train" / "README.txt").write_text("not an image, not a class")
    return f"imagefolder:{root}"


def test_classes_phrases_and_shape_come_from_the_folders(tmp_path):
    name = write_tree(tmp_path / "pets")
    info = dataset_info(name)
    assert info.classes == CLASSES and info.num_classes == 3
    assert info.phrases == ("golden retriever", "tabby cat", "zebra")
    assert info.image_shape == (3, 16, 20)  # height x width of the first training image
    assert info.normalization is None and info.augmentation == "crop_flip"
    assert dataset_info(name, image_size=12).image_shape == (3, 12, 12)
    aliased = dataset_info(name, aliases={"tabby-cat": "cat"})
    assert aliased.phrases == ("golden retriever", "cat", "zebra")


def test_splits_labels_and_pixels(tmp_path):
    name = write_tree(tmp_path / "pets")
    train_full = load_dataset(name, "train_full", image_size=8)
    assert train_full.labels.tolist() == [0] * 6 + [1] * 6 + [2] * 6
    test = load_dataset(name, "test", image_size=8)
    images, labels = test.tensors()
    assert images.shape == (6, 3, 8, 8) and labels.tolist() == [0, 0, 1, 1, 2, 2]
    expected = torch.tensor([COLOURS[c] for c in CLASSES], dtype=torch.float32)[labels] / 255
    assert torch.allclose(images.mean((2, 3)), expected, atol=1e-6)
    val = load_dataset(name, "val", val_size=3, image_size=8)
    train = load_dataset(name, "train", val_size=3, image_size=8)
    assert sorted(val.labels.tolist()) == [0, 1, 2] and len(train) == 15
    # without --image-size every image comes at the first training image's size
    assert load_dataset(name, "test").tensors()[0].shape == (6, 3, 16, 20)


def test_val_folder_is_the_test_split_when_there_is_no_test_folder(tmp_path):
    name = write_tree(tmp_path / "pets", test_name="val", skip_test_class="zebra")
    test = load_dataset(name, "test")
    assert test.labels.tolist() == [0, 0, 1, 1]  # a test folder may lack a class; labels follow train/


@pytest.mark.parametrize("break_it, message", [
    (lambda root: None, "is not a folder"),
    (lambda root: (root / "test").mkdir(parents=True), "has no train/ folder"),
    (lambda root: (root / "train" / "a").mkdir(parents=True), "has neither a test/ nor a val/ folder"),
])
def test_a_wrong_tree_is_one_line(tmp_path, break_it, message):
    root = tmp_path / "broken"
    break_it(root)
    with pytest.raises(DataError, match=message) as caught:
        dataset_info(f"imagefolder:{root}")
    assert "\n" not in str(caught.value)


def test_unknown_test_classes_empty_folders_and_one_class_are_refused(tmp_path):
    name = write_tree(tmp_path / "pets")
    (tmp_path / "pets" / "test" / "unicorn").mkdir()
    with pytest.raises(DataError, match="class folders that .* lacks: unicorn"):
        load_dataset(name, "test")
    lonely = tmp_path / "lonely"
    (lonely / "train" / "only").mkdir(parents=True)
    (lonely / "test").mkdir()
    with pytest.raises(DataError, match="holds 1 class folder"):
        dataset_info(f"imagefolder:{lonely}")
    empty = tmp_path / "empty"
    for split in ("train", "test"):
        for cls in ("a", "b"):
            (empty / split / cls).mkdir(parents=True)
    with pytest.raises(DataError, match="no images under"):
        dataset_info(f"imagefolder:{empty}")


def test_image_size_is_checked_and_only_for_imagefolders(tmp_path):
    name = write_tree(tmp_path / "pets")
    with pytest.raises(ConfigError, match="image size must be a whole number of pixels from 1 to 4096"):
        dataset_info(name, image_size=0)
    with pytest.raises(ConfigError, match="applies to imagefolder:PATH datasets only"):
        load_dataset("digits", image_size=8)
    with pytest.raises(ConfigError, match="names no folder"):
        dataset_info("imagefolder:")


@pytest.fixture
def pets_model(tmp_path):
    """A random 3-class small CNN on 8x8 RGB, saved as a semprobe checkpoint of the pets folder."""
    name = write_tree(tmp_path / "pets")
    torch.manual_seed(0)
    model = create_model("small_cnn", num_classes=3, in_channels=3)
    path = save_checkpoint(tmp_path / "pets.pt", model, dataset=name, classes=list(CLASSES), epoch=1, config={},
                           metrics={})
    return name, path


def test_eval_and_embed_commands_read_an_imagefolder(tmp_path, pets_model, run_cli):
    name, path = pets_model
    code, _, err = run_cli(["eval", "--ckpt", path, "--attacks", "natural,pgd5", "--eps", "8/255", "--image-size",
                            "8", "--out", tmp_path / "eval"])
    assert code == 0, err
    report = json.loads((tmp_path / "eval" / "eval.json").read_text())
    settings = report["metadata"]["settings"]
    assert settings["dataset"] == name and settings["n"] == 6
    code, out, err = run_cli(["embed", "--dataset", name, "--embedding", "random:8", "--aliases",
                              _aliases(tmp_path)])
    assert code == 0, err
    assert "imagefolder:" in out and "3 classes embedded" in out


def _aliases(tmp_path):
    path = tmp_path / "aliases.txt"
    path.write_text("tabby-cat = cat\n")
    return path


def test_simmatrix_on_an_imagefolder_with_aliases(tmp_path, pets_model, run_cli):
    name, path = pets_model
    code, _, err = run_cli(["simmatrix", "--ckpt", path, "--image-size", "8", "--embedding", "random:8",
                            "--aliases", _aliases(tmp_path), "--n-perm", "10", "--n-boot", "10",
                            "--out", tmp_path / "sim"])
    assert code == 0, err
    result = json.loads((tmp_path / "sim" / "simmatrix.json").read_text())
    assert result["phrases"]["random:8"] == ["golden retriever", "cat", "zebra"]


def test_a_wrong_image_size_is_one_line_and_nothing_is_written(tmp_path, pets_model, run_cli):
    name, path = pets_model
    code, _, err = run_cli(["eval", "--ckpt", path, "--image-size", "0", "--out", tmp_path / "eval"])
    assert code == 2 and "--image-size" in err and "Traceback" not in err
    code, _, err = run_cli(["eval", "--ckpt", path, "--dataset", "digits", "--image-size", "8",
                            "--out", tmp_path / "eval"])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "imagefolder:PATH datasets only" in err
    assert not (tmp_path / "eval").exists()


def test_a_trainer_trains_on_an_imagefolder(tmp_path):
    from trainers.__main__ import main

    name = write_tree(tmp_path / "pets", per_class=(12, 2))
    out = tmp_path / "run"
    assert main(["natural", "--dataset", name, "--arch", "small_cnn", "--image-size", "8", "--epochs", "1",
                 "--batch-size", "8", "--val-size", "3", "--quiet", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["image_size"] == 8 and config["dataset"] == name
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["epoch"] == 1 and 0 <= last["val_clean_acc"] <= 1 and np.isfinite(last["train_loss"])
