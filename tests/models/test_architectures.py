"""Tests of semprobe.models: architectures, public-checkpoint keys, normalization, taps,
channels_last and the SCARL projection heads."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from semprobe.errors import ModelError
from semprobe.models import (
    ImageClassifier,
    ProjectionHead,
    ProjectionHeads,
    create_model,
    list_models,
    parse_normalization,
)
from semprobe.models.wide_resnet import WideResNet

CIFAR10 = {"mean": [0.4914, 0.4822, 0.4465], "std": [0.2470, 0.2435, 0.2616]}

# arch -> (feature_dim, number of state_dict keys in the public code, sample keys with
# their shapes in the public code): Rice et al. preactresnet.py, kuangliu/pytorch-cifar
# resnet.py, TRADES wideresnet.py (without its unused sub_block1).
PUBLIC_KEYS = {
    "preact_resnet18": (
        512,
        107,
        {
            "conv1.weight": (64, 3, 3, 3),
            "layer1.0.bn1.running_var": (64,),
            "layer2.0.shortcut.0.weight": (128, 64, 1, 1),
            "layer4.1.conv2.weight": (512, 512, 3, 3),
            "bn.weight": (512,),
            "linear.weight": (10, 512),
            "linear.bias": (10,),
        },
    ),
    "resnet18": (
        512,
        122,
        {
            "bn1.num_batches_tracked": (),
            "layer1.1.conv2.weight": (64, 64, 3, 3),
            "layer3.0.shortcut.0.weight": (256, 128, 1, 1),
            "layer3.0.shortcut.1.running_mean": (256,),
            "linear.weight": (10, 512),
        },
    ),
    "resnet50": (
        2048,
        320,
        {
            "layer1.0.conv3.weight": (256, 64, 1, 1),
            "layer1.0.shortcut.0.weight": (256, 64, 1, 1),
            "layer3.5.bn3.weight": (1024,),
            "layer4.2.conv2.weight": (512, 512, 3, 3),
            "linear.weight": (10, 2048),
        },
    ),
    "wrn_28_10": (
        640,
        155,
        {
            "block1.layer.0.convShortcut.weight": (160, 16, 1, 1),
            "block2.layer.3.conv2.weight": (320, 320, 3, 3),
            "bn1.running_mean": (640,),
            "fc.weight": (10, 640),
        },
    ),
    "wrn_34_10": (
        640,
        191,
        {
            "conv1.weight": (16, 3, 3, 3),
            "block1.layer.0.bn1.weight": (16,),
            "block1.layer.0.convShortcut.weight": (160, 16, 1, 1),
            "block3.layer.4.conv1.weight": (640, 640, 3, 3),
            "fc.weight": (10, 640),
            "fc.bias": (10,),
        },
    ),
}


@pytest.fixture(scope="module")
def wrn_34_10() -> ImageClassifier:
    """One WRN-34-10 (46M parameters) shared by the tests that need the full model."""
    torch.manual_seed(0)
    return create_model("wrn_34_10")


def _image_batch(shape: tuple[int, int, int], n: int = 2) -> torch.Tensor:
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(1))


def _check_forward_backward(model: ImageClassifier, shape: tuple[int, int, int]) -> None:
    """Logits and features have the right shapes, are consistent, and x gets a gradient."""
    x = _image_batch(shape).requires_grad_(True)
    logits = model(x)
    assert logits.shape == (2, model.num_classes)
    features = model.features(x)
    assert features.shape == (2, model.feature_dim)
    assert torch.equal(model.classifier(features), logits)
    (grad,) = torch.autograd.grad(F.cross_entropy(logits, torch.tensor([0, 1])), x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_list_models_is_sorted_registry():
    assert list_models() == [
        "preact_resnet18", "resnet18", "resnet50", "small_cnn", "wrn_28_10", "wrn_34_10"
    ]


@pytest.mark.parametrize("arch", ["preact_resnet18", "resnet18", "resnet50", "wrn_28_10"])
def test_cifar_architectures_forward_backward(arch):
    torch.manual_seed(0)
    model = create_model(arch, num_classes=7).eval()
    assert model.arch == arch and model.in_channels == 3
    _check_forward_backward(model, (3, 32, 32))


def test_wrn_34_10_forward_backward(wrn_34_10):
    assert wrn_34_10.arch == "wrn_34_10" and wrn_34_10.feature_dim == 640
    _check_forward_backward(wrn_34_10.eval(), (3, 32, 32))


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 8, 8), (3, 32, 32)])
def test_small_cnn_any_size_and_channels(shape):
    torch.manual_seed(0)
    model = create_model("small_cnn", in_channels=shape[0]).train()
    assert model.feature_dim == 128
    _check_forward_backward(model, shape)


def test_unknown_model_lists_known_names():
    with pytest.raises(ModelError, match="preact_resnet18.*wrn_34_10"):
        create_model("vgg16")


def test_unknown_arch_option_is_refused():
    with pytest.raises(ModelError, match="sub_block1"):
        create_model("preact_resnet18", sub_block1=True)
    with pytest.raises(ModelError, match="accepts: sub_block1"):
        create_model("wrn_28_10", widen=4)


@pytest.mark.parametrize("bad", [{"num_classes": 0}, {"in_channels": 2.0}])
def test_bad_sizes_are_refused(bad):
    with pytest.raises(ModelError, match="positive integer"):
        create_model("small_cnn", **bad)


@pytest.mark.parametrize("arch", ["preact_resnet18", "resnet18", "resnet50", "wrn_28_10"])
def test_state_dict_keys_match_public_code(arch):
    feature_dim, key_count, samples = PUBLIC_KEYS[arch]
    model = create_model(arch)
    state = model.state_dict()
    assert len(state) == key_count
    assert {key: tuple(state[key].shape) for key in samples} == samples
    assert model.feature_dim == feature_dim


def test_wrn_34_10_keys_and_strict_round_trip(wrn_34_10):
    feature_dim, key_count, samples = PUBLIC_KEYS["wrn_34_10"]
    state = wrn_34_10.state_dict()
    assert len(state) == key_count
    assert {key: tuple(state[key].shape) for key in samples} == samples
    assert not any(key.startswith("sub_block1.") for key in state)
    fresh = create_model("wrn_34_10", normalization=CIFAR10)
    fresh.load_state_dict(state, strict=True)
    assert all(torch.equal(fresh.state_dict()[key], value) for key, value in state.items())


def test_wrn_sub_block1_adds_trades_keys():
    state = create_model("wrn_28_10", sub_block1=True).state_dict()
    assert len(state) == 155 + 49
    assert tuple(state["sub_block1.layer.0.bn1.weight"].shape) == (16,)
    assert tuple(state["sub_block1.layer.0.convShortcut.weight"].shape) == (160, 16, 1, 1)


@pytest.mark.parametrize("arch", ["preact_resnet18", "small_cnn"])
def test_normalization_is_not_in_state_dict_and_strict_load_works(arch):
    torch.manual_seed(0)
    model = create_model(arch, normalization=CIFAR10).eval()
    state = model.state_dict()
    assert set(state) == set(create_model(arch).state_dict())
    assert not any(key.startswith("input_") for key in state)
    fresh = create_model(arch, normalization=CIFAR10).eval()
    fresh.load_state_dict(state, strict=True)
    x = _image_batch((3, 32, 32))
    assert torch.equal(fresh(x), model(x))


def test_normalization_inside_model_equals_manual_normalization():
    torch.manual_seed(0)
    normalized = create_model("preact_resnet18", normalization=CIFAR10).eval()
    plain = create_model("preact_resnet18").eval()
    plain.load_state_dict(normalized.state_dict())
    x = _image_batch((3, 32, 32))
    mean = torch.tensor(CIFAR10["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10["std"]).view(1, 3, 1, 1)
    torch.testing.assert_close(normalized(x), plain((x - mean) / std))
    assert normalized.normalization == CIFAR10
    assert plain.normalization is None


def test_normalization_must_match_channels():
    with pytest.raises(ModelError, match="1 channel"):
        create_model("small_cnn", in_channels=3, normalization="fashion-mnist")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        ("none", None),
        ("cifar10", CIFAR10),
        (" CIFAR10 ", CIFAR10),
        ("fashion-mnist", {"mean": [0.2860], "std": [0.3530]}),
        ("0.4914,0.4822,0.4465/0.2470,0.2435,0.2616", CIFAR10),
        ("0.5/0.25", {"mean": [0.5], "std": [0.25]}),
        ({"mean": (0.5, 0.5), "std": [1, 2]}, {"mean": [0.5, 0.5], "std": [1.0, 2.0]}),
    ],
)
def test_parse_normalization_forms(text, expected):
    assert parse_normalization(text) == expected


def test_parse_normalization_presets():
    assert parse_normalization("cifar100")["mean"] == [0.5071, 0.4865, 0.4409]
    assert parse_normalization("imagenet") == parse_normalization("tinyimagenet")
    assert parse_normalization("imagenet", in_channels=3)["std"] == [0.229, 0.224, 0.225]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cifar", "MEAN/STD"),
        ("0.5,0.5/0.2", "2 mean and 1 std"),
        ("0.5/0", "> 0"),
        ("0.5/-1", "> 0"),
        ("nan/1", "finite"),
        ("a,b/c,d", "preset"),
        ({"mean": [0.5]}, "exactly 'mean' and 'std'"),
        ({"mean": "0.5", "std": [1.0]}, "list of per-channel floats"),
        (0.5, "not float"),
    ],
)
def test_parse_normalization_errors(text, message):
    with pytest.raises(ModelError, match=message):
        parse_normalization(text)


def test_parse_normalization_checks_channel_count():
    with pytest.raises(ModelError, match="model takes 1"):
        parse_normalization("cifar10", in_channels=1)


@pytest.mark.parametrize(
    ("arch", "tap", "shape"),
    [("preact_resnet18", "layer3", (2, 256, 8, 8)), ("small_cnn", "pool1", (2, 32, 16, 16))],
)
def test_extract_taps_in_one_pass(arch, tap, shape):
    torch.manual_seed(0)
    model = create_model(arch, normalization=CIFAR10).eval()
    x = _image_batch((3, 32, 32))
    out = model.extract(x, ["logits", tap, "penultimate"])
    assert list(out) == ["logits", tap, "penultimate"]
    assert tuple(out[tap].shape) == shape
    torch.testing.assert_close(out["penultimate"], model.features(x))
    torch.testing.assert_close(out["logits"], model(x))
    assert all(not module._forward_hooks for module in model.modules())


def test_extract_classifier_tap_equals_logits():
    torch.manual_seed(0)
    model = create_model("small_cnn", in_channels=1).eval()
    out = model.extract(_image_batch((1, 8, 8)), "linear")
    assert list(out) == ["linear"]
    torch.testing.assert_close(out["linear"], model(_image_batch((1, 8, 8))))


def test_tap_names_cover_all_submodules():
    model = create_model("small_cnn")
    names = model.tap_names()
    assert names[:2] == ["penultimate", "logits"]
    assert names[2:] == [name for name, _ in model.named_modules() if name]
    assert "" not in names and "relu_fc" in names


@pytest.mark.parametrize("tap", ["layer9", ""])
def test_unknown_tap_names_valid_ones(tap):
    model = create_model("preact_resnet18")
    with pytest.raises(ModelError, match=r"unknown tap.*tap_names\(\)"):
        model.extract(_image_batch((3, 32, 32)), ["logits", tap])
    assert all(not module._forward_hooks for module in model.modules())


def test_unused_module_tap_is_refused():
    model = WideResNet(depth=10, widen_factor=1, sub_block1=True)
    with pytest.raises(ModelError, match="never runs"):
        model.extract(_image_batch((3, 32, 32), n=1), ["sub_block1"])


def test_hooks_are_removed_when_forward_raises():
    model = create_model("small_cnn", in_channels=1)
    with pytest.raises(RuntimeError):
        model.extract(torch.rand(2, 3, 8, 8), ["conv2"])
    assert all(not module._forward_hooks for module in model.modules())


@pytest.mark.parametrize(
    ("arch", "shape"), [("preact_resnet18", (3, 32, 32)), ("small_cnn", (1, 28, 28))]
)
def test_channels_last_matches_contiguous(arch, shape):
    torch.manual_seed(0)
    plain = create_model(arch, in_channels=shape[0], channels_last=False).eval()
    fast = create_model(arch, in_channels=shape[0], channels_last=True).eval()
    fast.load_state_dict(plain.state_dict())
    assert fast.channels_last and not plain.channels_last
    assert fast.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    x = _image_batch(shape).requires_grad_(True)
    torch.testing.assert_close(fast(x), plain(x), atol=1e-5, rtol=1e-4)
    grad_fast, = torch.autograd.grad(fast(x).sum(), x)
    grad_plain, = torch.autograd.grad(plain(x).sum(), x)
    torch.testing.assert_close(grad_fast, grad_plain, atol=1e-5, rtol=1e-4)


def test_channels_last_default_follows_architecture_preference():
    for arch in ("preact_resnet18", "small_cnn"):
        model = create_model(arch)
        assert model.channels_last == type(model).prefers_channels_last


def test_projection_head_outputs_unit_rows():
    torch.manual_seed(0)
    head = ProjectionHead(512)
    assert head.fc1.out_features == 512 and isinstance(head.bn, torch.nn.BatchNorm1d)
    out = head(torch.randn(5, 512))
    assert out.shape == (5, 64)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(5))


def test_projection_heads_pair_and_config_round_trip():
    torch.manual_seed(0)
    heads = ProjectionHeads(image_dim=512, word_dim=50, hidden_dim=256)
    assert heads.config == {"image_dim": 512, "word_dim": 50, "hidden_dim": 256, "out_dim": 64}
    image, word = heads(torch.randn(4, 512), torch.randn(10, 50))
    assert image.shape == (4, 64) and word.shape == (10, 64)
    torch.testing.assert_close(word.norm(dim=1), torch.ones(10))
    rebuilt = ProjectionHeads(**heads.config)
    rebuilt.load_state_dict(heads.state_dict(), strict=True)
    assert rebuilt.word.fc1.in_features == 50 and rebuilt.image.fc1.out_features == 256


def test_projection_head_refuses_bad_sizes():
    with pytest.raises(ModelError, match="out_dim"):
        ProjectionHead(128, out_dim=0)
