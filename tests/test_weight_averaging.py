"""EMA of the weights: the closed form on a toy model, and what a real run checkpoints and tests."""

import csv

import lightning.pytorch as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn

from lightning_cv import ConfigError, DigitsDataModule, ImageClassifier
from lightning_cv.callbacks.weight_averaging import EMAWeightAveraging, averaged_state_dict
from lightning_cv.cli import main
from lightning_cv.zoo.register import strip_checkpoint
from tests.conftest import REPO

QUIET = dict(logger=False, enable_progress_bar=False, enable_model_summary=False)
GRADIENTS = [0.5, -1.0, 2.0, 0.25, -0.75, 1.5, 3.0, -2.0, 1.0, 0.125, -0.5, 2.5]
LR, DECAY = 0.1, 0.8


class OneWeight(L.LightningModule):
    """``loss = w * g`` for the batch's ``g``: SGD moves ``w`` by ``-lr * g`` per step."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(1, 1, bias=False, dtype=torch.float64)
        nn.init.zeros_(self.layer.weight)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        return (self.layer.weight.squeeze() * batch.squeeze()).sum()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=LR)


def closed_form(weights: list[float], steps: list[int], decay: float) -> float:
    """``decay^(n-1) w_s1 + sum_j decay^(n-j) (1 - decay) w_sj`` over the n updated steps:
    the first update copies the weights (``AveragedModel``), the others mix them in."""
    n = len(steps)
    first = decay ** (n - 1) * weights[steps[0]]
    return first + sum(
        decay ** (n - j) * (1 - decay) * weights[s] for j, s in enumerate(steps[1:], 2)
    )


@pytest.mark.parametrize(
    ("every", "start", "updated"),
    [
        (1, None, list(range(12))),  # Lightning's defaults: after every optimizer step
        (3, None, [0, 3, 6, 9]),
        (2, 5, [6, 8, 10]),  # zero-based steps >= 5 that are multiples of 2
    ],
)
def test_the_average_after_k_steps_is_the_closed_form(every, start, updated):
    ema = EMAWeightAveraging(decay=DECAY, update_every_n_steps=every, update_starting_at_step=start)
    model = OneWeight()
    data = torch.tensor(GRADIENTS, dtype=torch.float64).reshape(-1, 1)
    trainer = L.Trainer(max_epochs=1, callbacks=[ema], enable_checkpointing=False, **QUIET)
    trainer.fit(model, train_dataloaders=torch.utils.data.DataLoader(data, batch_size=1))
    # w after zero-based step i: -lr * (g_0 + ... + g_i)
    weights = (-LR * torch.tensor(GRADIENTS, dtype=torch.float64).cumsum(0)).tolist()
    expected = closed_form(weights, updated, DECAY)
    assert averaged_state_dict(ema)["layer.weight"].item() == pytest.approx(expected, abs=1e-12)
    assert model.layer.weight.item() == pytest.approx(expected, abs=1e-12)  # copied in at the end
    assert expected != pytest.approx(weights[-1])


def test_the_closed_form_matches_the_recursion():
    average = 2.0
    for weight in [3.0, -1.0, 4.0]:
        average = DECAY * average + (1 - DECAY) * weight
    assert closed_form([2.0, 3.0, -1.0, 4.0], [0, 1, 2, 3], DECAY) == pytest.approx(average)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"decay": 1.0}, "decay must be in [0, 1), got 1.0"),
        ({"decay": float("nan")}, "decay must be a finite number, got nan"),
        ({"update_every_n_steps": 0}, "update_every_n_steps must be an integer >= 1, got 0"),
        (
            {"update_starting_at_step": -1},
            "update_starting_at_step must be an integer >= 0, got -1",
        ),
        (
            {"update_starting_at_epoch": 1.5},
            "update_starting_at_epoch must be an integer >= 0, got 1.5",
        ),
    ],
)
def test_bad_arguments_are_refused_at_construction(kwargs, message):
    with pytest.raises(ConfigError) as error:
        EMAWeightAveraging(**kwargs)
    assert str(error.value) == message


def test_no_average_before_fit():
    with pytest.raises(ConfigError, match="no average: it is made by fit"):
        averaged_state_dict(EMAWeightAveraging())


def _fit_digits(
    tmp_path, ema
) -> tuple[L.Trainer, ImageClassifier, DigitsDataModule, ModelCheckpoint]:
    L.seed_everything(0)
    best = ModelCheckpoint(tmp_path, monitor="val/acc", mode="max", save_last=True)
    trainer = L.Trainer(
        max_epochs=2, limit_train_batches=6, limit_val_batches=2, limit_test_batches=3,
        callbacks=[ema, best], **QUIET,
    )  # fmt: skip
    model = ImageClassifier("lenet5", optimizer="sgd", lr=0.05)
    data = DigitsDataModule(image_size=28, batch_size=32)
    trainer.fit(model, datamodule=data)
    return trainer, model, data, best


def _equal(left: dict, right: dict) -> bool:
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


def test_a_digits_run_checkpoints_tests_and_exports_the_average(tmp_path):
    ema = EMAWeightAveraging(decay=0.7)
    trainer, model, data, best = _fit_digits(tmp_path, ema)
    average = averaged_state_dict(ema)
    last = torch.load(best.last_model_path, weights_only=True)
    assert _equal(last["state_dict"], average)
    assert not _equal(last["current_model_state"], average)  # the raw weights, for resuming
    assert _equal(model.state_dict(), average)  # fit ends with the average in the model
    kept = strip_checkpoint(last, data_options={})  # what a zoo entry and its exports hold
    assert _equal(kept["state_dict"], average) and "current_model_state" not in kept

    # fit --test_after_fit's call: the best checkpoint, through the same callback
    ours = trainer.test(model, datamodule=data, ckpt_path="best", verbose=False)[0]
    checkpoint = torch.load(best.best_model_path, weights_only=True)
    assert _equal(model.state_dict(), checkpoint["state_dict"])
    alone = ImageClassifier.load_from_checkpoint(best.best_model_path)
    plain = L.Trainer(limit_test_batches=3, **QUIET).test(alone, datamodule=data, verbose=False)
    assert ours == plain[0]


class StateAtTrainStart(L.Callback):
    """The model's weights and the average when training starts, after a restore."""

    def __init__(self, ema: EMAWeightAveraging) -> None:
        self.ema = ema

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.state = {name: value.clone() for name, value in pl_module.state_dict().items()}
        self.average = {k: v.clone() for k, v in averaged_state_dict(self.ema).items()}
        self.latest_update_step = self.ema._latest_update_step


def test_resuming_fit_restores_the_raw_weights_and_the_average(tmp_path):
    _, _, data, best = _fit_digits(tmp_path, EMAWeightAveraging(decay=0.7))
    last = torch.load(best.last_model_path, weights_only=True)
    ema = EMAWeightAveraging(decay=0.7)
    probe = StateAtTrainStart(ema)
    trainer = L.Trainer(
        max_epochs=3, limit_train_batches=6, limit_val_batches=0, callbacks=[ema, probe],
        enable_checkpointing=False, **QUIET,
    )  # fmt: skip
    model = ImageClassifier("lenet5", optimizer="sgd", lr=0.05)
    trainer.fit(model, datamodule=data, ckpt_path=best.last_model_path)
    assert _equal(probe.state, last["current_model_state"])
    assert _equal(probe.average, last["state_dict"])
    assert probe.latest_update_step == 12  # 2 epochs x 6 steps, each updated


def test_lightnings_own_callback_would_test_the_raw_weights(tmp_path):
    """Why the subclass exists: Lightning's puts ``current_model_state`` back on test."""
    trainer, model, data, best = _fit_digits(tmp_path, L.callbacks.EMAWeightAveraging(decay=0.7))
    trainer.test(model, datamodule=data, ckpt_path="best", verbose=False)
    checkpoint = torch.load(best.best_model_path, weights_only=True)
    assert _equal(model.state_dict(), checkpoint["current_model_state"])
    assert not _equal(model.state_dict(), checkpoint["state_dict"])


def test_the_recipe_averages_checkpoints_and_tests_the_average(in_tmp):
    main(
        [
            "fit", "--config", str(REPO / "recipes" / "digits_lenet5_ema.yaml"),
            "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "5",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        ]
    )  # fmt: skip
    run = in_tmp / "runs" / "digits_lenet5_ema" / "version_0"
    best = next((run / "checkpoints").glob("best-*.ckpt"))
    checkpoint = torch.load(best, weights_only=True)
    assert "current_model_state" in checkpoint
    assert not _equal(checkpoint["state_dict"], checkpoint["current_model_state"])
    callbacks = checkpoint["callbacks"]
    assert any(key.startswith("EMAWeightAveraging") for key in callbacks)
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    logged = float(next(row["test/acc"] for row in rows if row.get("test/acc")))
    model = ImageClassifier.load_from_checkpoint(best)
    data = DigitsDataModule(image_size=28, batch_size=32)
    tested = L.Trainer(**QUIET).test(model, datamodule=data, verbose=False)[0]["test/acc"]
    assert logged == pytest.approx(tested, abs=1e-6)
