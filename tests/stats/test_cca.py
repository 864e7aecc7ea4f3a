"""CCA: closed form against independent algorithms, traps, nulls, report (semprobe.stats.cca)."""

import itertools
import json

import numpy as np
import pytest
import scipy.linalg
from sklearn.covariance import ledoit_wolf_shrinkage
from sklearn.cross_decomposition import CCA as SklearnCCA
from sklearn.decomposition import PCA

from semprobe.errors import ConfigError, DataError
from semprobe.stats import CCA, cca_report, pair_shuffle_test, random_matrix_chance, relabel_test
from semprobe.stats.cca_nulls import _pair_shuffle_held_out, _pair_shuffle_in_sample


def correlated_pairs(n, p, q, rho, seed=0):
    """X (n x p), Y (n x q) whose only population canonical correlation is ``rho`` (first coordinates)."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal(n)
    X = rng.standard_normal((n, p))
    Y = rng.standard_normal((n, q))
    X[:, 0] = latent
    Y[:, 0] = rho * latent + np.sqrt(1 - rho**2) * Y[:, 0]
    mix_x, mix_y = rng.standard_normal((p, p)), rng.standard_normal((q, q))  # hide the structure
    return X @ mix_x + 3.0, Y @ mix_y - 1.0


def qr_cca(X, Y):
    """Bjorck & Golub (1973): orthonormal bases of the centred data, SVD of their product."""
    qx = np.linalg.qr(X - X.mean(axis=0))[0]
    qy = np.linalg.qr(Y - Y.mean(axis=0))[0]
    return scipy.linalg.svdvals(qx.T @ qy)


def class_pairs(n_per_class, n_classes, p, q, signal, seed=0):
    """Features carrying the word geometry: ``X = W[label] A * signal + noise``."""
    rng = np.random.default_rng(seed)
    words = rng.standard_normal((n_classes, q))
    labels = np.repeat(np.arange(n_classes), n_per_class)
    features = signal * words[labels] @ rng.standard_normal((q, p)) + rng.standard_normal((labels.size, p))
    return features, labels, words


@pytest.mark.parametrize("method", ["svd", "cov", "cholesky"])
def test_closed_form_equals_qr_algorithm(method):
    X, Y = correlated_pairs(400, 8, 5, 0.7)
    model = CCA(method=method).fit(X, Y)
    np.testing.assert_allclose(model.canonical_correlations_, qr_cca(X, Y), atol=1e-10)
    x_var, y_var = model.transform(X, Y)
    np.testing.assert_allclose(CCA(method=method).fit_transform(X, Y)[0], x_var)
    # Canonical variates: unit variance, uncorrelated within a side, cross-covariance diag(rho).
    np.testing.assert_allclose(x_var.T @ x_var / 399, np.eye(5), atol=1e-9)
    np.testing.assert_allclose(y_var.T @ y_var / 399, np.eye(5), atol=1e-9)
    np.testing.assert_allclose(x_var.T @ y_var / 399, np.diag(model.canonical_correlations_), atol=1e-9)


def test_first_correlation_matches_sklearn():
    X, Y = correlated_pairs(2000, 10, 4, 0.6, seed=1)
    ours = CCA(n_components=1).fit(X, Y)
    sk = SklearnCCA(n_components=1, max_iter=2000, tol=1e-12).fit(X, Y)
    sk_x, sk_y = sk.transform(X, Y)
    assert abs(np.corrcoef(sk_x[:, 0], sk_y[:, 0])[0, 1] - ours.canonical_correlations_[0]) < 1e-4
    assert abs(ours.score(X, Y) - ours.canonical_correlations_[0]) < 1e-12


def test_rank_deficient_inputs_report_their_ranks():
    rng = np.random.default_rng(2)
    base = rng.standard_normal((60, 5))
    X = np.hstack([base, base @ rng.standard_normal((5, 95))])  # 100 columns of rank 5
    Y = rng.standard_normal((60, 3))
    for method in ("svd", "cov", "cholesky"):
        model = CCA(method=method).fit(X, Y)
        d = model.diagnostics_
        assert (d.rank_x, d.rank_y, d.dim_x, d.p) == (5, 3, 5, 100)
        np.testing.assert_allclose(model.canonical_correlations_, qr_cca(base, Y), atol=1e-7)
    wide = rng.standard_normal((30, 80))  # n < p: rank n - 1 after centring
    for method in ("svd", "cov", "cholesky"):
        assert CCA(method=method).fit(wide, Y[:30]).diagnostics_.rank_x == 29


def test_ridge_matches_the_regularised_eigenproblem_and_ledoit_wolf():
    X, Y = correlated_pairs(300, 6, 4, 0.5, seed=3)
    c_x, c_y = 0.3, 0.1
    model = CCA(ridge=(c_x, c_y)).fit(X, Y)
    cholesky = CCA(ridge=(c_x, c_y), method="cholesky").fit(X, Y)
    np.testing.assert_allclose(cholesky.canonical_correlations_, model.canonical_correlations_, atol=1e-10)

    def shrunk(S, c):
        return (1 - c) * S + c * np.trace(S) / S.shape[0] * np.eye(S.shape[0])

    S = np.cov(np.hstack([X, Y]).T)
    sxx, syy, sxy = shrunk(S[:6, :6], c_x), shrunk(S[6:, 6:], c_y), S[:6, 6:]
    rho2 = scipy.linalg.eigh(sxy @ np.linalg.solve(syy, sxy.T), sxx, eigvals_only=True)[::-1][:4]
    np.testing.assert_allclose(model.canonical_correlations_**2, rho2, atol=1e-10)

    for method in ("svd", "cholesky"):
        auto = CCA(ridge="auto", method=method).fit(X, Y).diagnostics_
        assert auto.shrinkage_x == pytest.approx(ledoit_wolf_shrinkage(X - X.mean(0), assume_centered=True), abs=1e-10)
        assert auto.shrinkage_y == pytest.approx(ledoit_wolf_shrinkage(Y - Y.mean(0), assume_centered=True), abs=1e-10)


def test_pca_equals_cca_on_principal_component_scores():
    X, Y = correlated_pairs(300, 12, 6, 0.8, seed=4)
    model = CCA(pca=(4, 3)).fit(X, Y)
    scores_x, scores_y = PCA(4).fit_transform(X), PCA(3).fit_transform(Y)
    np.testing.assert_allclose(model.canonical_correlations_, qr_cca(scores_x, scores_y), atol=1e-10)
    assert (model.diagnostics_.dim_x, model.diagnostics_.dim_y) == (4, 3)


def test_same_data_same_weights_and_validation():
    X, Y = correlated_pairs(100, 4, 3, 0.5)
    a, b = CCA().fit(X, Y), CCA().fit(X, Y)
    np.testing.assert_array_equal(a.x_weights_, b.x_weights_)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        CCA().fit(bad, Y)
    with pytest.raises(DataError, match="same number of rows"):
        CCA().fit(X, Y[:-1])
    with pytest.raises(ConfigError, match="ridge"):
        CCA(ridge=1.5).fit(X, Y)
    with pytest.raises(ConfigError, match="method"):
        CCA(method="qr").fit(X, Y)
    with pytest.raises(ConfigError, match="n_components"):
        CCA(n_components=4).fit(X, Y)
    with pytest.raises(ConfigError, match="pca needs"):
        CCA(method="cholesky", pca=2).fit(X, Y)
    for method in ("svd", "cov", "cholesky"):
        with pytest.raises(DataError, match="no variance"):
            CCA(method=method).fit(X, np.ones((100, 2)))


def test_chance_level_matches_simulated_null_for_class_word_vectors():
    n, p, n_classes = 300, 20, 6
    rng = np.random.default_rng(5)
    words = rng.standard_normal((n_classes, 10))
    labels = np.arange(n) % n_classes
    firsts = [CCA(n_components=1).fit(rng.standard_normal((n, p)), words[labels]).canonical_correlations_[0] for _ in range(300)]
    edge, q95 = random_matrix_chance(n, p, n_classes - 1)
    assert abs(np.quantile(firsts, 0.95) - q95) < 0.02
    assert 0.7 < np.mean(np.array(firsts) < edge) < 0.93  # the edge sits near the TW1 83rd percentile
    assert random_matrix_chance(50, 40, 9) == (1.0, 1.0)


def test_permutation_nulls_equal_refitting_from_scratch():
    X, Y = correlated_pairs(80, 6, 3, 0.4, seed=6)
    model = CCA(ridge=(0.2, "auto"), pca=(5, None)).fit(X, Y)
    sx, sy = model._whitenings
    values = _pair_shuffle_in_sample(sx.apply(X), sy.apply(Y), 5, np.random.default_rng(0))
    rng = np.random.default_rng(0)
    brute = [CCA(ridge=(0.2, "auto"), pca=(5, None)).fit(X, Y[rng.permutation(80)]).canonical_correlations_[0] for _ in range(5)]
    np.testing.assert_allclose(values, brute, atol=1e-10)

    train, test = np.arange(50), np.arange(50, 80)
    fit = CCA(n_components=1, ridge=0.1).fit(X[train], Y[train])
    fx, fy = fit._whitenings
    held = _pair_shuffle_held_out((fx.apply(X[train]), fy.apply(Y[train])), (fx.apply(X[test]), fy.apply(Y[test])), 4, np.random.default_rng(1))
    rng = np.random.default_rng(1)  # one block: the four training shuffles are drawn first
    train_shuffles = [rng.permutation(50) for _ in range(4)]
    test_shuffles = [rng.permutation(30) for _ in range(4)]
    expected = []
    for shuffled_train, shuffled_test in zip(train_shuffles, test_shuffles):
        refit = CCA(n_components=1, ridge=0.1).fit(X[train], Y[train][shuffled_train])
        expected.append(refit.score(X[test], Y[test][shuffled_test]))
    np.testing.assert_allclose(held, expected, atol=1e-10)


@pytest.mark.parametrize("ridge, pca", [(("auto", None), None), ((0.2, "auto"), (None, 2)), (None, (4, None))])
def test_relabel_null_is_exact_over_all_24_relabellings(ridge, pca):
    features, labels, words = class_pairs(15, 4, 6, 2, signal=1.0, seed=7)
    report = cca_report(features, labels, words, n_pairs=None, n_boot=0, n_perm=10, ridge=ridge, pca=pca, random_state=3)
    perms = list(itertools.permutations(range(4)))
    codes = labels[report.sample]
    in_sample = [CCA().fit(features[report.sample], words[list(perm)][codes]).canonical_correlations_[0] for perm in perms]
    held_out = []
    for perm in perms:
        relabelled = words[list(perm)]
        fit = CCA(n_components=1, ridge=ridge, pca=pca).fit(features[report.train], relabelled[labels[report.train]])
        held_out.append(fit.score(features[report.test], relabelled[labels[report.test]]))
    for test, brute in ((report.in_sample.relabel, in_sample), (report.held_out.relabel, held_out)):
        assert test.exact and test.n_perm == 24
        np.testing.assert_allclose(test.null_values, brute, atol=1e-8)
        assert test.p_value == pytest.approx(np.mean(np.array(brute) >= test.observed - 1e-9))
        assert test.observed == pytest.approx(brute[0], abs=1e-8)  # the identity comes first


def test_relabel_null_detects_word_geometry_only_when_present():
    n_classes = 7
    features, labels, words = class_pairs(40, n_classes, 10, 3, signal=1.5, seed=8)
    semantic = relabel_test(features, labels, words)
    assert semantic.exact and semantic.n_perm == 5040
    assert semantic.p_value < 0.01
    other_words = np.random.default_rng(9).standard_normal(words.shape)
    assert relabel_test(features, labels, other_words).p_value > 0.05
    # Word vectors spanning the labels (q >= K-1): every relabelling is the same CCA.
    wide_words = np.random.default_rng(10).standard_normal((n_classes, 12))
    assert relabel_test(features, labels, wide_words).p_value == 1.0


def test_planted_correlation_is_inside_the_held_out_interval():
    rng = np.random.default_rng(11)
    n_classes, rho = 5, 0.6
    means = np.array([-1.5, -0.5, 0.0, 0.5, 1.5])
    means = (means - means.mean()) / means.std()  # between-class variance 1
    labels = np.repeat(np.arange(n_classes), 600)
    features = rng.standard_normal((labels.size, 5))
    features[:, 0] = means[labels] + np.sqrt(1 / rho**2 - 1) * rng.standard_normal(labels.size)
    words = rng.standard_normal((n_classes, 8))  # spans the labels: population rho_1 = rho
    report = cca_report(features, labels, words, n_pairs=2000, n_boot=300, n_perm=50, random_state=0)
    low, high = report.held_out.ci
    assert low < rho < high
    assert high - low < 0.1
    assert report.in_sample.diagnostics.labels_only


def test_pure_noise_with_n_below_p_is_flagged_and_held_out_sits_at_chance():
    rng = np.random.default_rng(12)
    labels = np.repeat(np.arange(5), 60)
    features = rng.standard_normal((300, 400))
    words = rng.standard_normal((5, 10))
    report = cca_report(features, labels, words, n_pairs=200, n_boot=200, n_perm=200, random_state=1)
    paper = report.in_sample
    assert paper.diagnostics.saturated and paper.r == pytest.approx(1.0)
    assert paper.diagnostics.chance_level == 1.0
    assert paper.pair_shuffle.p_value == 1.0  # every shuffle also gives 1
    assert any("whatever the data" in w for w in report.warnings)
    held = report.held_out
    assert abs(held.r) < 0.25
    assert held.pair_shuffle.quantile(0.01) < held.r < held.pair_shuffle.quantile(0.99)


def test_k_distinct_warning_for_word_vectors_not_for_continuous_y():
    features, labels, words = class_pairs(30, 6, 8, 10, signal=1.0, seed=13)
    assert CCA().fit(features, words[labels]).diagnostics_.labels_only
    assert any("one-hot" in w for w in CCA().fit(features, words[labels]).diagnostics_.warnings)
    continuous = words[labels] + np.random.default_rng(0).standard_normal((labels.size, 10))
    assert not CCA().fit(features, continuous).diagnostics_.labels_only
    signed_zero = words[labels].copy()
    signed_zero[labels == 0, 1] = np.where(np.arange(30) % 2, 0.0, -0.0)  # one value, two bit patterns
    assert CCA().fit(features, signed_zero).diagnostics_.n_distinct_y == 6
    narrow = class_pairs(30, 6, 8, 3, signal=1.0, seed=13)[2]  # rank 3 < K-1 = 5
    diagnostics = CCA().fit(features, narrow[labels]).diagnostics_
    assert diagnostics.n_distinct_y == 6 and not diagnostics.labels_only


def test_report_is_deterministic_serialisable_and_projects():
    features, labels, words = class_pairs(40, 5, 12, 3, signal=1.0, seed=14)
    kwargs = {"n_pairs": 150, "n_boot": 50, "n_perm": 30, "random_state": 4}
    first, second = cca_report(features, labels, words, **kwargs), cca_report(features, labels, words, **kwargs)
    assert first.to_dict() == second.to_dict()
    assert cca_report(features, labels, words, **{**kwargs, "random_state": 5}).to_dict() != first.to_dict()
    json.dumps(first.to_dict())
    projected = first.project(features[first.test], labels[first.test])
    np.testing.assert_allclose(projected.x, first.held_out.variates.x)
    assert projected.r == pytest.approx(first.held_out.r)
    assert first.settings["n_train"] + first.settings["n_test"] == 150
    assert np.bincount(labels[first.sample]).tolist() == [30] * 5


def test_report_refuses_bad_input():
    features, labels, words = class_pairs(10, 4, 5, 2, signal=1.0)
    with pytest.raises(ConfigError, match="n_pairs"):
        cca_report(features, labels, words, n_pairs=41)
    with pytest.raises(DataError, match="fewer than 2"):
        cca_report(features[:31], labels[:31], words, n_pairs=None)
    with pytest.raises(DataError, match=r"\[0, 4\)"):
        cca_report(features, labels + 1, words, n_pairs=None)
    with pytest.raises(ConfigError, match="held_out_fraction"):
        cca_report(features, labels, words, n_pairs=None, held_out_fraction=1.0)
    with pytest.raises(ConfigError, match="pca"):
        cca_report(features, labels, words, n_pairs=None, pca=0)
    with pytest.raises(ConfigError, match="pca needs"):
        cca_report(features, labels, words, n_pairs=None, pca=3, method="cholesky")


def test_pair_shuffle_test_is_small_for_associated_and_uniformish_for_independent_data():
    X, Y = correlated_pairs(300, 5, 3, 0.5, seed=15)
    assert pair_shuffle_test(X, Y, n_perm=200).p_value < 0.01
    rng = np.random.default_rng(16)
    independent = pair_shuffle_test(rng.standard_normal((300, 5)), rng.standard_normal((300, 3)), n_perm=200)
    assert independent.p_value > 0.05
    assert independent.quantile(0.95) == pytest.approx(random_matrix_chance(300, 5, 3)[1], abs=0.03)
