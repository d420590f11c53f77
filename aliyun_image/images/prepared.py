"""The result of preparing one input image: :class:`PreparedImage`."""

from __future__ import annotations

import base64
import os
import re
import urllib.parse
from dataclasses import dataclass, field

from ..i18n import Message

_EXT = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}


@dataclass
class PreparedImage:
    """One input image, ready for the wire.

    ``kind`` is ``"url"`` (http/https, sent as is), ``"oss"`` (``oss://``, sent as is) or
    ``"local"`` (we hold the encoded bytes in ``data``; the caller chooses between a data URI
    and the temporary upload). ``notes`` are catalogue messages telling the user what was
    changed (rotated, converted, resized...); empty when the image is sent unchanged.
    """

    kind: str
    name: str
    ref: str | None = None
    data: bytes | None = None
    mime: str | None = None
    width: int | None = None
    height: int | None = None
    sha256: str | None = None
    stored: str | None = None  # the kept copy, relative to the data dir (see inputs_store)
    notes: list[Message] = field(default_factory=list)

    def data_uri(self) -> str:
        """The image as ``data:{mime};base64,...`` (local images only)."""
        if self.kind != "local" or self.data is None or not self.mime:
            raise ValueError(f"data_uri() needs a local image, not kind={self.kind!r}")
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"

    @property
    def filename(self) -> str:
        """A safe base name for uploads, with the extension matching ``mime`` (``photo.jpg``)."""
        raw = self.name or ""
        if self.kind in ("url", "oss"):
            raw = urllib.parse.urlsplit(raw).path
        base = re.split(r"[\\/]", raw)[-1]
        if self.kind != "local":
            return _safe_stem(base) or "image"
        stem = os.path.splitext(base)[0] if os.path.splitext(base)[1] else base
        return (_safe_stem(stem) or "image") + _EXT.get(self.mime or "", ".bin")


def _safe_stem(text: str) -> str:
    # Unicode letters stay (Chinese file names are normal); separators, spaces, quotes and
    # control characters become "_" so the name is harmless in an OSS key and a multipart header.
    return re.sub(r"[^\w.\-]+", "_", text).strip("._")[:80]
