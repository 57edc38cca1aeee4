"""Confusion matrix of the test set as a PNG picture and a CSV table in the run folder."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as L
import numpy as np
from matplotlib.figure import Figure

from lightning_cv.callbacks._run_folder import run_folder
from lightning_cv.callbacks._wandb import log_image

__all__ = ["ConfusionMatrixPlot", "plot_confusion_matrix"]


def plot_confusion_matrix(matrix: np.ndarray, class_names: list[str], path: Path) -> None:
    """Draw counts (left) and row-normalized recall (right) with class names on both axes."""
    rows = matrix.sum(axis=1, keepdims=True)
    normalized = np.divide(matrix, rows, out=np.zeros_like(matrix, dtype=float), where=rows > 0)
    size = max(6.0, 0.45 * len(class_names) + 3)
    figure = Figure(figsize=(2 * size, size), layout="constrained")
    axes = figure.subplots(1, 2)
    for ax, values, title, fmt in (
        (axes[0], matrix, "counts", "d"),
        (axes[1], normalized, "row-normalized (recall)", ".2f"),
    ):
        image = ax.imshow(values, cmap="Blues")
        figure.colorbar(image, ax=ax, fraction=0.046)
        ticks = np.arange(len(class_names))
        ax.set(xticks=ticks, yticks=ticks, xlabel="predicted", ylabel="true", title=title)
        ax.set_xticklabels(class_names, rotation=45, ha="right")
        ax.set_yticklabels(class_names)
        if len(class_names) <= 20:
            threshold = values.max() / 2
            for (row, col), value in np.ndenumerate(values):
                if matrix[row, col] == 0:
                    continue  # blank cells let the mistakes stand out
                color = "white" if value > threshold else "black"
                ax.text(col, row, format(value, fmt), ha="center", va="center", color=color)
    figure.savefig(path, dpi=100)


class ConfusionMatrixPlot(L.Callback):
    """After testing, write ``confusion_matrix.png`` and ``confusion_matrix.csv`` to the run folder.

    Reads the module's ``test_confusion`` metric (a torchmetrics ``MulticlassConfusionMatrix``),
    so the counts are already summed over all DDP ranks; rank 0 writes the files.
    """

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        confusion = getattr(pl_module, "test_confusion", None)
        if confusion is None or not confusion.update_called:
            return
        matrix = confusion.compute().cpu().numpy().astype(np.int64)
        if not trainer.is_global_zero:
            return
        names = getattr(pl_module, "class_names", None) or [str(i) for i in range(len(matrix))]
        if trainer.fast_dev_run:
            return  # fast_dev_run writes no run folder
        folder = run_folder(trainer)
        folder.mkdir(parents=True, exist_ok=True)
        header = "true\\predicted," + ",".join(names)
        rows = [
            f"{name}," + ",".join(map(str, row)) for name, row in zip(names, matrix, strict=True)
        ]
        (folder / "confusion_matrix.csv").write_text("\n".join([header, *rows]) + "\n")
        plot_confusion_matrix(matrix, names, folder / "confusion_matrix.png")
        log_image(trainer, "plots/confusion_matrix", folder / "confusion_matrix.png")
