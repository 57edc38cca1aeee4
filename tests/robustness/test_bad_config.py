"""Bad options and config files, through ``lightning-cv``: exit code 2 with the problem named,
and the user's config file byte-identical afterwards.

``{config}`` in an argument list is the path of the case's YAML file.
"""

import pytest

from lightning_cv.cli import main
from lightning_cv.losses import LOSSES
from lightning_cv.models import list_models
from lightning_cv.optim import OPTIMIZERS, SCHEDULERS

from ..fake_folders import snapshot

FAST = [
    "--trainer.fast_dev_run", "true",
    "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
]  # fmt: skip

# (id, arguments, the config file's text or None, the message of the one line)
ONE_LINE = [
    ("val-fraction", ["fit", "--data.val_fraction", "1.5"], None,
     "val_fraction must be in [0, 1), got 1.5"),
    ("num-workers", ["fit", "--data.num_workers", "-1"], None, "num_workers must be >= 0, got -1"),
    ("batch-size", ["fit", "--data.batch_size", "0"], None, "batch_size must be >= 1, got 0"),
    ("lr", ["fit", "--model.lr", "0"], None, "lr must be > 0, got 0.0"),
    ("weight-decay", ["fit", "--model.weight_decay", "-1"], None,
     "weight_decay must be >= 0, got -1.0"),
    ("l1-strength", ["fit", "--model.l1_strength", "-1"], None,
     "l1_strength must be >= 0, got -1.0"),
    ("fold", ["fit", "--data.num_folds", "5", "--data.fold", "7"], None,
     "fold must be in [0, 5), got 7"),
    ("num-folds", ["fit", "--data.num_folds", "1"], None, "num_folds must be >= 2, got 1"),
    ("scheduler", ["fit", "--model.scheduler", "cosine_typo"], None,
     f"unknown scheduler 'cosine_typo'; did you mean 'cosine'? expected one of {list(SCHEDULERS)}"),
    ("loss", ["fit", "--model.loss", "hinges"], None,
     f"unknown loss 'hinges'; did you mean 'hinge'? expected one of {list(LOSSES)}"),
    ("backbone", ["fit", "--model.backbone", "resnet9000"], None,
     f"unknown model 'resnet9000'; expected one of {list_models()}"),
    ("transform", ["fit", "--data.train_transform", "fancy"], None,
     "unknown transform 'fancy'; expected a preset name ['cifar', 'digits', 'eval', 'imagenet', "
     "'randaugment', 'trivialaugment'] "
     "or a .yaml file"),
    ("transform-file", ["fit", "--data.train_transform", "augment.yaml"], None,
     "transform file 'augment.yaml' does not exist"),
    ("image-size", ["fit", "--data.image_size", "4"], None,
     "image_size must be >= 8 (the scans are 8x8), got 4"),
    ("lenet-too-small", ["fit", "--data.image_size", "10"], None,
     "lenet5 needs image_size >= 12x12, got 10x10"),
    ("yaml-out-of-range", ["fit", "--config", "{config}"], "model:\n  init_args:\n    lr: -1\n",
     "lr must be > 0, got -1.0"),
    ("yaml-unknown-optimizer", ["fit", "--config", "{config}"],
     "model:\n  init_args:\n    optimizer: adamw2\n",
     f"unknown optimizer 'adamw2'; did you mean 'adamw'? expected one of {list(OPTIMIZERS)}"),
]  # fmt: skip

# (id, arguments, the config file's text or None, lines stderr must hold): errors of the
# argument parser, which prints the usage first
PARSER = [
    ("unknown-yaml-key", ["fit", "--config", "{config}"], "trainer:\n  max_epoch: 3\n",
     ["lightning-cv: error: unknown option 'trainer.max_epoch' in the config; did you mean "
      "'--trainer.max_epochs'?"]),
    ("unknown-option", ["fit", "--trainer.nonsense", "1"], None,
     ["lightning-cv: error: unknown option --trainer.nonsense; no close match"]),
    ("missing-config", ["fit", "--config", "nowhere.yaml"], None,
     ["lightning-cv: error: no config file '{cwd}/nowhere.yaml' and no bundled recipe "
      "'nowhere'; `lightning-cv recipes` lists the recipes"]),
    ("yaml-syntax", ["fit", "--config", "{config}"], "trainer: [max_epochs: 3\n",
     ["lightning-cv: error: Problems parsing config: while parsing a flow sequence in "
      "\"<unicode string>\", line 1, column 10 did not find expected ',' or ']' in \"<unicode "
      "string>\", line 2, column 1"]),
    ("yaml-not-a-mapping", ["fit", "--config", "{config}"], "- 1\n- 2\n",
     ["lightning-cv: error: Unexpected config: - 1 - 2"]),
    ("yaml-wrong-type", ["fit", "--config", "{config}"], "trainer:\n  max_epochs: ten\n",
     ["lightning-cv: error: --trainer.max_epochs: expected int, got 'ten'"]),
    ("option-wrong-type", ["fit", "--data.batch_size", "abc"], None,
     ["lightning-cv: error: --data.batch_size: expected int, got 'abc'"]),
    ("option-not-a-choice", ["fit", "--data.split_strategy", "nope"], None,
     ["lightning-cv: error: --data.split_strategy: expected one of ['random', 'stratified', "
      "'group'], got 'nope'"]),
    ("unknown-data-class", ["fit", "--data", "NopeDataModule"], None,
     ["lightning-cv: error: --data: 'NopeDataModule' is neither a file nor a class name"]),
    ("unknown-subcommand", ["fitt"], None,
     ["lightning-cv: error: unknown command 'fitt'; did you mean 'fit'? expected one of "
      "['fit', 'validate', 'test', 'predict', 'recipes', 'preview', 'cv', 'tune', 'lr-find', "
        "'zoo', 'serve'] "
      "(lightning-cv --help)"]),
]  # fmt: skip

# (id, arguments, the one-line message): Lightning's own checks and the trainer's options
TRAINER_CASES = [
    ("max-epochs", ["fit", "--trainer.max_epochs", "-5"],
     "trainer: `max_epochs` must be a non-negative integer or -1. You passed in -5."),
    ("clip-algorithm", ["fit", "--trainer.gradient_clip_algorithm", "clamp"],
     "trainer: `gradient_clip_algorithm` clamp is invalid. Allowed algorithms: ['value', 'norm']."),
    ("warmup-steps", ["fit", "--model.warmup_steps", "-3"], "warmup_steps must be >= 0, got -3"),
]  # fmt: skip


def run(args: list[str], text: str | None, folder, capsys) -> list[str]:
    """Run ``lightning-cv`` with the case's config file; return stderr's lines after checking
    the exit code is 2 and the config file is unchanged."""
    config = folder / "configs" / "recipe.yaml"
    config.parent.mkdir()
    if text is not None:
        config.write_text(text)
    before = snapshot(config.parent)
    args = [arg.replace("{config}", str(config)) for arg in args]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, *FAST] if args[0] == "fit" else args)
    assert exit_info.value.code == 2
    assert snapshot(config.parent) == before
    return [line.strip() for line in capsys.readouterr().err.strip().splitlines()]


@pytest.mark.parametrize(
    ("args", "text", "message"), [case[1:] for case in ONE_LINE], ids=[case[0] for case in ONE_LINE]
)
def test_a_bad_value_ends_in_one_line(args, text, message, in_tmp, capsys):
    lines = run(args, text, in_tmp, capsys)
    assert lines[-1] == f"lightning-cv: error: {message}"


@pytest.mark.parametrize(
    ("args", "text", "expected"), [case[1:] for case in PARSER], ids=[case[0] for case in PARSER]
)
def test_the_parser_names_a_bad_option_or_config_file(args, text, expected, in_tmp, capsys):
    lines = run(args, text, in_tmp, capsys)
    for line in expected:
        assert line.format(cwd=in_tmp) in lines


@pytest.mark.parametrize(
    ("args", "message"),
    [case[1:] for case in TRAINER_CASES],
    ids=[case[0] for case in TRAINER_CASES],
)
def test_a_bad_trainer_option_ends_in_one_line(args, message, in_tmp, capsys):
    lines = run(args, None, in_tmp, capsys)
    assert lines[-1] == f"lightning-cv: error: {message}"
