"""A killed and resumed run's pictures cover the whole run, as its metrics.csv does.

The stopped run is a ``lightning-cv fit`` subprocess paused in the middle of epoch 1 (the
pattern of ``test_resume.py``). SIGKILL leaves the checkpoint of epoch 0's end, SIGTERM one of
that step; ``--ckpt_path last`` resumes from it, and ``training_curves.csv`` and
``learning_rate.csv`` must hold the same epochs, steps and rates as a run never stopped.
"""

import csv
import math
import signal
from pathlib import Path

import pytest

from lightning_cv._main import main

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
