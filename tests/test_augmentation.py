"""Modern augmentation: RandAugment and TrivialAugment presets per sample on both pipelines,
MixUp and CutMix as callbacks, soft targets in the losses.

Oracles: binomial bounds for the per-sample choice; torchvision's own MixUp and CutMix for the
mixed batch; ``F.cross_entropy`` with one-hot targets for the soft-target losses.
"""

import re

import albumentations as A
import lightning.pytorch as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import v2

from lightning_cv import ConfigError, CutMix, DigitsDataModule, ImageClassifier, MixUp
from lightning_cv.callbacks import mix_batch
from lightning_cv.cli import main
from lightning_cv.data import PRESETS, SampleDataset
from lightning_cv.data.batch_transforms import PerSampleChoice
from lightning_cv.losses import create_loss

from .test_batch_path import binomial_bounds
from .test_pipelines import picture

POLICY_PRESETS = ["randaugment", "trivialaugment"]
QUICK = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


class Add(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images + self.value


# ---------------------------------------------------------------- presets, per sample


def test_each_sample_gets_its_own_n_distinct_choices():
    torch.manual_seed(0)
    out = PerSampleChoice([Add(1), Add(10), Add(100)], n=2)(torch.zeros(3000, 1, 1, 1))
    totals = out.flatten().long()
    assert set(totals.tolist()) == {11, 101, 110}  # two distinct ops, never one twice
    for total in (11, 101, 110):
        low, high = binomial_bounds(3000, 1 / 3)
        assert low <= int((totals == total).sum()) <= high


@pytest.mark.parametrize("name", POLICY_PRESETS)
def test_the_policy_step_differs_between_samples_of_one_batch_on_the_batch_path(name):
    # kornia's own RandAugment and TrivialAugment draw their ops once per batch
    image = torch.from_numpy(picture(32, 3)).permute(2, 0, 1)[None].float() / 255
    choice = PRESETS[name].batch((32, 32), 3).steps[2]
    torch.manual_seed(0)
    out = choice(image.repeat(64, 1, 1, 1))
    assert len({tuple(sample.flatten().tolist()) for sample in out}) >= 20


@pytest.mark.parametrize("name", POLICY_PRESETS)
def test_the_policy_step_differs_between_samples_of_one_batch_on_the_sample_path(name):
    pipeline = PRESETS[name].sample((32, 32), (0.0,) * 3, (1.0,) * 3)
    choice = next(step for step in pipeline.transforms if isinstance(step, A.SomeOf))
    images = np.ascontiguousarray(np.broadcast_to(picture(32, 3), (64, 32, 32, 3)))
    dataset = SampleDataset(images, np.zeros(64), A.Compose([choice]))
    torch.manual_seed(0)
    out = [dataset[i][0] for i in range(64)]
    assert len({sample.tobytes() for sample in out}) >= 20


@pytest.mark.parametrize("pipeline", ["sample", "batch"])
@pytest.mark.parametrize("name", POLICY_PRESETS)
def test_a_policy_preset_mirrors_so_digits_refuse_it(name, pipeline):
    data = DigitsDataModule(train_transform=name, pipeline=pipeline)
    expected = (
        "train_transform: HorizontalFlip mirrors the images, but DigitsDataModule's classes "
        "change when mirrored (allows_flip = False); remove the flip"
    )
    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        data.setup("fit")


# ---------------------------------------------------------------- MixUp and CutMix


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: MixUp(alpha=0.0), "MixUp alpha must be > 0, got 0.0"),
        (lambda: CutMix(alpha=-1.0), "CutMix alpha must be > 0, got -1.0"),
        (lambda: MixUp(p=1.5), "MixUp p must be in [0, 1], got 1.5"),
        (lambda: CutMix(p=-0.1), "CutMix p must be in [0, 1], got -0.1"),
        (lambda: PerSampleChoice([Add(1)], n=2),
         "PerSampleChoice n must be in [1, 1] (the number of candidates), got 2"),
    ],
)  # fmt: skip
def test_bad_arguments_are_refused_at_construction(make, message):
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        make()


@pytest.mark.parametrize("mixer", [v2.MixUp(alpha=0.4, num_classes=5), v2.CutMix(num_classes=5)])
def test_a_mixed_batch_is_torchvisions_from_the_same_draws(mixer):
    images, labels = torch.rand(8, 3, 16, 16), torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
    torch.manual_seed(3)
    mixed, soft = mix_batch(images.clone(), labels, mixer)
    torch.manual_seed(3)
    expected_images, expected_soft = mixer(images.clone(), labels)
    assert torch.equal(mixed, expected_images) and torch.equal(soft, expected_soft)
    assert soft.shape == (8, 5) and torch.allclose(soft.sum(dim=1), torch.ones(8))


def test_p_skips_a_share_of_batches_unmixed():
    labels = torch.tensor([0, 1, 2, 3])
    torch.manual_seed(0)
    kinds = [mix_batch(torch.rand(4, 1, 4, 4), labels, v2.MixUp(num_classes=4), p=0.3)[1].ndim
             for _ in range(1000)]  # fmt: skip
    low, high = binomial_bounds(1000, 0.3)
    assert low <= kinds.count(2) <= high and kinds.count(1) == 1000 - kinds.count(2)


def fit_digits(*callbacks: L.Callback, pipeline: str = "batch", seed: int = 0) -> nn.Module:
    L.seed_everything(seed, verbose=False)
    trainer = L.Trainer(max_steps=4, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, callbacks=list(callbacks))  # fmt: skip
    model = ImageClassifier(backbone="lenet5", num_classes=10, in_channels=1, image_size=28,
                            loss_kwargs={"label_smoothing": 0.1})  # fmt: skip
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=32, pipeline=pipeline))
    return model


@pytest.mark.parametrize("pipeline", ["sample", "batch"])
def test_a_seeded_run_with_mixup_repeats_and_mixing_changes_it(pipeline):
    weights = [fit_digits(MixUp(alpha=0.4), pipeline=pipeline).backbone.state_dict()
               for _ in range(2)]  # fmt: skip
    plain = fit_digits(pipeline=pipeline).backbone.state_dict()
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in plain)
    assert not all(torch.equal(weights[0][key], plain[key]) for key in plain)


def test_two_mixings_are_refused_by_name():
    expected = (
        "trainer.callbacks holds 2 batch mixings ['MixUp', 'CutMix']; expected one (each "
        "replaces the labels of the batch with class probabilities)"
    )
    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        fit_digits(MixUp(), CutMix())


def test_a_batch_that_is_not_a_list_is_refused_by_name():
    expected = (
        "CutMix needs the training batch as a list [images, labels], to replace its labels "
        "with class probabilities; got a tuple"
    )
    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        CutMix().on_train_batch_start(None, None, (torch.rand(2, 1, 8, 8), torch.zeros(2)), 0)


@pytest.mark.parametrize("callback", ["MixUp", "CutMix"])
def test_a_recipe_takes_the_mixing_as_a_callback(callback, in_tmp, capsys):
    main(["fit", "--config", "quickstart", "--trainer.fast_dev_run", "true", *QUICK,
          f"--trainer.callbacks+=lightning_cv.callbacks.{callback}",
          "--trainer.callbacks.alpha", "0.5"])  # fmt: skip


def test_a_bad_alpha_on_the_command_line_is_one_line(in_tmp, capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--config", "quickstart", "--trainer.fast_dev_run", "true", *QUICK,
              "--trainer.callbacks+=lightning_cv.callbacks.MixUp",
              "--trainer.callbacks.alpha", "0"])  # fmt: skip
    assert capsys.readouterr().err == "lightning-cv: error: MixUp alpha must be > 0, got 0.0\n"


# ---------------------------------------------------------------- soft targets in the losses

LOGITS = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
LABELS = torch.tensor([0, 3, 1, 1, 2, 0])


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("cross_entropy", {}), ("cross_entropy", {"label_smoothing": 0.1}), ("nll", {}),
     ("bce", {}), ("mse", {}), ("cross_entropy", {"reduction": "none"})],
)  # fmt: skip
def test_one_hot_probabilities_give_the_class_index_loss(name, kwargs):
    loss = create_loss(name, **kwargs)
    one_hot = F.one_hot(LABELS, 4).float()
    assert torch.allclose(loss(LOGITS, one_hot), loss(LOGITS, LABELS), atol=1e-6)


def test_soft_cross_entropy_with_label_smoothing_is_the_smoothed_mix():
    soft = torch.softmax(torch.randn(6, 4, generator=torch.Generator().manual_seed(1)), dim=1)
    smoothed = soft * 0.9 + 0.1 / 4
    expected = -(smoothed * F.log_softmax(LOGITS, dim=1)).sum(dim=1).mean()
    loss = create_loss("cross_entropy", label_smoothing=0.1)(LOGITS, soft)
    assert torch.allclose(loss, expected, atol=1e-6)
    nll, cross_entropy = create_loss("nll"), create_loss("cross_entropy")
    assert torch.allclose(nll(LOGITS, soft), cross_entropy(LOGITS, soft))


def test_the_hinge_refuses_probabilities_by_name():
    expected = (
        "hinge: the targets are class probabilities (from MixUp or CutMix), which have no true "
        "class to lead by a margin; expected class indices, or a loss that takes probabilities: "
        "cross_entropy, nll, bce or mse"
    )
    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        create_loss("hinge")(LOGITS, F.one_hot(LABELS, 4).float())


def test_probabilities_of_the_wrong_shape_are_refused_by_name():
    expected = "cross_entropy: float targets must have the logits' shape (6, 4), got (6, 3)"
    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        create_loss("cross_entropy")(LOGITS, torch.rand(6, 3))
