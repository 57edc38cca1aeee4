"""Time to accuracy: LeNet-5 on MNIST to 99.0% test accuracy, ``lightning-cv`` vs the loop a careful
user writes by hand.

All sides train what the recipe states (default ``recipes/mnist_lenet5_fast.yaml``: LeNet-5,
SGD with Nesterov momentum, one-cycle schedule stepped every batch, label smoothing 0.1,
batch 128) from the recipe's seed, on the 54,000 training images of the recipe's
``MNISTDataModule``. Model and data module are built as ``lightning-cv fit --config RECIPE``
builds them (``LightningCVCLI(args=[...], run=False)``); the plain side reads its options from
that model's hyperparameters and refuses any it does not implement.

- plain: the training images as one normalised float tensor in memory; each epoch one
  ``torch.randperm`` order (drawn from seed + epoch) cut into batches; per batch
  ``zero_grad``, ``cross_entropy`` (with the recipe's label smoothing), ``backward``, ``step``
  and schedule ``step``. No DataLoader, no Trainer.
- fit: ``lightning-cv fit --config RECIPE --data.root ROOT`` exactly as the docs show it, in
  this process (``LightningCVCLI``) from a temporary folder: the recipe's logger, the CLI's
  default callbacks and checkpoints, its progress bar (output to /dev/null), validation and
  ``test_after_fit``. One callback (:class:`ClockedTraining`) reads the clocks when training
  starts and ends and around each validation, which is left out.
- lockstep: the documented fit again, with the hand-written loop stepping beside it
  (:class:`Lockstep`): one plain step after each of the fit's batches, each side on its own
  clock while the other's is paused. Both meet the same moments of a shared, noisy machine,
  so their ratio, repeat by repeat (``lockstep_ratio``), moves far less than the ratio of
  whole runs made a minute apart. The stripped Trainer below gets a lockstep of its own
  ("lockstep 2", ``trainer_lockstep_ratio``): the two show what the CLI adds and what the
  Trainer and the product's model and data path cost.
- lightning_cv: the stripped Trainer, ``Trainer.fit(model, datamodule=data)`` on a copy of the
  CLI's untrained model with logger, progress bar, checkpointing and validation off: the
  product's data path (the batch pipeline) and its per-step work (loss check, running sums).
- bare: what Lightning itself costs. The hand-written loop's model, batches, loss, SGD and
  schedule as a bare LightningModule (:class:`BareModule`) under the same bare Trainer
  (Lightning's default profiler), in lockstep with the hand-written loop ("lockstep 3",
  ``bare_lockstep_ratio``): the same arithmetic on both sides, so the ratio is Lightning's
  loop alone, the ceiling of any product that trains through ``Trainer.fit``.

A warm-up of two batches checks that all sides end with the same weights (same batches, same
arithmetic). After every epoch each side measures test accuracy (10,000 images) with the same
function, off the clock. A side stops at the first epoch that reaches the target. Repeats
alternate the order of the sides. The clock is process time (this process's CPU seconds: on a
shared machine other jobs move it far less than wall time, which is reported beside it).
Torch runs one thread per side by default (``--threads``), and OpenMP waits sleep
(``OMP_WAIT_POLICY=PASSIVE``).

Result: per side the median seconds to the target, their min-max, wall seconds and images/s;
``ratio`` = plain / fit seconds to the target and ``throughput_ratio`` = fit / plain images/s
(the issue's target: >= 1.0, floor 0.9); ``trainer_ratio`` and ``trainer_throughput_ratio``
the same for the stripped Trainer; ``lockstep_ratio`` the median over repeats of plain / fit
seconds in lockstep, with its min and max, ``trainer_lockstep_ratio`` the stripped Trainer's
and ``bare_lockstep_ratio`` the bare LightningModule's. The last line is one JSON object.
``--seeds 0 1 2 3 4`` runs only the documented fit, once per seed, and reports its own test
top-1 and training seconds as mean, standard deviation and range.

    python benchmarks/time_to_accuracy.py [--root ../shared/datasets] [--repeats 1]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read once, when torch loads OpenMP

import argparse
import contextlib
import copy
import math
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import lightning.pytorch as L
import numpy as np
import torch
import torch.nn.functional as F
from _harness import (
    DEFAULT_ROOT,
    REPO,
    from_recipe,
    interleaved,
    print_result,
    quiet_lightning,
    quiet_trainer,
    use_threads,
)
from torch import nn

from lightning_cv import ImageClassifier, create_model
from lightning_cv.callbacks import ChannelsLast
from lightning_cv.cli import LightningCVCLI
from lightning_cv.data import ImageDataModule, SampleDataset
from lightning_cv.data.batches import to_image_tensor
from lightning_cv.errors import ConfigError

__all__ = [
    "BASELINE",
    "LOCKSTEPS",
    "SIDES",
    "Clock",
    "ClockedTraining",
    "Lockstep",
    "PlainLoop",
    "Run",
    "Setup",
    "build",
    "check_plain_data",
    "fit_command",
    "fit_seeds",
    "lockstep_ratios",
    "normalised",
    "parse_args",
    "plain_sgd_options",
    "spread",
    "summarize",
    "time_ratio",
    "top1_accuracy",
    "train_fit",
    "train_lockstep",
    "train_ours",
    "train_ours_lockstep",
]

Tensors = tuple[torch.Tensor, torch.Tensor]
DEFAULT_RECIPE = REPO / "recipes" / "mnist_lenet5_fast.yaml"
# ImageClassifier options the plain loop implements with these values only
PLAIN_FIXED = {
    "loss": "cross_entropy",
    "optimizer": "sgd",
    "decay_biases": True,
    "scheduler": "onecycle",
    "scheduler_kwargs": None,
    "warmup_steps": 0,
    "scheduler_interval": "step",
    "l1_strength": 0.0,
    "l2_strength": 0.0,
    "lr_reference_batch_size": None,
    "backbone_kwargs": None,
    "weights": None,
    "freeze_backbone": False,
}
# the options it takes as they are: the architecture, SGD's and the loss's own arguments
PLAIN_FREE = ("backbone", "num_classes", "in_channels", "image_size", "class_names", "lr")
PLAIN_FREE += ("weight_decay", "optimizer_kwargs", "loss_kwargs", "step_batch_size")
# the data options the plain loop implements: no augmentation, every batch kept
PLAIN_DATA = {"train_transform": "eval", "drop_last": False, "shuffle": True}


@dataclass(frozen=True)
class Setup:
    """What the recipe builds through ``lightning-cv``, for both sides.

    Attributes:
        model: the recipe's ``ImageClassifier``, untrained, seeded by ``seed_everything``;
            each run trains a copy.
        data: the recipe's data module.
        max_epochs: ``trainer.max_epochs``: the length of the schedule.
        seed: ``seed_everything``.
        channels_last: the recipe's callbacks hold a ``ChannelsLast``: every side then runs
            the network in that memory format, the others in the standard NCHW one.
    """

    model: ImageClassifier
    data: ImageDataModule
    max_epochs: int
    seed: int
    channels_last: bool = False

    @property
    def memory_format(self) -> torch.memory_format:
        """The layout of the network's weights and inputs on every side."""
        return torch.channels_last if self.channels_last else torch.contiguous_format

    @property
    def step_batch_size(self) -> int:
        """The samples of one optimizer step: the model's ``step_batch_size`` (each loaded
        batch split into several steps), else the data's ``batch_size``."""
        return self.model.hparams.get("step_batch_size") or self.data.batch_size

    @property
    def hparams(self) -> dict:
        """The model's hyperparameters: the recipe's options with ImageClassifier's defaults."""
        return dict(self.model.hparams)


@dataclass
class Run:
    """One training run: test accuracy and cumulative training seconds after each epoch.

    Attributes:
        target: the test accuracy the run stops at.
        accuracies: test accuracy after each epoch, in [0, 1].
        epoch_seconds: cumulative training seconds (process time) at each epoch's end,
            evaluation and validation excluded.
        train_seconds: the whole run's process seconds, evaluation and validation excluded.
        wall_seconds: the same on the wall clock.
        eval_seconds: process seconds spent measuring test accuracy.
        images: training images processed.
        model: the trained network.
        reported_acc: the ``fit`` side's own ``test/acc`` (``test_after_fit``), if it ran.
    """

    target: float
    accuracies: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    train_seconds: float = 0.0
    wall_seconds: float = 0.0
    eval_seconds: float = 0.0
    images: int = 0
    model: nn.Module | None = None
    reported_acc: float | None = None

    @property
    def images_per_second(self) -> float:
        """Training throughput, evaluation excluded."""
        return self.images / self.train_seconds if self.train_seconds else 0.0

    @property
    def reached(self) -> bool:
        """Whether the last epoch reached the target."""
        return bool(self.accuracies) and self.accuracies[-1] >= self.target

    @property
    def seconds_to_target(self) -> float | None:
        """Training seconds until the target (the run stops there), or None if never reached."""
        return self.train_seconds if self.reached else None


def build(recipe: Path, root: Path, max_epochs: int | None = None) -> Setup:
    """The recipe's model and data module as ``lightning-cv fit --config recipe`` builds them.

    Args:
        recipe: the recipe YAML.
        root: the data sets' folder.
        max_epochs: instead of the recipe's ``trainer.max_epochs``.

    Returns:
        The :class:`Setup`.
    """
    options = [] if max_epochs is None else ["--trainer.max_epochs", str(max_epochs)]
    cli = from_recipe(recipe, root, *options)
    seed = cli.config["seed_everything"]
    channels_last = any(isinstance(callback, ChannelsLast) for callback in cli.trainer.callbacks)
    return Setup(cli.model, cli.datamodule, cli.trainer.max_epochs, seed, channels_last)


def plain_sgd_options(hparams: dict) -> dict:
    """``torch.optim.SGD`` keyword arguments for the plain loop, from the model's hparams.

    The plain loop implements SGD with a one-cycle schedule stepped every batch and the
    cross-entropy loss; a recipe that asks for anything else cannot be compared with it.

    Args:
        hparams: ``ImageClassifier``'s hyperparameters (:attr:`Setup.hparams`).

    Returns:
        ``lr``, ``weight_decay`` and the ``optimizer_kwargs``.

    Raises:
        ConfigError: an option the plain loop does not implement, or another value of one.

    Example:
        >>> plain_sgd_options({**PLAIN_FIXED, "backbone": "lenet5", "lr": 0.1,
        ...     "weight_decay": 0.0})
        {'lr': 0.1, 'weight_decay': 0.0}
    """
    for key, value in hparams.items():
        if key not in PLAIN_FIXED and key not in PLAIN_FREE:
            raise ConfigError(
                f"the plain loop does not implement model option {key!r}; "
                f"expected some of {sorted([*PLAIN_FIXED, *PLAIN_FREE])}"
            )
        if key in PLAIN_FIXED and value != PLAIN_FIXED[key]:
            raise ConfigError(
                f"the plain loop implements {key}={PLAIN_FIXED[key]!r}, the recipe has "
                f"{key}={value!r}"
            )
    unknown = set(hparams.get("loss_kwargs") or {}) - {"label_smoothing"}
    if unknown:
        raise ConfigError(
            f"the plain loop implements loss_kwargs label_smoothing only, the recipe has "
            f"{sorted(unknown)}"
        )
    options = {"lr": hparams["lr"], "weight_decay": hparams["weight_decay"]}
    return {**options, **(hparams.get("optimizer_kwargs") or {})}


def time_ratio(plain_seconds: float | None, ours_seconds: float | None) -> float | None:
    """Plain seconds / our seconds to the target (>= 0.95: within 5%); None if one missed it.

    Example:
        >>> time_ratio(19.0, 20.0)
        0.95
    """
    if plain_seconds is None or ours_seconds is None:
        return None
    return plain_seconds / ours_seconds


def normalised(data: ImageDataModule, dataset: SampleDataset, limit: int | None) -> Tensors:
    """The view's images as one normalised float tensor in its own order, with the labels.

    The batch path's own arithmetic (``transform_batch`` of the evaluation pipeline:
    ``uint8 / 255``, then ``(x - mean) / std``), done once for the whole set, as a careful user
    would. The result has the standard NCHW strides: with one channel, the arithmetic's output
    strides are ambiguous, and the strides of an NHWC array's transpose make oneDNN run the
    whole network channels-last, 25% faster per step on a CPU, a layout the recipe did not ask
    for.
    """
    indices = dataset.indices[:limit]
    uint8 = to_image_tensor(np.asarray(dataset.images)[indices])
    images = data.transform_batch(uint8, train=False).clone(memory_format=torch.contiguous_format)
    return images, torch.from_numpy(dataset.labels[indices])


@torch.inference_mode()
def top1_accuracy(model: nn.Module, test: Tensors, batch_size: int = 1000) -> float:
    """Top-1 accuracy of ``model`` on ``(images, labels)``, in eval mode; the mode is restored.

    Example:
        >>> top1_accuracy(model, (images, labels))  # doctest: +SKIP
        0.9912
    """
    was_training = model.training
    model.eval()
    images, labels = test
    correct = sum(
        int((model(batch).argmax(dim=1) == target).sum())
        for batch, target in zip(images.split(batch_size), labels.split(batch_size), strict=True)
    )
    model.train(was_training)
    return correct / len(labels)


class Clock:
    """Process and wall seconds since it was made, less the spans set aside with :meth:`pause`
    and :meth:`resume` (validation, test evaluation).

    Process time counts this process's CPU time only, so other jobs on a shared machine barely
    move it; wall time is reported beside it.

    Example:
        >>> clock = Clock()
        >>> clock.pause(); clock.resume()
        >>> process, wall = clock.read()
    """

    def __init__(self) -> None:
        self._start = _now()
        self._aside = (0.0, 0.0)
        self._paused: tuple[float, float] | None = None

    def pause(self) -> None:
        self._paused = _now()

    def resume(self) -> None:
        if self._paused is None:
            return
        now = _now()
        self._aside = tuple(
            a + n - p for a, n, p in zip(self._aside, now, self._paused, strict=True)
        )
        self._paused = None

    def read(self) -> tuple[float, float]:
        """``(process seconds, wall seconds)`` counted so far."""
        now = _now()
        return now[0] - self._start[0] - self._aside[0], now[1] - self._start[1] - self._aside[1]


def _now() -> tuple[float, float]:
    return time.process_time(), time.perf_counter()


class PlainLoop:
    """The hand-written loop, a batch at a time: the model, SGD and the one-cycle schedule as
    the recipe states them, seeded with its seed; each epoch one ``torch.randperm`` order
    (drawn from seed + epoch) cut into batches.

    Args:
        setup: the recipe's :class:`Setup`.
        train: the training images (normalised floats) and labels.
    """

    def __init__(self, setup: Setup, train: Tensors) -> None:
        hparams = setup.hparams
        options = plain_sgd_options(hparams)
        self.loss_options = hparams["loss_kwargs"] or {}
        self.batch_size, self.seed = setup.step_batch_size, setup.seed
        images, self.labels = train
        torch.manual_seed(setup.seed)
        shape = {name: hparams[name] for name in ("num_classes", "in_channels", "image_size")}
        model = create_model(hparams["backbone"], **shape).to(images.device)  # where the data is
        self.model = model.to(memory_format=setup.memory_format)
        # the whole set once (the ChannelsLast callback converts each batch; one channel: no copy)
        self.images = images.contiguous(memory_format=setup.memory_format)
        self.optimizer = torch.optim.SGD(self.model.parameters(), **options)
        steps = setup.max_epochs * math.ceil(len(self.labels) / self.batch_size)
        self.schedule = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer, options["lr"], total_steps=steps
        )

    def batches(self, epoch: int) -> tuple[torch.Tensor, ...]:
        """The epoch's batches: index tensors into the training set, in order."""
        generator = torch.Generator().manual_seed(self.seed + epoch)
        order = torch.randperm(len(self.labels), generator=generator).to(self.labels.device)
        return order.split(self.batch_size)

    def step(self, batch: torch.Tensor) -> None:
        """One optimizer step on the samples ``batch`` indexes."""
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.model(self.images[batch])
        loss = F.cross_entropy(logits, self.labels[batch], **self.loss_options)
        loss.backward()
        self.optimizer.step()
        self.schedule.step()


def train_plain(setup: Setup, train: Tensors, test: Tensors, target: float) -> Run:
    """Train with a hand-written loop until ``target`` test accuracy or ``setup.max_epochs``."""
    run, clock = Run(target), Clock()
    loop = PlainLoop(setup, train)
    for epoch in range(setup.max_epochs):
        loop.model.train()
        for batch in loop.batches(epoch):
            loop.step(batch)
        run.images += len(loop.labels)
        _end_epoch(run, clock, loop.model, test)
        if run.reached:
            break
    run.train_seconds, run.wall_seconds = clock.read()
    run.model = loop.model
    return run


class ClockedTraining(L.Callback):
    """Clock a Trainer's training: from ``on_train_start`` to ``on_train_end``, validation set
    aside; after every epoch measure test accuracy (set aside too) and stop at the target.

    Reading two clocks at a handful of hooks an epoch is all it adds to the run it watches.

    Args:
        run: the :class:`Run` to fill.
        test: the test images and labels.
        train_limit: keep the first N training images of the data module (the ``fit`` side,
            whose data module the CLI builds).
    """

    def __init__(self, run: Run, test: Tensors, train_limit: int | None = None) -> None:
        self.run, self.test, self.train_limit = run, test, train_limit
        self.clock: Clock | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit" and self.train_limit is not None:  # after the data module's setup
            train_set = trainer.datamodule.train_set
            train_set.indices = train_set.indices[: self.train_limit]

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.clock = Clock()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.clock is not None:
            self.clock.pause()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.clock is not None:
            self.clock.resume()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.run.images += len(batch[1])

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        _end_epoch(self.run, self.clock, pl_module, self.test)
        trainer.should_stop = self.run.reached

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.run.train_seconds, self.run.wall_seconds = self.clock.read()
        self.run.model = pl_module.backbone


class Lockstep(L.Callback):
    """The hand-written loop in lockstep with a Trainer's training: after each of the Trainer's
    batches the plain steps on the same samples (one, or as many as the model's
    ``step_batch_size`` splits the batch into), timed on its own clock while the Trainer's
    (``fit``) is paused.

    Both sides then meet the same moments of a shared, noisy machine, step by step, which
    whole runs a minute apart do not. Taking turns in bursts of 20 or 100 steps instead,
    each side's caches warmer, gave the same ratio (0.86-0.89 with LeNet-5 here). Each
    epoch the loop draws its order when the Trainer's epoch starts and, when it ends,
    measures its test accuracy off both clocks.

    Args:
        loop: the hand-written loop, untrained.
        fit: the Trainer's :class:`ClockedTraining`, to pause.
        test: the test images and labels.
    """

    def __init__(self, loop: PlainLoop, fit: ClockedTraining, test: Tensors) -> None:
        self.loop, self.fit, self.test = loop, fit, test
        self.run = Run(fit.run.target)
        self.batches: Iterator[torch.Tensor] = iter(())

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.loop.model.train()
        with self._timed():
            self.batches = iter(self.loop.batches(trainer.current_epoch))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        samples = len(batch[1])
        with self._timed():
            for _ in range(math.ceil(samples / self.loop.batch_size)):
                self.loop.step(next(self.batches))
        self.run.images += samples

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.run.epoch_seconds.append(self.run.train_seconds)
        self.fit.clock.pause()
        start = time.process_time()
        self.run.accuracies.append(top1_accuracy(self.loop.model, self.test))
        self.run.eval_seconds += time.process_time() - start
        self.fit.clock.resume()
        self.run.model = self.loop.model

    @contextlib.contextmanager
    def _timed(self) -> Iterator[None]:
        """Count the block on this side's clocks, not on the Trainer's."""
        self.fit.clock.pause()
        start = _now()
        yield
        end = _now()
        self.run.train_seconds += end[0] - start[0]
        self.run.wall_seconds += end[1] - start[1]
        self.fit.clock.resume()


def train_ours(setup: Setup, test: Tensors, target: float) -> Run:
    """The stripped Trainer: a copy of the recipe's ``ImageClassifier`` under
    :func:`quiet_trainer` (no logger, checkpoints, progress bar or validation)."""
    run = Run(target)
    _stripped_fit(setup, [ClockedTraining(run, test)])
    return run


def train_ours_lockstep(
    setup: Setup, train: Tensors, test: Tensors, target: float
) -> tuple[Run, Run]:
    """The stripped Trainer (:func:`train_ours`) with the hand-written loop in
    :class:`Lockstep`: ``(the Trainer's run, the plain loop's run)``."""
    run = Run(target)
    clock = ClockedTraining(run, test)
    lockstep = Lockstep(PlainLoop(setup, train), clock, test)
    _stripped_fit(setup, [clock, lockstep])
    return run, lockstep.run


class BareModule(L.LightningModule):
    """The hand-written loop as a bare LightningModule: its model (``backbone``), batches,
    loss, SGD and one-cycle schedule, nothing of lightning-cv's per step. Under a bare Trainer
    it shows what Lightning itself costs a step.

    Args:
        setup: the recipe's :class:`Setup`.
        train: the training images (normalised floats) and labels.
    """

    def __init__(self, setup: Setup, train: Tensors) -> None:
        super().__init__()
        self.loop = PlainLoop(setup, train)  # its model, order and options, untrained
        self.backbone = self.loop.model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images)

    def train_dataloader(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return _BareBatches(self)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        images, labels = batch
        return F.cross_entropy(self.backbone(images), labels, **self.loop.loss_options)

    def configure_optimizers(self):
        scheduler = {"scheduler": self.loop.schedule, "interval": "step"}
        return {"optimizer": self.loop.optimizer, "lr_scheduler": scheduler}


class _BareBatches:
    """:class:`BareModule`'s loader: each epoch the plain loop's batches of that epoch."""

    def __init__(self, module: BareModule) -> None:
        self.module = module

    def __len__(self) -> int:
        return math.ceil(len(self.module.loop.labels) / self.module.loop.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        loop = self.module.loop
        for batch in loop.batches(self.module.trainer.current_epoch):
            yield loop.images[batch], loop.labels[batch]


def train_bare_lockstep(
    setup: Setup, train: Tensors, test: Tensors, target: float
) -> tuple[Run, Run]:
    """:class:`BareModule` under a bare Trainer (:func:`quiet_trainer`, Lightning's default
    profiler) with the hand-written loop in :class:`Lockstep`: ``(the Trainer's run, the plain
    loop's run)``. Both do the same arithmetic on the same batches."""
    run = Run(target)
    clock = ClockedTraining(run, test)
    lockstep = Lockstep(PlainLoop(setup, train), clock, test)
    quiet_trainer(setup.max_epochs, [clock, lockstep]).fit(BareModule(setup, train))
    return run, lockstep.run


def _stripped_fit(setup: Setup, clocks: list[L.Callback]) -> None:
    model = copy.deepcopy(setup.model)
    layout = [ChannelsLast()] if setup.channels_last else []
    quiet_trainer(setup.max_epochs, [*clocks, *layout]).fit(model, datamodule=setup.data)


class _ClockedCLI(LightningCVCLI):
    """``lightning-cv`` as the console script runs it, with a :class:`ClockedTraining` (and a
    :class:`Lockstep`) added in front of the Trainer's callbacks (so the checkpoints it
    writes count as training)."""

    def __init__(self, clocks: list[L.Callback], args: list[str]) -> None:
        self._clocks = clocks
        super().__init__(args=args)

    def instantiate_trainer(self, **kwargs) -> L.Trainer:
        trainer = super().instantiate_trainer(**kwargs)
        trainer.callbacks[:0] = self._clocks
        return trainer


def fit_command(args: argparse.Namespace, seed: int | None = None) -> list[str]:
    """The documented command's arguments: ``fit --config RECIPE --data.root ROOT``, and
    ``--trainer.max_epochs`` and ``--seed_everything`` when given."""
    command = ["fit", "--config", str(args.recipe), "--data.root", str(args.root)]
    if args.max_epochs is not None:
        command += ["--trainer.max_epochs", str(args.max_epochs)]
    if seed is not None:
        command += ["--seed_everything", str(seed)]
    return command


def train_fit(
    args: argparse.Namespace, test: Tensors, target: float, seed: int | None = None
) -> Run:
    """``lightning-cv fit --config RECIPE`` as the docs show it: the recipe's logger, the
    default callbacks, checkpoints, progress bar, validation and ``test_after_fit``; run in a
    temporary folder (its ``runs/``), its output to /dev/null."""
    run = Run(target)
    _documented_fit(args, [ClockedTraining(run, test, args.train_limit)], seed)
    return run


def train_lockstep(
    args: argparse.Namespace, setup: Setup, train: Tensors, test: Tensors, target: float
) -> tuple[Run, Run]:
    """The documented ``fit`` (:func:`train_fit`) with the hand-written loop in
    :class:`Lockstep`: ``(the fit's run, the plain loop's run)``."""
    run = Run(target)
    clock = ClockedTraining(run, test, args.train_limit)
    lockstep = Lockstep(PlainLoop(setup, train), clock, test)
    _documented_fit(args, [clock, lockstep])
    return run, lockstep.run


def _documented_fit(
    args: argparse.Namespace, clocks: list[L.Callback], seed: int | None = None
) -> None:
    """Run ``lightning-cv fit`` in a temporary folder, output to /dev/null, ``clocks`` first
    among its callbacks; the run's ``test/acc`` goes to the first clock's run."""
    with (
        tempfile.TemporaryDirectory() as folder,
        contextlib.chdir(folder),
        open(os.devnull, "w") as devnull,
        contextlib.redirect_stdout(devnull),
        contextlib.redirect_stderr(devnull),
    ):
        cli = _ClockedCLI(clocks, fit_command(args, seed))
    reported = cli.trainer.callback_metrics.get("test/acc")
    clocks[0].run.reported_acc = None if reported is None else float(reported)


def _end_epoch(run: Run, clock: Clock, model: nn.Module, test: Tensors) -> None:
    """Note the epoch's training seconds, then measure test accuracy off the clock."""
    run.epoch_seconds.append(clock.read()[0])
    clock.pause()
    start = time.process_time()
    run.accuracies.append(top1_accuracy(model, test))
    run.eval_seconds += time.process_time() - start
    clock.resume()


def summarize(runs: dict[str, list[Run]]) -> dict[str, dict]:
    """Per side, the median over repeats of seconds and epochs to the target, and eval seconds.

    Args:
        runs: ``{side: [Run, ...]}``.

    Returns:
        ``{side: {"seconds", "epochs", "acc", "eval_seconds", "images_per_s"}}``;
        ``seconds`` is None when a repeat missed the target; ``acc`` is the last
        repeat's final test accuracy.

    Example:
        >>> run = Run(0.9, accuracies=[0.8, 0.95], epoch_seconds=[1.0, 2.0], train_seconds=2.1)
        >>> summarize({"plain": [run]})["plain"]["seconds"]
        2.1
    """
    summary = {}
    for name, side_runs in runs.items():
        times = [run.seconds_to_target for run in side_runs]
        summary[name] = {
            "seconds": None if None in times else statistics.median(times),
            "epochs": statistics.median(len(run.accuracies) for run in side_runs),
            "acc": side_runs[-1].accuracies[-1],
            "eval_seconds": statistics.median(run.eval_seconds for run in side_runs),
            "images_per_s": statistics.median(run.images_per_second for run in side_runs),
        }
    return summary


def spread(runs: dict[str, list[Run]]) -> dict[str, dict]:
    """Per side, the fastest and slowest repeat's process seconds and the median wall seconds.

    Example:
        >>> runs = [Run(0.9, [0.95], [2.0], 2.0, 3.0), Run(0.9, [0.95], [2.4], 2.4, 2.9)]
        >>> spread({"plain": runs})
        {'plain': {'seconds_min': 2.0, 'seconds_max': 2.4, 'wall_seconds': 2.95}}
    """
    return {
        name: {
            "seconds_min": min(run.train_seconds for run in side_runs),
            "seconds_max": max(run.train_seconds for run in side_runs),
            "wall_seconds": statistics.median(run.wall_seconds for run in side_runs),
        }
        for name, side_runs in runs.items()
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command-line options (``sys.argv`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="holds MNIST/raw")
    parser.add_argument("--recipe", type=Path, default=DEFAULT_RECIPE)
    parser.add_argument("--target", type=float, default=0.99, help="test accuracy in [0, 1]")
    parser.add_argument("--max-epochs", type=int, help="default: the recipe's (the schedule)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--train-limit", type=int, help="train on the first N images only")
    parser.add_argument("--test-limit", type=int, help="test on the first N images only")
    parser.add_argument(
        "--seeds", type=int, nargs="+", help="only the documented fit, once per seed"
    )
    args = parser.parse_args(argv)
    if not 0 <= args.target <= 1:
        parser.error(f"--target must be a test accuracy in [0, 1], got {args.target}")
    return args


def check_plain_data(data: ImageDataModule) -> None:
    """Refuse a data module whose options the plain loop does not implement, naming it."""
    for key, expected in PLAIN_DATA.items():
        value = getattr(data, key)
        if value != expected:
            raise ConfigError(
                f"the plain loop implements data {key}={expected!r}, the recipe has {value!r}"
            )


def prepare(setup: Setup, args: argparse.Namespace) -> tuple[Tensors, Tensors]:
    """Set up the data module (maybe cut to ``--train-limit``); the plain side's training and
    test tensors."""
    data = setup.data
    check_plain_data(data)
    data.setup("fit")
    data.setup("test")
    if not data.uses_batches:  # decided in setup
        raise ConfigError(f"{type(data).__name__} does not use the batch pipeline")
    if args.train_limit is not None:
        data.train_set.indices = data.train_set.indices[: args.train_limit]
    return normalised(data, data.train_set, None), normalised(data, data.test_set, args.test_limit)


def warm_up(
    setup: Setup, train: Tensors, test: Tensors, args: argparse.Namespace | None = None
) -> None:
    """One epoch of two optimizer steps per side, not counted: all must end with the same
    weights (the documented ``fit`` and its lockstep too when ``args`` are given)."""
    short = replace(setup, max_epochs=1)
    data = setup.data
    two = 2 * setup.step_batch_size
    indices = data.train_set.indices
    data.train_set.indices = indices[:two]
    L.seed_everything(setup.seed, verbose=False)
    two_batches = (train[0][:two], train[1][:two])
    plain = train_plain(short, two_batches, test, 2.0)
    sides = [train_ours(short, test, 2.0), *train_ours_lockstep(short, two_batches, test, 2.0)]
    sides += train_bare_lockstep(short, two_batches, test, 2.0)
    data.train_set.indices = indices
    if args is not None:
        short_args = argparse.Namespace(**{**vars(args), "max_epochs": 1, "train_limit": two})
        sides.append(train_fit(short_args, test, 2.0))
        sides += train_lockstep(short_args, short, two_batches, test, 2.0)
    for side in sides:
        torch.testing.assert_close(plain.model.state_dict(), side.model.state_dict())


CLOCK_NOTE = (
    "clock: process time of the training (validation and the test evaluation left out), wall "
    "time beside it; on a shared, loaded machine trust the process time"
)
SIDES = {"plain": "hand-written loop", "fit": "lightning-cv fit (documented)",
         "lightning_cv": "stripped Trainer", "lockstep_plain": "hand-written loop, lockstep",
         "lockstep_fit": "lightning-cv fit, lockstep",
         "lockstep_trainer_plain": "hand-written loop, lockstep 2",
         "lockstep_trainer": "stripped Trainer, lockstep 2",
         "lockstep_bare_plain": "hand-written loop, lockstep 3",
         "lockstep_bare": "bare LightningModule, lockstep 3"}  # fmt: skip
"""The sides, by the name their figures carry in the JSON result."""
LOCKSTEPS = {"lockstep": ("lockstep_fit", "lockstep_plain"),
             "trainer_lockstep": ("lockstep_trainer", "lockstep_trainer_plain"),
             "bare_lockstep": ("lockstep_bare", "lockstep_bare_plain")}  # fmt: skip
"""Per lockstep's JSON prefix, its two runs: the Trainer's and the plain loop's."""
BASELINE = {side: plain for side, plain in LOCKSTEPS.values()}
BASELINE |= {plain: plain for plain in BASELINE.values()}
"""The plain run a side is compared with, when not the whole run of ``plain``."""


def fit_seeds(args: argparse.Namespace) -> dict:
    """``--seeds``: only the documented ``fit``, once per seed, to the end of its schedule;
    its own test top-1 and its training seconds, each as mean, standard deviation and range."""
    data = build(args.recipe, args.root).data
    data.setup("test")
    test = normalised(data, data.test_set, args.test_limit)
    runs = {seed: train_fit(args, test, 2.0, seed) for seed in args.seeds}
    for seed, run in runs.items():
        wall = f"{run.wall_seconds:.1f} s wall"
        print(f"seed {seed}: test top-1 {run.reported_acc:.2%}, {run.train_seconds:.1f} s "
              f"of training ({wall}), {len(run.accuracies)} epochs")  # fmt: skip
    figures = {"recipe": f"recipes/{args.recipe.name}", "seeds": args.seeds}
    for name, values in (("acc", [run.reported_acc for run in runs.values()]),
                         ("seconds", [run.train_seconds for run in runs.values()])):  # fmt: skip
        mean, std = statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0
        low, high = min(values), max(values)
        figures |= {f"{name}_mean": round(mean, 4), f"{name}_std": round(std, 4),
                    f"{name}_min": round(low, 4), f"{name}_max": round(high, 4)}  # fmt: skip
        print(f"{name}: mean {mean:.4f}, std {std:.4f}, {min(values):.4f}-{max(values):.4f}")
    return figures | {"torch_threads": args.threads, "clock": "process"}


def main() -> None:
    args = parse_args()
    quiet_lightning()
    use_threads(args.threads)
    if args.seeds:
        print_result("time_to_accuracy_seeds", fit_seeds(args))
        return
    setup = build(args.recipe, args.root, args.max_epochs)
    L.seed_everything(setup.seed, verbose=False)  # PL_GLOBAL_SEED: the batch path's order
    train, test = prepare(setup, args)
    print(
        f"{args.recipe.name}: {setup.hparams['backbone']}, batch {setup.data.batch_size} "
        f"({setup.step_batch_size} per optimizer step), "
        f"{len(train[1])} training and {len(test[1])} test images, target "
        f"{args.target:.1%}, at most {setup.max_epochs} epochs, torch threads {args.threads}"
    )
    print(CLOCK_NOTE)
    warm_up(setup, train, test, args)
    sides = {
        "plain": lambda: {"plain": train_plain(setup, train, test, args.target)},
        "fit": lambda: {"fit": train_fit(args, test, args.target)},
        "lightning_cv": lambda: {"lightning_cv": train_ours(setup, test, args.target)},
        "lockstep": lambda: _named(
            "lockstep", train_lockstep(args, setup, train, test, args.target)
        ),
        "trainer_lockstep": lambda: _named(
            "trainer_lockstep", train_ours_lockstep(setup, train, test, args.target)
        ),
        "bare_lockstep": lambda: _named(
            "bare_lockstep", train_bare_lockstep(setup, train, test, args.target)
        ),
    }
    runs: dict[str, list[Run]] = {name: [] for name in SIDES}
    print(f"{'repeat':>6} {'side':>14} {'epoch':>5} {'test acc':>8} {'train s':>8} {'eval s':>7}")
    for repeat, side in interleaved(list(sides), args.repeats):
        L.seed_everything(setup.seed, verbose=False)
        for name, run in sides[side]().items():
            runs[name].append(run)
            _print_run(repeat, name, run)
    print_result("time_to_accuracy", report(args, setup, runs))


def _named(lockstep: str, runs: tuple[Run, Run]) -> dict[str, Run]:
    """A lockstep's two runs under the names :data:`LOCKSTEPS` gives them."""
    return dict(zip(LOCKSTEPS[lockstep], runs, strict=True))


def _print_run(repeat: int, name: str, run: Run) -> None:
    epochs = zip(run.accuracies, run.epoch_seconds, strict=True)
    for epoch, (acc, seconds) in enumerate(epochs, 1):
        print(f"{repeat:>6} {name:>14} {epoch:>5} {acc:>8.2%} {seconds:>8.1f}")
    print(f"{repeat:>6} {name:>14} {'total':>5} {'':>8} {run.train_seconds:>8.1f} "
          f"{run.eval_seconds:>7.1f}  {run.images_per_second:,.0f} images/s, "
          f"{run.wall_seconds:.1f} s wall")  # fmt: skip


def report(args: argparse.Namespace, setup: Setup, runs: dict[str, list[Run]]) -> dict:
    """Print each side's figures; return the JSON result's figures."""
    summary, ranges = summarize(runs), spread(runs)
    steps = {prefix: lockstep_ratios(runs, *pair) for prefix, pair in LOCKSTEPS.items()}
    paired = {side: statistics.median(steps[prefix]) for prefix, (side, _) in LOCKSTEPS.items()}
    print(f"{'side':>32} {'s to target':>11} {'min-max':>11} {'wall s':>7} {'images/s':>9} "
          f"{'vs plain':>8}")  # fmt: skip
    for name, figures in summary.items():
        seconds = figures["seconds"]
        ratio = time_ratio(summary[BASELINE.get(name, "plain")]["seconds"], seconds)
        ratio = paired.get(name, ratio)
        low, high = ranges[name]["seconds_min"], ranges[name]["seconds_max"]
        shown = "missed" if seconds is None else f"{seconds:.1f}"
        versus = "n/a" if ratio is None else f"{ratio:.2f}"
        print(f"{SIDES[name]:>32} {shown:>11} {f'{low:.1f}-{high:.1f}':>11} "
              f"{ranges[name]['wall_seconds']:>7.1f} {figures['images_per_s']:>9,.0f} "
              f"{versus:>8}")  # fmt: skip
    print("vs plain: plain seconds / the side's seconds to the target (medians of process time;"
          " a lockstep's Trainer: the median over repeats of its own plain loop's seconds / its"
          " seconds)")  # fmt: skip
    print(f"lockstep, repeat by repeat: plain / fit seconds {_listed(steps['lockstep'])}")
    print(f"lockstep 2: plain / stripped Trainer seconds {_listed(steps['trainer_lockstep'])}")
    print(f"lockstep 3: plain / bare LightningModule seconds {_listed(steps['bare_lockstep'])}")
    data = setup.data
    result = {
        "recipe": f"recipes/{args.recipe.name}",
        "model": setup.hparams["backbone"],
        "batch_size": data.batch_size,
        "step_batch_size": setup.step_batch_size,
        "pipeline": "batch",
        "train_images": len(data.train_set),
        "test_images": args.test_limit or len(data.test_set),
        "target_acc": args.target,
        "max_epochs": setup.max_epochs,
        "clock": "process",
    }
    for name, figures in summary.items():
        seconds = figures["seconds"]
        result[f"{name}_seconds"] = None if seconds is None else round(seconds, 2)
        result[f"{name}_seconds_min"] = round(ranges[name]["seconds_min"], 2)
        result[f"{name}_seconds_max"] = round(ranges[name]["seconds_max"], 2)
        result[f"{name}_wall_seconds"] = round(ranges[name]["wall_seconds"], 2)
        result[f"{name}_epochs"] = figures["epochs"]
        result[f"{name}_acc"] = round(figures["acc"], 4)
        result[f"{name}_eval_seconds"] = round(figures["eval_seconds"], 2)
        result[f"{name}_images_per_s"] = round(figures["images_per_s"])
    result |= _ratios(summary)
    for prefix, ratios in steps.items():
        result[f"{prefix}_ratio"] = round(statistics.median(ratios), 4)
        result[f"{prefix}_ratio_min"] = round(min(ratios), 4)
        result[f"{prefix}_ratio_max"] = round(max(ratios), 4)
    result |= {"repeats": args.repeats, "torch_threads": args.threads, "device": "cpu"}
    result["omp_wait_policy"] = os.environ["OMP_WAIT_POLICY"]
    return result


def lockstep_ratios(
    runs: dict[str, list[Run]],
    side: str = LOCKSTEPS["lockstep"][0],
    plain: str = LOCKSTEPS["lockstep"][1],
) -> list[float]:
    """Per lockstep repeat, the plain loop's training seconds / the Trainer's: the same steps
    on the same stretch of the machine (the sides stop together).

    Example:
        >>> plain, fit = Run(0.9, train_seconds=9.0), Run(0.9, train_seconds=10.0)
        >>> lockstep_ratios({"lockstep_plain": [plain], "lockstep_fit": [fit]})
        [0.9]
    """
    pairs = zip(runs[plain], runs[side], strict=True)
    return [plain_run.train_seconds / run.train_seconds for plain_run, run in pairs]


def _listed(values: list[float]) -> str:
    return ", ".join(f"{value:.3f}" for value in values)


def _ratios(summary: dict[str, dict]) -> dict[str, float | None]:
    """``ratio`` and ``throughput_ratio``: the documented ``fit`` against the plain loop
    (seconds plain / fit; images/s fit / plain); ``trainer_*``: the stripped Trainer's."""
    plain = summary["plain"]
    figures = {}
    for prefix, name in (("", "fit"), ("trainer_", "lightning_cv")):
        ratio = time_ratio(plain["seconds"], summary[name]["seconds"])
        throughput = summary[name]["images_per_s"] / plain["images_per_s"]
        figures[f"{prefix}ratio"] = None if ratio is None else round(ratio, 4)
        figures[f"{prefix}throughput_ratio"] = round(throughput, 4)
    return figures


if __name__ == "__main__":
    main()
