"""Pictures that tell something: a resumed run's cover the whole run, and high accuracy reads.

A killed and resumed run's pictures cover the whole run, as its metrics.csv does.

The stopped run is a ``lightning-cv fit`` subprocess paused in the middle of epoch 1 (the
pattern of ``test_resume.py``). SIGKILL leaves the checkpoint of epoch 0's end, SIGTERM one of
that step; ``--ckpt_path last`` resumes from it, and ``training_curves.csv`` and
``learning_rate.csv`` must hold the same epochs, steps and rates as a run never stopped.

At 99.5% accuracy (10 classes of about 1,000 test images) the class report, the confusion
matrix and the training curves choose their digits and colour scales so that the classes and
the mistakes stay apart; the pure helpers that decide it are tested at 99.5% and at 90%.
"""

import csv
import math
import signal
from pathlib import Path

import numpy as np
import pytest

from lightning_cv.callbacks.class_report import class_report, colour_limits, decimals_near_one
from lightning_cv.callbacks.confusion_matrix import fraction_decimals, log_colour_limits
from lightning_cv.callbacks.curves import best_validation
from lightning_cv.cli import main

from . import test_resume
from .test_resume import RUN, STEPS_PER_EPOCH, wait_until_paused

start = test_resume.start  # the fixtures that start a run to be killed, one torch thread
one_thread = test_resume.one_thread


def read_rows(path: Path) -> list[dict[str, float]]:
    rows = csv.DictReader(path.open())
    return [{key: float(value) for key, value in row.items()} for row in rows]


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_resumed_run_draws_its_pictures_from_step_0(start, in_tmp, one_thread, stop):
    args = [*RUN, "--trainer.max_epochs", "2", "--test_after_fit", "false"]
    stopped = [*args, "--trainer.logger.name", "stopped"]
    process = start(stopped)
    main([*args, "--trainer.logger.name", "reference"])  # meanwhile, on the other core
    wait_until_paused(process, in_tmp)
    process.send_signal(stop)
    assert process.wait(timeout=60) in (-signal.SIGKILL, 0, 143)

    main([*stopped, "--ckpt_path", "last"])
    reference, resumed = (in_tmp / "runs" / name / "version_0" for name in ("reference", "stopped"))
    rates = read_rows(resumed / "learning_rate.csv")
    assert [row["step"] for row in rates] == list(range(2 * STEPS_PER_EPOCH))
    assert rates == read_rows(reference / "learning_rate.csv")
    curves = read_rows(resumed / "training_curves.csv")
    expected = read_rows(reference / "training_curves.csv")
    assert [row["epoch"] for row in curves] == [0, 1]
    assert curves[0] == expected[0]  # epoch 0 ran in the stopped process
    if stop == signal.SIGKILL:  # resumed at an epoch end: epoch 1 repeats the reference's
        assert curves[1] == pytest.approx(expected[1], abs=1e-6)
    else:  # resumed mid-epoch: the rest of epoch 1 ran on other batches, but it has values
        assert not any(math.isnan(value) for value in curves[1].values())
    for name in ("learning_rate.png", "training_curves.png"):
        assert (resumed / name).stat().st_size > 0


# high accuracy: 10 classes of MNIST's test sizes, each class's mistakes taken for the next class

SUPPORT = np.array([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
MISTAKES = {  # per class; 50 in all at 99.5% accuracy, 1,000 at 90%
    99.5: np.array([2, 1, 3, 4, 5, 5, 6, 7, 8, 9]),
    90: np.array([40, 60, 80, 90, 100, 110, 120, 130, 130, 140]),
}


def confusion(accuracy: float) -> np.ndarray:
    mistakes = MISTAKES[accuracy]
    matrix = np.diag(SUPPORT - mistakes)
    matrix[np.arange(10), (np.arange(10) + 1) % 10] = mistakes
    assert np.trace(matrix) / matrix.sum() == pytest.approx(accuracy / 100, abs=1e-3)
    return matrix


def table_scores(matrix: np.ndarray) -> np.ndarray:
    report = class_report(matrix)
    return np.stack([report[name] for name in ("precision", "recall", "f1")])


def test_the_class_report_separates_the_classes_at_995_percent():
    scores = table_scores(confusion(99.5))
    assert scores.min() == pytest.approx(978 / 987)  # precision of 0: 9 nines taken for 0s
    assert decimals_near_one(scores) == 4
    assert len({f"{value:.4f}" for value in scores.flat}) > 10  # at 2 decimals: 1.00 and 0.99
    assert colour_limits(scores) == (0.99, 1.0)  # the weakest class red, a perfect one green


def test_the_class_report_keeps_two_decimals_at_90_percent():
    scores = table_scores(confusion(90))
    assert scores.min() == pytest.approx(1 - 140 / 1009)  # recall of class 9
    assert decimals_near_one(scores) == 2
    assert colour_limits(scores) == (0.8, 1.0)


def test_a_class_never_predicted_spans_the_whole_colour_scale():
    matrix = confusion(99.5)
    matrix[3, 4] += matrix[3, 3]
    matrix[3, 3] = 0  # class 3 is never predicted: precision, recall and F1 are 0
    scores = table_scores(matrix)
    assert (decimals_near_one(scores), colour_limits(scores)) == (2, (0.0, 1.0))
    assert decimals_near_one(np.ones(3)) == 2 and colour_limits(np.ones(3)) == (0.0, 1.0)


@pytest.mark.parametrize(("accuracy", "decimals"), [(99.5, 4), (90, 2)])
def test_the_recall_panel_never_prints_a_mistake_as_zero(accuracy, decimals):
    matrix = confusion(accuracy)
    recall = matrix / matrix.sum(axis=1, keepdims=True)
    assert fraction_decimals(recall) == decimals  # one in 1,135 is 0.0009, not 0.00
    printed = [float(f"{value:.{decimals}f}") for value in recall[matrix > 0]]
    assert min(printed) > 0


def test_one_mistake_in_a_thousand_is_coloured_on_a_log_scale():
    matrix = confusion(99.5)
    assert log_colour_limits(matrix) == (1.0, 1134.0)  # from one mistake to class 1's hits
    recall = matrix / matrix.sum(axis=1, keepdims=True)
    low, high = log_colour_limits(recall)
    assert (low, high) == (pytest.approx(1 / 1135), pytest.approx(1134 / 1135))
    assert log_colour_limits(np.diag([5, 5])) == (0.5, 5.0)  # no mistakes: a decade below
    assert log_colour_limits(np.zeros((2, 2))) == (0.1, 1.0)


def test_the_best_validation_accuracy_reads_with_the_digits_that_tell_it_apart():
    def rows(val_acc):
        return [[epoch, 0.1, 0.1, 0.99, value] for epoch, value in enumerate(val_acc)]

    assert best_validation(rows([0.98, 0.9962, 0.9958])) == (1, "best val 0.9962 (epoch 1)")
    assert best_validation(rows([0.8912, 0.8517])) == (0, "best val 0.891 (epoch 0)")
    assert best_validation(rows([math.nan, 0.5])) == (1, "best val 0.500 (epoch 1)")
    assert best_validation(rows([math.nan])) is None  # no validation: no line, no label
