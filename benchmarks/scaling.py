"""Scaling: training images/s and time per epoch as the MNIST training set doubles, 1/8 to all.

The recipe ``recipes/mnist_lenet5_fast.yaml`` (LeNet-5, SGD Nesterov, one-cycle per step,
batch 128, eval transform, the batch pipeline), built as ``lightning-cv`` builds it with
``--data.val_fraction 0``, trains a copy of its model under the Trainer for ``--epochs``
epochs on random subsets of all 60,000 MNIST training images: 7,500, 15,000, 30,000 and
60,000 images, each subset the first N of one seeded permutation. The epoch is timed from
Lightning's ``on_train_epoch_start`` to ``on_train_epoch_end`` (the Trainer's start-up, a
fixed cost, is timed apart as ``fit`` seconds). Repeats rotate which size goes first so drift
hits all of them; the median is kept. One torch thread by default: the cost per image, not
how the shared machine's two cores are split.

The cost must grow linearly with the data: images/s stays flat and the log-log slope of epoch
seconds against images is 1. ``ratio`` = images/s on all the data / images/s on the smallest
subset; target >= 0.9 (a cost per image at most 11% higher on 8x the data). The last line is
one JSON object.

    python benchmarks/scaling.py [--root ../shared/datasets] [--doublings 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import lightning.pytorch as L
import numpy as np
from _harness import (
    DEFAULT_ROOT,
    from_recipe,
    interleaved,
    print_result,
    quiet_lightning,
    quiet_trainer,
    use_threads,
)
from time_to_accuracy import DEFAULT_RECIPE

from lightning_cv import ImageClassifier
from lightning_cv.data import ImageDataModule

__all__ = [
    "LINEAR_RATIO",
    "loglog_slope",
    "parse_args",
    "subset_sizes",
]

LINEAR_RATIO = 0.9
"""The least images/s on all the data / images/s on the smallest subset that counts as linear."""


def subset_sizes(total: int, doublings: int) -> list[int]:
    """Training-set sizes from ``total / 2**doublings`` up to ``total``, each twice the last.

    Example:
        >>> subset_sizes(60000, 3)
        [7500, 15000, 30000, 60000]
    """
    return [total // 2**step for step in range(doublings, -1, -1)]


def loglog_slope(sizes: list[int], seconds: list[float]) -> float:
    """Least-squares slope of log(seconds) against log(size): 1 when the cost grows linearly.

    Example:
        >>> round(loglog_slope([1, 2, 4], [3.0, 6.0, 12.0]), 6)
        1.0
    """
    x, y = np.log(sizes), np.log(seconds)
    return float(np.polyfit(x, y, 1)[0])


class _EpochTimer(L.Callback):
    """Seconds of each training epoch, from its start hook to its end hook."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seconds.append(time.perf_counter() - self.start)


def train_epochs(
    model: ImageClassifier, data: ImageDataModule, indices: np.ndarray, epochs: int
) -> tuple[float, float]:
    """Seconds of the last training epoch of a copy of ``model`` on the samples ``indices``,
    and of the whole ``fit``."""
    data.train_set.indices = indices
    timer = _EpochTimer()
    start = time.perf_counter()
    quiet_trainer(epochs, [timer]).fit(copy.deepcopy(model), datamodule=data)
    return timer.seconds[-1], time.perf_counter() - start


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command-line options (``sys.argv`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="holds MNIST/raw")
    parser.add_argument("--recipe", type=Path, default=DEFAULT_RECIPE)
    parser.add_argument("--doublings", type=int, default=3, help="3: 1/8, 1/4, 1/2, all")
    parser.add_argument("--limit", type=int, help="use N training images as 'all'")
    parser.add_argument("--epochs", type=int, default=1, help="per fit; the last is timed")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    return parser.parse_args(argv)


def measure(args: argparse.Namespace) -> tuple[list[dict], str, int]:
    """Per subset size its median epoch seconds, images/s and fit seconds; the model's name
    and the batch size."""
    cli = from_recipe(args.recipe, args.root, "--data.val_fraction", "0")
    model, data = cli.model, cli.datamodule
    data.setup("fit")
    seed = cli.config["seed_everything"]
    order = np.random.default_rng(seed).permutation(data.train_set.indices)[: args.limit]
    sizes = subset_sizes(len(order), args.doublings)
    print(
        f"{args.recipe.name}: {model.hparams.backbone}, batch {data.batch_size}, "
        f"{args.epochs} epoch(s) per fit, torch threads {args.threads}, sizes {sizes}"
    )
    train_epochs(model, data, order[: data.batch_size], 1)  # warm-up, not counted
    epoch_seconds = {n: [] for n in sizes}
    fit_seconds = {n: [] for n in sizes}
    for repeat, n in interleaved(sizes, args.repeats):
        epoch, fit = train_epochs(model, data, order[:n], args.epochs)
        epoch_seconds[n].append(epoch)
        fit_seconds[n].append(fit)
        print(f"repeat {repeat}: {n:>6} images, epoch {epoch:6.2f} s, fit {fit:6.2f} s")
    rows = []
    print(f"{'images':>7} {'epoch s':>8} {'images/s':>9} {'fit s':>7}")
    for n in sizes:
        seconds = statistics.median(epoch_seconds[n])
        row = {"images": n, "epoch_seconds": round(seconds, 3)}
        row |= {"images_per_s": round(n / seconds, 1)}
        row |= {"fit_seconds": round(statistics.median(fit_seconds[n]), 3)}
        rows.append(row)
        print(f"{n:>7} {seconds:>8.2f} {row['images_per_s']:>9.0f} {row['fit_seconds']:>7.2f}")
    return rows, model.hparams.backbone, data.batch_size


def main() -> None:
    args = parse_args()
    quiet_lightning()
    use_threads(args.threads)
    rows, backbone, batch_size = measure(args)
    sizes = [row["images"] for row in rows]
    slope = loglog_slope(sizes, [row["epoch_seconds"] for row in rows])
    ratio = rows[-1]["images_per_s"] / rows[0]["images_per_s"]
    growth = rows[-1]["epoch_seconds"] / rows[0]["epoch_seconds"]
    verdict = "linearly" if ratio >= LINEAR_RATIO else "faster than linearly"
    print(
        f"{sizes[-1] // sizes[0]}x the images: epoch time x{growth:.2f}, log-log slope "
        f"{slope:.3f} (1 is linear), images/s all / smallest {ratio:.3f}: the cost grows {verdict}"
    )
    figures = {
        "recipe": f"recipes/{args.recipe.name}",
        "model": backbone,
        "batch_size": batch_size,
        "rows": rows,
        "epoch_time_growth": round(growth, 3),
        "loglog_slope": round(slope, 4),
        "ratio": round(ratio, 4),
        "linear": ratio >= LINEAR_RATIO,
        "epochs": args.epochs,
        "repeats": args.repeats,
        "torch_threads": args.threads,
        "device": "cpu",
    }
    print_result("scaling", figures)


if __name__ == "__main__":
    main()
