"""Issue 23: the progress bar refreshed a few times an epoch, the step loss logged only for a
reader, the cheaper hook calls and attribute sets of a step, the heap frozen while training, and
benchmarks/time_to_accuracy.py's clocks and its documented ``fit`` side."""

import argparse
import gc
import importlib
import os
import sys
import time
from unittest import mock

import lightning.pytorch as L
import pytest
import torch
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.profilers import SimpleProfiler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_cv import ConfigError, DigitsDataModule, ImageClassifier
from lightning_cv.callbacks import GCFreeze
from lightning_cv.cli import LightningCVCLI
from lightning_cv.cli._progress import EpochProgressBar, refresh_interval
from lightning_cv.cli._unprofiled import Unprofiled
from tests.conftest import REPO

BENCHMARKS = REPO / "benchmarks"


def _benchmark():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        with mock.patch.dict(os.environ):  # it sets OMP_WAIT_POLICY for its own runs
            return importlib.import_module("time_to_accuracy")
    finally:
        sys.path.remove(str(BENCHMARKS))


time_to_accuracy = _benchmark()


# the progress bar and the step loss


def test_refresh_interval_spreads_the_refreshes_over_the_epoch():
    assert refresh_interval(422, 50) == 8  # MNIST at batch 128: 52 refreshes
    assert refresh_interval(45, 50) == 1  # the digits: every batch, as before
    assert refresh_interval(float("inf"), 50) == 1  # an iterable without a length


@pytest.mark.parametrize("refreshes", [0, -3, 2.5, True, "50"])
def test_a_bad_refresh_count_is_refused_naming_it(refreshes):
    with pytest.raises(ConfigError) as error:
        EpochProgressBar(refreshes=refreshes)
    assert str(error.value) == f"refreshes must be a positive integer, got {refreshes!r}"


class _RecordShownLosses(L.Callback):
    """Per batch: did the bar show this step's loss, and did the model log one for it?"""

    def __init__(self):
        self.fresh = []  # (batch, the bar's loss is this step's)
        self.logged = []  # (batch, train/loss_step is among the logged bar metrics)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        bar = trainer.progress_bar_callback
        if isinstance(bar, EpochProgressBar):  # what it shows after this batch, it wrote then
            bar.train_progress_bar.postfix = ""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = outputs["loss"].item()
        bar = trainer.progress_bar_callback
        if isinstance(bar, EpochProgressBar):  # the loss it shows, as tqdm writes it
            tqdm_bar = bar.train_progress_bar
            shown = f"train/loss_step={tqdm_bar.format_num(loss)}" in tqdm_bar.postfix.split(", ")
        else:
            shown = trainer.progress_bar_metrics.get("train/loss_step") == pytest.approx(loss)
        self.fresh.append((batch_idx + 1, shown))
        self.logged.append((batch_idx + 1, "train/loss_step" in trainer.progress_bar_metrics))


def _fit_ten_batches(tmp_path, bar, **trainer_options):
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(160, 1, 28, 28), torch.randint(0, 10, (160,)))
    record = _RecordShownLosses()
    model = ImageClassifier("lenet5", num_classes=10, in_channels=1, image_size=28, lr=0.01)
    trainer = L.Trainer(
        max_epochs=1, limit_val_batches=0, enable_model_summary=False, enable_checkpointing=False,
        default_root_dir=tmp_path, callbacks=[bar, record], **trainer_options,
    )  # fmt: skip
    trainer.fit(model, DataLoader(data, batch_size=16))  # 10 batches
    return trainer, record


def test_our_bar_shows_the_step_loss_on_its_refreshes_and_the_model_logs_none(tmp_path):
    trainer, record = _fit_ten_batches(tmp_path, EpochProgressBar(refreshes=3), logger=False)
    assert trainer.progress_bar_callback.refresh_rate == 3  # 10 batches // 3
    assert [batch for batch, fresh in record.fresh if fresh] == [3, 6, 9, 10]  # and the last
    assert not any(logged for _, logged in record.logged)  # read from the step's output


class _CountDraws(L.Callback):
    """Per batch, how often the bar drew itself in its ``on_train_batch_end`` (which runs
    before this callback's)."""

    def __init__(self):
        self.draws = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        tqdm_bar = trainer.progress_bar_callback.train_progress_bar
        if not hasattr(tqdm_bar, "draws"):
            tqdm_bar.draws, draw = 0, tqdm_bar.refresh

            def counted(*args, **kwargs):
                tqdm_bar.draws += 1
                return draw(*args, **kwargs)

            tqdm_bar.refresh = counted
        self.before = tqdm_bar.draws

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.draws.append(trainer.progress_bar_callback.train_progress_bar.draws - self.before)


def test_our_bar_draws_once_a_refresh_with_the_count_and_the_loss(tmp_path):
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(160, 1, 28, 28), torch.randint(0, 10, (160,)))
    counter = _CountDraws()
    trainer = L.Trainer(
        max_epochs=1, limit_val_batches=0, enable_model_summary=False, enable_checkpointing=False,
        default_root_dir=tmp_path, logger=False, callbacks=[EpochProgressBar(refreshes=3), counter],
    )  # fmt: skip
    model = ImageClassifier("lenet5", num_classes=10, in_channels=1, image_size=28, lr=0.01)
    trainer.fit(model, DataLoader(data, batch_size=16))  # 10 batches
    assert counter.draws == [0, 0, 1, 0, 0, 1, 0, 0, 1, 1]  # Lightning's bar: 2 at each
    tqdm_bar = trainer.progress_bar_callback.train_progress_bar
    assert tqdm_bar.n == 10 and "train/loss_step=" in tqdm_bar.postfix


def test_lightnings_own_bar_still_gets_every_steps_loss(tmp_path):
    _, record = _fit_ten_batches(tmp_path, TQDMProgressBar(), logger=False)
    assert all(fresh for _, fresh in record.fresh)


def test_the_logger_still_gets_the_step_loss_every_log_every_n_steps(tmp_path):
    import csv

    bar = EpochProgressBar(refreshes=2)  # refreshes at 5 and 10
    _fit_ten_batches(tmp_path, bar, logger=CSVLogger(tmp_path), log_every_n_steps=3)
    rows = list(csv.DictReader((tmp_path / "lightning_logs/version_0/metrics.csv").open()))
    assert [int(row["step"]) for row in rows if row["train/loss_step"]] == [2, 5, 8]


def _cli_trainer(*options: str) -> L.Trainer:
    args = ["--data", "DigitsDataModule", "--trainer.logger", "false", *options]
    return LightningCVCLI(args=args, run=False).trainer


def test_the_cli_refreshes_its_bar_fifty_times_an_epoch_unless_told_otherwise(in_tmp):
    assert type(_cli_trainer().progress_bar_callback) is EpochProgressBar
    assert _cli_trainer("--trainer.enable_progress_bar", "false").progress_bar_callback is None
    own = _cli_trainer("--trainer.callbacks+=TQDMProgressBar", "--trainer.callbacks.refresh_rate",
                       "5").progress_bar_callback  # fmt: skip
    assert type(own) is TQDMProgressBar and own.refresh_rate == 5


class _CallbacksSeen(L.Callback):
    """The types of the Trainer's callbacks at a training step and at the test."""

    def __init__(self) -> None:
        self.training: set[str] = set()
        self.testing: set[str] = set()

    def on_train_batch_end(self, trainer, *args) -> None:
        self.training = {type(callback).__name__ for callback in trainer.callbacks}

    def on_test_start(self, trainer, *args) -> None:
        self.testing = {type(callback).__name__ for callback in trainer.callbacks}


def _cli_watched_by(watcher: L.Callback, args: list[str]) -> LightningCVCLI:
    """``lightning-cv`` with ``watcher`` last among the Trainer's callbacks."""

    class _Watched(LightningCVCLI):
        def instantiate_trainer(self, **kwargs) -> L.Trainer:
            trainer = super().instantiate_trainer(**kwargs)
            trainer.callbacks.append(watcher)
            return trainer

    return _Watched(args=args)


def test_fit_trains_without_the_test_pictures_and_its_test_draws_them(in_tmp):
    """Every callback costs a training step six hook calls (7 us on a CPU): the pictures only
    a test draws join the Trainer for the test after fit."""
    seen = _CallbacksSeen()
    args = ["fit", "--data", "DigitsDataModule", "--trainer.max_epochs", "1",
            "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
            "--trainer.limit_test_batches", "1", "--test_after_fit", "true"]  # fmt: skip
    _cli_watched_by(seen, args)
    pictures = {"ConfusionMatrixPlot", "ClassReport", "MisclassifiedGrid"}
    assert not pictures & seen.training
    assert {"TrainingCurves", "LearningRatePlot", "_BestAccuracy"} <= seen.training
    assert pictures <= seen.testing
    folder = in_tmp / "runs" / "lightning-cv" / "version_0"
    for name in ("confusion_matrix.png", "class_report.png", "misclassified.png"):
        assert (folder / name).stat().st_size > 1000, name


# what a step costs beyond the hand-written loop


def test_a_plain_value_is_set_as_nn_module_sets_it():
    """ClassificationTask sets a plain value over an instance attribute without nn.Module's
    checks (Lightning names the running hook ~45 times a step); parameters, buffers and
    submodules still register as nn.Module registers them."""
    model = ImageClassifier("linear", num_classes=3, in_channels=1, image_size=4)
    model._current_fx_name = "training_step"
    model.note = None
    model.note = "plain"
    model.scale = nn.Parameter(torch.ones(2))
    model.extra = nn.Linear(2, 2)
    model.register_buffer("counts", torch.zeros(2))
    model.counts = torch.ones(2)
    assert model._current_fx_name == "training_step" and model.note == "plain"
    assert "scale" in dict(model.named_parameters())
    assert "extra" in dict(model.named_children())
    assert torch.equal(dict(model.named_buffers())["counts"], torch.ones(2))
    with pytest.raises(TypeError, match="cannot assign 'str' as parameter 'scale'"):
        model.scale = "text"


def test_the_cli_runs_unprofiled_unless_a_profiler_is_named(in_tmp):
    assert type(_cli_trainer().profiler) is Unprofiled
    assert type(_cli_trainer("--trainer.profiler", "simple").profiler) is SimpleProfiler
    with Unprofiled().profile("training_step") as action:
        assert action == "training_step"


class _FreezeCount(L.Callback):
    """Python's frozen object count during training; raises at the second step if told to."""

    def __init__(self, fail: bool = False) -> None:
        self.fail, self.counts = fail, []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.counts.append(gc.get_freeze_count())
        if self.fail and batch_idx == 1:
            raise RuntimeError("stopped at the second step")


def test_fit_freezes_the_heap_while_it_trains_and_unfreezes_it_after(in_tmp):
    """The objects alive at the start leave the collector's view: no full collection walks
    half a million of them in the middle of training."""
    seen = _FreezeCount()
    args = ["fit", "--data", "DigitsDataModule", "--trainer.max_epochs", "1",
            "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "0",
            "--trainer.logger", "false", "--trainer.enable_checkpointing", "false"]  # fmt: skip
    assert gc.get_freeze_count() == 0
    cli = _cli_watched_by(seen, args)
    assert [type(c) for c in cli.trainer.callbacks].count(GCFreeze) == 1
    assert len(seen.counts) == 3 and min(seen.counts) > 10_000
    assert gc.get_freeze_count() == 0


def test_the_heap_is_unfrozen_when_training_fails_and_left_alone_if_frozen_before(tmp_path):
    def fit(freeze: GCFreeze, watch: _FreezeCount) -> None:
        model = ImageClassifier("linear", num_classes=10, in_channels=1, image_size=8)
        trainer = L.Trainer(max_steps=3, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, default_root_dir=tmp_path,
                            callbacks=[freeze, watch])  # fmt: skip
        data = TensorDataset(torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,)))
        trainer.fit(model, DataLoader(data, batch_size=16))

    failing = _FreezeCount(fail=True)
    with pytest.raises(RuntimeError, match="stopped at the second step"):
        fit(GCFreeze(), failing)
    assert failing.counts[0] > 10_000 and gc.get_freeze_count() == 0
    gc.freeze()  # someone else's: GCFreeze neither adds to it nor undoes it
    try:
        fit(freeze := GCFreeze(), _FreezeCount())
        assert not freeze.froze and gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()


# the benchmark's clocks and its documented fit


def test_the_clock_leaves_out_what_it_was_paused_for():
    clock = time_to_accuracy.Clock()
    clock.pause()
    time.sleep(0.2)
    clock.resume()
    clock.resume()  # a second resume changes nothing
    process, wall = clock.read()
    assert 0 <= wall < 0.1 and 0 <= process < 0.1


def test_spread_gives_the_fastest_and_slowest_repeat_and_the_median_wall_time():
    runs = [time_to_accuracy.Run(0.9, [0.95], [2.0], 2.0, 3.0),
            time_to_accuracy.Run(0.9, [0.95], [2.4], 2.4, 2.9)]  # fmt: skip
    assert time_to_accuracy.spread({"plain": runs}) == {
        "plain": {"seconds_min": 2.0, "seconds_max": 2.4, "wall_seconds": 2.95}
    }


def test_the_fit_side_runs_the_documented_command_with_its_run_folder_elsewhere(in_tmp):
    data = DigitsDataModule(batch_size=32)
    data.setup("test")
    test = time_to_accuracy.normalised(data, data.test_set, None)
    args = argparse.Namespace(recipe=REPO / "recipes" / "quickstart.yaml", root=in_tmp,
                              max_epochs=2, train_limit=96)  # fmt: skip
    assert time_to_accuracy.fit_command(args) == [
        "fit", "--config", str(args.recipe), "--data.root", str(in_tmp),
        "--trainer.max_epochs", "2",
    ]  # fmt: skip
    run = time_to_accuracy.train_fit(args, test, target=2.0)  # never reached: both epochs
    assert run.images == 2 * 96 and len(run.accuracies) == 2
    assert all(0 <= acc <= 1 for acc in run.accuracies)
    assert (
        0 < run.epoch_seconds[0] < run.epoch_seconds[1] == pytest.approx(run.train_seconds, abs=0.5)
    )
    assert run.wall_seconds > 0 and run.eval_seconds > 0
    assert list(in_tmp.iterdir()) == []  # the run folder went to a temporary folder
    assert run.model is not None


def test_the_seeded_fit_command_adds_seed_everything(tmp_path):
    args = argparse.Namespace(recipe=REPO / "recipes" / "mnist_lenet5_1epoch.yaml", root=tmp_path,
                              max_epochs=None)  # fmt: skip
    assert time_to_accuracy.fit_command(args, seed=3) == [
        "fit", "--config", str(args.recipe), "--data.root", str(tmp_path),
        "--seed_everything", "3",
    ]  # fmt: skip
