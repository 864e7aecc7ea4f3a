"""Bad input to ``python -m trainers``: one line on stderr, exit code 2, nothing written."""

from __future__ import annotations

import pytest

from trainers.__main__ import main

RUN = ["--dataset", "digits", "--arch", "small_cnn"]


def fails_cleanly(argv, capsys, out) -> str:
    """Run ``argv``; check the exit code 2, the single ``trainers: error:`` line and that ``out`` was not made."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    message = captured.err.strip()
    assert "\n" not in message and message.startswith("trainers: error: "), captured.err
    assert captured.out == ""
    assert not out.exists()
    return message


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["boosting", *RUN], ["'boosting' is not one of", "'natural'", "'scarl'", "'spat_mart'"]),
        (["pgd_at", "--dataset", "digits", "--arch", "resnet9"], ["unknown arch 'resnet9'", "preact_resnet18", "small_cnn"]),
        (["pgd_at", "--dataset", "mnist", "--arch", "small_cnn"], ["unknown dataset 'mnist'", "cifar10", "fashion-mnist"]),
        (["scarl", *RUN, "--preset", "scarl-imagenet"], ["'scarl-imagenet' is not one of", "'scarl-cifar10'", "'spat-cifar100'"]),
        (["spat_madry", *RUN, "--alpha", "1.5"], ["alpha must be in [0, 1], got 1.5"]),
        (["spat_trades", *RUN, "--alpha", "-0.1"], ["alpha must be in [0, 1], got -0.1"]),
        (["spat_madry", *RUN], ["spat_madry needs --alpha"]),
        (["pgd_at", *RUN, "--eps", "-0.1"], ["eps must be in [0, 1]"]),
        (["pgd_at", *RUN, "--eps", "0"], ["eps must be > 0"]),
        (["pgd_at", *RUN, "--alpha", "0.1"], ["--alpha applies to spat_madry, spat_trades, spat_mart, rst, not to pgd_at"]),
        (["trades", *RUN, "--tau", "0.1"], ["--tau applies to scarl, not to trades"]),
        (["fgsm", *RUN, "--steps", "5"], ["--steps applies to"]),
        (["natural", *RUN, "--step-size", "eps/4"], ["--step-size applies to"]),
        (["scarl", *RUN, "--tau", "0"], ["--tau must be > 0, got 0"]),
        (["scarl", *RUN, "--centre-momentum", "1"], ["--centre-momentum must be in [0, 1)"]),
        (["pgd_at", *RUN, "--epochs", "many"], ["Invalid value for '--epochs': 'many' is not a valid integer"]),
        (["pgd_at", *RUN, "--milestones", "9,3"], ["milestones must increase"]),
        (["scarl", *RUN, "--embedding", "word2vec"], ["unknown word-vector provider 'word2vec'"]),
        (["pgd_at", "--arch", "small_cnn"], ["Missing option '--dataset'"]),
        (["pgd_at", *RUN, "--batch-size", "0"], ["--batch-size must be >= 1, got 0"]),
        (["pgd_at", "--dataset", "fake:1x2x2:3:16:8", "--arch", "small_cnn"], ["small_cnn cannot classify the 2x2 images"]),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, argv, expected):
    out = tmp_path / "run"
    message = fails_cleanly([*argv, "--out", str(out)], capsys, out)
    for part in expected:
        assert part in message


def test_missing_out_and_missing_run_are_reported(tmp_path, capsys):
    assert "--out RUNDIR is required" in fails_cleanly(["pgd_at", *RUN], capsys, tmp_path / "none")
    message = fails_cleanly(["pgd_at", *RUN, "--resume", str(tmp_path / "run")], capsys, tmp_path / "run")
    assert "nothing to resume" in message


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A one-epoch natural run on 64 digits."""
    out = tmp_path_factory.mktemp("runs") / "natural"
    argv = ["natural", *RUN, "--max-train-images", "64", "--batch-size", "32", "--eval-steps", "1",
            "--epochs", "1", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    return out


def snapshot(run) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in run.iterdir()}


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["pgd_at", *RUN, "--epochs", "2"], "holds a natural run of small_cnn on digits; it cannot be resumed as pgd_at"),
        (["natural", "--dataset", "digits", "--arch", "preact_resnet18", "--epochs", "2"], "cannot be resumed as natural of preact_resnet18"),
        (["natural", *RUN, "--epochs", "2", "--lr", "0.5"], "cannot resume"),
        (["natural", *RUN, "--epochs", "1"], "has already run 1 of 1 epochs"),
    ],
)
def test_resuming_with_another_method_arch_or_settings_is_refused(finished_run, capsys, argv, expected):
    before = snapshot(finished_run)
    assert main([*argv, "--resume", str(finished_run)]) == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message and message.startswith("trainers: error: ") and expected in message
    assert snapshot(finished_run) == before


def test_an_existing_run_is_not_overwritten_unless_asked(finished_run, capsys):
    before = snapshot(finished_run)
    argv = ["natural", *RUN, "--max-train-images", "64", "--batch-size", "32", "--eval-steps", "1",
            "--epochs", "1", "--quiet", "--out", str(finished_run)]
    assert main(argv) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert snapshot(finished_run) == before


# ----------------------------------------------------------------------------- the click command line

LIGHT_CHECK = """
import sys
from trainers.__main__ import main
code = main(sys.argv[1:])
heavy = sorted(name for name in sys.modules if name.split(".")[0] in ("torch", "numpy", "torchvision")
               or name in ("semprobe.data", "semprobe.models", "trainers.loop", "trainers.methods"))
print("HEAVY", heavy, "CODE", code)
"""


@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["--version"], ["scarl", "--help"], ["boosting", *RUN]])
def test_help_version_and_usage_errors_do_not_import_torch(argv):
    """``python -m trainers --help`` answers without torch: the command line is parsed first."""
    import subprocess
    import sys

    finished = subprocess.run([sys.executable, "-c", LIGHT_CHECK, *argv], capture_output=True, text=True, timeout=120)
    assert finished.stdout.strip().splitlines()[-1] == f"HEAVY [] CODE {2 if argv[0] == 'boosting' else 0}", \
        finished.stdout + finished.stderr


def test_version_and_help(capsys):
    from semprobe import __version__
    from trainers.spec import METHOD_SPECS

    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Usage: python -m trainers [OPTIONS] METHOD")
    for section in ("data, model and run:", "optimisation", "training attack:", "per-epoch evaluation",
                    "SCARL [scarl only]:", "TLA [tla only]:", "Examples:", "--no-augment", "--no-struc"):
        assert section in text, section
    for name in METHOD_SPECS:
        assert f"\n  {name} " in text, name
    assert main(["pgd_at", "--help"]) == 0 and capsys.readouterr().out == text  # METHOD --help: the same help


def test_only_the_options_typed_count_as_given():
    """An option typed with its default value is given (it pins a resumed run); one left out is not."""
    from trainers.cli import parse_command_line
    from trainers.config import parse_args

    method, given = parse_command_line(["trades", *RUN, "--epochs", "100", "--no-augment", "--eps", "8/255"])
    assert method == "trades"
    assert given == {"dataset": "digits", "arch": "small_cnn", "augment": False, "epochs": 100, "eps": "8/255"}
    assert list(given) == ["dataset", "arch", "augment", "epochs", "eps"]  # the help's order, not the typed one
    _, flags = parse_command_line(["scarl", *RUN, "--no-info", "--overwrite"])
    assert flags["no_info"] is True and flags["overwrite"] is True and "no_struc" not in flags
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--help"])
    assert exit_info.value.code == 0
