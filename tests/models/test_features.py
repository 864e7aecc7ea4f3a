"""Feature extraction (natural and adversarial) and --features files."""

import numpy as np
import pytest
import torch

from semprobe.attacks.specs import parse_attack
from semprobe.errors import ConfigError, SemprobeError
from semprobe.models.features import extract_features, load_features_file


def test_penultimate_features_match_the_model_and_attacks_change_them(digits_model):
    model, x, y = digits_model
    x, y = x[:50], y[:50]
    got = extract_features(model, x, y, attack=parse_attack("pgd5"), eps=0.1, batch_size=16, seed=0)
    with torch.no_grad():
        expected = model.features(x).numpy()
    np.testing.assert_allclose(got.features, expected, rtol=1e-5, atol=1e-5)
    assert got.features_adv.shape == got.features.shape and got.labels.tolist() == y.tolist()
    assert not np.allclose(got.features_adv, got.features)
    again = extract_features(model, x, y, attack=parse_attack("pgd5"), eps=0.1, batch_size=16, seed=0)
    np.testing.assert_array_equal(again.features_adv, got.features_adv)


def test_module_taps_are_flattened(digits_model):
    model, x, y = digits_model
    got = extract_features(model, x[:10], y[:10], layer="conv3", batch_size=4)
    assert got.features.shape == (10, 64 * 4 * 4) and got.features_adv is None


def test_unknown_layer_lists_available_ones(digits_model):
    model, x, y = digits_model
    with pytest.raises(ConfigError, match="available: penultimate, logits"):
        extract_features(model, x[:4], y[:4], layer="layer9")


def test_features_file_round_trip_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    good = tmp_path / "f.npz"
    np.savez(good, features=rng.normal(size=(6, 3)), labels=np.array([0, 1, 2, 0, 1, 2]),
             features_adv=rng.normal(size=(6, 3)), classes=np.array(["cat", "dog", "car"]))
    loaded = load_features_file(good)
    assert loaded.features.shape == (6, 3) and loaded.classes == ["cat", "dog", "car"]
    cases = {
        "missing.npz": dict(features=np.zeros((3, 2))),
        "nan.npz": dict(features=np.array([[np.nan, 1.0]] * 2), labels=np.array([0, 1])),
        "shape.npz": dict(features=np.zeros((3, 2)), labels=np.array([0, 1])),
        "adv.npz": dict(features=np.zeros((2, 2)), labels=np.array([0, 1]), features_adv=np.zeros((2, 3))),
        "classes.npz": dict(features=np.zeros((2, 2)), labels=np.array([0, 5]), classes=np.array(["a", "b"])),
    }
    for name, arrays in cases.items():
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(SemprobeError):
            load_features_file(tmp_path / name)
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(SemprobeError, match="cannot read"):
        load_features_file(tmp_path / "junk.npz")
