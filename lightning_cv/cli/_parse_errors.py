"""jsonargparse's error report, cut to what a user needs: what was wrong, what would be right.

jsonargparse prints the whole usage (about 50 lines) and, for an option of a class given by
``class_path``, a trace of every Union branch it tried. :func:`short_error` turns its message
into at most three lines: the bad option and value, the accepted names (or "did you mean"),
and the command that lists every option.

jsonargparse keeps only the first Union branch's error as the ``__cause__`` of its report; the
others exist only in its text. So this module, and nothing else, reads jsonargparse's message
text; tests/robustness/test_third_round_options.py pins the shapes it reads to the installed
jsonargparse version.
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Iterable

from lightning_cv.cli._conflicts import import_class

__all__ = ["build_error", "short_error"]

MAX_LISTED = 25  # more accepted names than this are left to --help

_NOT_ACCEPTED = re.compile(r"class_path '(?P<cls>[\w.]+)':\s+Option '(?P<key>\w+)' is not accepted")
_DOES_NOT_ACCEPT = re.compile(r"^Subcommand '\w+' does not accept option '(?P<key>[\w.]+)'")
_PARSER_KEY = re.compile(r'Parser key "(?P<key>[\w.]+)":')
_UNRECOGNIZED = re.compile(r"^unrecognized arguments: (?P<args>.+)$")
_GOT = re.compile(r"Expected an? (?P<type>.+?)\. Got value: (?P<value>.*)$", re.MULTILINE)
_EXPECTED = re.compile(r"^\s*- Expected an? (?P<type>.+?)$", re.MULTILINE)
_GIVEN = re.compile(r"Given value: (?P<value>.*)$", re.MULTILINE)
_CLASS = re.compile(r"<class '(?:[\w.]+\.)?(?P<name>\w+)'>")
_LITERAL = re.compile(r"typing\.Literal\[(?P<items>.*)\]")
_UNION = "Does not validate against any of the Union subtypes"
_MISMATCH = re.compile(r"Expected an? <class '[\w.]+'>(?:\. Got value: .*)?")
_NOT_A_CLASS = "Subclass types expect one of:"  # the value has no class_path shape (a list)
_WRAPPER = re.compile(r"^\s*(?:Parser key \"[\w.]+\"|Problem with given class_path '[\w.]+'):$")
_CLASS_PATH = re.compile(r"Problem with given class_path '(?P<cls>[\w.]+)':")


def _union_branches(lines: list[str], start: int) -> tuple[list[list[str]], int]:
    """The error text of each branch of the Union report at ``lines[start]``, and the index of
    the report's last line (``Given value: ...``)."""
    indent = len(lines[start]) - len(lines[start].lstrip())
    branches, end = [], start + 1
    for end in range(start + 1, len(lines)):
        line = lines[end][indent:]
        if line.startswith("Given value:"):
            break
        if line.startswith("  - "):
            branches.append([line[4:]])
        elif branches and line.startswith("    "):
            branches[-1].append(line[4:])
    return branches, end


def _is_mismatch(branch: list[str]) -> bool:
    """Whether a Union branch refused the value's shape, not the value itself."""
    only_type = len(branch) == 1 and _MISMATCH.fullmatch(branch[0].strip())
    return bool(only_type) or any(line.strip() == _NOT_A_CLASS for line in branch)


def _meant_branch(message: str) -> str:
    """``message`` with each Union report cut to the one branch the value was meant for.

    A branch whose error is only "Expected a <class 'str'>" is one the value was never meant
    for (a ``class_path`` mapping is no string), and so is one that lists the shapes a class
    is given in (a list of callbacks is none); when one branch is left, its own error is the
    real one: the unknown class, the class that is no subclass, the value it refused.
    """
    lines = message.splitlines()
    for start, line in enumerate(lines):
        if line.strip() != _UNION:
            continue
        branches, end = _union_branches(lines, start)
        meant = [branch for branch in branches if not _is_mismatch(branch)]
        if len(meant) != 1:
            return message
        indent = " " * (len(line) - len(line.lstrip()))
        kept = [indent + text for text in meant[0]]
        return _meant_branch("\n".join([*lines[:start], *kept, *lines[end + 1 :]]))
    return message


def _innermost(message: str) -> str:
    """The reason under the last ``Parser key``/``class_path`` heading, with that class_path."""
    lines = [line for line in message.splitlines() if line.strip()]
    last = max((i for i, line in enumerate(lines) if _WRAPPER.match(line)), default=-1)
    reason = " ".join(line.strip() for line in lines[last + 1 :])
    class_path = _CLASS_PATH.search(lines[last]) if last >= 0 else None
    return f"class_path {class_path['cls']!r}: {reason}" if class_path else reason


def _suggestion(wrong: str, accepted: Iterable[str]) -> str:
    """``did you mean 'x'?`` for a close name, else the accepted names.

    Dotted names are compared by their last part, among the names under the same prefix, so
    ``--trainer.max_epochz`` suggests ``--trainer.max_epochs`` and nothing from ``--data``.
    """
    prefix, _, last = wrong.rpartition(".")
    accepted = sorted({name for name in accepted if name.rpartition(".")[0] == prefix})
    lasts = {name.rpartition(".")[2]: name for name in accepted}
    close = difflib.get_close_matches(last, lasts, n=1, cutoff=0.7)
    if close:
        return f"did you mean {lasts[close[0]]!r}?"
    return f"expected one of {accepted}" if len(accepted) <= MAX_LISTED else "no close match"


def _init_options(class_path: str) -> list[str]:
    """The keyword arguments a class takes, read from its signatures."""
    try:
        cls = import_class(class_path)
    except (ImportError, AttributeError, ValueError):
        return []
    names = []
    for klass in cls.__mro__:  # a subclass passing **kwargs on takes its bases' options too
        parameters = list(inspect.signature(klass.__init__).parameters.values())[1:]
        names += [p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break
    return names


def _expected(types: list[str]) -> str:
    """``["<class 'int'>"]`` -> ``int``; Literal types -> ``one of [...]`` (merged)."""
    types = [kind for kind in types if kind != "<class 'NoneType'>"]
    literals = [_LITERAL.fullmatch(kind) for kind in types]
    if types and all(literals):
        items = dict.fromkeys(item for match in literals for item in match["items"].split(", "))
        return f"one of [{', '.join(items)}]"
    names = [_CLASS.fullmatch(kind)["name"] if _CLASS.fullmatch(kind) else kind for kind in types]
    return " or ".join(dict.fromkeys(names))


def _bad_value(message: str) -> str:
    """``--model.lr: expected float, got 'abc'`` from a (nested) report on one value."""
    message = _meant_branch(message)
    keys = _PARSER_KEY.findall(message)
    if not keys:  # a config file that does not parse: its lines, joined
        return " ".join(line.strip() for line in message.splitlines() if line.strip())[:300]
    where = f"--{'.'.join(keys)}"
    got = _GOT.search(message)
    if got:
        return f"{where}: expected {_expected([got['type']])}, got {got['value']!r}"
    given = _GIVEN.search(message)
    value = given["value"].strip() if given else "?"
    if "Expected a path but" in message:
        return f"{where}: {value!r} is neither a file nor a class name"
    expected = _expected(_EXPECTED.findall(message))
    if expected:
        return f"{where}: expected {expected}, got {value!r}"
    return f"{where}: {_innermost(message) or message.strip()}"


def build_error(message: str) -> str:
    """One line for jsonargparse's report of a class that failed to build: the error of the
    Union branch the value was meant for (``RandomApply p must be in [0, 1], got 2.0``)."""
    return _bad_value(message)


def short_error(message: str, *, prog: str, options: Iterable[str] = ()) -> str:
    """At most three lines for jsonargparse's ``message`` in the command ``prog``.

    Args:
        message: the text jsonargparse would print after ``error:``.
        prog: the command, for the help hint (``lightning-cv fit``).
        options: the parser's option strings, for "did you mean" on an unknown option.

    Example:
        >>> message = "unrecognized arguments: --trainer.max_epochz 3"
        >>> print(short_error(message, prog="lightning-cv fit", options=["--trainer.max_epochs"]))
        unknown option --trainer.max_epochz; did you mean '--trainer.max_epochs'?
        see every option: lightning-cv fit --help
    """
    hint = f"see every option: {prog} --help"
    not_accepted = _NOT_ACCEPTED.search(message)
    if not_accepted:
        key, cls = not_accepted["key"], not_accepted["cls"]
        parser_key = _PARSER_KEY.match(message)
        where = f"--{parser_key['key']}.{key}" if parser_key else key
        accepted = _init_options(cls)
        return (
            f"{where}: {cls.rpartition('.')[2]} has no option {key!r}; "
            f"{_suggestion(key, accepted)}\n{hint}"
        )
    not_accepted = _DOES_NOT_ACCEPT.match(message)
    if not_accepted:
        key = f"--{not_accepted['key']}"
        return f"unknown option {key[2:]!r} in the config; {_suggestion(key, options)}\n{hint}"
    unrecognized = _UNRECOGNIZED.match(message.strip())
    if unrecognized:
        wrong = unrecognized["args"].split()[0].split("=")[0]
        return f"unknown option {wrong}; {_suggestion(wrong, options)}\n{hint}"
    return f"{_bad_value(message)}\n{hint}"
