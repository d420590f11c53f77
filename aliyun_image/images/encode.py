"""Pixels to bytes: reduce any mode to L/RGB/RGBA, then encode as JPEG or PNG within the byte limit."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from ..i18n import Message
from .messages import error, note
from .options import MIN_SIDE, Label, Options, mb

JPEG_QUALITY = 90  #: first re-encode quality; stepped down only if the result is too big
_QUALITY_STEPS = (90, 80, 70, 60)
_QUALITY_AFTER_SHRINK = (80, 60)
_SHRINK_STEP = 0.75
# zlib level 6 (Pillow's default) costs ~2x the time of 4 for a few percent smaller photos.
_PNG_COMPRESS_LEVEL = 4


def alpha_is_opaque(img: Image.Image) -> bool:
    """True when every pixel of an RGBA image is fully opaque (the alpha channel is dead weight)."""
    return img.getchannel("A").getextrema() == (255, 255)


def normalise_mode(img: Image.Image, label: Label) -> tuple[Image.Image, Message | None]:
    """Reduce every mode to L, RGB or RGBA (the only modes we encode)."""
    mode = img.mode
    if mode in ("L", "RGB") and "transparency" in img.info:  # PNG tRNS colour key
        return img.convert("RGBA"), None
    if mode in ("L", "RGB", "RGBA"):
        return img, None
    if mode in ("P", "PA"):
        return img.convert("RGBA" if img.has_transparency_data else "RGB"), None
    if mode == "LA":
        return img.convert("RGBA"), None
    if mode == "La":
        return img.convert("LA").convert("RGBA"), None
    if mode == "RGBa":
        return img.convert("RGBA"), None
    if mode == "1":
        return img.convert("L"), None
    if mode == "I" or mode.startswith("I;16"):
        return _int_to_l(img), note("depth", label)
    if mode == "F":
        return _float_to_l(img), note("depth", label)
    if mode == "CMYK":
        # Pillow's JPEG decoder already undoes Adobe's inverted CMYK, so this is a plain convert.
        return img.convert("RGB"), note("cmyk", label)
    return img.convert("RGB"), None  # YCbCr, LAB, HSV, RGBX... (alpha modes are handled above)


def _int_to_l(img: Image.Image) -> Image.Image:
    """16/32-bit greyscale to 8-bit by scaling, not clipping (a plain convert turns it white)."""
    sixteen = img.mode.startswith("I;16")
    if img.mode != "I":
        img = img.convert("I")
    low, high = _band_range(img)
    if sixteen or (low >= 0 and 255 < high <= 65535):
        return img.point(lambda v: v / 257).convert("L")
    if low >= 0 and high <= 255:
        return img.convert("L")
    span = (high - low) or 1
    return img.point(lambda v: (v - low) * 255 / span).convert("L")


def _float_to_l(img: Image.Image) -> Image.Image:
    low, high = _band_range(img)
    if low >= 0 and high <= 1.0:
        return img.point(lambda v: v * 255).convert("L")
    if low >= 0 and high <= 255:
        return img.convert("L")
    span = (high - low) or 1
    return img.point(lambda v: (v - low) * 255 / span).convert("L")


def _band_range(img: Image.Image) -> tuple[float, float]:
    """(lowest, highest) value of a one-band image.

    ``getextrema()`` answers one pair per band for multi-band images, so its declared type is
    a union; the I/F images here have one band, which this checks instead of assuming.
    """
    low, high = img.getextrema()
    if isinstance(low, tuple) or isinstance(high, tuple):
        raise ValueError(f"expected a one-band image, not mode {img.mode}")
    return low, high


def matching_icc(icc: Any, mode: str) -> bytes | None:
    """Keep the colour profile (Display P3 photos look wrong without it) only if it still fits.

    A CMYK profile on converted RGB pixels, or a grey profile on RGB, would be wrong.
    """
    if not isinstance(icc, bytes) or len(icc) < 20:
        return None
    space = icc[16:20]
    if (space == b"RGB " and mode in ("RGB", "RGBA")) or (space == b"GRAY" and mode == "L"):
        return icc
    return None


def _encode(img: Image.Image, fmt: str, quality: int | None, icc: bytes | None) -> bytes:
    # No exif= argument: re-encoded files carry no EXIF (no GPS leaves the machine).
    buf = io.BytesIO()
    extra: dict[str, Any] = {"icc_profile": icc} if icc else {}
    if fmt == "PNG":
        img.save(buf, "PNG", compress_level=_PNG_COMPRESS_LEVEL, **extra)
    else:
        # optimize=True would save ~5% for a second Huffman pass: not worth the time.
        img.save(buf, "JPEG", quality=quality, optimize=False, **extra)
    return buf.getvalue()


def encode_to_fit(img: Image.Image, label: Label, opts: Options, icc: bytes | None,
                   ) -> tuple[bytes, str, int | None, Image.Image]:
    """Encode as PNG (real transparency) or JPEG; step quality, then size, down until it fits."""
    fmt = "PNG" if img.mode == "RGBA" else "JPEG"
    qualities: tuple[int | None, ...] = (None,) if fmt == "PNG" else _QUALITY_STEPS
    current = img
    while True:
        for quality in qualities:
            data = _encode(current, fmt, quality, icc)
            if len(data) <= opts.max_bytes:
                return data, fmt, quality, current
        width, height = (round(v * _SHRINK_STEP) for v in current.size)
        if min(width, height) < MIN_SIDE:
            raise error("too_large_compress", label, max_mb=mb(opts.max_bytes))
        # Always resample from the full image so quality does not degrade step by step.
        current = img.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
        if fmt == "JPEG":
            qualities = _QUALITY_AFTER_SHRINK

