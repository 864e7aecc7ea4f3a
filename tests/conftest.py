"""Shared test set-up: keep every test offline and away from the user's cache."""

import importlib.util
import os

import pytest

# Under pytest-xdist (make test runs one worker per core) each worker and the processes its tests
# start compute on one thread, so that the workers do not oversubscribe the cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)

ZOO_NAME = "Ding2020MMA"  # a CIFAR-10 Linf RobustBench entry: WideResNet-28-4, fast enough on CPU
ZOO_SPEC = f"robustbench:cifar10/Linf/{ZOO_NAME}"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Point semprobe's cache at a per-session temporary folder and forbid hub downloads."""
    cache = tmp_path_factory.getbasetemp() / "semprobe-cache"
    monkeypatch.setenv("SEMPROBE_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("SEMPROBE_DATA", raising=False)
    return cache


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test (for the download paths)."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def no_system_data(monkeypatch, tmp_path):
    """Point the system data folders (Debian's /usr/share/datasets) at an empty folder."""
    from semprobe import data

    empty = tmp_path / "system"
    empty.mkdir()
    monkeypatch.setattr(data, "SYSTEM_DATA_DIRS", (empty,))
    return empty


def pytest_collection_modifyitems(config, items):
    """Run the slow tests first, the longest (the smoke demos) before the others: under
    pytest-xdist they then start at once on their own workers while the many short tests
    fill the rest, instead of ending the run alone. The order is otherwise kept."""

    def rank(item) -> int:
        if item.get_closest_marker("slow") is None:
            return 2
        return 0 if "smoke_demo" in item.name else 1

    items.sort(key=rank)


def pytest_report_header(config):
    return f"semprobe tests: CI={os.environ.get('CI', '')!r}"


@pytest.fixture(scope="session")
def digits_model():
    """A small CNN trained for a few epochs on sklearn's digits, with its test images.

    Returns ``(model, x_test, y_test)``; the model is in eval mode, clean test accuracy
    around 90%. Shared by the attack tests (a few seconds to train, once per session).
    """
    import torch
    import torch.nn.functional as F

    from semprobe.data import load_dataset
    from semprobe.models import create_model

    torch.manual_seed(0)
    x_train, y_train = load_dataset("digits", "train_full").tensors()
    x_test, y_test = load_dataset("digits", "test").tensors()
    model = create_model("small_cnn", num_classes=10, in_channels=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(6):
        for batch in torch.randperm(len(y_train), generator=generator).split(64):
            optimizer.zero_grad()
            F.cross_entropy(model(x_train[batch]), y_train[batch]).backward()
            optimizer.step()
    return model.eval(), x_test, y_test


DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(scope="session")
def digits_ckpt(digits_model, tmp_path_factory):
    """The ``digits_model`` saved as a semprobe checkpoint (dataset digits, class names zero..nine)."""
    from semprobe.models.checkpoint import save_checkpoint

    return save_checkpoint(tmp_path_factory.mktemp("ck") / "digits.pt", digits_model[0], dataset="digits",
                           classes=DIGIT_NAMES)


@pytest.fixture
def run_cli(capsys):
    """Run the ``semprobe`` console entry point; returns ``(exit code, stdout, stderr)``."""
    from semprobe.cli import main

    def run(args):
        with pytest.raises(SystemExit) as exit_info:
            main([str(a) for a in args])
        captured = capsys.readouterr()
        return exit_info.value.code, captured.out, captured.err

    return run


@pytest.fixture(scope="session")
def zoo_dir(tmp_path_factory):
    """Random weights of the RobustBench zoo architecture ``ZOO_SPEC``, saved as the zoo's files
    are (``ROOT/cifar10/Linf/NAME.pt``, DataParallel keys under ``state_dict``); returns ROOT."""
    if importlib.util.find_spec("robustbench") is None:
        pytest.skip("the robustbench extra is not installed (pip install semprobe[robustbench])")
    import torch

    from semprobe.models.zoo import build_zoo_model, parse_zoo_spec

    root = tmp_path_factory.mktemp("robustbench")
    entry = parse_zoo_spec(ZOO_SPEC, model_dir=root)
    torch.manual_seed(0)
    module = build_zoo_model(entry).eval()
    entry.path.parent.mkdir(parents=True)
    torch.save({"state_dict": {f"module.{k}": v for k, v in module.state_dict().items()}}, entry.path)
    return root
