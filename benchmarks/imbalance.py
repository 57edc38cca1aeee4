"""Class imbalance: macro F1 on MNIST's test split after training on an imbalanced subset.

The training split keeps a seeded ``--keep`` share (10%) of each of the digits ``--rare``
(0-4) and every image of the others; the test split is untouched (1,000 images a digit or
so). Three sides train the same recipe (default ``recipes/mnist_lenet5_fast.yaml``: LeNet-5,
SGD Nesterov, one-cycle, label smoothing 0.1, batch 128, 2 epochs) from its seed, built as
``lightning-cv fit --config RECIPE`` builds them (``LightningCVCLI(args=[...], run=False)``),
and differ in one option:

- uniform: the recipe as written (every training image once per epoch).
- balanced: ``--data.sampler balanced`` (drawn with replacement by inverse class frequency).
- weighted_loss: ``--model.loss_kwargs`` with ``class_weights`` ``N / (C * n_c)`` of the
  training view's counts (scikit-learn's ``balanced``), label smoothing kept.

Each side fits under the quiet Trainer (no validation loop: the recipe's 10% validation share
is held out all the same) and is tested on all 10,000 test images. Result per side: macro F1
(``test/f1``), accuracy, and the mean recall of the cut digits and of the others, from the
test confusion matrix; ``ratio`` = balanced / uniform macro F1. One run per side, from the
recipe's seed or ``--seed``; torch runs one thread. The last line is one JSON object.

    nice python benchmarks/imbalance.py [--root $LIGHTNING_CV_DATA] [--keep 0.1] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from _harness import (
    DEFAULT_ROOT,
    REPO,
    from_recipe,
    print_result,
    quiet_lightning,
    quiet_trainer,
    use_threads,
)

from lightning_cv.data import DATA_ENV, ImageDataModule, class_counts

__all__ = [
    "SIDES",
    "Imbalanced",
    "balanced_loss_weights",
    "imbalanced",
    "imbalanced_indices",
    "parse_args",
]

SIDES = ("uniform", "balanced", "weighted_loss")


def imbalanced_indices(
    labels: np.ndarray, *, rare: Sequence[int], keep: float, seed: int = 0
) -> np.ndarray:
    """Sorted indices of every sample outside ``rare`` and a seeded ``keep`` share of each
    class in ``rare`` (at least one sample).

    Example:
        >>> imbalanced_indices(np.array([0, 0, 0, 0, 1, 1]), rare=[0], keep=0.5).tolist()
        [0, 3, 4, 5]
    """
    rng = np.random.default_rng(seed)
    kept = [np.flatnonzero(~np.isin(labels, rare))]
    for digit in rare:
        members = np.flatnonzero(labels == digit)
        count = min(len(members), max(1, round(keep * len(members))))
        kept.append(rng.choice(members, size=count, replace=False))
    return np.sort(np.concatenate(kept))


class Imbalanced:
    """Put before an in-memory data module class: its training split keeps a ``keep`` share
    of each class in ``rare`` (:func:`imbalanced_indices`); the other splits are untouched."""

    keep: float = 1.0
    rare: Sequence[int] = ()

    def read_split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        images, labels = super().read_split(split)
        if split != "train":
            return images, labels
        chosen = imbalanced_indices(labels, rare=self.rare, keep=self.keep)
        return images[chosen], labels[chosen]


def imbalanced(data: ImageDataModule, *, keep: float, rare: Sequence[int]) -> ImageDataModule:
    """The recipe's data module (options and all) with its training split cut by
    :class:`Imbalanced`."""
    kind = type(data)
    subset = type(f"Imbalanced{kind.__name__}", (Imbalanced, kind), {})(**data.hparams)
    subset.keep, subset.rare = keep, list(rare)
    return subset


def balanced_loss_weights(labels: np.ndarray, num_classes: int) -> list[float]:
    """``N / (C * n_c)`` per class: scikit-learn's ``class_weight="balanced"``.

    Example:
        >>> balanced_loss_weights(np.array([0, 0, 0, 1]), 2)
        [0.6667, 2.0]
    """
    counts = class_counts(labels, num_classes)
    return [round(len(labels) / (num_classes * count), 4) for count in counts.tolist()]


def side_options(side: str, loss_kwargs: dict) -> list[str]:
    """The command-line options a side adds to the recipe (``loss_kwargs``: the weighted
    loss's, the recipe's own plus ``class_weights``)."""
    if side == "balanced":
        return ["--data.sampler", "balanced"]
    if side == "weighted_loss":
        return ["--model.loss_kwargs", json.dumps(loss_kwargs)]
    return []


def train_and_test(args: argparse.Namespace, options: list[str]) -> dict:
    """Fit one side's model on the subset from the recipe's seed and test it: its figures."""
    cli = from_recipe(args.recipe, args.root, *args.options, *options)
    data = imbalanced(cli.datamodule, keep=args.keep, rare=args.rare)
    epochs = args.epochs or cli.trainer.max_epochs
    trainer = quiet_trainer(epochs)
    start = time.perf_counter()
    trainer.fit(cli.model, datamodule=data)
    seconds = time.perf_counter() - start
    (metrics,) = trainer.test(cli.model, datamodule=data, verbose=False)
    confusion = cli.model.test_confusion.compute().double()
    recall = (confusion.diag() / confusion.sum(1).clamp(min=1)).tolist()
    common = [digit for digit in range(data.num_classes) if digit not in args.rare]
    figures = {
        "f1": round(metrics["test/f1"], 4),
        "acc": round(metrics["test/acc"], 4),
        "recall_rare": round(float(np.mean([recall[d] for d in args.rare])), 4),
        "recall_common": round(float(np.mean([recall[d] for d in common])), 4),
        "epochs": epochs,
        "fit_seconds": round(seconds, 1),
        "sampler": data.sampler,
        "loss_class_weights": cli.model.hparams["loss_kwargs"].get("class_weights"),
    }
    return figures


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_root = Path(os.environ.get(DATA_ENV) or DEFAULT_ROOT)
    parser.add_argument("--root", type=Path, default=default_root, help="holds MNIST/raw")
    parser.add_argument("--recipe", type=Path, default=REPO / "recipes" / "mnist_lenet5_fast.yaml")
    parser.add_argument("--keep", type=float, default=0.1, help="share kept of each rare digit")
    parser.add_argument("--rare", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--seed", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES))
    args = parser.parse_args(argv)
    args.options = [] if args.seed is None else ["--seed_everything", str(args.seed)]
    if not 0 < args.keep <= 1:
        parser.error(f"--keep must be in (0, 1], got {args.keep}")
    return args


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    quiet_lightning()
    use_threads(args.threads)
    recipe = from_recipe(
        args.recipe, args.root, *args.options
    )  # the uniform side's model and data, unfitted
    probe = imbalanced(recipe.datamodule, keep=args.keep, rare=args.rare)
    probe.setup("fit")  # the training view's counts, for the weighted loss
    train = probe.train_set.labels[probe.train_set.indices]
    loss_weights = balanced_loss_weights(train, probe.num_classes)
    loss_kwargs = {**recipe.model.hparams["loss_kwargs"], "class_weights": loss_weights}
    sides = {}
    for side in args.sides:
        sides[side] = train_and_test(args, side_options(side, loss_kwargs))
        print(f"{side:>14}: " + ", ".join(f"{k} {v}" for k, v in sides[side].items()))
    uniform, balanced = sides.get("uniform"), sides.get("balanced")
    ratio = round(balanced["f1"] / uniform["f1"], 4) if uniform and balanced else None
    return print_result(
        "imbalance",
        {
            "ratio": ratio,
            "train_counts": class_counts(train, probe.num_classes).tolist(),
            "loss_weights": loss_weights,
            "recipe": args.recipe.name,
            "seed": recipe.config["seed_everything"],
            "sides": sides,
        },
    )


if __name__ == "__main__":
    main()
