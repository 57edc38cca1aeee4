"""Augmentation presets: output shapes, YAML round trips, lecture rules."""

import re
import warnings

import albumentations as A
import numpy as np
import pytest
import torch

from lightning_cv import ConfigError
from lightning_cv.data import PRESETS, build_transform, load_transform, save_transform


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize(("size", "channels"), [((28, 28), 1), ((32, 32), 3), ((64, 48), 3)])
def test_preset_maps_uint8_image_to_normalized_tensor(name, size, channels):
    pipeline = build_transform(name, size=size, mean=(0.5,) * channels, std=(0.25,) * channels)
    image = np.random.default_rng(0).integers(0, 256, (40, 40, channels), dtype=np.uint8)
    out = pipeline(image=image)["image"]
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert tuple(out.shape) == (channels, *size)
    assert out.min() >= (0 - 0.5) / 0.25 - 1e-5 and out.max() <= (1 - 0.5) / 0.25 + 1e-5


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_yaml_round_trip(name, tmp_path):
    pipeline = build_transform(name, size=(32, 32), mean=(0.1, 0.2, 0.3), std=(0.4, 0.5, 0.6))
    save_transform(pipeline, tmp_path / f"{name}.yaml")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # albumentations takes back every argument it wrote
        loaded = load_transform(tmp_path / f"{name}.yaml")
    assert A.to_dict(loaded) == A.to_dict(pipeline)
    assert build_transform(str(tmp_path / f"{name}.yaml"), size=(1, 1), mean=(0,), std=(1,))


def test_digit_preset_never_flips():
    pipeline = build_transform("digits", size=(28, 28), mean=(0.1,), std=(0.3,))
    names = {type(step).__name__ for step in pipeline.transforms}
    assert not names & {"HorizontalFlip", "VerticalFlip", "Transpose", "D4"}
    assert {"Affine", "ElasticTransform"} <= names


def test_unknown_preset_and_missing_file():
    with pytest.raises(ConfigError, match=re.escape("unknown transform 'blur'; expected a preset")):
        build_transform("blur", size=(28, 28), mean=(0,), std=(1,))
    with pytest.raises(ConfigError, match=re.escape("transform file 'nope.yaml' does not exist")):
        build_transform("nope.yaml", size=(28, 28), mean=(0,), std=(1,))
