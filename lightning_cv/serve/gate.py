"""The HTTP checks of ``POST /predict``, run before LitServe reads the body (which answers 500
to a body it cannot parse): size, emptiness, content type, JSON or multipart syntax. An upload
(multipart/form-data) is turned into the JSON the model's worker reads
(``{"image": "<base64>"}``), so one reader (:func:`~lightning_cv.serve.queries.read_query`)
checks every request.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse

__all__ = ["PredictGate", "refuse"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
BATCH_EXAMPLE = '{"images": ["<base64>", ...]}'
EXPECTED = (
    "expected multipart/form-data (an image file in field 'image') or application/json "
    '({"images": ["<base64>", ...]})'
)


async def refuse(status: int, message: str, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer ``{"detail": message}`` with ``status``: the shape of every error of the server."""
    await JSONResponse({"detail": message}, status_code=status)(scope, receive, send)


class PredictGate:
    """ASGI middleware: refuses a bad ``POST /predict`` with a 4xx JSON line and passes a good
    one on as JSON.

    Args:
        app: the ASGI app (LitServe's FastAPI app).
        max_bytes: the largest body accepted (413 above).
        path: the predict route.
    """

    def __init__(self, app: Callable, *, max_bytes: int, path: str = "/predict") -> None:
        self.app, self.max_bytes, self.path = app, max_bytes, path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = await self._read(receive)
        if body is None:
            limit = f"{self.max_bytes / 2**20:g} MiB"
            await refuse(
                413, f"request body is over {limit} (--max_request_mb)", scope, receive, send
            )
            return
        content_type = dict(scope["headers"]).get(b"content-type", b"").decode("latin-1")
        media = content_type.split(";")[0].strip().lower()
        if not body:
            await refuse(400, f"empty request body; {EXPECTED}", scope, receive, send)
        elif media == "application/json":
            await self._json(scope, body, receive, send)
        elif media == "multipart/form-data":
            await self._upload(scope, body, receive, send)
        else:
            got = repr(content_type) if content_type else "none"
            await refuse(
                415, f"content type {got} is not accepted; {EXPECTED}", scope, receive, send
            )

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it passes ``max_bytes``."""
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _json(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> None:
        try:
            json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            reason = f"{error.msg} at line {error.lineno} column {error.colno}" if isinstance(
                error, json.JSONDecodeError) else "not UTF-8"  # fmt: skip
            message = f"request body is not valid JSON ({reason}); expected {BATCH_EXAMPLE}"
            await refuse(400, message, scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _upload(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> None:
        try:
            form = await Request(scope, _replay(body, receive)).form()
            request = await _form_request(form)
        except (HTTPException, MultiPartException) as error:
            detail = error.detail if isinstance(error, HTTPException) else error.message
            message = f"request body is not valid multipart/form-data ({detail}); {EXPECTED}"
            await refuse(400, message, scope, receive, send)
            return
        except ValueError as error:
            await refuse(400, str(error), scope, receive, send)
            return
        data = json.dumps(request).encode()
        headers = [
            (k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")
        ]
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(data)).encode()),
        ]
        await self.app({**scope, "headers": headers}, _replay(data, receive), send)


async def _form_request(form: Any) -> dict[str, Any]:
    """The JSON request of a form: its files in ``image`` (one: ``image``, more: ``images``),
    its other fields as JSON values where they parse (``top_k=3`` -> 3), else as text."""
    files = form.getlist("image")
    if not files:
        raise ValueError(f"the form has no field 'image'; {EXPECTED}")
    if not all(isinstance(file, UploadFile) for file in files):
        raise ValueError("form field 'image' must be a file, e.g. curl -F image=@digit.png")
    encoded = [base64.b64encode(await file.read()).decode("ascii") for file in files]
    request: dict[str, Any] = {"image": encoded[0]} if len(encoded) == 1 else {"images": encoded}
    for key, value in form.multi_items():
        if key != "image":
            request[key] = _form_value(value)
    return request


def _form_value(value: object) -> object:
    if not isinstance(value, str):
        return value.filename  # a file where text was expected: read_query names the field
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` once, then listens to the client (a disconnect)."""
    sent = False

    async def replay() -> MutableMapping[str, Any]:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
