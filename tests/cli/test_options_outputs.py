"""Parsing of user numbers, and all-or-nothing output directories."""

import json

import pytest

from semprobe.errors import ConfigError, SemprobeError
from semprobe.options import parse_alphas, parse_eps, parse_int_list, parse_step_size, resolve_device
from semprobe.cli.outputs import OutputDir, run_metadata


@pytest.mark.parametrize("text, value", [("8/255", 8 / 255), ("0.031", 0.031), ("0.1", 0.1), (0.5, 0.5), ("0", 0.0)])
def test_eps_spellings(text, value):
    assert parse_eps(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["-0.1", "2", "8/0", "eight", "nan", "1/2/3"])
def test_bad_eps(text):
    with pytest.raises(ConfigError):
        parse_eps(text)


def test_step_size_relative_to_eps():
    assert parse_step_size("eps/10", 0.1) == pytest.approx(0.01)
    assert parse_step_size("2.5*eps", 0.1) == pytest.approx(0.25)
    assert parse_step_size("2/255", 0.1) == pytest.approx(2 / 255)
    with pytest.raises(ConfigError):
        parse_step_size("0", 0.1)


def test_alpha_lists():
    assert parse_alphas("0:1:0.1") == pytest.approx([i / 10 for i in range(11)])
    assert parse_alphas("1e-5,5e-5,1e-4") == [1e-5, 5e-5, 1e-4]
    assert parse_alphas("0.2,0.2,0.8") == [0.2, 0.8]
    for bad in ["", "0:1", "0:1:0", "0.5,1.5", "-0.1"]:
        with pytest.raises(ConfigError):
            parse_alphas(bad)


def test_int_lists_and_devices():
    assert parse_int_list("10,20", "steps") == [10, 20]
    with pytest.raises(ConfigError):
        parse_int_list("0,5", "steps")
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(ConfigError):
        resolve_device("tpu")


def test_output_dir_is_all_or_nothing(tmp_path):
    out = tmp_path / "results"
    with pytest.raises(RuntimeError):
        with OutputDir(out) as staged:
            staged.write_json("a.json", {"x": 1})
            raise RuntimeError("boom")
    assert not out.exists() or list(out.iterdir()) == []
    with OutputDir(out) as staged:
        staged.write_json("a.json", {"x": float("nan"), "t": (1, 2)})
        staged.write_text("a.md", "hi")
    assert json.loads((out / "a.json").read_text()) == {"x": None, "t": [1, 2]}
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "a.md"]


def test_output_dir_refuses_to_overwrite(tmp_path):
    (tmp_path / "a.json").write_text("old")
    with pytest.raises(SemprobeError, match="--overwrite"):
        OutputDir(tmp_path, expected=["a.json"])
    with pytest.raises(SemprobeError, match="--overwrite"):
        with OutputDir(tmp_path) as staged:
            staged.write_text("a.json", "new")
    assert (tmp_path / "a.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    with OutputDir(tmp_path, overwrite=True) as staged:
        staged.write_text("a.json", "new")
    assert (tmp_path / "a.json").read_text() == "new"


def test_run_metadata_records_settings_and_versions():
    meta = run_metadata(eps=0.1, seed=3)
    assert meta["settings"] == {"eps": 0.1, "seed": 3}
    assert meta["packages"]["torch"] and meta["semprobe_version"]
