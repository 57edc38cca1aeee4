"""The balanced sampler: class shares of a drawn epoch, DDP shares, seeds, and what it leaves alone.

Oracles: binomial bounds on the class shares (expected share ``w[c] * n[c] / sum(w * n)``),
and the single-process draw, which two ranks' shares must interleave back into.
"""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import lightning.pytorch as L
import numpy as np
import pytest
import torch
from lightning.pytorch.trainer.states import RunningStage
from torch.utils.data import DataLoader, WeightedRandomSampler

from lightning_cv import ConfigError, DigitsDataModule
from lightning_cv.data import ImageDataModule, WeightedDraw, sample_weights
from lightning_cv.errors import DataFileError

from .conftest import REPO
from .fakes import write_idx_dataset
from .test_batch_path import binomial_bounds

TRAIN, TEST = 2000, 100
PIPELINES = ["batch", "sample"]


class Skewed(ImageDataModule):
    """4x4 grey images, 90% class 0 and 10% class 1 (every tenth sample), in both splits;
    the pixels hold the sample's index (mod 256), so a batch shows which samples it holds."""

    num_classes = 2
    class_names = ("common", "rare")
    in_channels = 1
    image_size = 4
    mean = (0.0,)
    std = (1 / 255,)  # a normalised pixel is the raw uint8 value

    def read_split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        count = TRAIN if split == "train" else TEST
        images = np.broadcast_to(
            (np.arange(count) % 256).astype(np.uint8)[:, None, None, None], (count, 4, 4, 1)
        )
        return np.ascontiguousarray(images), (np.arange(count) % 10 == 9).astype(np.int64)


def skewed(pipeline: str = "batch", *, rank: int = 0, world_size: int = 1, **options) -> Skewed:
    """A set-up :class:`Skewed` whose trainer (if ``world_size > 1``) reports a DDP rank."""
    options = {"batch_size": 64, "val_fraction": 0, "sampler": "balanced", **options}
    data = Skewed(pipeline=pipeline, **options)
    if world_size > 1:  # what the loaders read from a trainer
        cpu = SimpleNamespace(root_device=torch.device("cpu"))
        data.trainer = SimpleNamespace(global_rank=rank, world_size=world_size, strategy=cpu)
    data.setup("fit")
    return data


def drawn_labels(loader) -> torch.Tensor:
    return torch.cat([labels for _, labels in loader])


def drawn_samples(data: Skewed, epoch: int = 0) -> list[int]:
    """The training samples of ``epoch``, in order, as the loader's sampler gives them (the
    training view is every sample, so its positions are the samples)."""
    sampler = data.train_dataloader().sampler
    sampler.set_epoch(epoch)  # what Lightning calls before each epoch
    return sampler.epoch_indices().tolist() if data.uses_batches else list(sampler)


# ---------------------------------------------------------------- class shares


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_balanced_draws_each_class_of_90_10_data_half_the_time(pipeline):
    labels = drawn_labels(skewed(pipeline).train_dataloader())
    assert len(labels) == TRAIN  # one epoch is as long as the training split
    assert 0.45 <= labels.float().mean() <= 0.55  # the rare class, 10% of the data
    uniform = drawn_labels(skewed(pipeline, sampler="uniform").train_dataloader())
    assert int(uniform.sum()) == TRAIN // 10  # uniform: each sample once, the data's 10%


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_given_class_weights_set_shares_in_proportion_to_weight_times_count(pipeline, tmp_path):
    # 1800 * 1 : 200 * 27 -> the rare class is 5400 / 7200 = 75% of the draws
    file = tmp_path / "weights.json"
    file.write_text("[1, 27]")
    for weights in ([1.0, 27.0], str(file)):
        rare = int(drawn_labels(skewed(pipeline, class_weights=weights).train_dataloader()).sum())
        low, high = binomial_bounds(TRAIN, 0.75)
        assert low <= rare <= high


def test_sample_weights_are_inverse_class_counts_or_the_class_weights():
    labels = np.array([0, 0, 0, 1, 2])
    torch.testing.assert_close(
        sample_weights(labels, 4, None), torch.tensor([1 / 3] * 3 + [1.0, 1.0], dtype=torch.double)
    )  # class 3 has no sample: never drawn, no division by 0
    torch.testing.assert_close(
        sample_weights(labels, 4, [2.0, 0.0, 5.0, 1.0]),
        torch.tensor([2.0, 2.0, 2.0, 0.0, 5.0], dtype=torch.double),
    )


# ---------------------------------------------------------------- seeds, epochs, ranks


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_the_same_seed_draws_the_same_epoch_and_another_epoch_or_seed_another(
    pipeline, monkeypatch
):
    monkeypatch.setenv("PL_GLOBAL_SEED", "7")
    first = drawn_samples(skewed(pipeline))
    assert drawn_samples(skewed(pipeline)) == first
    assert drawn_samples(skewed(pipeline), epoch=1) != first
    monkeypatch.setenv("PL_GLOBAL_SEED", "8")
    assert drawn_samples(skewed(pipeline)) != first


def test_both_pipelines_draw_the_same_samples_for_one_seed():
    assert drawn_samples(skewed("batch")) == drawn_samples(skewed("sample"))


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_two_ranks_draw_disjoint_equal_slots_that_interleave_into_one_process_draw(pipeline):
    single = drawn_samples(skewed(pipeline, drop_last=False))
    first, second = (drawn_samples(skewed(pipeline, rank=r, world_size=2)) for r in (0, 1))
    assert len(first) == len(second) == TRAIN // 2
    # rank r holds slots r, r + 2, ... of the one global draw: disjoint, and together all of it
    assert first == single[0::2] and second == single[1::2]


def test_an_odd_count_gives_equal_shares_of_the_first_even_part_of_the_draw():
    weights = torch.rand(101, generator=torch.Generator().manual_seed(0))
    single = WeightedDraw(weights, seed=3).positions()
    shares = [WeightedDraw(weights, rank=r, world_size=2, seed=3) for r in (0, 1)]
    assert [len(share) for share in shares] == [50, 50]
    interleaved = torch.stack([share.positions() for share in shares], dim=1).flatten()
    assert torch.equal(interleaved, single[:100])


def test_lightning_keeps_the_sample_paths_sampler_under_ddp():
    loader = skewed("sample", rank=1, world_size=2).train_dataloader()
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", logger=False)
    connector = trainer._data_connector  # what fit does to a training loader
    prepared = connector._prepare_dataloader(loader, shuffle=True, mode=RunningStage.TRAINING)
    assert prepared is loader and isinstance(loader.sampler, WeightedDraw)
    # the oracle: a plain WeightedRandomSampler would have been wrapped and split again
    plain = DataLoader(loader.dataset, sampler=WeightedRandomSampler(torch.ones(TRAIN), TRAIN))
    assert (
        connector._prepare_dataloader(plain, shuffle=True, mode=RunningStage.TRAINING) is not plain
    )


class RecordDraw(L.Callback):
    """Write ``rank<N>.pt`` into ``folder`` at the start of training: the sampler the Trainer
    runs with (its class name) and this rank's draw of epoch 0."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        sampler = trainer.train_dataloader.sampler
        record = {"sampler": type(sampler).__name__, "draw": torch.tensor(list(sampler))}
        self.folder.mkdir(parents=True, exist_ok=True)
        torch.save(record, self.folder / f"rank{trainer.global_rank}.pt")


def test_two_ddp_processes_on_the_sample_path_keep_the_draw_and_split_it(tmp_path):
    probe = f"{{class_path: tests.test_sampling.RecordDraw, init_args: {{folder: {tmp_path}}}}}"
    args = [
        sys.executable, "-m", "lightning_cv", "fit", "--config", "quickstart",
        "--data.pipeline", "sample", "--data.sampler", "balanced", "--trainer.accelerator", "cpu",
        "--trainer.devices", "2", "--trainer.strategy", "ddp", "--trainer.max_steps", "1",
        "--trainer.limit_val_batches", "0", "--test_after_fit", "false",
        "--trainer.enable_progress_bar", "false",
        f"--trainer.callbacks+={probe}",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert first["sampler"] == second["sampler"] == "WeightedDraw"  # not Lightning's own
    data = DigitsDataModule(pipeline="sample")  # the recipe's training view, in one process
    data.setup("fit")
    weights = sample_weights(data.train_set.labels[data.train_set.indices], 10, None)
    single = torch.tensor(list(WeightedDraw(weights, seed=0)))  # the recipe's seed
    assert len(first["draw"]) == len(second["draw"]) == len(single) // 2
    assert torch.equal(torch.stack([first["draw"], second["draw"]], 1).flatten(), single[:-1])


# ---------------------------------------------------------------- what is never reweighted


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_validation_and_test_loaders_keep_every_sample_once_in_order(pipeline):
    data = skewed(pipeline, val_fraction=0.2)
    data.setup("test")
    for loader, view in (
        (data.val_dataloader(), data.val_set),
        (data.test_dataloader(), data.test_set),
    ):
        images = torch.cat([images for images, _ in loader])
        if data.uses_batches:
            images = data.transform_batch(images, train=False)
        expected = torch.as_tensor(view.indices % 256, dtype=torch.float32)
        torch.testing.assert_close(images[:, 0, 0, 0], expected)
        assert torch.equal(drawn_labels(loader), torch.from_numpy(view.labels[view.indices]))


# ---------------------------------------------------------------- bad options


def balanced(weights: list[float]) -> dict:
    return {"sampler": "balanced", "class_weights": weights}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sampler": "weighted"}, "unknown sampler 'weighted'; expected one of ['uniform', 'bal"),
        ({"class_weights": [1, 2]}, "class_weights [1, 2] apply to sampler='balanced' only"),
        ({"sampler": "balanced", "shuffle": False}, "sampler='balanced' draws a random order"),
        (balanced([1, -2]), "a non-empty list of finite numbers >= 0, not all 0, got [1, -2]"),
        (balanced([1, math.nan]), "not all 0, got [1, nan]"),
        (balanced([math.inf, 1]), "not all 0, got [inf, 1]"),
        (balanced([0, 0]), "not all 0, got [0, 0]"),
        (balanced([]), "not all 0, got []"),
    ],
)  # fmt: skip
def test_bad_sampling_options_are_refused_at_construction(options, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        Skewed(**options)


def test_a_missing_or_malformed_weights_file_is_refused_at_construction(tmp_path):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(DataFileError, match=f"class_weights file '{missing}' does not exist"):
        Skewed(sampler="balanced", class_weights=str(missing))
    text = tmp_path / "weights.yaml"
    text.write_text("common: 1\nrare: 9\n")
    with pytest.raises(DataFileError, match=r"must hold a YAML or JSON list of numbers, one per"):
        Skewed(sampler="balanced", class_weights=str(text))


def test_weights_of_another_length_or_all_on_absent_classes_are_refused_at_the_loader():
    data = skewed(class_weights=[1.0, 2.0, 3.0])
    with pytest.raises(
        ConfigError, match="class_weights has 3 entries but the data set has 2 classes"
    ):
        data.train_dataloader()
    with pytest.raises(
        ConfigError, match=r"give every training sample weight 0 \(classes present: \[0\]\)"
    ):
        sample_weights(np.zeros(5, dtype=np.int64), 2, [0.0, 1.0])


# ---------------------------------------------------------------- benchmarks/imbalance.py, tiny


def test_the_imbalance_benchmark_runs_its_three_sides_on_a_cut_training_split(tmp_path):
    write_idx_dataset(tmp_path, "MNIST", sizes={"train": 400, "test": 50}, compress=False)
    recipe = (REPO / "recipes" / "mnist_lenet5_fast.yaml").read_text()
    (tmp_path / "fake.yaml").write_text(  # fake unpacked files: no official MD5 to match
        recipe.replace("lightning_cv.data.MNISTDataModule", "tests.fakes.UncheckedMNIST")
    )
    command = [sys.executable, str(REPO / "benchmarks" / "imbalance.py"), "--root", str(tmp_path)]
    command += ["--recipe", str(tmp_path / "fake.yaml"), "--epochs", "1", "--keep", "0.25"]
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # 40 images a digit, 90% kept for training (stratified), of which a quarter for 0-4
    assert result["train_counts"] == [9] * 5 + [36] * 5
    assert result["loss_weights"] == [2.5] * 5 + [0.625] * 5  # 225 / (10 * n_c)
    sides = result["sides"]
    assert [sides[side]["sampler"] for side in sides] == ["uniform", "balanced", "uniform"]
    assert sides["weighted_loss"]["loss_class_weights"] == result["loss_weights"]
    assert sides["uniform"]["loss_class_weights"] is None and result["seed"] == 0
    assert all(0 <= sides[side]["f1"] <= 1 for side in sides) and result["ratio"] > 0
