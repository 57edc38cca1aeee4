"""Griffe extension for the API reference: Google ``Examples:`` sections and plain roles.

The package's docstrings title their doctests ``Example:``, which Griffe's Google parser would
render as an admonition of Markdown text (where ``>>>`` becomes a nested block quote); renamed
to ``Examples:`` they render as highlighted Python. Sphinx roles such as
``:class:`~lightning_cv.ImageClassifier``` become inline code (``ImageClassifier``) instead of
showing their markup. mkdocs.yml loads this file.
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension, Object

__all__ = ["DocstringMarkup", "plain_markup"]

EXAMPLE_TITLE = re.compile(r"^(\s*)Example:[ \t]*$", flags=re.MULTILINE)
SPHINX_ROLE = re.compile(r":(?:attr|class|data|exc|func|meth|mod|obj):`(~?)([^`]+)`")


def _role_text(match: re.Match) -> str:
    short, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


def plain_markup(docstring: str) -> str:
    """``Example:`` titles renamed ``Examples:``, Sphinx roles turned into inline code.

    Example:
        >>> plain_markup("See :class:`~lightning_cv.ImageClassifier`.\\n\\nExample:")
        'See `ImageClassifier`.\\n\\nExamples:'
    """
    return SPHINX_ROLE.sub(_role_text, EXAMPLE_TITLE.sub(r"\1Examples:", docstring))


class DocstringMarkup(Extension):
    """Apply :func:`plain_markup` to every docstring before Griffe parses it."""

    def on_object(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain_markup(obj.docstring.value)
