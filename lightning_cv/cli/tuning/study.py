"""An Optuna study that worker processes share: its storage, who may start the next trial,
and the trials a killed worker left running.

The default storage is a journal file in the study folder (``study.journal``): running the
same command again continues the study. ``--storage sqlite:///...`` or ``postgresql://...``
shares it between machines. A trial whose worker process of this machine is gone (killed) is
marked failed when a command on this machine next opens the study.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from lightning_cv._io import _alive

__all__ = ["COUNTED", "JOURNAL_NAME", "fail_dead_trials", "open_storage", "run_trials"]

JOURNAL_NAME = "study.journal"
ASK_LOCK = ".tune-ask.lock"
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)  # towards --n_trials


def open_storage(url: str | None, folder: Path) -> optuna.storages.BaseStorage | str:
    """The journal file in ``folder`` (``url`` None), else the database URL for Optuna."""
    if url is None:
        return JournalStorage(JournalFileBackend(str(folder / JOURNAL_NAME)))
    return url


def fail_dead_trials(study: optuna.Study) -> list[int]:
    """Mark failed the running trials whose worker, a process of this machine, no longer runs
    (it was killed). Returns their numbers."""
    host, dead = socket.gethostname(), []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        if attrs.get("host") == host and not _alive(int(attrs.get("pid", -1))):
            study.tell(trial.number, state=TrialState.FAIL)
            dead.append(trial.number)
    return dead


@contextmanager
def _ask_lock(folder: Path):
    """One process of this machine at a time counts the trials and starts the next one, so
    workers never start more than ``n_trials`` between them."""
    with open(folder / ASK_LOCK, "a+", encoding="utf-8") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


def _next_trial(study: optuna.Study, n_trials: int, folder: Path) -> optuna.Trial | None:
    with _ask_lock(folder):
        if len(study.get_trials(deepcopy=False, states=COUNTED)) >= n_trials:
            return None
        trial = study.ask()
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        return trial


def run_trials(
    study: optuna.Study,
    n_trials: int,
    folder: Path,
    objective: Callable[[optuna.Trial], float],
    report: Callable[[optuna.trial.FrozenTrial], None],
) -> None:
    """Start trials until the study holds ``n_trials`` finished or running ones; tell the
    study each result. A trial that raises anything but a pruning is marked failed and the
    error goes on (a bad value stops the study at once)."""
    while (trial := _next_trial(study, n_trials, folder)) is not None:
        try:
            value = objective(trial)
        except optuna.TrialPruned:
            frozen = study.tell(trial, state=TrialState.PRUNED)
        except BaseException:
            study.tell(trial, state=TrialState.FAIL)
            raise
        else:
            frozen = study.tell(trial, value)
        report(frozen)
