"""``lightning-cv cv``: pick hyperparameters by k-fold cross-validation, then test once.

The protocol of the lectures: every candidate value is scored by k-fold cross-validation on
the training split only; the best mean validation score chooses the value; one model is then
trained on the whole training split with it and evaluated once on the test split. The test
split never takes part in the choice.
"""

from __future__ import annotations

import argparse
import csv
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from matplotlib.figure import Figure

from lightning_cv.errors import ConfigError

__all__ = ["CVRow", "cv_main", "parse_grid", "plot_cv", "summarize"]


@dataclass(frozen=True)
class CVRow:
    """One candidate setting: its validation score on every fold, their mean and std."""

    setting: dict[str, Any]
    scores: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores))

    @property
    def std(self) -> float:
        return float(np.std(self.scores))

    @property
    def label(self) -> str:
        return ", ".join(f"{key}={value}" for key, value in self.setting.items())


def parse_grid(specs: list[str]) -> list[dict[str, Any]]:
    """``["model.k=[1,3]", "model.lr=[0.1]"]`` -> every combination, as override dicts.

    Raises:
        ConfigError: a spec without ``=`` or whose values are not a non-empty YAML list.

    Example:
        >>> parse_grid(["model.k=[1,3]"])
        [{'model.k': 1}, {'model.k': 3}]
    """
    grid = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        parsed = yaml.safe_load(values) if sep else None
        if not key or not isinstance(parsed, list) or not parsed:
            raise ConfigError(f"--grid {spec!r}: expected KEY=[VALUE, ...], e.g. model.k=[1,3,5]")
        grid[key] = parsed
    return [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]


def summarize(rows: list[CVRow], mode: str) -> CVRow:
    """The row with the best mean score (highest for ``mode="max"``, lowest for ``"min"``)."""
    pick = max if mode == "max" else min
    return pick(rows, key=lambda row: row.mean)


def plot_cv(rows: list[CVRow], metric: str, path: Path) -> None:
    """Each fold's score as a dot, the mean as a line, one standard deviation as error bars."""
    figure = Figure(figsize=(max(6.0, 1.1 * len(rows) + 2), 4.5), layout="constrained")
    axis = figure.subplots()
    positions = np.arange(len(rows))
    for position, row in zip(positions, rows, strict=True):
        axis.scatter([position] * len(row.scores), row.scores, color="tab:blue", alpha=0.5, s=18)
    means, stds = [row.mean for row in rows], [row.std for row in rows]
    axis.errorbar(positions, means, yerr=stds, color="tab:orange", capsize=4, marker="o")
    axis.set_xticks(positions, [row.label for row in rows], rotation=30, ha="right")
    axis.set(ylabel=metric, title=f"{len(rows[0].scores)}-fold cross-validation: {metric}")
    axis.grid(alpha=0.3)
    figure.savefig(path, dpi=100)


def _next_folder(root: Path) -> Path:
    """``root/version_N`` with the first unused N, so earlier results are never overwritten."""
    number = 0
    while (root / f"version_{number}").exists():
        number += 1
    return root / f"version_{number}"


def _overrides(setting: dict[str, Any]) -> list[str]:
    return [
        f"--{key}={yaml.safe_dump(value, default_flow_style=True).strip()}"
        for key, value in setting.items()
    ]


def cv_main(args: list[str]) -> None:
    """Parse ``cv`` options; every other argument configures the runs as for ``fit``."""
    from lightning_cv.cli import LightningCVCLI  # here: the CLI module imports this one

    parser = argparse.ArgumentParser(
        prog="lightning-cv cv",
        description="Choose hyperparameters by k-fold cross-validation on the training split, "
        "then train on all of it with the best value and test once. Other options (--config, "
        "--model..., --data..., --trainer...) are those of `lightning-cv fit`.",
    )
    parser.add_argument("--num_folds", type=int, default=5)
    parser.add_argument("--grid", action="append", required=True, help="KEY=[V1,V2,...]")
    parser.add_argument("--metric", default="val/acc")
    parser.add_argument("--mode", choices=("max", "min"), default="max")
    parser.add_argument("--output", type=Path, default=Path("runs/cv"))
    options, rest = parser.parse_known_args(args)
    if options.num_folds < 2:
        raise ConfigError(f"--num_folds must be >= 2, got {options.num_folds}")
    settings = parse_grid(options.grid)

    rows = []
    for setting in settings:
        scores = []
        for fold in range(options.num_folds):
            folds = [f"--data.num_folds={options.num_folds}", f"--data.fold={fold}"]
            cli = LightningCVCLI(
                ["fit", *rest, *_overrides(setting), *folds, "--test_after_fit=false"]
            )
            if options.metric not in cli.trainer.callback_metrics:
                raise ConfigError(
                    f"--metric {options.metric!r} was not logged; logged: "
                    f"{sorted(cli.trainer.callback_metrics)}"
                )
            scores.append(float(cli.trainer.callback_metrics[options.metric]))
        rows.append(CVRow(setting, tuple(scores)))
    best = summarize(rows, options.mode)

    folder = _next_folder(options.output)
    folder.mkdir(parents=True)
    with (folder / "cv_results.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(
            [*settings[0], "mean", "std", *(f"fold{k}" for k in range(options.num_folds))]
        )
        for row in rows:
            writer.writerow([*row.setting.values(), row.mean, row.std, *row.scores])
    plot_cv(rows, options.metric, folder / "cv_results.png")
    for row in rows:
        print(f"{row.label}: {options.metric} {row.mean:.4f} ± {row.std:.4f}")
    print(f"best: {best.label}; table and plot in {folder}")
    print("training on the whole training split with it, then testing once")
    LightningCVCLI(
        ["fit", *rest, *_overrides(best.setting), "--data.val_fraction=0", "--test_after_fit=true"]
    )
