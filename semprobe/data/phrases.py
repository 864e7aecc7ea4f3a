"""Class phrases for word-vector lookup: the default phrase of a class name and user aliases.

Every class has a phrase: the lower-cased class name with ``_`` and ``/`` turned into
spaces (:func:`default_phrase`: ``aquarium_fish`` -> ``aquarium fish``, ``T-shirt/top`` ->
``t-shirt top``), unless its dataset's module overrides it (CIFAR-10's ``automobile`` is
``car`` in :mod:`semprobe.data.cifar`) or the user passes aliases: a ``{class name:
phrase}`` dict or a file for :func:`read_aliases`. The aliases are applied, and their class
names checked, by the registry (:func:`semprobe.data.load_dataset`,
:func:`semprobe.data.dataset_info`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Mapping

from semprobe.errors import DataError


def default_phrase(class_name: str) -> str:
    """The word-lookup phrase of a class name: lower case, ``_`` and ``/`` as spaces."""
    return " ".join(re.sub(r"[_/]", " ", class_name).lower().split())


def read_aliases(path: str | os.PathLike) -> dict[str, str]:
    """Read a ``{class name: phrase}`` mapping from a JSON object or a text file.

    A file whose text starts with ``{`` is read as JSON. The text form has one
    ``class name = phrase`` per line; blank lines and lines starting with ``#`` are ignored. Raises :class:`DataError` for an unreadable or
    malformed file. Whether the class names exist is checked when the aliases are applied
    to a dataset (:func:`load_dataset`, :func:`dataset_info`).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read alias file {path}: {exc}; pass an existing UTF-8 text or JSON file") from exc
    if text.lstrip().startswith("{"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"alias file {path} is not valid JSON: {exc}") from exc
        return _checked_aliases(parsed, f"alias file {path}")
    mapping: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, equals, phrase = (part.strip() for part in line.partition("="))
        if not equals or not name or not phrase:
            raise DataError(f"{path}:{number}: expected 'class name = phrase', got {line!r}")
        if name in mapping:
            raise DataError(f"{path}:{number}: class {name!r} is given a phrase twice; keep one line")
        mapping[name] = phrase
    return mapping


def _checked_aliases(mapping: object, origin: str) -> dict[str, str]:
    """``mapping`` as a dict of non-empty strings, or a :class:`DataError` naming ``origin``."""
    if not isinstance(mapping, Mapping):
        raise DataError(f"{origin} must be an object mapping class names to phrases")
    for name, phrase in mapping.items():
        if not isinstance(name, str) or not isinstance(phrase, str) or not phrase.strip():
            raise DataError(f"{origin}: the phrase for {name!r} must be a non-empty string, got {phrase!r}")
    return {name: phrase.strip() for name, phrase in mapping.items()}


def _alias_mapping(aliases: str | os.PathLike | Mapping[str, str] | None) -> tuple[dict[str, str], str]:
    """The aliases as a dict, with a description of where they came from for messages."""
    if aliases is None:
        return {}, ""
    if isinstance(aliases, Mapping):
        return _checked_aliases(aliases, "aliases"), "aliases"
    return read_aliases(aliases), f"alias file {aliases}"
