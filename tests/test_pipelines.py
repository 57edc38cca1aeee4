"""The two pipelines behind one seam: one preset table with both backends, chosen once in setup,
the batch path's loader a real DataLoader that Lightning keeps as it is.

Oracles: the sample path (albumentations) for the batch path's distribution (per-pixel mean and
std of many augmented copies of one image, and the flip rate, within binomial bounds); Lightning's
own loader preparation and warnings, which the sample path still meets.
"""

import warnings

import lightning.pytorch as L
import numpy as np
import pytest
import torch
from lightning.pytorch.trainer.connectors import data_connector
from lightning.pytorch.trainer.states import RunningStage

from lightning_cv import DigitsDataModule, ImageClassifier, ImageFolderDataModule
from lightning_cv.data import PRESETS, BatchOrder, BatchPipeline, SampleDataset, SamplePipeline
from lightning_cv.data.batch_transforms import to_floats
from lightning_cv.data.batches import to_image_tensor

from .fake_folders import write_image_folder
from .test_batch_path import binomial_bounds

COPIES = 2000
SHAPES = {"digits": (28, 1), "cifar": (32, 3), "imagenet": (32, 3), "eval": (32, 3),
          "randaugment": (32, 3), "trivialaugment": (32, 3)}  # fmt: skip


def picture(size: int, channels: int) -> np.ndarray:
    """An ``(H, W, C)`` uint8 image: a left-to-right ramp (so a mirror reads right-to-left)
    plus a bright off-centre blob (so shifts, crops and erasing show in the pixel statistics)."""
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    blob = np.exp(-((x - 0.3) ** 2 + (y - 0.4) ** 2) / 0.02)
    layers = [0.2 + 0.6 * x, 0.3 + 0.5 * blob, 0.7 - 0.4 * y][:channels]
    layers[0] = 0.2 + 0.5 * x + 0.3 * blob if channels == 1 else layers[0]
    return (np.stack(layers, -1) * 255).round().astype(np.uint8)


def copies_on_both_backends(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``COPIES`` augmented copies of one picture, in [0, 1] (mean 0, std 1), per sample through
    the albumentations backend (as the sample path's data set runs it) and as one batch through
    the kornia backend."""
    size, channels = SHAPES[name]
    image = picture(size, channels)
    images = np.ascontiguousarray(np.broadcast_to(image, (COPIES, *image.shape)))
    pipeline = PRESETS[name].sample((size, size), (0.0,) * channels, (1.0,) * channels)
    dataset = SampleDataset(images, np.zeros(COPIES), pipeline)
    torch.manual_seed(0)
    per_sample = torch.stack([dataset[i][0] for i in range(COPIES)])
    torch.manual_seed(0)
    floats = to_floats(to_image_tensor(images), (size, size))
    return per_sample, PRESETS[name].batch((size, size), channels)(floats)


def flip_rate(images: torch.Tensor) -> float:
    """Share of copies whose ramp falls left to right: mirrored. The median step between
    neighbours is the ramp's, whatever a shift's fill at the border or a crop's scale."""
    steps = images[:, 0, :, 1:] - images[:, 0, :, :-1]
    return float((steps.flatten(1).median(dim=1).values < 0).float().mean())


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_both_backends_of_a_preset_agree_in_distribution(name):
    per_sample, per_batch = copies_on_both_backends(name)
    assert per_sample.shape == per_batch.shape
    # per pixel, over the copies; the digits' batch form leaves out the elastic distortion
    # (batch_transforms.digits), which costs it up to 0.025 on average here
    mean_gap = (per_sample.mean(0) - per_batch.mean(0)).abs().mean()
    std_gap = (per_sample.std(0) - per_batch.std(0)).abs().mean()
    assert mean_gap < 0.02 and std_gap < 0.035, (float(mean_gap), float(std_gap))
    rates = flip_rate(per_sample), flip_rate(per_batch)
    expected = 0.0 if name in ("digits", "eval") else 0.5
    low, high = binomial_bounds(COPIES, expected)
    assert all(low <= rate * COPIES <= high for rate in rates), rates


def test_the_pipeline_is_chosen_once_in_setup_and_kept(tmp_path):
    data = DigitsDataModule()
    assert data.active_pipeline is None and not data.uses_batches
    data.setup("fit")
    chosen = data.active_pipeline
    assert isinstance(chosen, BatchPipeline) and data.uses_batches
    first = data.val_set[0][0]
    data.setup("test")  # the test split comes through the same pipeline
    assert data.active_pipeline is chosen and torch.equal(data.val_set[0][0], first)
    photos = tmp_path / "photos"
    write_image_folder(photos, ("cat", "dog"), per_class=10, size=20)
    stats = {"mean": (0.5,) * 3, "std": (0.25,) * 3, "val_fraction": 0.25}
    folder = ImageFolderDataModule(photos, image_size=16, **stats)
    folder.setup("test")  # chosen by the first split read: image files -> per sample
    assert isinstance(folder.active_pipeline, SamplePipeline)
    folder.setup("fit")
    assert isinstance(folder.active_pipeline, SamplePipeline) and not folder.uses_batches


@pytest.mark.parametrize("pipeline", ["batch", "sample"])
def test_lightning_keeps_both_paths_loaders_under_ddp(pipeline):
    data = DigitsDataModule(pipeline=pipeline, batch_size=32, sampler="balanced")
    data.setup("fit")
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", logger=False)
    connector = trainer._data_connector  # what fit does to the loaders
    train, val = data.train_dataloader(), data.val_dataloader()
    assert connector._prepare_dataloader(train, True, RunningStage.TRAINING) is train
    if pipeline == "batch":  # the sample path's validation loader is Lightning's to split
        assert isinstance(val.sampler, BatchOrder)
        assert connector._prepare_dataloader(val, False, RunningStage.VALIDATING) is val


def test_the_batch_path_is_spared_lightnings_advice_to_add_workers(monkeypatch, tmp_path):
    """Lightning advises more workers on a machine of several cores; the batch path has none
    by design. The sample path still gets the advice: the message filtered is upstream's."""
    monkeypatch.setattr(data_connector, "suggested_max_num_workers", lambda devices: 4)
    advice = {}
    for pipeline in ("sample", "batch"):
        data = DigitsDataModule(pipeline=pipeline, batch_size=64)
        model = ImageClassifier("linear", num_classes=10, in_channels=1, image_size=28)
        trainer = L.Trainer(fast_dev_run=True, logger=False, enable_progress_bar=False,
                            enable_model_summary=False, default_root_dir=tmp_path)  # fmt: skip
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer.fit(model, datamodule=data)
        advice[pipeline] = [str(w.message) for w in caught if "many workers" in str(w.message)]
    assert advice["sample"] and not advice["batch"], advice


def test_predict_on_the_batch_path_returns_every_test_image_in_order(tmp_path):
    data = DigitsDataModule(batch_size=100)
    model = ImageClassifier("linear", num_classes=10, in_channels=1, image_size=28)
    trainer = L.Trainer(logger=False, enable_progress_bar=False, default_root_dir=tmp_path)
    predictions = trainer.predict(model, datamodule=data)
    assert data.uses_batches and sum(len(batch["preds"]) for batch in predictions) == 360
