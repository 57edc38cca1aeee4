"""`lightning-cv preview`: a grid of augmented training samples."""

import torch
from PIL import Image

from lightning_cv.cli import main
from lightning_cv.data import build_transform
from lightning_cv.preview import to_display

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
