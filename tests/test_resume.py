"""Kill a real training run (SIGKILL, SIGTERM, with CSV and W&B loggers) and resume it.

The killed runs are ``lightning-cv fit`` subprocesses; a test callback pauses them at a known
step in the middle of an epoch so the signal lands there however busy the machine is. The
resumed and the reference runs go through the same ``main()`` in this process.
"""

import contextlib
import csv
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from jsonargparse import Namespace
from lightning.pytorch.utilities.exceptions import SIGTERMException

from lightning_cv.callbacks.interrupt import Resumable, set_random_state
from lightning_cv.cli import main
from lightning_cv.cli._resume import find_last_checkpoint, resume_last_run

from .conftest import REPO

STEPS_PER_EPOCH = 16
QUICK = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
# quickstart (LeNet-5 on the embedded digits), 16 steps per epoch, deterministic on the CPU
RUN = [
    "fit",
    "--config", str(REPO / "recipes" / "quickstart.yaml"),
    "--trainer.limit_train_batches", str(STEPS_PER_EPOCH),
    "--trainer.deterministic", "true",
    "--data.train_transform", "eval",
    *QUICK,
]  # fmt: skip
PAUSE_STEP = STEPS_PER_EPOCH + 8  # epoch 1, batch 8


@pytest.fixture
def one_thread():
    """One torch thread in this process and its runs (as in the subprocesses), and the
    deterministic flag that ``--trainer.deterministic`` sets put back afterwards."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


@pytest.fixture
def start(in_tmp):
    """Start ``lightning-cv <args>`` to pause before step ``PAUSE_STEP`` (output in
    ``killed.log``); whatever still runs at the end of the test is killed."""
    processes = []

    def start_run(args: list[str]) -> subprocess.Popen:
        pause = (
            "--trainer.callbacks+={class_path: tests.robustness.faults.PauseAtStep, "
            f"init_args: {{step: {PAUSE_STEP}, marker: {in_tmp / 'paused'}}}}}"
        )
        env = {
            # a W&B service this test process started must not serve the run to be killed:
            # a separate job has its own, and a shared one would keep the run id busy
            **{key: value for key, value in os.environ.items() if key != "WANDB_SERVICE"},
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1",
        }
        with open(in_tmp / "killed.log", "w") as out:
            command = [sys.executable, "-m", "lightning_cv", *args, pause]
            processes.append(subprocess.Popen(command, env=env, stdout=out, stderr=out))
        return processes[-1]

    yield start_run
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_until_paused(process: subprocess.Popen, folder: Path) -> None:
    marker, deadline = folder / "paused", time.monotonic() + 300
    while not marker.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            log = (folder / "killed.log").read_text()[-3000:]
            pytest.fail(f"the run ended or hung before pausing:\n{log}")
        time.sleep(0.05)
    assert marker.read_text() == "1 8\n"  # epoch 1, batch 8: in the middle of an epoch


def saved_step(path: Path) -> tuple[int, int]:
    checkpoint = torch.load(path, weights_only=True)
    return checkpoint["global_step"], checkpoint["epoch"]


def final_test_metrics(folder: Path) -> dict[str, float]:
    rows = list(csv.DictReader((folder / "metrics.csv").open()))
    row = next(row for row in rows if row.get("test/acc"))
    return {key: float(row[key]) for key in ("test/acc", "test/loss")}


@pytest.mark.parametrize("pipeline", ["batch", "sample"])
def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(
    start, in_tmp, one_thread, pipeline
):
    args = [*RUN, "--trainer.max_epochs", "2", "--data.pipeline", pipeline]
    killed = [*args, "--trainer.logger.name", "killed"]
    process = start(killed)
    main([*args, "--trainer.logger.name", "reference"])  # meanwhile, on the other core
    expected = final_test_metrics(in_tmp / "runs" / "reference" / "version_0")

    wait_until_paused(process, in_tmp)
    run = in_tmp / "runs" / "killed" / "version_0"
    assert saved_step(run / "checkpoints" / "last.ckpt") == (STEPS_PER_EPOCH, 0)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL

    main([*killed, "--ckpt_path", "last"])
    assert sorted(path.name for path in run.parent.iterdir()) == ["version_0"]
    assert saved_step(run / "checkpoints" / "last.ckpt") == (2 * STEPS_PER_EPOCH, 1)
    resumed = final_test_metrics(run)
    assert resumed["test/acc"] == expected["test/acc"]
    assert resumed["test/loss"] == pytest.approx(expected["test/loss"], abs=1e-6)
    assert (run / "config.yaml").is_file()


def test_sigterm_saves_the_step_and_the_run_resumes_from_it(start, in_tmp, one_thread):
    args = [*RUN, "--trainer.max_epochs", "2", "--test_after_fit", "false"]
    process = start([*args, "--trainer.logger.name", "stopped"])
    wait_until_paused(process, in_tmp)
    process.send_signal(signal.SIGTERM)
    # 0 (Lightning's SystemExit()) until main() maps it to 143: test_sigterm_exits_with_143
    assert process.wait(timeout=60) in (0, 143)
    last = Path("runs/stopped/version_0/checkpoints/last.ckpt")
    # the paused batch still ran; Lightning stops after it: step 25 is mid-epoch 1
    assert saved_step(in_tmp / last) == (PAUSE_STEP + 1, 1)
    saved = f"SIGTERM: saved {last} at step {PAUSE_STEP + 1} (epoch 1); continue with "
    assert f"{saved}--ckpt_path last" in (in_tmp / "killed.log").read_text()

    main([*args, "--trainer.logger.name", "stopped", "--ckpt_path", "last"])
    assert saved_step(in_tmp / last) == (2 * STEPS_PER_EPOCH, 1)


def end_wandb_service(pid: int) -> None:
    """End the W&B service of a killed run, as a scheduler ending the whole job would.

    ``wandb-core`` runs in its own session with ``--pid <trainer pid>`` and otherwise keeps
    the run id busy until it notices that its parent is gone.
    """
    for entry in Path("/proc").iterdir():
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"wandb-core") and str(pid).encode() in args:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(entry.name), signal.SIGKILL)


def test_a_wandb_run_resumes_under_the_same_run_id(start, in_tmp, one_thread):
    args = [
        *RUN, "--trainer.max_epochs", "2", "--test_after_fit", "false",
        "--trainer.logger", "WandbLogger", "--trainer.logger.project", "lcv-resume",
    ]  # fmt: skip
    process = start(args)
    wait_until_paused(process, in_tmp)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    end_wandb_service(process.pid)
    (run_id,) = [path.name for path in (in_tmp / "runs" / "lcv-resume").iterdir()]

    main([*args, "--ckpt_path", "last"])
    assert [path.name for path in (in_tmp / "runs" / "lcv-resume").iterdir()] == [run_id]
    offline_runs = sorted((in_tmp / "runs" / "wandb").glob("offline-run-*"))
    assert {path.name.rsplit("-", 1)[1] for path in offline_runs} == {run_id}
    checkpoint = in_tmp / "runs" / "lcv-resume" / run_id / "checkpoints" / "last.ckpt"
    assert saved_step(checkpoint) == (2 * STEPS_PER_EPOCH, 1)


def test_a_nan_loss_leaves_the_last_good_checkpoint(in_tmp, one_thread, capsys):
    poison = (
        "--trainer.callbacks+={class_path: tests.robustness.faults.PoisonAtStep, "
        f"init_args: {{step: {PAUSE_STEP}}}}}"
    )
    with pytest.raises(SystemExit) as exit_info:
        main([*RUN, "--trainer.max_epochs", "2", "--test_after_fit", "false", poison])
    assert exit_info.value.code == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line.startswith(
        f"lightning-cv: error: training stopped: the loss is nan at step {PAUSE_STEP} (epoch 1, "
    )
    folder = in_tmp / "runs" / "quickstart" / "version_0" / "checkpoints"
    assert saved_step(folder / "last.ckpt") == (STEPS_PER_EPOCH, 0)
    assert len(list(folder.iterdir())) == 2  # last and best, both of epoch 0


def test_sigterm_exits_with_143(monkeypatch, capsys):
    def stopped(args):
        raise SIGTERMException

    monkeypatch.setattr("lightning_cv.cli.lightning_cli.LightningCVCLI", stopped)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit"])
    assert exit_info.value.code == 143  # 128 + SIGTERM, as a shell reports a job it stopped
    assert capsys.readouterr().err == "lightning-cv: stopped by SIGTERM\n"


def test_last_checkpoint_holds_the_last_epoch_when_val_acc_stalls(in_tmp, one_thread):
    main(
        [
            "fit", "--config", str(REPO / "recipes" / "quickstart.yaml"),
            "--model.lr", "1e-9",  # the predictions, and so val/acc, stay the same
            "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "2",
            "--trainer.limit_val_batches", "2", "--test_after_fit", "false", *QUICK,
        ]
    )  # fmt: skip
    folder = in_tmp / "runs" / "quickstart" / "version_0" / "checkpoints"
    assert saved_step(folder / "last.ckpt") == (4, 1)


@pytest.mark.parametrize("pipeline", ["batch", "sample"])
def test_a_resumed_run_repeats_the_augmentations(in_tmp, one_thread, pipeline):
    args = [
        "fit", "--config", str(REPO / "recipes" / "quickstart.yaml"),
        "--trainer.limit_train_batches", "4", "--trainer.limit_val_batches", "1",
        "--trainer.deterministic", "true", "--test_after_fit", "false", *QUICK,
        "--data.pipeline", pipeline,
    ]  # fmt: skip
    args += ["--trainer.max_epochs", "2"]
    main([*args, "--trainer.logger.name", "reference"])
    # stopped after epoch 0 as a kill would, with the same schedule (its length is max_epochs)
    main([*args, "--trainer.logger.name", "stopped", "--trainer.max_steps", "4"])
    main([*args, "--trainer.logger.name", "stopped", "--ckpt_path", "last"])
    reference, resumed = (
        torch.load(
            in_tmp / "runs" / name / "version_0" / "checkpoints" / "last.ckpt", weights_only=True
        )
        for name in ("reference", "stopped")
    )
    assert resumed["global_step"] == reference["global_step"] == 8
    assert all(torch.equal(reference["state_dict"][key], value)
               for key, value in resumed["state_dict"].items())  # fmt: skip
    # the resumed run appended to its metrics.csv: the first process's rows are still there,
    # and the learning rate of every step is the uninterrupted run's
    logged = {
        name: lr_rows(in_tmp / "runs" / name / "version_0") for name in ("reference", "stopped")
    }
    assert logged["stopped"] == logged["reference"] == [(0, 0.002), (4, 0.001)]  # per epoch


def lr_rows(run: Path) -> list[tuple[int, float]]:
    """``(step, lr)`` rows of a run's metrics.csv, in order."""
    rows = csv.DictReader((run / "metrics.csv").open())
    return [(int(row["step"]), float(row["lr-Adam"])) for row in rows if row.get("lr-Adam")]


def test_a_resume_with_another_schedule_length_is_refused(in_tmp, one_thread, capsys):
    args = [
        "fit", "--config", str(REPO / "recipes" / "quickstart.yaml"),
        "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
        "--test_after_fit", "false", *QUICK,
    ]  # fmt: skip
    main([*args, "--trainer.max_epochs", "1"])
    last = in_tmp / "runs" / "quickstart" / "version_0" / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--trainer.max_epochs", "3", "--ckpt_path", "last"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "lightning-cv: error: the checkpoint's cosine schedule spans 1 epochs, this run 3: a "
        "resumed schedule keeps its length; resume with the first run's --trainer.max_epochs "
        "and --trainer.max_steps, or start a new run"
    )
    assert last.read_bytes() == before


# resume_last_run and its helpers, without a Trainer


def write_run(root: Path, run: str, mtime: float) -> Path:
    checkpoint = root / run / "checkpoints" / "last.ckpt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"")
    os.utime(checkpoint, (mtime, mtime))
    return checkpoint


def fit_config(class_path: str, ckpt_path: str | None = "last", **init_args) -> Namespace:
    """The shape of ``cli.config.fit`` that resume_last_run reads and changes."""
    logger = Namespace(class_path=class_path, init_args=Namespace(**init_args))
    return Namespace(ckpt_path=ckpt_path, trainer=Namespace(logger=logger, default_root_dir=None))


CSV_LOGGER = "lightning.pytorch.loggers.CSVLogger"
WANDB_LOGGER = "lightning.pytorch.loggers.WandbLogger"


def test_the_newest_last_checkpoint_wins(in_tmp):
    root = in_tmp / "runs" / "quickstart"
    write_run(root, "version_0", mtime=1000)
    newest = write_run(root, "version_1", mtime=3000)
    write_run(root, "version_2", mtime=2000)
    (root / "version_3" / "checkpoints").mkdir(parents=True)  # killed before its first epoch
    assert find_last_checkpoint(root) == newest
    assert find_last_checkpoint(in_tmp / "nothing") is None

    config = fit_config(CSV_LOGGER, save_dir="runs", name="quickstart", version=None)
    assert resume_last_run(config) == Path("runs/quickstart/version_1/checkpoints/last.ckpt")
    assert config.ckpt_path == str(Path("runs/quickstart/version_1/checkpoints/last.ckpt"))
    assert config.trainer.logger.init_args.version == 1


def test_a_run_started_from_its_saved_config_resumes_too(in_tmp):
    # a run folder's config.yaml names the CSV logger the CLI ran, RunCSVLogger
    write_run(in_tmp / "runs" / "quickstart", "version_2", mtime=1000)
    config = fit_config(
        "lightning_cv.cli._csv_logger.RunCSVLogger",
        save_dir="runs",
        name="quickstart",
        version=None,
    )
    assert resume_last_run(config) == Path("runs/quickstart/version_2/checkpoints/last.ckpt")
    assert config.trainer.logger.init_args.version == 2


def test_a_named_version_and_a_logger_without_name(in_tmp):
    write_run(in_tmp / "runs", "baseline", mtime=1000)
    config = fit_config(CSV_LOGGER, save_dir="runs", name="", version=None)
    assert resume_last_run(config) == Path("runs/baseline/checkpoints/last.ckpt")
    assert config.trainer.logger.init_args.version == "baseline"


def test_wandb_continues_the_run_id(in_tmp, monkeypatch):
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    write_run(in_tmp / "runs" / "digits", "k3x9a2b1", mtime=1000)
    config = fit_config(WANDB_LOGGER, save_dir="runs", project="digits", id=None, resume=None)
    assert resume_last_run(config) == Path("runs/digits/k3x9a2b1/checkpoints/last.ckpt")
    assert config.trainer.logger.init_args.id == "k3x9a2b1"
    assert config.trainer.logger.init_args.resume == "allow"

    write_run(in_tmp / "lightning_logs", "p0q1r2s3", mtime=1000)  # W&B's default project
    config = fit_config(WANDB_LOGGER, save_dir=None, dir=None, project=None, id=None)
    assert resume_last_run(config) == Path(in_tmp, "lightning_logs/p0q1r2s3/checkpoints/last.ckpt")


@pytest.mark.parametrize(
    "config",
    [
        fit_config(CSV_LOGGER, ckpt_path=None, save_dir="runs", name="quickstart", version=None),
        fit_config(CSV_LOGGER, ckpt_path="best", save_dir="runs", name="quickstart", version=None),
        fit_config(CSV_LOGGER, save_dir="runs", name="quickstart", version=0),
        fit_config(WANDB_LOGGER, save_dir="runs", project="quickstart", id="k3x9a2b1"),
        fit_config(WANDB_LOGGER, save_dir="runs", project="quickstart", version="k3x9a2b1"),
        fit_config("lightning.pytorch.loggers.MLFlowLogger", save_dir="runs"),
        fit_config(CSV_LOGGER, save_dir="runs", name="empty", version=None),
    ],
    ids=["no-ckpt-path", "best", "explicit-version", "wandb-id", "wandb-version", "mlflow", "none"],
)
def test_nothing_changes_without_a_run_to_resume(config, in_tmp):
    write_run(in_tmp / "runs" / "quickstart", "version_0", mtime=1000)
    before = str(config)
    assert resume_last_run(config) is None
    assert str(config) == before


def test_the_random_state_survives_a_weights_only_checkpoint(tmp_path):
    path = tmp_path / "state.ckpt"
    torch.save({"callbacks": {"Resumable": Resumable().state_dict()}}, path)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    set_random_state(torch.load(path, weights_only=True)["callbacks"]["Resumable"]["random_state"])
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1])
    assert expected[2] == again[2]


@pytest.mark.upstream
def test_lightning_csv_writer_internals_that_run_csv_logger_overrides(tmp_path):
    # lightning_cv/cli/_csv_logger.py overrides ExperimentWriter._check_log_dir_exists (which
    # deletes metrics.csv) and reads CSVLogger._fs and ._experiment: no public hook keeps the file
    import lightning
    from lightning.pytorch.loggers.csv_logs import CSVLogger, ExperimentWriter

    from lightning_cv.cli._csv_logger import RunCSVLogger

    upstream = f"Lightning {lightning.__version__} changed the CSV writer RunCSVLogger overrides"
    earlier = b"epoch,step,train/loss\r\n0,15,2.25\r\n"  # as csv writes it
    for folder in ("lightning", "ours"):
        (tmp_path / folder / "version_0").mkdir(parents=True)
        (tmp_path / folder / "version_0" / "metrics.csv").write_bytes(earlier)
    with pytest.warns(UserWarning, match="will be deleted"):
        ExperimentWriter(log_dir=str(tmp_path / "lightning" / "version_0"))
    assert not (tmp_path / "lightning" / "version_0" / "metrics.csv").exists(), (
        f"{upstream}: its writer keeps metrics.csv now, so lightning_cv/cli/_csv_logger.py's "
        "_RunWriter may go"
    )
    assert hasattr(CSVLogger(tmp_path), "_fs"), f"{upstream}: CSVLogger._fs is gone"
    logger = RunCSVLogger(tmp_path, name="ours", version=0)
    assert logger.experiment is logger._experiment, f"{upstream}: CSVLogger._experiment is gone"
    metrics = tmp_path / "ours" / "version_0" / "metrics.csv"
    assert metrics.read_bytes() == earlier, f"{upstream}: _check_log_dir_exists is not called"
    logger.log_metrics({"train/loss": 1.5, "epoch": 1}, step=31)
    logger.save()
    assert metrics.read_bytes() == earlier + b"1,31,1.5\r\n"
