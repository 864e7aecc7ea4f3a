"""`semprobe cca`: checkpoints and feature files in, cca.json and SCARL Fig. 1 out; bad input refused."""

import json

import numpy as np
import pytest

from semprobe.attacks.specs import parse_attack
from semprobe.cli.cca import parse_ridge_option
from semprobe.cli.common import load_images
from semprobe.errors import ConfigError
from semprobe.models.features import extract_features
from semprobe.stats import CCA
from semprobe.words import class_vectors

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
FAST = ["--n-boot", "50", "--n-perm", "50", "--quiet"]


def test_ridge_option():
    assert parse_ridge_option("auto") == ("auto", None)
    assert parse_ridge_option("none") == (None, None)
    assert parse_ridge_option("0.1") == (0.1, 0.1)
    assert parse_ridge_option("auto,0.2") == ("auto", 0.2)
    for bad in ("2", "x", "0.1,0.2,0.3"):
        with pytest.raises(ConfigError):
            parse_ridge_option(bad)


def test_cca_from_a_checkpoint(digits_ckpt, digits_model, tmp_path, run_cli):
    out = tmp_path / "cca"
    code, stdout, err = run_cli(["cca", "--ckpt", digits_ckpt, "--n-pairs", 300, "--attack", "pgd", "--steps", 3,
                                 "--eps", 0.1, "--project-adversarial", "--out", out] + FAST)
    assert code == 0, err
    assert "r in sample" in stdout and "class separability" in stdout  # 50-d GloVe vectors span 10 labels
    document = json.loads((out / "cca.json").read_text())
    assert document["classes"] == DIGITS and document["metadata"]["settings"]["n_pairs"] == 300
    columns = document["sources"]["digits"]["columns"]
    assert set(columns) == {"natural", "adversarial", "adversarial, natural weights"}
    natural, adversarial = columns["natural"], columns["adversarial"]
    assert natural["sample"] == adversarial["sample"] and natural["test"] == adversarial["test"]
    for column in (natural, adversarial):
        assert 0.0 < column["in_sample"]["r"] <= 1.0 + 1e-9
        assert column["in_sample"]["diagnostics"]["n"] == 300
        low, high = column["held_out"]["ci"]
        assert low <= column["held_out"]["r"] <= high
        assert 0.0 < column["held_out"]["relabel"]["p_value"] <= 1.0
    assert len(columns["adversarial, natural weights"]["x"]) == len(natural["test"])
    assert (out / "cca.png").stat().st_size > 0 and (out / "cca.pdf").stat().st_size > 0

    # The paper's statistic, recomputed independently: the same 300 images (same seed), the
    # features of the checkpoint, the GloVe vector of each image's class, plain CCA.
    model = digits_model[0]
    _, images, labels, _ = load_images("digits", "test", 300, 0)
    features = extract_features(model, images, labels).features
    words = class_vectors("glove", DIGITS).vectors
    expected = CCA(n_components=1, method="cov").fit(features.astype(np.float64), words[labels.numpy()])
    assert natural["in_sample"]["r"] == pytest.approx(expected.canonical_correlations_[0], abs=1e-6)


def test_features_file_gives_the_same_numbers_as_the_checkpoint(digits_ckpt, digits_model, tmp_path, run_cli):
    model = digits_model[0]
    _, images, labels, _ = load_images("digits", "test", 200, 0)
    feature_set = extract_features(model, images, labels, attack=parse_attack("fgsm"), eps=0.1)
    path = tmp_path / "feats.npz"
    np.savez(path, features=feature_set.features, features_adv=feature_set.features_adv,
             labels=feature_set.labels, classes=np.array(DIGITS))
    from_file, from_ckpt = tmp_path / "file", tmp_path / "ckpt"
    code, _, err = run_cli(["cca", "--features", path, "--n-pairs", 200, "--out", from_file] + FAST)
    assert code == 0, err
    code, _, err = run_cli(["cca", "--ckpt", digits_ckpt, "--attack", "fgsm", "--eps", 0.1, "--n-pairs", 200,
                            "--out", from_ckpt] + FAST)
    assert code == 0, err
    a = json.loads((from_file / "cca.json").read_text())["sources"]["feats"]["columns"]
    b = json.loads((from_ckpt / "cca.json").read_text())["sources"]["digits"]["columns"]
    for column in ("natural", "adversarial"):
        for statistic in ("in_sample", "held_out"):
            assert a[column][statistic]["r"] == pytest.approx(b[column][statistic]["r"], abs=1e-5)


def test_semantic_features_beat_the_relabelling_null(tmp_path, run_cli):
    """Features built from the word geometry (through a random linear map, plus noise) pass the
    relabelling null; features of a random geometry do not. Continuous rows would not need the
    null; here the word side has 10 distinct rows, as with real class vectors."""
    rng = np.random.default_rng(0)
    words = class_vectors("glove", DIGITS).vectors.astype(np.float64)
    labels = np.repeat(np.arange(10), 60)
    mixing = rng.normal(size=(50, 64))
    results = {}
    for name, centres in (("semantic", words @ mixing), ("random", rng.normal(size=(10, 50)) @ mixing)):
        features = centres[labels] + 4.0 * rng.normal(size=(labels.size, 64))
        path = tmp_path / f"{name}.npz"
        np.savez(path, features=features.astype(np.float32), labels=labels, classes=np.array(DIGITS))
        code, stdout, err = run_cli(["cca", "--features", path, "--n-pairs", 600, "--ridge", "0.5,0.5",
                                     "--n-perm", 200, "--n-boot", 0, "--quiet", "--out", tmp_path / name])
        assert code == 0, err
        assert "no adversarial features" in stdout
        document = json.loads((tmp_path / name / "cca.json").read_text())
        results[name] = document["sources"][name]["columns"]["natural"]["held_out"]["relabel"]["p_value"]
    assert results["semantic"] < 0.02 < 0.2 < results["random"]


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("case, fragment", [
    ("layer", "available"),
    ("n_pairs", "--n-pairs 5000 is larger"),
    ("missing_array", "lacks the array"),
    ("nan", "NaN"),
    ("empty_class", "no images"),
    ("oov", "qwzxv"),
    ("nothing", "--ckpt"),
    ("ridge", "--ridge"),
])
def test_bad_input_is_one_line_and_writes_nothing(digits_ckpt, tmp_path, run_cli, case, fragment):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 10)
    good = rng.normal(size=(100, 8)).astype(np.float32)
    args = {
        "layer": ["--ckpt", digits_ckpt, "--layer", "conv99"],
        "n_pairs": ["--ckpt", digits_ckpt, "--n-pairs", 5000],
        "missing_array": ["--features", _npz(tmp_path / "a.npz", features=good)],
        "nan": ["--features", _npz(tmp_path / "b.npz", features=np.where(good > 2, np.nan, good), labels=labels,
                                   classes=np.array(DIGITS))],
        "empty_class": ["--features", _npz(tmp_path / "c.npz", features=good, labels=np.minimum(labels, 8),
                                           classes=np.array(DIGITS))],
        "oov": ["--features", _npz(tmp_path / "d.npz", features=good, labels=labels,
                                   classes=np.array(DIGITS[:9] + ["qwzxv"]))],
        "nothing": [],
        "ridge": ["--ckpt", digits_ckpt, "--ridge", "3"],
    }[case]
    out = tmp_path / "never"
    code, _, err = run_cli(["cca"] + args + ["--n-pairs", 60, "--out", out] + FAST if case != "n_pairs"
                           else ["cca"] + args + ["--out", out] + FAST)
    assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err, err
    assert not out.exists() or not any(out.iterdir())


def test_refuses_to_overwrite(digits_ckpt, tmp_path, run_cli):
    out = tmp_path / "cca"
    args = ["cca", "--ckpt", digits_ckpt, "--attack", "none", "--n-pairs", 100, "--out", out] + FAST
    assert run_cli(args)[0] == 0
    code, _, err = run_cli(args)
    assert code == 2 and "--overwrite" in err
    assert run_cli(args + ["--overwrite"])[0] == 0
