"""Input images: open safely, orient, convert, resize, encode.

The edit and fusion models take 1-3 input images, each an http(s) URL, an ``oss://`` reference
(from the temporary-upload flow) or a ``data:{mime};base64,...`` URI. The service documents
JPG, JPEG, PNG, BMP, TIFF, WEBP and GIF (first frame only), 384-3072 px per side and at most
10 MB per image (``shared/dashscope-protocol.md`` sections 3.2 and 5).

:func:`prepare_image` turns whatever a user has (a URL, a path, ``file://``, a data URI, bytes,
a PIL image or an open binary file) into a :class:`PreparedImage`: URLs are checked and passed
through, everything local is decoded once, normalised (EXIF orientation, first frame, colour
mode, size) and encoded as JPEG, PNG or WEBP. A file that needs no change is sent byte for byte.
Every change is reported to the user as a note (a catalogue message); every refusal is an
:class:`~aliyun_image.errors.InputImageError` that names the file and says what to do.

Nothing here touches process-wide Pillow settings (``Image.MAX_IMAGE_PIXELS``,
``ImageFile.LOAD_TRUNCATED_IMAGES``): the hosted demo serves many users from one process.

Layout (each module has one job; imports only go down this list, never up):

* ``__init__`` - the public API (:func:`prepare_image`, :func:`prepare_images`) and the
  dispatch on the kind of source;
* :mod:`.sources` - reading sources: URLs, data URIs, paths, streams, the hosted-mode policy;
* :mod:`.pipeline` - the Pillow pipeline: identify, check, plan, decode, pass through or
  re-encode; :mod:`.encode` - colour modes and the encoder that keeps an image under the limit;
* :mod:`.messages` - every error and note, as keys of the message catalogue (``image.*``);
* :mod:`.prepared` - :class:`PreparedImage`; :mod:`.options` - limits, options and labels;
* :mod:`.grid` - the X/Y grid image of results (labels, recipe in its PNG text), not an input.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from .encode import JPEG_QUALITY
from .messages import error
from .options import (API_FORMATS, DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIDE_SEND,
                      MAX_ASPECT, MAX_READ_BYTES, MAX_SIDE, MIN_SIDE, Options, make_label)
from .pipeline import prepare_bytes, prepare_pil
from .prepared import PreparedImage
from .sources import check_http_url, decode_data_uri, file_url_to_path, read_path, read_stream

__all__ = [
    "API_FORMATS", "DEFAULT_MAX_BYTES", "DEFAULT_MAX_PIXELS", "DEFAULT_MAX_SIDE_SEND", "JPEG_QUALITY",
    "MAX_ASPECT", "MAX_READ_BYTES", "MAX_SIDE", "MIN_SIDE", "PreparedImage", "prepare_image",
    "prepare_images",
]


# --- Public API -------------------------------------------------------------------------------------
def prepare_image(source: Any, *, name: str | None = None, allow_local_paths: bool = True,
                  allowed_dirs: Sequence[Path] | None = None, allow_private_urls: bool = True,
                  max_bytes: int = DEFAULT_MAX_BYTES, max_side_send: int = DEFAULT_MAX_SIDE_SEND,
                  max_pixels: int = DEFAULT_MAX_PIXELS) -> PreparedImage:
    """Turn one user-supplied input image into what goes on the wire.

    ``source`` may be an http(s) URL, an ``oss://`` URL, a ``data:image/...;base64,`` URI, a
    ``file://`` URL or a local path (``str`` or ``os.PathLike``), ``bytes``/``bytearray``, a
    ``PIL.Image.Image`` or a binary file-like object (read from its current position).
    ``name`` is what messages call the image (defaults to the file name or URL).

    Hosted mode: ``allow_local_paths=False`` refuses paths and ``file://`` (visitors must
    upload), ``allowed_dirs`` confines paths to those folders (after resolving symlinks and
    ``..``), ``allow_private_urls=False`` refuses URLs the service could not fetch from the
    internet (localhost, private and link-local addresses, non-http schemes).

    Local images are refused above ``max_pixels`` (checked from the header, before decoding),
    rotated upright, reduced to their first frame, converted to RGB/L/RGBA, scaled to
    384..3072 px per side (to ``max_side_send`` on the long side when too big or over
    ``max_bytes``) and kept under ``max_bytes``. Raises :class:`InputImageError`.
    """
    opts = Options.make(allow_local_paths=allow_local_paths, allowed_dirs=allowed_dirs,
                        allow_private_urls=allow_private_urls, max_bytes=max_bytes,
                        max_side_send=max_side_send, max_pixels=max_pixels)
    return _prepare(source, name, None, opts)


def prepare_images(sources: Sequence[Any], *, names: Sequence[str | None] | None = None,
                   **options: Any) -> list[PreparedImage]:
    """Prepare several input images with the same options (see :func:`prepare_image`).

    With more than one image, messages and notes say which one they mean by its number
    (``image 2``, the fusion slot names in Chinese and Japanese), in the order given - the
    order the service calls "image 1/2/3".
    ``names`` optionally gives a display name per image.
    """
    if "name" in options:
        raise TypeError("prepare_images() takes names=[...], not name=")
    if isinstance(sources, (str, bytes, bytearray, os.PathLike, Image.Image)):
        raise TypeError("prepare_images() takes a list of sources; use prepare_image() for one")
    opts = Options.make(**options)
    items = list(sources)
    many = len(items) > 1
    names = list(names) if names is not None else [None] * len(items)
    if len(names) != len(items):
        raise ValueError("names must have one entry per source")
    return [_prepare(src, nm, i if many else None, opts)
            for i, (src, nm) in enumerate(zip(items, names, strict=True), start=1)]


# --- Dispatch on the kind of source -----------------------------------------------------------------
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


def _prepare(source: Any, name: str | None, index: int | None, opts: Options) -> PreparedImage:
    name = name.strip() if isinstance(name, str) and name.strip() else None
    if source is None or (isinstance(source, str) and not source.strip()):
        raise error("missing") if index is None else error("missing_indexed", index=index)
    if isinstance(source, str):
        return _prepare_string(source.strip(), name, index, opts)
    if isinstance(source, os.PathLike):
        path = os.fsdecode(os.fspath(source))
        label = make_label(name or _basename(path), index)
        return prepare_bytes(read_path(path, label, opts), label, opts)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return prepare_bytes(bytes(source), make_label(name, index), opts)
    if isinstance(source, Image.Image):
        filename = getattr(source, "filename", None)
        display = name or (_basename(filename) if isinstance(filename, str) and filename else None)
        return prepare_pil(source, make_label(display, index), opts)
    if hasattr(source, "read"):
        fname = getattr(source, "name", None)
        display = name or (_basename(fname) if isinstance(fname, str) and fname else None)
        label = make_label(display, index)
        return prepare_bytes(read_stream(source, label), label, opts)
    raise TypeError(f"cannot use {type(source).__name__} as an input image")


def _prepare_string(text: str, name: str | None, index: int | None, opts: Options) -> PreparedImage:
    head = text[:16].lower()
    if head.startswith("data:"):
        label = make_label(name, index, ("data URI image", "data_uri"))
        return prepare_bytes(decode_data_uri(text, label), label, opts)
    if head.startswith("file:"):
        path = file_url_to_path(text, make_label(name or text, index))
        label = make_label(name or _basename(path), index)
        return prepare_bytes(read_path(path, label, opts, shown=text), label, opts)
    match = _SCHEME_RE.match(text)
    if match is None:
        label = make_label(name or _basename(text), index)
        return prepare_bytes(read_path(text, label, opts), label, opts)
    scheme = match.group(1).lower()
    label = make_label(name or text, index)
    if scheme in ("http", "https"):
        check_http_url(text, label, opts)
        return PreparedImage(kind="url", name=label.name, ref=text)
    if scheme == "oss":
        if not text[len("oss://"):].strip("/"):
            raise error("bad_url", label)
        return PreparedImage(kind="oss", name=label.name, ref=text)
    raise error("unsupported_scheme", label, scheme=scheme)


def _basename(path: str) -> str:
    return re.split(r"[\\/]", path.rstrip("\\/"))[-1] or path
