"""SPAT Fig. 2/3 example grids: correctly classified images, one class each first; labels on the panels."""

import torch

from semprobe.plots.example_grids import attack_columns, correct_examples, example_grid


class _Scripted(torch.nn.Module):
    """Predicts the class written in the first pixel of each image."""

    def forward(self, x):
        return torch.nn.functional.one_hot(x[:, 0, 0, 0].long(), 3).float()


def test_correct_examples_are_correct_and_cover_the_classes_first():
    predicted = torch.tensor([0, 0, 1, 2, 1, 2, 0])
    labels = torch.tensor([0, 0, 2, 2, 1, 1, 0])  # correct at 0, 1, 3, 4, 6
    images = predicted.float().view(-1, 1, 1, 1).expand(-1, 1, 2, 2).clone()
    chosen = correct_examples(_Scripted(), images, labels, 4)
    assert chosen.tolist() == [0, 3, 4, 1]  # classes 0, 2, 1 first, then a second image of class 0
    assert correct_examples(_Scripted(), images, labels, 10).tolist() == [0, 3, 4, 1, 6]


def test_example_grid_names_true_and_predicted_classes(digits_model):
    model, x, y = digits_model
    index = correct_examples(model, x[:50], y[:50], 3)
    assert len(index) == 3 and (model(x[index]).argmax(1) == y[index]).all()
    columns = attack_columns(model, x[index], y[index], {})
    figure = example_grid(columns, y[index], [str(k) for k in range(10)])
    axes = figure.axes
    assert axes[0].get_ylabel() == f"true: {int(y[index[0]])}" and axes[0].get_title().startswith("pred: ")


def test_epoch_curves_name_a_run_once_and_tick_whole_epochs(tmp_path):
    import json

    from semprobe.plots.curves import curves_figure
    from semprobe.robustness.run_metrics import accuracy_vs_epoch

    labels = []
    for folder, method in (("pgd_at", "pgd_at"), ("run7", "trades")):
        run = tmp_path / folder
        run.mkdir()
        (run / "config.json").write_text(json.dumps({"method": method}))
        (run / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e, "val_pgd_acc": 0.5}) + "\n" for e in (1, 2, 3)))
        labels.append(accuracy_vs_epoch(run).label)
    assert labels == ["pgd_at (PGD)", "run7: trades (PGD)"]
    curves = [accuracy_vs_epoch(tmp_path / "pgd_at")]
    figure = curves_figure(curves)
    figure.canvas.draw()
    ticks = [t for t in figure.axes[0].get_xticks() if 1 <= t <= 3]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_alpha_sweep_gives_one_colour_per_training_eps_and_a_line_style_per_metric(tmp_path):
    import json

    from matplotlib.colors import to_hex

    from semprobe.plots.curves import curves_figure, line_styles
    from semprobe.robustness.run_metrics import accuracy_vs_alpha

    runs = []
    for eps in (0.05, 0.1):
        for alpha in (0.0, 0.2):
            run = tmp_path / f"eps{eps}_alpha{alpha}"
            run.mkdir()
            (run / "config.json").write_text(json.dumps({"method": "spat_madry", "eps": eps, "alpha": alpha}))
            (run / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "val_clean_acc": 0.8, "val_pgd_acc": 0.6}) + "\n")
            runs.append(run)
    curves = accuracy_vs_alpha(runs)
    axis = curves_figure(curves).axes[0]
    lines = axis.get_lines()
    # each interval band has its line's colour
    assert [to_hex(band.get_facecolor()[0], keep_alpha=False) for band in axis.collections] == [
        to_hex(line.get_color()) for line in lines]
    by_label = {line.get_label(): (to_hex(line.get_color()), line.get_linestyle()) for line in lines}
    clean, pgd = by_label["clean, trained at eps 0.05"], by_label["PGD, trained at eps 0.05"]
    assert clean[0] == pgd[0] and clean[1] != pgd[1]  # one colour for the eps, two line styles
    assert by_label["PGD, trained at eps 0.1"][0] != pgd[0]
    assert len({colour for colour, _ in by_label.values()}) == 2 and len({s for _, s in by_label.values()}) == 2
    # one metric only (SCARL Fig. 4 a style): a colour per curve, solid lines
    assert line_styles([c for c in curves if c.fixed["metric"] == "PGD"]) == [(0, "-"), (1, "-")]
