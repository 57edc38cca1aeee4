"""A worker of ``lightning-cv tune``: runs trials of the shared study until it holds
``n_trials``. ``--n_jobs N`` starts N of them as processes (``python -m
lightning_cv.cli.tuning.worker JOB``); with one, the command itself is the worker."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from lightning_cv.cli.tuning.space import suggest
from lightning_cv.cli.tuning.study import open_storage, run_trials
from lightning_cv.cli.tuning.trial_run import TrialRuns, label
from lightning_cv.errors import ConfigError

__all__ = ["TuneJob", "load_study", "work"]


@dataclass(frozen=True)
class TuneJob:
    """Everything a worker needs, as JSON on its command line."""

    folder: str
    storage: str | None
    study_name: str
    n_trials: int
    space: dict[str, Any]
    base: str
    metric: str
    direction: str
    folds: int | None
    pruning: bool
    startup_trials: int
    seed: int

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> TuneJob:
        return cls(**json.loads(text))


def load_study(job: TuneJob, worker: int = 0) -> optuna.Study:
    """The job's study (created if new), with a sampler seeded by the seed, the trials so far
    and the worker: workers draw different points; one worker's run is reproducible."""
    storage = open_storage(job.storage, Path(job.folder))
    study = optuna.create_study(storage=storage, study_name=job.study_name,
                                direction=job.direction, load_if_exists=True)  # fmt: skip
    seed = np.random.SeedSequence([job.seed, len(study.trials), worker]).generate_state(1)[0]
    study.sampler = optuna.samplers.TPESampler(seed=int(seed), n_startup_trials=job.startup_trials)
    study.pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=job.startup_trials)
        if job.pruning
        else optuna.pruners.NopPruner()
    )
    return study


def report(trial: optuna.trial.FrozenTrial, metric: str) -> None:
    """One line per finished trial."""
    name = f"trial {trial.number} ({label(trial.params)})"
    if trial.state == optuna.trial.TrialState.PRUNED:
        steps = trial.intermediate_values
        where = f"at step {max(steps)}: {metric} {steps[max(steps)]:.4f}" if steps else "(diverged)"
        print(f"{name}: pruned {where}", flush=True)
    else:
        print(f"{name}: {metric} {trial.value:.4f}", flush=True)


def work(job: TuneJob, worker: int = 0) -> None:
    """Run trials of the job's study until it holds ``job.n_trials`` of them."""
    study = load_study(job, worker)
    runs = TrialRuns(Path(job.base), job.metric, job.folds, job.pruning)
    trials = Path(job.folder) / "trials"

    def objective(trial: optuna.Trial) -> float:
        scores = runs.score(suggest(trial, job.space), trials / f"trial{trial.number}", trial)
        trial.set_user_attr("scores", scores)
        return float(np.mean(scores))

    run_trials(study, job.n_trials, Path(job.folder), objective, lambda t: report(t, job.metric))


def _main(argv: list[str]) -> None:
    job, worker = TuneJob.from_json(argv[0]), int(argv[1])
    try:
        work(job, worker)
    except ConfigError as error:
        print(f"lightning-cv: error: {str(error).splitlines()[0]}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    _main(sys.argv[1:])
