"""Hostile files and hostile file systems (issue 12, items 1, 7, 8, 9 and 13).

* Every path that reads a file -- checkpoint, ``--resume``, ``.npz`` features, ``.npy``
  vectors, gensim ``.kv`` word vectors, the word cache, the YAML figures manifest, CIFAR
  batches, CLIP weights -- is fed a pickle whose ``__reduce__`` runs ``touch MARKER``; the
  marker must never appear.
* An ``--out`` that cannot be written is refused in one line, exit 2, before any work.
* Staged outputs leave no hidden ``.staging-*`` folder after a SIGKILL (cleaned on the
  next run) and no empty ``--out`` after a Ctrl-C.
* Atomically written files follow the umask, as ``open()`` would.
* The CLIP offline error and an unwritable word cache are one line on stderr.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from semprobe.io import atomic_path, write_text_atomic
from semprobe.cli.outputs import OutputDir

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SMALL_CLIP = "ViT-S-32-alt"
TRAIN_RUN = ["--dataset", "digits", "--arch", "small_cnn", "--max-train-images", "64", "--batch-size", "32",
             "--eval-steps", "1", "--quiet"]
REPO = Path(__file__).resolve().parents[1]


class Touch:
    """Unpickling this runs ``touch PATH``: the payload of every crafted file below."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


def crafted_pickle(path: Path, marker: Path) -> Path:
    """Write a bare pickle of :class:`Touch` to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(Touch(marker), protocol=4))
    return path


def crafted_npy(path: Path, marker: Path) -> Path:
    """A ``.npy`` holding an object array whose element is a :class:`Touch`."""
    array = np.empty(1, dtype=object)
    array[0] = Touch(marker)
    with open(path, "wb") as handle:  # a handle: np.save would append .npy to other names
        np.save(handle, array, allow_pickle=True)
    return path


def assert_one_line_error(code, err) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("semprobe: error: "), err


def features_file(path: Path, n: int = 60, p: int = 6) -> Path:
    """Random features of ``n`` digits images (labels cycling over the ten classes)."""
    rng = np.random.default_rng(0)
    np.savez(path, features=rng.standard_normal((n, p)).astype(np.float32), labels=np.arange(n) % 10,
             classes=np.array(DIGITS))
    return path


def small_kv(path: Path, **save_kwargs):
    """A real gensim KeyedVectors holding the ten digit words, saved to ``path``; returns it."""
    from gensim.models import KeyedVectors

    vectors = KeyedVectors(4)
    vectors.add_vectors(DIGITS, np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32))
    vectors.save(str(path), **save_kwargs)
    return vectors


# ---------------------------------------------------------------- crafted .kv files (item 1)


def kv_bare_pickle(path: Path, marker: Path) -> None:
    crafted_pickle(path, marker)


def kv_payload_inside(path: Path, marker: Path) -> None:
    """A genuine KeyedVectors pickle with the payload hidden in one of its attributes."""
    from gensim.models import KeyedVectors

    vectors = KeyedVectors(4)
    vectors.add_vectors(DIGITS, np.ones((10, 4), dtype=np.float32))
    vectors.lifecycle_events = [{"note": Touch(marker)}]
    with open(path, "wb") as handle:
        pickle.dump(vectors, handle, protocol=4)


def kv_payload_in_separate_npy(path: Path, marker: Path) -> None:
    """A clean .kv whose large array lives in ``PATH.vectors.npy``, replaced by a pickled object array."""
    small_kv(path, sep_limit=1)
    assert Path(f"{path}.vectors.npy").is_file()
    crafted_npy(Path(f"{path}.vectors.npy"), marker)


def kv_payload_as_sparse_matrix(path: Path, marker: Path) -> None:
    """A .kv that names a 'sparse matrix' attribute, which gensim unpickles from a side file."""
    from gensim.models import KeyedVectors

    vectors = KeyedVectors(4)
    vectors.add_vectors(DIGITS, np.ones((10, 4), dtype=np.float32))
    vectors.__dict__["__scipys"] = ["extra"]
    with open(path, "wb") as handle:
        pickle.dump(vectors, handle, protocol=4)
    crafted_pickle(Path(f"{path}.extra.npy"), marker)


@pytest.mark.parametrize("craft", [kv_bare_pickle, kv_payload_inside, kv_payload_in_separate_npy,
                                   kv_payload_as_sparse_matrix])
def test_crafted_kv_runs_no_code_in_embed(tmp_path, run_cli, craft):
    marker, path = tmp_path / "MARKER", tmp_path / "vectors.kv"
    craft(path, marker)
    code, _, err = run_cli(["embed", "--dataset", "digits", "--embedding", f"glove:{path}"])
    assert not marker.exists()
    assert_one_line_error(code, err)
    assert str(path) in err


@pytest.mark.parametrize("command", ["cca", "simmatrix"])
def test_crafted_kv_runs_no_code_in_the_feature_commands(tmp_path, run_cli, command):
    marker, path = tmp_path / "MARKER", tmp_path / "vectors.kv"
    kv_payload_inside(path, marker)
    feats = features_file(tmp_path / "feats.npz")
    extra = ["--n-pairs", "40"] if command == "cca" else []
    code, _, err = run_cli([command, "--features", feats, "--embedding", f"glove:{path}", "--n-boot", "0",
                            "--n-perm", "0", "--out", tmp_path / "out", *extra])
    assert not marker.exists()
    assert_one_line_error(code, err)
    assert not (tmp_path / "out").exists()


def test_crafted_kv_runs_no_code_in_the_scarl_trainer(tmp_path, capsys):
    from trainers.__main__ import main

    marker, path = tmp_path / "MARKER", tmp_path / "vectors.kv"
    kv_payload_inside(path, marker)
    code = main(["scarl", *TRAIN_RUN, "--epochs", "1", "--embedding", f"glove:{path}",
                 "--out", str(tmp_path / "run")])
    assert not marker.exists()
    assert code == 2, capsys.readouterr().err


@pytest.mark.parametrize("sep_limit", [10 * 1024**2, 1])
def test_clean_kv_still_loads_with_and_without_a_separate_array(tmp_path, sep_limit):
    from semprobe.words import class_vectors

    path = tmp_path / "vectors.kv"
    saved = small_kv(path, sep_limit=sep_limit)
    result = class_vectors(f"glove:{path}", ["zero", "nine"], cache=False)
    np.testing.assert_array_equal(result.vectors, np.stack([saved["zero"], saved["nine"]]))


def test_kv_holding_another_object_is_refused(tmp_path):
    from semprobe.errors import WordVectorError
    from semprobe.words import class_vectors

    path = tmp_path / "vectors.kv"
    path.write_bytes(pickle.dumps({"vectors": np.ones((2, 2))}))
    with pytest.raises(WordVectorError, match="not KeyedVectors"):
        class_vectors(f"glove:{path}", ["zero"], cache=False)


# ---------------------------------------------------------------- every other file-loading path


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "MARKER"
    yield path
    assert not path.exists(), "a crafted file ran code"


def torch_pickle(path: Path, marker: Path) -> Path:
    """The payload in torch's zip format (what torch.save writes)."""
    torch.save({"format": "semprobe-checkpoint-1", "model": Touch(marker)}, path)
    return path


@pytest.mark.parametrize("write", [crafted_pickle, torch_pickle])
def test_crafted_checkpoint(tmp_path, run_cli, marker, write):
    path = write(tmp_path / "model.pt", marker)
    code, _, err = run_cli(["info", "--ckpt", path])
    assert_one_line_error(code, err)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A one-epoch natural run of the trainer on 64 digits."""
    from trainers.__main__ import main

    out = tmp_path_factory.mktemp("runs") / "natural"
    assert main(["natural", *TRAIN_RUN, "--epochs", "1", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("write", [crafted_pickle, torch_pickle])
def test_crafted_checkpoints_in_a_resumed_run(tmp_path, finished_run, marker, write):
    run = tmp_path / "run"
    run.mkdir()
    for file in finished_run.iterdir():
        if file.suffix == ".pt":
            write(run / file.name, marker)
        else:
            (run / file.name).write_bytes(file.read_bytes())
    assert any(run.glob("*.pt"))
    done = subprocess.run([sys.executable, "-m", "trainers", "natural", *TRAIN_RUN, "--epochs", "2",
                           "--resume", str(run)], capture_output=True, text=True, cwd=REPO, timeout=300)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("trainers: error: "), done.stderr


def test_crafted_features_npz(tmp_path, run_cli, marker):
    array = np.empty(4, dtype=object)
    array[:] = [Touch(marker)] * 4
    path = tmp_path / "feats.npz"
    np.savez(path, features=array, labels=np.arange(4))
    code, _, err = run_cli(["cca", "--features", path, "--n-pairs", 4, "--out", tmp_path / "out"])
    assert_one_line_error(code, err)


def test_crafted_npy_vectors(tmp_path, run_cli, marker):
    path = crafted_npy(tmp_path / "vectors.npy", marker)
    code, _, err = run_cli(["embed", "--dataset", "digits", "--embedding", f"file:{path}"])
    assert_one_line_error(code, err)


def test_crafted_word_cache_file_is_recomputed(tmp_path, run_cli, marker, monkeypatch):
    monkeypatch.setenv("SEMPROBE_CACHE", str(tmp_path / "cache"))
    code, first, err = run_cli(["embed", "--dataset", "digits", "--embedding", "glove"])
    assert code == 0, err
    cached = list((tmp_path / "cache" / "words").glob("*.npy"))
    assert cached
    for file in cached:
        crafted_npy(file, marker)
    code, second, err = run_cli(["embed", "--dataset", "digits", "--embedding", "glove"])
    assert code == 0, err
    assert second == first


def test_crafted_yaml_manifest(tmp_path, run_cli, marker):
    path = tmp_path / "paper.yaml"
    path.write_text(f"dataset: !!python/object/apply:os.system [\"touch '{marker}'\"]\n")
    code, _, err = run_cli(["figures", "--manifest", path, "--out", tmp_path / "figs"])
    assert_one_line_error(code, err)


def test_crafted_cifar_meta(tmp_path, run_cli, marker):
    folder = tmp_path / "data" / "cifar-10-batches-py"
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
        crafted_pickle(folder / name, marker)  # the meta file is read once every file is there
    code, _, err = run_cli(["embed", "--dataset", "cifar10", "--data-dir", tmp_path / "data"])
    assert_one_line_error(code, err)


def test_crafted_cifar_batches(tmp_path, run_cli, marker):
    from semprobe.models.checkpoint import save_checkpoint
    from semprobe.models import create_model

    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        crafted_pickle(folder / name, marker)
    ckpt = save_checkpoint(tmp_path / "cifar.pt", create_model("small_cnn", num_classes=10, in_channels=3),
                           dataset="cifar10", classes=names)
    code, _, err = run_cli(["eval", "--ckpt", ckpt, "--data-dir", tmp_path / "data", "--n", 10,
                            "--attacks", "clean", "--out", tmp_path / "out"])
    assert_one_line_error(code, err)


@pytest.mark.parametrize("suffix", [".pt", ".npz"])
def test_crafted_clip_weights(tmp_path, run_cli, marker, monkeypatch, suffix):
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # semprobe must ask for weights_only itself
    path = tmp_path / f"clip{suffix}"
    if suffix == ".pt":
        torch_pickle(path, marker)
    else:
        array = np.empty(1, dtype=object)
        array[0] = Touch(marker)
        np.savez(path, weights=array)
    code, _, err = run_cli(["embed", "--dataset", "digits", "--embedding", f"clip:{SMALL_CLIP}:{path}"])
    assert_one_line_error(code, err)


# ---------------------------------------------------------------- unwritable --out (item 7)


def no_work(monkeypatch):
    """Make the first step of the cca/simmatrix computation fail loudly: the refusal must come first."""
    import semprobe.cli.feature_sources as feature_sources

    def refuse(*args, **kwargs):
        raise AssertionError("work started before --out was checked")

    monkeypatch.setattr(feature_sources, "collect_feature_sources", refuse)


def unwritable_sys_folder() -> Path:
    """A folder under /sys, where even root cannot create anything (skips where that is not so)."""
    target = Path("/sys/semprobe-test-out")
    try:
        target.mkdir()
    except OSError:
        return target
    target.rmdir()
    pytest.skip("/sys accepts new folders here")


@pytest.mark.parametrize("command", ["cca", "simmatrix"])
def test_out_below_a_file_is_refused_before_any_work(tmp_path, run_cli, monkeypatch, command):
    no_work(monkeypatch)
    blocker = tmp_path / "somefile"
    blocker.write_text("not a folder")
    code, _, err = run_cli([command, "--features", features_file(tmp_path / "f.npz"), "--out", blocker / "sub"])
    assert_one_line_error(code, err)
    assert "--out" in err and str(blocker) in err


def test_out_on_an_unwritable_file_system_is_refused_before_any_work(tmp_path, run_cli, monkeypatch):
    no_work(monkeypatch)
    target = unwritable_sys_folder()
    code, _, err = run_cli(["cca", "--features", features_file(tmp_path / "f.npz"), "--out", target / "deeper"])
    assert_one_line_error(code, err)
    assert "--out" in err and "cannot write" in err


@pytest.mark.parametrize("where", ["below_a_file", "unwritable"])
def test_embed_out_that_cannot_be_written_is_refused_before_any_work(tmp_path, run_cli, monkeypatch, where):
    import semprobe.words

    def refuse(*args, **kwargs):
        raise AssertionError("word vectors computed before --out was checked")

    monkeypatch.setattr(semprobe.words, "class_vectors", refuse)
    if where == "below_a_file":
        (tmp_path / "somefile").write_text("x")
        out = tmp_path / "somefile" / "vectors.npy"
    else:
        out = unwritable_sys_folder() / "vectors.npy"
    code, _, err = run_cli(["embed", "--dataset", "digits", "--out", out])
    assert_one_line_error(code, err)
    assert "--out" in err


def test_a_writable_new_out_folder_is_not_created_by_the_check(tmp_path):
    out = tmp_path / "a" / "b"
    OutputDir(out)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- staging after SIGKILL and Ctrl-C (item 8)


def stage_in_a_child(out: Path, then: str) -> subprocess.Popen:
    """A python process that stages ``result.json`` in ``out``, says 'staged' and then does ``then``."""
    code = textwrap.dedent(f"""
        import os, signal, sys
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even if started in the background
        from semprobe.cli.outputs import OutputDir
        output = OutputDir({str(out)!r})
        with output:
            output.write_json("result.json", {{"n": 1}})
            print("staged", flush=True)
            {then}
    """)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stdin=subprocess.PIPE,
                            text=True, cwd=REPO)


def test_staging_left_by_a_sigkill_is_cleaned_by_the_next_run(tmp_path):
    out = tmp_path / "out"
    child = stage_in_a_child(out, "os.kill(os.getpid(), signal.SIGKILL)")
    assert child.stdout.readline().strip() == "staged"
    assert child.wait(timeout=60) == -signal.SIGKILL
    assert [p.name.startswith(".staging-") for p in out.iterdir()] == [True]
    with OutputDir(out) as output:
        output.write_json("result.json", {"n": 2})
    assert sorted(p.name for p in out.iterdir()) == ["result.json"]


def test_staging_of_a_live_run_is_left_alone(tmp_path):
    out = tmp_path / "out"
    child = stage_in_a_child(out, "sys.stdin.readline()")
    try:
        assert child.stdout.readline().strip() == "staged"
        with OutputDir(out) as output:
            output.write_json("other.json", {"n": 2})
        assert len([p for p in out.iterdir() if p.name.startswith(".staging-")]) == 1
    finally:
        child.stdin.write("go\n")
        child.stdin.close()
        assert child.wait(timeout=60) == 0
    assert sorted(p.name for p in out.iterdir()) == ["other.json", "result.json"]


def test_interrupt_while_staging_leaves_no_empty_out(tmp_path):
    out = tmp_path / "new" / "out"
    with pytest.raises(KeyboardInterrupt):
        with OutputDir(out) as output:
            output.write_json("result.json", {"n": 1})
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_interrupt_keeps_an_out_folder_that_existed(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(KeyboardInterrupt):
        with OutputDir(out) as output:
            output.write_json("result.json", {"n": 1})
            raise KeyboardInterrupt
    assert out.is_dir() and list(out.iterdir()) == []


def test_sigint_in_a_child_leaves_no_empty_out(tmp_path):
    out = tmp_path / "out"
    child = stage_in_a_child(out, "sys.stdin.readline()")
    assert child.stdout.readline().strip() == "staged"
    child.send_signal(signal.SIGINT)
    child.wait(timeout=60)
    assert not out.exists()


# ---------------------------------------------------------------- file modes follow the umask (item 9)


@pytest.fixture
def umask():
    """Set the process umask for one test, restoring it afterwards."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield os.umask
    os.umask(previous)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_atomic_writes_follow_the_umask(tmp_path, umask, mask):
    umask(mask)
    path = tmp_path / "file.txt"
    write_text_atomic(path, "x")
    with OutputDir(tmp_path / "out") as output:
        staged = output.write_json("result.json", {})
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
    assert (tmp_path / "out" / staged.name).stat().st_mode & 0o777 == 0o666 & ~mask


def test_atomic_replace_keeps_the_mode_of_the_file_it_replaces(tmp_path, umask):
    umask(0o022)
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"old")
    path.chmod(0o640)
    with atomic_path(path) as tmp:
        tmp.write_bytes(b"new")
    assert path.read_bytes() == b"new" and path.stat().st_mode & 0o777 == 0o640


def test_embed_out_and_the_word_cache_follow_the_umask(tmp_path, run_cli, umask, monkeypatch):
    umask(0o022)
    monkeypatch.setenv("SEMPROBE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "vectors.npy"
    code, _, err = run_cli(["embed", "--dataset", "digits", "--out", out])
    assert code == 0, err
    written = [out, out.with_suffix(".json"), *(tmp_path / "cache" / "words").glob("*.npy")]
    assert len(written) == 3
    assert {path.stat().st_mode & 0o777 for path in written} == {0o644}


# ---------------------------------------------------------------- one line on stderr (item 13)


def run_semprobe(*args, env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    """``python -m semprobe ARGS`` in a fresh process (no pytest logging or warning capture)."""
    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, "-m", "semprobe", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=300)


def test_clip_download_failure_offline_is_one_line(tmp_path):
    import open_clip

    tag = open_clip.list_pretrained_tags_by_model("ViT-B-32")[0]
    done = run_semprobe("embed", "--dataset", "digits", "--embedding", f"clip:ViT-B-32:{tag}",
                        env_extra={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
                                   "XDG_CACHE_HOME": str(tmp_path / "xdg"),
                                   "SEMPROBE_CACHE": str(tmp_path / "cache")})
    assert_one_line_error(done.returncode, done.stderr)
    assert "ViT-B-32" in done.stderr


def test_unwritable_word_cache_is_one_line_and_not_fatal(tmp_path):
    (tmp_path / "somefile").write_text("x")
    done = run_semprobe("embed", "--dataset", "digits", "--embedding", "glove",
                        env_extra={"SEMPROBE_CACHE": str(tmp_path / "somefile" / "cache")})
    assert done.returncode == 0, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("semprobe: warning: ") and "SEMPROBE_CACHE" in lines[0], done.stderr
    assert "zero" in done.stdout
