"""ImageClassifier(step_batch_size=...): several optimizer steps per loaded batch, the same
steps on the same samples as loading one step's batch at a time."""

import csv
import math

import lightning.pytorch as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, StochasticWeightAveraging
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_cv import ConfigError, DigitsDataModule, ImageClassifier
from lightning_cv.callbacks import EMAWeightAveraging, Resumable
from lightning_cv.cli.lightning_cli import LightningCVCLI
from lightning_cv.step_batches import check_step_batches

from .conftest import REPO

STEP = 32  # samples per optimizer step
EPOCH_STEPS = math.ceil(1293 / STEP)  # the digits' training split: 41 steps, the last of 13


def model(step_batch_size: int | None = None, **options) -> ImageClassifier:
    """LeNet-5 for the 28-pixel digits, SGD with momentum on a one-cycle schedule per step."""
    return ImageClassifier(
        "lenet5", num_classes=10, in_channels=1, image_size=28, optimizer="sgd", lr=0.05,
        optimizer_kwargs={"momentum": 0.9}, scheduler="onecycle", scheduler_interval="step",
        step_batch_size=step_batch_size, **options,
    )  # fmt: skip


def digits(batch_size: int, pipeline: str = "batch") -> DigitsDataModule:
    return DigitsDataModule(
        image_size=28, batch_size=batch_size, train_transform="eval", pipeline=pipeline
    )


def trainer(tmp_path, **options) -> L.Trainer:
    defaults = {"max_epochs": 2, "logger": False, "enable_checkpointing": False,
                "enable_progress_bar": False, "enable_model_summary": False,
                "limit_val_batches": 0, "default_root_dir": tmp_path}  # fmt: skip
    return L.Trainer(**{**defaults, **options})


def fit(tmp_path, step_batch_size, batch_size, pipeline="batch", **options) -> ImageClassifier:
    """A seeded run; the trained model."""
    L.seed_everything(0, verbose=False)
    trained = model(step_batch_size)
    trainer(tmp_path, **options).fit(trained, datamodule=digits(batch_size, pipeline))
    return trained


def assert_same_weights(one: ImageClassifier, other: ImageClassifier) -> None:
    for (name, a), b in zip(one.state_dict().items(), other.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("pipeline", ["batch", "sample"])
def test_four_steps_a_batch_train_the_weights_of_one_step_a_batch(tmp_path, pipeline):
    one = fit(tmp_path, None, STEP, pipeline)
    four = fit(tmp_path, STEP, 4 * STEP, pipeline)
    assert not four.automatic_optimization and one.automatic_optimization
    assert four.trainer.global_step == one.trainer.global_step == 2 * EPOCH_STEPS
    assert four._schedule_total == one._schedule_total == 2 * EPOCH_STEPS
    assert_same_weights(one, four)
    lrs = [m.trainer.optimizers[0].param_groups[0]["lr"] for m in (one, four)]
    assert lrs[0] == lrs[1]


def test_a_step_limit_inside_a_batch_stops_there(tmp_path):
    one = fit(tmp_path, None, STEP, max_steps=10)
    four = fit(tmp_path, STEP, 4 * STEP, max_steps=10)
    assert four.trainer.global_step == 10 and four._schedule_total == 10
    assert_same_weights(one, four)


def test_limited_batches_count_four_steps_each(tmp_path):
    four = fit(tmp_path, STEP, 4 * STEP, limit_train_batches=3)
    assert four.trainer.global_step == four._schedule_total == 2 * 3 * 4


class StopAfterFirstEpoch(L.Callback):
    def on_train_epoch_end(self, trainer, pl_module) -> None:
        trainer.should_stop = True


@pytest.mark.parametrize("pipeline", ["batch", "sample"])
def test_a_run_resumed_from_its_epoch_end_checkpoint_ends_with_the_same_weights(tmp_path, pipeline):
    whole = fit(tmp_path / "whole", STEP, 4 * STEP, pipeline, callbacks=[Resumable()])
    saved = ModelCheckpoint(dirpath=tmp_path / "first", save_last=True)
    callbacks = [saved, Resumable(), StopAfterFirstEpoch()]
    first = fit(
        tmp_path / "first", STEP, 4 * STEP, pipeline, callbacks=callbacks, enable_checkpointing=True
    )
    assert first.trainer.global_step == EPOCH_STEPS
    L.seed_everything(0, verbose=False)  # as the command does; Resumable restores the rest
    resumed = model(STEP)
    run = trainer(tmp_path / "resumed", callbacks=[Resumable()])
    run.fit(resumed, datamodule=digits(4 * STEP, pipeline), ckpt_path=saved.last_model_path)
    assert run.global_step == 2 * EPOCH_STEPS
    assert_same_weights(whole, resumed)


def test_the_logger_writes_every_n_loaded_batches(tmp_path):
    L.seed_everything(0, verbose=False)
    logged = model(STEP)
    logger = CSVLogger(tmp_path, name="run", version=0)
    options = {"logger": logger, "log_every_n_steps": 2, "limit_train_batches": 6}
    trainer(tmp_path, max_epochs=1, **options).fit(logged, datamodule=digits(4 * STEP))
    with open(tmp_path / "run" / "version_0" / "metrics.csv") as file:
        rows = [row for row in csv.DictReader(file) if row["train/loss_step"]]
    assert [int(row["step"]) for row in rows] == [1, 3, 5]
    assert logged.trainer.global_step == 24


def test_the_options_are_checked_at_construction():
    with pytest.raises(ConfigError, match=r"^step_batch_size must be >= 1, got 0$"):
        model(0)
    with pytest.raises(
        ConfigError,
        match=r"^step_batch_size=32 steps the 'onecycle' schedule after every optimizer step: "
        r"set scheduler_interval 'step'$",
    ):
        ImageClassifier(step_batch_size=STEP, scheduler="onecycle", scheduler_interval="epoch")
    with pytest.raises(
        ConfigError,
        match=r"^step_batch_size=32 steps the schedule after every optimizer step, and 'plateau' "
        r"steps once per epoch: choose another scheduler or leave step_batch_size out$",
    ):
        ImageClassifier(step_batch_size=STEP, scheduler="plateau")


def test_a_batch_size_that_is_not_a_multiple_is_refused(tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"^step_batch_size=32 must divide the data's batch_size=100: each loaded batch is "
        r"split into optimizer steps of 32 samples$",
    ):
        trainer(tmp_path).fit(model(STEP), datamodule=digits(100))


def test_plain_loaders_and_weight_averaging_are_refused(tmp_path):
    data = digits(4 * STEP)
    data.setup("fit")
    with pytest.raises(
        ConfigError,
        match=r"^step_batch_size=32 splits the batches of a lightning-cv data module; this "
        r"run's data is a plain loader$",
    ):
        trainer(tmp_path).fit(model(STEP), train_dataloaders=data.train_dataloader())
    for averaging in (EMAWeightAveraging(), StochasticWeightAveraging(swa_lrs=0.01)):
        name = type(averaging).__name__
        with pytest.raises(
            ConfigError,
            match=rf"^step_batch_size=32 cannot be used with {name}: it updates once per "
            r"loaded batch or epoch, not once per optimizer step$",
        ):
            trainer(tmp_path, callbacks=[averaging]).fit(model(STEP), datamodule=data)


def test_the_command_refuses_a_batch_size_before_anything_trains(in_tmp):
    """What ``tune`` and ``cv`` build for each setting before their trials (``run=False``)."""
    args = ["--config", str(REPO / "recipes" / "quickstart.yaml"), "--data.batch_size", "100",
            "--model.step_batch_size", "32", "--model.scheduler_interval", "step"]  # fmt: skip
    with pytest.raises(
        ConfigError, match=r"^step_batch_size=32 must divide the data's batch_size=100"
    ):
        LightningCVCLI(args, run=False)


def test_more_than_one_device_is_refused():
    ddp = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", logger=False)
    with pytest.raises(
        ConfigError,
        match=r"^step_batch_size=32 trains on one device; this run has 2 \(leave "
        r"step_batch_size out for DDP\)$",
    ):
        check_step_batches(STEP, digits(4 * STEP), ddp)


def test_lightning_refuses_its_own_gradient_clipping(tmp_path):
    with pytest.raises(
        MisconfigurationException, match=r"Automatic gradient clipping is not supported"
    ):
        trainer(tmp_path, gradient_clip_val=1.0).fit(model(STEP), datamodule=digits(4 * STEP))
