"""Exceptions for bad user input (a wrong path, a bad config value, a bad file) and training,
and the two checks whose messages every module shares: a name among choices, a number in a
range."""

import difflib
import math
from collections.abc import Collection

__all__ = [
    "ConfigError",
    "DataFileError",
    "NonFiniteLossError",
    "check_choice",
    "check_range",
    "did_you_mean",
]


class ConfigError(ValueError):
    """A value the user gave (argument, config entry, file) that cannot be used.

    The message names the value and what was expected, so the CLI can print it as one line.
    """


class DataFileError(ConfigError):
    """A data file that is missing, truncated, corrupt or of the wrong format.

    The message names the file, what was expected and how to get a good copy.
    """


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss, or evaluation NaN or infinite scores; the
    message names the step or the batch."""


def did_you_mean(value: str, choices: Collection[str]) -> str:
    """``" did you mean 'adam'?"`` for the closest choice (difflib's ratio >= 0.7), else ``""``.

    Example:
        >>> did_you_mean("adamm", ["adam", "sgd"])
        " did you mean 'adam'?"
    """
    close = difflib.get_close_matches(value, sorted(choices), n=1, cutoff=0.7)
    return f" did you mean {close[0]!r}?" if close else ""


def check_choice(option: str, value: str, choices: Collection[str]) -> None:
    """Raise ConfigError naming ``value``, the closest choice and the valid ``choices``.

    Raises:
        ConfigError: ``"unknown optimizer 'adamm'; did you mean 'adam'? expected one of
            ['adam', 'sgd']"``.

    Example:
        >>> check_choice("pooling", "max", ("avg", "max"))
    """
    if value not in choices:
        raise ConfigError(
            f"unknown {option} {value!r};{did_you_mean(str(value), choices)} expected one of "
            f"{sorted(choices)}"
        )


def check_range(option: str, value: float, bounds: str) -> None:
    """Raise ConfigError unless ``value`` is a finite number within ``bounds``.

    Args:
        option: the value's name, as the user spells it.
        value: the number.
        bounds: ``"> 0"``, ``">= 1"`` (one side) or ``"(0, 1]"``, ``"[0, 1)"`` (an interval).

    Raises:
        ConfigError: ``"gamma must be in (0, 1], got 1.5"``, or ``"lr must be a finite number,
            got inf"``.

    Example:
        >>> check_range("dropout", 0.5, "[0, 1)")
    """
    if not math.isfinite(value):
        raise ConfigError(f"{option} must be a finite number, got {value}")
    if bounds.startswith(">"):
        sign, bound = bounds.split()
        inside, words = (value >= float(bound) if sign == ">=" else value > float(bound)), bounds
    else:
        low, high = (float(side) for side in bounds[1:-1].split(","))
        above = value >= low if bounds[0] == "[" else value > low
        below = value <= high if bounds[-1] == "]" else value < high
        inside, words = above and below, f"in {bounds}"
    if not inside:
        raise ConfigError(f"{option} must be {words}, got {value}")
