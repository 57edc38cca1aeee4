"""Which checkpoint a run keeps as its best: the highest ``val/acc``, a tie going to the lower
``val/loss`` (a small validation split ties for many epochs)."""

import csv
import re

import lightning.pytorch as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from lightning_cv.cli import main
from lightning_cv.cli.lightning_cli import _default_checkpoints

from .conftest import REPO
from .fake_folders import write_image_folder

QUICK = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


class Scripted(L.LightningModule):
    """Logs the given validation accuracy and loss per epoch; trains nothing that matters."""

    def __init__(self, accuracies: list[float], losses: list[float]) -> None:
        super().__init__()
        self.accuracies, self.losses = accuracies, losses
        self.layer = torch.nn.Linear(1, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).sum()

    def validation_step(self, batch, batch_idx):
        self.log("val/acc", self.accuracies[self.current_epoch])
        self.log("val/loss", self.losses[self.current_epoch])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def kept_epoch(tmp_path, accuracies: list[float], losses: list[float]) -> int:
    best, last = _default_checkpoints()  # without a logger: tmp_path/outputs/version_0
    loader = DataLoader(TensorDataset(torch.zeros(2, 1)), batch_size=2)
    trainer = L.Trainer(
        max_epochs=len(accuracies), logger=False, callbacks=[best, last], default_root_dir=tmp_path,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(Scripted(accuracies, losses), loader, loader)
    assert len(list(tmp_path.rglob("best-*.ckpt"))) == 1
    return int(re.search(r"best-epoch(\d+)", best.best_model_path)[1])


def test_a_tie_in_accuracy_goes_to_the_lower_loss(tmp_path):
    assert kept_epoch(tmp_path, [0.5, 0.5, 0.5, 0.5], [1.0, 0.7, 0.9, 0.8]) == 1


def test_a_higher_accuracy_wins_whatever_its_loss(tmp_path):
    assert kept_epoch(tmp_path, [0.5, 0.6, 0.6, 0.5], [1.0, 2.0, 3.0, 0.1]) == 1


def test_the_first_of_equal_ties_is_kept(tmp_path):
    assert kept_epoch(tmp_path, [0.5, 0.5, 0.5], [0.7, 0.7, 0.7]) == 0


def test_the_fine_tuning_recipe_on_a_small_folder_keeps_the_lowest_loss_of_its_best_epochs(
    tmp_path, monkeypatch
):
    """3 classes, 10 images each: 15 validation images tie for several epochs; the kept
    checkpoint is the one ``--test_after_fit`` tests."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "photos"
    write_image_folder(folder, classes=("bird", "cat", "dog"), per_class=10, suffix=".png")
    fit = ["--data.root", str(folder), "--data.val_fraction", "0.5", "--trainer.max_epochs", "4"]
    main(["fit", "--config", str(REPO / "recipes" / "finetune_folder.yaml"), *fit, *QUICK])
    run = tmp_path / "runs" / "finetune_folder" / "version_0"
    rows = [row for row in csv.DictReader((run / "metrics.csv").open()) if row["val/acc"]]
    scores = {int(row["epoch"]): (float(row["val/acc"]), -float(row["val/loss"])) for row in rows}
    best = max(scores, key=lambda epoch: (scores[epoch], -epoch))
    (kept,) = (run / "checkpoints").glob("best-*.ckpt")
    assert kept.name.startswith(f"best-epoch{best:02d}-")


def test_the_cli_checkpoints_keep_lightnings_state_key_built_once():
    """The key that files a checkpoint callback's state in a checkpoint is Lightning's own (so
    older runs resume), built once: Lightning reads it at every hook call of every step."""
    for checkpoint in _default_checkpoints():
        assert checkpoint.state_key == ModelCheckpoint.state_key.fget(checkpoint)
        assert checkpoint.state_key is checkpoint.state_key
    best, last = _default_checkpoints()
    assert best.state_key == (
        "_BestAccuracy{'monitor': 'val/acc', 'mode': 'max', 'every_n_train_steps': 0, "
        "'every_n_epochs': 1, 'train_time_interval': None}"
    )
    assert last.state_key.startswith("_Checkpoint{'monitor': None, ")
