"""The one lookup behind every registry (models, optimizers, schedulers, losses): a name
found in its table, and options checked against the signature of what they are passed to,
before anything is built: one line instead of a deep TypeError."""

from __future__ import annotations

import collections.abc
import inspect
import math
import types
import typing
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from lightning_cv.errors import ConfigError, check_choice, did_you_mean

__all__ = ["check_options", "lookup"]

T = TypeVar("T")


def lookup(kind: str, name: str, table: Mapping[str, T]) -> T:
    """The table's entry for ``name``.

    Raises:
        ConfigError: ``"unknown optimizer 'adamm'; did you mean 'adam'? expected one of
            [...]"``.

    Example:
        >>> lookup("reduction", "sum", {"mean": "the batch mean", "sum": "the batch sum"})
        'the batch sum'
    """
    check_choice(kind, name, table)
    return table[name]


def check_options(
    kind: str,
    name: str,
    target: Callable,
    kwargs: Mapping[str, Any],
    given: Collection[str] = (),
) -> None:
    """Refuse an option ``target`` lacks, a value of the wrong type, or a NaN or infinite number.

    Args:
        kind: what the options are for, e.g. ``"optimizer"``.
        name: its registry name, e.g. ``"sgd"``.
        target: the class or function the options go to; its signature decides.
        kwargs: the options.
        given: parameters the caller passes itself, which are no user options.

    Raises:
        ConfigError: ``"optimizer 'sgd' has no option ['momentun']; did you mean 'momentum'?
            expected some of [...]"`` or ``"optimizer 'sgd': momentum='0.9' is a str; expected
            float"``.

    Example:
        >>> import torch
        >>> check_options("optimizer", "sgd", torch.optim.SGD, {"momentum": 0.9}, given=["lr"])
    """
    parameters = inspect.signature(target).parameters.values()
    options = {p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    options -= {*given, "self"}
    unknown = sorted(set(kwargs) - options)
    if unknown:
        hint = did_you_mean(unknown[0], options) if len(unknown) == 1 else ""
        raise ConfigError(
            f"{kind} {name!r} has no option {unknown};{hint} expected some of {sorted(options)}"
        )
    hints = _hints(target)
    for key, value in kwargs.items():
        expected = hints.get(key)
        if expected is not None and not _matches(value, expected):
            found = type(value).__name__
            article = "an" if found[0] in "aeiou" else "a"
            raise ConfigError(
                f"{kind} {name!r}: {key}={value!r} is {article} {found}; expected "
                f"{_describe(expected)}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{kind} {name!r}: {key}={value} is not a finite number")


def _hints(target: Callable) -> dict[str, Any]:
    """The parameters' annotations, resolved one by one (an unresolvable one is skipped).

    ``collections.abc`` names resolve also where the library imports them for the type
    checker only (torch's ``MultiStepLR`` takes ``milestones: "Iterable[int]"``).
    """
    function = target.__init__ if inspect.isclass(target) else target
    namespace = {**vars(collections.abc), **getattr(inspect.getmodule(function), "__dict__", {})}
    hints = {}
    for parameter in inspect.signature(function).parameters.values():
        annotation = parameter.annotation
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, namespace)  # the library's own annotations
            except Exception:  # a name only the type checker knows
                continue
        if annotation is not inspect.Parameter.empty:
            hints[parameter.name] = annotation
    return hints


_SEQUENCES = (tuple, list, Sequence, Iterable)  # what YAML gives them is a list


def _matches(value: Any, expected: Any) -> bool:
    origin, args = typing.get_origin(expected), typing.get_args(expected)
    if expected is Any or expected is inspect.Parameter.empty:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if expected is type(None):
        return value is None
    if expected is bool:
        return isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if origin in _SEQUENCES or expected in (tuple, list):
        if not isinstance(value, list | tuple):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(map(_matches, value, args))
        return all(_matches(item, args[0]) for item in value) if args else True
    if inspect.isclass(expected) and origin is None:
        return isinstance(value, expected)
    return True  # a generic this check does not know: the target decides


def _describe(expected: Any) -> str:
    if typing.get_origin(expected) in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(expected))
    if typing.get_origin(expected) is typing.Literal:
        return f"one of {list(typing.get_args(expected))}"
    if expected is type(None):
        return "None"
    if typing.get_origin(expected) in _SEQUENCES and typing.get_args(expected):
        return f"a list of {_describe(typing.get_args(expected)[0])}"
    return getattr(expected, "__name__", None) or str(expected).replace("typing.", "")
