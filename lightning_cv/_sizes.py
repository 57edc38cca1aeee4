"""Image sizes as ``(height, width)``: shared by the models, the data modules and the zoo."""

from __future__ import annotations

from lightning_cv.errors import ConfigError

__all__ = ["to_size"]


def to_size(image_size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """Normalize an image size to ``(height, width)``.

    Raises:
        ConfigError: anything but a positive int or two of them.

    Example:
        >>> to_size(28), to_size([32, 48])
        ((28, 28), (32, 48))
    """
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(side, int) and side > 0 for side in size):
        raise ConfigError(
            f"image_size must be a positive int or (height, width), got {image_size!r}"
        )
    return size
