"""Per-class precision, recall, F1 and support of the test set as a CSV table and a PNG picture."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as L
import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from lightning_cv._io import save_figure, write_csv
from lightning_cv.callbacks._wandb import log_image, log_table
from lightning_cv.errors import ConfigError
from lightning_cv.runs import output_folder

__all__ = [
    "SORT_KEYS",
    "ClassReport",
    "class_report",
    "colour_limits",
    "decimals_near_one",
    "plot_class_report",
]

SORT_KEYS = ("class", "precision", "recall", "f1", "support")
SCORES = ("precision", "recall", "f1")
CMAP = "RdYlGn"  # red for weak, green for strong scores
MAX_ROWS_PER_PANEL = 25  # taller tables are split into side-by-side panels


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros(numerator.shape, dtype=float)
    return np.divide(numerator, denominator, out=out, where=denominator > 0)


def _is_dark(score: float, limits: tuple[float, float]) -> bool:
    red, green, blue, _ = colormaps[CMAP](Normalize(*limits)(score))
    return 0.299 * red + 0.587 * green + 0.114 * blue < 0.45  # perceived brightness (ITU-R 601)


def decimals_near_one(values: Sequence[float] | np.ndarray) -> int:
    """Decimals that show how far the lowest value lies below 1 with two significant digits.

    At 99.5% accuracy two decimals print every score as 0.99 or 1.00; four print 0.9938, 0.9990.

    Example:
        >>> decimals_near_one([0.81, 0.97]), decimals_near_one([0.9938, 0.999])
        (2, 4)
        >>> decimals_near_one([1.0])
        2
    """
    gap = 1 - float(np.min(values))
    return max(2, 1 - math.floor(math.log10(gap))) if gap > 0 else 2


def colour_limits(scores: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """The range the colours span: from a round number (1, 2, 3 or 5 times a power of ten below
    1) at or under the lowest score, to 1, so the weakest class is red however high it scores.

    Example:
        >>> colour_limits([0.81, 0.97]), colour_limits([0.77, 1.0]), colour_limits([0.9938, 1])
        ((0.8, 1.0), (0.7, 1.0), (0.99, 1.0))
        >>> colour_limits([0.0, 1.0])
        (0.0, 1.0)
    """
    gap = 1 - float(np.min(scores))
    if gap <= 0:
        return 0.0, 1.0
    power = 10.0 ** math.floor(math.log10(gap))
    span = next(factor * power for factor in (1, 2, 3, 5, 10) if factor * power >= gap)
    return round(1 - span, 10), 1.0


def class_report(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support of every class from a confusion matrix.

    A score whose denominator is zero (a class never predicted, or never present) is 0, as in
    scikit-learn's ``precision_recall_fscore_support(..., zero_division=0)``.

    Args:
        matrix: ``(K, K)`` counts, rows the true class and columns the predicted class.

    Returns:
        ``precision``, ``recall``, ``f1`` (``(K,)`` floats) and ``support`` (``(K,)`` counts of
        true samples per class).

    Example:
        >>> report = class_report(np.array([[3, 1], [0, 2]]))
        >>> report["recall"].tolist(), report["precision"].round(2).tolist()
        ([0.75, 1.0], [1.0, 0.67])
    """
    matrix = np.asarray(matrix, dtype=np.int64)
    hits = np.diag(matrix).astype(float)
    support = matrix.sum(axis=1)  # true samples per class
    precision = _ratio(hits, matrix.sum(axis=0))
    recall = _ratio(hits, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def plot_class_report(
    report: dict[str, np.ndarray], class_names: list[str], path: Path, sort_by: str = "class"
) -> None:
    """Draw the report as colour-coded tables: a row per class, then the macro average.

    The colours span :func:`colour_limits` of the scores, from red (the weakest) to green
    (1), and the numbers have :func:`decimals_near_one` decimals, so the classes stay apart
    at 99.5% accuracy as at 90%. Many classes are split over side-by-side panels of at most
    25 rows, so every number stays readable (100 classes: 5 panels of 21 rows).

    Args:
        report: the output of :func:`class_report`.
        class_names: one name per class, in class-index order.
        path: the PNG file to write.
        sort_by: row order: ``class`` (index order) or a column of the report, ascending, so
            the weakest classes come first.
    """
    num_classes = len(class_names)
    order = (
        np.arange(num_classes) if sort_by == "class" else np.argsort(report[sort_by], kind="stable")
    )
    # (K + 1, 3): one row per class, then the macro average
    scores = np.stack([report[name] for name in SCORES], axis=1)
    scores = np.concatenate([scores[order], scores.mean(axis=0, keepdims=True)])
    support = np.append(report["support"][order], report["support"].sum())
    names = [class_names[i] for i in order] + ["macro avg"]

    accuracy = (report["recall"] * report["support"]).sum() / max(support[-1], 1)  # hits / n
    limits, decimals = colour_limits(scores), decimals_near_one(scores)
    num_panels = math.ceil(len(names) / MAX_ROWS_PER_PANEL)
    rows_per_panel = math.ceil(len(names) / num_panels)
    figure = Figure(figsize=(4.4 * num_panels, 1.8 + 0.3 * rows_per_panel), layout="constrained")
    axes = figure.subplots(1, num_panels, squeeze=False)[0]
    for ax, start in zip(axes, range(0, len(names), rows_per_panel), strict=True):
        rows = range(start, min(start + rows_per_panel, len(names)))
        _draw_panel(ax, rows, scores, support, names, rows_per_panel, limits, decimals)
        if num_classes in rows:
            ax.axhline(rows.index(num_classes) - 0.5, color="black", linewidth=1.5)
    scale = ScalarMappable(Normalize(*limits), CMAP)
    bar = figure.colorbar(scale, ax=axes, location="bottom", shrink=0.8, aspect=40)
    bar.set_label(f"colours: {limits[0]:g} (red) to {limits[1]:g} (green)")
    title_decimals = max(3, decimals)  # two numbers in a line of their own: room for 3
    figure.suptitle(
        f"Per-class scores on the test set\n{support[-1]} images, "
        f"accuracy {accuracy:.{title_decimals}f}, macro F1 {scores[-1, 2]:.{title_decimals}f}"
    )
    save_figure(figure, path)


def _draw_panel(
    ax, rows: range, scores, support, names, rows_per_panel: int, limits, decimals: int
) -> None:
    """One panel: the score cells colour-coded, the support column white with counts only."""
    # (rows, 4): the support column is masked, so it stays white and holds counts only
    table = np.ma.masked_invalid(np.column_stack([scores[rows], np.full(len(rows), np.nan)]))
    ax.imshow(table, cmap=CMAP, vmin=limits[0], vmax=limits[1], aspect="auto")
    ax.set_xticks(range(4), ["precision", "recall", "F1", "support"])
    ax.set_yticks(range(len(rows)), [names[i] for i in rows])
    ax.set_ylim(rows_per_panel - 0.5, -0.5)  # a short last panel keeps the row height
    ax.tick_params(length=0, top=True, labeltop=True, bottom=False, labelbottom=False)
    ax.spines[:].set_visible(False)
    for row, i in enumerate(rows):
        for col, value in enumerate(scores[i]):
            color = "white" if _is_dark(value, limits) else "black"
            text = f"{value:.{decimals}f}"
            ax.text(col, row, text, ha="center", va="center", fontsize=9, color=color)
        ax.text(3, row, str(support[i]), ha="center", va="center", fontsize=9)


class ClassReport(L.Callback):
    """After testing, write ``class_report.csv`` and ``class_report.png`` to the run folder.

    Reads the module's ``test_confusion`` metric (a torchmetrics ``MulticlassConfusionMatrix``,
    summed over all DDP ranks); rank 0 writes the files and, with a ``WandbLogger``, logs the
    picture as ``plots/class_report`` and the table as ``tables/class_report``.

    Args:
        sort_by: row order of the picture: ``class``, ``precision``, ``recall``, ``f1`` or
            ``support`` (ascending, weakest classes first). The CSV is always in class order.

    Raises:
        ConfigError: ``sort_by`` is not one of those.

    Example:
        >>> trainer = L.Trainer(callbacks=[ClassReport(sort_by="f1")])  # doctest: +SKIP
    """

    def __init__(self, sort_by: str = "class") -> None:
        if sort_by not in SORT_KEYS:
            raise ConfigError(f"unknown sort_by {sort_by!r}; expected one of {list(SORT_KEYS)}")
        self.sort_by = sort_by

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        confusion = getattr(pl_module, "test_confusion", None)
        if confusion is None or not confusion.update_called:
            return
        matrix = confusion.compute().cpu().numpy()  # every rank joins the sum over ranks
        folder = output_folder(trainer)  # None: a fast_dev_run, or not rank 0
        if folder is None:
            return
        names = getattr(pl_module, "class_names", None) or [str(i) for i in range(len(matrix))]
        report = class_report(matrix)
        columns = ["class", *SCORES, "support"]
        rows = [
            [name, *(float(report[key][i]) for key in SCORES), int(report["support"][i])]
            for i, name in enumerate(names)
        ]
        write_csv(folder / "class_report.csv", [columns, *rows])
        plot_class_report(report, names, folder / "class_report.png", self.sort_by)
        log_image(trainer, "plots/class_report", folder / "class_report.png")
        log_table(trainer, "tables/class_report", columns, rows)
