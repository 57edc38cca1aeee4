"""`lightning-cv tune`: an Optuna study over a recipe, shared by worker processes, continued
after a kill, pruning a diverging trial, and a best.yaml that `fit` reproduces."""

import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from lightning_cv.cli import main
from lightning_cv.cli.tuning.space import check_space, corners
from lightning_cv.errors import ConfigError
from tests.conftest import REPO

DIGITS = [
    "--config", str(REPO / "recipes" / "digits_linear.yaml"), "--data.image_size", "8",
    "--trainer.enable_progress_bar", "false", "--trainer.callbacks", "[]",
]  # fmt: skip
SPACE = "{model.lr: {low: 0.005, high: 0.3, log: true}, model.weight_decay: [0.0, 0.0001]}"
FOLDER = Path("runs/digits_linear/tune")


def _study(folder: Path) -> optuna.Study:
    storage = JournalStorage(JournalFileBackend(str(folder / "study.journal")))
    return optuna.load_study(study_name="digits_linear", storage=storage)


def test_six_trials_over_two_workers_and_best_yaml_reproduces(in_tmp, capsys):
    main(["tune", *DIGITS, "--space", SPACE, "--n_trials", "6", "--n_jobs", "2",
          "--pruning", "false", "--trainer.max_epochs", "1", "--startup_trials", "2"])  # fmt: skip
    trials = _study(in_tmp / FOLDER).trials
    assert sorted(trial.number for trial in trials) == list(range(6))
    assert all(trial.state == TrialState.COMPLETE for trial in trials)
    assert len({tuple(sorted(trial.params.items())) for trial in trials}) == 6
    assert len({trial.user_attrs["pid"] for trial in trials}) == 2  # both workers ran trials
    rows = list(csv.DictReader((in_tmp / FOLDER / "trials.csv").open()))
    assert [row["state"] for row in rows] == ["COMPLETE"] * 6
    for name in ("history.png", "importances.png", "slice.png"):
        assert (in_tmp / FOLDER / name).stat().st_size > 5_000
    best = max(trials, key=lambda trial: trial.value)
    assert f"best: trial {best.number} " in capsys.readouterr().out
    main(["fit", "--config", str(FOLDER / "best.yaml"), "--test_after_fit", "false"])
    [metrics] = (in_tmp / "runs/digits_linear").glob("version_*/metrics.csv")
    accuracies = [row["val/acc"] for row in csv.DictReader(metrics.open()) if row["val/acc"]]
    assert float(accuracies[-1]) == pytest.approx(best.value, abs=1e-6)


def _wait_for(condition, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.5)
    raise AssertionError(f"not within {seconds} s")


def test_a_killed_workers_study_continues(in_tmp):
    command = [sys.executable, "-m", "lightning_cv", "tune", *DIGITS, "--space", SPACE,
               "--n_trials", "4", "--n_jobs", "2", "--pruning", "false",
               "--trainer.max_epochs", "4", "--startup_trials", "2"]  # fmt: skip
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:

        def running_after_a_complete():
            if not (in_tmp / FOLDER / "study.journal").is_file():
                return None
            trials = _study(in_tmp / FOLDER).trials
            done = [t for t in trials if t.state == TrialState.COMPLETE]
            running = [t for t in trials if t.state == TrialState.RUNNING and "pid" in t.user_attrs]
            return (done, running[0]) if done and running else None

        done, victim = _wait_for(running_after_a_complete, 240)
        os.kill(victim.user_attrs["pid"], signal.SIGKILL)
        output, _ = first.communicate(timeout=240)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 1
    assert f"trial {victim.number}'s worker was killed: marked failed" in output
    second = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert second.returncode == 0, second.stderr
    trials = {trial.number: trial for trial in _study(in_tmp / FOLDER).trials}
    assert trials[victim.number].state == TrialState.FAIL
    assert [t.state for t in trials.values()].count(TrialState.COMPLETE) == 4
    assert len(trials) == 5  # the four asked for and the killed one, none twice
    for trial in done:
        assert trials[trial.number].value == trial.value


def test_pruning_stops_a_trial_whose_lr_diverges(in_tmp, capsys):
    folder = in_tmp / FOLDER
    folder.mkdir(parents=True)
    storage = JournalStorage(JournalFileBackend(str(folder / "study.journal")))
    study = optuna.create_study(study_name="digits_linear", storage=storage, direction="maximize")
    for lr in (0.05, 0.1, 1000.0):  # two sound runs, then one the loss cannot survive
        study.enqueue_trial({"model.lr": lr})
    main(["tune", *DIGITS, "--space", "{model.lr: {low: 0.001, high: 1000.0, log: true}}",
          "--n_trials", "3", "--trainer.max_epochs", "3", "--startup_trials", "2"])  # fmt: skip
    trials = _study(folder).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2 + [TrialState.PRUNED]
    assert len(trials[0].intermediate_values) == 3  # the sound trials ran every epoch
    assert len(trials[2].intermediate_values) < 3  # the diverging one stopped early
    assert "trial 2 (model.lr=1000): pruned" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"model.lr": {"low": 0.3, "high": 0.1}},
         "--space model.lr: expected numbers low < high, got low=0.3, high=0.1"),
        ({"model.lr": {"low": 0, "high": 1, "log": True}},
         "--space model.lr: a log range needs low > 0, got low=0"),
        ({"model.lr": {"low": 0.1, "hi": 1}},
         "--space model.lr: unknown range key(s) ['hi']; expected ['high', 'log', 'low', 'step']"),
        ({"model.optimizer": []},
         "--space model.optimizer: expected a range {low: L, high: H} or a non-empty list of "
         "choices, got []"),
    ],
)  # fmt: skip
def test_bad_space_entries(space, message):
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        check_space(space)


def test_corners_visit_every_choice_and_both_ends():
    space = {"model.lr": {"low": 0.1, "high": 1.0}, "model.optimizer": ["sgd", "adam"]}
    assert corners(space) == [
        {"model.lr": 0.1, "model.optimizer": "sgd"},
        {"model.lr": 1.0, "model.optimizer": "sgd"},
        {"model.lr": 0.1, "model.optimizer": "adam"},
    ]


def test_a_value_fit_refuses_stops_tune_before_any_trial(in_tmp, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["tune", *DIGITS, "--space", "{model.optimizer: [sgd, adamw]}", "--n_trials", "2"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("lightning-cv: error: --space model.optimizer=adamw: optimizer ")
    assert "\n" not in error and not (in_tmp / FOLDER).exists()
