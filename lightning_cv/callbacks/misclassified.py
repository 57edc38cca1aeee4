"""A grid of the test images the model got wrong, most confident mistakes first, as a PNG."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_only
from matplotlib.figure import Figure

from lightning_cv._io import save_figure
from lightning_cv.callbacks._wandb import log_image
from lightning_cv.errors import ConfigError
from lightning_cv.runs import output_folder

__all__ = [
    "MisclassifiedGrid",
    "images_for_display",
    "plot_misclassified",
    "select_misclassified",
]

log = logging.getLogger(__name__)  # shown by the command (cli.quiet_lightning)

MAX_COLUMNS = 8


def _short(name: str, limit: int = 16) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def select_misclassified(
    logits: torch.Tensor, targets: torch.Tensor, max_images: int
) -> torch.Tensor:
    """Indices of the wrong predictions, most confident first, at most ``max_images`` of them.

    Ties keep their input order, so earlier samples win.

    Args:
        logits: ``(N, K)`` class scores.
        targets: ``(N,)`` true class indices.
        max_images: how many indices to return at most.

    Returns:
        ``(M,)`` indices into the batch, ``M <= max_images``.

    Example:
        >>> logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
        >>> select_misclassified(logits, torch.tensor([1, 1, 0]), max_images=5).tolist()
        [2, 0]
    """
    confidence, preds = logits.softmax(dim=1).max(dim=1)
    wrong = (preds != targets).nonzero().flatten()
    order = confidence[wrong].argsort(descending=True, stable=True)
    return wrong[order[:max_images]]


def images_for_display(
    images: torch.Tensor,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> np.ndarray:
    """Undo the normalization of a batch so it can be shown: ``(N, C, H, W)`` -> ``(N, H, W, C)``.

    With the data module's ``mean`` and ``std`` the pixels go back to [0, 1]; without them
    each image is min-max scaled to [0, 1].

    Example:
        >>> images_for_display(torch.zeros(2, 1, 8, 8), mean=[0.5], std=[0.2]).max()
        np.float32(0.5)
    """
    images = images.detach().float().cpu()
    if mean is not None and std is not None:
        images = images * torch.tensor(std).view(1, -1, 1, 1) + torch.tensor(mean).view(1, -1, 1, 1)
    else:
        low = images.amin(dim=(1, 2, 3), keepdim=True)
        high = images.amax(dim=(1, 2, 3), keepdim=True)
        images = (images - low) / (high - low).clamp_min(1e-12)
    return images.clamp(0, 1).permute(0, 2, 3, 1).numpy()


def plot_misclassified(
    images: np.ndarray,
    targets: Sequence[int],
    preds: Sequence[int],
    probs: Sequence[float],
    class_names: Sequence[str],
    path: Path,
    num_wrong: int,
) -> None:
    """Draw the images in a grid, each titled with its true and predicted class.

    Args:
        images: ``(N, H, W, C)`` pixels in [0, 1] (from :func:`images_for_display`).
        targets: true class index per image.
        preds: predicted class index per image.
        probs: the probability the model gave its prediction.
        class_names: one name per class.
        path: the PNG file to write.
        num_wrong: how many test images were misclassified in all (for the title).
    """
    columns = min(MAX_COLUMNS, len(images))
    rows = math.ceil(len(images) / columns)
    figure = Figure(figsize=(2.0 * columns, 2.3 * rows + 0.4), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).flat
    for ax, image, target, pred, prob in zip(axes, images, targets, preds, probs, strict=False):
        grey = image.shape[-1] == 1
        ax.imshow(image[..., 0] if grey else image, cmap="gray" if grey else None, vmin=0, vmax=1)
        true, predicted = _short(class_names[target]), _short(class_names[pred])
        ax.set_title(f"true: {true}\npred: {predicted} (p={prob:.2f})", fontsize=8)
    for ax in figure.axes:
        ax.set_axis_off()
    shown = "all" if len(images) == num_wrong else f"the {len(images)} most confident"
    figure.suptitle(f"Misclassified test images: {shown} of {num_wrong}")
    save_figure(figure, path)


class MisclassifiedGrid(L.Callback):
    """After testing, write ``misclassified.png``: the most confident mistakes on the test set.

    Keeps at most ``max_images`` images in memory (on the CPU) while the test batches pass;
    with several DDP ranks only rank 0's share of the test set is searched. Images are
    un-normalized with the data module's ``mean`` and ``std`` (min-max scaled without them). With
    a ``WandbLogger`` the picture is also logged as ``plots/misclassified``.

    Args:
        max_images: most images in the grid.

    Raises:
        ConfigError: ``max_images`` is not an integer >= 1.

    Example:
        >>> trainer = L.Trainer(callbacks=[MisclassifiedGrid(max_images=16)])  # doctest: +SKIP
    """

    def __init__(self, max_images: int = 32) -> None:
        if isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1:
            raise ConfigError(f"max_images must be an integer >= 1, got {max_images!r}")
        self.max_images = max_images
        self._reset()

    def _reset(self) -> None:
        self.num_wrong = 0
        # the kept mistakes: (M, C, H, W) images, (M, K) logits, (M,) targets, M <= max_images
        self.kept: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._reset()

    def on_test_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if not trainer.is_global_zero:
            return
        images, targets = batch[0], batch[1]
        logits = outputs["logits"].float()
        self.num_wrong += int((logits.argmax(dim=1) != targets).sum())
        keep = select_misclassified(logits, targets, self.max_images)
        found = (images[keep].detach().cpu(), logits[keep].cpu(), targets[keep].cpu())
        if self.kept is not None:  # the earlier mistakes go first, so they win ties
            found = tuple(torch.cat(pair) for pair in zip(self.kept, found, strict=True))
        keep = select_misclassified(found[1], found[2], self.max_images)
        self.kept = tuple(part[keep] for part in found)

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        if self.num_wrong == 0:
            rank_zero_only(log.info)(
                "MisclassifiedGrid: no misclassified test images, no picture written"
            )
            return
        images, logits, targets = self.kept
        data = trainer.datamodule
        pixels = images_for_display(images, getattr(data, "mean", None), getattr(data, "std", None))
        probs, preds = logits.softmax(dim=1).max(dim=1)
        names = getattr(pl_module, "class_names", None) or [str(i) for i in range(logits.shape[1])]
        folder = output_folder(trainer)  # None: a fast_dev_run, or not rank 0
        if folder is None:
            return
        path = folder / "misclassified.png"
        plot_misclassified(
            pixels, targets.tolist(), preds.tolist(), probs.tolist(), names, path, self.num_wrong
        )
        log_image(trainer, "plots/misclassified", path)
