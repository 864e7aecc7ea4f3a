"""The training loop: data, model, SGD with a piecewise or cosine schedule, evaluation, checkpoints.

``train(config)`` runs the epochs of a :class:`~trainers.config.TrainConfig` in
``config.out`` (see :mod:`trainers.rundir` for the files) on one process or, under
``torchrun``, on several (:mod:`trainers.distributed`). Every epoch:

1. re-seeds torch's global generator (data augmentation, loader seeds), the attack's
   generator and TLA's image pool from (seed, epoch, rank), so a resumed run draws
   exactly what an uninterrupted one draws;
2. trains one pass over the (sharded) training split with the method's step
   (:data:`trainers.methods.METHOD_STEPS`; with ``--awp-gamma``, each update after the
   warm-up runs on adversarially perturbed weights, :mod:`trainers.awp`), stopping with :class:`TrainingDiverged`
   at the first NaN or infinite loss, before it reaches the weights, and at the first
   update after which a weight or buffer (BatchNorm statistics, word centres) holds
   NaN or inf, before anything evaluates or saves it;
3. measures clean and PGD-CE accuracy (``--eval-steps`` steps of ``--eval-step-size``,
   uniform random start) on the validation split, and on the test split with
   ``--eval-test``; the random start of evaluation chunk c is seeded by (seed, c), so
   the numbers do not depend on the number of processes;
4. checks that the optimizer state is finite, then appends its metrics line and writes
   ``last.pt`` (and ``best.pt`` when the epoch's selection metric is the best so far:
   validation PGD accuracy for every method that trains on attacked images, validation
   clean accuracy for ``natural`` and SCARL with ``--base natural``, whose PGD accuracy
   is near zero and would pick an early epoch), with Ctrl-C held back until the files
   are written.

Ctrl-C stops the run with :class:`TrainingInterrupted` (a ``KeyboardInterrupt``) whose
message names the epoch ``last.pt`` keeps.

With ``--extra-data`` an epoch is RST's: ``ceil(N / batch)`` batches, N the training split's
size, each mixing its images with pseudo-labelled ones (:mod:`trainers.extra_data`), drawn
from a stream seeded by (seed, epoch) alike on every process, each process taking its share.
"""

from __future__ import annotations

import math
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from semprobe.models.checkpoint import non_finite_tensors
from semprobe.models import ProjectionHeads, create_model
from semprobe.options import resolve_device, seed_everything
from semprobe.robustness.run_folder import VAL_PGD
from semprobe.words import ClassVectors, class_vectors
from trainers import distributed, rundir
from trainers import speed
from trainers.awp import WeightPerturbation
from trainers.resident import ResidentLoader, use_resident
from trainers.config import TrainConfig
from trainers.preflight import check_data_placement, run_folder_config
from trainers.extra_data import load_extra, mixed_loader
from trainers.guards import TrainingDiverged, TrainingInterrupted, all_finite, interrupts_held_back
from trainers.image_pool import ImagePool
from trainers.methods import METHOD_STEPS, StepContext
from trainers.network import FixedWords, LearnedWords, TrainingNetwork, WordCentres
from trainers.spec import LEARNED_EMBEDDING, selection_key
from trainers.validation import (STREAM_ATTACK, STREAM_CENTRES, STREAM_DATA, STREAM_POOL, Splits,
                                 check_input_size, derive_seed, evaluate, load_splits)

def selection_metric(config: TrainConfig) -> str:
    """The validation metric that picks ``best.pt`` (:func:`trainers.spec.selection_key`)."""
    return selection_key(config.method, config.base)


@dataclass
class TrainResult:
    """What a call to :func:`train` did: its folder, the epochs it ran and the best epoch so far."""

    run_dir: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best_value: float | None = None
    selection: str = VAL_PGD


class TrainingRun:
    """The state of one training run in this process (built by :func:`train`)."""

    def __init__(self, config: TrainConfig, process: distributed.ProcessInfo, device: torch.device,
                 splits: Splits, word_vectors: ClassVectors | None) -> None:
        self.config, self.process, self.device, self.splits = config, process, device, splits
        self.run_dir = Path(config.out)
        info = splits.train.info
        seed_everything(config.seed)
        self.model = create_model(config.arch, num_classes=info.num_classes, in_channels=info.image_shape[0],
                                  normalization=info.normalization)
        check_input_size(self.model, info.image_shape, config.dataset)
        self.heads = self.words = None
        self.word_vectors = word_vectors
        if config.method == "scarl":
            if config.embedding == LEARNED_EMBEDDING:
                self.words = LearnedWords(info.num_classes, config.nn_dim)
            else:
                self.words = FixedWords(torch.from_numpy(word_vectors.vectors.copy()))
            word_dim = config.nn_dim if config.embedding == LEARNED_EMBEDDING else word_vectors.vectors.shape[1]
            self.heads = ProjectionHeads(self.model.feature_dim, word_dim, out_dim=config.proj_dim)
        if process.distributed:
            distributed.convert_batchnorm(self.model, device)
            if self.heads is not None:  # g_t sees the same K vectors on every process: left local
                distributed.convert_batchnorm(self.heads.image, device)
        train_words = config.method == "scarl" and config.use_info
        if config.channels_last is not None:  # else the architecture's own preference
            self.model.set_channels_last(config.channels_last)
        self.network = TrainingNetwork(self.model, self.heads, self.words, train_words).to(device)
        self.precision = speed.MixedPrecision(config.amp, device)
        self.optimizer = torch.optim.SGD(self.network.parameters(), lr=config.lr, momentum=config.momentum,
                                         weight_decay=config.weight_decay, nesterov=config.nesterov)
        self.scheduler = lr_scheduler(self.optimizer, config)
        self.word_centres = None
        if config.method == "scarl" and config.use_struc:
            self.word_centres = WordCentres(info.num_classes, config.proj_dim, config.centre_momentum,
                                            derive_seed(config.seed, STREAM_CENTRES), device)
        # after the BatchNorm conversion and the move to the device: the proxy is a copy of the model
        self.awp = WeightPerturbation(self.model, config) if config.awp_gamma is not None else None
        self.start_epoch = 0
        self.saved_epoch = 0
        self.resume_point: rundir.ResumePoint | None = None
        self.selection = selection_metric(config)
        self.best_epoch: int | None = None
        self.best_value: float | None = None

    def restore(self, point: rundir.ResumePoint) -> None:
        """Continue from a saved epoch: weights, heads, learned words, optimizer, schedule, centres."""
        checkpoint = point.checkpoint
        self.model.load_state_dict(checkpoint.model.state_dict())
        if self.heads is not None:
            self.heads.load_state_dict(checkpoint.heads.state_dict())
        if isinstance(self.words, LearnedWords):
            with torch.no_grad():
                self.words.embedding.weight.copy_(torch.from_numpy(checkpoint.word_vectors.vectors.copy()))
        self.optimizer.load_state_dict(checkpoint.optimizer_state)
        self.scheduler.load_state_dict(checkpoint.scheduler_state)
        if self.word_centres is not None:
            self.word_centres.load_state_dict({"centres": point.state["word_centres"]})
        self.precision.load_state_dict(point.state.get("grad_scaler"))
        self.start_epoch = self.saved_epoch = checkpoint.epoch
        self.resume_point = point
        self.best_epoch = checkpoint.metrics.get("best_epoch")
        self.best_value = checkpoint.metrics.get("best_value", checkpoint.metrics.get("best_val_pgd_acc"))

    def step_context(self) -> StepContext:
        network: nn.Module = self.network
        if self.process.distributed:
            network = DistributedDataParallel(
                self.network, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                forward_sync_buffers=False,
                find_unused_parameters=not self.network.train_words and self.heads is not None,
            )
        if self.config.compile:
            speed.compile_in_place(network, self.model)
        return StepContext(
            config=self.config, network=network, model=self.model, num_classes=self.splits.train.info.num_classes,
            generator=torch.Generator(device=self.device), word_centres=self.word_centres,
            pool=ImagePool(self.splits.train, self.device) if self.config.method == "tla" else None,
            reduce=distributed.all_reduce_with_grad,
        )

    def loader(self) -> tuple[DataLoader | ResidentLoader, DistributedSampler]:
        """The training batches: from a copy of the split on the device (``--data-on-device``,
        :mod:`trainers.resident`) or a DataLoader, in the same order."""
        config, process = self.config, self.process
        if self.splits.extra is not None:  # RST's batches: labelled and extra images, every process its share
            return mixed_loader(self.splits.train, self.splits.extra, config, process, self.device.type == "cuda")
        local_batch = config.batch_size // process.world_size
        sampler = DistributedSampler(self.splits.train, num_replicas=process.world_size, rank=process.rank,
                                     shuffle=True, seed=config.seed)
        if use_resident(config.data_on_device, self.splits.train, self.device):
            return ResidentLoader(self.splits.train, sampler, local_batch, self.device), sampler
        # BatchNorm cannot train on a batch of one image: drop such a last batch
        loader = DataLoader(self.splits.train, batch_size=local_batch, sampler=sampler,
                            num_workers=config.workers, drop_last=len(sampler) % local_batch == 1,
                            pin_memory=self.device.type == "cuda")
        return loader, sampler

    def current_word_vectors(self) -> ClassVectors | None:
        """The class vectors to store with the checkpoint (the learned table for ``nn``)."""
        if not isinstance(self.words, LearnedWords):
            return self.word_vectors
        info = self.splits.train.info
        return ClassVectors(provider=LEARNED_EMBEDDING, classes=info.classes, phrases=info.phrases,
                            vectors=self.words.embedding.weight.detach().cpu().numpy())

    def trained_state(self) -> dict[str, torch.Tensor]:
        """Every floating-point tensor training changes: weights, buffers, word centres."""
        state = {k: v for k, v in self.network.state_dict(keep_vars=True).items() if v.is_floating_point()}
        if self.word_centres is not None:
            state["word_centres"] = self.word_centres.centres
        return state

    def check_finite_state(self, epoch: int, step: int, loss: torch.Tensor) -> None:
        """Raise :class:`TrainingDiverged` when an update left NaN or inf in the trained state."""
        state = self.trained_state()
        if distributed.all_agree(all_finite(list(state.values())), self.device):
            return
        names = non_finite_tensors({k: v.detach() for k, v in state.items()})
        where = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        raise TrainingDiverged(
            f"the weights became non-finite at epoch {epoch + 1}, step {step + 1} ({where or 'on another process'}) "
            f"after an update whose loss was finite ({loss.item():.4g})"
        )

    def check_finite_optimizer(self, epoch: int) -> None:
        """Raise :class:`TrainingDiverged` when the optimizer state (momentum) holds NaN or inf."""
        names = non_finite_tensors(self.optimizer.state_dict()["state"], "optimizer")
        if not distributed.all_agree(not names, self.device):
            raise TrainingDiverged(f"the optimizer state became non-finite in epoch {epoch} "
                                   f"({', '.join(names[:4]) or 'on another process'})")

    def train_epoch(self, ctx: StepContext, loader: DataLoader | ResidentLoader, epoch: int,
                    show_bar: bool) -> dict[str, float]:
        """One pass over the training shard; the epoch's mean of every loss term and the accuracy."""
        step_fn = METHOD_STEPS[self.config.method]
        ctx.network.train()
        totals: dict[str, torch.Tensor] = {}
        correct = torch.zeros((), device=self.device)
        seen = torch.zeros((), device=self.device)
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{self.config.epochs}", disable=not show_bar,
                   leave=False, file=sys.stderr, dynamic_ncols=True)
        for step, (x, y) in enumerate(bar):
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            perturbation = self.awp.applied(ctx, x, y, epoch) if self.awp is not None else nullcontext()
            with self.precision.autocast(), perturbation:
                result = step_fn(ctx, x, y, epoch + step / len(loader))
                if not distributed.all_agree(bool(torch.isfinite(result.loss)), self.device):
                    terms = ", ".join(f"{k}={torch.as_tensor(v).item():.4g}" for k, v in result.terms.items())
                    raise TrainingDiverged(
                        f"the loss became non-finite at epoch {epoch + 1}, step {step + 1} "
                        f"(loss={result.loss.item():.4g} on at least one process; {terms})"
                    )
                self.precision.update(result.loss, self.optimizer)
            self.check_finite_state(epoch, step, result.loss)
            for name, value in {"loss": result.loss, **result.terms}.items():
                value = torch.as_tensor(value, device=self.device).detach().float() * len(y)
                totals[name] = totals[name] + value if name in totals else value
            correct += (result.logits.argmax(1) == y).sum()
            seen += len(y)
            if show_bar:
                bar.set_postfix(loss=f"{result.loss.item():.3f}")
        names = sorted(totals)
        summed = distributed.sum_across(torch.stack([totals[n] for n in names] + [correct, seen]))
        means = {f"train_{name}": (summed[i] / summed[-1]).item() for i, name in enumerate(names)}
        means["train_acc"] = (summed[-2] / summed[-1]).item()
        return means

    def save_epoch(self, epoch: int, record: dict[str, Any]) -> None:
        """Record a completed epoch (:func:`trainers.rundir.record_epoch`): metrics line,
        last.pt with the resume state, best.pt if best; Ctrl-C waits until they are written."""
        self.check_finite_optimizer(epoch)
        value = record[self.selection]
        improved = self.best_value is None or value > self.best_value
        if improved:
            self.best_epoch, self.best_value = epoch, value
        centres = self.word_centres.state_dict()["centres"] if self.word_centres is not None else None
        info = self.splits.train.info
        fields = {
            "dataset": self.config.dataset, "classes": list(info.classes), "heads": self.heads,
            "word_vectors": self.current_word_vectors(), "epoch": epoch, "config": self.config.to_dict(),
            "metrics": {**record, "best_epoch": self.best_epoch, "selection": self.selection,
                        "best_value": self.best_value},
        }
        with interrupts_held_back():
            if self.process.is_main:
                rundir.record_epoch(self.run_dir, record, self.model, fields, optimizer=self.optimizer,
                                    scheduler=self.scheduler, resume_state={"word_centres": centres, "grad_scaler": self.precision.state_dict()},
                                    improved=improved)
            self.saved_epoch = epoch

    def run(self) -> TrainResult:
        config, process = self.config, self.process
        result = TrainResult(run_dir=self.run_dir)
        ctx = self.step_context()
        loader, sampler = self.loader()
        show_bar = process.is_main and not config.quiet and sys.stderr.isatty()
        epoch = self.start_epoch
        try:
            if process.is_main:
                with interrupts_held_back():
                    rundir.start(self.run_dir, config.to_dict(), self.resume_point)
            for epoch in range(self.start_epoch, config.epochs):
                try:
                    record = self.run_epoch(ctx, loader, sampler, epoch, show_bar)
                except TrainingDiverged as exc:
                    raise TrainingDiverged(
                        f"{exc}; stopped: {self.kept_after_divergence()}. Lower --lr or check the data"
                    ) from None
                result.history.append(record)
                if process.is_main and not config.quiet:
                    tqdm.write(_epoch_line(record, config), file=sys.stderr)
        except KeyboardInterrupt:
            raise TrainingInterrupted(
                f"interrupted in epoch {epoch + 1} of {config.epochs}; {self.kept_after_interrupt()}"
            ) from None
        result.best_epoch, result.best_value, result.selection = self.best_epoch, self.best_value, self.selection
        return result

    def run_epoch(self, ctx: StepContext, loader: DataLoader, sampler: DistributedSampler, epoch: int,
                  show_bar: bool) -> dict[str, Any]:
        """Train, evaluate and save epoch ``epoch`` (0-based); its metrics record."""
        config, process = self.config, self.process
        torch.manual_seed(derive_seed(config.seed, STREAM_DATA, epoch, process.rank))
        ctx.generator.manual_seed(derive_seed(config.seed, STREAM_ATTACK, epoch, process.rank))
        if ctx.pool is not None:
            ctx.pool.reseed(derive_seed(config.seed, STREAM_POOL, epoch, process.rank))
        sampler.set_epoch(epoch)
        lr = self.optimizer.param_groups[0]["lr"]
        started = time.perf_counter()
        train_metrics = self.train_epoch(ctx, loader, epoch, show_bar)
        self.scheduler.step()
        trained = time.perf_counter()
        record: dict[str, Any] = {"epoch": epoch + 1, "lr": lr, "processes": process.world_size, **train_metrics}
        for split_name, split in (("val", self.splits.val), ("test", self.splits.test)):
            if split is not None:
                accuracies = evaluate(self.model, split, config, self.device, process)
                record.update({f"{split_name}_{name}": value for name, value in accuracies.items()})
        record["train_time_s"] = trained - started
        record["eval_time_s"] = time.perf_counter() - trained
        self.save_epoch(epoch + 1, record)
        return record

    def kept_after_divergence(self) -> str:
        """What the run folder keeps after the run diverged."""
        if self.saved_epoch == 0:
            return "no checkpoint was written"
        return f"{self.run_dir / rundir.LAST} keeps epoch {self.saved_epoch}, the last good one"

    def kept_after_interrupt(self) -> str:
        """What the run folder keeps after Ctrl-C, and how to go on."""
        if self.saved_epoch == 0:
            return "no epoch finished, so nothing is kept: run the same command again to start over"
        return f"{self.run_dir / rundir.LAST} keeps epoch {self.saved_epoch}: continue with --resume {self.run_dir}"


def lr_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning-rate schedule, stepped once per epoch: x ``lr_gamma`` at each milestone
    (``piecewise``), or ``cosine``: lr (1 + cos(pi e / epochs)) / 2 in (0-based) epoch e, as RST's
    ``adjust_learning_rate`` sets it at the start of each epoch. A resumed run with a larger
    ``--epochs`` continues on the cosine of the new length."""
    if config.lr_schedule == "cosine":
        epochs = config.epochs
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 0.5 * (1 + math.cos(math.pi * e / epochs)))
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, config.milestones, config.lr_gamma)


def _epoch_line(record: dict[str, Any], config: TrainConfig) -> str:
    line = (f"epoch {record['epoch']}/{config.epochs}  loss {record['train_loss']:.4f}  "
            f"val clean {100 * record['val_clean_acc']:.2f}%  val PGD-{config.eval_steps} "
            f"{100 * record['val_pgd_acc']:.2f}%")
    if "test_pgd_acc" in record:
        line += (f"  test clean {100 * record['test_clean_acc']:.2f}%  "
                 f"test PGD-{config.eval_steps} {100 * record['test_pgd_acc']:.2f}%")
    return line + f"  lr {record['lr']:.4g}  {record['train_time_s'] + record['eval_time_s']:.0f}s"


def train(config: TrainConfig, given: Iterable[str] = ()) -> TrainResult:
    """Run (or, with ``config.resume``, continue) the training described by ``config``.

    ``given`` names the options set explicitly on the command line; when resuming, those
    must agree with the stored run. Every check that can fail on user input (the run
    folder, the data, the word vectors, the batch split) happens before anything is
    written. Under torchrun the process group is joined here and left at the end.
    """
    process = distributed.from_environment()
    device = process.place(resolve_device(config.device))
    config, point = run_folder_config(config, given, process.world_size)
    speed.prepare_device(device)
    splits = load_splits(config)
    splits.extra = load_extra(config, splits.train, process.world_size)
    check_data_placement(config, splits)
    word_vectors = None
    if config.method == "scarl" and config.embedding != LEARNED_EMBEDDING:
        word_vectors = class_vectors(config.embedding, splits.train.classes, splits.train.phrases)
    if config.method == "scarl" and config.c is None:
        config.c = float(len(splits.train))
    distributed.initialize(process, device)
    try:
        run = TrainingRun(config, process, device, splits, word_vectors)
        if point is not None:
            run.restore(point)
        result = run.run()
    except BaseException:
        distributed.shutdown(finished=False)
        raise
    distributed.shutdown()
    return result
