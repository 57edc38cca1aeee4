"""Seeded train/validation index splits (scikit-learn) and their fingerprints."""

from __future__ import annotations

import hashlib
import math
from typing import Literal

import numpy as np
from sklearn.model_selection import (
    GroupKFold,
    GroupShuffleSplit,
    KFold,
    StratifiedKFold,
    train_test_split,
)

from lightning_cv.errors import ConfigError, check_range

__all__ = [
    "SPLIT_STRATEGIES",
    "SplitStrategy",
    "fingerprint",
    "kfold_indices",
    "split_indices",
]

SplitStrategy = Literal["random", "stratified", "group"]
SPLIT_STRATEGIES = ("random", "stratified", "group")
_MAX_SEED = 2**32 - 1  # scikit-learn's (and numpy's) largest random_state


def split_indices(
    labels: np.ndarray,
    *,
    fraction: float,
    strategy: SplitStrategy = "stratified",
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Split sample indices into (kept, held out), both sorted.

    Args:
        labels: one class index per sample.
        fraction: share of samples held out, in (0, 1).
        strategy: ``random``, ``stratified`` (class ratios kept) or ``group`` (no group on
            both sides; needs ``groups``).
        seed: the same seed gives the same split on every run and every DDP rank.
        groups: one group id per sample, for ``group``.

    Raises:
        ConfigError: a fraction outside (0, 1), an unknown strategy, ``group`` without groups,
            or a seed outside [0, 2**32 - 1].
    """
    if not 0 < fraction < 1:
        raise ConfigError(f"split fraction must be in (0, 1), got {fraction}")
    _check_options(strategy, groups, seed)
    indices = np.arange(len(labels))
    if strategy == "group":
        splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        kept, held_out = next(splitter.split(indices, labels, groups))
    else:
        stratify = labels if strategy == "stratified" else None
        if stratify is not None:
            held_out = math.ceil(fraction * len(labels))
            classes = len(np.unique(labels))
            smaller = min(held_out, len(labels) - held_out)
            if smaller < classes:
                raise ConfigError(
                    "a stratified split needs every class on both sides: holding out "
                    f"{fraction} of {len(labels)} samples leaves {smaller} for {classes} "
                    "classes; use a larger fraction, more samples or split_strategy 'random'"
                )
        kept, held_out = train_test_split(
            indices, test_size=fraction, random_state=seed, stratify=stratify
        )
    return np.sort(kept), np.sort(held_out)


def kfold_indices(
    labels: np.ndarray,
    *,
    num_folds: int,
    fold: int,
    strategy: SplitStrategy = "stratified",
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fold ``fold`` of a k-fold split: (training indices, validation indices), both sorted.

    Across ``fold = 0 .. num_folds - 1`` every sample is validated exactly once.

    Raises:
        ConfigError: ``num_folds`` below 2, ``fold`` outside ``[0, num_folds)``, an unknown
            strategy, or a seed outside [0, 2**32 - 1].
    """
    if num_folds < 2:
        raise ConfigError(f"num_folds must be >= 2, got {num_folds}")
    if not 0 <= fold < num_folds:
        raise ConfigError(f"fold must be in [0, {num_folds}), got {fold}")
    _check_options(strategy, groups, seed)
    splitters = {
        "random": KFold(num_folds, shuffle=True, random_state=seed),
        "stratified": StratifiedKFold(num_folds, shuffle=True, random_state=seed),
        "group": GroupKFold(num_folds, shuffle=True, random_state=seed),
    }
    indices = np.arange(len(labels))
    train, val = list(splitters[strategy].split(indices, labels, groups))[fold]
    return np.sort(train), np.sort(val)


def _check_options(strategy: str, groups: np.ndarray | None, seed: int) -> None:
    check_range("split_seed", seed, f"[0, {_MAX_SEED}]")
    if strategy not in SPLIT_STRATEGIES:
        raise ConfigError(
            f"unknown split_strategy {strategy!r}; expected one of {list(SPLIT_STRATEGIES)}"
        )
    if strategy == "group" and groups is None:
        raise ConfigError("split_strategy 'group' needs a group id per sample; this data has none")


def fingerprint(*index_sets: np.ndarray) -> str:
    """A short hash of index lists, logged so two runs can prove they used the same split."""
    digest = hashlib.sha256()
    for indices in index_sets:
        digest.update(np.asarray(indices, dtype=np.int64).tobytes())
        digest.update(b"|")
    return digest.hexdigest()[:16]
