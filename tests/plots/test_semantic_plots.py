"""Figures of the diagnostics: layout, notes, and that they save as PNG (semprobe.plots.semantic)."""

import numpy as np
import pytest

from semprobe.errors import ConfigError
from semprobe.plots.semantic import cca_grid, similarity_grid
from semprobe.stats import cca_report, similarity_report

NAMES = ["t-shirt", "trouser", "pullover", "dress"]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    words = rng.standard_normal((4, 6))
    labels = np.repeat(np.arange(4), 30)
    natural = words[labels] @ rng.standard_normal((6, 20)) + rng.standard_normal((120, 20))
    adversarial = natural + 3 * rng.standard_normal(natural.shape)
    return natural, adversarial, labels, words


def is_png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cca_grid_layout_notes_and_png(data, tmp_path):
    natural, adversarial, labels, words = data
    options = {"n_pairs": 80, "n_boot": 20, "n_perm": 0}
    nat = cca_report(natural, labels, words, **options)
    adv = cca_report(adversarial, labels, words, **options)
    grid = {
        "pgd_at": {"natural": nat, "adversarial": adv, "adv (natural weights)": nat.project(adversarial[nat.test], labels[nat.test])},
        "natural_training": {"natural": nat, "adversarial": adv},
    }
    fig = cca_grid(grid, NAMES)
    assert len(fig.axes) == 6
    assert not fig.axes[5].get_visible()  # the empty cell
    # 6-d words span the 3-d label space in every panel with a report: said once, above the figure
    assert "class separability" in fig._suptitle.get_text()
    assert "chance" in fig.axes[0].get_title()
    for row in (0, 1):  # one axis range per row
        visible = [ax for ax in fig.axes[3 * row: 3 * row + 3] if ax.get_visible()]
        assert len({ax.get_xlim() for ax in visible}) == 1 and len({ax.get_ylim() for ax in visible}) == 1
    fig.canvas.draw()
    width = fig.bbox.width
    for ax in fig.axes[:5]:  # titles inside the figure: none is clipped
        box = ax.title.get_window_extent()
        assert box.x0 >= 0 and box.x1 <= width
    assert max(len(line) for line in fig.axes[2].get_title().splitlines()) <= 48
    assert [t.get_text() for t in fig.legends[0].get_texts()] == NAMES
    fig.savefig(tmp_path / "cca.png", dpi=60)
    assert is_png(tmp_path / "cca.png")
    with pytest.raises(ConfigError):
        cca_grid(grid, NAMES[:3])


def test_similarity_grid_layout_and_png(data, tmp_path):
    natural, adversarial, labels, words = data
    other = np.random.default_rng(1).standard_normal((4, 5))
    options = {"n_boot": 20, "n_perm": 24}
    reports = {
        "nat": {"glove": similarity_report(natural, labels, words, **options), "clip": similarity_report(natural, labels, other, **options)},
        "adv": {"glove": similarity_report(adversarial, labels, words, **options)},
    }
    fig = similarity_grid(reports, NAMES)
    assert len(fig.axes) == 2 + 2 + 1 + 1  # features, words, scatter, colour bar
    heatmaps = [ax for ax in fig.axes if ax.collections and ax.get_title().startswith(("features", "words"))]
    assert len(heatmaps) == 4
    assert len({ax.collections[0].get_clim() for ax in heatmaps}) == 1  # one colour scale
    assert [t.get_text() for t in heatmaps[0].get_xticklabels()] == NAMES
    cells = [t.get_text() for t in heatmaps[0].texts]
    assert len(cells) == 16 and cells[0] == "1.00"  # values printed in the cells
    assert "RSA" in fig.axes[4].get_legend().get_texts()[0].get_text()
    fig.savefig(tmp_path / "sim.png", dpi=60)
    assert is_png(tmp_path / "sim.png")
    mixed = {"nat": {"glove": reports["nat"]["glove"], "clip": reports["adv"]["glove"]}}
    with pytest.raises(ConfigError, match="disagree"):
        similarity_grid(mixed, NAMES)


def test_similarity_scale_is_set_by_off_diagonal_entries_so_controls_do_not_saturate(data):
    natural, _, labels, _ = data
    onehot = np.eye(4)
    rng = np.random.default_rng(2)
    random_words = rng.standard_normal((4, 50))
    options = {"n_boot": 10, "n_perm": 0}
    reports = {"nat": {"onehot": similarity_report(natural, labels, onehot, **options),
                       "random": similarity_report(natural, labels, random_words, **options)}}
    fig = similarity_grid(reports, NAMES)
    heatmaps = [ax for ax in fig.axes if ax.collections and ax.get_title().startswith(("features", "words"))]
    low, high = heatmaps[0].collections[0].get_clim()
    off = np.concatenate([r.word_matrix[~np.eye(4, dtype=bool)] for r in reports["nat"].values()]
                         + [reports["nat"]["onehot"].feature_matrix[~np.eye(4, dtype=bool)]])
    assert (low, high) == pytest.approx((off.min(), off.max()))
    assert high < 1.0  # the diagonal of 1 does not squeeze the scale
