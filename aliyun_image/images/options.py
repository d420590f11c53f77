"""Limits, the options of one call, and how messages name an image.

Everything the other modules of :mod:`aliyun_image.images` share and that depends on nothing
but the standard library: the service's limits, the checked :class:`Options` and the
:class:`Label` that every message and note uses to say which image it means.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..i18n import Message, msg

# --- Limits from the protocol notes (section 3.2) -------------------------------------------------
MIN_SIDE = 384  #: smallest side the service recommends
MAX_SIDE = 3072  #: largest side the service recommends
MAX_ASPECT = MAX_SIDE // MIN_SIDE  #: 8:1 - beyond this no size satisfies both bounds
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_SIDE_SEND = 2048
DEFAULT_MAX_PIXELS = 64_000_000

#: Hard cap on what we read from a file or stream at all (before any decoding). Bigger inputs
#: are refused instead of being pulled into memory; the pixel limit guards the decoded size.
MAX_READ_BYTES = 256 * 1024 * 1024

#: Formats the service lists; anything else Pillow reads is converted (with a note).
API_FORMATS = frozenset({"JPEG", "MPO", "PNG", "BMP", "TIFF", "WEBP", "GIF"})


@dataclass(frozen=True)
class Options:
    """The checked settings of one ``prepare_image(s)`` call (see :func:`Options.make`)."""

    allow_local_paths: bool
    allowed_dirs: tuple[str, ...] | None  # real paths, symlinks resolved
    allow_private_urls: bool
    max_bytes: int
    max_side_send: int
    max_pixels: int

    @classmethod
    def make(cls, *, allow_local_paths: bool = True, allowed_dirs: Sequence[Path] | None = None,
             allow_private_urls: bool = True, max_bytes: int = DEFAULT_MAX_BYTES,
             max_side_send: int = DEFAULT_MAX_SIDE_SEND,
             max_pixels: int = DEFAULT_MAX_PIXELS) -> Options:
        """Options from the public keyword arguments, clamped to what the service accepts."""
        dirs = None
        if allowed_dirs is not None:
            dirs = tuple(os.path.realpath(os.fspath(d)) for d in allowed_dirs)
        return cls(bool(allow_local_paths), dirs, bool(allow_private_urls), max(1, int(max_bytes)),
                   min(MAX_SIDE, max(MIN_SIDE, int(max_side_send))), max(1, int(max_pixels)))


@dataclass(frozen=True)
class Label:
    """How messages refer to one image: ``"photo.jpg"``, ``image 2 ("photo.jpg")``, ``image 2``.

    ``text`` names it inside a sentence, ``start`` at the start of one (``Image 2`` in English);
    both are catalogue messages (``image.label.*``), rendered with the message they are part of.
    """

    name: str  # becomes PreparedImage.name
    text: Message
    start: Message
    ext: str = ""  # extension of the user's file name, for "named .png but is not a PNG"


def _label(label_name: str, form: str, ext: str = "", **params: object) -> Label:
    return Label(label_name, msg(f"image.label.{form}", **params), msg(f"image.label.{form}_start", **params), ext)


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 20] + "…" + text[-19:]


def make_label(display: str | None, index: int | None, generic: tuple[str, str] = ("image", "generic")) -> Label:
    """The :class:`Label` for an image shown as ``display`` (a file name or URL), or by number.

    ``index`` is the image's position when several are prepared together, else ``None``;
    ``generic`` is (name, form under ``image.label``) for an image that has no display name at all.
    """
    ext = os.path.splitext(display or "")[1].lower()
    if display:
        short = _shorten(display)
        if index is None:
            return _label(display, "named", ext, name=short)
        return _label(display, "indexed_named", ext, name=short, index=index)
    if index is None:
        return _label(generic[0], generic[1])
    return _label(f"image {index}", "indexed", index=index)


def mb(n: int) -> str:
    """A byte count as the messages show it: ``10 MB``, ``2.5 MB``."""
    return f"{n / (1024 * 1024):.2f}".rstrip("0").rstrip(".") + " MB"
