"""Issue 12, items 10-13: bad input that crashed, hung or misled is refused (one line, exit 2,
nothing written) or, for the documented controls, answered with what the answer can mean."""

import json

import numpy as np
import pytest

from semprobe.errors import ConfigError

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
FAST = ["--n-boot", "20", "--n-perm", "20", "--quiet"]


def assert_refused(result, out, *fragments):
    """Exit 2, exactly one line on stderr (no traceback) naming ``fragments``, and no ``out``."""
    code, _, err = result
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("semprobe: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert not out.exists()


def features_file(path, features, labels=None):
    """An .npz of ``features`` with 20 images of each digit class (labels 0..9)."""
    labels = np.repeat(np.arange(10), 20) if labels is None else labels
    np.savez(path, features=features, labels=labels, classes=np.array(DIGITS))
    return path


def random_features(seed=0, dim=5):
    return np.random.default_rng(seed).normal(size=(200, dim))


# --------------------------------------------------------------------------- 10. tracebacks


@pytest.mark.parametrize("command", ["eval", "alpha-curve"])
def test_step_size_divided_by_zero_is_refused(command, digits_ckpt, tmp_path, run_cli):
    out = tmp_path / "out"
    result = run_cli([command, "--ckpt", digits_ckpt, "--step-size", "eps/0", "--n", 5, "--out", out])
    assert_refused(result, out, "step size")


def test_step_size_parser_refuses_a_zero_divisor():
    from semprobe.options import parse_step_size

    with pytest.raises(ConfigError, match="divisor"):
        parse_step_size("eps/0", 0.1)


@pytest.mark.parametrize("make, fragment", [
    (lambda: np.array([["a", "b"]] * 200), "strings"),
    (lambda: random_features() + 1j, "complex"),
])
def test_features_that_are_not_real_numbers_are_refused(make, fragment, tmp_path, run_cli):
    path = features_file(tmp_path / "bad.npz", make())
    out = tmp_path / "out"
    assert_refused(run_cli(["cca", "--features", path, "--n-pairs", 100, "--out", out] + FAST), out, fragment)


def test_feature_labels_that_are_not_integers_are_refused(tmp_path, run_cli):
    path = features_file(tmp_path / "bad.npz", random_features(), labels=np.array(["x"] * 200))
    out = tmp_path / "out"
    assert_refused(run_cli(["simmatrix", "--features", path, "--out", out] + FAST), out, "labels")


def test_simmatrix_with_onehot_words_reports_an_undefined_rsa(tmp_path, run_cli):
    """One-hot vectors are all orthogonal: the word matrix is the identity, no pair of classes is
    more alike than another, so the RSA is undefined; said in the JSON and on stdout, figure drawn."""
    path = features_file(tmp_path / "feats.npz", random_features())
    out = tmp_path / "sim"
    code, stdout, err = run_cli(["simmatrix", "--features", path, "--embedding", "onehot", "--out", out] + FAST)
    assert code == 0, err
    report = json.loads((out / "simmatrix.json").read_text())["features"]["feats"]["embeddings"]["onehot"]
    np.testing.assert_allclose(report["word_matrix"], np.eye(10), atol=1e-12)
    assert report["rsa"] is None and report["rsa_ci"] is None and report["relabel"] is None
    assert "undefined" in report["rsa_note"] and "word" in report["rsa_note"]
    assert report["rsa_note"] in report["warnings"]
    assert "undefined" in stdout and "warning" in stdout
    assert (out / "simmatrix.png").stat().st_size > 0 and (out / "simmatrix.pdf").stat().st_size > 0


def test_simmatrix_on_constant_features_reports_an_undefined_rsa(tmp_path, run_cli):
    path = features_file(tmp_path / "flat.npz", np.ones((200, 5)))
    out = tmp_path / "sim"
    code, stdout, err = run_cli(["simmatrix", "--features", path, "--embedding", "random:8:0", "--out", out] + FAST)
    assert code == 0, err
    report = json.loads((out / "simmatrix.json").read_text())["features"]["flat"]["embeddings"]["random:8:0"]
    assert report["rsa"] is None and report["rsa_ci"] is None and report["relabel"] is None
    assert "feature" in report["rsa_note"]
    assert "undefined" in stdout
    assert (out / "simmatrix.png").exists()


def test_similarity_report_of_orthogonal_words_has_no_rsa():
    from semprobe.stats import similarity_report

    labels = np.repeat(np.arange(4), 10)
    report = similarity_report(random_features(1, 6)[:40], labels, np.eye(4), n_boot=30, n_perm=5)
    assert np.isnan(report.rsa) and report.rsa_ci is None and report.relabel is None
    assert report.rsa_note is not None and report.rsa_note in report.warnings


def test_rsa_of_equal_entries_is_undefined_not_a_ranking_of_rounding_noise():
    from semprobe.errors import DataError
    from semprobe.stats import rsa, rsa_relabel_test

    noise = 1e-15 * np.random.default_rng(0).normal(size=(5, 5))
    flat = np.ones((5, 5)) + noise + noise.T
    words = np.corrcoef(np.random.default_rng(1).normal(size=(5, 8)))
    assert np.isnan(rsa(flat, words))
    with pytest.raises(DataError, match="undefined"):
        rsa_relabel_test(flat, words, n_perm=10)


def test_info_on_a_semprobe_dict_without_arch_is_refused(tmp_path, run_cli):
    import torch

    path = tmp_path / "broken.pt"
    torch.save({"format": "semprobe-checkpoint/1", "model": {}}, path)
    code, _, err = run_cli(["info", "--ckpt", path])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "arch" in err


# --------------------------------------------------------------------------- 11. upper bounds


@pytest.mark.parametrize("command, option", [
    ("cca", "--n-perm"), ("cca", "--n-boot"), ("simmatrix", "--n-perm"), ("simmatrix", "--n-boot"),
    ("simmatrix", "--n-splits"),
])
def test_resampling_counts_have_a_ceiling(command, option, tmp_path, run_cli):
    path = features_file(tmp_path / "feats.npz", random_features())
    out = tmp_path / "out"
    assert_refused(run_cli([command, "--features", path, option, 10**15, "--out", out, "--quiet"]), out, option)


def test_alpha_ranges_have_a_ceiling(digits_ckpt, tmp_path, run_cli):
    out = tmp_path / "out"
    assert_refused(run_cli(["alpha-curve", "--ckpt", digits_ckpt, "--alphas", "0:1:1e-9", "--out", out]), out,
                   "--alphas", "1,000")


def test_alpha_parser_refuses_before_building_the_list():
    from semprobe.options import MAX_ALPHAS, parse_alphas

    assert len(parse_alphas(f"0:1:{1 / (MAX_ALPHAS - 1)}")) == MAX_ALPHAS
    with pytest.raises(ConfigError, match="at most"):
        parse_alphas("0:1:1e-15")
    with pytest.raises(ConfigError, match="at most"):
        parse_alphas(",".join(str(k / 10**6) for k in range(MAX_ALPHAS + 1)))


@pytest.mark.parametrize("args", [
    ["eval", "--attacks", "pgd99999999999999999999999"],
    ["eval", "--attacks", "pgd-ls:0.5:100000000"],
    ["eval", "--attacks", "natural", "--sweep-steps", "1,10,100000000"],
    ["alpha-curve", "--steps", "100000000"],
    ["cca", "--attack", "cw100000000"],
    ["simmatrix", "--adversarial", "--steps", "100000000"],
])
def test_attack_steps_have_a_ceiling(args, digits_ckpt, tmp_path, run_cli):
    out = tmp_path / "out"
    assert_refused(run_cli(args + ["--ckpt", digits_ckpt, "--out", out]), out, "10,000")


def test_attack_spec_parser_refuses_absurd_step_counts():
    from semprobe.attacks.specs import MAX_ATTACK_STEPS, parse_attack

    assert parse_attack(f"pgd{MAX_ATTACK_STEPS}").steps == MAX_ATTACK_STEPS
    with pytest.raises(ConfigError, match="at most"):
        parse_attack(f"pgd{MAX_ATTACK_STEPS + 1}")


def test_limits_are_in_the_help(run_cli):
    for command, fragment in (("cca", "100,000"), ("simmatrix", "100,000"), ("alpha-curve", "1,000 alphas"),
                              ("eval", "10,000 steps")):
        code, stdout, _ = run_cli([command, "--help"])
        assert code == 0 and fragment in " ".join(stdout.split()), (command, fragment)


# --------------------------------------------------------------------------- 12. --pca beyond the features


def test_pca_beyond_the_features_is_clipped_with_a_note(tmp_path, run_cli):
    path = features_file(tmp_path / "feats.npz", random_features(dim=5))
    out = tmp_path / "cca"
    code, stdout, err = run_cli(["cca", "--features", path, "--embedding", "random:8:0", "--pca", 50,
                                 "--n-pairs", 100, "--out", out] + FAST)
    assert code == 0, err
    report = json.loads((out / "cca.json").read_text())["sources"]["feats"]["columns"]["natural"]
    assert report["settings"]["pca"] == [5, 8]
    assert report["settings"]["pca_requested"] == [50, 50]
    assert any("pca" in w and "5 features" in w for w in report["warnings"])
    assert "5 features" in stdout


# --------------------------------------------------------------------------- 13. messages


def test_zero_eps_with_an_attack_blames_eps_before_any_work(digits_ckpt, tmp_path, run_cli):
    out = tmp_path / "out"
    result = run_cli(["eval", "--ckpt", digits_ckpt, "--eps", "0", "--attacks", "natural,pgd5", "--out", out])
    assert_refused(result, out, "--eps", "pgd5")
    assert "step size" not in result[2]


def test_zero_eps_without_attacks_still_gives_clean_accuracy(digits_ckpt, tmp_path, run_cli):
    code, _, err = run_cli(["eval", "--ckpt", digits_ckpt, "--eps", "0", "--attacks", "natural", "--n", 20,
                            "--out", tmp_path / "out", "--quiet"])
    assert code == 0, err


def test_missing_tinyimagenet_says_where_to_put_the_files(digits_ckpt, tmp_path, run_cli, monkeypatch):
    from semprobe import data

    monkeypatch.setattr(data, "SYSTEM_DATA_DIRS", ())
    out = tmp_path / "out"
    result = run_cli(["eval", "--ckpt", digits_ckpt, "--dataset", "tinyimagenet", "--data-dir", tmp_path / "none",
                      "--out", out])
    assert_refused(result, out, "tiny-imagenet-200/", "--data-dir", "$SEMPROBE_DATA", data.TINYIMAGENET_URL)
    assert "pass --download" in result[2]
