"""``lightning-cv tune``: an Optuna study over any recipe's options.

Each trial is a quiet ``fit`` of the recipe with the trial's values (``--space``), scored by
``--monitor`` each epoch so that the pruner can stop a poor trial early. The study lives in a
journal file in the study folder, so running the same command again continues it; ``--n_jobs``
worker processes share it, ``--storage`` shares it between machines. The folder then holds
``best.yaml`` (the recipe with the best trial's values), ``trials.csv`` and three plots.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Literal

import optuna
from jsonargparse import Namespace
from lightning.pytorch.cli import LightningArgumentParser

from lightning_cv._io import atomic_write_text
from lightning_cv.cli._parse_errors import build_error
from lightning_cv.cli.lightning_cli import LightningCVCLI
from lightning_cv.cli.tuning.report import write_best_config, write_plots, write_trials
from lightning_cv.cli.tuning.space import check_space, corners
from lightning_cv.cli.tuning.study import JOURNAL_NAME, fail_dead_trials
from lightning_cv.cli.tuning.trial_run import TrialRuns, label
from lightning_cv.cli.tuning.worker import TuneJob, load_study, work
from lightning_cv.errors import ConfigError

__all__ = ["SET_BY_TUNE", "TuneCLI", "tune_main"]

TUNE_KEYS = ("space", "n_trials", "n_jobs", "storage", "study_name", "monitor", "mode",
             "folds", "pruning", "startup_trials", "output")  # fmt: skip
SET_BY_TUNE = {  # the options each trial's run sets itself, and why
    "data.num_folds": "the number of folds, --folds",
    "data.fold": "each fold's index",
    "trainer.logger": "each trial logs into the study folder",
    "trainer.enable_checkpointing": "trials keep no checkpoints",
    "test_after_fit": "a trial never sees the test split",
}


class TuneCLI(LightningCVCLI):
    """``lightning-cv tune``: the options of ``fit`` plus the study's own."""

    PROG = "lightning-cv tune"
    DESCRIPTION = "Search a recipe's options with Optuna (TPE sampler, median pruner)."

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        super().add_arguments_to_parser(parser)
        group = parser.add_argument_group("study")
        group.add_argument("--space", type=dict[str, Any], required=True,
                           help="e.g. {model.lr: {low: 1.0e-4, high: 0.3, log: true}, "
                                "model.optimizer: [sgd, adam]}")  # fmt: skip
        group.add_argument("--n_trials", type=int, default=20, help="the study's total trials")
        group.add_argument("--n_jobs", type=int, default=1, help="worker processes")
        group.add_argument("--storage", type=str | None, default=None,
                           help="a database URL (sqlite:///..., postgresql://...); default: "
                                f"{JOURNAL_NAME} in the study folder")  # fmt: skip
        group.add_argument("--study_name", type=str | None, default=None,
                           help="default: the recipe's run name")  # fmt: skip
        group.add_argument("--monitor", type=str, default="val/acc", help="the score")
        group.add_argument("--mode", type=Literal["max", "min"], default="max")
        group.add_argument("--folds", type=int | None, default=None,
                           help="score each trial by the mean over k folds")  # fmt: skip
        group.add_argument("--pruning", type=bool, default=True, help="stop poor trials early")
        group.add_argument("--startup_trials", type=int, default=5,
                           help="trials drawn at random and never pruned, before TPE and the "
                                "pruner act")  # fmt: skip
        group.add_argument("--output", type=str | None, default=None,
                           help="the study folder; default: runs/<run name>/tune")  # fmt: skip


def _run_name(options: Namespace) -> tuple[str, str]:
    """(save_dir, name) of the recipe's logger, as its runs are filed."""
    logger = options.trainer.get("logger")
    init = logger.get("init_args") if isinstance(logger, Namespace) else None
    if isinstance(init, Namespace) and init.get("name"):
        return str(init.get("save_dir") or "runs"), str(init.name)
    return "runs", "lightning-cv"


def _check_options(options: Namespace) -> dict[str, Any]:
    space = check_space(options.space)
    for key in space:
        parts = [part for part in key.split(".") if part != "init_args"]
        own = next((".".join(parts[:d]) for d in range(1, len(parts) + 1)
                    if ".".join(parts[:d]) in SET_BY_TUNE), None)  # fmt: skip
        if own is not None:
            raise ConfigError(f"--space {key}: tune sets {own} itself ({SET_BY_TUNE[own]}); "
                              "leave it out of --space")  # fmt: skip
    for name, least in (("n_trials", 1), ("n_jobs", 1), ("startup_trials", 0)):
        if options[name] < least:
            raise ConfigError(f"--{name} must be >= {least}, got {options[name]}")
    if options.folds is not None and options.folds < 2:
        raise ConfigError(f"--folds must be >= 2 (or left out), got {options.folds}")
    return space


def _check_settings(runs: TrialRuns, space: dict, folder: Path) -> None:
    """Build the model, data and trainer of each end of every range and every choice, without
    training, so a value ``fit`` refuses stops tune before a trial runs, named by its key."""
    for setting in corners(space):
        args = runs.args(setting, folder, "check", 0 if runs.folds else None)[1:]
        try:
            LightningCVCLI(args, run=False)
        except ValueError as error:
            reason = str(error) if isinstance(error, ConfigError) else build_error(str(error))
            raise ConfigError(f"--space {label(setting)}: {reason.splitlines()[0]}") from None


def _prepare(cli: TuneCLI, space: dict, folder: Path) -> Path:
    """Write the recipe's resolved ``fit`` config into the study folder (once: a study goes
    on with the config it started with) and check the space's values against it."""
    fit_config = cli.config.clone()
    for key in TUNE_KEYS:
        del fit_config[key]
    text = cli.parser.dump(fit_config, skip_none=False, skip_check=True)
    base = folder / "base_config.yaml"
    if base.is_file() and base.read_text(encoding="utf-8") != text:
        raise ConfigError(
            f"study folder {str(folder)!r} holds a study of other fit options "
            f"({base.name}); continue it with the same ones, or choose another --output"
        )
    atomic_write_text(base, text)
    options = cli.config
    _check_settings(TrialRuns(base, options.monitor, options.folds), space, folder)
    return base


def _run_workers(job: TuneJob, n_jobs: int) -> list[int]:
    """Run ``n_jobs`` worker processes to the end; a bad value (exit code 2, its line already
    printed) stops the others. Returns the exit codes."""
    command = [sys.executable, "-m", "lightning_cv.cli.tuning.worker", job.to_json()]
    workers = [subprocess.Popen([*command, str(index)]) for index in range(n_jobs)]
    try:
        while any(worker.poll() is None for worker in workers):
            if any(worker.returncode == 2 for worker in workers):
                for worker in workers:
                    if worker.poll() is None:
                        worker.terminate()
            time.sleep(0.5)
        return [worker.returncode for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()


def _finish(study: optuna.Study, job: TuneJob, folder: Path) -> None:
    """Write trials.csv, and with a completed trial best.yaml and the plots; print the best."""
    write_trials(study, folder / "trials.csv", job.metric)
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        print(f"no trial completed; trials in {folder / 'trials.csv'}")
        return
    best = study.best_trial
    write_best_config(Path(job.base), best.params, folder / "best.yaml")
    skipped = write_plots(study, folder)
    if skipped:
        print(f"not plotted ({', '.join(skipped)}): needs two completed trials")
    print(f"best: trial {best.number} ({label(best.params)}): {job.metric} {best.value:.4f}")
    print(f"best.yaml, trials.csv and plots in {folder}")
    print(f"train it: lightning-cv fit --config {folder / 'best.yaml'}")


def tune_main(args: list[str]) -> None:
    """Run (or continue) the study, then write its results into the study folder."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cli = TuneCLI(args, run=False)
    options = cli.config
    space = _check_options(options)
    save_dir, name = _run_name(options)
    folder = Path(options.output or Path(save_dir) / name / "tune")
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        base = _prepare(cli, space, folder)
    except ConfigError:
        if created:  # nothing has run: leave no study folder
            shutil.rmtree(folder)
        raise
    job = TuneJob(
        str(folder),
        options.storage,
        options.study_name or name,
        options.n_trials,
        space,
        str(base),
        options.monitor,
        f"{options.mode}imize",
        options.folds,
        options.pruning,
        options.startup_trials,
        options.seed_everything or 0,
    )
    study = load_study(job)
    _check_same_space(study, space)
    for number in fail_dead_trials(study):
        print(f"trial {number} was left running by a process that no longer runs: marked failed")
    print(f"tune: {options.n_trials} trials, {len(study.trials)} in the study so far; {folder}")
    codes = [0] if options.n_jobs == 1 else _run_workers(job, options.n_jobs)
    if options.n_jobs == 1:
        work(job)
    if 2 in codes:
        raise SystemExit(2)
    for number in fail_dead_trials(study):
        print(f"trial {number}'s worker was killed: marked failed; run the command again to "
              "run the trials left")  # fmt: skip
    _finish(study, job, folder)
    if any(codes):
        raise SystemExit(1)


def _check_same_space(study: optuna.Study, space: dict) -> None:
    """A new study records its space; a continued one must search the same."""
    recorded = study.user_attrs.get("space")
    if recorded is None:
        study.set_user_attr("space", space)
    elif recorded != space:
        raise ConfigError(
            f"study {study.study_name!r} searches --space {recorded}, not {space}; continue "
            "it with the same space, or choose another --output (or --study_name)"
        )
