"""The study's analyses: the ``semprobe`` commands run on the zoo's models, each into ``results/NAME/``.

Every analysis is one command over committed models (``models/NAME.pt``), written into
``figures/study/results/NAME/`` with a ``study-job.json`` that records the command and
the SHA-256 of every model it read. It counts as done while both still hold, so a
retrained model reruns exactly the analyses that read it, and nothing else (a change to
semprobe's code does not: the study's numbers are hours of CPU, and the commands record
semprobe's version in their JSON).

==================  ========================================================================
``eval_NAME``       every main model on the whole 10,000-image test split: natural, FGSM,
                    PGD-20, PGD-100, CW-100 (SCARL Table 1, SPAT Tables 1-2); ablation and
                    grid models: natural and PGD-20 at their training eps (Tables 4, 5, 7;
                    SPAT Fig. 5)
``eval_NAME_at_eps0.1``  grid models trained at another eps: PGD-20 at eps 0.1 on the same
                    images (SPAT Fig. 5 scores every model at one eps, 8/255 there)
``aa_NAME``         AutoAttack (standard) with natural and PGD-20 on the same 500 images,
                    for the models the SCARL-vs-TRADES claim compares, and pgd_at and
                    spat_madry (SPAT Table 1's Madry pair)
``square_NAME``     Square alone with 20,000 queries and 2 restarts, with natural and PGD-20,
                    on the same 500 images as ``aa_NAME`` (scarl and trades): a black-box
                    attack that beats PGD says the gradients mislead
``table3_scarl``    SCARL Table 3: PGD on CE, on the TRADES KL and on L_info (2,000 images)
``cca``             SCARL Fig. 1 and 5: CCA with GloVe, 1,000 pairs, adversarial projected
``cca_semantic``    the same against GloVe's top 3 principal components (claim C1 b)
``simmatrix``       SCARL Fig. 2: class similarity with GloVe and the random/onehot controls
``alpha_curve``     SPAT Fig. 4: PGD-LS success vs alpha, PGD-CE and PGD-KL as references
``figures``         ``semprobe figures`` on the main models: SCARL Fig. 1, 2, 4 a-c, 5 and SPAT
                    Fig. 2, 3, 4 as PNG/PDF with the numbers behind them
``figures_batch``   SCARL Fig. 4 d from the batch group's training logs
``figures_grid``    SPAT Fig. 5 from the grid's training logs (validation accuracy; the grid
                    table of the report has the test-split numbers)
==================  ========================================================================
"""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

MAIN = ("natural", "fgsm", "pgd_at", "trades", "mart", "tla", "scarl", "spat_madry", "spat_trades", "spat_mart")
SEMANTIC_COMPONENTS = 3
STATS = ("--n-boot", "1000", "--n-perm", "1000")
FIGURES_OF_MODELS = ("scarl_fig1_cca", "scarl_fig5_cca", "scarl_fig2_simmatrix", "scarl_fig4a_epochs",
                     "scarl_fig4b_eps", "scarl_fig4c_steps", "spat_fig4_alpha", "spat_fig2_examples",
                     "spat_fig3_examples")
EPS_SWEEP = "0,0.025,0.05,0.1,0.15,0.2"
GRID_EVAL_EPS = "0.1"  # SPAT Fig. 5 scores every grid model at one eps (8/255 on CIFAR-10), the study's eps here
STRONG_SQUARE = "square20000x2"  # Square alone, 4x AutoAttack's queries and a second restart


@dataclass(frozen=True)
class Analysis:
    """One semprobe command of the study: its output name, command, models and options."""

    name: str
    command: str
    models: tuple[str, ...]
    options: tuple[str, ...]
    flags: tuple[str, ...] = ()  # how each model goes in (default --ckpt); --runs passes its training logs

    def argv(self, models_dir: Path, results_dir: Path) -> list[str]:
        """``python`` arguments; ``{results}`` in an option names the results folder."""
        inputs = []
        for model, flag in zip(self.models, self.flags or ("--ckpt",) * len(self.models)):
            path = models_dir.parent / "logs" / model if flag == "--runs" else models_dir / f"{model}.pt"
            inputs += [flag, str(path)]
        options = [option.replace("{results}", str(results_dir)) for option in self.options]
        return ["-m", "semprobe", self.command, *inputs, *options, "--quiet", "--overwrite",
                "--out", str(results_dir / self.name)]

    def display(self) -> str:
        """The command as typed from the repository root."""
        argv = self.argv(Path("figures/study/models"), Path("figures/study/results"))
        return " ".join(["semprobe"] + [shlex.quote(a) for a in argv[2:]])


def analyses(runs) -> list[Analysis]:
    """Every analysis of the study, for the study's runs (each eval at its run's training eps)."""
    found = []
    for run in runs:
        attacks = "natural,fgsm,pgd20,pgd100,cw100" if run.group == "main" else "natural,pgd20"
        found.append(Analysis(f"eval_{run.name}", "eval", (run.name,), ("--attacks", attacks, "--eps", run.eps)))
    for run in runs:  # clean accuracy does not depend on eps: eval_NAME has it
        if run.group == "grid" and run.eps != GRID_EVAL_EPS:
            found.append(Analysis(grid_eval_name(run.name), "eval", (run.name,),
                                  ("--attacks", "pgd20", "--eps", GRID_EVAL_EPS)))
    # the SCARL-vs-TRADES claim, then SPAT's Madry pair (about 35 CPU-minutes each on 500 images)
    for model in ("trades", "scarl", "pgd_at", "spat_madry"):
        found.append(Analysis(f"aa_{model}", "eval", (model,), ("--attacks", "natural,pgd20,aa", "--n", "500",
                                                               "--eps", "0.1")))
    # AutoAttack's advice after its Square flag on scarl (about 30 CPU-minutes each: 40,000 iterations per chunk)
    for model in ("trades", "scarl"):
        found.append(Analysis(f"square_{model}", "eval", (model,), ("--attacks", f"natural,pgd20,{STRONG_SQUARE}",
                                                                    "--n", "500", "--eps", "0.1")))
    found.append(Analysis("table3_scarl", "eval", ("scarl",), ("--attacks", "pgd-ce,pgd-kl,pgd-info", "--n", "2000",
                                                               "--eps", "0.1")))
    compared = ("natural", "fgsm", "pgd_at", "trades", "scarl")
    found.append(Analysis("cca", "cca", compared, ("--n-pairs", "1000", "--project-adversarial", "--eps", "0.1",
                                                   *STATS)))
    components = f"{{results}}/glove_pc{SEMANTIC_COMPONENTS}.npy"
    found.append(Analysis("cca_semantic", "cca", compared, ("--embedding", f"file:{components}", "--n-pairs", "1000",
                                                            "--eps", "0.1", *STATS)))
    found.append(Analysis("simmatrix", "simmatrix", compared, ("--embedding", "glove", "--embedding", "random",
                                                               "--embedding", "onehot", "--adversarial", "--n", "5000",
                                                               "--eps", "0.1", *STATS)))
    found.append(Analysis("alpha_curve", "alpha-curve", ("natural", "pgd_at", "trades"),
                          ("--alphas", "0:1:0.1", "--n", "1000", "--steps", "20", "--step-size", "eps/10",
                           "--eps", "0.1")))
    return found + figure_analyses(runs)


def grid_eval_name(run_name: str) -> str:
    """The analysis that scores a grid model at :data:`GRID_EVAL_EPS` (its own eval uses its training eps)."""
    return f"eval_{run_name}_at_eps{GRID_EVAL_EPS}"


def figure_analyses(runs) -> list[Analysis]:
    """The papers' figures drawn by ``semprobe figures``: those of the main models (SCARL Fig. 1, 2, 4 a-c, 5,
    SPAT Fig. 2-4; PGD-AT in the robust role), SCARL Fig. 4 d across the batch group, SPAT Fig. 5 across the
    grid."""
    roles = (("--natural", "natural"), ("--fgsm", "fgsm"), ("--robust", "pgd_at"), ("--trades", "trades"),
             ("--scarl", "scarl"), ("--runs", "pgd_at"), ("--runs", "trades"), ("--runs", "scarl"))
    found = [Analysis("figures", "figures", tuple(m for _, m in roles),
                      ("--only", ",".join(FIGURES_OF_MODELS), "--eps", "0.1", "--eps-sweep", EPS_SWEEP, "--n", "1000",
                       "--n-pairs", "1000", "--max-steps", "500", *STATS), tuple(f for f, _ in roles))]
    for name, group, figure in (("figures_batch", "batch", "scarl_fig4d_batch"),
                                ("figures_grid", "grid", "spat_fig5_alpha_sweep")):
        members = tuple(run.name for run in runs if run.group == group)
        if members:
            found.append(Analysis(name, "figures", members, ("--only", figure), ("--runs",) * len(members)))
    return found


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def analysis_record(analysis: Analysis, models_dir: Path) -> dict:
    """What an analysis' outputs depend on: its command and the bytes of the models it reads."""
    return {"command": analysis.display(),
            "models": {m: sha256(models_dir / f"{m}.pt") for m in analysis.models}}


def analysis_done(analysis: Analysis, models_dir: Path, results_dir: Path) -> bool:
    marker = results_dir / analysis.name / "study-job.json"
    if not marker.is_file() or not all((models_dir / f"{m}.pt").is_file() for m in analysis.models):
        return False
    try:
        return json.loads(marker.read_text()) == analysis_record(analysis, models_dir)
    except (OSError, json.JSONDecodeError):
        return False


def prepare_inputs(analysis: Analysis, results_dir: Path, write_components: Callable[[Path], None]) -> None:
    """Files an analysis reads besides the models (GloVe's principal components for cca_semantic)."""
    if analysis.name == "cca_semantic":
        write_components(results_dir / f"glove_pc{SEMANTIC_COMPONENTS}.npy")
