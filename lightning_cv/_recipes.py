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

import difflib
import re
from importlib.resources import files
from pathlib import Path

from jsonargparse import ArgumentParser

from lightning_cv.errors import ConfigError

__all__ = [
    "describe_recipe",
    "list_recipes",
    "recipe_path",
    "recipes_main",
    "resolve_config",
    "resolve_config_args",
]

_SENTENCE_END = re.compile(r"(?<! al)\.(?:\s|$)")  # "LeCun et al. 1998" does not end one


def _folder() -> Path:
    return Path(str(files("lightning_cv.recipes")))


def list_recipes() -> list[str]:
    """Names of the bundled recipes, sorted."""
    return sorted(path.stem for path in _folder().glob("*.yaml"))


def recipe_path(name: str) -> Path:
    """The file of the bundled recipe ``name`` (with or without ``.yaml``).

    Raises:
        ConfigError: no recipe of that name; the message suggests the closest names.
    """
    stem = name.removesuffix(".yaml")
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
    """
    if Path(value).is_file() or "/" in value or "\\" in value or value.lstrip().startswith("{"):
        return value
    return str(recipe_path(value))


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
    commands.add_subcommand("list", ArgumentParser(), help="names and what each trains")
    for command, text in (("show", "print the recipe's YAML"), ("path", "print its file")):
        subparser = ArgumentParser()
        subparser.add_argument("name", help="a recipe name, e.g. quickstart")
        commands.add_subcommand(command, subparser, help=text)
    options = parser.parse_args(args)
    if options.command in (None, "list"):
        _list()
    elif options.command == "show":
        print(recipe_path(options.show.name).read_text(encoding="utf-8"), end="")
    else:
        print(recipe_path(options.path.name))


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
