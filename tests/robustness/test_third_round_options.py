"""Bad input, third round (issue 26: items 5, 6, 10, 11 and 12 in part): cv's grid, recipe
names, Union-typed options, fine-tuning arguments, scheduler options, split seeds and config
files that are no text, each through ``lightning-cv`` where a user meets it: one line naming
the value and what was expected, and the user's files byte-identical afterwards.
"""

import csv
import io
import struct
import zlib

import jsonargparse
import numpy as np
import pytest
import torch

from lightning_cv import ConfigError
from lightning_cv.callbacks import HeadFirstFinetuning
from lightning_cv.cli import LightningCVCLI, main
from lightning_cv.cli._parse_errors import _meant_branch
from lightning_cv.cli.cv import SET_BY_CV, CVRow, _write_results
from lightning_cv.cli.recipes import list_recipes
from lightning_cv.data import kfold_indices, split_indices
from lightning_cv.optim import check_scheduler

from ..fake_folders import snapshot

FAST = [
    "--trainer.fast_dev_run", "true",
    "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
]  # fmt: skip
HINT = "see every option: lightning-cv fit --help"


def error_lines(capsys, args: list[str]) -> list[str]:
    """Run ``lightning-cv args``; it must exit 2; stderr's lines, the prefix taken off."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    return [line.removeprefix("lightning-cv: error: ") for line in lines]


def one_line_error(capsys, args: list[str]) -> str:
    lines = error_lines(capsys, args)
    assert len(lines) == 1, lines
    return lines[0]


def png_bytes() -> bytes:
    """A real 1x1 PNG: what a user who renamed a picture to .yaml passes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x80")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


# ---------------------------------------------------------------- 5, 12: cv's grid

CV = ["cv", "--num_folds", "2", *FAST]


@pytest.mark.parametrize(
    ("key", "own"),
    [
        ("data.fold", "data.fold"),
        ("data.init_args.num_folds", "data.num_folds"),
        ("data.val_fraction", "data.val_fraction"),
        ("trainer.logger.init_args.save_dir", "trainer.logger"),
        ("trainer.enable_checkpointing", "trainer.enable_checkpointing"),
        ("test_after_fit", "test_after_fit"),
    ],
)
def test_cv_refuses_a_grid_key_it_sets_itself(in_tmp, capsys, key, own):
    message = one_line_error(capsys, [*CV, "--grid", f"{{{key}: [0, 1]}}"])
    assert message == (
        f"--grid {key}: cv sets {own} itself ({SET_BY_CV[own]}), so every row would be the "
        "same; leave it out of --grid"
    )
    assert snapshot(in_tmp) == {}


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ("{model.lr: [fast, 0.1]}", "--grid model.lr=fast: --model.lr: expected float, got 'fast'"),
        ("{model.lr: [0.1, 0]}", "--grid model.lr=0: lr must be > 0, got 0.0"),
        ("{model.lr: 0.1}", "--grid model.lr: expected a non-empty list of values, got 0.1; "
         "e.g. --grid '{model.k: [1, 3, 5]}'"),
        ("{model.optimizer: [sgd, adamm]}", "--grid model.optimizer=adamm: unknown optimizer "
         "'adamm'; did you mean 'adam'? expected one of ['adagrad', 'adam', 'adamw', 'rmsprop', "
         "'sgd']"),
    ],
)  # fmt: skip
def test_a_bad_grid_value_is_named_by_its_key_before_any_fold_trains(in_tmp, capsys, grid, message):
    assert one_line_error(capsys, [*CV, "--grid", grid]) == message
    assert snapshot(in_tmp) == {}  # no fold ran: no results folder, no base_config.yaml left


def test_cv_results_are_written_atomically(tmp_path):
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("the table failed half-way")

    (tmp_path / "cv_results.csv").write_text("model.lr,mean\n0.1,0.9\n")
    before = snapshot(tmp_path)
    rows = [CVRow({"model.lr": 0.1}, (0.9, 0.8)), CVRow({"model.lr": Unprintable()}, (0.5, 0.6))]
    with pytest.raises(RuntimeError, match="half-way"):
        _write_results(tmp_path, rows, "val/acc")
    assert snapshot(tmp_path) == before  # the old table whole, no staging file left

    _write_results(tmp_path, rows[:1], "val/acc")
    table = list(csv.reader(io.StringIO((tmp_path / "cv_results.csv").read_text())))
    assert table == [["model.lr", "mean", "std", "fold0", "fold1"],
                     ["0.1", str(rows[0].mean), str(rows[0].std), "0.9", "0.8"]]  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cv_results.csv", "cv_results.png"]


# ---------------------------------------------------------------- 6, 11: recipes


@pytest.mark.parametrize(
    "name", ["../lightning_cv/zoo/manifest", "..\\zoo\\manifest", "sub/quickstart", ".hidden"]
)
@pytest.mark.parametrize("command", ["show", "path"])
def test_a_recipe_name_with_a_path_in_it_is_refused(capsys, command, name):
    assert one_line_error(capsys, ["recipes", command, name]) == (
        f"recipe name {name!r} is not a name; expected one of {list_recipes()} or a path to a "
        "YAML file (--config path/to/recipe.yaml)"
    )
    assert capsys.readouterr().out == ""


def test_a_recipe_name_still_resolves_with_or_without_its_suffix(capsys):
    main(["recipes", "path", "quickstart.yaml"])
    main(["recipes", "path", "quickstart"])
    first, second = capsys.readouterr().out.splitlines()
    assert first == second and first.endswith("quickstart.yaml")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["recipes", "shw"], "unknown recipes command 'shw'; did you mean 'show'? expected one "
         "of ['list', 'show', 'path']"),
        (["recipes", "show"], "recipes show needs a recipe name, e.g. lightning-cv recipes show "
         f"quickstart; expected one of {list_recipes()}"),
        (["recipes", "path"], "recipes path needs a recipe name, e.g. lightning-cv recipes path "
         f"quickstart; expected one of {list_recipes()}"),
        (["recipes", "show", "quickstart", "extra"], "recipes: unrecognized arguments: extra; see "
         "lightning-cv recipes --help"),
    ],
)  # fmt: skip
def test_a_bad_recipes_command_line_ends_in_one_line(capsys, args, message):
    assert one_line_error(capsys, args) == message


@pytest.mark.parametrize("spelling", [["--config", "{path}"], ["--config={path}"]])
def test_a_binary_config_file_is_named_in_one_line(in_tmp, capsys, spelling):
    (in_tmp / "recipe.yaml").write_bytes(png_bytes())
    before = snapshot(in_tmp)
    args = ["fit", *(arg.format(path="recipe.yaml") for arg in spelling), *FAST]
    assert one_line_error(capsys, args) == (
        "config file 'recipe.yaml' is not a text file (byte 0x89 at offset 0 is not UTF-8); "
        "expected a YAML file"
    )
    assert snapshot(in_tmp) == before


# ---------------------------------------------------------------- 10: Union-typed options

TRANSFORM = """\
data:
  class_path: lightning_cv.data.DigitsDataModule
  init_args:
    train_transform:
{value}"""
RANDOM_APPLY = """\
      class_path: lightning_cv.data.BatchAugment
      init_args:
        steps:
        - class_path: lightning_cv.data.batch_transforms.RandomApply
          init_args:
            p: {p}
            transform: {{class_path: lightning_cv.data.batch_transforms.HorizontalFlip}}
"""

BAD_TRANSFORMS = [
    ("unknown-class", "      class_path: lightning_cv.data.Nope\n",
     "--data.train_transform: class_path 'lightning_cv.data.Nope': module 'lightning_cv.data' "
     "has no attribute 'Nope'"),
    ("no-augmentation", "      class_path: torch.nn.Linear\n      init_args: "
     "{in_features: 2, out_features: 2}\n",
     "--data.train_transform: Import path torch.nn.Linear does not correspond to a subclass "
     "of BatchAugment"),
    ("wrong-type-inside", RANDOM_APPLY.format(p="often"),
     "--data.train_transform.steps.p: expected float, got 'often'"),
]  # fmt: skip


@pytest.mark.parametrize(("value", "message"), [c[1:] for c in BAD_TRANSFORMS],
                         ids=[c[0] for c in BAD_TRANSFORMS])  # fmt: skip
def test_a_bad_batch_augment_reports_the_branch_the_user_meant(in_tmp, capsys, value, message):
    (in_tmp / "recipe.yaml").write_text(TRANSFORM.format(value=value))
    before = snapshot(in_tmp)
    assert error_lines(capsys, ["fit", "--config", "recipe.yaml", *FAST]) == [message, HINT]
    assert snapshot(in_tmp) == before


def test_a_batch_augment_that_refuses_its_value_reports_its_own_message(in_tmp, capsys):
    # RandomApply checks p when it is built: jsonargparse reports that in its Union report,
    # whose cause is the 'str' branch; build_error finds the branch the user meant
    (in_tmp / "recipe.yaml").write_text(TRANSFORM.format(value=RANDOM_APPLY.format(p=2.0)))
    with pytest.raises(ConfigError) as error_info:
        LightningCVCLI(["--config", "recipe.yaml", *FAST], run=False)
    assert "Union subtypes" in str(error_info.value.__cause__)
    assert str(error_info.value) == "RandomApply p must be in [0, 1], got 2.0"
    before = snapshot(in_tmp)
    lines = error_lines(capsys, ["fit", "--config", "recipe.yaml", *FAST])
    assert lines == ["RandomApply p must be in [0, 1], got 2.0"]
    assert snapshot(in_tmp) == before


@pytest.mark.upstream
def test_jsonargparse_union_report_has_the_shape_parse_errors_reads():
    # lightning_cv/cli/_parse_errors.py reads jsonargparse's message text (no structured record of
    # the Union branches' errors exists): this pins the shape it reads
    class Step(torch.nn.Module):
        pass

    parser = jsonargparse.ArgumentParser(exit_on_error=False)
    parser.add_argument("--step", type=str | Step)
    # the class of the error depends on the version; its text is what is pinned
    with pytest.raises(Exception) as error_info:
        parser.parse_object({"step": {"class_path": "torch.nn.Linear"}})
    message = str(error_info.value)
    upstream = f"jsonargparse {jsonargparse.__version__} changed its Union report: {message}"
    assert "Does not validate against any of the Union subtypes" in message, upstream
    assert "  - Expected a <class 'str'>" in message, upstream
    meant = _meant_branch(message).strip()
    assert meant.endswith("does not correspond to a subclass of Step"), upstream


CLASS_WEIGHTS = [
    ("yaml-tag", b"!!python/object/apply:os.system ['echo hacked > hacked']\n",
     "class_weights file 'weights.yaml': could not determine a constructor for the tag "
     "'tag:yaml.org,2002:python/object/apply:os.system'; expected a YAML or JSON list of "
     "numbers, one per class (e.g. [1.0, 9.0])"),
    ("binary", png_bytes(),
     "class_weights file 'weights.yaml' is not a text file; expected a YAML or JSON list of "
     "numbers, one per class (e.g. [1.0, 9.0])"),
    ("broken-yaml", b"[1.0, 2.0\n",
     "class_weights file 'weights.yaml': expected ',' or ']', but got '<stream end>'; expected "
     "a YAML or JSON list of numbers, one per class (e.g. [1.0, 9.0])"),
]  # fmt: skip


@pytest.mark.parametrize(("content", "message"), [c[1:] for c in CLASS_WEIGHTS],
                         ids=[c[0] for c in CLASS_WEIGHTS])  # fmt: skip
def test_a_bad_class_weights_file_is_named_in_one_line(in_tmp, capsys, content, message):
    (in_tmp / "weights.yaml").write_bytes(content)
    before = snapshot(in_tmp)
    args = ["fit", "--data.sampler", "balanced", "--data.class_weights", "weights.yaml", *FAST]
    assert one_line_error(capsys, args) == message
    assert snapshot(in_tmp) == before


# ---------------------------------------------------------------- 11: unchecked arguments


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"unfreeze_backbone_at_epoch": -1}, "unfreeze_backbone_at_epoch must be >= 0, got -1"),
        ({"backbone_initial_ratio_lr": 0.0}, "backbone_initial_ratio_lr must be > 0, got 0.0"),
        ({"backbone_initial_lr": -0.1}, "backbone_initial_lr must be > 0, got -0.1"),
        ({"initial_denom_lr": float("nan")}, "initial_denom_lr must be a finite number, got nan"),
        ({"rounding": -2}, "rounding must be >= 0, got -2"),
        ({"lambda_func": 0.5}, "lambda_func must be a function of the epoch, got 0.5"),
    ],
)
def test_head_first_finetuning_checks_its_arguments(kwargs, message):
    with pytest.raises(ConfigError) as error_info:
        HeadFirstFinetuning(**kwargs)
    assert str(error_info.value) == f"HeadFirstFinetuning {message}"


@pytest.mark.upstream  # jsonargparse's Union report for a list of callbacks
def test_head_first_finetuning_arguments_are_checked_through_the_command(in_tmp, capsys):
    args = ["fit", "--trainer.callbacks+=lightning_cv.callbacks.HeadFirstFinetuning",
            "--trainer.callbacks.unfreeze_backbone_at_epoch", "-1", *FAST]  # fmt: skip
    assert one_line_error(capsys, args) == (
        "HeadFirstFinetuning unfreeze_backbone_at_epoch must be >= 0, got -1"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ("{milestones: 5}", "milestones=5 is an int; expected a list of int"),
        ("{milestones: [2, x]}", "milestones=[2, 'x'] is a list; expected a list of int"),
    ],
)
def test_a_scheduler_option_of_the_wrong_inner_type_is_named(in_tmp, capsys, kwargs, message):
    args = ["fit", "--model.scheduler", "multistep", "--model.scheduler_kwargs", kwargs, *FAST]
    assert one_line_error(capsys, args) == f"scheduler 'multistep': {message}"


def test_scheduler_options_of_the_right_type_still_pass():
    check_scheduler("multistep", milestones=[2, 4], gamma=0.5)
    check_scheduler("multistep", milestones=(3,))


@pytest.mark.parametrize("folds", [[], ["--data.num_folds", "3"]])
@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_a_split_seed_out_of_range_is_refused_by_name(in_tmp, capsys, folds, seed):
    args = ["fit", "--data.split_seed", seed, *folds, *FAST]
    assert one_line_error(capsys, args) == (f"split_seed must be in [0, 4294967295], got {seed}")


def test_the_largest_split_seed_still_splits():
    labels = np.arange(20) % 2
    kept, held_out = split_indices(labels, fraction=0.2, seed=2**32 - 1)
    assert len(kept) == 16 and len(held_out) == 4
    train, val = kfold_indices(labels, num_folds=2, fold=0, seed=2**32 - 1)
    assert len(train) == len(val) == 10
