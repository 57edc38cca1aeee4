"""The web page at ``/``: one static HTML file shipped in the package (no build step, no CDN),
where a person drops or picks an image and sees the top-k classes as bars."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from starlette.responses import HTMLResponse

__all__ = ["PageRoute", "page_html"]


def page_html() -> str:
    """The page's HTML (``lightning_cv/serve/page.html``)."""
    return files("lightning_cv.serve").joinpath("page.html").read_text(encoding="utf-8")


class PageRoute:
    """ASGI middleware: answers ``GET /`` with the page (LitServe's own ``/`` says only
    "litserve running"); every other request goes on to ``app``."""

    def __init__(self, app: Any) -> None:
        self.app, self.page = app, HTMLResponse(page_html())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/" and scope["method"] in ("GET", "HEAD"):
            await self.page(scope, receive, send)
        else:
            await self.app(scope, receive, send)
