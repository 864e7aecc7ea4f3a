"""Writing a command's results into ``--out DIR``: all or nothing, never silently overwriting.

:class:`OutputDir` stages every file in a hidden folder inside ``DIR`` and moves them
into place only when the command finished without error, so a failure leaves no
half-written output. Files that already exist are refused (up front for the names a
command announces, at the latest before anything is moved) unless ``overwrite``.
:func:`run_metadata` is the provenance block every result JSON carries.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from semprobe import __version__
from semprobe.errors import SemprobeError

PROVENANCE_PACKAGES = ("torch", "torchvision", "numpy", "scipy", "scikit-learn", "pyautoattack", "gensim",
                       "open_clip_torch")


class OutputDir:
    """Stage files for ``path`` and move them there on :meth:`commit` (or on leaving the ``with``)."""

    def __init__(self, path: str | os.PathLike, *, overwrite: bool = False, expected: Iterable[str] = ()):
        self.path = Path(path)
        self.overwrite = overwrite
        if self.path.exists() and not self.path.is_dir():
            raise SemprobeError(f"--out {self.path} exists and is not a directory")
        self._check_free(expected)
        self._staging: Path | None = None
        self._names: list[str] = []

    def _check_free(self, names: Iterable[str]) -> None:
        if self.overwrite:
            return
        taken = [name for name in names if (self.path / name).exists()]
        if taken:
            raise SemprobeError(f"{self.path} already holds {', '.join(taken)}; pass --overwrite or choose another --out")

    def file(self, name: str) -> Path:
        """The staging path to write ``name`` to (a plain file name, no folders)."""
        if Path(name).name != name:
            raise ValueError(f"output names are plain file names, got {name!r}")
        if self._staging is None:
            self.path.mkdir(parents=True, exist_ok=True)
            self._staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.path))
        if name not in self._names:
            self._names.append(name)
        return self._staging / name

    def write_json(self, name: str, obj: Any) -> Path:
        """Stage ``obj`` as indented JSON (NaN written as null)."""
        target = self.file(name)
        target.write_text(json.dumps(_json_safe(obj), indent=2) + "\n")
        return target

    def write_text(self, name: str, text: str) -> Path:
        target = self.file(name)
        target.write_text(text)
        return target

    def save_figure(self, stem: str, figure: Any, formats: Iterable[str] = ("png", "pdf"), dpi: int = 150) -> list[Path]:
        """Stage a matplotlib figure as ``stem.png`` and ``stem.pdf`` and close it."""
        import matplotlib.pyplot as plt

        paths = []
        for fmt in formats:
            target = self.file(f"{stem}.{fmt}")
            figure.savefig(target, format=fmt, dpi=dpi, bbox_inches="tight")
            paths.append(target)
        plt.close(figure)
        return paths

    @property
    def names(self) -> list[str]:
        return list(self._names)

    def commit(self) -> list[Path]:
        """Move every staged file into place; returns the final paths."""
        if self._staging is None:
            return []
        try:
            self._check_free(self._names)
            for name in self._names:
                os.replace(self._staging / name, self.path / name)
        finally:
            self.discard()
        return [self.path / name for name in self._names]

    def discard(self) -> None:
        """Remove the staging folder and everything in it."""
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None

    def __enter__(self) -> "OutputDir":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.commit()
        finally:
            self.discard()


def _json_safe(obj: Any) -> Any:
    """Plain JSON types: NaN/inf become null, tuples lists, paths strings, numpy scalars numbers."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    item = getattr(obj, "item", None)
    if callable(item) and getattr(obj, "shape", None) == ():
        return _json_safe(item())
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return _json_safe(tolist())
    return obj


def _package_versions() -> dict[str, str | None]:
    from importlib import metadata

    versions = {}
    for name in PROVENANCE_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def run_metadata(**settings: Any) -> dict:
    """Provenance for a result JSON: the settings given, versions, command line, time, machine."""
    return {
        "settings": settings,
        "semprobe_version": __version__,
        "packages": _package_versions(),
        "python": platform.python_version(),
        "command": " ".join(sys.argv),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": platform.machine(),
    }
