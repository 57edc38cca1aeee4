"""Seeded train/validation index splits (scikit-learn) and their fingerprints."""

from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np
from sklearn.model_selection import GroupShuffleSplit, train_test_split

from lightning_cv.errors import ConfigError

__all__ = ["SPLIT_STRATEGIES", "SplitStrategy", "fingerprint", "split_indices"]

SplitStrategy = Literal["random", "stratified", "group"]
SPLIT_STRATEGIES = ("random", "stratified", "group")


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
        ConfigError: a fraction outside (0, 1), an unknown strategy, or ``group`` without groups.
    """
    if not 0 < fraction < 1:
        raise ConfigError(f"split fraction must be in (0, 1), got {fraction}")
    if strategy not in SPLIT_STRATEGIES:
        raise ConfigError(f"unknown split {strategy!r}; expected one of {list(SPLIT_STRATEGIES)}")
    indices = np.arange(len(labels))
    if strategy == "group":
        if groups is None:
            raise ConfigError("split 'group' needs a group id per sample; this data has none")
        splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        kept, held_out = next(splitter.split(indices, labels, groups))
    else:
        stratify = labels if strategy == "stratified" else None
        kept, held_out = train_test_split(
            indices, test_size=fraction, random_state=seed, stratify=stratify
        )
    return np.sort(kept), np.sort(held_out)


def fingerprint(*index_sets: np.ndarray) -> str:
    """A short hash of index lists, logged so two runs can prove they used the same split."""
    digest = hashlib.sha256()
    for indices in index_sets:
        digest.update(np.asarray(indices, dtype=np.int64).tobytes())
        digest.update(b"|")
    return digest.hexdigest()[:16]
