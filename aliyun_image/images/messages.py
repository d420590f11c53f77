"""Every message about input images a user can see, as catalogue keys (``image.*`` in ``i18n/locales``).

Three kinds, each a :class:`~aliyun_image.i18n.Message` rendered where it is shown:

* errors (``image.error.<key>``): built by :func:`error`, which raises nothing itself and gives
  the error the code ``InputImage.<Code>`` from :data:`CODES`;
* notes (``image.note.<key>``): what was changed about an image, built by :func:`note`;
* phrases (``image.why.*``, ``image.dims.*``, ``image.kind.*``, ``image.data_uri.*``): pieces one
  text fills into another, built by :func:`phrase`.

Texts name the image with ``{image}``, or ``{Image}`` at the start of a sentence (see
:class:`~aliyun_image.images.options.Label`). The service's limits (``{min_side}``, ``{max_side}``,
``{max_aspect}``, ``{read_mb}``) and the shared phrases ``{formats}`` and ``{fetch}`` are always
given.
"""

from __future__ import annotations

from ..errors import InputImageError
from ..i18n import Message, msg
from .options import MAX_ASPECT, MAX_READ_BYTES, MAX_SIDE, MIN_SIDE, Label, mb

#: Error key (under ``image.error``) -> its code, after ``InputImage.``. Variants of one
#: refusal (``bad_url_file``) share the code, so scripts see one code per kind of problem.
CODES: dict[str, str] = {
    "missing": "Missing", "missing_indexed": "Missing",
    "empty": "Empty",
    "unsupported_format": "UnsupportedFormat", "unsupported_format_kind": "UnsupportedFormat",
    "unsupported_format_ext": "UnsupportedFormat",
    "corrupt": "Corrupt",
    "too_many_pixels": "TooManyPixels",
    "aspect_ratio": "AspectRatio",
    "too_large_compress": "TooLarge", "too_large_read": "TooLarge",
    "not_found": "NotFound",
    "is_directory": "IsDirectory",
    "not_a_file": "NotAFile",
    "unreadable": "Unreadable",
    "local_path_not_allowed": "LocalPathNotAllowed",
    "path_not_allowed": "PathNotAllowed",
    "bad_url": "BadURL", "bad_url_file": "BadURL",
    "private_url": "PrivateURL",
    "unsupported_scheme": "UnsupportedScheme",
    "bad_data_uri": "BadDataURI",
}

# Parameters every text may use without the caller passing them.
_ALWAYS: dict[str, object] = {
    "min_side": MIN_SIDE, "max_side": MAX_SIDE, "max_aspect": MAX_ASPECT, "read_mb": mb(MAX_READ_BYTES),
    "formats": msg("image.formats"), "fetch": msg("image.fetch"),
}


def _params(label: Label | None, fields: dict[str, object]) -> dict[str, object]:
    named = {"image": label.text, "Image": label.start, "ext": label.ext} if label is not None else {}
    return {**_ALWAYS, **named, **fields}


def phrase(key: str, **fields: object) -> Message:
    """The phrase ``image.<key>`` (``"why.denied"``, ``"kind.pdf"``) with ``fields`` filled in."""
    return msg(f"image.{key}", **_params(None, fields))


def note(key: str, label: Label, **fields: object) -> Message:
    """The note ``image.note.<key>`` about the image ``label``, e.g. ``note("rotated", label)``."""
    return msg(f"image.note.{key}", **_params(label, fields))


def error(key: str, label: Label | None = None, **fields: object) -> InputImageError:
    """The :class:`InputImageError` ``image.error.<key>`` about ``label``; its code is from :data:`CODES`."""
    return InputImageError(msg(f"image.error.{key}", **_params(label, fields)), code=f"InputImage.{CODES[key]}")
