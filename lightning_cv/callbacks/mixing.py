"""MixUp and CutMix: each training batch mixed with itself, its labels turned into class
probabilities (torchvision's ``transforms.v2.MixUp`` and ``CutMix``).

The batch is mixed on the model's device after the data module's own work (the batch path's
augmentation and normalisation), in ``on_train_batch_start``; validation and test batches are
never mixed. Sample ``i`` is mixed with sample ``i - 1`` of the (shuffled) batch, with a share
drawn from Beta(alpha, alpha) for the whole batch. Every draw comes from torch's global CPU
generator, so ``seed_everything`` fixes them and a run resumed from a checkpoint of
:class:`~lightning_cv.callbacks.Resumable` draws on as if uninterrupted.

The loss gets class probabilities ``(B, K)``: ``cross_entropy`` (with label smoothing too),
``nll``, ``bce`` and ``mse`` take them; ``hinge`` refuses them. ``train/acc`` on mixed batches
counts a prediction right when it is the class with the larger share of the mix.
"""

from __future__ import annotations

import lightning.pytorch as L
import torch
from torchvision.transforms import v2

from lightning_cv.errors import ConfigError, check_range

__all__ = ["BatchMixing", "CutMix", "MixUp", "mix_batch"]


def mix_batch(
    images: torch.Tensor, labels: torch.Tensor, mixer: v2.Transform, *, p: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``images`` and class-index ``labels`` mixed by ``mixer`` with probability ``p``.

    Returns:
        The mixed images and their labels as class probabilities ``(B, K)``, or the batch
        unchanged when the draw skips it.

    Example:
        >>> images, labels = mix_batch(torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 0]),
        ...                            v2.MixUp(alpha=0.2, num_classes=3))
        >>> labels.shape
        torch.Size([4, 3])
    """
    if p < 1 and float(torch.rand(())) >= p:
        return images, labels
    return mixer(images, labels)


class BatchMixing(L.Callback):
    """Mix each training batch (the base of :class:`MixUp` and :class:`CutMix`).

    Args:
        alpha: the Beta(alpha, alpha) law of the mixing share, > 0.
        p: the chance that a batch is mixed, in [0, 1].

    Raises:
        ConfigError: ``alpha`` <= 0 or ``p`` outside [0, 1]; at fit, a second mixing callback,
            or a training batch that is not a list ``[images, labels]``.
    """

    mixer_class: type[v2.Transform]

    def __init__(self, alpha: float, p: float = 1.0) -> None:
        name = type(self).__name__
        check_range(f"{name} alpha", alpha, "> 0")
        check_range(f"{name} p", p, "[0, 1]")
        self.alpha = alpha
        self.p = p
        self.mixer: v2.Transform | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        mixers = [type(c).__name__ for c in trainer.callbacks if isinstance(c, BatchMixing)]
        if len(mixers) > 1:
            raise ConfigError(
                f"trainer.callbacks holds {len(mixers)} batch mixings {mixers}; expected one "
                "(each replaces the labels of the batch with class probabilities)"
            )
        num_classes = pl_module.hparams["num_classes"]
        self.mixer = self.mixer_class(alpha=self.alpha, num_classes=num_classes)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int
    ) -> None:
        if not isinstance(batch, list) or len(batch) != 2:
            raise ConfigError(
                f"{type(self).__name__} needs the training batch as a list [images, labels], to "
                f"replace its labels with class probabilities; got a {type(batch).__name__}"
            )
        batch[:] = mix_batch(*batch, self.mixer, p=self.p)


class MixUp(BatchMixing):
    """MixUp (Zhang et al. 2018): ``lam * x_i + (1 - lam) * x_j`` and the same mix of labels.

    Args:
        alpha: Beta(alpha, alpha) draws ``lam``; 0.2 is the paper's ImageNet value, 1.0 (uniform)
            its CIFAR-10 value.
        p: the chance that a batch is mixed.

    Example:
        >>> MixUp(alpha=0.2).alpha
        0.2
    """

    mixer_class = v2.MixUp

    def __init__(self, alpha: float = 0.2, p: float = 1.0) -> None:
        super().__init__(alpha, p)


class CutMix(BatchMixing):
    """CutMix (Yun et al. 2019): a box of ``x_j`` pasted into ``x_i``, labels mixed by its area.

    Args:
        alpha: Beta(alpha, alpha) draws the kept share ``lam``; 1.0 (uniform) as in the paper.
        p: the chance that a batch is mixed.

    Example:
        >>> CutMix(p=0.5).p
        0.5
    """

    mixer_class = v2.CutMix

    def __init__(self, alpha: float = 1.0, p: float = 1.0) -> None:
        super().__init__(alpha, p)
