"""The command line: fast help, info and embed end to end, one-line user errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from semprobe.models.checkpoint import save_checkpoint
from semprobe.cli import main
from semprobe.models import create_model

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def run_cli(args, capsys):
    """Run ``semprobe ARGS`` in-process; return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def assert_user_error(code, err, *fragments):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("semprobe: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


def test_import_of_the_cli_is_light():
    code = ("import sys, semprobe.cli; "
            "print([m for m in ('torch', 'gensim', 'open_clip', 'seaborn', 'sklearn') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_help_and_version_through_the_console_entry_point():
    out = subprocess.run([sys.executable, "-m", "semprobe", "--help"], capture_output=True, text=True, check=True)
    for command in ("info", "embed"):
        assert command in out.stdout
    version = subprocess.run([sys.executable, "-m", "semprobe", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and "semprobe, version" in version.stdout


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = create_model("small_cnn", num_classes=10, in_channels=1, normalization={"mean": [0.286], "std": [0.353]})
    return save_checkpoint(tmp_path / "ck.pt", model, dataset="fashion-mnist", classes=FASHION_CLASSES,
                           epoch=2, config={"method": "trades", "beta": 6.0}, metrics={"clean_acc": 0.8})


def test_info_describes_a_checkpoint(checkpoint, capsys):
    code, out, err = run_cli(["info", "--ckpt", str(checkpoint)], capsys)
    assert code == 0, err
    assert "small_cnn" in out and "fashion-mnist" in out and "Ankle boot" in out
    assert "method=trades" in out and "clean_acc=0.8" in out and "heads" in out
    code, out, _ = run_cli(["info", "--ckpt", str(checkpoint), "--json"], capsys)
    described = json.loads(out)
    assert described["arch"] == "small_cnn" and described["num_classes"] == 10
    assert described["normalization"] == {"mean": [0.286], "std": [0.353]}
    assert described["heads"] is None and described["epoch"] == 2


def test_info_on_a_foreign_checkpoint(tmp_path, capsys):
    model = create_model("small_cnn", num_classes=3, in_channels=1)
    torch.save({"net": {"module." + k: v for k, v in model.state_dict().items()}}, tmp_path / "f.pt")
    code, out, err = run_cli(["info", "--ckpt", str(tmp_path / "f.pt")], capsys)
    assert_user_error(code, err, "--arch")
    code, out, err = run_cli(["info", "--ckpt", str(tmp_path / "f.pt"), "--arch", "small_cnn",
                              "--normalization", "none", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["num_classes"] == 3


@pytest.mark.parametrize("args, fragment", [
    (["info", "--ckpt", "/nonexistent/ck.pt"], "does not exist"),
    (["info"], "--ckpt"),
    (["info", "--ckpt", "x.pt", "--num-classes", "zero"], "zero"),
    (["embed", "--dataset", "imagenet-21k"], "imagenet-21k"),
    (["embed", "--dataset", "digits", "--embedding", "word2vec-magic"], "word2vec-magic"),
    (["nonsense-command"], "nonsense-command"),
])
def test_user_errors_are_one_line_with_exit_code_2(args, fragment, capsys):
    code, _, err = run_cli(args, capsys)
    assert_user_error(code, err, fragment)


def test_truncated_checkpoint_is_a_user_error(checkpoint, tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(checkpoint.read_bytes()[:1000])
    code, _, err = run_cli(["info", "--ckpt", str(bad)], capsys)
    assert_user_error(code, err, "truncated")


def test_embed_prints_the_cosine_matrix_and_writes_vectors(tmp_path, capsys):
    out_file = tmp_path / "glove.npy"
    code, out, err = run_cli(["embed", "--dataset", "digits", "--embedding", "glove", "--out", str(out_file)], capsys)
    assert code == 0, err
    assert "zero" in out and "nine" in out and "1.00" in out
    vectors = np.load(out_file)
    assert vectors.shape == (10, 50)
    sidecar = json.loads(out_file.with_suffix(".json").read_text())
    assert sidecar["classes"][0] == "zero" and sidecar["provider"] == "glove"

    before = out_file.read_bytes()
    code, _, err = run_cli(["embed", "--dataset", "digits", "--out", str(out_file)], capsys)
    assert_user_error(code, err, "--overwrite")
    assert out_file.read_bytes() == before


def test_embed_refuses_a_bad_out_path_before_any_work(tmp_path, capsys):
    code, _, err = run_cli(["embed", "--dataset", "digits", "--out", str(tmp_path / "v.txt")], capsys)
    assert_user_error(code, err, ".npy")
    assert list(tmp_path.iterdir()) == []


def test_embed_with_aliases_and_an_oov_phrase(tmp_path, capsys):
    aliases = tmp_path / "aliases.txt"
    aliases.write_text("zero = qqqzzzword\n")
    code, _, err = run_cli(["embed", "--dataset", "digits", "--aliases", str(aliases)], capsys)
    assert_user_error(code, err, "qqqzzzword")
    aliases.write_text("zero = nothing\n")
    code, out, err = run_cli(["embed", "--dataset", "digits", "--aliases", str(aliases)], capsys)
    assert code == 0, err


def test_embed_many_classes_lists_nearest_neighbours(capsys):
    code, out, err = run_cli(["embed", "--dataset", "fake:1x8x8:25", "--embedding", "random:8:1"], capsys)
    assert code == 0, err
    assert "nearest classes" in out and "class24" in out
