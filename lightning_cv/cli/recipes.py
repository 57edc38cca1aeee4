"""The bundled recipes, by name: ``lightning-cv fit --config mnist_lenet5`` from any folder.

The repository's ``recipes/`` folder is installed as the package ``lightning_cv.recipes``, so
a recipe name resolves after ``pip install`` as well as in a checkout.

Example:
    >>> "quickstart" in list_recipes()
    True
    >>> recipe_path("quickstart").name
    'quickstart.yaml'
"""

from __future__ import annotations

import argparse
import difflib
import re
from importlib.resources import files
from pathlib import Path

from jsonargparse import ArgumentParser

from lightning_cv.errors import ConfigError, did_you_mean

__all__ = [
    "describe_recipe",
    "list_recipes",
    "recipe_path",
    "recipes_main",
    "resolve_config",
    "resolve_config_args",
]

_COMMANDS = {
    "list": "names and what each trains",
    "show": "print the recipe's YAML",
    "path": "print its file",
}
_SENTENCE_END = re.compile(r"(?<! al)\.(?:\s|$)")  # "LeCun et al. 1998" does not end one


def _folder() -> Path:
    return Path(str(files("lightning_cv.recipes")))


def list_recipes() -> list[str]:
    """Names of the bundled recipes, sorted."""
    return sorted(path.stem for path in _folder().glob("*.yaml"))


def recipe_path(name: str) -> Path:
    """The file of the bundled recipe ``name`` (with or without ``.yaml``).

    Raises:
        ConfigError: a name with a folder in it (``../x``), or no recipe of that name; the
            message suggests the closest names.
    """
    stem = name.removesuffix(".yaml")
    if not stem or stem != Path(stem).name or "\\" in stem or stem.startswith("."):
        raise ConfigError(
            f"recipe name {name!r} is not a name; expected one of {list_recipes()} or a path "
            "to a YAML file (--config path/to/recipe.yaml)"
        )
    path = _folder() / f"{stem}.yaml"
    if path.is_file():
        return path
    names = list_recipes()
    close = difflib.get_close_matches(stem, names, n=3)
    hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
    raise ConfigError(
        f"no config file {str(Path(name).absolute())!r} and no bundled recipe {stem!r}; {hint}"
        "`lightning-cv recipes` lists the recipes"
    )


def resolve_config(value: str) -> str:
    """``--config`` value -> a path: an existing file as given, else a bundled recipe's file.

    Only bare names are looked up (``mnist_lenet5`` or ``mnist_lenet5.yaml``); a value with a
    folder in it is a path the user meant, left for the parser to report if it is missing.

    Raises:
        ConfigError: an existing file that is not UTF-8 text (a PNG renamed ``.yaml``), or what
            :func:`recipe_path` refuses.
    """
    if Path(value).is_file():
        _check_text(Path(value))
        return value
    if "/" in value or "\\" in value or value.lstrip().startswith("{"):
        return value
    return str(recipe_path(value))


def _check_text(path: Path) -> None:
    try:
        path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"config file {str(path)!r} is not a text file (byte {error.object[error.start]:#04x} "
            f"at offset {error.start} is not UTF-8); expected a YAML file"
        ) from None


def describe_recipe(name: str) -> str:
    """The first sentence of the recipe's opening comment, on one line."""
    lines = []
    for line in recipe_path(name).read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").strip())
    text = " ".join(lines)
    end = _SENTENCE_END.search(text)
    return text[: end.start() + 1] if end else text


def _list() -> None:
    names = list_recipes()
    width = max(map(len, names))
    for name in names:
        print(f"{name:<{width}}  {describe_recipe(name)}")
    print(
        f"\nrun one: lightning-cv fit --config {names[0]}; see one: lightning-cv recipes show NAME"
    )


def recipes_main(args: list[str]) -> None:
    """``lightning-cv recipes [list | show NAME | path NAME]``."""
    parser = ArgumentParser(
        prog="lightning-cv recipes",
        description="The bundled recipes: list them, print one, or print its file's path.",
        exit_on_error=False,
    )
    commands = parser.add_subcommands(required=False, dest="command")
    for command, text in _COMMANDS.items():
        subparser = ArgumentParser()
        if command != "list":
            subparser.add_argument("name", help="a recipe name, e.g. quickstart")
        commands.add_subcommand(command, subparser, help=text)
    try:
        options = parser.parse_args(args)
    except argparse.ArgumentError as error:
        raise ConfigError(_usage_error(args, error)) from None
    if options.command in (None, "list"):
        _list()
    elif options.command == "show":
        print(recipe_path(options.show.name).read_text(encoding="utf-8"), end="")
    else:
        print(recipe_path(options.path.name))


def _usage_error(args: list[str], error: argparse.ArgumentError) -> str:
    """One line for a bad ``recipes`` command line: the wrong word, or the missing name."""
    words = [arg for arg in args if not arg.startswith("-")]
    if words and words[0] not in _COMMANDS:
        close = did_you_mean(words[0], _COMMANDS)
        return f"unknown recipes command {words[0]!r};{close} expected one of {list(_COMMANDS)}"
    if words[:1] in (["show"], ["path"]) and len(words) == 1:
        return (
            f"recipes {words[0]} needs a recipe name, e.g. lightning-cv recipes {words[0]} "
            f"quickstart; expected one of {list_recipes()}"
        )
    return f"recipes: {error}; see lightning-cv recipes --help"


def resolve_config_args(args: list[str]) -> list[str]:
    """``args`` with every ``--config NAME`` (or ``-c``, ``--config=NAME``) made a path."""
    resolved, take_next = [], False
    for arg in args:
        if take_next:
            arg, take_next = resolve_config(arg), False
        elif arg in ("--config", "-c"):
            take_next = True
        elif arg.startswith("--config="):
            arg = f"--config={resolve_config(arg.removeprefix('--config='))}"
        resolved.append(arg)
    return resolved
