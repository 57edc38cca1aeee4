"""What the user asked for against what a run uses: a checkpoint's or the data's values win,
never silently."""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Iterable
from typing import Any

from jsonargparse import Namespace

from lightning_cv.errors import ConfigError

__all__ = [
    "check_linked_values",
    "given_model_options",
    "import_class",
    "notice_checkpoint_values",
]

log = logging.getLogger("lightning_cv")


def import_class(class_path: str) -> type:
    """The class a parsed ``class_path`` names (jsonargparse makes it a full dotted path).

    Raises:
        ImportError: no such module; AttributeError: no such name in it.
    """
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def given_model_options(model: object) -> dict[str, Any]:
    """The model's ``init_args`` that differ from its class's defaults: what was asked for."""
    if not isinstance(model, Namespace) or not isinstance(model.get("class_path"), str):
        return {}
    try:
        defaults = inspect.signature(import_class(model.class_path)).parameters
    except (ImportError, AttributeError, ValueError, TypeError):
        return {}
    given = {}
    for name, value in (model.get("init_args") or Namespace()).items():
        default = defaults[name].default if name in defaults else inspect.Parameter.empty
        if value != default:
            given[name] = value
    return given


def notice_checkpoint_values(given: dict[str, Any], hparams: dict[str, Any], path: str) -> None:
    """Log each asked-for model option that the checkpoint's own value replaces: the
    checkpoint's architecture wins, as its weights need."""
    for name, value in given.items():
        if name == "weights":  # a checkpoint holds trained weights: no zoo entry is fetched
            continue
        if name in hparams and hparams[name] != value:
            log.warning(
                "--ckpt_path %s: the checkpoint's %s=%r is used, not %s=%r",
                path, name, hparams[name], name, value,
            )  # fmt: skip


def check_linked_values(given: dict[str, Any], data: object, names: Iterable[str]) -> None:
    """Stop when an asked-for model option that the data module links contradicts it."""
    for name in names:
        if name not in given or not hasattr(data, name):
            continue
        asked, linked = _plain(given[name]), _plain(getattr(data, name))
        if asked != linked:
            raise ConfigError(
                f"--model.{name} {given[name]!r} contradicts the data: {type(data).__name__} "
                f"has {name}={getattr(data, name)!r}, which is linked into the model; leave "
                f"--model.{name} out"
            )


def _plain(value: Any) -> Any:
    """Lists and tuples compare alike (YAML gives lists); an int image size is (n, n)."""
    if isinstance(value, list | tuple):
        return tuple(value)
    return value
