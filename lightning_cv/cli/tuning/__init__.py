"""Hyperparameter studies on Optuna: the search space, one trial's runs, the shared study,
its workers and what it leaves in its folder (``lightning-cv tune`` and ``cv``)."""

from lightning_cv.cli.tuning.space import check_space, corners, suggest
from lightning_cv.cli.tuning.trial_run import TrialRuns, label, overrides

__all__ = ["TrialRuns", "check_space", "corners", "label", "overrides", "suggest"]
