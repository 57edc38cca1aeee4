"""Class-balanced training draws for imbalanced data, on both pipelines and under DDP.

A sample of class ``c`` is drawn with probability proportional to ``class_weights[c]``, with
replacement, ``len(training set)`` times per epoch: ``WeightedRandomSampler``'s
``torch.multinomial`` draw. ``balanced`` weights each class by the inverse of its count in the
training split, so every class is drawn equally often. The same weights as the loss's
``class_weights`` (:class:`~lightning_cv.losses.CrossEntropy`) mean the same thing here.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import yaml
from torch.utils.data import DistributedSampler

from lightning_cv.errors import ConfigError, DataFileError

__all__ = ["SAMPLERS", "SamplerMode", "WeightedDraw", "read_class_weights", "sample_weights"]

SamplerMode = Literal["uniform", "balanced"]
SAMPLERS = ("uniform", "balanced")


def read_class_weights(
    sampler: str, class_weights: Sequence[float] | str | Path | None, *, shuffle: bool
) -> list[float] | None:
    """Check the sampling options and return the class weights (read from a file if a path).

    Args:
        sampler: ``uniform`` (every sample once per epoch) or ``balanced``.
        class_weights: one weight per class, or a YAML/JSON file holding that list; ``None``
            with ``balanced`` means inverse class frequency.
        shuffle: the data module's ``shuffle``; a weighted draw is random, so it must be on.

    Raises:
        ConfigError: an unknown ``sampler``, weights with ``uniform`` or without ``shuffle``,
            weights that are empty, negative, not finite or all 0.
        DataFileError: a weights file that is missing or does not hold a list of numbers.

    Example:
        >>> read_class_weights("balanced", [1, 3], shuffle=True)
        [1.0, 3.0]
    """
    if sampler not in SAMPLERS:
        raise ConfigError(f"unknown sampler {sampler!r}; expected one of {list(SAMPLERS)}")
    if sampler == "uniform":
        if class_weights is not None:
            raise ConfigError(
                f"class_weights {class_weights!r} apply to sampler='balanced' only; pass "
                "sampler='balanced' (--data.sampler balanced) or leave class_weights out"
            )
        return None
    if not shuffle:
        raise ConfigError("sampler='balanced' draws a random order each epoch; set shuffle=True")
    if isinstance(class_weights, (str, Path)):
        class_weights = _load_weights(Path(class_weights))
    if class_weights is None:
        return None
    weights = [float(weight) for weight in class_weights]
    if not weights or not all(math.isfinite(w) and w >= 0 for w in weights) or not any(weights):
        raise ConfigError(
            f"class_weights must be a non-empty list of finite numbers >= 0, not all 0, got "
            f"{list(class_weights)}"
        )
    return weights


def _load_weights(path: Path) -> list[float]:
    if not path.is_file():
        raise DataFileError(f"class_weights file {str(path)!r} does not exist")
    try:
        weights = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise DataFileError(
            f"class_weights file {str(path)!r} is not a text file; expected a YAML or JSON list "
            "of numbers, one per class (e.g. [1.0, 9.0])"
        ) from None
    except yaml.YAMLError as error:
        reason = getattr(error, "problem", None) or "not valid YAML"
        raise DataFileError(
            f"class_weights file {str(path)!r}: {reason}; expected a YAML or JSON list of "
            "numbers, one per class (e.g. [1.0, 9.0])"
        ) from None
    if not isinstance(weights, list) or not all(
        isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights
    ):
        raise DataFileError(
            f"class_weights file {str(path)!r} must hold a YAML or JSON list of numbers, one "
            f"per class (e.g. [1.0, 9.0]), got {weights!r}"
        )
    return weights


def sample_weights(
    labels: np.ndarray, num_classes: int, class_weights: Sequence[float] | None
) -> torch.Tensor:
    """Each sample's draw weight: its class's weight, by default ``1 / count`` of its class.

    Raises:
        ConfigError: ``class_weights`` whose length is not ``num_classes``, or that give every
            sample weight 0.

    Example:
        >>> sample_weights(np.array([0, 0, 0, 1]), 2, None).tolist()
        [0.3333333333333333, 0.3333333333333333, 0.3333333333333333, 1.0]
    """
    counts = np.bincount(labels, minlength=num_classes)
    if class_weights is None:  # a class with no training sample is never drawn anyway
        per_class = np.divide(1.0, counts, out=np.zeros(num_classes), where=counts > 0)
    elif len(class_weights) != num_classes:
        raise ConfigError(
            f"class_weights has {len(class_weights)} entries but the data set has "
            f"{num_classes} classes; give one weight per class"
        )
    else:
        per_class = np.asarray(class_weights, dtype=np.float64)
    weights = torch.from_numpy(per_class[labels])
    if not weights.sum() > 0:
        raise ConfigError(
            f"class_weights {list(class_weights)} give every training sample weight 0 (classes "
            f"present: {np.flatnonzero(counts).tolist()})"
        )
    return weights


class WeightedDraw(DistributedSampler):
    """``WeightedRandomSampler`` for one rank: positions drawn with replacement by ``weights``.

    Every rank draws the same ``len(weights)`` positions from ``seed + epoch`` and takes every
    ``world_size``-th of the first ``world_size * (len(weights) // world_size)``, so the
    ranks' shares are disjoint slots of one global draw, of equal length, and together are
    what one process draws. It is a ``DistributedSampler``, so Lightning keeps it under DDP
    instead of putting its own in its place; it also orders the batch path
    (:class:`~lightning_cv.data.BatchOrder`).

    Args:
        weights: ``(N,)`` non-negative draw weights, one per sample (:func:`sample_weights`).
        rank: this process' rank; ``world_size``: the number of ranks.
        seed: the draw seed (default: ``PL_GLOBAL_SEED``, which ``seed_everything`` sets).

    Example:
        >>> draw = WeightedDraw(torch.tensor([0.0, 1.0, 0.0]), seed=0)
        >>> list(draw)
        [1, 1, 1]
    """

    def __init__(
        self, weights: torch.Tensor, *, rank: int = 0, world_size: int = 1, seed: int | None = None
    ) -> None:
        seed = int(os.environ.get("PL_GLOBAL_SEED", 0)) if seed is None else seed
        weights = torch.as_tensor(weights, dtype=torch.double)
        # drop_last: the share is len // world_size, as on BatchOrder's training path
        super().__init__(weights, num_replicas=world_size, rank=rank, seed=seed, drop_last=True)

    def positions(self) -> torch.Tensor:
        """This rank's drawn positions (into ``weights``) of the current epoch."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        draw = torch.multinomial(self.dataset, len(self.dataset), True, generator=generator)
        return draw[: self.total_size][self.rank :: self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        return iter(self.positions().tolist())
