"""The templates a linear classifier learns: each row of ``W`` shown as an image of its class."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as L
import torch
from lightning.pytorch.utilities import rank_zero_warn
from matplotlib.figure import Figure

from lightning_cv._io import save_figure
from lightning_cv.callbacks._wandb import log_image
from lightning_cv.models.linear import LinearClassifier
from lightning_cv.runs import output_folder

__all__ = ["LinearTemplates", "linear_templates", "plot_templates"]

MAX_COLUMNS = 10


def linear_templates(
    weight: torch.Tensor, in_channels: int, image_size: tuple[int, int]
) -> torch.Tensor:
    """Reshape the weights of a linear classifier on pixels into one image per class.

    Each template is min-max scaled on its own (all channels together), as in CS231n's
    "templates learnt by a linear classifier": bright pixels push the score of the class up.

    Args:
        weight: ``(K, C*H*W)`` weights of ``nn.Linear``, row ``k`` for class ``k``.
        in_channels: ``C``.
        image_size: ``(H, W)``.

    Returns:
        ``(K, C, H, W)`` float tensor in [0, 1], class ``k`` at index ``k``.

    Example:
        >>> linear_templates(torch.randn(10, 3 * 32 * 32), 3, (32, 32)).shape
        torch.Size([10, 3, 32, 32])
    """
    templates = weight.detach().float().cpu().reshape(len(weight), in_channels, *image_size)
    low = templates.amin(dim=(1, 2, 3), keepdim=True)
    high = templates.amax(dim=(1, 2, 3), keepdim=True)
    return (templates - low) / (high - low).clamp_min(1e-12)  # a constant template is all 0


def plot_templates(templates: torch.Tensor, class_names: Sequence[str], path: Path) -> None:
    """Draw one template per class in a grid, titled with the class name.

    Args:
        templates: ``(K, C, H, W)`` in [0, 1] (from :func:`linear_templates`); three channels
            are shown in colour, any other count as the grey mean of the channels.
        class_names: one name per class.
        path: the PNG file to write.
    """
    num_classes, channels = templates.shape[:2]
    columns = min(MAX_COLUMNS, num_classes)
    rows = math.ceil(num_classes / columns)
    figure = Figure(figsize=(1.5 * columns, 1.65 * rows + 0.4), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    # (K, C, H, W) -> (K, H, W, 3) colour or (K, H, W) grey
    images = templates.permute(0, 2, 3, 1) if channels == 3 else templates.mean(dim=1)
    for ax, image, name in zip(axes.flat, images.numpy(), class_names, strict=False):
        ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(name, fontsize=10 if num_classes <= 20 else 8)
    for ax in axes.flat:
        ax.set_axis_off()
    figure.suptitle("Templates learnt by the linear classifier (bright = high weight)")
    save_figure(figure, path)


class LinearTemplates(L.Callback):
    """After fitting and after testing, write ``templates.png``: one learnt template per class.

    Works when the module's ``backbone`` is a :class:`~lightning_cv.models.LinearClassifier`
    (softmax regression on pixels); for any other backbone it warns once and writes nothing.
    With a ``WandbLogger`` the picture is also logged as ``plots/templates``.

    Example:
        >>> trainer = L.Trainer(callbacks=[LinearTemplates()])  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self.warned = False

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer, pl_module)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer, pl_module)

    def _write(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        backbone = getattr(pl_module, "backbone", pl_module)
        if not isinstance(backbone, LinearClassifier):
            if not self.warned:
                rank_zero_warn(
                    f"LinearTemplates: the backbone is a {type(backbone).__name__}, not a "
                    "LinearClassifier on pixels; no templates written"
                )
                self.warned = True
            return
        weight = backbone.get_classifier().weight  # (K, C*H*W)
        templates = linear_templates(weight, backbone.in_channels, backbone.image_size)
        names = getattr(pl_module, "class_names", None) or [str(i) for i in range(len(weight))]
        folder = output_folder(trainer)  # None: a fast_dev_run, or not rank 0
        if folder is None:
            return
        plot_templates(templates, names, folder / "templates.png")
        log_image(trainer, "plots/templates", folder / "templates.png")
