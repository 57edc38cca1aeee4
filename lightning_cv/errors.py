"""Exceptions for bad user input (a wrong path, a bad config value, a bad file) and training."""

from collections.abc import Collection

__all__ = ["ConfigError", "DataFileError", "NonFiniteLossError", "check_choice"]


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


def check_choice(option: str, value: str, choices: Collection[str]) -> None:
    """Raise ConfigError naming ``value`` and the valid ``choices`` when it is not one of them.

    Example:
        >>> check_choice("pooling", "max", ("avg", "max"))
    """
    if value not in choices:
        raise ConfigError(f"unknown {option} {value!r}; expected one of {sorted(choices)}")
