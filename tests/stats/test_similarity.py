"""Class-similarity matrices, RSA and its relabelling null (semprobe.stats.similarity)."""

import itertools
import json

import numpy as np
import pytest
from scipy.stats import spearmanr

from semprobe.errors import DataError
from semprobe.stats import class_mean_gram, rsa, rsa_relabel_test, similarity_report, word_cosine_matrix


def class_features(n_per_class, means, noise, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(means.shape[0]), n_per_class)
    return means[labels] + noise * rng.standard_normal((labels.size, means.shape[1])), labels


def cosine(a, b):
    return a @ b / np.linalg.norm(a) / np.linalg.norm(b)


def test_class_mean_gram_by_hand():
    rng = np.random.default_rng(0)
    features, labels = class_features(7, rng.standard_normal((4, 6)) + 2.0, 1.0)
    means = np.stack([features[labels == k].mean(axis=0) for k in range(4)])
    expected = np.array([[cosine(a, b) for b in means] for a in means])
    np.testing.assert_allclose(class_mean_gram(features, labels), expected, atol=1e-12)
    centred = means - means.mean(axis=0)
    expected = np.array([[cosine(a, b) for b in centred] for a in centred])
    np.testing.assert_allclose(class_mean_gram(features, labels, centre=True), expected, atol=1e-12)


def test_split_half_gram_by_hand():
    rng = np.random.default_rng(1)
    features, labels = class_features(9, rng.standard_normal((3, 5)), 1.0, seed=1)
    got = class_mean_gram(features, labels, split_half=True, n_splits=1, random_state=7)
    split = np.random.default_rng(7)
    halves = [split.permutation(np.flatnonzero(labels == k)) for k in range(3)]
    a = np.stack([features[h[: h.size // 2]].mean(axis=0) for h in halves])
    b = np.stack([features[h[h.size // 2 :]].mean(axis=0) for h in halves])
    expected = np.empty((3, 3))
    for i, j in itertools.product(range(3), repeat=2):
        expected[i, j] = (a[i] @ b[j] + b[i] @ a[j]) / 2 / np.sqrt((a[i] @ b[i]) * (a[j] @ b[j]))
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_split_half_removes_the_small_sample_attenuation():
    # Many dimensions, few images per class: noise inflates every class mean's norm.
    means = np.zeros((3, 50))
    means[:, :3] = [[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.6, 0.8]]
    upper = np.triu_indices(3, 1)
    truth = np.array([[cosine(a, b) for b in means] for a in means])[upper]
    plain, split = [], []
    for seed in range(200):
        features, labels = class_features(20, means, 1.0, seed=seed)
        plain.append(class_mean_gram(features, labels)[upper])
        split.append(class_mean_gram(features, labels, split_half=True, random_state=seed)[upper])
    assert np.abs(np.mean(plain, axis=0) - truth).max() > 0.3  # plain cosines shrink towards 0
    assert np.abs(np.nanmedian(split, axis=0) - truth).max() < 0.1


def test_word_cosine_and_rsa_against_scipy():
    rng = np.random.default_rng(2)
    words = rng.standard_normal((6, 4))
    unit = words / np.linalg.norm(words, axis=1, keepdims=True)
    np.testing.assert_allclose(word_cosine_matrix(words), unit @ unit.T, atol=1e-12)
    feature_matrix = np.corrcoef(rng.standard_normal((6, 9)))
    rows, cols = np.triu_indices(6, 1)
    expected = spearmanr(feature_matrix[rows, cols], (unit[rows] * unit[cols]).sum(axis=1)).statistic
    assert rsa(feature_matrix, word_cosine_matrix(words)) == pytest.approx(expected, abs=1e-12)
    with pytest.raises(DataError, match="zero"):
        word_cosine_matrix(np.vstack([words, np.zeros(4)]))


def test_rsa_relabel_test_is_exact_for_four_classes():
    rng = np.random.default_rng(3)
    feature_matrix, word_matrix = np.corrcoef(rng.standard_normal((4, 5))), np.corrcoef(rng.standard_normal((4, 5)))
    test = rsa_relabel_test(feature_matrix, word_matrix)
    rows, cols = np.triu_indices(4, 1)
    brute = [
        spearmanr(feature_matrix[rows, cols], word_matrix[np.ix_(perm, perm)][rows, cols]).statistic
        for perm in itertools.permutations(range(4))
    ]
    assert test.exact and test.n_perm == 24
    np.testing.assert_allclose(test.null_values, brute, atol=1e-12)
    assert test.p_value == pytest.approx(np.mean(np.array(brute) >= test.observed - 1e-9))


def test_rsa_relabel_small_for_word_geometry_large_otherwise():
    rng = np.random.default_rng(4)
    words = rng.standard_normal((8, 6))
    features, labels = class_features(20, words @ rng.standard_normal((6, 30)), 1.0, seed=4)
    semantic = similarity_report(features, labels, words, n_boot=100, n_perm=0, random_state=0)
    test = rsa_relabel_test(semantic.feature_matrix, semantic.word_matrix)
    assert test.exact and test.n_perm == 40320 and test.p_value < 0.001
    unrelated = rsa_relabel_test(semantic.feature_matrix, word_cosine_matrix(rng.standard_normal((8, 6))))
    assert unrelated.p_value > 0.05
    low, high = semantic.rsa_ci
    assert -1 < low < semantic.rsa < high < 1


def test_similarity_report_flags_lost_classes_and_serialises():
    rng = np.random.default_rng(5)
    means = rng.standard_normal((4, 6)) * 3
    features, labels = class_features(10, means, 0.5, seed=5)
    x = rng.standard_normal(6)
    features = np.vstack([features, x, -x])  # class 4: two images whose halves disagree
    labels = np.concatenate([labels, [4, 4]])
    words = rng.standard_normal((5, 3))
    report = similarity_report(features, labels, words, split_half=True, n_splits=1, n_boot=50, n_perm=100, random_state=1)
    assert np.isnan(report.feature_matrix[4]).all()
    assert any("class(es) [4]" in w for w in report.warnings)
    finite = np.isfinite(report.feature_matrix[np.triu_indices(5, 1)])
    rows, cols = np.triu_indices(5, 1)
    expected = spearmanr(report.feature_matrix[rows, cols][finite], report.word_matrix[rows, cols][finite]).statistic
    assert report.rsa == pytest.approx(expected)
    payload = report.to_dict()
    json.dumps(payload)
    assert payload["feature_matrix"][4][0] is None and payload["class_counts"] == [10, 10, 10, 10, 2]
    again = similarity_report(features, labels, words, split_half=True, n_splits=1, n_boot=50, n_perm=100, random_state=1)
    assert again.to_dict() == payload


def test_similarity_report_refuses_bad_input():
    features, labels = class_features(3, np.eye(4), 0.1)
    with pytest.raises(DataError, match="fewer than 1"):
        similarity_report(features, labels, np.eye(5))
    with pytest.raises(DataError, match="fewer than 2"):
        similarity_report(features[:-2], labels[:-2], np.eye(4), split_half=True)
    with pytest.raises(DataError, match="at least 3 classes"):
        similarity_report(features[:6], labels[:6], np.eye(2))
