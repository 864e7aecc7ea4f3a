"""The training loop's speed options: mixed precision, channels-last, torch.compile, cuDNN autotuning.

- ``--amp bf16|fp16`` (:class:`MixedPrecision`): each training step (its attack, AWP's proxy
  pass and the loss) runs under ``torch.autocast`` in that type on the run's device, with
  fp32 weights and optimizer state; fp16 adds a gradient scaler (``torch.amp.GradScaler``),
  whose scale is saved with ``last.pt`` so that ``--resume`` continues exactly. The
  per-epoch evaluation always runs in fp32. bf16 needs no scaler (its range is fp32's);
  under fp16 the attack's input gradients are not scaled, so tiny ones can underflow to
  zero: prefer bf16 where the device has it.
- ``--channels-last/--no-channels-last``: the classifier's 4-d weights and conv inputs in
  channels-last memory format, or not (:meth:`semprobe.models.ImageClassifier.set_channels_last`);
  by default each architecture's measured preference (``prefers_channels_last``).
- ``--compile``: ``torch.compile`` (in place, so state dicts and checkpoints keep their keys)
  on the network the loss runs through and on the classifier the attacks call, with
  :data:`COMPILE_BACKEND`.
- On CUDA, ``torch.backends.cudnn.benchmark`` is on: the batch shapes are fixed.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch
from torch import nn

#: the torch.compile backend of --compile (the tests use "eager" to check the wiring quickly)
COMPILE_BACKEND = "inductor"
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class MixedPrecision:
    """Autocast and, for fp16, a gradient scaler; with ``mode`` "off", plain fp32 steps."""

    def __init__(self, mode: str, device: torch.device) -> None:
        self.mode = mode
        self.device = device
        self.dtype = AMP_DTYPES.get(mode)
        self.scaler = torch.amp.GradScaler(device.type) if mode == "fp16" else None

    def autocast(self) -> AbstractContextManager:
        """The context a training step's forward passes run in."""
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def update(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Backward and optimizer step (scaled, and skipped on inf/NaN gradients, under fp16)."""
        optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            optimizer.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict | None:
        return None if self.scaler is None else self.scaler.state_dict()

    def load_state_dict(self, state: dict | None) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)


def prepare_device(device: torch.device) -> None:
    """cuDNN autotuning on CUDA (fixed batch shapes make the search pay off)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def compile_in_place(*modules: nn.Module) -> None:
    """``torch.compile`` each module in place with :data:`COMPILE_BACKEND`."""
    for module in modules:
        module.compile(backend=COMPILE_BACKEND)
