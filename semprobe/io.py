"""Small file helpers shared by every writer: atomic writes and overwrite checks.

Every output of semprobe is written to a temporary file in the destination folder and
renamed into place only when complete, so an error never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from semprobe.errors import SemprobeError


def cache_dir(*parts: str) -> Path:
    """The semprobe cache folder (``$SEMPROBE_CACHE`` or ``~/.cache/semprobe``), joined with ``parts``."""
    root = os.environ.get("SEMPROBE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "semprobe"
    )
    return Path(root, *parts)


def check_writable(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuse to overwrite ``path`` unless asked; make sure its folder can be created."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise SemprobeError(f"{path} already exists; pass --overwrite to replace it")
    if path.exists() and path.is_dir():
        raise SemprobeError(f"{path} is a directory, expected a file path")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
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
