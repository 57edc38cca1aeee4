"""``lightning-cv preview``: a PNG grid of augmented training samples of any data module."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.cli import LightningArgumentParser
from matplotlib.figure import Figure

from lightning_cv.cli.lightning_cli import LightningCVCLI
from lightning_cv.data import ImageDataModule
from lightning_cv.data.batches import to_image_tensor

__all__ = ["PreviewCLI", "augmented_samples", "plot_samples", "preview_main", "to_display"]


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

    The samples go through the training augmentation of the data module's pipeline: per sample
    (albumentations) or as one batch (the batch path's ``transform_batch``).
    """
    data.setup("fit")
    dataset = data.train_set
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(dataset), size=min(num_images, len(dataset)), replace=False)
    images, labels = augmented_samples(data, picks, seed)
    rows = -(-len(picks) // columns)
    figure = Figure(figsize=(1.6 * columns, 1.8 * rows), layout="constrained")
    pipeline = "batch" if data.uses_batches else "sample"
    transform = data.train_transform
    name = transform if isinstance(transform, str) else type(transform).__name__
    figure.suptitle(f"{type(data).__name__}: training samples after {name!r} ({pipeline} path)")
    for slot, axis in enumerate(figure.subplots(rows, columns, squeeze=False).flat):
        axis.set_axis_off()
        if slot >= len(picks):
            continue
        pixels = to_display(images[slot], data.mean, data.std)
        label = labels[slot]
        axis.imshow(pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels, cmap="gray")
        axis.set_title(data.class_names[label], fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)


def augmented_samples(
    data: ImageDataModule, picks: np.ndarray, seed: int
) -> tuple[torch.Tensor, list]:
    """The training samples ``picks`` after the training augmentation, normalised; the same
    ``seed`` draws the same augmentation (torch's generator is left as it was)."""
    dataset = data.train_set
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        if not data.uses_batches:
            samples = [dataset[int(pick)] for pick in picks]
            return torch.stack([image for image, _ in samples]), [label for _, label in samples]
        chosen = dataset.indices[picks]
        uint8 = to_image_tensor(np.asarray(dataset.images)[chosen])
        return data.transform_batch(uint8, train=True), dataset.labels[chosen].tolist()


class PreviewCLI(LightningCVCLI):
    """``lightning-cv preview``: the options of ``fit`` plus where and how many to draw."""

    PROG = "lightning-cv preview"
    DESCRIPTION = "Write a PNG grid of augmented training samples of a data module."

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        super().add_arguments_to_parser(parser)
        group = parser.add_argument_group("preview")
        group.add_argument("--output", type=str, default="preview.png", help="the PNG to write")
        group.add_argument("--num_images", type=int, default=32, help="samples to draw")
        group.add_argument(
            "--seed", type=int, default=0, help="draws the samples and their augmentation"
        )


def preview_main(args: list[str]) -> None:
    """Draw the samples of the data module that ``args`` configure (as for ``fit``)."""
    cli = PreviewCLI(args, run=False)
    output = Path(cli.config.output)
    plot_samples(cli.datamodule, output, num_images=cli.config.num_images, seed=cli.config.seed)
    print(f"wrote {output}")
