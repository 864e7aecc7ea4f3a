"""A command as one process of a torchrun job: what is decided before any process group exists.

The job itself (two processes under torchrun) is tested in test_sharded_commands.py.
"""

import json

import pytest

from semprobe.cli import job
from semprobe.errors import ConfigError


@pytest.mark.parametrize("world_size, expected", [(None, False), ("1", False), ("2", True), ("16", True)])
def test_torchrun_is_recognised_by_its_world_size(world_size, expected, monkeypatch):
    if world_size is None:
        monkeypatch.delenv("WORLD_SIZE", raising=False)
    else:
        monkeypatch.setenv("WORLD_SIZE", world_size)
    assert job.under_torchrun() is expected
    assert job.is_main() or expected


def test_only_the_sharded_commands_run_under_torchrun(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    for name in ("eval", "cca", "simmatrix", "alpha-curve"):
        job.check_command(name)
    with pytest.raises(ConfigError, match="semprobe figures runs as a single process"):
        job.check_command("figures")
    monkeypatch.setenv("WORLD_SIZE", "1")
    job.check_command("figures")


def test_alone_a_command_records_one_process_and_takes_n_images(digits_ckpt, run_cli, tmp_path):
    code, _, err = run_cli(["eval", "--ckpt", digits_ckpt, "--attacks", "natural", "--n-images", "7", "--quiet",
                            "--out", tmp_path])
    assert code == 0, err
    settings = json.loads((tmp_path / "eval.json").read_text())["metadata"]["settings"]
    assert settings["n"] == 7 and settings["processes"] == 1


def test_alone_a_failure_is_its_own_one_line(capsys, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert job.fail(2, "no such file") == 2
    assert capsys.readouterr().err == "semprobe: error: no such file\n"
