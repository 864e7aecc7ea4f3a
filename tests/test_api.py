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
    assert sp.load_model is sp.models.load_model and sp.evaluate is sp.robustness.accuracy.evaluate
    with pytest.raises(AttributeError, match="no attribute 'load_modle'"):
        sp.load_modle  # noqa: B018


# --------------------------------------------------------------------------- load_model


def test_load_model_from_a_semprobe_checkpoint(tmp_path):
    from semprobe.models.checkpoint import save_checkpoint

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


# --------------------------------------------------------------------------- result objects

CLASSES = ["cat", "dog", "ship", "frog"]


@pytest.fixture(scope="module")
def small_problem():
    """A small CNN (random weights) on 40 synthetic 3x8x8 images of 4 classes."""
    torch.manual_seed(0)
    test = sp.load_dataset("fake:3x8x8:4:8:40", "test")
    x, y = test.tensors()
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(6 * 6 * 6, 4)).eval()
    return net, x, y


def pairs_data(seed=0, n_per_class=12, dim=6):
    """Features that carry a class signal, their labels, and random class vectors named CLASSES."""
    rng = torch.Generator().manual_seed(seed)
    labels = torch.arange(len(CLASSES)).repeat_interleave(n_per_class)
    centres = torch.randn(len(CLASSES), dim, generator=rng)
    features = centres[labels] + 0.5 * torch.randn(len(labels), dim, generator=rng)
    return features.numpy(), labels.numpy(), sp.class_vectors("random:5:0", CLASSES)


def test_evaluation_to_dict_from_dict_frame_and_summary(small_problem):
    net, x, y = small_problem
    results = sp.evaluate(net, x, y, "natural,pgd2", eps=8 / 255, classes=CLASSES)
    assert isinstance(results, list) and [r.attack["name"] for r in results] == ["natural", "pgd2"]
    record = results.to_dict()
    assert record["classes"] == CLASSES and record["results"][1]["correct"] == results[1].correct
    assert set(record["results"][0]) == {"attack", "n", "correct", "accuracy", "ci95", "per_class", "seconds",
                                         "per_image", "warnings"}
    assert [r["warnings"] for r in record["results"]] == [[], []]  # only AutoAttack raises reliability warnings
    again = type(results).from_dict(json.loads(json.dumps(record)))
    assert again == results and again.classes == CLASSES and again.to_dict() == record

    frame = results.to_frame()
    assert len(frame) == 2 * len(CLASSES) and set(frame["class"]) == set(CLASSES)
    assert {"attack", "class", "class_accuracy", "accuracy", "ci95_low", "ci95_high", "eps", "norm", "steps"} <= set(
        frame.columns)
    pgd = frame[frame["attack"] == "pgd2"].set_index("class")
    assert pgd.loc["dog", "class_accuracy"] == results[1].per_class[1] and (pgd["steps"] == 2).all()
    assert len(results.to_frame(per_class=False)) == 2 and "class" not in results.to_frame(per_class=False)

    text = str(results)
    assert len(text.splitlines()) < 15 and "pgd2" in text and f"{results[0].accuracy:.1f}%" in text
    assert repr(results) == text and "per_image" not in repr(results[0])


def test_evaluate_and_extract_features_take_attack_names(small_problem):
    net, x, y = small_problem
    (fgsm,) = sp.evaluate(net, x, y, ["fgsm"], eps=0.5, norm="L2")
    assert fgsm.attack["norm"] == "L2" and fgsm.attack["eps"] == 0.5
    features = sp.extract_features(net, x, y, attack="fgsm", eps=8 / 255)
    assert features.features_adv.shape == features.features.shape
    with pytest.raises(ConfigError, match="listed twice"):
        sp.evaluate(net, x, y, ["pgd2", "pgd2"], eps=8 / 255)
    with pytest.raises(ConfigError, match="3 class names"):
        sp.evaluate(net, x, y, "natural", eps=8 / 255, classes=CLASSES[:3], num_classes=4)


def test_cca_report_to_dict_frame_and_summary():
    features, labels, words = pairs_data()
    report = sp.cca_report(features, labels, words, n_pairs=None, n_boot=50, n_perm=50)
    record = report.to_dict()
    assert set(record) == {"settings", "in_sample", "held_out", "warnings", "sample", "train", "test", "classes"}
    assert record["classes"] == CLASSES and record["settings"] == report.settings
    assert record["in_sample"]["r"] == report.in_sample.r and record["held_out"]["ci"] == list(report.held_out.ci)
    assert record["held_out"]["relabel"]["p_value"] == report.held_out.relabel.p_value
    assert "classes" not in sp.cca_report(features, labels, words.vectors, n_pairs=None, n_boot=0, n_perm=0).to_dict()

    frame = report.to_frame()
    assert list(frame["statistic"]) == ["in_sample", "held_out"]
    assert frame["p_relabel"].tolist() == [report.in_sample.relabel.p_value, report.held_out.relabel.p_value]
    assert frame["p_pair_shuffle"].iloc[1] == report.held_out.pair_shuffle.p_value
    assert (frame["n_pairs"] == len(labels)).all() and frame["chance_level"].iloc[0] == pytest.approx(
        report.in_sample.diagnostics.chance_level)

    text = str(report)
    assert len(text.splitlines()) < 15 and repr(report) == text
    for stat in (report.in_sample, report.held_out):
        assert f"r {stat.r:.3f}" in text
        for test in (stat.pair_shuffle, stat.relabel):
            assert f"p = {test.p_value:.3g}" in text


def test_similarity_report_to_dict_frame_and_summary():
    features, labels, words = pairs_data()
    report = sp.similarity_report(features, labels, words, n_boot=50, n_perm=50)
    record = report.to_dict()
    assert record["classes"] == CLASSES and record["rsa"] == report.rsa and record["rsa_ci"] == list(report.rsa_ci)
    assert record["relabel"]["p_value"] == report.relabel.p_value and record["class_counts"] == [12] * 4
    assert "classes" not in sp.similarity_report(features, labels, words.vectors, n_boot=0, n_perm=0).to_dict()

    frame = report.to_frame()
    assert len(frame) == len(CLASSES) * (len(CLASSES) - 1) // 2
    assert set(frame["class_a"]) | set(frame["class_b"]) == set(CLASSES)
    row = frame[(frame["class_a"] == "cat") & (frame["class_b"] == "frog")].iloc[0]
    assert row["feature_similarity"] == pytest.approx(report.feature_matrix[0, 3])
    assert row["word_similarity"] == pytest.approx(report.word_matrix[0, 3])
    assert (frame["p_relabel"] == report.relabel.p_value).all() and (frame["n_boot"] == 50).all()

    text = str(report)
    assert len(text.splitlines()) < 15 and repr(report) == text
    assert f"RSA {report.rsa:.3f}" in text and f"p = {report.relabel.p_value:.3g}" in text


def test_class_names_must_fit_the_class_vectors():
    features, labels, words = pairs_data()
    with pytest.raises(ConfigError, match="3 class names given for 4 class vectors"):
        sp.cca_report(features, labels, words.vectors, n_pairs=None, classes=CLASSES[:3])
    with pytest.raises(ConfigError, match="3 class names"):
        sp.similarity_report(features, labels, words.vectors, classes=CLASSES[:3])


def test_alpha_curve_round_trip_frame_and_summary(small_problem):
    net, x, y = small_problem
    curve = sp.alpha_curve(net, x, y, [0.0, 0.5, 1.0], eps=8 / 255, step_size=2 / 255, steps=2, label="cnn")
    record = curve.to_dict()
    assert set(record) == {"label", "settings", "points", "pgd_ce", "pgd_kl", "alpha_matching_pgd_kl"}
    assert [p["alpha"] for p in record["points"]] == curve.alphas
    assert record["pgd_kl"]["robust"] == curve.kl.robust
    again = type(curve).from_dict(json.loads(json.dumps(record)))
    assert again.to_dict() == record and again.alphas == curve.alphas

    frame = curve.to_frame()
    assert list(frame["attack"]) == ["pgd-ls"] * 3 + ["pgd-ce", "pgd-kl"]
    assert frame["alpha"].iloc[:3].tolist() == curve.alphas and frame["alpha"].iloc[3:].isna().all()
    assert frame["robust_accuracy"].tolist() == [r.robust_accuracy for r in curve.ls + [curve.ce, curve.kl]]
    assert {"label", "eps", "steps", "seed", "success_all_ci95_low"} <= set(frame.columns)

    text = str(curve)
    assert len(text.splitlines()) < 15 and repr(curve) == text and "PGD-KL" in text
    assert f"{curve.kl.robust_accuracy:.1f}%" in text


# --------------------------------------------------------------------------- README, "From Python"
# The examples of README.md's "From Python" section, verbatim. The test runs every line, with
# a fake dataset (glove phrases by aliases), fewer images and random weights in place of the
# downloads: the substitutions are listed beside each run and must each occur exactly once.

RESNET_EXAMPLE = """\
import torch, torchvision
import semprobe as sp

test = sp.load_dataset("cifar10", "test")
x, y = test.tensors(range(500))  # SCARL's 500 image/word pairs
net = torchvision.models.resnet18(num_classes=10)  # any nn.Module: [0,1] pixels in, logits out
net.load_state_dict(torch.load("resnet18_cifar10.pt", weights_only=True))  # your trained weights
model = sp.wrap_model(net, normalization="cifar10")  # the mean/std is applied in front of net

results = sp.evaluate(model, x, y, "natural,pgd20", eps=8/255, classes=test.classes)
print(results)  # accuracy % with its 95% CI per attack, and the weakest class
results.to_frame()  # one row per attack and class, the attack's settings as columns

features = sp.extract_features(model, x, y, attack="pgd20", eps=8/255)  # the input of net.fc, natural and attacked
glove = sp.class_vectors("glove", test.classes, test.phrases)
report = sp.cca_report(features.features, features.labels, glove, n_pairs=len(y))
print(report)  # in-sample and held-out r, chance level, pair-shuffle and relabelling p-values, warnings
report.to_frame()  # one row per statistic, the settings as columns
print(sp.cca_report(features.features_adv, features.labels, glove, n_pairs=len(y)))  # the attacked images
similarity = sp.similarity_report(features.features, features.labels, glove)
print(similarity)  # RSA with its CI and relabelling p-value, the closest class pairs
similarity.to_frame()  # one row per class pair
"""

ROBUSTBENCH_EXAMPLE = """\
import semprobe as sp

test = sp.load_dataset("cifar10", "test")
x, y = test.tensors(range(500))
# RobustBench's own file layout, models/cifar10/Linf/Standard.pt (robustbench.utils.load_model's too);
# download=True fetches the file once. Zoo models normalize inside: semprobe adds no normalization.
model = sp.load_model("robustbench:Standard", dataset="cifar10", model_dir="models", download=True)
print(sp.evaluate(model, x, y, "natural,pgd20", eps=8/255, classes=test.classes))
glove = sp.class_vectors("glove", test.classes, test.phrases)
features = sp.extract_features(model, x, y)  # penultimate; layer="block3" or any module name works too
report = sp.cca_report(features.features, features.labels, glove, n_pairs=len(y))
print(report)
report.to_frame()
print(sp.similarity_report(features.features, features.labels, glove))
"""

CIFAR10_PHRASES = dict(zip([f"class{k}" for k in range(10)],
                           "airplane automobile bird cat deer dog frog horse ship truck".split()))


def run_example(code, substitutions):
    """Run ``code`` (a README example) with each substitution made, in a fresh namespace."""
    for old, new in substitutions.items():
        assert code.count(old) == 1, old
        code = code.replace(old, new)
    namespace = {}
    exec(compile(code, "<README From Python>", "exec"), namespace)
    return namespace


def fake_cifar10(shape):
    """The substitutions of CIFAR-10's test set by 20 fake images (2 per class) of ``shape``."""
    return {'sp.load_dataset("cifar10", "test")':
            f'sp.load_dataset("fake:{shape}:10:20:20", "test", aliases={CIFAR10_PHRASES!r})',
            "range(500)": "range(20)"}


def test_readme_torchvision_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), "resnet18_cifar10.pt")  # random weights
    namespace = run_example(RESNET_EXAMPLE, fake_cifar10("3x8x8"))  # 8x8 images: a faster PGD
    printed = capsys.readouterr().out
    assert "Evaluation: 20 images" in printed and "CCAReport" in printed and "SimilarityReport" in printed
    assert namespace["features"].features.shape == (20, 512) and namespace["features"].features_adv is not None
    assert len(namespace["similarity"].to_frame()) == 45


def test_readme_robustbench_example_runs(zoo_dir, tmp_path, monkeypatch, capsys):
    import shutil

    monkeypatch.chdir(tmp_path)
    shutil.copytree(zoo_dir, "models")  # random weights of a smaller zoo entry, where download=True finds them
    substitutions = {"robustbench:Standard": f"robustbench:{ZOO_NAME}", **fake_cifar10("3x32x32")}
    namespace = run_example(ROBUSTBENCH_EXAMPLE, substitutions)
    printed = capsys.readouterr().out
    assert "Evaluation: 20 images" in printed and "CCAReport" in printed and "SimilarityReport" in printed
    assert namespace["model"].arch == ZOO_SPEC and len(namespace["report"].to_frame()) == 2
