"""The Python API: ``import semprobe as sp`` (lazy names), ``sp.load_model`` and the result
objects' ``to_dict`` / ``from_dict`` / ``to_frame`` / ``str``. Small tensors, no network."""

import json
import subprocess
import sys

import pytest
import torch
import torchvision

import semprobe as sp
from conftest import ZOO_NAME, ZOO_SPEC
from semprobe.errors import CheckpointError, ConfigError, ModelError

API_NAMES = ["load_dataset", "create_model", "wrap_model", "load_checkpoint", "load_model", "class_vectors", "pgd",
             "fgsm", "autoattack", "evaluate", "extract_features", "CCA", "cca_report", "similarity_report",
             "alpha_curve"]
FAKE = "fake:3x32x32:10"


# --------------------------------------------------------------------------- the lazy namespace


def test_import_semprobe_does_not_import_torch():
    code = "import semprobe, sys; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "False"


def test_every_api_name_resolves_and_is_listed():
    assert set(API_NAMES) <= set(sp.__all__) and set(API_NAMES) <= set(dir(sp))
    for name in API_NAMES:
        value = getattr(sp, name)
        assert callable(value) and value.__name__ == name, name
    assert sp.load_model is sp.models.load_model and sp.evaluate is sp.evaluation.evaluate
    with pytest.raises(AttributeError, match="no attribute 'load_modle'"):
        sp.load_modle  # noqa: B018


# --------------------------------------------------------------------------- load_model


def test_load_model_from_a_semprobe_checkpoint(tmp_path):
    from semprobe.checkpoint import save_checkpoint

    torch.manual_seed(0)
    saved = sp.create_model("small_cnn", num_classes=10, in_channels=1, normalization="fashion-mnist").eval()
    save_checkpoint(tmp_path / "cnn.pt", saved, dataset="fashion-mnist")
    model = sp.load_model(tmp_path / "cnn.pt")
    assert model.arch == "small_cnn" and not model.training and model.normalization == saved.normalization
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(model(x), saved(x), rtol=0, atol=0)


def test_load_model_builds_a_torchvision_architecture():
    model = sp.load_model("torchvision:resnet18", num_classes=10, normalization="cifar10")
    assert isinstance(model, sp.models.WrappedModel) and not model.training
    assert model.arch == "torchvision:resnet18" and model.num_classes == 10
    assert model.normalization["mean"][0] == pytest.approx(0.4914)
    with torch.no_grad():
        assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert model.extract(torch.rand(2, 3, 32, 32), ["penultimate"])["penultimate"].shape == (2, 512)


def test_load_model_reads_weights_for_an_architecture(tmp_path):
    net = torchvision.models.resnet18(num_classes=10).eval()
    torch.save(net.state_dict(), tmp_path / "tv.pt")
    x = torch.rand(2, 3, 32, 32)
    for model in (sp.load_model("torchvision:resnet18", weights=tmp_path / "tv.pt", normalization="none"),
                  sp.load_model(tmp_path / "tv.pt", arch="torchvision:resnet18", normalization="none")):
        with torch.no_grad():
            torch.testing.assert_close(model(x), net(x), rtol=0, atol=0)


def test_load_model_on_a_robustbench_entry(zoo_dir):
    model = sp.load_model(f"robustbench:{ZOO_NAME}", dataset="cifar10", model_dir=zoo_dir)
    assert model.arch == ZOO_SPEC and model.normalization is None and not model.training
    with torch.no_grad():
        assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_load_model_wraps_a_module_and_builds_semprobe_architectures():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3)).train()
    model = sp.load_model(net)
    assert isinstance(model, sp.models.WrappedModel) and not model.training and model.module is net
    assert sp.load_model("small_cnn", num_classes=4, in_channels=1).num_classes == 4


@pytest.mark.parametrize("source, options, error, fragment", [
    ("missing.pt", {}, CheckpointError, "neither a checkpoint file nor an architecture"),
    ("torchvision:resnet18", {}, ModelError, "pass num_classes="),
    ("torchvision:resnet81", {"num_classes": 10}, ModelError, "close matches: resnet18"),
    ("keras:resnet18", {"num_classes": 10}, ModelError, "torchvision:NAME or timm:NAME"),
    ("small_cnn", {"num_classes": 10, "arch": "resnet18"}, ConfigError, "does not take arch="),
    ("small_cnn", {"num_classes": 10, "threat_model": "L2"}, ConfigError, "does not take threat_model="),
    (f"robustbench:{ZOO_NAME}", {}, CheckpointError, "needs the zoo's dataset"),
    (f"robustbench:{ZOO_NAME}", {"dataset": "cifar10", "num_classes": 10}, ConfigError, "num_classes="),
    (3, {}, ConfigError, "cannot load a int"),
])
def test_load_model_refusals_are_one_line(source, options, error, fragment):
    with pytest.raises(error, match=fragment) as info:
        sp.load_model(source, **options)
    assert "\n" not in str(info.value)
