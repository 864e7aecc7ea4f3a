"""wrap_model: any nn.Module classifier as a semprobe model, each result checked by hand."""

import json
import logging

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from semprobe import attacks
from semprobe.robustness.alpha_curves import alpha_curve
from semprobe.attacks.specs import parse_attack_list
from semprobe.models.checkpoint import save_checkpoint
from semprobe.cli import main
from semprobe.robustness.curves import accuracy_vs_eps
from semprobe.errors import ModelError
from semprobe.robustness.accuracy import evaluate
from semprobe.models.features import extract_features
from semprobe.models import create_model, wrap_model
from semprobe.data.normalization import NORMALIZATION_PRESETS

CIFAR = NORMALIZATION_PRESETS["cifar10"]


def plain_cnn() -> nn.Sequential:
    """A small CNN ending in two Linear layers: the classifier is the last one, index '8'."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Sequential(nn.Linear(16, 12), nn.ReLU()), nn.Linear(12, 10),
    ).eval()


def tv_resnet18() -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None, num_classes=10).eval()


def images(n=6, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 32, generator=generator), torch.randint(0, 10, (n,), generator=generator)


def by_hand_normalized(x):
    mean = torch.tensor(CIFAR["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR["std"]).view(1, 3, 1, 1)
    return (x - mean) / std


def hooked_outputs(module, names, x):
    """Outputs of the named submodules of ``module`` on ``x``, with hooks registered here."""
    found, handles = {}, []
    for name in names:
        handles.append(module.get_submodule(name).register_forward_hook(
            lambda m, i, o, name=name: found.__setitem__(name, o)))
    with torch.no_grad():
        module(x)
    for handle in handles:
        handle.remove()
    return found


def test_plain_sequential_penultimate_is_the_last_linear_input(caplog):
    module = plain_cnn()
    x, _ = images()
    with torch.no_grad():
        expected = module[:9](x)  # everything before the final Linear, by hand
        logits = module(x)
    model = wrap_model(module)
    assert model.penultimate_module is None
    with caplog.at_level(logging.INFO, logger="semprobe.models.wrapper"):
        with torch.no_grad():
            features = model.features(x)
    assert model.penultimate_module == "9" and "'9'" in caplog.text
    torch.testing.assert_close(features, expected, rtol=0, atol=0)
    assert model.classifier is module[9]
    with torch.no_grad():
        torch.testing.assert_close(model.classifier(features), logits)
        torch.testing.assert_close(model(x), logits, rtol=0, atol=0)
    assert model.num_classes == 10 and model.feature_dim == 12 and model.in_channels == 3


def test_torchvision_resnet18_penultimate_and_taps_match_hand_computation():
    module = tv_resnet18()
    x, _ = images(4)
    with torch.no_grad():
        h = module.maxpool(module.relu(module.bn1(module.conv1(x))))
        h = module.layer4(module.layer3(module.layer2(module.layer1(h))))
        expected = torch.flatten(module.avgpool(h), 1)
    hooked = hooked_outputs(module, ["layer4", "avgpool", "layer2.1.conv1"], x)
    model = wrap_model(module)
    with torch.no_grad():
        taps = model.extract(x, ["layer4", "avgpool", "penultimate", "logits", "layer2.1.conv1"])
        logits = module(x)
    assert model.penultimate_module == "fc" and model.feature_dim == 512
    torch.testing.assert_close(taps["penultimate"], expected)
    for name in ("layer4", "avgpool", "layer2.1.conv1"):
        torch.testing.assert_close(taps[name], hooked[name], rtol=0, atol=0)
    torch.testing.assert_close(taps["logits"], logits, rtol=0, atol=0)
    torch.testing.assert_close(model.classifier(taps["penultimate"]), logits)
    assert {"layer4", "avgpool", "fc", "layer1.0.conv1"} <= set(model.tap_names())


def test_normalization_is_applied_once_and_none_means_raw_pixels():
    module = plain_cnn()
    x, _ = images()
    with torch.no_grad():
        by_hand = module(by_hand_normalized(x))
        raw = module(x)
        normalized = wrap_model(module, normalization="cifar10")
        torch.testing.assert_close(normalized(x), by_hand)
        torch.testing.assert_close(normalized.features(x), module[:9](by_hand_normalized(x)))
        torch.testing.assert_close(wrap_model(module)(x), raw, rtol=0, atol=0)
    assert normalized.normalization == CIFAR
    # a semprobe model already normalizes: wrapping it again changes nothing, and a
    # different normalization would normalize twice, so it is refused
    own = create_model("small_cnn", num_classes=10, in_channels=1, normalization="fashion-mnist")
    assert wrap_model(own) is own and wrap_model(own, normalization="fashion-mnist") is own
    with pytest.raises(ModelError, match="normalize twice"):
        wrap_model(own, normalization="0.5/0.5")
    assert wrap_model(normalized) is normalized


class NormalizesInside(nn.Module):
    """A RobustBench-style model: mean/std buffers applied inside forward."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mu", torch.tensor(CIFAR["mean"]).view(1, 3, 1, 1))
        self.register_buffer("sigma", torch.tensor(CIFAR["std"]).view(1, 3, 1, 1))
        self.body = plain_cnn()

    def forward(self, x):
        return self.body((x - self.mu) / self.sigma)


def test_a_module_that_normalizes_inside_gets_raw_pixels_and_a_warning_if_normalized_again():
    module = NormalizesInside().eval()
    x, _ = images()
    with torch.no_grad():
        torch.testing.assert_close(wrap_model(module)(x), module.body(by_hand_normalized(x)))
    with pytest.warns(UserWarning, match="normalized twice"):
        wrap_model(module, normalization="cifar10")


def test_library_functions_take_the_plain_module():
    module = plain_cnn()
    x, y = images(8)
    with torch.no_grad():
        logits = module(x)
        penultimate = module[:9](x).numpy()
        pooled = module[:7](x).reshape(8, -1).numpy()
    got = extract_features(module, x, y, batch_size=3)
    np.testing.assert_allclose(got.features, penultimate, rtol=1e-6, atol=1e-6)
    got = extract_features(module, x, y, layer="6", batch_size=3)
    np.testing.assert_allclose(got.features, pooled, rtol=1e-6, atol=1e-6)

    natural, pgd = evaluate(module, x, y, parse_attack_list("natural,pgd3"), eps=8 / 255, batch_size=3)
    clean = (logits.argmax(1) == y).tolist()
    assert natural.per_image == "".join("1" if c else "0" for c in clean)
    assert pgd.correct <= natural.correct

    x_adv = attacks.pgd(module, x, y, eps=8 / 255, step_size=2 / 255, steps=3,
                        generator=torch.Generator().manual_seed(0))
    assert (x_adv - x).abs().max() <= 8 / 255 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    x_fgsm = attacks.fgsm(module, x, y, eps=8 / 255)
    assert torch.allclose((x_fgsm - x).abs().max(), torch.tensor(8 / 255))

    curve = alpha_curve(module, x, y, [0.0, 0.5], eps=8 / 255, step_size=2 / 255, steps=2, batch_size=4)
    assert curve.ce.n_correct == sum(clean)
    eps_curve = accuracy_vs_eps(module, x, y, [0.0], steps=2)
    assert eps_curve.points[0].accuracy == pytest.approx(100.0 * sum(clean) / 8)


class TwoHeads(nn.Module):
    """Logits from two Linear heads with identical weights: summed ("sum"), the head's
    output returned as is ("ema", the copy also runs) or reshaped ("copy")."""

    def __init__(self, combine: str):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 16), nn.ReLU())
        self.head = nn.Linear(16, 4)
        self.ema_head = nn.Linear(16, 4)
        self.ema_head.load_state_dict(self.head.state_dict())
        self.combine = combine

    def forward(self, x):
        h = self.body(x)
        if self.combine == "sum":
            return self.head(h) + self.ema_head(h)
        self.ema_head(h)
        logits = self.head(h)
        return logits if self.combine == "ema" else logits.reshape(len(x), -1)


class SharedHead(nn.Module):
    """The classifier Linear applied twice in one forward: its input is not one tensor."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 8 * 8, 3 * 8 * 8)

    def forward(self, x):
        return self.fc(self.fc(x.flatten(1)))


def test_ambiguous_or_missing_classifier_is_refused_naming_the_candidates():
    x = torch.rand(2, 3, 8, 8)
    with pytest.raises(ModelError, match=r"no nn.Linear.*'body.1', 'head', 'ema_head'.*penultimate="):
        wrap_model(TwoHeads("sum")).features(x)
    with pytest.raises(ModelError, match=r"several nn.Linear.*'head', 'ema_head'.*penultimate="):
        wrap_model(TwoHeads("copy")).features(x)
    with pytest.raises(ModelError, match="'fc' of SharedHead runs 2 times"):
        wrap_model(SharedHead()).features(x)
    with pytest.raises(ModelError, match="no nn.Linear to take"):
        wrap_model(nn.Sequential(nn.Conv2d(3, 4, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())).features(x)
    # the Linear whose output object is returned wins over an identical copy
    assert wrap_model(TwoHeads("ema")).locate_penultimate(x) == "head"
    # the user names the classifier; module taps never needed it
    module = TwoHeads("copy")
    model = wrap_model(module, penultimate="head")
    with torch.no_grad():
        torch.testing.assert_close(model.features(x), module.body(x), rtol=0, atol=0)
        torch.testing.assert_close(wrap_model(TwoHeads("sum")).extract(x, "body.1")["body.1"], module.body[1](
            module.body[0](x)))
    with pytest.raises(ModelError, match="unknown tap 'haed'.*'head'"):
        wrap_model(module, penultimate="haed")


def test_locating_the_classifier_leaves_the_module_mode_and_batchnorm_statistics_alone():
    module = plain_cnn().train()
    before = module[1].running_mean.clone()
    model = wrap_model(module)
    assert model.locate_penultimate(torch.rand(2, 3, 32, 32)) == "9"
    assert module.training and all(m.training for m in module.modules())
    torch.testing.assert_close(module[1].running_mean, before, rtol=0, atol=0)


def test_unknown_tap_names_close_matches():
    with pytest.raises(ModelError, match="unknown tap 'layer9'.*'layer4'"):
        wrap_model(tv_resnet18()).extract(torch.rand(1, 3, 32, 32), ["layer9"])


def test_info_lists_the_tap_names(tmp_path, capsys):
    model = create_model("small_cnn", num_classes=10, in_channels=1)
    save_checkpoint(tmp_path / "ck.pt", model, dataset="fashion-mnist")
    with pytest.raises(SystemExit) as exit_info:
        main(["info", "--ckpt", str(tmp_path / "ck.pt"), "--json"])
    assert exit_info.value.code == 0
    taps = json.loads(capsys.readouterr().out)["taps"]
    assert taps[:2] == ["penultimate", "logits"] and {"conv1", "pool2", "fc", "linear"} <= set(taps)
    out = model.extract(torch.rand(2, 1, 28, 28), taps)  # every listed tap is one --layer accepts
    assert list(out) == taps
    with pytest.raises(SystemExit):
        main(["info", "--ckpt", str(tmp_path / "ck.pt")])
    assert "taps (20)" in capsys.readouterr().out


def test_an_attack_leaves_a_plain_module_in_the_mode_it_was_given():
    """pgd on an eval-mode plain module (wrapped inside) must not leave it, or its BatchNorm, in train mode."""
    from semprobe import attacks

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                              torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 3))
    net.eval()
    x, y = torch.rand(5, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1])
    attacks.pgd(net, x, y, eps=0.1, step_size=0.05, steps=2)
    assert not any(part.training for part in net.modules())
    net.train()
    net[1].eval()  # a frozen BatchNorm inside a training model keeps its own mode too
    attacks.pgd(net, x, y, eps=0.1, step_size=0.05, steps=2)
    assert net.training and not net[1].training
