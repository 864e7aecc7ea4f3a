"""Small file helpers shared by every writer and reader: atomic writes, writability and
overwrite checks, and a pickle reader that builds only allow-listed classes.

Every output of semprobe is written to a temporary file in the destination folder and
renamed into place only when complete, so an error never leaves a half-written file.
The temporary file is created as ``open()`` would create the file itself: mode 0666 less
the umask, or the mode of the file it replaces.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import pickle
import secrets
import stat
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Mapping

from semprobe.errors import SemprobeError

_TEMP_ATTEMPTS = 100


def cache_dir(*parts: str) -> Path:
    """The semprobe cache folder (``$SEMPROBE_CACHE`` or ``~/.cache/semprobe``), joined with ``parts``."""
    root = os.environ.get("SEMPROBE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "semprobe"
    )
    return Path(root, *parts)


def check_writable(path: str | os.PathLike, overwrite: bool = False, option: str = "--out") -> Path:
    """Refuse to overwrite ``path`` unless asked, and a ``path`` whose folder cannot be written.

    ``option`` names the command-line option the path came from, for the error message.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise SemprobeError(f"{path} already exists; pass --overwrite to replace it")
    if path.exists() and path.is_dir():
        raise SemprobeError(f"{path} is a directory, expected a file path")
    check_folder_writable(path.parent, option)
    return path


def check_folder_writable(folder: str | os.PathLike, option: str = "--out") -> Path:
    """Make sure ``folder`` exists or can be created, and that files can be created in it.

    Nothing is created: the check creates and removes a temporary file in the nearest
    existing folder on the way to ``folder``. This is a real attempt, so it also holds for
    root (for whom permission bits do not stop writes) and read-only file systems. Raises
    SemprobeError naming ``option``.
    """
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise SemprobeError(f"{option} {folder} cannot be created: {existing} is a file, not a folder; "
                            f"choose another {option}")
    try:
        probe = _create_temp_file(existing, ".semprobe-write-check-")
    except OSError as exc:
        raise SemprobeError(f"cannot write to {option} {folder}: {existing} refuses new files "
                            f"({exc.strerror or exc}); choose another {option}") from None
    probe.unlink()
    return folder


def _create_temp_file(folder: Path, prefix: str, mode: int = 0o666) -> Path:
    """A new empty file ``folder/PREFIX<random>.tmp``, created with ``mode`` less the umask."""
    for _ in range(_TEMP_ATTEMPTS):
        candidate = folder / f"{prefix}{secrets.token_hex(6)}.tmp"
        try:
            handle = os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode)
        except FileExistsError:
            continue
        os.close(handle)
        return candidate
    raise FileExistsError(f"no free temporary file name in {folder}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The file gets the mode ``open(path, "w")`` would give it: that of the file it replaces,
    else 0666 less the umask. On any exception the temporary file is removed and ``path``
    is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _create_temp_file(path.parent, f".{path.name}.")
    try:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp_path, stat.S_IMODE(path.stat().st_mode))
        yield tmp_path
        with open(tmp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


# ---------------------------------------------------------------- pickles that cannot run code


def numpy_pickle_globals() -> dict[tuple[str, str], Any]:
    """The globals a pickled numpy array names (under numpy 1 and numpy 2 module paths)."""
    import numpy as np

    reconstruct = _first_attribute(("numpy._core.multiarray", "numpy.core.multiarray"), "_reconstruct")
    frombuffer = _first_attribute(("numpy._core.numeric", "numpy.core.numeric"), "_frombuffer")
    scalar = _first_attribute(("numpy._core.multiarray", "numpy.core.multiarray"), "scalar")
    found = {}
    for package in ("numpy._core", "numpy.core"):
        found[(f"{package}.multiarray", "_reconstruct")] = reconstruct
        found[(f"{package}.multiarray", "scalar")] = scalar
        found[(f"{package}.numeric", "_frombuffer")] = frombuffer
    found[("numpy", "ndarray")] = np.ndarray
    found[("numpy", "dtype")] = np.dtype
    return found


def _first_attribute(modules: tuple[str, ...], name: str) -> Any:
    """``name`` from the first of ``modules`` that has it (numpy 2 moved ``core`` to ``_core``)."""
    for module in modules:
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"none of {', '.join(modules)} has {name}")


class _AllowListUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals in ``allowed``; any other is ``refuse(module, name)``."""

    def __init__(self, handle: BinaryIO, allowed: Mapping[tuple[str, str], Any],
                 refuse: Callable[[str, str], Exception]) -> None:
        super().__init__(handle, encoding="latin1")
        self._allowed = allowed
        self._refuse = refuse

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise self._refuse(module, name) from None


def load_restricted_pickle(path: str | os.PathLike, allowed: Mapping[tuple[str, str], Any],
                           refuse: Callable[[str, str], Exception]) -> Any:
    """Unpickle ``path``, building only plain types and the globals of ``allowed``.

    ``allowed`` maps ``(module, name)`` as the pickle spells them to the object to use
    (which need not be that global: an inert stand-in class works too). A pickle that
    names any other global raises ``refuse(module, name)`` before anything of it is
    called, so the file cannot run code. Damaged files raise what :mod:`pickle` raises.
    """
    with open(path, "rb") as handle:
        return _AllowListUnpickler(handle, allowed, refuse).load()
