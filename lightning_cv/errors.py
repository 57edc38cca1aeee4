"""The one exception type for bad user input: a wrong path, a bad config value, a bad file."""

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """A value the user gave (argument, config entry, file) that cannot be used.

    The message names the value and what was expected, so the CLI can print it as one line.
    """
