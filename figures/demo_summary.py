"""``summary.md`` of the demo: the papers' findings (semprobe.paper.findings) on the demo's outputs.

Reads the JSON that ``semprobe eval``, ``cca``, ``simmatrix`` and ``alpha-curve`` wrote
into the demo's folder and the training runs' ``metrics.jsonl``, and writes one Markdown
page: how the models were made, a verdict per finding with its numbers and their
uncertainty, the robust-accuracy tables and the list of figures.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

from semprobe.paper.findings import (accuracy_finding, alpha_finding, render_summary, rsa_finding, semantics_finding,
                               separability_finding)
from trainers.spec import selection_key

FIGURE_CAPTIONS = {
    "cca/cca.png": "SCARL Fig. 1 and 5: CCA of features (natural, adversarial, adversarial projected) with GloVe",
    "cca_semantic/cca.png": "the same CCA against GloVe's top principal components (where relabelling can matter)",
    "simmatrix/simmatrix.png": "SCARL Fig. 2: class-similarity matrices of features and of GloVe, with RSA",
    "alpha_curve/alpha_curve.png": "SPAT Fig. 4: PGD-LS attack success vs alpha, PGD-CE and PGD-KL as references",
    "figures/scarl_fig4a_epochs.png": "SCARL Fig. 4 a: validation PGD accuracy per epoch",
    "figures/scarl_fig4b_eps.png": "SCARL Fig. 4 b: PGD-10 accuracy vs eps",
    "figures/scarl_fig4c_steps.png": "SCARL Fig. 4 c: PGD accuracy vs steps",
    "figures/spat_fig2_examples.png": "SPAT Fig. 2: CW-inf adversarial examples of the PGD-AT model",
    "figures/spat_fig3_examples.png": "SPAT Fig. 3: PGD-CE vs PGD-LS examples of the PGD-AT model",
}


def _load(folder: Path, name: str) -> dict:
    return json.loads((folder / name).read_text())


def _first_table(markdown: str) -> str:
    """The title and overall table of an eval.md, without the per-class tables."""
    return markdown.split("\n## ", 1)[0].replace("# ", "#### ", 1).strip()


def _read_run(folder: Path) -> tuple[list[dict], dict, float]:
    """A training run's epoch records, its config, and the seconds it logged (training and validation)."""
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line.strip()]
    config = json.loads((folder / "config.json").read_text())
    return records, config, sum(r.get("train_time_s", 0) + r.get("eval_time_s", 0) for r in records)


def _training_lines(runs: dict[str, Path]) -> list[str]:
    """A row per run: its epochs, the chosen (best) epoch's validation accuracies and the training time."""
    rows = ["| method | epochs | chosen epoch | validation clean % | validation PGD-10 % | training time |",
            "|---|---|---|---|---|---|"]
    for method, folder in runs.items():
        records, config, seconds = _read_run(folder)
        selection = selection_key(config["method"], config.get("base"))  # the metric that chose best.pt
        best = max(records, key=lambda record: record[selection])
        rows.append(f"| {method} | {records[-1]['epoch']} | {best['epoch']} | {100 * best['val_clean_acc']:.1f} | "
                    f"{100 * best['val_pgd_acc']:.1f} | {seconds / 60:.1f} min |")
    return rows


def _check_line(run: Path) -> str:
    """The end-to-end training check the demo ran beside the zoo: what it trained and what it reached."""
    records, config, seconds = _read_run(run)
    last = records[-1]
    return (f"End-to-end check of the trainers, run by this demo: {config['method']} for {last['epoch']} epoch(s) "
            f"on {config.get('max_train_images') or 'all'} training images (PGD-{config['steps']} training attack) "
            f"reached {100 * last['val_clean_acc']:.1f}% clean and {100 * last['val_pgd_acc']:.1f}% PGD-10 accuracy "
            f"on {config['val_size']} validation images in {seconds / 60:.1f} min.")


def name_by_method(document: dict, names: dict[str, str]) -> None:
    """Rename, in place, a command JSON's checkpoint labels to the demo's method names."""
    def renamed(mapping: dict) -> dict:
        out = {}
        for key, value in mapping.items():
            base, suffix = (key[: -len(" (adversarial)")], " (adversarial)") if key.endswith(" (adversarial)") else (key, "")
            out[names.get(base, base) + suffix] = value
        return out

    for key in ("sources", "features", "checkpoints"):
        if key in document:
            document[key] = renamed(document[key])
    for curve in document.get("curves", []):
        curve["label"] = names.get(curve["label"], curve["label"])


def _models_line(models, config: dict, profile) -> str:
    """The summary's line on where the six models come from and how they were trained."""
    images = config.get("max_train_images") or "all"
    if models.source == "zoo":
        return (f"- Models: the study's well-trained zoo (figures/study/, `python figures/study.py`): the small CNN "
                f"trained at eps {config['eps']:.3g} (L-inf, pixels in [0,1]) on {images} training images, the "
                f"robust methods for {config['epochs']} epochs with a PGD-{config['steps']} training attack of step "
                f"{config['step_size']:.3g}; each checkpoint is its run's best epoch by validation PGD-10 accuracy "
                "(natural: by validation clean accuracy). Beside them, one short pgd_at run shows the trainers work "
                "end to end. A check of the papers' claims on another dataset, not a reproduction of their CIFAR "
                "numbers.")
    return (f"- Models: the small CNN, trained here at eps {config['eps']:.3g} (L-inf, pixels in [0,1]) on "
            f"{images} training images for {config['epochs']} epochs (natural: {profile.natural_epochs}), "
            f"training attack PGD-{config['steps']} with step {config['step_size']:.3g}; spat_madry with alpha "
            f"{config.get('alpha') or 0.2}. Each checkpoint is the run's best epoch by validation PGD-10 accuracy "
            "(natural: by validation clean accuracy). Briefly trained models: a check of the analyses on real data, "
            "not of the papers' claims.")


def write_summary(stage: Path, models, dataset: str, data_line: str, profile, profile_name: str, jobs,
                  elapsed: float) -> Path:
    """Compose ``stage/summary.md`` from the outputs in ``stage`` and the models' runs."""
    outputs = {name: _load(stage / folder, file) for name, folder, file in (
        ("cca", "cca", "cca.json"), ("semantic", "cca_semantic", "cca.json"), ("sim", "simmatrix", "simmatrix.json"),
        ("eval", "eval", "eval.json"), ("eval_aa", "eval_aa", "eval.json"), ("alpha", "alpha_curve", "alpha_curve.json"))}

    for document in outputs.values():  # the commands' labels (pgd_at/best, or pgd_at for a zoo file) -> methods
        name_by_method(document, models.labels)
    config = json.loads((models.runs["pgd_at"] / "config.json").read_text())
    cached = [job.name.removeprefix("train ") for job in jobs if job.cached and job.output is None]
    reused = [job.name for job in jobs if job.cached and job.output is not None]
    findings = [
        separability_finding(outputs["cca"], "pgd_at", "natural"),
        semantics_finding(outputs["semantic"], outputs["sim"], "pgd_at", "natural"),
        rsa_finding(outputs["sim"], "pgd_at", "natural"),
        accuracy_finding([outputs["eval"], outputs["eval_aa"]], "scarl", "trades"),
        alpha_finding(outputs["alpha"], ["natural", "pgd_at"], "pgd_at"),
    ]
    preamble = [
        f"Made by `python figures/demo.py --profile {profile_name}` (`make demo` runs the full profile) in "
        f"{elapsed / 60:.1f} minutes on "
        f"{platform.machine()} with {os.cpu_count()} CPU core(s)"
        + (f"; the trained runs of {', '.join(cached)} came from the cache" if cached else "")
        + (f"; the outputs of {', '.join(reused)} were reused (same command, inputs and semprobe code)"
           if reused else "") + ".",
        "",
        f"- {data_line}.",
        _models_line(models, config, profile),
        f"- Analyses (every command is in [commands.txt](commands.txt)): eval on {profile.eval_n} test images, "
        f"AutoAttack (standard; about 10 s per robust image on one CPU core, so `--aa-n` sets how many) on "
        f"{profile.aa_n}, CCA on {profile.cca_pairs} image/word pairs (half held out), "
        f"similarity matrices on {profile.sim_n} images, alpha curves on {profile.alpha_n} images; bootstrap "
        f"{profile.n_boot} replicates, permutation nulls {profile.n_perm}. Adversarial images: PGD-20 at eps 0.1, "
        "step eps/4 (alpha curves: eps/10, as SPAT). All 95% intervals.",
        "",
        "Training (the chosen epoch of each run):",
        "",
    ] + _training_lines({m: models.runs[m] for m in ("natural", "fgsm", "pgd_at", "trades", "scarl", "spat_madry")})
    if models.check_run is not None:
        preamble += ["", "Training times are as the runs logged them: one CPU thread each, on a machine shared with "
                     "other runs, so they compare loosely.", "", _check_line(models.check_run)]
    tables = ["## Robust accuracy", "",
              _first_table((stage / "eval" / "eval.md").read_text()), "",
              _first_table((stage / "eval_aa" / "eval.md").read_text())]
    figures = ["## Figures", ""] + [f"- [{path}]({path}): {caption}" for path, caption in FIGURE_CAPTIONS.items()
                                    if (stage / path).is_file()]
    text = render_summary(f"semprobe demo: SCARL and SPAT findings on {dataset}", preamble, findings,
                          ["\n".join(tables), "\n".join(figures)])
    path = stage / "summary.md"
    path.write_text(text)
    (stage / "findings.json").write_text(json.dumps(
        [{"title": f.title, "verdict": f.verdict, "numbers": f.numbers} for f in findings], indent=1, default=str))
    return path
