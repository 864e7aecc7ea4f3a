"""``--download`` on the command line: one flag for datasets (and RobustBench files), never the network in tests."""

import json

import numpy as np
import pytest
import torch

from semprobe import data
from semprobe.models.checkpoint import save_checkpoint
from semprobe.models import create_model


@pytest.fixture(autouse=True)
def offline(monkeypatch, no_network, no_system_data):
    """No network, no system data folders, no $SEMPROBE_DATA."""
    monkeypatch.delenv("SEMPROBE_DATA", raising=False)


@pytest.fixture
def fashion_ckpt(tmp_path):
    torch.manual_seed(0)
    model = create_model("small_cnn", num_classes=10, in_channels=1)
    return save_checkpoint(tmp_path / "fm.pt", model, dataset="fashion-mnist", classes=list(data.FASHION_MNIST_CLASSES),
                           epoch=1, config={}, metrics={})


def fake_fashion_fetch(fetched):
    """A stand-in for the archive fetcher that writes tiny IDX files where the real one would."""

    def fetch(url, root, md5):
        fetched.append((url, root))
        name = url.rsplit("/", 1)[1].removesuffix(".gz")
        count = 40 if name.startswith("train") else 20
        values = np.full((count, 28, 28), 7) if "images" in name else np.arange(count) % 10
        root.mkdir(parents=True, exist_ok=True)
        header = bytes([0, 0, 0x08, values.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in values.shape)
        (root / name).write_bytes(header + values.astype(np.uint8).tobytes())

    return fetch


def test_download_fetches_into_data_dir_then_evaluates(tmp_path, fashion_ckpt, run_cli, monkeypatch):
    fetched = []
    monkeypatch.setattr(data, "_fetch_archive", fake_fashion_fetch(fetched))
    target = tmp_path / "data"
    code, _, err = run_cli(["eval", "--ckpt", fashion_ckpt, "--attacks", "natural", "--download", "--data-dir", target,
                            "--out", tmp_path / "eval"])
    assert code == 0, err
    assert {root for _, root in fetched} == {target / "FashionMNIST" / "raw"} and len(fetched) == 4
    report = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert report["metadata"]["settings"]["n"] == 20
    # the files are found the next time: no second fetch, no --download needed
    code, _, err = run_cli(["eval", "--ckpt", fashion_ckpt, "--attacks", "natural", "--data-dir", target,
                            "--out", tmp_path / "eval2"])
    assert code == 0, err
    assert len(fetched) == 4


def test_without_download_the_error_names_the_flag_and_the_folder(tmp_path, fashion_ckpt, run_cli, monkeypatch):
    monkeypatch.setenv("SEMPROBE_DATA", str(tmp_path / "env"))
    code, _, err = run_cli(["eval", "--ckpt", fashion_ckpt, "--out", tmp_path / "eval"])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "pass --download" in err and data.FASHION_MNIST_URL in err and str(tmp_path / "env") in err
    assert not (tmp_path / "eval").exists()


def test_a_failed_download_is_one_line_naming_the_url_and_folder(tmp_path, fashion_ckpt, run_cli, monkeypatch):
    def unreachable(url, root, md5):
        raise OSError("<urlopen error [Errno -3] Temporary failure\nin name resolution>")

    monkeypatch.setattr(data, "_fetch_archive", unreachable)
    code, _, err = run_cli(["eval", "--ckpt", fashion_ckpt, "--dataset", "cifar10", "--download",
                            "--data-dir", tmp_path / "data", "--out", tmp_path / "eval"])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert data.CIFAR10_URL in err and str(tmp_path / "data") in err and "cifar-10-batches-py/" in err
    assert not (tmp_path / "eval").exists()


@pytest.mark.parametrize("command", ["eval", "cca", "simmatrix", "alpha-curve", "figures", "embed", "info"])
def test_every_command_that_takes_a_dataset_has_one_download_flag(command, run_cli):
    code, out, _ = run_cli([command, "--help"])
    assert code == 0 and out.count("--download") == 1


def test_the_trainers_take_download(tmp_path, monkeypatch):
    from trainers.__main__ import main

    fetched = []
    monkeypatch.setattr(data, "_fetch_archive", fake_fashion_fetch(fetched))
    out = tmp_path / "run"
    assert main(["natural", "--dataset", "fashion-mnist", "--arch", "small_cnn", "--epochs", "1", "--val-size", "10",
                 "--batch-size", "10", "--download", "--data-dir", str(tmp_path / "data"), "--quiet",
                 "--out", str(out)]) == 0
    assert len(fetched) == 4 and (out / "best.pt").is_file()
