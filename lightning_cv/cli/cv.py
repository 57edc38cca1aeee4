"""``lightning-cv cv``: pick hyperparameters by k-fold cross-validation, then test once.

The protocol of the lectures: every candidate value is scored by k-fold cross-validation on
the training split only; the best mean validation score chooses the value; one model is then
trained on the whole training split with it and evaluated once on the test split. The test
split never takes part in the choice.
"""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import optuna
from lightning.pytorch.cli import LightningArgumentParser
from matplotlib.figure import Figure

from lightning_cv._io import atomic_write, atomic_write_text
from lightning_cv.cli._parse_errors import build_error
from lightning_cv.cli.lightning_cli import LightningCVCLI
from lightning_cv.cli.tuning.trial_run import TrialRuns, overrides
from lightning_cv.errors import ConfigError
from lightning_cv.runs import next_version

__all__ = [
    "SET_BY_CV",
    "CVRow",
    "CrossValidationCLI",
    "cv_main",
    "parse_grid",
    "plot_cv",
    "summarize",
]


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


SET_BY_CV = {  # the options cv sets itself on each fold's or the final run, and why
    "data.num_folds": "the number of folds, --num_folds",
    "data.fold": "each fold's index, 0 .. num_folds - 1",
    "data.val_fraction": "the folds are the validation data; the final fit trains on all of it",
    "trainer.logger": "each fold logs into the cv results folder",
    "trainer.enable_checkpointing": "folds keep no checkpoints",
    "test_after_fit": "only the final fit tests, once",
}


def _set_by_cv(key: str) -> str | None:
    """The option of :data:`SET_BY_CV` that ``key`` (or an option above it) names, if any."""
    parts = [part for part in key.split(".") if part != "init_args"]
    for depth in range(1, len(parts) + 1):
        if ".".join(parts[:depth]) in SET_BY_CV:
            return ".".join(parts[:depth])
    return None


def parse_grid(grid: dict[str, list]) -> list[dict[str, Any]]:
    """``{"model.k": [1, 3], "model.lr": [0.1]}`` -> every combination, as override dicts.

    Raises:
        ConfigError: a key whose values are not a non-empty list, or an option cv sets itself
            (:data:`SET_BY_CV`), which would override the grid's value on every fold.

    Example:
        >>> parse_grid({"model.k": [1, 3]})
        [{'model.k': 1}, {'model.k': 3}]
    """
    if not grid:
        raise ConfigError("--grid is empty: expected {KEY: [VALUE, ...]}, e.g. {model.k: [1, 3]}")
    for key, values in grid.items():
        own = _set_by_cv(key)
        if own is not None:
            raise ConfigError(
                f"--grid {key}: cv sets {own} itself ({SET_BY_CV[own]}), so every row would be "
                "the same; leave it out of --grid"
            )
        if not isinstance(values, list) or not values:
            raise ConfigError(
                f"--grid {key}: expected a non-empty list of values, got {values!r}; "
                "e.g. --grid '{model.k: [1, 3, 5]}'"
            )
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
    with atomic_write(path) as staging:
        figure.savefig(staging, dpi=100, format="png")


class CrossValidationCLI(LightningCVCLI):
    """``lightning-cv cv``: the options of ``fit`` plus the cross-validation's own."""

    PROG = "lightning-cv cv"
    DESCRIPTION = (
        "Choose hyperparameters by k-fold cross-validation on the training split, then train "
        "on all of it with the best value and test once."
    )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        super().add_arguments_to_parser(parser)
        group = parser.add_argument_group("cross-validation")
        group.add_argument("--num_folds", type=int, default=5, help="k of k-fold, >= 2")
        group.add_argument(  # Any: parse_grid names the key of a value that is no list
            "--grid", type=dict[str, Any], required=True, help="e.g. {model.k: [1, 3, 5]}"
        )
        group.add_argument("--metric", type=str, default="val/acc", help="the score to compare")
        group.add_argument("--mode", type=Literal["max", "min"], default="max")
        group.add_argument("--output", type=str, default="runs/cv", help="results folder")


CV_KEYS = ("num_folds", "grid", "metric", "mode", "output")


def _check_settings(runs: TrialRuns, settings: list[dict], folder: Path) -> None:
    """Build each setting's model, data and trainer once, without training, so that a value
    ``fit`` refuses stops cv before any fold trains, named by its grid key and value."""
    for setting in settings:
        args = runs.args(setting, folder / "check", "fold0", 0)[1:]
        try:
            LightningCVCLI(args, run=False)
        except ValueError as error:  # ours, or jsonargparse's report of a class it could not build
            reason = str(error) if isinstance(error, ConfigError) else build_error(str(error))
            label = CVRow(setting, ()).label
            raise ConfigError(f"--grid {label}: {reason.splitlines()[0]}") from None


def _grid_study(runs: TrialRuns, settings: list[dict], folder: Path) -> list[CVRow]:
    """Score every setting on every fold: an Optuna grid study over the settings, each trial
    run as ``lightning-cv tune`` runs its trials (:class:`TrialRuns`)."""
    indices = list(range(len(settings)))
    sampler = optuna.samplers.GridSampler({"setting": indices})
    study = optuna.create_study(sampler=sampler, direction="maximize")
    for number in indices:  # in the grid's order (the sampler shuffles): folds print in order
        study.enqueue_trial({"setting": number})

    def objective(trial: optuna.Trial) -> float:
        number = trial.suggest_categorical("setting", indices)
        scores = runs.score(settings[number], folder / f"setting{number}", trial)
        trial.set_user_attr("scores", scores)
        return float(np.mean(scores))

    study.optimize(objective, n_trials=len(settings), catch=())
    trials = sorted(study.trials, key=lambda trial: trial.params["setting"])
    return [CVRow(settings[t.params["setting"]], tuple(t.user_attrs["scores"])) for t in trials]


def _write_results(folder: Path, rows: list[CVRow], metric: str) -> None:
    table = io.StringIO(newline="")
    writer = csv.writer(table)
    folds = [f"fold{k}" for k in range(len(rows[0].scores))]
    writer.writerow([*rows[0].setting, "mean", "std", *folds])
    for row in rows:
        writer.writerow([*row.setting.values(), row.mean, row.std, *row.scores])
    atomic_write_text(folder / "cv_results.csv", table.getvalue())
    plot_cv(rows, metric, folder / "cv_results.png")


def cv_main(args: list[str]) -> None:
    """Cross-validate every grid setting, then train on the whole training split and test."""
    cli = CrossValidationCLI(args, run=False)
    options = cli.config
    if options.num_folds < 2:
        raise ConfigError(f"--num_folds must be >= 2, got {options.num_folds}")
    settings = parse_grid(options.grid)
    folder = next_version(Path(options.output))  # the runs' own numbering: never an old one
    folder.mkdir(parents=True)
    base = folder / "base_config.yaml"  # the fit options given, resolved once
    fit_config = options.clone()
    for key in CV_KEYS:
        del fit_config[key]
    atomic_write_text(base, cli.parser.dump(fit_config, skip_none=False, skip_check=True))
    runs = TrialRuns(base, options.metric, folds=options.num_folds, pruning=False)
    try:
        _check_settings(runs, settings, folder)
    except ConfigError:  # nothing has run: leave no results folder
        base.unlink()
        folder.rmdir()
        raise

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = _grid_study(runs, settings, folder)
    best = summarize(rows, options.mode)
    _write_results(folder, rows, options.metric)
    for row in rows:
        print(f"{row.label}: {options.metric} {row.mean:.4f} ± {row.std:.4f}")
    print(f"best: {best.label}; table and plot in {folder}")
    print("training on the whole training split with it, then testing once")
    LightningCVCLI(
        ["fit", "--config", str(base), *overrides(best.setting), "--data.val_fraction=0",
         "--test_after_fit=true"]
    )  # fmt: skip
