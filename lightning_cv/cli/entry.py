"""The ``lightning-cv`` console script: one small dispatch to the subcommands.

Each command's module is imported only when that command runs, so ``lightning-cv --help``,
``recipes`` and ``zoo list`` start without importing Lightning (seconds on a loaded machine).
"""

from __future__ import annotations

import difflib
import errno
import importlib
import re
import signal
import sys
import warnings
from pathlib import Path

from lightning_cv.errors import ConfigError, NonFiniteLossError

__all__ = ["main"]

HELP = """\
usage: lightning-cv COMMAND [options]

Train, evaluate and ship image classifiers (lightning-cv).

commands:
  fit        train a model (--config RECIPE, --model..., --data..., --trainer...)
  validate   evaluate a checkpoint on the validation split (--ckpt_path)
  test       evaluate a checkpoint on the test split (--ckpt_path)
  predict    write predictions.csv for the test split (--ckpt_path)
  recipes    list the bundled recipes, or show one: recipes show NAME
  preview    draw augmented training samples of a data module into a PNG
  cv         choose hyperparameters by k-fold cross-validation, then test once
  tune       search hyperparameters with Optuna (pruning, resuming, worker processes)
  lr-find    suggest a learning rate by Lightning's learning-rate range test
  zoo        list, load, evaluate, export, predict with and publish pretrained checkpoints
  serve      serve a zoo model or checkpoint over HTTP, with a web page: serve lenet5.mnist

A recipe is a file or the name of a bundled one: lightning-cv fit --config quickstart
'lightning-cv COMMAND --help' lists a command's options.
"""

TRAINER_COMMANDS = ("fit", "validate", "test", "predict")
_LEAF_SPEC = r"`isinstance\(treespec, LeafSpec\)` is deprecated"


# the other commands, by the function that runs each: imported on use (module docstring)
COMMANDS = {
    "recipes": ("lightning_cv.cli.recipes", "recipes_main"),
    "preview": ("lightning_cv.cli.preview", "preview_main"),
    "cv": ("lightning_cv.cli.cv", "cv_main"),
    "tune": ("lightning_cv.cli.tune", "tune_main"),
    "lr-find": ("lightning_cv.cli.lr_find", "lr_find_main"),
    "zoo": ("lightning_cv.cli.zoo", "zoo_main"),
    "serve": ("lightning_cv.serve.command", "serve_main"),
}


def _run(args: list[str]) -> None:
    command = args[0] if args else None
    if command in (None, "-h", "--help"):
        print(HELP, end="")
    elif command in COMMANDS:
        module, function = COMMANDS[command]
        getattr(importlib.import_module(module), function)(args[1:])
    elif command in TRAINER_COMMANDS or command.startswith("-"):  # --config x.yaml fit ...
        from lightning_cv.cli.lightning_cli import LightningCVCLI

        LightningCVCLI(args=args)
    else:
        _unknown_command(command)


def _unknown_command(command: str) -> None:
    commands = [*TRAINER_COMMANDS, *COMMANDS]
    close = difflib.get_close_matches(command, commands, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ConfigError(
        f"unknown command {command!r}; {hint}expected one of {commands} (lightning-cv --help)"
    )


_WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
_IN_THE_WAY = {errno.ENOTDIR, errno.EEXIST}  # a file stands where a folder is to be made
# Lightning's error for options that contradict each other or the checkpoint, raised while the
# run starts (after parsing); by name, as importing Lightning would slow every command's start
_LIGHTNING_CONFIG_ERRORS = ("MisconfigurationException",)


def _find_write_error(error: BaseException | None) -> OSError | None:
    """A full disk, a read-only or forbidden folder behind ``error``, if that is its cause."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in _WRITE_ERRORS | _IN_THE_WAY:
            return error
        error = error.__cause__ or error.__context__
    return None


def _write_error_line(error: OSError) -> str:
    """One line for a write that failed: the file, the cause, what to do."""
    if error.errno in _IN_THE_WAY and error.filename:
        wanted = Path(error.filename)
        blocking = next((p for p in (wanted, *wanted.parents) if p.is_file()), wanted)
        return (
            f"{str(wanted)!r} cannot be made: {str(blocking)!r} is a file, not a folder; move "
            "it, or write elsewhere (--trainer.default_root_dir, the logger's save_dir)"
        )
    where = repr(str(error.filename)) if error.filename else "a file"
    return (
        f"{where}: {error.strerror}; free space, fix the folder's permissions, or write "
        "elsewhere (--trainer.default_root_dir, the logger's save_dir)"
    )


def _find_config_error(error: BaseException | None) -> Exception | None:
    """The user-facing error behind ``error``, also when jsonargparse or Lightning wrapped it."""
    while error is not None:
        if isinstance(error, ConfigError | NonFiniteLossError):
            return error
        if type(error).__name__ in _LIGHTNING_CONFIG_ERRORS:
            return error
        error = error.__cause__ or error.__context__
    return None


_WORKER_ERROR = re.compile(r"^[\w.]+(?:Error|Exception): (.*)$")


def _one_line(error: Exception) -> str:
    """The message, also for an error raised in a DataLoader worker: torch re-raises it with
    the worker's whole traceback as its text, whose last line holds the original message."""
    text = str(error)
    if "Original Traceback" not in text:
        return text
    last = text.strip().splitlines()[-1]
    match = _WORKER_ERROR.match(last)
    return match[1] if match else last


def _is_sigterm(error: BaseException) -> bool:
    # by name: importing Lightning's exception class would slow every command's start
    return type(error).__name__ == "SIGTERMException"


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``lightning-cv`` console script.

    ``fit | validate | test | predict`` go to LightningCLI; ``recipes`` lists the bundled
    recipes, ``preview`` draws training samples, ``cv`` cross-validates hyperparameters and
    ``zoo`` lists, loads, evaluates, exports and publishes pretrained checkpoints.

    A bad value (a :class:`ConfigError`) ends the run with one line on stderr and exit code 2.
    """
    args = sys.argv[1:] if args is None else list(args)
    try:
        with warnings.catch_warnings():
            # Lightning 2.6's pytree helper calls an API torch 2.14 deprecated: not ours to fix
            warnings.filterwarnings("ignore", message=_LEAF_SPEC, category=FutureWarning)
            _run(args)
    except SystemExit as error:
        if _is_sigterm(error):  # Lightning's SIGTERMException is a SystemExit without a code
            print("lightning-cv: stopped by SIGTERM", file=sys.stderr)
            raise SystemExit(128 + signal.SIGTERM) from None
        raise
    except Exception as error:
        config_error, write_error = _find_config_error(error), _find_write_error(error)
        if write_error is not None and config_error is None:
            print(f"lightning-cv: error: {_write_error_line(write_error)}", file=sys.stderr)
            raise SystemExit(2) from None
        if config_error is None:
            raise
        print(f"lightning-cv: error: {_one_line(config_error)}", file=sys.stderr)
        raise SystemExit(2) from None
