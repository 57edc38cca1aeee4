"""TestTimeAugmentation: the views, their mean against a hand-made oracle, the logged keys,
predictions, and bad options."""

import re

import lightning.pytorch as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader, TensorDataset

from lightning_cv import ConfigError, DigitsDataModule, ImageClassifier
from lightning_cv.callbacks.tta import TestTimeAugmentation, tta_views


def _moved(images: torch.Tensor, dy: int, dx: int, padding: str) -> torch.Tensor:
    """The oracle: pixel (y, x) of the result is pixel (y - dy, x - dx) of the input; outside
    it, the mirrored pixel (reflect, edge not repeated) or 0."""
    height, width = images.shape[-2:]
    out = torch.zeros_like(images)
    for y in range(height):
        for x in range(width):
            sy, sx = y - dy, x - dx
            if padding == "reflect":
                sy = abs(sy) if sy < height else 2 * (height - 1) - sy
                sx = abs(sx) if sx < width else 2 * (width - 1) - sx
            elif not (0 <= sy < height and 0 <= sx < width):
                continue
            out[..., y, x] = images[..., sy, sx]
    return out


def _trainer(tmp_path, callbacks) -> L.Trainer:
    return L.Trainer(
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
        callbacks=callbacks,
    )


@pytest.mark.parametrize("padding", ["reflect", "zeros"])
def test_probabilities_are_the_mean_over_the_hand_made_views(padding):
    torch.manual_seed(0)
    model = ImageClassifier("lenet5", num_classes=10, in_channels=3, image_size=16).eval()
    images = torch.randn(3, 3, 16, 16)
    views = [images, torch.flip(images, dims=[3])]
    views += [_moved(images, dy, dx, padding) for dy, dx in ((0, 2), (0, -2), (2, 0), (-2, 0))]
    made = tta_views(images, flip=True, shifts=2, padding=padding)
    for view, mine in zip(views, made, strict=True):
        torch.testing.assert_close(mine, view, rtol=0, atol=0)
    expected = torch.stack([model(view).softmax(dim=1) for view in views]).mean(dim=0)
    tta = TestTimeAugmentation(flip=True, shifts=2, padding=padding)
    with torch.no_grad():
        torch.testing.assert_close(tta.probabilities(model, images), expected)
    only_flip = TestTimeAugmentation(flip=True).probabilities(model, images)
    plain_and_mirror = (model(views[0]).softmax(1) + model(views[1]).softmax(1)) / 2
    torch.testing.assert_close(only_flip, plain_and_mirror)


class _Batches(Callback):
    def __init__(self):
        self.batches = []

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self.batches.append((batch[0].clone(), batch[1].clone()))


def test_trainer_test_logs_plain_and_tta_metrics(tmp_path):
    data = DigitsDataModule(image_size=16, batch_size=100)
    torch.manual_seed(0)
    model = ImageClassifier("lenet5", num_classes=10, in_channels=1, image_size=16)
    tta, batches = TestTimeAugmentation(shifts=1), _Batches()
    scores = _trainer(tmp_path, [tta, batches]).test(model, datamodule=data, verbose=False)[0]
    assert {"test/acc", "test/acc_tta", "test/acc_top5_tta", "test/f1_tta"} <= set(scores)
    with torch.no_grad():
        right = sum(
            (tta.probabilities(model, images).argmax(1) == labels).sum().item()
            for images, labels in batches.batches
        )
    assert sum(len(labels) for _, labels in batches.batches) == 360
    assert scores["test/acc_tta"] == pytest.approx(right / 360, abs=1e-6)


def test_predict_outputs_become_the_averaged_ones(tmp_path):
    torch.manual_seed(0)
    model = ImageClassifier("lenet5", num_classes=10, in_channels=1, image_size=16)
    images = torch.randn(5, 1, 16, 16)
    tta = TestTimeAugmentation(flip=True, shifts=1, padding="zeros")
    loader = DataLoader(TensorDataset(images), batch_size=5)
    (batch,) = _trainer(tmp_path, [tta]).predict(model, loader)
    with torch.no_grad():
        expected = tta.probabilities(model.eval(), images)
    torch.testing.assert_close(batch["probs"], expected)
    torch.testing.assert_close(batch["preds"], expected.argmax(1))


def test_flip_is_refused_where_the_data_forbids_it(tmp_path):
    class NoFlips(DigitsDataModule):
        allows_flip = False

    model = ImageClassifier("lenet5", num_classes=10, in_channels=1, image_size=16)
    message = (
        "TestTimeAugmentation: flip=True mirrors the images, but NoFlips's classes change when "
        "mirrored (allows_flip = False); remove the flip"
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        _trainer(tmp_path, [TestTimeAugmentation(flip=True)]).test(
            model, datamodule=NoFlips(image_size=16)
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "TestTimeAugmentation needs a view to add: flip=True or shifts >= 1"),
        ({"shifts": -1}, "TestTimeAugmentation: shifts must be an int >= 0, got -1"),
        ({"shifts": 1.5}, "TestTimeAugmentation: shifts must be an int >= 0, got 1.5"),
        ({"flip": True, "padding": "edge"}, "unknown padding 'edge'"),
    ],
)
def test_bad_options_are_refused_at_construction(kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        TestTimeAugmentation(**kwargs)


def test_shifts_as_large_as_the_image_are_refused():
    message = "TestTimeAugmentation: shifts=8 needs images larger than 8 pixels, got (8, 8)"
    with pytest.raises(ConfigError, match=re.escape(message)):
        tta_views(torch.zeros(1, 1, 8, 8), flip=False, shifts=8)
