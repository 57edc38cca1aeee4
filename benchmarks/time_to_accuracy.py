"""Time to accuracy: LeNet-5 on MNIST to 99.0% test accuracy, ``lightning-cv`` vs the loop a careful
user writes by hand.

Both sides train what the recipe states (default ``recipes/mnist_lenet5_fast.yaml``: LeNet-5,
SGD with Nesterov momentum, one-cycle schedule stepped every batch, label smoothing 0.1,
batch 128) from the recipe's seed, on the 54,000 training images of the recipe's
``MNISTDataModule``.

- plain: the training images as one normalised float tensor in memory; each epoch one
  ``torch.randperm`` order (drawn from seed + epoch) cut into batches; per batch
  ``zero_grad``, ``cross_entropy`` (with the recipe's label smoothing), ``backward``, ``step``
  and schedule ``step``. No DataLoader, no Trainer.
- lightning_cv: ``Trainer.fit(ImageClassifier(...), datamodule=data)``: the product's data
  path (the batch pipeline: uint8 batches by one index each, converted and normalised per
  batch after transfer) and its per-step work (loss check, running training metrics).
  Logger, progress bar, checkpointing and the validation loop are off.

A warm-up of two batches checks that both sides end with the same weights (same batches, same
arithmetic). After every epoch both sides measure test accuracy (10,000 images) with the same
function; its time is left out and reported apart. A side stops at the first epoch that
reaches the target. Repeats alternate the order of the sides. Torch runs one thread per side
by default (``--threads``), and OpenMP waits sleep (``OMP_WAIT_POLICY=PASSIVE``): on a shared
2-core machine a spinning thread takes the core its partner needs.

Result: per side images/s of training and seconds to the target (medians over repeats);
``throughput_ratio`` = ours / plain images/s (target >= 0.85) and ``ratio`` = plain / ours
seconds to the target (target >= 0.83, i.e. within 1.2x). The last line is one JSON object.

    python benchmarks/time_to_accuracy.py [--root ../shared/datasets] [--repeats 1]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read once, when torch loads OpenMP

import argparse
import importlib
import json
import logging
import math
import statistics
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import lightning.pytorch as L
import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from lightning_cv import ImageClassifier, create_model
from lightning_cv.data import ImageDataModule, SampleDataset
from lightning_cv.data.batches import to_image_tensor
from lightning_cv.errors import ConfigError

__all__ = [
    "Recipe",
    "Run",
    "load_recipe",
    "make_trainer",
    "normalised",
    "parse_args",
    "plain_sgd_options",
    "quiet_lightning",
    "summarize",
    "time_ratio",
    "top1_accuracy",
]

Tensors = tuple[torch.Tensor, torch.Tensor]
REPO = Path(__file__).resolve().parents[1]
DEFAULT_RECIPE = REPO / "recipes" / "mnist_lenet5_fast.yaml"
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "datasets"
# the model options the plain loop implements; any other option in the recipe is refused
PLAIN_OPTIONS = {
    "backbone": None,
    "optimizer": "sgd",
    "lr": None,
    "weight_decay": None,
    "optimizer_kwargs": None,
    "scheduler": "onecycle",
    "scheduler_interval": "step",
    "loss_kwargs": None,  # label_smoothing only: F.cross_entropy's own option
}
# the data options the plain loop implements: no augmentation, every batch kept
PLAIN_DATA = {"train_transform": "eval", "drop_last": False, "shuffle": True}


@dataclass(frozen=True)
class Recipe:
    """What a recipe YAML states for this benchmark.

    Attributes:
        model: ``ImageClassifier`` keyword arguments (the recipe's ``model`` section).
        data_class: the data module class named by ``data.class_path``.
        data_kwargs: its ``init_args``.
        max_epochs: ``trainer.max_epochs``: the length of the schedule.
        seed: ``seed_everything``.
    """

    model: dict
    data_class: type[ImageDataModule]
    data_kwargs: dict
    max_epochs: int
    seed: int

    def data(self, root: Path) -> ImageDataModule:
        """The recipe's data module reading from ``root``."""
        return self.data_class(**{**self.data_kwargs, "root": root})

    @property
    def shape(self) -> dict:
        """``num_classes``, ``in_channels`` and ``image_size`` of the data (the CLI links them)."""
        names = ("num_classes", "in_channels", "image_size")
        return {name: getattr(self.data_class, name) for name in names}


@dataclass
class Run:
    """One training run: test accuracy and cumulative training seconds after each epoch.

    Attributes:
        target: the test accuracy the run stops at.
        accuracies: test accuracy after each epoch, in [0, 1].
        epoch_seconds: cumulative training seconds at each epoch's end (evaluation excluded).
        train_seconds: the whole run's seconds, evaluation excluded.
        eval_seconds: seconds spent measuring test accuracy.
        images: training images processed.
        model: the trained network.
    """

    target: float
    accuracies: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    images: int = 0
    model: nn.Module | None = None

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


def load_recipe(path: Path) -> Recipe:
    """Read a recipe YAML's model, data module, ``trainer.max_epochs`` and seed.

    Args:
        path: the recipe, e.g. ``recipes/mnist_lenet5.yaml``.

    Returns:
        The :class:`Recipe`.

    Raises:
        ConfigError: the recipe lacks ``model``, ``data.class_path`` or ``trainer.max_epochs``.

    Example:
        >>> load_recipe(Path("recipes/mnist_lenet5.yaml")).max_epochs  # doctest: +SKIP
        8
    """
    config = yaml.safe_load(Path(path).read_text())
    try:
        model, data, max_epochs = config["model"], config["data"], config["trainer"]["max_epochs"]
        module, _, name = data["class_path"].rpartition(".")
    except (KeyError, TypeError) as error:
        raise ConfigError(
            f"recipe {str(path)!r} lacks {error}; expected model, data.class_path and "
            "trainer.max_epochs"
        ) from None
    data_class = getattr(importlib.import_module(module), name)
    seed = config.get("seed_everything", 0)
    return Recipe(dict(model), data_class, dict(data.get("init_args", {})), max_epochs, seed)


def plain_sgd_options(model: dict) -> dict:
    """``torch.optim.SGD`` keyword arguments for the plain loop, from the recipe's model section.

    The plain loop implements SGD with a one-cycle schedule stepped every batch and the
    cross-entropy loss; a recipe that asks for anything else cannot be compared with it.

    Args:
        model: the recipe's ``model`` section.

    Returns:
        ``lr``, ``weight_decay`` and the ``optimizer_kwargs``.

    Raises:
        ConfigError: an option the plain loop does not implement, or another value of one.

    Example:
        >>> plain_sgd_options({"backbone": "lenet5", "optimizer": "sgd", "lr": 0.1,
        ...     "scheduler": "onecycle", "scheduler_interval": "step"})
        {'lr': 0.1, 'weight_decay': 0.0}
    """
    for key, value in model.items():
        if key not in PLAIN_OPTIONS:
            raise ConfigError(
                f"the plain loop does not implement model option {key!r}; "
                f"expected some of {sorted(PLAIN_OPTIONS)}"
            )
        expected = PLAIN_OPTIONS[key]
        if expected is not None and value != expected:
            raise ConfigError(
                f"the plain loop implements {key}={expected!r}, the recipe has {key}={value!r}"
            )
    unknown = set(model.get("loss_kwargs") or {}) - {"label_smoothing"}
    if unknown:
        raise ConfigError(
            f"the plain loop implements loss_kwargs label_smoothing only, the recipe has "
            f"{sorted(unknown)}"
        )
    for key in ("optimizer", "scheduler", "scheduler_interval"):
        if key not in model:
            raise ConfigError(
                f"the plain loop implements {key}={PLAIN_OPTIONS[key]!r}, the recipe sets no {key}"
            )
    options = {"lr": model.get("lr", 1e-3), "weight_decay": model.get("weight_decay", 0.0)}
    return {**options, **(model.get("optimizer_kwargs") or {})}


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

    The same arithmetic as the batch path (``uint8 / 255``, then ``(x - mean) / std``), done
    once for the whole set, as a careful user would.
    """
    indices = dataset.indices[:limit]
    uint8 = to_image_tensor(np.asarray(dataset.images)[indices])
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    return (uint8.float().div_(255) - mean) / std, torch.from_numpy(dataset.labels[indices])


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


def train_plain(recipe: Recipe, train: Tensors, test: Tensors, target: float) -> Run:
    """Train with a hand-written loop until ``target`` test accuracy or ``recipe.max_epochs``."""
    options = plain_sgd_options(recipe.model)
    loss_options = recipe.model.get("loss_kwargs") or {}
    batch_size = recipe.data_kwargs["batch_size"]
    images, labels = train
    run = Run(target)
    start = time.perf_counter()
    torch.manual_seed(recipe.seed)
    model = create_model(recipe.model["backbone"], **recipe.shape)
    optimizer = torch.optim.SGD(model.parameters(), **options)
    steps = recipe.max_epochs * math.ceil(len(labels) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, options["lr"], total_steps=steps)
    for epoch in range(recipe.max_epochs):
        model.train()
        generator = torch.Generator().manual_seed(recipe.seed + epoch)
        for batch in torch.randperm(len(labels), generator=generator).split(batch_size):
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(images[batch]), labels[batch], **loss_options)
            loss.backward()
            optimizer.step()
            schedule.step()
        run.images += len(labels)
        run.epoch_seconds.append(time.perf_counter() - start - run.eval_seconds)
        _evaluate(run, model, test)
        if run.reached:
            break
    run.train_seconds = time.perf_counter() - start - run.eval_seconds
    run.model = model
    return run


def make_trainer(max_epochs: int, callbacks: list[L.Callback]) -> L.Trainer:
    """A one-CPU Trainer without logger, progress bar, checkpoints, summary or validation."""
    return L.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=callbacks,
    )


class _TestEachEpoch(L.Callback):
    """Measure test accuracy after every training epoch; stop once it reaches the target."""

    def __init__(self, run: Run, test: Tensors, start: float) -> None:
        self.run, self.test, self.start = run, test, start

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.run.images += len(batch[1])

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.run.epoch_seconds.append(time.perf_counter() - self.start - self.run.eval_seconds)
        _evaluate(self.run, pl_module, self.test)
        trainer.should_stop = self.run.reached


def train_ours(recipe: Recipe, data: ImageDataModule, test: Tensors, target: float) -> Run:
    """Train ``ImageClassifier`` on the data module under the Trainer until ``target``."""
    run = Run(target)
    start = time.perf_counter()
    torch.manual_seed(recipe.seed)
    model = ImageClassifier(**recipe.model, **recipe.shape)
    trainer = make_trainer(recipe.max_epochs, [_TestEachEpoch(run, test, start)])
    trainer.fit(model, datamodule=data)
    run.train_seconds = time.perf_counter() - start - run.eval_seconds
    run.model = model.backbone
    return run


def _evaluate(run: Run, model: nn.Module, test: Tensors) -> None:
    start = time.perf_counter()
    run.accuracies.append(top1_accuracy(model, test))
    run.eval_seconds += time.perf_counter() - start


def quiet_lightning() -> None:
    """Silence Lightning's start-up lines and the warnings a benchmark expects."""
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # "GPU available: ..."
    warnings.filterwarnings(
        "ignore", ".*(does not have many workers|no `val_dataloader`|LeafSpec|val_dataloader).*"
    )


def summarize(runs: dict[str, list[Run]]) -> dict[str, dict]:
    """Per side, the median over repeats of seconds and epochs to the target, and eval seconds.

    Args:
        runs: ``{side: [Run, ...]}``.

    Returns:
        ``{side: {"seconds", "epochs", "accuracy", "eval_seconds", "images_per_s"}}``;
        ``seconds`` is None when a repeat missed the target; ``accuracy`` is the last
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
            "accuracy": side_runs[-1].accuracies[-1],
            "eval_seconds": statistics.median(run.eval_seconds for run in side_runs),
            "images_per_s": statistics.median(run.images_per_second for run in side_runs),
        }
    return summary


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
    args = parser.parse_args(argv)
    if not 0 <= args.target <= 1:
        parser.error(f"--target must be a test accuracy in [0, 1], got {args.target}")
    return args


def check_plain_data(recipe: Recipe) -> None:
    """Refuse a recipe whose data options the plain loop does not implement, naming it."""
    for key, expected in PLAIN_DATA.items():
        value = recipe.data_kwargs.get(key, expected)
        if value != expected:
            raise ConfigError(
                f"the plain loop implements data {key}={expected!r}, the recipe has {value!r}"
            )


def prepare(recipe: Recipe, args: argparse.Namespace) -> tuple[ImageDataModule, Tensors, Tensors]:
    """The recipe's data module (batch path, maybe cut to ``--train-limit``) and the plain
    side's training and test tensors."""
    check_plain_data(recipe)
    data = recipe.data(args.root)
    data.setup("fit")
    data.setup("test")
    if args.train_limit is not None:
        data.train_set.indices = data.train_set.indices[: args.train_limit]
    if not data.uses_batches:
        raise ConfigError(f"{type(data).__name__} does not use the batch pipeline")
    return (
        data,
        normalised(data, data.train_set, None),
        normalised(data, data.test_set, args.test_limit),
    )


def warm_up(recipe: Recipe, data: ImageDataModule, train: Tensors, test: Tensors) -> None:
    """One epoch of two batches per side, not counted: both must end with the same weights."""
    short = replace(recipe, max_epochs=1)
    indices = data.train_set.indices
    data.train_set.indices = indices[: 2 * data.batch_size]
    plain_train = (train[0][: 2 * data.batch_size], train[1][: 2 * data.batch_size])
    L.seed_everything(recipe.seed, verbose=False)
    plain = train_plain(short, plain_train, test, 2.0)
    ours = train_ours(short, data, test, 2.0)
    data.train_set.indices = indices
    torch.testing.assert_close(plain.model.state_dict(), ours.model.state_dict())


def main() -> None:
    args = parse_args()
    quiet_lightning()
    torch.set_num_threads(args.threads)
    recipe = load_recipe(args.recipe)
    recipe = replace(recipe, max_epochs=args.max_epochs or recipe.max_epochs)
    L.seed_everything(recipe.seed, verbose=False)  # PL_GLOBAL_SEED: the batch path's order
    data, train, test = prepare(recipe, args)
    print(
        f"{args.recipe.name}: {recipe.model['backbone']}, batch {data.batch_size}, "
        f"{len(train[1])} training and {len(test[1])} test images, target "
        f"{args.target:.1%}, at most {recipe.max_epochs} epochs, torch threads {args.threads}"
    )
    warm_up(recipe, data, train, test)

    sides = {
        "plain": lambda: train_plain(recipe, train, test, args.target),
        "lightning_cv": lambda: train_ours(recipe, data, test, args.target),
    }
    runs: dict[str, list[Run]] = {name: [] for name in sides}
    print(f"{'repeat':>6} {'side':>12} {'epoch':>5} {'test acc':>8} {'train s':>8} {'eval s':>7}")
    for repeat in range(args.repeats):
        for name in list(sides)[:: 1 if repeat % 2 == 0 else -1]:
            run = sides[name]()
            runs[name].append(run)
            epochs = zip(run.accuracies, run.epoch_seconds, strict=True)
            for epoch, (acc, seconds) in enumerate(epochs, 1):
                print(f"{repeat:>6} {name:>12} {epoch:>5} {acc:>8.2%} {seconds:>8.1f}")
            print(f"{repeat:>6} {name:>12} {'total':>5} {'':>8} {run.train_seconds:>8.1f} "
                  f"{run.eval_seconds:>7.1f}  {run.images_per_second:,.0f} images/s")  # fmt: skip
    print(json.dumps(report(args, recipe, data, runs)))


def report(
    args: argparse.Namespace, recipe: Recipe, data: ImageDataModule, runs: dict[str, list[Run]]
) -> dict:
    """Print each side's figures; return the JSON result."""
    summary = summarize(runs)
    for name, figures in summary.items():
        seconds = figures["seconds"]
        reached = "missed" if seconds is None else f"{seconds:.1f} s of training"
        print(f"{name:>12}: {args.target:.1%} test accuracy: {reached}, "
              f"{figures['images_per_s']:,.0f} images/s")  # fmt: skip
    ratio = time_ratio(summary["plain"]["seconds"], summary["lightning_cv"]["seconds"])
    throughput = summary["lightning_cv"]["images_per_s"] / summary["plain"]["images_per_s"]
    print("seconds plain / ours: " + ("none (a side missed)" if ratio is None else f"{ratio:.3f}"))
    print(f"images/s ours / plain: {throughput:.3f}")
    result = {
        "benchmark": "time_to_accuracy",
        "recipe": f"recipes/{args.recipe.name}",
        "model": recipe.model["backbone"],
        "batch_size": data.batch_size,
        "pipeline": "batch",
        "train_images": len(data.train_set),
        "test_images": args.test_limit or len(data.test_set),
        "target_accuracy": args.target,
        "max_epochs": recipe.max_epochs,
    }
    for name, figures in summary.items():
        seconds = figures["seconds"]
        result[f"{name}_seconds"] = None if seconds is None else round(seconds, 2)
        result[f"{name}_epochs"] = figures["epochs"]
        result[f"{name}_accuracy"] = round(figures["accuracy"], 4)
        result[f"{name}_eval_seconds"] = round(figures["eval_seconds"], 2)
        result[f"{name}_images_per_s"] = round(figures["images_per_s"])
    result["ratio"] = None if ratio is None else round(ratio, 4)
    result["throughput_ratio"] = round(throughput, 4)
    result |= {"repeats": args.repeats, "torch_threads": args.threads, "device": "cpu"}
    result["omp_wait_policy"] = os.environ["OMP_WAIT_POLICY"]
    return result


if __name__ == "__main__":
    main()
