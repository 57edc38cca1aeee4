"""``lightning-cv serve``: a zoo model or checkpoint behind HTTP (LitServe), with a web page.

Importing this package is light; LitServe loads when :func:`serve` starts a server.
"""

from lightning_cv.serve.command import serve

__all__ = ["serve"]
