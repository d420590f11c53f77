"""The Pillow pipeline: identify, check, plan, decode once, then pass through or re-encode.

:func:`prepare_bytes` and :func:`prepare_pil` turn bytes or a PIL image into a
:class:`~.prepared.PreparedImage`. The pixel limit is checked from the header before anything
is decoded; a file that needs no change is sent byte for byte; everything else is normalised
(EXIF orientation, first frame, colour mode, size) and handed to :mod:`.encode`.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from dataclasses import dataclass

from PIL import Image, ImageOps

from ..errors import InputImageError
from ..i18n import Message
from .encode import JPEG_QUALITY, alpha_is_opaque, encode_to_fit, matching_icc, normalise_mode
from .messages import error, note, phrase
from .options import API_FORMATS, MAX_SIDE, MIN_SIDE, Label, Options, mb
from .prepared import PreparedImage

#: Formats whose original bytes may be sent unchanged, with the modes that need no conversion.
#: PNG "P" (palette) is passed through: any PNG reader handles it, and re-encoding a palette
#: diagram as JPEG would make it bigger and blurrier.
_PASS_MODES = {
    "JPEG": frozenset({"RGB", "L"}),
    "PNG": frozenset({"RGB", "L", "RGBA", "P"}),
    "WEBP": frozenset({"RGB", "RGBA"}),
}
_MIME = {"JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}

#: Pillow plugins we let parse untrusted bytes. Deliberately excludes EPS (runs Ghostscript),
#: WMF, FITS, MPEG and other exotic parsers. TGA has no magic number, so it is tried last.
_OPEN_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "DIB", "TIFF", "ICO", "CUR", "PPM",
                 "AVIF", "QOI", "PSD", "PCX", "SGI", "JPEG2000", "ICNS", "DDS", "TGA")

#: Extensions that promise an image: used to say "named like an image but is not one".
_IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".jfif", ".png", ".apng", ".bmp", ".tif", ".tiff",
                         ".webp", ".gif", ".ico", ".ppm", ".pgm", ".pbm", ".tga", ".avif"})


# --- Decoding ---------------------------------------------------------------------------------------
def _allowed_open_formats() -> tuple[str, ...]:
    Image.init()
    return tuple(f for f in _OPEN_FORMATS if f in Image.OPEN)


def _open_header(data: bytes, label: Label, opts: Options) -> Image.Image:
    """Identify the image and read its header only (Pillow's ``open`` is lazy)."""
    try:
        img = Image.open(io.BytesIO(data), formats=_allowed_open_formats())
    except Image.UnidentifiedImageError:
        raise _unrecognised(label, data) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard fired during open (far beyond its limit): same message as ours.
        numbers = [int(n) for n in re.findall(r"(\d+) pixels", str(exc))]
        pixels = numbers[0] if numbers else None
        limit = min(opts.max_pixels, numbers[1]) if len(numbers) > 1 else None
        raise _too_many_pixels(label, None, pixels, opts, limit) from None
    except Exception as exc:  # noqa: BLE001 - Pillow plugins raise many types on bad data
        # A plugin choking on a broken header raises whatever its parser hits (SyntaxError,
        # struct.error, IndexError, OSError...): every one of them means "this file is damaged".
        raise _corrupt(label, exc) from None
    return img


def _load(img: Image.Image, label: Label, opts: Options) -> None:
    """Force the decode so truncated or corrupt data fails here, not at the service."""
    try:
        img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(label, img.size, None, opts) from None
    except MemoryError:
        raise _too_many_pixels(label, img.size, None, opts) from None
    except Exception as exc:  # noqa: BLE001 - decoders raise many types on truncated or bad data
        raise _corrupt(label, exc) from None


def _check_pixels(size: tuple[int, int], label: Label, opts: Options) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise _corrupt(label, ValueError("zero size"))
    if width * height > opts.max_pixels:
        raise _too_many_pixels(label, size, width * height, opts)


def _orientation(img: Image.Image) -> int:
    try:
        value = int(img.getexif().get(0x0112, 1) or 1)
    except Exception:  # noqa: BLE001 - broken EXIF (any parser error) must not block a fine image
        return 1
    return value if 1 <= value <= 8 else 1


# --- Planning ---------------------------------------------------------------------------------------
@dataclass
class Plan:
    """The size an image is sent at, and why it differs from the source's."""

    size: tuple[int, int]  # displayed size of the source (after EXIF rotation)
    target: tuple[int, int]  # displayed size to send
    reason: str  # why it changes size: "side", "bytes", "small" or ""


def _plan_size(width: int, height: int, rotated: bool, nbytes: int, label: Label,
               opts: Options) -> Plan:
    """Choose the size to send: 384..3072 per side, long side ``max_side_send`` when shrinking."""
    if rotated:
        width, height = height, width
    long_side, short_side = max(width, height), min(width, height)
    scale, reason = 1.0, ""
    if (long_side > MAX_SIDE or nbytes > opts.max_bytes) and long_side > opts.max_side_send:
        scale = opts.max_side_send / long_side
        reason = "side" if long_side > MAX_SIDE else "bytes"
    if short_side * scale < MIN_SIDE:
        scale, reason = MIN_SIDE / short_side, "small"
    if scale == 1.0:
        return Plan((width, height), (width, height), "")
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    if reason == "small":  # rounding must not leave the short side at 383
        short = min(new_w, new_h)
        new_w, new_h = (max(MIN_SIDE, v) if v == short else v for v in (new_w, new_h))
    if max(new_w, new_h) > MAX_SIDE:
        raise error("aspect_ratio", label, width=width, height=height)
    return Plan((width, height), (new_w, new_h), reason)


# --- Processing -------------------------------------------------------------------------------------
def prepare_bytes(data: bytes, label: Label, opts: Options) -> PreparedImage:
    """Identify, check and normalise an encoded image (a file's or a data URI's bytes)."""
    if not data:
        raise error("empty", label)
    with _open_header(data, label, opts) as img:
        return _process(img, label, opts, data)


def prepare_pil(img: Image.Image, label: Label, opts: Options) -> PreparedImage:
    """Normalise and encode a caller's PIL image (always re-encoded: there are no bytes to pass on)."""
    return _process(img, label, opts, None)


def _process(img: Image.Image, label: Label, opts: Options, data: bytes | None) -> PreparedImage:
    """Decode once, normalise, and encode (or pass ``data`` through when nothing must change)."""
    fmt = (img.format or "").upper() if data is not None else ""
    _check_pixels(img.size, label, opts)  # header size: nothing has been decoded yet
    # A PIL image given by the caller is used at whatever frame they left it on.
    animated = data is not None and bool(getattr(img, "is_animated", False))
    jpeg = fmt in ("JPEG", "MPO")
    # JPEG keeps EXIF in its header. Other formats are asked after the decode: PNG's getexif()
    # would decode the whole image on its own (and may find eXIf after the pixel data).
    orientation = _orientation(img) if jpeg else 1
    nbytes = len(data) if data is not None else 0
    plan = _plan_size(img.width, img.height, orientation >= 5, nbytes, label, opts)

    passthrough = (fmt in _PASS_MODES and img.mode in _PASS_MODES[fmt] and not animated
                   and plan.size == plan.target and nbytes <= opts.max_bytes)
    if jpeg:
        _draft_jpeg(img, plan, passthrough and orientation == 1)
    _load(img, label, opts)
    if not jpeg:
        orientation = _orientation(img)
        if orientation >= 5:
            plan = _plan_size(img.width, img.height, True, nbytes, label, opts)
    passthrough = passthrough and orientation == 1
    if passthrough and img.mode == "RGBA" and alpha_is_opaque(img):
        passthrough = False  # an opaque alpha channel is dead weight: send RGB as JPEG
    if passthrough:
        # Sent byte for byte: lossless and fastest. The original metadata (EXIF, possibly GPS)
        # stays in these bytes; it goes only to the service the user chose to send the image
        # to. Re-encoded images, below, carry no EXIF at all.
        assert data is not None
        return _local(label, data, _MIME[fmt], plan.size, [])  # img.size may be a 1/8 draft

    try:
        return _reencode(img, label, opts, fmt, animated, orientation, plan, nbytes)
    except InputImageError:
        raise
    except MemoryError:
        raise _too_many_pixels(label, plan.size, None, opts) from None
    except Exception as exc:  # noqa: BLE001 - converting an exotic mode can fail in many ways
        raise _corrupt(label, exc) from None


def _draft_jpeg(img: Image.Image, plan: Plan, passthrough: bool) -> None:
    """Let libjpeg decode at 1/2, 1/4 or 1/8 scale: the big speed win for camera photos.

    For a pass-through we decode only to prove the file is complete (every byte of entropy
    data is still read), so 1/8 scale is enough. When shrinking, ask for at least the target
    size in the file's stored orientation.
    """
    width, height = img.size
    if passthrough:
        img.draft(img.mode, (max(1, width // 8), max(1, height // 8)))
    elif plan.target[0] * plan.target[1] < plan.size[0] * plan.size[1]:
        scale = max(plan.target) / max(plan.size)
        img.draft(img.mode, (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))))


def _reencode(img: Image.Image, label: Label, opts: Options, fmt: str, animated: bool,
              orientation: int, plan: Plan, nbytes: int) -> PreparedImage:
    notes: list[Message] = []
    if animated and fmt != "MPO":  # MPO "frames" are depth maps/previews, not an animation
        notes.append(note("first_frame", label))
    icc = img.info.get("icc_profile")
    if orientation != 1:
        img = ImageOps.exif_transpose(img)
        notes.append(note("rotated", label))
    img, mode_note = normalise_mode(img, label)
    if mode_note:
        notes.append(mode_note)
    if img.size != plan.target:
        img = img.resize(plan.target, Image.Resampling.LANCZOS,
                         reducing_gap=3.0 if img.width > plan.target[0] else None)
    if img.mode == "RGBA" and alpha_is_opaque(img):
        img = img.convert("RGB")

    data, out_fmt, quality, img = encode_to_fit(img, label, opts, matching_icc(icc, img.mode))
    if fmt and fmt not in ("JPEG", "PNG", "WEBP"):
        src = "JPEG" if fmt == "MPO" else fmt
        notes.append(note("converted" if src in API_FORMATS else "converted_unaccepted", label,
                          src=src, dst=out_fmt))
    if img.size != plan.size:
        notes.append(_resize_note(label, plan, img.size, opts))
    elif nbytes > opts.max_bytes:
        notes.append(note("recompressed", label, max_mb=mb(opts.max_bytes), fmt=out_fmt))
    if quality is not None and quality < JPEG_QUALITY:
        notes.append(note("quality", label, quality=quality, max_mb=mb(opts.max_bytes)))
    return _local(label, data, _MIME[out_fmt], img.size, notes)


def _local(label: Label, data: bytes, mime: str, size: tuple[int, int],
           notes: list[Message]) -> PreparedImage:
    return PreparedImage(kind="local", name=label.name, ref=None, data=data, mime=mime,
                         width=size[0], height=size[1], sha256=hashlib.sha256(data).hexdigest(),
                         notes=notes)




def _resize_note(label: Label, plan: Plan, size: tuple[int, int], opts: Options) -> Message:
    (w0, h0), (w1, h1) = plan.size, size
    if w1 > w0:
        return note("upscaled", label, w0=w0, h0=h0, w1=w1, h1=h1)
    if size != plan.target:  # shrunk again after encoding: the output itself was too big
        why = "why.refit"
    elif plan.reason == "side":
        why = "why.side"
    else:
        why = "why.bytes"
    return note("downscaled", label, w0=w0, h0=h0, w1=w1, h1=h1,
                why=phrase(why, max_mb=mb(opts.max_bytes)))


# --- Refusals ---------------------------------------------------------------------------------------
def _sniff_kind(data: bytes) -> str | None:
    """Name the common non-images people pick by mistake, to give a precise remedy."""
    head = data[:1024].lstrip().lower()
    if head.startswith(b"%pdf"):
        return "pdf"
    if head.startswith(b"%!ps"):
        return "ps"
    if b"<svg" in head or (head.startswith(b"<?xml") and b"svg" in head):
        return "svg"
    if head.startswith((b"<!doctype html", b"<html")):
        return "html"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
            return "heic"
        if brand in (b"avif", b"avis"):
            return "avif"
    return None


def _unrecognised(label: Label, data: bytes) -> InputImageError:
    kind = _sniff_kind(data)
    if kind is not None:
        return error("unsupported_format_kind", label, kind=phrase(f"kind.{kind}"))
    if label.ext in _IMAGE_EXTS:
        return error("unsupported_format_ext", label)
    return error("unsupported_format", label)


def _corrupt(label: Label, exc: BaseException) -> InputImageError:
    truncated = "truncated" in str(exc).lower() or isinstance(exc, EOFError)
    return error("corrupt", label, why=phrase("why.truncated" if truncated else "why.undecodable"))


def _too_many_pixels(label: Label, size: tuple[int, int] | None, pixels: int | None,
                     opts: Options, limit: int | None = None) -> InputImageError:
    if size is not None:
        dims = phrase("dims.size", width=size[0], height=size[1], pixels=size[0] * size[1])
    elif pixels is not None:
        dims = phrase("dims.pixels", pixels=pixels)
    else:
        dims = phrase("dims.unknown")
    return error("too_many_pixels", label, dims=dims, limit=limit or opts.max_pixels)
