"""Training curves (train vs validation loss and accuracy) and the learning rate, as PNG and CSV."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import numpy as np
import torch
from lightning.pytorch.trainer.states import TrainerFn
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lightning_cv._io import save_figure, write_csv
from lightning_cv.callbacks._wandb import log_image
from lightning_cv.callbacks.class_report import decimals_near_one
from lightning_cv.runs import output_folder

__all__ = [
    "CURVE_COLUMNS",
    "LearningRatePlot",
    "TrainingCurves",
    "best_validation",
    "epoch_values",
    "history_table",
    "learning_rates",
    "plot_learning_rate",
    "plot_training_curves",
]

# column of training_curves.csv -> metric logged by ImageClassifier
TRAIN_METRICS = {"train_loss": "train/loss_epoch", "train_acc": "train/acc"}
VAL_METRICS = {"val_loss": "val/loss", "val_acc": "val/acc"}
CURVE_COLUMNS = ("epoch", "train_loss", "val_loss", "train_acc", "val_acc")


def epoch_values(metrics: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, float]:
    """The metrics named in ``names`` that ``metrics`` holds, as floats under their columns.

    Args:
        metrics: e.g. ``trainer.callback_metrics`` (tensors or numbers).
        names: column -> metric key, e.g. ``{"val_acc": "val/acc"}``.

    Example:
        >>> epoch_values({"val/acc": torch.tensor(0.5), "val/f1": 0.4}, {"val_acc": "val/acc"})
        {'val_acc': 0.5}
    """
    return {column: float(metrics[key]) for column, key in names.items() if key in metrics}


def history_table(history: Mapping[int, Mapping[str, float]]) -> list[list[float]]:
    """Rows of ``training_curves.csv`` in :data:`CURVE_COLUMNS` order, one per epoch.

    Args:
        history: epoch -> the values recorded for it; a value never recorded (no validation
            that epoch) is NaN.

    Example:
        >>> history_table({1: {"val_acc": 0.9}, 0: {"train_loss": 2.0}})
        [[0, 2.0, nan, nan, nan], [1, nan, nan, nan, 0.9]]
    """
    return [
        [epoch, *(history[epoch].get(column, math.nan) for column in CURVE_COLUMNS[1:])]
        for epoch in sorted(history)
    ]


def best_validation(rows: Sequence[Sequence[float]]) -> tuple[int, str] | None:
    """The epoch of the best validation accuracy and its legend label, or None without one.

    The accuracy has at least 3 decimals, more near 1
    (:func:`~lightning_cv.callbacks.class_report.decimals_near_one`): 0.9962, not 1.000.

    Example:
        >>> best_validation([[0, 1.0, 0.9, 0.8, 0.97], [1, 0.5, 0.4, 0.9, 0.9962]])
        (1, 'best val 0.9962 (epoch 1)')
    """
    val_acc = np.asarray(rows, dtype=float).reshape(-1, len(CURVE_COLUMNS))[:, -1]
    if np.isnan(val_acc).all():
        return None
    best = int(np.nanargmax(val_acc))
    epoch, value = int(rows[best][0]), float(val_acc[best])
    return epoch, f"best val {value:.{max(3, decimals_near_one([value]))}f} (epoch {epoch})"


def plot_training_curves(rows: Sequence[Sequence[float]], path: Path) -> None:
    """Draw loss (left) and accuracy (right) per epoch, training vs validation.

    The epoch of the best validation accuracy is marked by a dotted line, named in the legend
    (:func:`best_validation`), where no label can cover a curve.

    Args:
        rows: the output of :func:`history_table`.
        path: the PNG file to write.
    """
    table = np.asarray(rows, dtype=float).reshape(-1, len(CURVE_COLUMNS))
    column = {name: table[:, i] for i, name in enumerate(CURVE_COLUMNS)}
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    for ax, quantity, title in zip(
        figure.subplots(1, 2), ("loss", "acc"), ("Loss", "Accuracy"), strict=True
    ):
        for stage, label, color in (
            ("train", "train", "tab:blue"),
            ("val", "validation", "tab:orange"),
        ):
            values = column[f"{stage}_{quantity}"]
            known = ~np.isnan(values)  # epochs without validation leave gaps; join the dots
            ax.plot(
                column["epoch"][known], values[known], "o-", color=color, label=label, markersize=4
            )
        best = best_validation(rows)
        if quantity == "acc" and best is not None:
            ax.axvline(best[0], color="gray", linestyle=":", linewidth=1, label=best[1])
        ax.set(title=title, xlabel="epoch", ylabel=title.lower())
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    figure.suptitle("Training curves: train vs validation")
    save_figure(figure, path)


class TrainingCurves(L.Callback):
    """After fitting, write ``training_curves.png`` and ``training_curves.csv`` to the run folder.

    Validation loss and accuracy are read from ``trainer.callback_metrics`` at each validation
    end (the sanity check is skipped) and the training epoch values at each training epoch end
    (they are only complete then, after that epoch's validation). The values travel in every
    checkpoint, so a run resumed with ``ckpt_path`` draws all its epochs, not only the resumed
    ones. With a ``WandbLogger`` the picture is also logged as ``plots/training_curves``.

    Example:
        >>> trainer = L.Trainer(callbacks=[TrainingCurves()])  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self.history: dict[int, dict[str, float]] = {}

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":  # before Lightning loads a resumed run's history into this callback
            self.history = {}

    def state_dict(self) -> dict[str, Any]:
        return {"rows": history_table(self.history)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = {
            int(epoch): {
                column: value
                for column, value in zip(CURVE_COLUMNS[1:], values, strict=True)
                if not math.isnan(value)
            }
            for epoch, *values in state_dict["rows"]
        }

    def _record(self, trainer: L.Trainer, names: Mapping[str, str]) -> None:
        if trainer.state.fn != TrainerFn.FITTING or trainer.sanity_checking:
            return
        values = epoch_values(trainer.callback_metrics, names)
        self.history.setdefault(trainer.current_epoch, {}).update(values)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer, VAL_METRICS)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer, TRAIN_METRICS)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        folder = output_folder(trainer)  # None: a fast_dev_run, or not rank 0
        if folder is None or not self.history:
            return
        rows = history_table(self.history)
        write_csv(folder / "training_curves.csv", [CURVE_COLUMNS, *rows])
        plot_training_curves(rows, folder / "training_curves.png")
        log_image(trainer, "plots/training_curves", folder / "training_curves.png")


def learning_rates(optimizers: Sequence[torch.optim.Optimizer]) -> dict[str, float]:
    """The current learning rate of every parameter group, by column name.

    The column is ``lr``, with ``_opt{i}`` when there are several optimizers and ``_group{j}``
    when the optimizer has several parameter groups.

    Example:
        >>> groups = [{"params": [torch.zeros(1)]}, {"params": [torch.ones(1)]}]
        >>> learning_rates([torch.optim.SGD(groups, lr=0.1)])
        {'lr_group0': 0.1, 'lr_group1': 0.1}
    """
    rates = {}
    for i, optimizer in enumerate(optimizers):
        for j, group in enumerate(optimizer.param_groups):
            name = "lr" + (f"_opt{i}" if len(optimizers) > 1 else "")
            name += f"_group{j}" if len(optimizer.param_groups) > 1 else ""
            rates[name] = float(group["lr"])
    return rates


def plot_learning_rate(
    steps: Sequence[int], rates: Mapping[str, Sequence[float]], path: Path
) -> None:
    """Draw the learning rate of each parameter group against the optimizer step.

    The axis is logarithmic when the rate spans a factor of 10 or more (step decay, one-cycle)
    and otherwise starts at 0.

    Args:
        steps: optimizer step of each record.
        rates: column -> one learning rate per record (from :func:`learning_rates`).
        path: the PNG file to write.
    """
    figure = Figure(figsize=(7, 4), layout="constrained")
    ax = figure.subplots()
    for name, values in rates.items():
        ax.plot(steps, values, label=name, linewidth=1.5)
    values = np.concatenate([np.asarray(v, dtype=float) for v in rates.values()])
    low, high = np.nanmin(values), np.nanmax(values)
    if low > 0 and high / low >= 10:
        ax.set_yscale("log")
    else:  # from 0, without an offset: a constant rate reads 0.001, not 1 + 1e-3
        ax.set_ylim(bottom=0)
        ax.ticklabel_format(axis="y", useOffset=False)
    ax.set(title="Learning rate", xlabel="optimizer step", ylabel="learning rate")
    ax.grid(alpha=0.3)
    if len(rates) > 1:
        ax.legend()
    save_figure(figure, path)


class LearningRatePlot(L.Callback):
    """After fitting, write ``learning_rate.png`` and ``learning_rate.csv`` to the run folder.

    Records the learning rate of every parameter group just before each optimizer step (the
    rate that step uses). The rates travel in every checkpoint, so a resumed run draws all its
    steps from step 0. With a ``WandbLogger`` the picture is also logged as
    ``plots/learning_rate``.

    Example:
        >>> trainer = L.Trainer(callbacks=[LearningRatePlot()])  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.rates: dict[str, list[float]] = {}  # column -> one rate per step

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":  # before Lightning loads a resumed run's rates into this callback
            self.steps, self.rates = [], {}

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "rates": self.rates}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.steps = list(state_dict["steps"])
        self.rates = {name: list(values) for name, values in state_dict["rates"].items()}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        rates = learning_rates(trainer.optimizers)
        for name in rates:  # a group added during training has no rate before it existed
            self.rates.setdefault(name, [math.nan] * len(self.steps))
        self.steps.append(trainer.global_step)
        for name, values in self.rates.items():
            values.append(rates.get(name, math.nan))

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        folder = output_folder(trainer)  # None: a fast_dev_run, or not rank 0
        if folder is None or not self.steps:
            return
        rows = zip(self.steps, *self.rates.values(), strict=True)
        write_csv(folder / "learning_rate.csv", [["step", *self.rates], *rows])
        plot_learning_rate(self.steps, self.rates, folder / "learning_rate.png")
        log_image(trainer, "plots/learning_rate", folder / "learning_rate.png")
