"""Search on MNIST: a TPE study with pruning against a grid of the same number of trials.

Both are ``lightning-cv tune`` runs of ``recipes/mnist_lenet5_fast.yaml`` (LeNet-5, 2 epochs a
trial, the real MNIST files) over the learning rate and the weight decay. The TPE study draws
``--trials`` points (the first ``--startup`` at random) and prunes a trial whose ``val/acc``
after its first epoch is below the median; the grid study runs the same number of points of a
fixed grid (learning rates spaced evenly in log over the same range, two weight decays),
enqueued in order into its journal before the command starts, without pruning. Each study
trains in its own folder. Result: best ``val/acc`` and wall seconds of each, trials pruned;
the last line is one JSON object.

    nice python benchmarks/tune.py [--root ../shared/datasets] [--trials 20] [--output DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

REPO = Path(__file__).resolve().parents[1]
LOW, HIGH, DECAYS = 0.01, 0.5, (0.0, 0.0005)
SPACE = f"{{model.lr: {{low: {LOW}, high: {HIGH}, log: true}}, model.weight_decay: [0.0, 0.0005]}}"


def _tune(folder: Path, root: Path, trials: int, startup: int, pruning: bool) -> float:
    """Run one study to the end; return its wall seconds."""
    command = [sys.executable, "-m", "lightning_cv", "tune",
               "--config", str(REPO / "recipes" / "mnist_lenet5_fast.yaml"),
               "--data.root", str(root), "--space", SPACE, "--n_trials", str(trials),
               "--startup_trials", str(startup), "--pruning", str(pruning).lower(),
               "--output", str(folder), "--trainer.callbacks", "[]",
               "--trainer.enable_progress_bar", "false"]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return time.perf_counter() - start


def _study(folder: Path) -> optuna.Study:
    storage = JournalStorage(JournalFileBackend(str(folder / "study.journal")))
    return optuna.load_study(study_name="mnist_lenet5_fast", storage=storage)


def _enqueue_grid(folder: Path, trials: int) -> None:
    """``trials`` grid points: trials // 2 learning rates times the two weight decays."""
    folder.mkdir(parents=True)
    storage = JournalStorage(JournalFileBackend(str(folder / "study.journal")))
    study = optuna.create_study(
        study_name="mnist_lenet5_fast", storage=storage, direction="maximize"
    )
    for lr in np.geomspace(LOW, HIGH, trials // 2):
        for decay in DECAYS:
            study.enqueue_trial({"model.lr": float(lr), "model.weight_decay": decay})


def _figures(study: optuna.Study, seconds: float) -> dict:
    states = [trial.state.name for trial in study.trials]
    return {"best_val_acc": round(study.best_value, 4), "best_params": study.best_params,
            "seconds": round(seconds, 1), "trials": len(states),
            "pruned": states.count("PRUNED")}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--trials", type=int, default=20, help="an even number")
    parser.add_argument("--startup", type=int, default=5)
    parser.add_argument("--output", type=Path, default=Path("runs/benchmark_tune"))
    options = parser.parse_args()
    tpe_folder, grid_folder = options.output / "tpe", options.output / "grid"
    tpe = _tune(tpe_folder, options.root, options.trials, options.startup, pruning=True)
    _enqueue_grid(grid_folder, options.trials)
    grid = _tune(grid_folder, options.root, options.trials, options.trials, pruning=False)
    result = {"benchmark": "tune", "recipe": "mnist_lenet5_fast", "epochs_per_trial": 2,
              "tpe_pruning": _figures(_study(tpe_folder), tpe),
              "grid": _figures(_study(grid_folder), grid)}  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
