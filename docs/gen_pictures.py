"""Make the documentation's pictures in docs/assets/ from real runs (about 3 minutes on 2 CPUs).

Usage, from the repository root::

    python docs/gen_pictures.py [--datasets ../shared/datasets]

* ``preview-digits.png``, ``preview-mnist.png``, ``preview-cifar.png``: training samples after
  the ``digits`` and ``cifar`` augmentation presets, drawn as ``lightning-cv preview`` draws them
  (MNIST and CIFAR-10 only when their offline copies are in ``--datasets``);
* ``flips.png``: why the ``digits`` preset never flips;
* the callbacks' pictures of two recipes run in full on the embedded digits:
  ``recipes/digits_linear.yaml`` (confusion matrix, class report, misclassified grid, linear
  templates, training curves) and ``recipes/digits_lenet5.yaml`` (its step learning-rate decay
  and training curves).

Every PNG is re-saved with a 256-colour palette, which keeps the whole folder small.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from lightning_cv.cli import main
from lightning_cv.cli.preview import plot_samples
from lightning_cv.data import DigitsDataModule, ImageFolderDataModule, MNISTDataModule

__all__ = ["compress", "draw_flips", "draw_previews", "draw_run_pictures"]

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
ASSETS = DOCS / "assets"
CIFAR_PER_CLASS = 10  # photos per class copied for the CIFAR preview (test share: 2 per class)
RUN_PICTURES = {
    "digits_linear": {
        "confusion_matrix.png": "confusion-matrix.png",
        "class_report.png": "class-report.png",
        "misclassified.png": "misclassified.png",
        "templates.png": "linear-templates.png",
        "training_curves.png": "training-curves-linear.png",
    },
    "digits_lenet5": {
        "learning_rate.png": "learning-rate.png",
        "training_curves.png": "training-curves-lenet5.png",
    },
}


def draw_previews(datasets: Path, work: Path) -> list[Path]:
    """Preview grids of the ``digits`` preset (digits, MNIST) and the ``cifar`` preset."""
    written = [ASSETS / "preview-digits.png"]
    plot_samples(DigitsDataModule(image_size=28), written[0], num_images=16)
    if (datasets / "MNIST").is_dir():
        written.append(ASSETS / "preview-mnist.png")
        plot_samples(MNISTDataModule(root=datasets), written[-1], num_images=16)
    cifar = datasets / "CIFAR-10-images" / "train"
    if cifar.is_dir():
        folder = work / "cifar-sample"
        for class_folder in sorted(cifar.iterdir()):
            (folder / class_folder.name).mkdir(parents=True)
            for photo in sorted(class_folder.iterdir())[:CIFAR_PER_CLASS]:
                shutil.copy(photo, folder / class_folder.name / photo.name)
        data = ImageFolderDataModule(
            folder,
            image_size=32,
            mean=(0.4914, 0.4822, 0.4465),
            std=(0.2470, 0.2435, 0.2616),
            val_fraction=0,
            train_transform="cifar",
        )
        written.append(ASSETS / "preview-cifar.png")
        plot_samples(data, written[-1], num_images=16)
    return written


def draw_flips(datasets: Path, path: Path) -> Path:
    """Five test digits as written, mirrored left-right and turned upside down.

    MNIST digits when the offline copy is in ``datasets``, else the embedded digits at 28x28.
    """
    if (datasets / "MNIST").is_dir():
        images, labels = MNISTDataModule(root=datasets).load_split("test")
    else:
        images, labels = DigitsDataModule(image_size=28).load_split("test")
    picks = [int(np.flatnonzero(labels == digit)[0]) for digit in (2, 3, 4, 6, 9)]
    rows = (
        ("as written", lambda image: image),
        ("mirrored", np.fliplr),
        ("rotated 180°", lambda image: np.rot90(image, 2)),
    )
    figure = Figure(figsize=(6.4, 4.2), layout="constrained")
    axes = figure.subplots(len(rows), len(picks))
    for row, (title, flip) in enumerate(rows):
        for col, index in enumerate(picks):
            ax = axes[row, col]
            ax.imshow(flip(images[index, ..., 0]), cmap="gray_r")
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(title, fontsize=9)
            if row == 0:
                ax.set_title(f"label {labels[index]}", fontsize=9)
    figure.suptitle("A mirrored 2 looks like a 5, a turned 6 like a 9: flips change the label")
    figure.savefig(path, dpi=100)
    return path


def draw_run_pictures(work: Path) -> list[Path]:
    """Run each recipe of :data:`RUN_PICTURES` in full and copy the pictures it wrote."""
    written = []
    for recipe, pictures in RUN_PICTURES.items():
        main(
            [
                "fit",
                "--config", str(REPO / "recipes" / f"{recipe}.yaml"),
                "--trainer.logger.init_args.save_dir", str(work / "runs"),
                "--trainer.enable_progress_bar", "false",
            ]
        )  # fmt: skip
        run = work / "runs" / recipe / "version_0"
        for name, target in pictures.items():
            shutil.copy(run / name, ASSETS / target)
            written.append(ASSETS / target)
    return written


def compress(path: Path) -> None:
    """Re-save a PNG with a 256-colour palette (a third of the size, no visible change)."""
    with Image.open(path) as image:
        palette = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    palette.save(path, optimize=True)


def main_cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=REPO.parent / "shared" / "datasets")
    options = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")
    ASSETS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        os.environ["LIGHTNING_CV_HOME"] = str(work / "cache")
        written = draw_previews(options.datasets.resolve(), work)
        written.append(draw_flips(options.datasets.resolve(), ASSETS / "flips.png"))
        written += draw_run_pictures(work)
    for path in written:
        compress(path)
        print(f"{path.relative_to(REPO)}: {path.stat().st_size / 1000:.0f} kB")


if __name__ == "__main__":
    main_cli()
