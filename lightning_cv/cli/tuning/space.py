"""The search space of ``lightning-cv tune``: YAML in, Optuna suggestions out.

A mapping is a range (``{low: 1.0e-4, high: 0.3, log: true}``; whole numbers on both ends make
an integer range, ``step`` optional), a list is a set of choices (``[sgd, adam]``).
"""

from __future__ import annotations

from typing import Any

import optuna

from lightning_cv.errors import ConfigError

__all__ = ["check_space", "corners", "suggest"]

RANGE_KEYS = {"low", "high", "log", "step"}
_CHOICE_TYPES = (str, int, float, bool, type(None))
_EXAMPLE = "e.g. {model.lr: {low: 1.0e-4, high: 0.3, log: true}, model.optimizer: [sgd, adam]}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_range(key: str, spec: dict) -> None:
    unknown = sorted(set(spec) - RANGE_KEYS)
    if unknown:
        raise ConfigError(
            f"--space {key}: unknown range key(s) {unknown}; expected {sorted(RANGE_KEYS)}"
        )
    low, high = spec.get("low"), spec.get("high")
    if not (_is_number(low) and _is_number(high)) or low >= high:
        raise ConfigError(
            f"--space {key}: expected numbers low < high, got low={low!r}, high={high!r}"
        )
    if spec.get("log") and low <= 0:
        raise ConfigError(f"--space {key}: a log range needs low > 0, got low={low!r}")
    if not isinstance(spec.get("log", False), bool):
        raise ConfigError(f"--space {key}: log must be true or false, got {spec['log']!r}")
    step = spec.get("step")
    if step is not None and (not _is_number(step) or step <= 0):
        raise ConfigError(f"--space {key}: step must be a number > 0, got {step!r}")


def check_space(space: Any) -> dict[str, Any]:
    """Return ``space`` if every entry is a range or a list of choices.

    Raises:
        ConfigError: naming the first bad key and what was expected.

    Example:
        >>> check_space({"model.optimizer": ["sgd", "adam"]})
        {'model.optimizer': ['sgd', 'adam']}
    """
    if not isinstance(space, dict) or not space:
        raise ConfigError(f"--space is empty or not a mapping, got {space!r}; {_EXAMPLE}")
    for key, spec in space.items():
        if isinstance(spec, dict):
            _check_range(key, spec)
        elif isinstance(spec, list) and spec:
            bad = [value for value in spec if not isinstance(value, _CHOICE_TYPES)]
            if bad:
                raise ConfigError(
                    f"--space {key}: choices must be strings, numbers, booleans or null, "
                    f"got {bad[0]!r}"
                )
        else:
            raise ConfigError(
                f"--space {key}: expected a range {{low: L, high: H}} or a non-empty list of "
                f"choices, got {spec!r}"
            )
    return space


def suggest(trial: optuna.Trial, space: dict[str, Any]) -> dict[str, Any]:
    """One value per key of a checked ``space``, drawn by the study's sampler."""
    setting = {}
    for key, spec in space.items():
        if isinstance(spec, list):
            setting[key] = trial.suggest_categorical(key, spec)
        elif all(isinstance(spec[end], int) for end in ("low", "high")) and isinstance(
            spec.get("step", 1), int
        ):
            setting[key] = trial.suggest_int(
                key, spec["low"], spec["high"], step=spec.get("step", 1), log=spec.get("log", False)
            )
        else:
            setting[key] = trial.suggest_float(
                key, spec["low"], spec["high"], step=spec.get("step"), log=spec.get("log", False)
            )
    return setting


def corners(space: dict[str, Any]) -> list[dict[str, Any]]:
    """Settings that visit every choice and both ends of every range of a checked ``space``:
    the first of them takes each key's first value; each other changes one key."""
    values = {
        key: list(spec) if isinstance(spec, list) else [spec["low"], spec["high"]]
        for key, spec in space.items()
    }
    first = {key: options[0] for key, options in values.items()}
    others = [{**first, key: value} for key, options in values.items() for value in options[1:]]
    return [first, *others]
