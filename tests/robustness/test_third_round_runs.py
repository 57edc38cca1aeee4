"""Bad input, third round: run folders and the errors Lightning raises once a run has started.

Issue 26's items 7 (two runs resuming one folder), 8 (a link loop named like an image) and the
run-level parts of 11 (Lightning's option errors after the Trainer is built, a file where an
output folder should be). Each test builds the mistake in its real form, runs the real command
and asserts the exact line and that the user's files are unchanged.
"""

import os
import signal
import subprocess
import sys
import time

import pytest
from lightning.pytorch.plugins.io import AsyncCheckpointIO

from lightning_cv import AtomicCheckpointIO
from lightning_cv.cli import LightningCVCLI, main
from lightning_cv.data import ImageFolderDataModule
from lightning_cv.runs import LOCK_NAME, lock_run_folder

from ..conftest import REPO
from ..fake_folders import snapshot, write_image_folder
from .test_second_round import one_line_error

QUICK = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
ONE_EPOCH = [
    "fit", "--config", str(REPO / "recipes" / "quickstart.yaml"),
    "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
    "--trainer.limit_val_batches", "1", *QUICK,
]  # fmt: skip
NORMALISED = {"image_size": 16, "mean": (0.5,) * 3, "std": (0.25,) * 3}


# ---------------------------------------------------------------- 7: one run per run folder


def test_a_second_run_resuming_a_folder_in_use_stops_naming_the_folder_and_process(in_tmp, capsys):
    """A paused ``fit`` holds its folder; ``fit --ckpt_path last`` started beside it stops."""
    pause = (
        "--trainer.callbacks+={class_path: tests.robustness.faults.PauseAtStep, "
        f"init_args: {{step: 2, marker: {in_tmp / 'paused'}}}}}"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    first = [*ONE_EPOCH, "--trainer.max_epochs", "2", pause]
    with open(in_tmp / "first.log", "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "lightning_cv", *first], env=env,
                                   stdout=log, stderr=log)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not (in_tmp / "paused").exists():  # after epoch 0: last.ckpt is on disk
            assert process.poll() is None and time.monotonic() < deadline, (
                in_tmp / "first.log"
            ).read_text()[-2000:]
            time.sleep(0.05)
        folder = in_tmp / "runs" / "quickstart" / "version_0"
        assert (folder / LOCK_NAME).read_text() == f"{process.pid}\n"
        before = snapshot(folder)
        line = one_line_error(capsys, [*ONE_EPOCH, "--ckpt_path", "last"])
        assert line == (
            f"run folder {str(folder.relative_to(in_tmp))!r} is in use by another lightning-cv "
            f"process (pid {process.pid}); wait for it to end, or start a new run without "
            "--ckpt_path"
        )
        assert snapshot(folder) == before
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    with lock_run_folder(folder):  # the kernel's lock ended with the killed process
        assert (folder / LOCK_NAME).read_text() == f"{os.getpid()}\n"
    assert not (folder / LOCK_NAME).exists()


def test_a_finished_run_leaves_no_lock_file_and_lists_none(in_tmp, capsys):
    main(ONE_EPOCH)
    folder = in_tmp / "runs" / "quickstart" / "version_0"
    assert not (folder / LOCK_NAME).exists()
    assert LOCK_NAME not in capsys.readouterr().out


def test_every_cli_run_writes_checkpoints_through_the_atomic_checkpoint_io(in_tmp):
    trainer = LightningCVCLI(ONE_EPOCH[1:], run=False).trainer
    assert type(trainer.strategy.checkpoint_io) is AtomicCheckpointIO
    plugin = "lightning.pytorch.plugins.io.AsyncCheckpointIO"  # a user's own plugin is kept
    own = LightningCVCLI([*ONE_EPOCH[1:], "--trainer.plugins", plugin], run=False)
    assert type(own.trainer.strategy.checkpoint_io) is AsyncCheckpointIO


# ---------------------------------------------------------------- 8: links that lead nowhere


@pytest.mark.parametrize(
    ("link", "target", "problem"),
    [
        ("loop.jpg", "loop.jpg", "a loop of links that never reaches a file"),
        ("gone.jpg", "nowhere.jpg", "which does not exist"),
    ],
)
def test_an_image_link_that_reaches_no_file_is_refused_in_a_folder(tmp_path, link, target,
                                                                    problem):  # fmt: skip
    root = tmp_path / "photos"
    write_image_folder(root, ("cat", "dog"), per_class=3)
    (root / "cat" / link).symlink_to(target)
    before = snapshot(tmp_path)
    with pytest.raises(Exception) as error:
        ImageFolderDataModule(root, **NORMALISED)
    assert str(error.value) == (
        f"ImageFolderDataModule: image file {str(root / 'cat' / link)!r} is a link to "
        f"{target!r}, {problem}; fix or remove the link"
    )
    assert snapshot(tmp_path) == before


def test_a_link_loop_listed_in_a_csv_is_refused_by_name_and_leaves_no_run_folder(in_tmp, capsys):
    root = in_tmp / "photos"
    write_image_folder(root, ("cat", "dog"), per_class=4)
    rows = [f"{p.relative_to(root)},{p.parent.name}" for p in sorted(root.rglob("*.jpg"))]
    (root / "cat" / "b.jpg").symlink_to("a.jpg")
    (root / "cat" / "a.jpg").symlink_to("b.jpg")  # two links that point at each other
    (root / "list.csv").write_text("\n".join(["image,label", *rows, "cat/a.jpg,cat"]) + "\n")
    before = snapshot(in_tmp)
    data = [
        "--data", "CSVDataModule", "--data.csv_file", "photos/list.csv", "--data.image_size", "16",
        "--data.mean", "[0.5, 0.5, 0.5]", "--data.std", "[0.25, 0.25, 0.25]",
    ]  # fmt: skip
    line = one_line_error(capsys, [*ONE_EPOCH, *data])
    assert line == (
        "CSV 'photos/list.csv': image file 'photos/cat/a.jpg' is a link to 'b.jpg', a loop of "
        "links that never reaches a file; fix or remove the link"
    )
    assert snapshot(in_tmp) == before  # the run folder made for the run is gone again
    assert not (in_tmp / "runs" / "quickstart" / "version_0").exists()


# ---------------------------------------------------------------- 11: errors of a started run


def test_resuming_with_fewer_epochs_than_done_is_refused_before_anything_is_written(in_tmp, capsys):
    constant = ["--model.scheduler", "null"]  # else the schedule's length check refuses it
    main([*ONE_EPOCH, *constant, "--trainer.max_epochs", "3"])
    run = in_tmp / "runs" / "quickstart" / "version_0"
    before = snapshot(run)
    capsys.readouterr()
    line = one_line_error(capsys, [*ONE_EPOCH, *constant, "--ckpt_path", "last"])
    last = run / "checkpoints" / "last.ckpt"
    assert line == (
        f"checkpoint {str(last.relative_to(in_tmp))!r} was saved at epoch index 2, past this "
        "run's --trainer.max_epochs 1; resume with a larger --trainer.max_epochs (the run's "
        "total, not the epochs still to run)"
    )
    assert snapshot(run) == before


def test_lightnings_own_option_errors_during_a_run_are_one_line(in_tmp, capsys):
    watch = [
        "--trainer.callbacks+=ModelCheckpoint",
        "--trainer.callbacks.monitor", "val/accuracy",  # the key is val/acc
    ]  # fmt: skip
    line = one_line_error(capsys, [*ONE_EPOCH, *watch])
    assert line.startswith(
        "`ModelCheckpoint(monitor='val/accuracy')` could not find the monitored key in the "
        "returned metrics: "
    )


@pytest.mark.parametrize(
    "options",
    [
        ["--trainer.logger.save_dir", "out"],
        ["--trainer.logger", "false", "--trainer.default_root_dir", "out"],
    ],
)
def test_a_file_where_an_output_folder_goes_is_named(in_tmp, capsys, options):
    (in_tmp / "out").write_text("the user's notes\n")
    line = one_line_error(capsys, [*ONE_EPOCH, *options])
    assert line.startswith("'out/")
    assert line.endswith(
        " cannot be made: 'out' is a file, not a folder; move it, or write elsewhere "
        "(--trainer.default_root_dir, the logger's save_dir)"
    )
    assert (in_tmp / "out").read_text() == "the user's notes\n"
