"""`lightning-cv preview`: a grid of augmented training samples."""

import numpy as np
import pytest
import torch
from PIL import Image

from lightning_cv import DigitsDataModule
from lightning_cv.cli import main
from lightning_cv.cli.preview import augmented_samples, to_display
from lightning_cv.data import build_transform
from lightning_cv.data.batches import to_image_tensor

from .conftest import REPO


def test_to_display_undoes_normalization():
    mean, std = (0.2, 0.5, 0.7), (0.1, 0.2, 0.3)
    image = torch.rand(3, 6, 5).numpy().transpose(1, 2, 0)
    normalize = build_transform("eval", size=(6, 5), mean=mean, std=std)
    tensor = normalize(image=(image * 255).round().astype("uint8"))["image"]
    shown = to_display(tensor, mean, std)
    assert shown.shape == (6, 5, 3)
    assert abs(shown - (image * 255).round() / 255).max() < 1e-5


def test_preview_writes_a_png_grid(in_tmp, capsys):
    recipe = str(REPO / "recipes" / "quickstart.yaml")
    main(["preview", "--config", recipe, "--output", "grid.png", "--num_images", "12"])
    assert capsys.readouterr().out.strip().endswith("wrote grid.png")
    with Image.open(in_tmp / "grid.png") as picture:
        assert picture.format == "PNG" and picture.width > 600 and picture.height > 200


@pytest.mark.parametrize("pipeline", ["batch", "sample"])
def test_preview_samples_are_the_pipelines_augmentation_seeded(pipeline):
    data = DigitsDataModule(pipeline=pipeline)
    data.setup("fit")
    picks = np.arange(8)
    images, labels = augmented_samples(data, picks, seed=3)
    again, _ = augmented_samples(data, picks, seed=3)
    other, _ = augmented_samples(data, picks, seed=4)
    assert images.shape == (8, 1, 28, 28) and torch.equal(images, again)
    assert not torch.equal(images, other)
    assert labels == data.train_set.labels[data.train_set.indices[picks]].tolist()
    if pipeline == "batch":  # the batch preset itself, from the same seed
        uint8 = to_image_tensor(data.train_set.images[data.train_set.indices[picks]])
        torch.manual_seed(3)
        torch.testing.assert_close(images, data.transform_batch(uint8, train=True))
