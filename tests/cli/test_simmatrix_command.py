"""`semprobe simmatrix`: SCARL Fig. 2 matrices and RSA from checkpoints and feature files; bad input."""

import json

import numpy as np
import pytest
from scipy.stats import spearmanr

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
FAST = ["--n-boot", "50", "--n-perm", "100", "--quiet"]


def test_simmatrix_from_a_checkpoint(digits_ckpt, tmp_path, run_cli):
    out = tmp_path / "sim"
    code, stdout, err = run_cli(["simmatrix", "--ckpt", digits_ckpt, "--embedding", "glove", "--embedding",
                                 "random:16:0", "--adversarial", "--attack", "fgsm", "--eps", 0.1, "--out", out] + FAST)
    assert code == 0, err
    assert "RSA" in stdout
    document = json.loads((out / "simmatrix.json").read_text())
    assert set(document["features"]) == {"digits", "digits (adversarial)"}
    assert document["features"]["digits"]["source"]["n_images"] == 360  # the whole test split by default
    for entry in document["features"].values():
        assert set(entry["embeddings"]) == {"glove", "random:16:0"}
        for report in entry["embeddings"].values():
            features = np.array(report["feature_matrix"])
            words = np.array(report["word_matrix"])
            assert features.shape == words.shape == (10, 10)
            np.testing.assert_allclose(np.diag(features), 1.0, atol=1e-9)  # normalized class means
            np.testing.assert_allclose(features, features.T, atol=1e-12)
            upper = np.triu_indices(10, k=1)
            assert report["rsa"] == pytest.approx(spearmanr(features[upper], words[upper]).statistic, abs=1e-9)
            low, high = report["rsa_ci"]
            assert -1.0 <= low <= high <= 1.0
    natural = document["features"]["digits"]["embeddings"]["glove"]["feature_matrix"]
    adversarial = document["features"]["digits (adversarial)"]["embeddings"]["glove"]["feature_matrix"]
    assert not np.allclose(natural, adversarial)
    assert (out / "simmatrix.png").stat().st_size > 0 and (out / "simmatrix.pdf").stat().st_size > 0


def test_word_geometry_is_found_in_planted_features(tmp_path, run_cli):
    """Class means placed along the GloVe geometry give a high RSA with a small relabelling p."""
    from semprobe.words import class_vectors

    rng = np.random.default_rng(1)
    words = class_vectors("glove", DIGITS).vectors.astype(np.float64)
    labels = np.repeat(np.arange(10), 40)
    features = (words @ rng.normal(size=(50, 32)))[labels] + 3.0 * rng.normal(size=(labels.size, 32))
    path = tmp_path / "planted.npz"
    np.savez(path, features=features.astype(np.float32), labels=labels, classes=np.array(DIGITS))
    code, _, err = run_cli(["simmatrix", "--features", path, "--split-half", "--n-splits", 4, "--out",
                            tmp_path / "sim"] + FAST)
    assert code == 0, err
    report = json.loads((tmp_path / "sim" / "simmatrix.json").read_text())["features"]["planted"]["embeddings"]["glove"]
    assert report["rsa"] > 0.5 and report["relabel"]["p_value"] < 0.05
    assert report["settings"]["split_half"] is True


@pytest.mark.parametrize("extra, fragment", [
    (["--layer", "nope"], "available"),
    (["--n", 100000], "larger than"),
    (["--adversarial", "--attack", "none"], "--adversarial"),
    (["--embedding", "glove", "--embedding", "glove"], "twice"),
    (["--embedding", "word2vec"], "provider"),
])
def test_bad_input_is_one_line_and_writes_nothing(digits_ckpt, tmp_path, run_cli, extra, fragment):
    out = tmp_path / "never"
    code, _, err = run_cli(["simmatrix", "--ckpt", digits_ckpt, "--out", out] + extra + FAST)
    assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err, err
    assert not out.exists() or not any(out.iterdir())


def test_adversarial_needs_adversarial_features_in_the_file(tmp_path, run_cli):
    path = tmp_path / "f.npz"
    np.savez(path, features=np.random.default_rng(0).normal(size=(30, 4)), labels=np.arange(30) % 10,
             classes=np.array(DIGITS))
    out = tmp_path / "never"
    code, _, err = run_cli(["simmatrix", "--features", path, "--adversarial", "--out", out] + FAST)
    assert code == 2 and "features_adv" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
