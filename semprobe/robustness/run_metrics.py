"""Reading a training run's ``metrics.jsonl`` and ``config.json`` as curves (SCARL Fig. 4 a, d).

A run folder (written by ``python -m trainers``) holds one JSON line per epoch with the
validation accuracies ``val_clean_acc`` and ``val_pgd_acc`` (fractions), and the run's
settings in ``config.json``. The lines record accuracies only, not the number of
validation images, so these curves carry no interval (their CI is the point itself).
"""

from __future__ import annotations

import json
from pathlib import Path

from semprobe.robustness.curves import Curve, CurvePoint
from semprobe.errors import DataError
from semprobe.robustness.run_folder import CONFIG, METRICS, VAL_CLEAN, VAL_PGD

ACCURACY_KEYS = {VAL_PGD: "PGD", VAL_CLEAN: "clean"}


def read_run(run_dir: str | Path) -> tuple[dict, list[dict]]:
    """``(config, metric lines)`` of a run folder; one clear error when it is not one."""
    run_dir = Path(run_dir)
    config_path, metrics_path = run_dir / CONFIG, run_dir / METRICS
    for path in (config_path, metrics_path):
        if not path.is_file():
            raise DataError(f"{run_dir} is not a training run: {path.name} is missing")
    try:
        config = json.loads(config_path.read_text())
        lines = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise DataError(f"{run_dir}: cannot parse its config.json or metrics.jsonl ({exc})") from None
    if not lines:
        raise DataError(f"{run_dir}: metrics.jsonl has no epochs yet")
    return config, lines


def _flat_point(x: float, fraction: float) -> CurvePoint:
    accuracy = 100.0 * float(fraction)
    return CurvePoint(float(x), accuracy, (accuracy, accuracy), 0)


def accuracy_vs_epoch(run_dir: str | Path, key: str = VAL_PGD, label: str | None = None) -> Curve:
    """Validation accuracy (%) per epoch of one run (SCARL Fig. 4 a plots PGD-10 accuracy)."""
    config, lines = read_run(run_dir)
    points = [_flat_point(line["epoch"], line[key]) for line in lines if line.get(key) is not None]
    if not points:
        raise DataError(f"{run_dir}: metrics.jsonl records no {key}")
    folder, method = Path(run_dir).name, config.get("method", "?")
    name = label or (f"{folder} ({ACCURACY_KEYS.get(key, key)})" if folder == method
                     else f"{folder}: {method} ({ACCURACY_KEYS.get(key, key)})")
    return Curve(name, "epoch", {"run": str(run_dir), "metric": key, "interval": "none recorded"}, points)


def accuracy_vs_batch_size(run_dirs, key: str = VAL_PGD) -> list[Curve]:
    """Final-epoch accuracy (%) against the run's batch size, a curve per method (SCARL Fig. 4 d)."""
    by_method: dict[str, list[CurvePoint]] = {}
    for run_dir in run_dirs:
        config, lines = read_run(run_dir)
        last = lines[-1]
        if last.get(key) is None or config.get("batch_size") is None:
            raise DataError(f"{run_dir}: needs batch_size in config.json and {key} in metrics.jsonl")
        by_method.setdefault(str(config.get("method")), []).append(_flat_point(config["batch_size"], last[key]))
    return [Curve(method, "batch size", {"metric": key, "epoch": "last", "interval": "none recorded"},
                  sorted(points, key=lambda p: p.x)) for method, points in by_method.items()]


def accuracy_vs_alpha(run_dirs) -> list[Curve]:
    """Last-epoch clean and PGD accuracy (%) against the runs' alpha, a curve per training eps
    and accuracy (SPAT Fig. 5, from a sweep of spat_* runs); runs without an alpha are left out."""
    curves: dict[tuple[str, float], list[CurvePoint]] = {}
    for run_dir in run_dirs:
        config, lines = read_run(run_dir)
        if config.get("alpha") is None:
            continue
        for key, name in ((VAL_CLEAN, "clean"), (VAL_PGD, "PGD")):
            if lines[-1].get(key) is not None:
                eps = float(config.get("eps", float("nan")))
                curves.setdefault((name, eps), []).append(_flat_point(config["alpha"], lines[-1][key]))
    return [Curve(f"{name}, trained at eps {eps:.4g}", "alpha", {"metric": name, "train_eps": eps, "epoch": "last",
                                                                 "interval": "none recorded"},
                  sorted(points, key=lambda p: p.x)) for (name, eps), points in sorted(curves.items())]
