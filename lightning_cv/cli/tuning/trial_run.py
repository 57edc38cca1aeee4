"""One trial of a study: ``fit`` runs of the recipe with the trial's values, scored.

The runs are quiet LightningCVCLI ``fit`` runs that keep no checkpoint, test nothing and log
into the study's folder (never among the recipe's runs, where ``--ckpt_path last`` looks). With
folds, a trial trains once per fold and scores the mean; without, it trains once on the
recipe's split. ``cv`` and ``tune`` both score their settings here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import numpy as np
import optuna
from lightning.pytorch.callbacks import Callback
from optuna_integration import PyTorchLightningPruningCallback

from lightning_cv.cli.lightning_cli import LightningCVCLI
from lightning_cv.errors import ConfigError, NonFiniteLossError

__all__ = ["TrialRuns", "label", "overrides"]


def overrides(setting: dict[str, Any]) -> list[str]:
    """``--key=value`` options: a string as it is (jsonargparse takes it whole for a ``str``
    option), anything else as JSON, which is YAML on one line."""
    return [
        f"--{key}={value if isinstance(value, str) else json.dumps(value, default=str)}"
        for key, value in setting.items()
    ]


def label(setting: dict[str, Any]) -> str:
    """``model.lr=0.02791, model.k=3``: a setting as the printed lines name it (floats to four
    significant digits; ``best.yaml`` and ``trials.csv`` keep every digit)."""
    return ", ".join(
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in setting.items()
    )


class _TrialCLI(LightningCVCLI):
    """A quiet ``fit`` whose Trainer also gets callbacks that cannot be written in a config
    (the pruning callback holds the live Optuna trial)."""

    def __init__(self, args: list[str], callbacks: list[Callback]) -> None:
        self._extra_callbacks = callbacks
        super().__init__(args, quiet=True)

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        trainer = super().instantiate_trainer(**kwargs)
        trainer.callbacks.extend(self._extra_callbacks)
        return trainer


@dataclass(frozen=True)
class TrialRuns:
    """How a study scores a setting.

    Attributes:
        base: the resolved ``fit`` config of the recipe (a YAML file).
        metric: the logged score, e.g. ``val/acc``.
        folds: k of k-fold (the mean over the data module's folds), or None for the recipe's
            own validation split.
        pruning: report the score each epoch (each fold with ``folds``) for the pruner.
    """

    base: Path
    metric: str
    folds: int | None = None
    pruning: bool = True

    def args(self, setting: dict, folder: Path, name: str, fold: int | None) -> list[str]:
        """The ``fit`` options of one run of ``setting``, logging into ``folder/name``."""
        logger = {"save_dir": str(folder), "name": name}
        own: dict[str, Any] = {
            "test_after_fit": False,
            "trainer.logger": {"class_path": "CSVLogger", "init_args": logger},
            "trainer.enable_checkpointing": False,
        }
        if fold is not None:
            own = {"data.num_folds": self.folds, "data.fold": fold, **own}
        return ["fit", "--config", str(self.base), *overrides(setting), *overrides(own)]

    def _fit(self, args: list[str], callbacks: list[Callback]) -> float:
        try:
            metrics = _TrialCLI(args, callbacks).trainer.callback_metrics
        except NonFiniteLossError as error:  # the lr (or another value) made the loss diverge
            raise optuna.TrialPruned(f"diverged: {str(error).splitlines()[0]}") from None
        if self.metric not in metrics:
            raise ConfigError(f"--metric {self.metric!r} was not logged; logged: {sorted(metrics)}")
        return float(metrics[self.metric])

    def score(self, setting: dict, folder: Path, trial: optuna.Trial | None) -> list[float]:
        """Train ``setting`` (once, or once per fold) and return its score(s).

        Raises:
            optuna.TrialPruned: the pruner stopped the trial, or its loss diverged.
        """
        if self.folds is None:
            pruning = self.pruning and trial is not None
            callbacks = [PyTorchLightningPruningCallback(trial, self.metric)] if pruning else []
            return [self._fit(self.args(setting, folder.parent, folder.name, None), callbacks)]
        scores = []
        for fold in range(self.folds):
            scores.append(self._fit(self.args(setting, folder, f"fold{fold}", fold), []))
            print(f"{label(setting)}, fold {fold + 1}/{self.folds}: {self.metric} {scores[-1]:.4f}")
            if self.pruning and trial is not None:
                trial.report(float(np.mean(scores)), step=fold)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after fold {fold + 1}")
        return scores
