"""Multi-process training under ``torchrun``: process group, global-batch BatchNorm, collectives.

``torchrun --nproc_per_node N -m trainers ...`` starts N processes and tells each its
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; :func:`from_environment` reads them and
:func:`initialize` joins the process group (NCCL on GPUs, Gloo on CPU). A single
``python -m trainers`` is the world of size 1, and every helper here is then a no-op.

The design goal is that a run on N processes with per-process batch B/N computes the same
updates as one process with batch B:

- Gradients: DDP averages them; every per-example loss is a mean over the process's
  shard, and the shards have equal sizes, so the average is the mean over the global batch.
- BatchNorm: statistics are taken over the global batch. On CUDA that is
  ``torch.nn.SyncBatchNorm``; it does not run on CPU, so on CPU :class:`GlobalBatchNorm`
  computes the same statistics with autograd-aware all-reduces. The SCARL word head g_t
  is left alone: every process feeds it the same K class vectors, so its local
  statistics already are the global ones (syncing would count each vector N times and
  change the unbiased running variance).
- Batch-level losses (the SCARL class centres) see the global batch through
  :func:`all_reduce_with_grad`, whose backward pass sends every process its share of the
  gradient. TLA mines its negatives, as its authors do, from a pool of random training
  images that each process draws for itself (like the attack's random start).
"""

from __future__ import annotations


import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from semprobe.distributed import Processes, from_environment  # noqa: F401 (re-exported)


#: Where this process stands in the job (rank, world size, local rank): semprobe's own, which its
#: sharded evaluation reads from the same torchrun variables; ``process.place(device)`` is the
#: device of this process (the GPU of its local rank under several processes on CUDA).
ProcessInfo = Processes


def initialize(process: ProcessInfo, device: torch.device) -> None:
    """Join the process group (NCCL for CUDA, Gloo for CPU); nothing for a single process."""
    if not process.distributed or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")


def shutdown(finished: bool = True) -> None:
    """Leave the process group, if one was joined.

    After a run that ``finished``, the processes first meet at a barrier, so that none tears
    down its Gloo connections while a peer still has work in flight on them (the main process
    saving the last checkpoint, a late collective): leaving alone made the peer abort at exit
    now and then ("terminate called without an active exception"). After a failure there is
    no barrier: the others may never reach it, and torchrun ends them anyway.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    if finished and dist.get_world_size() > 1:
        dist.barrier()
    dist.destroy_process_group()


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def sum_across(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all processes, in place, without gradient (metrics, counts)."""
    if _active():
        dist.all_reduce(tensor)
    return tensor


def average_across(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of ``tensor`` over all processes, in place (AWP's proxy gradients)."""
    if _active():
        dist.all_reduce(tensor)
        tensor /= dist.get_world_size()
    return tensor


def all_agree(flag: bool, device: torch.device) -> bool:
    """True when ``flag`` is true on every process (one all-reduce)."""
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    if _active():
        dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


class _AllReduceSum(torch.autograd.Function):
    """``y = sum_r x_r`` on every process; the gradient of x_q is ``sum_r dL_r/dy``."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def all_reduce_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of ``tensor`` over all processes, differentiable (identity for one process)."""
    return _AllReduceSum.apply(tensor) if _active() else tensor


class GlobalBatchNorm(_BatchNorm):
    """BatchNorm with statistics over the global batch of all processes, on any backend.

    In training mode under a process group of more than one process, the per-channel
    mean and the biased variance are computed over every process's batch with two
    differentiable all-reduces (two passes, as precise as the local kernel), and the
    running variance is updated with the unbiased global variance, exactly what a
    single process with the whole batch does. Otherwise it is plain BatchNorm. The
    state_dict keys are those of ``nn.BatchNorm*d``.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input (N, C, ...), got {input.dim()}-D")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and _active()):
            return super().forward(input)
        self._check_input_dim(input)
        dims = [0, *range(2, input.dim())]
        shape = [1, -1] + [1] * (input.dim() - 2)
        local_count = input.numel() // input.shape[1]
        sums = all_reduce_with_grad(torch.cat([input.sum(dims), input.new_tensor([local_count])]))
        count = sums[-1].detach()
        mean = sums[:-1] / count
        centred = input - mean.view(shape)
        var = all_reduce_with_grad(centred.square().sum(dims)) / count
        output = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            output = output * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), factor)
                self.running_var.lerp_(var.detach() * (count / (count - 1)), factor)
        return output


def convert_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Make every BatchNorm of ``module`` use global-batch statistics (see the module docstring).

    CUDA: ``nn.SyncBatchNorm``; other devices: :class:`GlobalBatchNorm`. Parameters and
    buffers are kept (same tensors, same state_dict keys). Returns the converted module.
    """
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, _BatchNorm) and not isinstance(module, GlobalBatchNorm):
        converted = GlobalBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        if module.affine:
            converted.weight, converted.bias = module.weight, module.bias
        if module.track_running_stats:
            converted.running_mean, converted.running_var = module.running_mean, module.running_var
            converted.num_batches_tracked = module.num_batches_tracked
        converted.train(module.training)
        return converted
    for name, child in module.named_children():
        module.add_module(name, convert_batchnorm(child, device))
    return module
