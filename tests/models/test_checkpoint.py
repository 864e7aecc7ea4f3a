"""Checkpoint schema: round trip, foreign formats and prefixes, safety, clear errors."""

import os

import numpy as np
import pytest
import torch

from semprobe.models.checkpoint import FORMAT, load_checkpoint, save_checkpoint, strip_prefixes
from semprobe.errors import CheckpointError
from semprobe.models import ProjectionHeads, create_model
from semprobe.words import ClassVectors

NORM = {"mean": [0.5], "std": [0.25]}


@pytest.fixture
def model():
    torch.manual_seed(0)
    net = create_model("small_cnn", num_classes=4, in_channels=1, normalization=NORM)
    # give BatchNorm non-trivial running statistics so a round trip is a real check
    net.train()
    with torch.no_grad():
        net(torch.rand(16, 1, 8, 8))
    return net.eval()


@pytest.fixture
def images():
    return torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def test_round_trip_keeps_weights_and_context(tmp_path, model, images):
    heads = ProjectionHeads(image_dim=model.feature_dim, word_dim=3, hidden_dim=8, out_dim=4)
    words = ClassVectors(provider="random:3", classes=("a", "b", "c", "d"), phrases=("a", "b", "c", "d"),
                         vectors=torch.randn(4, 3).numpy())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(images).sum().backward()
    optimizer.step()
    path = save_checkpoint(
        tmp_path / "ck.pt", model, dataset="fake", classes=["a", "b", "c", "d"], heads=heads,
        word_vectors=words, epoch=3, optimizer=optimizer, config={"lr": 0.1, "eps": 0.1, "tags": ["x"]},
        metrics={"val_pgd10": 0.42},
    )
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == FORMAT and raw["arch"] == "small_cnn"
    assert not any("norm" in k for k in raw["model"])  # normalization is metadata, not weights

    loaded = load_checkpoint(path)
    torch.testing.assert_close(loaded.model(images), model(images))
    assert loaded.normalization == NORM
    assert (loaded.dataset, loaded.classes, loaded.epoch) == ("fake", ["a", "b", "c", "d"], 3)
    assert loaded.config == {"lr": 0.1, "eps": 0.1, "tags": ["x"]}
    assert loaded.metrics == {"val_pgd10": 0.42}
    assert loaded.optimizer_state["param_groups"][0]["momentum"] == 0.9
    assert not loaded.model.training
    for key, value in heads.state_dict().items():
        torch.testing.assert_close(loaded.heads.state_dict()[key], value)
    assert loaded.word_vectors.provider == "random:3"
    np.testing.assert_array_equal(loaded.word_vectors.vectors, words.vectors)
    assert len(loaded.sha256) == 64


def test_unsavable_config_leaves_no_file(tmp_path, model):
    with pytest.raises(CheckpointError, match="config"):
        save_checkpoint(tmp_path / "ck.pt", model, config={"bad": object()})
    assert os.listdir(tmp_path) == []


def test_options_that_contradict_the_checkpoint_are_refused(tmp_path, model):
    path = save_checkpoint(tmp_path / "ck.pt", model)
    with pytest.raises(CheckpointError, match="num_classes=4"):
        load_checkpoint(path, num_classes=10)


@pytest.mark.parametrize("container", [None, "state_dict", "model", "net"])
@pytest.mark.parametrize("prefix", ["", "module.", "_orig_mod.", "module._orig_mod."])
def test_foreign_formats_load_with_arch(tmp_path, model, images, container, prefix):
    state = {prefix + k: v for k, v in model.state_dict().items()}
    obj = state if container is None else {container: state, "epoch": 7}
    path = tmp_path / "foreign.pt"
    torch.save(obj, path)
    loaded = load_checkpoint(path, arch="small_cnn", normalization="0.5/0.25")
    assert loaded.foreign and loaded.num_classes == 4 and loaded.in_channels == 1
    torch.testing.assert_close(loaded.model(images), model(images))


def test_foreign_without_arch_or_normalization_says_what_to_pass(tmp_path, model):
    path = tmp_path / "foreign.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(CheckpointError, match="--arch"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="--normalization"):
        load_checkpoint(path, arch="small_cnn")


def test_only_true_prefixes_are_stripped():
    t = torch.zeros(1)
    assert strip_prefixes({"module.a": t, "module.b": t}) == {"a": t, "b": t}
    partial = {"module.a": t, "b": t}
    assert strip_prefixes(partial) == partial
    assert strip_prefixes({"a.module.b": t}) == {"a.module.b": t}


def test_strict_mismatch_names_missing_and_unexpected_keys(tmp_path, model):
    state = dict(model.state_dict())
    del state["linear.bias"]
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "foreign.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"missing keys: linear\.bias.*unexpected keys: extra\.weight"):
        load_checkpoint(path, arch="small_cnn", normalization="none")


def test_shape_mismatch_is_reported(tmp_path, model):
    path = tmp_path / "foreign.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(CheckpointError, match="size mismatch"):
        load_checkpoint(path, arch="small_cnn", num_classes=7, normalization="none")


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"model": _RunsCode(marker)}, path)
    with pytest.raises(CheckpointError, match="could run code"):
        load_checkpoint(path, arch="small_cnn", normalization="none")
    assert not marker.exists()


def test_truncated_and_missing_files_give_clear_errors(tmp_path, model):
    path = save_checkpoint(tmp_path / "ck.pt", model)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or not a PyTorch checkpoint"):
        load_checkpoint(truncated)
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="truncated or not a PyTorch checkpoint"):
        load_checkpoint(tmp_path / "text.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_wrn_with_trades_sub_block1_loads_strictly(tmp_path):
    torch.manual_seed(0)
    public = create_model("wrn_28_10", num_classes=10, sub_block1=True)
    path = tmp_path / "trades_wrn.pt"
    torch.save({"state_dict": {"module." + k: v for k, v in public.state_dict().items()}}, path)
    loaded = load_checkpoint(path, arch="wrn_28_10", normalization="none")
    assert loaded.arch_kwargs == {"sub_block1": True}
    assert loaded.model.state_dict().keys() == public.state_dict().keys()
