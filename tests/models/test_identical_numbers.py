"""Same weights, same numbers (issue 14): AutoAttack's example CIFAR ResNet-18.

The installed ``pyautoattack`` package ships a trained CIFAR-10 ResNet-18
(``examples/model_test.pt``, a plain state_dict) and its architecture as a plain module
(``examples/resnet.py``, kuangliu/pytorch-cifar's ``ResNet18()``). AutoAttack's own
``examples/eval.py`` feeds it raw [0, 1] pixels (``transforms.ToTensor()`` only), so it
is loaded with ``normalization="none"``.

Loaded as semprobe's ``resnet18`` (through :func:`load_checkpoint`, strictly) and as
the plain module (imported by path, ``torch.load(weights_only=True)``) through
:func:`wrap_model`, it gives the same logits, the same penultimate features and the
same PGD accuracy on the same synthetic CIFAR-shaped images.

Tolerance: not bitwise. semprobe's ResNet pools with ``adaptive_avg_pool2d(out, 1)``
and, as loaded, runs channels_last; the original pools with ``avg_pool2d(out, 4)`` in
the contiguous layout. The float32 sums run in a different order, so logits differ by
about 1e-6 (measured: 4e-6 channels_last, 1e-6 contiguous). The test uses
``atol=1e-4, rtol=0`` on logits and features (values of order 1-10), and exact equality
of the PGD accuracy; with the contiguous layout the adversarial images themselves are
equal to within one float32 rounding of a pixel.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from semprobe.attacks.gradient import pgd
from semprobe.models.checkpoint import load_checkpoint
from semprobe.models import wrap_model

ATOL = 1e-4
N_IMAGES = 32
N_PGD = 16


def _examples_folder() -> Path | None:
    """pyautoattack's ``examples`` folder (with model_test.pt and resnet.py), or None."""
    spec = importlib.util.find_spec("pyautoattack")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "examples"
    if (folder / "model_test.pt").is_file() and (folder / "resnet.py").is_file():
        return folder
    return None


EXAMPLES = _examples_folder()
pytestmark = pytest.mark.skipif(EXAMPLES is None, reason="pyautoattack's examples/model_test.pt is not installed")


def _plain_resnet18() -> torch.nn.Module:
    """AutoAttack's ``ResNet18()`` from examples/resnet.py, with model_test.pt loaded strictly."""
    spec = importlib.util.spec_from_file_location("pyautoattack_example_resnet", EXAMPLES / "resnet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.ResNet18()
    state = torch.load(EXAMPLES / "model_test.pt", weights_only=True, map_location="cpu")
    net.load_state_dict(state, strict=True)
    return net.eval()


@pytest.fixture(scope="module")
def both_models():
    """``(semprobe resnet18, wrapped plain module)`` holding the same weights, both in eval mode."""
    ours = load_checkpoint(EXAMPLES / "model_test.pt", arch="resnet18", normalization="none", strict=True).model
    theirs = wrap_model(_plain_resnet18())
    return ours.eval(), theirs.eval()


@pytest.fixture(scope="module")
def images():
    """32 seeded random [0,1] CIFAR-shaped images."""
    return torch.rand(N_IMAGES, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def test_semprobe_resnet18_loads_the_checkpoint_strictly(both_models):
    """Every parameter and buffer name of the public kuangliu ResNet-18 is semprobe's too."""
    ours, theirs = both_models
    assert set(ours.state_dict()) - {"mean", "std"} >= set(theirs.module.state_dict())
    for name, value in theirs.module.state_dict().items():
        assert torch.equal(ours.state_dict()[name], value), name


def test_same_logits(both_models, images):
    ours, theirs = both_models
    with torch.no_grad():
        assert torch.allclose(ours(images), theirs(images), rtol=0, atol=ATOL)


def test_same_penultimate_features(both_models, images):
    ours, theirs = both_models
    with torch.no_grad():
        a = ours.extract(images, ["penultimate"])["penultimate"]
        b = theirs.extract(images, ["penultimate"])["penultimate"]
    assert theirs.penultimate_module == "linear"
    assert a.shape == b.shape == (N_IMAGES, 512)
    assert torch.allclose(a, b, rtol=0, atol=ATOL)


def _pgd_accuracy(model, x, y) -> tuple[float, torch.Tensor]:
    """Accuracy under PGD-5 (CE, eps 1/255, uniform start from seed 1) and the adversarial images."""
    x_adv = pgd(model, x, y, eps=1 / 255, step_size=0.5 / 255, steps=5, random_start_kind="uniform",
                generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return (model(x_adv).argmax(1) == y).float().mean().item(), x_adv


def test_same_pgd_accuracy(both_models, images):
    """PGD from the same seeded start: same accuracy, and the same adversarial images.

    Labels are the plain model's clean predictions (synthetic images have no true class),
    so clean accuracy is 100% and a small eps leaves PGD accuracy strictly between 0 and 1,
    where a difference between the models would show.
    """
    ours, theirs = both_models
    x = images[:N_PGD]
    with torch.no_grad():
        y = theirs(x).argmax(1)
    ours.set_channels_last(False)
    try:
        acc_ours, adv_ours = _pgd_accuracy(ours, x, y)
    finally:
        ours.set_channels_last(True)
    acc_theirs, adv_theirs = _pgd_accuracy(theirs, x, y)
    assert 0.0 < acc_theirs < 1.0
    assert acc_ours == acc_theirs
    assert torch.allclose(adv_ours, adv_theirs, rtol=0, atol=1e-6)
    assert not ours.training and not theirs.training
