"""Time to accuracy: LeNet-5 on MNIST to 99.0% test accuracy, the recipe under the Trainer vs a
plain PyTorch loop.

Both sides train what ``recipes/mnist_lenet5.yaml`` states (LeNet-5 with ReLU and max pooling;
SGD, lr 0.1, Nesterov momentum 0.9, weight decay 5e-4; one-cycle schedule stepped every batch
over the recipe's 8 epochs; batch 128; the eval transform for training samples) from the
recipe's seed, on the recipe's ``MNISTDataModule`` (54,000 training images after its 10%
validation hold-out). The data path is shared: both sides read the data module's datasets
through the same ``DataLoader`` settings, shuffled alike (each epoch's order drawn from the
seed and the epoch), so only the training loop differs. A warm-up of two batches checks that
both sides end with the same weights.

- plain: ``torch.optim.SGD`` and ``OneCycleLR`` built by hand; per batch ``zero_grad``,
  ``cross_entropy``, ``backward``, ``step``, schedule ``step``.
- lightning_cv: ``Trainer.fit(ImageClassifier(**recipe model))`` on one CPU device with the
  product's per-step work (loss check, ``train/loss`` and ``train/acc`` logging). Logger,
  progress bar, checkpointing and the validation loop are off: they are I/O or evaluation.

After every epoch both sides measure test accuracy (10,000 images) with the same function; its
time is left out of the training time and reported apart. A side stops at the first epoch that
reaches the target (at most ``--max-epochs``). Repeats alternate the order of the sides.
Torch runs 2 threads (the machine's 2 cores) whose OpenMP waits sleep rather than spin
(``OMP_WAIT_POLICY=PASSIVE`` unless the environment sets a policy): on a shared 2-core machine a
spinning thread takes the core its partner needs, and training ran 5-15x slower, unevenly
between the sides, at load average 9 with the default policy. Result: seconds of training to
the target per side (median over repeats); ``ratio`` = plain / ours, target >= 0.95 (within
5%), and ours <= 20 s. The last line is one JSON object.

    python benchmarks/time_to_accuracy.py [--root ../shared/datasets] [--repeats 1]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read once, when torch loads OpenMP

import argparse
import importlib
import json
import logging
import statistics
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import lightning.pytorch as L
import torch
import torch.nn.functional as F
import yaml
from torch import nn
from torch.utils.data import DataLoader, Sampler

from lightning_cv import ImageClassifier, create_model
from lightning_cv.data import ImageDataModule, SampleDataset
from lightning_cv.errors import ConfigError

__all__ = [
    "EpochShuffle",
    "Recipe",
    "Run",
    "load_recipe",
    "make_trainer",
    "parse_args",
    "plain_sgd_options",
    "quiet_lightning",
    "subset",
    "summarize",
    "time_ratio",
    "top1_accuracy",
]

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RECIPE = REPO / "recipes" / "mnist_lenet5.yaml"
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
}


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
        model: the trained network.
    """

    target: float
    accuracies: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    model: nn.Module | None = None

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


def subset(dataset: SampleDataset, limit: int | None) -> SampleDataset:
    """The first ``limit`` samples of ``dataset`` (all when None), same arrays and transform."""
    if limit is None:
        return dataset
    return SampleDataset(dataset.images, dataset.labels, dataset.transform, dataset.indices[:limit])


class EpochShuffle(Sampler[int]):
    """Shuffle ``size`` indices anew on every pass, the k-th pass's order drawn from ``seed + k``.

    torch's ``RandomSampler`` draws once more from its generator when a pass runs to its end,
    which a ``for`` loop does and Lightning (it stops after ``len(loader)`` batches) does not;
    here each order depends on the pass number only, so both loops see the same batches.

    Example:
        >>> sampler = EpochShuffle(4, seed=0)
        >>> first, second = list(sampler), list(sampler)
        >>> sorted(first) == sorted(second) == [0, 1, 2, 3]
        True
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed, self.passes = size, seed, 0

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.passes)
        self.passes += 1
        return iter(torch.randperm(self.size, generator=generator).tolist())


def train_loader(data: ImageDataModule, dataset: SampleDataset, seed: int) -> DataLoader:
    """The data module's training-loader settings, shuffled by :class:`EpochShuffle`."""
    return DataLoader(
        dataset,
        batch_size=data.batch_size,
        sampler=EpochShuffle(len(dataset), seed),
        drop_last=data.drop_last,
        num_workers=data.num_workers,
        persistent_workers=data.num_workers > 0,
    )


@torch.inference_mode()
def top1_accuracy(model: nn.Module, loader: DataLoader) -> float:
    """Top-1 accuracy of ``model`` over ``loader``, in eval mode; the training flag is restored.

    Example:
        >>> top1_accuracy(model, data.test_dataloader())  # doctest: +SKIP
        0.9912
    """
    was_training = model.training
    model.eval()
    correct = total = 0
    for images, labels in loader:
        correct += int((model(images).argmax(dim=1) == labels).sum())
        total += len(labels)
    model.train(was_training)
    return correct / total


def train_plain(recipe: Recipe, loader: DataLoader, test: DataLoader, target: float) -> Run:
    """Train with a hand-written loop until ``target`` test accuracy or ``recipe.max_epochs``."""
    options = plain_sgd_options(recipe.model)
    run = Run(target)
    start = time.perf_counter()
    torch.manual_seed(recipe.seed)
    model = create_model(recipe.model["backbone"], **recipe.shape)
    optimizer = torch.optim.SGD(model.parameters(), **options)
    steps = recipe.max_epochs * len(loader)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, options["lr"], total_steps=steps)
    for _ in range(recipe.max_epochs):
        model.train()
        for images, labels in loader:
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
            schedule.step()
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

    def __init__(self, run: Run, test: DataLoader, start: float) -> None:
        self.run, self.test, self.start = run, test, start

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.run.epoch_seconds.append(time.perf_counter() - self.start - self.run.eval_seconds)
        _evaluate(self.run, pl_module, self.test)
        trainer.should_stop = self.run.reached


def train_ours(recipe: Recipe, loader: DataLoader, test: DataLoader, target: float) -> Run:
    """Train ``ImageClassifier`` under the Trainer until ``target`` or ``recipe.max_epochs``."""
    run = Run(target)
    start = time.perf_counter()
    torch.manual_seed(recipe.seed)
    model = ImageClassifier(**recipe.model, **recipe.shape)
    trainer = make_trainer(recipe.max_epochs, [_TestEachEpoch(run, test, start)])
    trainer.fit(model, train_dataloaders=loader)
    run.train_seconds = time.perf_counter() - start - run.eval_seconds
    run.model = model.backbone
    return run


def _evaluate(run: Run, model: nn.Module, test: DataLoader) -> None:
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
        ``{side: {"seconds", "epochs", "accuracy", "eval_seconds"}}``; ``seconds`` is None when
        a repeat missed the target; ``accuracy`` is the last repeat's final test accuracy.

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
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--train-limit", type=int, help="train on the first N images only")
    parser.add_argument("--test-limit", type=int, help="test on the first N images only")
    args = parser.parse_args(argv)
    if not 0 <= args.target <= 1:
        parser.error(f"--target must be a test accuracy in [0, 1], got {args.target}")
    return args


def main() -> None:
    args = parse_args()
    quiet_lightning()
    torch.set_num_threads(args.threads)
    recipe = load_recipe(args.recipe)
    recipe = replace(recipe, max_epochs=args.max_epochs or recipe.max_epochs)
    data = recipe.data(args.root)
    data.setup("fit")
    data.setup("test")
    train_set = subset(data.train_set, args.train_limit)
    test = DataLoader(subset(data.test_set, args.test_limit), batch_size=data.batch_size)
    print(
        f"{args.recipe.name}: {recipe.model['backbone']}, batch {data.batch_size}, "
        f"{len(train_set)} training and {len(test.dataset)} test images, target "
        f"{args.target:.1%}, at most {recipe.max_epochs} epochs, torch threads {args.threads}"
    )

    # warm-up, not counted: one epoch of two batches per side must give the same weights
    warm_train = subset(train_set, 2 * data.batch_size)
    warm_test = DataLoader(subset(test.dataset, data.batch_size), batch_size=data.batch_size)
    plain, ours = (
        side(replace(recipe, max_epochs=1), train_loader(data, warm_train, recipe.seed),
             warm_test, 2.0)
        for side in (train_plain, train_ours)
    )  # fmt: skip
    torch.testing.assert_close(plain.model.state_dict(), ours.model.state_dict())

    sides = {"plain": train_plain, "lightning_cv": train_ours}
    runs: dict[str, list[Run]] = {name: [] for name in sides}
    print(f"{'repeat':>6} {'side':>12} {'epoch':>5} {'test acc':>8} {'train s':>8} {'eval s':>7}")
    for repeat in range(args.repeats):
        for name in list(sides)[:: 1 if repeat % 2 == 0 else -1]:
            loader = train_loader(data, train_set, recipe.seed)
            run = sides[name](recipe, loader, test, args.target)
            runs[name].append(run)
            epochs = zip(run.accuracies, run.epoch_seconds, strict=True)
            for epoch, (acc, seconds) in enumerate(epochs, 1):
                print(f"{repeat:>6} {name:>12} {epoch:>5} {acc:>8.2%} {seconds:>8.1f}")
            print(f"{repeat:>6} {name:>12} {'total':>5} {'':>8} {run.train_seconds:>8.1f} "
                  f"{run.eval_seconds:>7.1f}")  # fmt: skip

    summary = summarize(runs)
    for name, figures in summary.items():
        seconds = figures["seconds"]
        reached = "missed" if seconds is None else f"{seconds:.1f} s of training"
        print(f"{name:>12}: {args.target:.1%} test accuracy: {reached}")
    ratio = time_ratio(summary["plain"]["seconds"], summary["lightning_cv"]["seconds"])
    print("ratio plain / ours: " + ("none (a side missed)" if ratio is None else f"{ratio:.3f}"))
    result = {
        "benchmark": "time_to_accuracy",
        "recipe": f"recipes/{args.recipe.name}",
        "model": recipe.model["backbone"],
        "batch_size": data.batch_size,
        "train_images": len(train_set),
        "test_images": len(test.dataset),
        "target_accuracy": args.target,
        "max_epochs": recipe.max_epochs,
    }
    for name, figures in summary.items():
        seconds = figures["seconds"]
        result[f"{name}_seconds"] = None if seconds is None else round(seconds, 2)
        result[f"{name}_epochs"] = figures["epochs"]
        result[f"{name}_accuracy"] = round(figures["accuracy"], 4)
        result[f"{name}_eval_seconds"] = round(figures["eval_seconds"], 2)
    result["ratio"] = None if ratio is None else round(ratio, 4)
    result |= {"repeats": args.repeats, "torch_threads": args.threads, "device": "cpu"}
    result["omp_wait_policy"] = os.environ["OMP_WAIT_POLICY"]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
