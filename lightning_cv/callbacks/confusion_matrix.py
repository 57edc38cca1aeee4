"""Confusion matrix of the test set as a PNG picture and a CSV table in the run folder."""

from __future__ import annotations

import math
from pathlib import Path

import lightning.pytorch as L
import numpy as np
from matplotlib import colormaps
from matplotlib.colors import ListedColormap, LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from lightning_cv._io import save_figure, write_csv
from lightning_cv.callbacks._wandb import log_image
from lightning_cv.runs import output_folder

__all__ = ["ConfusionMatrixPlot", "fraction_decimals", "log_colour_limits", "plot_confusion_matrix"]

# Blues without its near-white end: a cell of one mistake stays visible beside a blank one
CMAP = ListedColormap(colormaps["Blues"](np.linspace(0.12, 1, 256)))


def fraction_decimals(fractions: np.ndarray) -> int:
    """Decimals that print every nonzero fraction as nonzero, at least 2.

    One mistake in 1,000 samples reads 0.001, not 0.00.

    Example:
        >>> fraction_decimals(np.array([0.0, 0.03, 0.97])), fraction_decimals(np.array([1 / 1135]))
        (2, 4)
    """
    nonzero = fractions[fractions > 0]
    return max(2, math.ceil(-math.log10(nonzero.min()))) if nonzero.size else 2


def log_colour_limits(values: np.ndarray) -> tuple[float, float]:
    """The limits of a logarithmic colour scale: the smallest nonzero value to the largest.

    On a log scale one mistake in 1,000 is as visible as 100 are; zeros stay blank. A scale
    of one value spans a decade below it.

    Example:
        >>> log_colour_limits(np.array([[1000, 0], [2, 998]]))
        (2.0, 1000.0)
    """
    nonzero = values[values > 0]
    if not nonzero.size:
        return 0.1, 1.0
    low, high = float(nonzero.min()), float(nonzero.max())
    return min(low, high / 10), high


def plot_confusion_matrix(matrix: np.ndarray, class_names: list[str], path: Path) -> None:
    """Draw counts (left) and row-normalized recall (right) with class names on both axes.

    Both panels colour on a logarithmic scale (:func:`log_colour_limits`) and the recall has
    :func:`fraction_decimals` decimals, so a few mistakes in thousands of samples show at 99.5%
    accuracy; cells without a sample stay blank.
    """
    rows = matrix.sum(axis=1, keepdims=True)
    normalized = np.divide(matrix, rows, out=np.zeros_like(matrix, dtype=float), where=rows > 0)
    size = max(6.0, 0.45 * len(class_names) + 3)
    figure = Figure(figsize=(2 * size, size), layout="constrained")
    axes = figure.subplots(1, 2)
    for ax, values, title, fmt in (
        (axes[0], matrix, "counts", "d"),
        (axes[1], normalized, "row-normalized (recall)", f".{fraction_decimals(normalized)}f"),
    ):
        norm = LogNorm(*log_colour_limits(values))
        image = ax.imshow(np.ma.masked_equal(values, 0), cmap=CMAP, norm=norm)
        bar = figure.colorbar(image, ax=ax, fraction=0.046, label="log scale")
        bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ticks = np.arange(len(class_names))
        ax.set(xticks=ticks, yticks=ticks, xlabel="predicted", ylabel="true", title=title)
        ax.set_xticklabels(class_names, rotation=45, ha="right")
        ax.set_yticklabels(class_names)
        if len(class_names) <= 20:
            for (row, col), value in np.ndenumerate(values):
                if matrix[row, col] == 0:
                    continue  # blank cells let the mistakes stand out
                color = "white" if norm(value) > 0.6 else "black"
                ax.text(col, row, format(value, fmt), ha="center", va="center", color=color)
    save_figure(figure, path)


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
        folder = output_folder(trainer)  # None: a fast_dev_run, or not rank 0
        if folder is None:
            return
        names = getattr(pl_module, "class_names", None) or [str(i) for i in range(len(matrix))]
        rows = [[name, *row.tolist()] for name, row in zip(names, matrix, strict=True)]
        write_csv(folder / "confusion_matrix.csv", [["true\\predicted", *names], *rows])
        plot_confusion_matrix(matrix, names, folder / "confusion_matrix.png")
        log_image(trainer, "plots/confusion_matrix", folder / "confusion_matrix.png")
