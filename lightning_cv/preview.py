"""``lightning-cv preview``: a PNG grid of augmented training samples of any data module."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from lightning_cv.data import ImageDataModule

__all__ = ["plot_samples", "preview_main", "to_display"]


def to_display(image: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """Undo ``Normalize``: a (C, H, W) tensor -> (H, W, C) floats in [0, 1] for imshow."""
    channels = image.shape[0]
    mean_t = torch.tensor(mean, dtype=image.dtype).reshape(channels, 1, 1)
    std_t = torch.tensor(std, dtype=image.dtype).reshape(channels, 1, 1)
    return (image * std_t + mean_t).clamp(0, 1).permute(1, 2, 0).numpy()


def plot_samples(
    data: ImageDataModule, path: Path, *, num_images: int = 32, columns: int = 8, seed: int = 0
) -> None:
    """Draw ``num_images`` random training samples, as the model sees them, titled by class.

    Each sample goes through the training transform, so the grid shows the augmentation.
    """
    data.setup("fit")
    dataset = data.train_set
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(dataset), size=min(num_images, len(dataset)), replace=False)
    rows = -(-len(picks) // columns)
    figure = Figure(figsize=(1.6 * columns, 1.8 * rows), layout="constrained")
    figure.suptitle(f"{type(data).__name__}: training samples after {data.train_transform!r}")
    for slot, axis in enumerate(figure.subplots(rows, columns, squeeze=False).flat):
        axis.set_axis_off()
        if slot >= len(picks):
            continue
        image, label = dataset[int(picks[slot])]
        pixels = to_display(image, data.mean, data.std)
        axis.imshow(pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels, cmap="gray")
        axis.set_title(data.class_names[label], fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)


def preview_main(args: list[str]) -> None:
    """Parse ``preview`` options; every other argument configures the data as for ``fit``."""
    from lightning_cv.cli import LightningCVCLI  # here: the CLI module imports this one

    parser = argparse.ArgumentParser(
        prog="lightning-cv preview",
        description="Write a PNG grid of augmented training samples of a data module. Other "
        "options (--config, --data...) are those of `lightning-cv fit`.",
    )
    parser.add_argument("--output", type=Path, default=Path("preview.png"))
    parser.add_argument("--num_images", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    options, rest = parser.parse_known_args(args)
    cli = LightningCVCLI(args=rest, run=False)
    plot_samples(cli.datamodule, options.output, num_images=options.num_images, seed=options.seed)
    print(f"wrote {options.output}")
