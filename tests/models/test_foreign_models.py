"""Models from other libraries: --arch torchvision:NAME / timm:NAME and --ckpt robustbench:NAME.

Nothing downloads: architectures are built with fresh weights and saved in tmp, RobustBench's
in its own folder layout (MODEL_DIR/DATASET/THREAT_MODEL/NAME.pt).
"""

import json
import sys

import pytest
import torch
import torchvision

from conftest import ZOO_NAME, ZOO_SPEC  # the zoo_dir fixture's entry
from semprobe.models.checkpoint import load_checkpoint
from semprobe.errors import CheckpointError, ModelError
from semprobe.models import wrap_model

FAKE = "fake:3x32x32:10"


def assert_one_line_error(code, err, *fragments):
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("semprobe: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def tv_file(tmp_path_factory):
    """A torchvision resnet18 (10 classes) saved as DataParallel weights under 'state_dict'."""
    torch.manual_seed(0)
    module = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    path = tmp_path_factory.mktemp("tv") / "tv_resnet18.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in module.state_dict().items()}}, path)
    return module, path


def test_torchvision_arch_loads_strictly_and_matches_the_module(tv_file):
    module, path = tv_file
    loaded = load_checkpoint(path, arch="torchvision:resnet18", normalization="cifar10")
    assert loaded.num_classes == 10 and loaded.in_channels == 3 and loaded.arch == "torchvision:resnet18"
    x = torch.rand(3, 3, 32, 32)
    expected = wrap_model(module, normalization="cifar10")
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), expected(x), rtol=0, atol=0)
        assert loaded.model.extract(x, ["penultimate"])["penultimate"].shape == (3, 512)


def test_torchvision_mismatch_and_unknown_names(tv_file):
    _, path = tv_file
    with pytest.raises(CheckpointError, match="missing keys"):
        load_checkpoint(path, arch="torchvision:resnet34", normalization="none")
    with pytest.raises(ModelError, match="close matches: resnet18"):
        load_checkpoint(path, arch="torchvision:resnet81", normalization="none")
    with pytest.raises(ModelError, match="torchvision:NAME or timm:NAME"):
        load_checkpoint(path, arch="keras:resnet18", normalization="none")
    with pytest.raises(CheckpointError, match="--normalization"):
        load_checkpoint(path, arch="torchvision:resnet18")


def test_info_on_a_torchvision_arch_lists_taps(tv_file, run_cli):
    _, path = tv_file
    code, out, err = run_cli(["info", "--ckpt", path, "--arch", "torchvision:resnet18", "--num-classes", 10,
                              "--normalization", "cifar10", "--json"])
    assert code == 0, err
    summary = json.loads(out)
    assert summary["arch"] == "torchvision:resnet18" and summary["num_classes"] == 10
    assert {"penultimate", "logits", "layer4", "avgpool", "fc"} <= set(summary["taps"])
    code, _, err = run_cli(["info", "--ckpt", path, "--arch", "torchvision:resnet81", "--normalization", "none"])
    assert_one_line_error(code, err, "unknown torchvision classifier", "resnet18")


def test_timm_arch(tmp_path, run_cli):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    module = timm.create_model("resnet10t", pretrained=False, num_classes=10).eval()
    path = tmp_path / "timm.pt"
    torch.save(module.state_dict(), path)
    loaded = load_checkpoint(path, arch="timm:resnet10t", normalization="none")
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), module(x), rtol=0, atol=0)
    assert loaded.num_classes == 10 and loaded.model.locate_penultimate(x) == "fc"
    code, _, err = run_cli(["info", "--ckpt", path, "--arch", "timm:resnet10", "--normalization", "none"])
    assert_one_line_error(code, err, "unknown timm model", "resnet10t")


def test_timm_missing_names_the_extra(tv_file, monkeypatch, run_cli):
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm now raises ImportError
    code, _, err = run_cli(["info", "--ckpt", tv_file[1], "--arch", "timm:resnet18", "--normalization", "none"])
    assert_one_line_error(code, err, "pip install semprobe[timm]")


def test_zoo_options_agree_with_the_zoo_module():
    from semprobe.cli import common
    from semprobe.models import zoo

    assert common.ZOO_DATASETS == zoo.ZOO_DATASETS and common.ZOO_THREAT_MODELS == zoo.THREAT_MODELS


def test_zoo_spec_forms(tmp_path):
    from semprobe.models.zoo import parse_zoo_spec

    short = parse_zoo_spec(f"robustbench:{ZOO_NAME}", "cifar100", "L2", tmp_path)
    assert short.path == tmp_path / "cifar100" / "L2" / f"{ZOO_NAME}.pt"
    assert parse_zoo_spec(ZOO_SPEC, FAKE, None, tmp_path).threat_model == "Linf"  # other data: the spec says
    for spec, dataset, threat, fragment in [
        (f"robustbench:{ZOO_NAME}", FAKE, None, "--dataset cifar10|cifar100|imagenet"),
        (f"robustbench:{ZOO_NAME}", "cifar10", "Linf2", "unknown threat model"),
        (ZOO_SPEC, "cifar100", None, "drop one of them"),
        ("robustbench:a/b", "cifar10", None, "robustbench:DATASET/THREAT_MODEL/NAME"),
    ]:
        with pytest.raises(CheckpointError, match=fragment.replace("|", r"\|")):
            parse_zoo_spec(spec, dataset, threat, tmp_path)


def test_zoo_model_is_not_normalized_twice(zoo_dir):
    from semprobe.models.zoo import build_zoo_model, parse_zoo_spec

    loaded = load_checkpoint(f"robustbench:{ZOO_NAME}", dataset="cifar10", model_dir=zoo_dir)
    assert loaded.normalization is None and loaded.model.normalization is None
    assert loaded.threat_model == "Linf" and loaded.dataset == "cifar10" and loaded.num_classes == 10
    raw = torch.load(zoo_dir / "cifar10" / "Linf" / f"{ZOO_NAME}.pt", weights_only=True)["state_dict"]
    module = build_zoo_model(parse_zoo_spec(ZOO_SPEC, model_dir=zoo_dir))
    module.load_state_dict({k[len("module."):]: v for k, v in raw.items()})
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), module.eval()(x), rtol=0, atol=0)  # the same [0,1] pixels
    with pytest.raises(CheckpointError, match="normalized twice"):
        load_checkpoint(ZOO_SPEC, normalization="cifar10", model_dir=zoo_dir)


def test_zoo_refusals_are_one_line(zoo_dir, tmp_path, monkeypatch, run_cli):
    code, _, err = run_cli(["info", "--ckpt", "robustbench:Standard", "--dataset", "cifar10",
                            "--model-dir", tmp_path])
    assert_one_line_error(code, err, str(tmp_path / "cifar10" / "Linf" / "Standard.pt"), "--download")
    assert not (tmp_path / "cifar10").exists()
    code, _, err = run_cli(["info", "--ckpt", "robustbench:Ding2020MM", "--dataset", "cifar10",
                            "--model-dir", zoo_dir])
    assert_one_line_error(code, err, "unknown RobustBench model", ZOO_NAME)
    monkeypatch.setitem(sys.modules, "robustbench.model_zoo", None)
    code, _, err = run_cli(["info", "--ckpt", ZOO_SPEC, "--model-dir", zoo_dir])
    assert_one_line_error(code, err, "pip install --no-deps robustbench==1.1.1")


def test_download_goes_into_robustbench_layout(zoo_dir, tmp_path, monkeypatch):
    """--download hands RobustBench's Google Drive id to its downloader and the file lands in the layout."""
    import robustbench.utils

    from semprobe.models.zoo import locate_zoo_file, parse_zoo_spec, zoo_record

    entry = parse_zoo_spec(ZOO_SPEC, model_dir=tmp_path)
    source = zoo_dir / "cifar10" / "Linf" / f"{ZOO_NAME}.pt"
    calls = []
    monkeypatch.setattr(robustbench.utils, "download_gdrive",
                        lambda gid, target: (calls.append(gid), target.write_bytes(source.read_bytes())))
    assert locate_zoo_file(entry, download=True) == entry.path and entry.path.is_file()
    assert calls == [zoo_record(entry)["gdrive_id"]]
    failing = parse_zoo_spec("robustbench:cifar10/Linf/Standard", model_dir=tmp_path / "fresh")
    monkeypatch.setattr(robustbench.utils, "download_gdrive",
                        lambda gid, target: (_ for _ in ()).throw(OSError("network is unreachable")))
    with pytest.raises(CheckpointError, match=r"from https://docs\.google\.com/uc\?export=download&id=\S+ failed "
                                              r"\(network is unreachable\); put the file at"):
        locate_zoo_file(failing, download=True)
    assert not (tmp_path / "fresh").exists()  # nothing written: not even the folders made for the file


@pytest.mark.slow  # end to end: every command on a WideResNet-28-4 zoo entry
def test_zoo_entry_through_every_command(zoo_dir, tmp_path, run_cli):
    source = ["--ckpt", ZOO_SPEC, "--model-dir", zoo_dir, "--dataset", FAKE, "--quiet"]
    code, out, err = run_cli(["info", "--ckpt", ZOO_SPEC, "--model-dir", zoo_dir, "--json"])
    assert code == 0, err
    summary = json.loads(out)
    assert summary["format"] == "RobustBench zoo file" and summary["threat_model"] == "Linf"
    assert summary["normalization"] is None and {"penultimate", "logits", "block3"} <= set(summary["taps"])

    code, _, err = run_cli(["eval", *source, "--attacks", "natural,pgd2", "--n", 4, "--eps", "8/255",
                            "--out", tmp_path / "eval"])
    assert code == 0, err
    assert (tmp_path / "eval" / "eval.json").is_file()
    code, _, err = run_cli(["cca", *source, "--n-pairs", 100, "--embedding", "random:16:0", "--attack", "fgsm",
                            "--eps", "8/255", "--n-boot", 10, "--n-perm", 10, "--out", tmp_path / "cca"])
    assert code == 0, err
    assert json.loads((tmp_path / "cca" / "cca.json").read_text())["sources"]
    code, _, err = run_cli(["simmatrix", *source, "--n", 40, "--embedding", "random:16:0", "--n-boot", 10,
                            "--n-perm", 10, "--out", tmp_path / "sim"])
    assert code == 0, err
    assert (tmp_path / "sim" / "simmatrix.json").is_file()
    code, _, err = run_cli(["alpha-curve", *source, "--alphas", "0,1", "--eps", "8/255", "--steps", 1, "--n", 4,
                            "--out", tmp_path / "alpha"])
    assert code == 0, err
    assert len(json.loads((tmp_path / "alpha" / "alpha_curve.json").read_text())["curves"][0]["points"]) == 2
