"""CLIP class vectors: the open_clip text tower on a prompt per class phrase.

SCARL may embed the class names with CLIP (Radford et al., 2021) instead of GloVe
(section 2). ``clip:MODEL[:PRETRAINED]`` encodes ``"a photo of a {phrase}."`` with the text
tower of MODEL (a name from ``open_clip.list_models()``), L2-normalized. PRETRAINED is an
open_clip tag (default ``openai``; downloaded through open_clip's hub cache), a local
weights file (read with ``torch.load(..., weights_only=True)``), or ``none`` for randomly
initialised weights (drawn from torch's global RNG, so never cached).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Iterator

import numpy as np

from semprobe.errors import ConfigError, WordVectorError
from semprobe.words.cache import cached_vectors, file_fingerprint

DEFAULT_CLIP_TEMPLATE = "a photo of a {}."
DEFAULT_CLIP_PRETRAINED = "openai"
_CLIP_BATCH_SIZE = 256


def clip_class_vectors(
    argument: str, phrases: tuple[str, ...], cache: bool, device: str, prompt_template: str
) -> np.ndarray:
    """L2-normalized open_clip text embeddings of ``prompt_template`` filled with each phrase."""
    model_name, _, pretrained = argument.partition(":")
    pretrained = pretrained or DEFAULT_CLIP_PRETRAINED
    if prompt_template.count("{}") != 1:
        raise ConfigError(
            f"prompt template {prompt_template!r} must contain exactly one '{{}}' where the class phrase goes"
        )
    prompts = [prompt_template.replace("{}", phrase) for phrase in phrases]
    if pretrained.lower() == "none":
        return _encode_clip_prompts(model_name, None, prompts, device)

    weights_path = Path(pretrained).expanduser()
    is_file = weights_path.is_file()
    weights = str(weights_path.resolve()) if is_file else pretrained

    def compute() -> np.ndarray:
        return _encode_clip_prompts(model_name, weights, prompts, device, weights_is_file=is_file)

    if not cache:
        return compute()
    key = {
        "provider": "clip",
        "model": model_name,
        "weights": file_fingerprint(Path(weights)) if is_file else pretrained,
        "template": prompt_template,
    }
    return cached_vectors("clip", key, phrases, compute)


def _encode_clip_prompts(
    model_name: str, weights: str | None, prompts: list[str], device: str, weights_is_file: bool = False
) -> np.ndarray:
    """Build the open_clip model (``weights``: tag, absolute file path, or None for random) and encode."""
    import open_clip
    import torch

    if model_name not in open_clip.list_models():
        raise WordVectorError(
            f"unknown open_clip model {model_name!r}; list the valid names with "
            "python -c \"import open_clip; print(open_clip.list_models())\""
        )
    if weights is not None and not weights_is_file and not open_clip.is_pretrained_cfg(model_name, weights):
        tags = open_clip.list_pretrained_tags_by_model(model_name)
        raise WordVectorError(
            f"{weights!r} is neither an open_clip pretrained tag for {model_name} nor a file; "
            f"use one of {tags or 'no known tags'}, a local weights file, or none"
        )
    try:
        with _no_root_logging():
            model = open_clip.create_model(model_name, pretrained=weights, device=device, weights_only=True)
        tokenizer = open_clip.get_tokenizer(model_name)
    except Exception as exc:  # open_clip reports download, load and device failures as various types
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if weights_is_file:
            hint = f"the file must hold a state_dict of open_clip's {model_name}"
        else:
            hint = "download the weights once with network access, or pass a local file as clip:MODEL:PATH"
        raise WordVectorError(
            f"cannot load open_clip {model_name} with weights {weights!r} ({reason}); {hint}"
        ) from exc
    model.eval()
    with torch.no_grad():
        batches = [
            model.encode_text(tokenizer(prompts[start : start + _CLIP_BATCH_SIZE]).to(device), normalize=True)
            for start in range(0, len(prompts), _CLIP_BATCH_SIZE)
        ]
    return torch.cat(batches).float().cpu().numpy()


@contextlib.contextmanager
def _no_root_logging() -> Iterator[None]:
    """Keep open_clip's root-logger messages (``ERROR:root:...``) off stderr when nobody configured logging.

    open_clip logs its failures with ``logging.error`` before raising; with no handler on
    the root logger, that call would configure one and print the message a second time
    beside the error semprobe raises. An application that set up logging still sees them.
    """
    root = logging.getLogger()
    if root.handlers:
        yield
        return
    handler = logging.NullHandler()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
