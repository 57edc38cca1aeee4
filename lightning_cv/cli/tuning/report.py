"""What a study leaves in its folder: ``trials.csv``, ``best.yaml`` and three plots."""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna
from matplotlib import pyplot as plt
from optuna.trial import TrialState

from lightning_cv._io import atomic_write_text, save_figure, write_csv
from lightning_cv.cli.lightning_cli import LightningCVCLI
from lightning_cv.cli.tuning.trial_run import overrides

__all__ = ["PLOTS", "write_best_config", "write_plots", "write_trials"]

PLOTS = {
    "history.png": optuna.visualization.matplotlib.plot_optimization_history,
    "importances.png": optuna.visualization.matplotlib.plot_param_importances,
    "slice.png": optuna.visualization.matplotlib.plot_slice,
}


def write_trials(study: optuna.Study, path: Path, metric: str) -> Path:
    """One row per trial: number, state, score, the epoch or fold it reached, seconds, values."""
    trials = study.get_trials(deepcopy=False)
    keys = sorted({key for trial in trials for key in trial.params})
    rows = [["number", "state", metric, "last_step", "seconds", *keys]]
    for trial in trials:
        steps = trial.intermediate_values
        seconds = trial.duration.total_seconds() if trial.duration is not None else ""
        rows.append([trial.number, trial.state.name, "" if trial.value is None else trial.value,
                     max(steps) if steps else "", seconds,
                     *(trial.params.get(key, "") for key in keys)])  # fmt: skip
    return write_csv(path, rows)


def write_best_config(base: Path, params: dict, path: Path) -> Path:
    """The recipe ``base`` with ``params``, resolved as ``fit`` would read it: ``lightning-cv
    fit --config best.yaml`` trains the best trial's model into the recipe's own run folder."""
    cli = LightningCVCLI(["--config", str(base), *overrides(params)], run=False)
    text = cli.parser.dump(cli.config, skip_none=False, skip_check=True)
    return atomic_write_text(path, text)


def write_plots(study: optuna.Study, folder: Path) -> list[str]:
    """Optimisation history, parameter importances and slice plots, as PNG files; returns the
    names of those that need more completed trials than the study has (at least two)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    skipped = []
    for name, plot in PLOTS.items():
        if name == "importances.png" and len(complete) < 2:
            skipped.append(name)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.filterwarnings("ignore", message="Attempting to set identical")  # 1 value
            axes = plot(study)
        figure = axes.flat[0].figure if hasattr(axes, "flat") else axes.figure
        figure.set_size_inches(max(6.0, figure.get_size_inches()[0]), 4.5)
        save_figure(figure, folder / name)
        plt.close(figure)
    return skipped
