"""Fine-tuned vs head-only vs from scratch: recipes/finetune_folder.yaml on a small image folder.

The folder is made from the CIFAR-10 JPEG export (``CIFAR-10-images/``): three classes, the
first ``--train`` training images of each and all their test images, under ``--folder``. The
three runs are ``lightning-cv fit --config finetune_folder`` as documented (its validation
split, its best checkpoint, tested when training ends) and differ in one option each:

* ``finetuned``: ``alexnet.cifar10``'s weights, a new head, every layer trained;
* ``head_only``: the same with ``--model.freeze_backbone true``;
* ``scratch``: ``--model.weights null`` and the same architecture, freshly initialised.

The last line is ``{"benchmark": "finetune", "finetuned": top-1 %, "head_only": ..., ...}``.
Example (a few minutes on 2 CPU cores): ``nice python benchmarks/finetune.py``.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from _harness import DEFAULT_ROOT, REPO, print_result, quiet_lightning, use_threads

from lightning_cv.cli import LightningCVCLI

RECIPE = REPO / "recipes" / "finetune_folder.yaml"
CLASSES = ("airplane", "cat", "ship")
SCRATCH = ["--model.weights", "null", "--model.backbone", "alexnet", "--model.backbone_kwargs",
           "{variant: small, dropout: 0.5, hidden_size: 1024}"]  # fmt: skip
RUNS = {"finetuned": [], "head_only": ["--model.freeze_backbone", "true"], "scratch": SCRATCH}


def make_folder(source: Path, folder: Path, train: int) -> Path:
    """``folder/{train,test}/<class>/``: the first ``train`` training images, every test one."""
    for split, count in (("train", train), ("test", None)):
        for name in CLASSES:
            files = sorted((source / split / name).glob("*.jpg"))[:count]
            target = folder / split / name
            target.mkdir(parents=True, exist_ok=True)
            for path in files:
                shutil.copyfile(path, target / path.name)
    return folder


def top1(folder: Path, epochs: int, options: list[str], runs: Path) -> float:
    """Test top-1 (percent) of the checkpoint ``lightning-cv fit --config finetune_folder``
    keeps and tests (``test_after_fit``: the best validation accuracy, ties to the lower
    loss), after ``epochs`` epochs with ``options``: the figure a user gets."""
    args = ["fit", "--config", str(RECIPE), "--data.root", str(folder),
            "--trainer.max_epochs", str(epochs), "--trainer.logger.save_dir", str(runs),
            "--trainer.enable_progress_bar", "false", *options]  # fmt: skip
    metrics = LightningCVCLI(args, quiet=True).trainer.callback_metrics
    return round(100 * float(metrics["test/acc"]), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_ROOT / "CIFAR-10-images")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/lightning_cv_finetune"))
    parser.add_argument("--train", type=int, default=100, help="training images per class")
    parser.add_argument("--epochs", type=int, default=15, help="the recipe's 15 by default")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    quiet_lightning()
    use_threads(args.threads)
    shutil.rmtree(args.folder, ignore_errors=True)
    folder = make_folder(args.source, args.folder, args.train)
    figures, start = {}, time.perf_counter()
    for name, options in RUNS.items():
        figures[name] = top1(folder, args.epochs, options, args.folder / "runs" / name)
    figures["seconds"] = round(time.perf_counter() - start, 1)
    print_result("finetune", {"classes": list(CLASSES), "train_per_class": args.train,
                              "epochs": args.epochs, **figures})  # fmt: skip


if __name__ == "__main__":
    main()
