"""The matching alpha's bootstrap interval (SPAT Fig. 4) and the per-image outcomes it is built from."""

import numpy as np
import pytest

from semprobe.robustness.alpha_curves import alpha_curve, matching_alpha, matching_alpha_interval

ALPHAS = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


def planted_flags(n: int, seed: int = 0):
    """Robust accuracy 40 + 40 alpha (%) under PGD-LS and 60% under PGD-KL: they match at alpha 0.5.

    Images are nested (an image robust at alpha also is at every larger alpha), as for a real curve."""
    rng = np.random.default_rng(seed)
    difficulty = rng.random(n)
    ls = np.stack([difficulty < (0.4 + 0.4 * a) for a in ALPHAS], axis=1)
    kl = difficulty < 0.6
    return ls, kl


def test_the_interval_equals_a_bootstrap_by_explicit_resampling():
    ls, kl = planted_flags(500)
    ours = matching_alpha_interval(ALPHAS, ls, kl, n_boot=200, seed=3)
    rng = np.random.default_rng(3)
    values = []
    for _ in range(200):
        index = rng.integers(0, 500, 500)
        values.append(matching_alpha(ALPHAS, (100 * ls[index].mean(axis=0)).tolist(), 100 * kl[index].mean())["alpha"])
    defined = [v for v in values if v is not None]
    assert ours["ci95"] == pytest.approx([np.percentile(defined, 2.5), np.percentile(defined, 97.5)], rel=1e-12)
    assert ours["undefined_share"] == pytest.approx(1 - len(defined) / 200)


def test_the_interval_holds_the_estimate_and_shrinks_with_more_images():
    results = {}
    for n in (400, 8000):
        ls, kl = planted_flags(n)
        point = matching_alpha(ALPHAS, (100 * ls.mean(axis=0)).tolist(), 100 * kl.mean())["alpha"]
        results[n] = matching_alpha_interval(ALPHAS, ls, kl, n_boot=400, seed=0)
        low, high = results[n]["ci95"]
        assert low <= point <= high and abs(point - 0.5) < 0.1  # planted: 0.5
    small, large = results[400], results[8000]
    assert large["ci95"][1] - large["ci95"][0] < 0.5 * (small["ci95"][1] - small["ci95"][0])
    assert large["undefined_share"] == 0.0


def test_no_crossing_gives_no_interval():
    ls, _ = planted_flags(300)
    always_robust = np.ones(300, dtype=bool)  # PGD-KL never succeeds: above every PGD-LS point
    result = matching_alpha_interval(ALPHAS, ls, always_robust, n_boot=50)
    assert result["ci95"] is None and result["undefined_share"] == 1.0


def test_alpha_curve_keeps_per_image_outcomes_and_reports_the_interval(digits_model):
    model, x, y = digits_model
    curve = alpha_curve(model, x[:120], y[:120], [0.0, 0.5, 1.0], eps=0.1, step_size=0.02, steps=5, batch_size=50)
    clean = (model(x[:120]).argmax(1) == y[:120]).numpy()
    for rate in curve.ls + [curve.ce, curve.kl]:
        assert rate.per_image.shape == (120,) and int(rate.per_image.sum()) == rate.robust
        assert not (rate.per_image & ~clean).any()  # robust implies correct before the attack
    record = curve.to_dict()
    assert set(record["pgd_kl"]["per_image"]) <= {"0", "1"} and len(record["pgd_kl"]["per_image"]) == 120
    match = record["alpha_matching_pgd_kl"]
    assert {"n_boot", "undefined_share"} <= set(match)
    if match["alpha"] is not None and match["ci95"] is not None:
        assert match["ci95"][0] <= match["ci95"][1]
    low, high = curve.ls[0].ci95("success_all")
    assert low <= curve.ls[0].success_all <= high
