"""Seeded splits: no overlap, class ratios kept, groups never straddle, folds cover once."""

import re

import numpy as np
import pytest

from lightning_cv import ConfigError, DigitsDataModule
from lightning_cv.data import fingerprint, kfold_indices, split_indices

LABELS = np.repeat(np.arange(4), [40, 30, 20, 10])  # imbalanced: 100 samples
GROUPS = np.arange(100) // 5  # 20 groups of 5


@pytest.mark.parametrize("strategy", ["random", "stratified", "group"])
def test_split_is_a_seeded_partition(strategy):
    kept, held = split_indices(LABELS, fraction=0.2, strategy=strategy, seed=3, groups=GROUPS)
    assert not set(kept) & set(held)
    np.testing.assert_array_equal(np.sort(np.concatenate([kept, held])), np.arange(100))
    again = split_indices(LABELS, fraction=0.2, strategy=strategy, seed=3, groups=GROUPS)
    assert fingerprint(kept, held) == fingerprint(*again)
    other = split_indices(LABELS, fraction=0.2, strategy=strategy, seed=4, groups=GROUPS)
    assert fingerprint(kept, held) != fingerprint(*other)


def test_stratified_split_keeps_class_ratios_within_one_sample():
    _, held = split_indices(LABELS, fraction=0.25, strategy="stratified", seed=0)
    counts = np.bincount(LABELS[held], minlength=4)
    assert np.all(np.abs(counts - np.array([40, 30, 20, 10]) * 0.25) <= 1)


def test_group_split_never_puts_a_group_on_both_sides():
    kept, held = split_indices(LABELS, fraction=0.3, strategy="group", seed=0, groups=GROUPS)
    assert not set(GROUPS[kept]) & set(GROUPS[held])


@pytest.mark.parametrize("strategy", ["random", "stratified", "group"])
def test_k_folds_validate_every_sample_exactly_once(strategy):
    folds = [
        kfold_indices(LABELS, num_folds=5, fold=k, strategy=strategy, seed=0, groups=GROUPS)
        for k in range(5)
    ]
    validated = np.concatenate([val for _, val in folds])
    np.testing.assert_array_equal(np.sort(validated), np.arange(100))
    for train, val in folds:
        assert not set(train) & set(val) and len(train) + len(val) == 100
    if strategy == "group":
        assert all(not set(GROUPS[train]) & set(GROUPS[val]) for train, val in folds)


def test_datamodule_k_fold_validates_on_the_chosen_fold():
    folds = [DigitsDataModule(num_folds=4, fold=k) for k in range(4)]
    for data in folds:
        data.setup("fit")
    validated = np.concatenate([data.val_set.indices for data in folds])
    np.testing.assert_array_equal(np.sort(validated), np.arange(1437))
    assert len({data.hparams["split_fingerprint"] for data in folds}) == 4


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: split_indices(LABELS, fraction=1.0), "split fraction must be in (0, 1), got 1.0"),
        (
            lambda: split_indices(LABELS, fraction=0.2, strategy="chrono"),
            "unknown split_strategy 'chrono'; expected one of ['random', 'stratified', 'group']",
        ),
        (
            lambda: split_indices(LABELS, fraction=0.2, strategy="group"),
            "split_strategy 'group' needs a group id per sample; this data has none",
        ),
        (lambda: kfold_indices(LABELS, num_folds=1, fold=0), "num_folds must be >= 2, got 1"),
        (lambda: kfold_indices(LABELS, num_folds=5, fold=5), "fold must be in [0, 5), got 5"),
    ],
)
def test_bad_split_settings(call, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        call()


@pytest.mark.parametrize("where", ["flag", "recipe"])
def test_the_old_option_name_split_is_refused_naming_split_strategy(where, in_tmp, capsys):
    """``split`` was renamed ``split_strategy`` (no alias): a flag or a recipe key that still
    says ``split`` gets the parser's one line listing the options, and the recipe is kept."""
    from lightning_cv.cli import main

    recipe = in_tmp / "old.yaml"
    recipe.write_text("data:\n  init_args:\n    split: random\n")
    before = recipe.read_bytes()
    old = ["--data.split", "random"] if where == "flag" else ["--config", str(recipe)]
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", "quickstart", *old, "--trainer.fast_dev_run", "true"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "lightning-cv: error: --data.split: DigitsDataModule has no option 'split'; expected one "
        "of ['batch_size', 'class_weights', 'download', 'drop_last', 'eval_transform', 'fold', "
        "'image_size', 'num_folds', 'num_workers', 'pipeline', 'root', 'sampler', 'shuffle', "
        "'split_seed', 'split_strategy', 'train_transform', 'val_fraction']\n"
        "see every option: lightning-cv fit --help\n"
    )
    assert recipe.read_bytes() == before
