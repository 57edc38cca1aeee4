"""The batch path: uint8 batches by one index, augmented per sample after transfer.

Oracles: torch's own pad-and-slice for ``PadCrop``, binomial bounds for the random draws, the
sample path's normalisation for evaluation batches.
"""

import math
from types import SimpleNamespace

import kornia.augmentation as K
import lightning.pytorch as L
import numpy as np
import pytest
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader

from lightning_cv import ConfigError, DigitsDataModule, ImageClassifier, ImageFolderDataModule
from lightning_cv.data import (
    PRESETS,
    BatchAugment,
    BatchOrder,
    HorizontalFlip,
    PadCrop,
    RandomApply,
    build_batch_transform,
    build_transform,
    save_transform,
)
from lightning_cv.data.batch_transforms import to_floats
from lightning_cv.data.batches import BatchDataset, batch_loader

from .fake_folders import write_image_folder


def binomial_bounds(trials: int, p: float, sigmas: float = 5.0) -> tuple[float, float]:
    spread = sigmas * math.sqrt(trials * p * (1 - p))
    return trials * p - spread, trials * p + spread


# ---------------------------------------------------------------- the ops


@pytest.mark.parametrize("mode", ["reflect", "replicate", "constant"])
def test_pad_crop_equals_torch_pad_then_the_drawn_slice(mode):
    images = torch.rand(64, 3, 12, 10)
    torch.manual_seed(3)
    cropped = PadCrop(4, padding_mode=mode)(images)
    torch.manual_seed(3)
    offsets = torch.randint(9, (2, 64))  # the same draw: rows, then columns
    padded = F.pad(images, (4, 4, 4, 4), mode=mode)
    for sample, (top, left) in enumerate(offsets.T.tolist()):
        torch.testing.assert_close(
            cropped[sample], padded[sample, :, top : top + 12, left : left + 10]
        )


def test_pad_crop_offsets_are_uniform_and_differ_within_a_batch():
    # a single bright pixel at (row 8, column 8) of 16x16 lands at (8 - dy + 4, 8 - dx + 4)
    images = torch.zeros(4000, 1, 16, 16)
    images[:, :, 8, 8] = 1.0
    torch.manual_seed(0)
    cropped = PadCrop(4)(images)
    where = cropped.flatten(1).argmax(dim=1)
    rows, columns = where // 16, where % 16
    for axis in (rows, columns):
        counts = torch.bincount(axis - 4, minlength=9)  # 4..12: the nine offsets
        low, high = binomial_bounds(4000, 1 / 9)
        assert counts.numel() == 9 and bool(((counts >= low) & (counts <= high)).all()), counts
    assert len(set(zip(rows.tolist()[:50], columns.tolist()[:50], strict=True))) > 20


def test_pad_crop_refuses_padding_as_large_as_the_image():
    with pytest.raises(ConfigError, match="PadCrop padding=8 needs images larger than 8 pixels"):
        PadCrop(8)(torch.rand(2, 1, 8, 8))
    with pytest.raises(ConfigError, match="unknown PadCrop padding_mode 'wrap'"):
        PadCrop(2, padding_mode="wrap")


def test_flip_rate_is_p_and_flipped_samples_are_mirrors():
    images = torch.arange(16.0).reshape(1, 1, 4, 4).repeat(2000, 1, 1, 1)
    torch.manual_seed(1)
    out = HorizontalFlip(p=0.3)(images)
    flipped = (out != images).flatten(1).any(dim=1)
    low, high = binomial_bounds(2000, 0.3)
    assert low <= int(flipped.sum()) <= high
    assert torch.equal(out[flipped], images[flipped].flip(-1))
    assert torch.equal(out[~flipped], images[~flipped])


def test_random_apply_transforms_only_the_chosen_share():
    images = torch.zeros(3000, 1, 2, 2)
    torch.manual_seed(2)
    out = RandomApply(K.RandomErasing(scale=(1.0, 1.0), ratio=(1.0, 1.0), value=1.0, p=1.0))(
        images.clone()
    )
    touched = out.flatten(1).amax(dim=1) > 0
    low, high = binomial_bounds(3000, 0.5)
    assert low <= int(touched.sum()) <= high
    assert bool((out[~touched] == 0).all())


# ---------------------------------------------------------------- the presets


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("channels", [1, 3])
def test_every_preset_keeps_shape_and_range_on_grey_and_colour(name, channels):
    images = torch.rand(16, channels, 32, 32)
    out = build_batch_transform(name, size=(32, 32), channels=channels)(images.clone())
    assert out.shape == images.shape and out.dtype == torch.float32
    assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_cifar_preset_augments_each_sample_of_a_batch_differently():
    image = torch.rand(1, 3, 32, 32)
    torch.manual_seed(0)
    out = build_batch_transform("cifar", size=(32, 32))(image.repeat(32, 1, 1, 1))
    distinct = {tuple(sample.flatten()[:64].tolist()) for sample in out}
    assert len(distinct) >= 30


def test_digits_preset_never_flips():
    # an image and its mirror: after the digits preset, no sample is closer to the mirror
    image = torch.zeros(1, 1, 28, 28)
    image[..., 6:22, 6:10] = 1.0  # a bar on the left
    torch.manual_seed(0)
    out = build_batch_transform("digits", size=(28, 28))(image.repeat(500, 1, 1, 1))
    left, right = out[..., :14].sum(dim=(1, 2, 3)), out[..., 14:].sum(dim=(1, 2, 3))
    assert bool((left > right).all())
    assert not any(isinstance(step, HorizontalFlip | K.RandomHorizontalFlip)
                   for step in build_batch_transform("digits", size=(28, 28)).steps)  # fmt: skip


def test_a_per_sample_pipeline_on_the_batch_path_is_refused_by_name():
    message = (
        "transform 'augment.yaml' is an albumentations (per-sample) pipeline; pass "
        "pipeline='sample'"
    )
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_batch_transform("augment.yaml", size=(28, 28))
    with pytest.raises(ConfigError, match="unknown batch transform 'sharpen'"):
        build_batch_transform("sharpen", size=(28, 28))
    data = DigitsDataModule(train_transform=BatchAugment([PadCrop(2)]), pipeline="sample")
    with pytest.raises(ConfigError, match="a BatchAugment runs on the batch pipeline only"):
        data.setup("fit")


# ---------------------------------------------------------------- order and loader


def test_ranks_take_disjoint_equal_shares_of_one_epoch_order():
    shares = [
        BatchOrder(np.arange(101), 8, shuffle=True, rank=rank, world_size=2, seed=5)
        for rank in (0, 1)
    ]
    first, second = (set(share.epoch_indices().tolist()) for share in shares)
    assert not first & second and len(first) == len(second) == 50
    assert len(shares[0]) == len(shares[1]) == 7  # ceil(50 / 8): no rank waits for another
    before = shares[0].epoch_indices()
    shares[0].set_epoch(1)
    assert not torch.equal(before, shares[0].epoch_indices())
    shares[0].set_epoch(0)
    assert torch.equal(before, shares[0].epoch_indices())  # a resumed epoch repeats its order


def test_evaluation_order_covers_every_sample_once_across_ranks():
    orders = [BatchOrder(np.arange(11), 4, shuffle=False, rank=r, world_size=2) for r in (0, 1)]
    seen = sorted(index for order in orders for batch in order for index in batch.tolist())
    assert seen == list(range(11))


def test_loader_yields_uint8_batches_by_one_index_each():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 1, 2, 2)
    loader = batch_loader(images, torch.arange(10), BatchOrder(np.arange(10), 4, shuffle=True))
    batches = list(loader)
    assert [len(labels) for _, labels in batches] == [4, 4, 2] == [len(b) for b in loader.sampler]
    for uint8, labels in batches:
        assert uint8.dtype == torch.uint8 and torch.equal(uint8[:, 0, 0, 0].long(), labels)


def test_the_training_loader_is_a_dataloader_as_every_lightning_user_expects():
    data = DigitsDataModule(batch_size=100)
    data.setup("fit")
    loader = data.train_dataloader()
    assert isinstance(loader, DataLoader) and isinstance(loader.dataset, BatchDataset)
    assert len(loader.dataset) == 1437 and loader.batch_size is None  # the whole training split
    assert isinstance(loader.sampler, BatchOrder) and len(loader) == len(loader.sampler) == 13
    chosen = next(iter(loader.sampler))  # one index list per batch: the training view's samples
    images, labels = next(iter(loader))
    assert torch.equal(labels, torch.from_numpy(data.train_set.labels)[chosen])
    assert torch.equal(images, loader.dataset.images[chosen])
    before = torch.get_rng_state()
    list(loader)  # an epoch moves no draw of torch's generator, which seeds the augmentation
    assert torch.equal(torch.get_rng_state(), before)
    batches = iter(loader)  # a resumed run's Lightning: iter(), then the epoch, then batches
    loader.sampler.set_epoch(1)
    epoch_1 = loader.dataset.labels[loader.sampler.epoch_indices()[:100]]
    assert torch.equal(next(batches)[1], epoch_1) and not torch.equal(epoch_1, labels)


# ---------------------------------------------------------------- the data module


def test_auto_picks_the_batch_path_for_memory_and_the_sample_path_for_files(tmp_path):
    digits = DigitsDataModule()
    digits.setup("fit")
    assert digits.uses_batches
    digits_yaml = tmp_path / "digits.yaml"  # an albumentations file: no flips, as digits need
    save_transform(build_transform("digits", size=(28, 28), mean=(0.5,), std=(0.5,)), digits_yaml)
    yaml_transform = DigitsDataModule(train_transform=str(digits_yaml))
    yaml_transform.setup("fit")
    assert not yaml_transform.uses_batches
    photos = tmp_path / "photos"
    write_image_folder(photos, ("cat", "dog"), per_class=10, size=20)
    stats = {"mean": (0.5,) * 3, "std": (0.25,) * 3, "val_fraction": 0.25}
    folder = ImageFolderDataModule(photos, image_size=16, **stats)
    folder.setup("fit")
    assert not folder.uses_batches
    decoded = ImageFolderDataModule(photos, image_size=16, pipeline="batch", batch_size=4, **stats)
    decoded.setup("fit")
    images, _ = next(iter(decoded.train_dataloader()))
    assert decoded.uses_batches and images.shape == (4, 3, 16, 16) and images.dtype == torch.uint8


def test_normalisation_follows_statistics_set_after_the_first_batch():
    """``(x / 255 - mean) / std`` in float32 (within 3 ulp of the float64 result), with the
    statistics the data module holds at each batch, not those of the first one."""
    data = DigitsDataModule(batch_size=16, train_transform="eval")
    data.setup("fit")
    height, width = data.image_size, data.image_size
    uint8 = (torch.arange(4 * height * width) % 256).to(torch.uint8).view(4, 1, height, width)
    for mean, std in ((data.mean, data.std), ((0.25,), (0.5,))):
        data.mean, data.std = mean, std
        exact = (uint8.double() / 255 - mean[0]) / std[0]
        for train in (False, True):
            batch = data.transform_batch(uint8, train=train)
            assert batch.dtype == torch.float32 and batch.shape == uint8.shape
            torch.testing.assert_close(batch.double(), exact, rtol=3.6e-7, atol=3.6e-7)


def test_evaluation_batches_are_only_normalised(tmp_path):
    data = DigitsDataModule(batch_size=16)
    data.setup("fit")
    uint8, _ = next(iter(data.val_dataloader()))
    expected = (uint8.float() / 255 - data.mean[0]) / data.std[0]
    torch.testing.assert_close(data.transform_batch(uint8, train=False), expected)
    assert to_floats(uint8, (32, 32)).shape == (16, 1, 32, 32)  # other sizes are resized
    per_sample = DigitsDataModule(pipeline="sample")
    with pytest.raises(RuntimeError, match=r"transform_batch is the batch pipeline's; call setup"):
        per_sample.transform_batch(uint8, train=False)


def test_the_same_seed_gives_the_same_augmented_batches_and_another_seed_others():
    data = DigitsDataModule(batch_size=64)
    data.setup("fit")
    uint8, _ = next(iter(data.train_dataloader()))

    def augmented(seed):
        torch.manual_seed(seed)
        return data.transform_batch(uint8.clone(), train=True)

    assert torch.equal(augmented(4), augmented(4))
    assert not torch.equal(augmented(4), augmented(5))


def test_ranks_draw_different_augmentations_from_one_global_seed():
    data = DigitsDataModule(batch_size=64)
    data.setup("fit")
    uint8, _ = next(iter(data.train_dataloader()))
    outputs = []
    for rank in (0, 1):
        data.trainer = SimpleNamespace(global_rank=rank)  # what transform_batch reads
        torch.manual_seed(0)  # seed_everything gives every rank the same global state
        outputs.append(data.transform_batch(uint8.clone(), train=True))
    assert not torch.equal(*outputs)


def test_a_run_on_the_batch_path_trains_and_its_checkpoint_loads_weights_only(tmp_path):
    augment = BatchAugment([PadCrop(2), K.RandomAffine(degrees=10, p=0.5)])
    data = DigitsDataModule(batch_size=64, train_transform=augment)
    model = ImageClassifier("lenet5", num_classes=10, in_channels=1, image_size=28, lr=3e-3)
    trainer = L.Trainer(
        max_epochs=3, logger=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(model, datamodule=data)
    assert data.uses_batches
    assert trainer.test(model, datamodule=data, verbose=False)[0]["test/acc"] > 0.9
    path = tmp_path / "run.ckpt"
    trainer.save_checkpoint(path)
    saved = torch.load(path, weights_only=True)
    assert saved["datamodule_hyper_parameters"]["train_transform"][0].startswith("PadCrop(")
    ImageClassifier.load_from_checkpoint(path, weights_only=True)
