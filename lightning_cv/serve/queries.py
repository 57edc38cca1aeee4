"""What a ``POST /predict`` asks for, read from its JSON body: the images (decoded by PIL,
refused before decoding when too large), how many classes to return and whether to use TTA.

A bad request becomes a :class:`Refusal` (an HTTP status and one line), never an exception:
in a dynamic batch, an exception would fail every request of the batch.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

__all__ = ["FIELDS", "Query", "Refusal", "decode_image", "read_query"]

FIELDS = ("image", "images", "top_k", "tta")
BATCH_EXAMPLE = '{"images": ["<base64>", ...]}'


@dataclass(frozen=True)
class Query:
    """Decoded images, how many classes to return per image, TTA or not, and whether the
    request sent one image (``image``: one answer) or a batch (``images``: a list)."""

    images: list[Image.Image]
    top_k: int
    tta: bool
    batch: bool


@dataclass(frozen=True)
class Refusal:
    """A request the server refuses: the HTTP status and the line that says why."""

    status: int
    message: str


def decode_image(data: bytes, where: str) -> Image.Image | Refusal:
    """``data`` decoded by PIL, or a Refusal naming ``where`` when it is no image, a broken
    one, or over PIL's ``Image.MAX_IMAGE_PIXELS`` (found from the header: never decoded).

    Example:
        >>> decode_image(b"hello", "image").status
        400
    """
    try:
        with warnings.catch_warnings():  # over MAX_IMAGE_PIXELS PIL only warns: refuse it too
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))  # reads the header only
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        return Refusal(413, f"{where} is refused: {error}")
    except UnidentifiedImageError:
        return Refusal(
            400,
            f"{where} is not an image: PIL cannot identify its {len(data)} bytes "
            "(PNG, JPEG, BMP, GIF, TIFF, WebP...)",
        )
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as error:
        return Refusal(400, f"{where} is a broken {image.format} image: {error}")
    # palette, 16-bit, CMYK, alpha... -> 8-bit RGB, which the model's pixels convert as the data
    # sets convert files (grey by ITU-R 601-2 luma)
    return image if image.mode in ("L", "RGB") else image.convert("RGB")


def _top_k(value: object) -> int | Refusal:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return Refusal(400, f"top_k must be an integer >= 1, got {value!r}")
    return value


def _images(request: dict) -> tuple[list[object], bool] | Refusal:
    """The base64 strings of ``image`` (one) or ``images`` (a batch), and which it was."""
    if ("image" in request) == ("images" in request):
        return Refusal(400, f"expected one of the fields 'image' or 'images': {BATCH_EXAMPLE}")
    if "image" in request:
        return [request["image"]], False
    images = request["images"]
    if not isinstance(images, list) or not images:
        return Refusal(400, f"images must be a non-empty list of base64 strings: {BATCH_EXAMPLE}")
    return images, True


def _decode_all(encoded: list[object], batch: bool) -> list[Image.Image] | Refusal:
    images = []
    for index, text in enumerate(encoded):
        where = f"images[{index}]" if batch else "image"
        if not isinstance(text, str):
            return Refusal(400, f"{where} must be a base64 string, got {type(text).__name__}")
        try:
            data = base64.b64decode(text, validate=True)
        except binascii.Error as error:
            return Refusal(400, f"{where} is not valid base64: {error}")
        image = decode_image(data, where)
        if isinstance(image, Refusal):
            return image
        images.append(image)
    return images


def read_query(request: object, *, max_images: int, tta: bool = False) -> Query | Refusal:
    """Read ``{"image": "<base64>"}`` or ``{"images": ["<base64>", ...]}`` with optional
    ``top_k`` (default 5) and ``tta`` (default ``tta``).

    Args:
        request: the parsed JSON body.
        max_images: the most images one request may hold.
        tta: the default when the request does not say.

    Returns:
        The query, or the first problem found as a Refusal (400; 413 for too many images or
        too many pixels).
    """
    if not isinstance(request, dict):
        return Refusal(
            400, f"expected a JSON object like {BATCH_EXAMPLE}, got {type(request).__name__}"
        )
    unknown = sorted(set(request) - set(FIELDS))
    if unknown:
        return Refusal(400, f"unknown field {unknown[0]!r}; expected {list(FIELDS)}")
    found = _images(request)
    if isinstance(found, Refusal):
        return found
    encoded, batch = found
    if len(encoded) > max_images:
        return Refusal(
            413, f"{len(encoded)} images in one request; the limit is {max_images} (--max_images)"
        )
    top_k = _top_k(request.get("top_k", 5))
    wants_tta = request.get("tta", tta)
    if isinstance(top_k, Refusal):
        return top_k
    if not isinstance(wants_tta, bool):
        return Refusal(400, f"tta must be true or false, got {wants_tta!r}")
    images = _decode_all(encoded, batch)
    if isinstance(images, Refusal):
        return images
    return Query(images, top_k, wants_tta, batch)
