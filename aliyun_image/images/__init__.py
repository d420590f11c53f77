"""Input images: open safely, orient, convert, resize, encode.

The edit and fusion models take 1-3 input images, each an http(s) URL, an ``oss://`` reference
(from the temporary-upload flow) or a ``data:{mime};base64,...`` URI. The service documents
JPG, JPEG, PNG, BMP, TIFF, WEBP and GIF (first frame only), 384-3072 px per side and at most
10 MB per image (``shared/dashscope-protocol.md`` sections 3.2 and 5).

:func:`prepare_image` turns whatever a user has (a URL, a path, ``file://``, a data URI, bytes,
a PIL image or an open binary file) into a :class:`PreparedImage`: URLs are checked and passed
through, everything local is decoded once, normalised (EXIF orientation, first frame, colour
mode, size) and encoded as JPEG, PNG or WEBP. A file that needs no change is sent byte for byte.
Every change is reported to the user as a (Chinese, English) note; every refusal is an
:class:`~aliyun_image.errors.InputImageError` that names the file and says what to do.

Nothing here touches process-wide Pillow settings (``Image.MAX_IMAGE_PIXELS``,
``ImageFile.LOAD_TRUNCATED_IMAGES``): the hosted demo serves many users from one process.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import ipaddress
import math
import os
import re
import socket
import stat
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from ..errors import InputImageError

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

JPEG_QUALITY = 90  #: first re-encode quality; stepped down only if the result is too big
_QUALITY_STEPS = (90, 80, 70, 60)
_QUALITY_AFTER_SHRINK = (80, 60)
_SHRINK_STEP = 0.75
# zlib level 6 (Pillow's default) costs ~2x the time of 4 for a few percent smaller photos.
_PNG_COMPRESS_LEVEL = 4

_FORMATS_ZH = "JPG、PNG、BMP、TIFF、WEBP 或 GIF"
_FORMATS_EN = "JPG, PNG, BMP, TIFF, WEBP or GIF"

#: Formats the service lists; anything else Pillow reads is converted (with a note).
API_FORMATS = frozenset({"JPEG", "MPO", "PNG", "BMP", "TIFF", "WEBP", "GIF"})

#: Formats whose original bytes may be sent unchanged, with the modes that need no conversion.
#: PNG "P" (palette) is passed through: any PNG reader handles it, and re-encoding a palette
#: diagram as JPEG would make it bigger and blurrier.
_PASS_MODES = {
    "JPEG": frozenset({"RGB", "L"}),
    "PNG": frozenset({"RGB", "L", "RGBA", "P"}),
    "WEBP": frozenset({"RGB", "RGBA"}),
}
_MIME = {"JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
_EXT = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}

#: Pillow plugins we let parse untrusted bytes. Deliberately excludes EPS (runs Ghostscript),
#: WMF, FITS, MPEG and other exotic parsers. TGA has no magic number, so it is tried last.
_OPEN_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "DIB", "TIFF", "ICO", "CUR", "PPM",
                 "AVIF", "QOI", "PSD", "PCX", "SGI", "JPEG2000", "ICNS", "DDS", "TGA")

#: Extensions that promise an image: used to say "named like an image but is not one".
_IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".jfif", ".png", ".apng", ".bmp", ".tif", ".tiff",
                         ".webp", ".gif", ".ico", ".ppm", ".pgm", ".pbm", ".tga", ".avif"})

# Host names that can only mean "this machine" or "this network" (RFC 6761, RFC 8375, common
# cloud conventions). The service fetches URLs from Alibaba Cloud, so these can never work.
_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")


# --- Result -----------------------------------------------------------------------------------------
@dataclass
class PreparedImage:
    """One input image, ready for the wire.

    ``kind`` is ``"url"`` (http/https, sent as is), ``"oss"`` (``oss://``, sent as is) or
    ``"local"`` (we hold the encoded bytes in ``data``; the caller chooses between a data URI
    and the temporary upload). ``notes`` are (zh, en) sentences telling the user what was
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
    notes: list[tuple[str, str]] = field(default_factory=list)

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


# --- Options and labels -----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Options:
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
             max_pixels: int = DEFAULT_MAX_PIXELS) -> _Options:
        dirs = None
        if allowed_dirs is not None:
            dirs = tuple(os.path.realpath(os.fspath(d)) for d in allowed_dirs)
        return cls(bool(allow_local_paths), dirs, bool(allow_private_urls), max(1, int(max_bytes)),
                   min(MAX_SIDE, max(MIN_SIDE, int(max_side_send))), max(1, int(max_pixels)))


@dataclass(frozen=True)
class _Label:
    """How messages refer to one image: ``“photo.jpg”`` / ``"photo.jpg"``, or ``图2`` / ``image 2``."""

    name: str  # becomes PreparedImage.name
    zh: str
    en: str
    ext: str = ""  # extension of the user's file name, for "named .png but is not a PNG"

    @property
    def En(self) -> str:  # the label at the start of an English sentence
        return self.en[:1].upper() + self.en[1:]


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 20] + "…" + text[-19:]


def _make_label(display: str | None, index: int | None,
                generic: tuple[str, str, str] = ("image", "图片", "the image")) -> _Label:
    ext = os.path.splitext(display or "")[1].lower()
    if display:
        short = _shorten(display)
        if index is None:
            return _Label(display, f"“{short}”", f'"{short}"', ext)
        return _Label(display, f"图{index}（“{short}”）", f'image {index} ("{short}")', ext)
    if index is None:
        return _Label(generic[0], generic[1], generic[2])
    return _Label(f"image {index}", f"图{index}", f"image {index}")


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.2f}".rstrip("0").rstrip(".") + " MB"


def _err(code: str, zh: str, en: str) -> InputImageError:
    return InputImageError(zh, en, code=f"InputImage.{code}")


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
    opts = _Options.make(allow_local_paths=allow_local_paths, allowed_dirs=allowed_dirs,
                         allow_private_urls=allow_private_urls, max_bytes=max_bytes,
                         max_side_send=max_side_send, max_pixels=max_pixels)
    return _prepare(source, name, None, opts)


def prepare_images(sources: Sequence[Any], *, names: Sequence[str | None] | None = None,
                   **options: Any) -> list[PreparedImage]:
    """Prepare several input images with the same options (see :func:`prepare_image`).

    With more than one image, messages and notes say which one they mean (``图2`` /
    ``image 2``), in the order given - the order the service calls "image 1/2/3".
    ``names`` optionally gives a display name per image.
    """
    if "name" in options:
        raise TypeError("prepare_images() takes names=[...], not name=")
    if isinstance(sources, (str, bytes, bytearray, os.PathLike, Image.Image)):
        raise TypeError("prepare_images() takes a list of sources; use prepare_image() for one")
    opts = _Options.make(**options)
    items = list(sources)
    many = len(items) > 1
    names = list(names) if names is not None else [None] * len(items)
    if len(names) != len(items):
        raise ValueError("names must have one entry per source")
    return [_prepare(src, nm, i if many else None, opts)
            for i, (src, nm) in enumerate(zip(items, names), start=1)]


# --- Dispatch on the kind of source -----------------------------------------------------------------
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


def _prepare(source: Any, name: str | None, index: int | None, opts: _Options) -> PreparedImage:
    name = name.strip() if isinstance(name, str) and name.strip() else None
    if source is None or (isinstance(source, str) and not source.strip()):
        raise _no_image(index)
    if isinstance(source, str):
        return _prepare_string(source.strip(), name, index, opts)
    if isinstance(source, os.PathLike):
        path = os.fsdecode(os.fspath(source))
        label = _make_label(name or _basename(path), index)
        return _prepare_bytes(_read_path(path, label, opts), label, opts)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _prepare_bytes(bytes(source), _make_label(name, index), opts)
    if isinstance(source, Image.Image):
        filename = getattr(source, "filename", None)
        display = name or (_basename(filename) if isinstance(filename, str) and filename else None)
        return _prepare_pil(source, _make_label(display, index), opts)
    if hasattr(source, "read"):
        fname = getattr(source, "name", None)
        display = name or (_basename(fname) if isinstance(fname, str) and fname else None)
        label = _make_label(display, index)
        return _prepare_bytes(_read_stream(source, label), label, opts)
    raise TypeError(f"cannot use {type(source).__name__} as an input image")


def _prepare_string(text: str, name: str | None, index: int | None, opts: _Options) -> PreparedImage:
    head = text[:16].lower()
    if head.startswith("data:"):
        label = _make_label(name, index, ("data URI image", "data URI 图片", "the data URI image"))
        return _prepare_bytes(_decode_data_uri(text, label), label, opts)
    if head.startswith("file:"):
        path = _file_url_to_path(text, _make_label(name or text, index))
        label = _make_label(name or _basename(path), index)
        return _prepare_bytes(_read_path(path, label, opts, shown=text), label, opts)
    match = _SCHEME_RE.match(text)
    if match is None:
        label = _make_label(name or _basename(text), index)
        return _prepare_bytes(_read_path(text, label, opts), label, opts)
    scheme = match.group(1).lower()
    label = _make_label(name or text, index)
    if scheme in ("http", "https"):
        _check_http_url(text, label, opts)
        return PreparedImage(kind="url", name=label.name, ref=text)
    if scheme == "oss":
        if not text[len("oss://"):].strip("/"):
            raise _bad_url(label)
        return PreparedImage(kind="oss", name=label.name, ref=text)
    raise _bad_scheme(label, scheme)


def _basename(path: str) -> str:
    return re.split(r"[\\/]", path.rstrip("\\/"))[-1] or path


# --- URLs -------------------------------------------------------------------------------------------
def _check_http_url(url: str, label: _Label, opts: _Options) -> None:
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        raise _bad_url(label) from None
    if not host:
        raise _bad_url(label)
    if not opts.allow_private_urls and _is_private_host(host):
        raise _private_url(label, host)


def _is_private_host(host: str) -> bool:
    """True when ``host`` can only be reached from inside this machine or network.

    This is a usability check, not an SSRF defence: the service (not this process) fetches the
    URL, so we do not resolve DNS; a public name that resolves to a private address simply fails
    at the service with its own download error.
    """
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(_PRIVATE_SUFFIXES):
        return True
    ip = _parse_ip(host)
    if ip is None:
        return "." not in host  # a single-label name ("nas", "intranet") is a LAN name
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_unspecified
            or ip.is_reserved or ip.is_multicast or not ip.is_global)


def _parse_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    # Fetchers built on inet_aton also accept "127.1", "2130706433" and "0x7f.0.0.1".
    if re.fullmatch(r"[0-9a-fx.]+", host) and any(c.isdigit() for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _file_url_to_path(url: str, label: _Label) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.netloc not in ("", "localhost") or not parts.path:
        raise _bad_file_url(label)
    return urllib.request.url2pathname(parts.path)


# --- data: URIs -------------------------------------------------------------------------------------
def _decode_data_uri(uri: str, label: _Label) -> bytes:
    header, sep, payload = uri[len("data:"):].partition(",")
    if not sep:
        raise _bad_data_uri(label, "shape")
    params = [p.strip().lower() for p in header.split(";")]
    mime = params[0]
    if mime and not mime.startswith("image/"):
        raise _bad_data_uri(label, "mime", mime)
    if "base64" not in params[1:]:
        raise _bad_data_uri(label, "base64")
    try:
        return base64.b64decode(payload, validate=True)  # the usual case: one pass, no copies
    except (binascii.Error, ValueError):
        pass
    # Tolerate what copy-and-paste does to long URIs: line breaks, %-escapes, lost padding.
    payload = re.sub(r"\s+", "", urllib.parse.unquote(payload))
    payload += "=" * (-len(payload) % 4)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise _bad_data_uri(label, "invalid") from None


# --- Local files and streams ------------------------------------------------------------------------
def _read_path(path: str, label: _Label, opts: _Options, shown: str | None = None) -> bytes:
    """Read a local file, enforcing the hosted-mode rules before touching the file system."""
    shown = shown or path
    if not opts.allow_local_paths:
        raise _local_not_allowed(label, shown)
    try:
        expanded = os.path.expanduser(path)
        real = os.path.realpath(expanded)
    except (ValueError, OSError):
        raise _unreadable(label, shown) from None
    # Check the allow-list before existence, so a refused path reveals nothing about the disk.
    if opts.allowed_dirs is not None and not _inside_any(real, opts.allowed_dirs):
        raise _outside_dirs(label, shown)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        raise _not_found(label, shown) from None
    except (OSError, ValueError):
        raise _unreadable(label, shown) from None
    if stat.S_ISDIR(st.st_mode):
        raise _is_directory(label, shown)
    if not stat.S_ISREG(st.st_mode):  # FIFOs and devices could block or never end
        raise _not_regular(label, shown)
    if st.st_size > MAX_READ_BYTES:
        raise _too_big_to_read(label, st.st_size)
    try:
        # Open the resolved path: a symlink swapped in after the check cannot redirect us.
        with open(real, "rb") as fh:
            return fh.read(MAX_READ_BYTES + 1)
    except PermissionError:
        raise _unreadable(label, shown, denied=True) from None
    except OSError:
        raise _unreadable(label, shown) from None


def _inside_any(real: str, roots: tuple[str, ...]) -> bool:
    norm = os.path.normcase(real)
    for root in roots:
        root = os.path.normcase(root)
        try:
            if os.path.commonpath([norm, root]) == root:
                return True
        except ValueError:  # different drives on Windows
            continue
    return False


def _read_stream(stream: Any, label: _Label) -> bytes:
    try:
        data = stream.read(MAX_READ_BYTES + 1)
    except OSError:
        raise _unreadable(label, label.name) from None
    if isinstance(data, str):
        raise TypeError("the file object must be opened in binary mode ('rb')")
    data = bytes(data or b"")
    if len(data) > MAX_READ_BYTES:
        raise _too_big_to_read(label, len(data))
    return data


# --- Decoding ---------------------------------------------------------------------------------------
def _allowed_open_formats() -> tuple[str, ...]:
    Image.init()
    return tuple(f for f in _OPEN_FORMATS if f in Image.OPEN)


def _open_header(data: bytes, label: _Label, opts: _Options) -> Image.Image:
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
    except Exception as exc:  # a plugin choked on a broken header
        raise _corrupt(label, exc) from None
    return img


def _load(img: Image.Image, label: _Label, opts: _Options) -> None:
    """Force the decode so truncated or corrupt data fails here, not at the service."""
    try:
        img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(label, img.size, None, opts) from None
    except MemoryError:
        raise _too_many_pixels(label, img.size, None, opts) from None
    except Exception as exc:
        raise _corrupt(label, exc) from None


def _check_pixels(size: tuple[int, int], label: _Label, opts: _Options) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise _corrupt(label, ValueError("zero size"))
    if width * height > opts.max_pixels:
        raise _too_many_pixels(label, size, width * height, opts)


def _orientation(img: Image.Image) -> int:
    try:
        value = int(img.getexif().get(0x0112, 1) or 1)
    except Exception:  # broken EXIF must not block an otherwise fine image
        return 1
    return value if 1 <= value <= 8 else 1


# --- Planning ---------------------------------------------------------------------------------------
@dataclass
class _Plan:
    size: tuple[int, int]  # displayed size of the source (after EXIF rotation)
    target: tuple[int, int]  # displayed size to send
    reason: str  # why it changes size: "side", "bytes", "small" or ""


def _plan_size(width: int, height: int, rotated: bool, nbytes: int, label: _Label,
               opts: _Options) -> _Plan:
    """Choose the size to send: 384..3072 per side, long side ``max_side_send`` when shrinking."""
    if rotated:
        width, height = height, width
    long_side, short_side = max(width, height), min(width, height)
    scale, reason = 1.0, ""
    if long_side > MAX_SIDE or nbytes > opts.max_bytes:
        if long_side > opts.max_side_send:
            scale = opts.max_side_send / long_side
            reason = "side" if long_side > MAX_SIDE else "bytes"
    if short_side * scale < MIN_SIDE:
        scale, reason = MIN_SIDE / short_side, "small"
    if scale == 1.0:
        return _Plan((width, height), (width, height), "")
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    if reason == "small":  # rounding must not leave the short side at 383
        target = tuple(max(MIN_SIDE, v) if v == min(target) else v for v in target)
    if max(target) > MAX_SIDE:
        raise _aspect(label, width, height)
    return _Plan((width, height), target, reason)  # type: ignore[arg-type]


# --- Processing -------------------------------------------------------------------------------------
def _prepare_bytes(data: bytes, label: _Label, opts: _Options) -> PreparedImage:
    if not data:
        raise _empty(label)
    with _open_header(data, label, opts) as img:
        return _process(img, label, opts, data)


def _prepare_pil(img: Image.Image, label: _Label, opts: _Options) -> PreparedImage:
    return _process(img, label, opts, None)


def _process(img: Image.Image, label: _Label, opts: _Options, data: bytes | None) -> PreparedImage:
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
    if passthrough and img.mode == "RGBA" and _alpha_is_opaque(img):
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
    except Exception as exc:  # conversion of an exotic mode failed
        raise _corrupt(label, exc) from None


def _draft_jpeg(img: Image.Image, plan: _Plan, passthrough: bool) -> None:
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


def _reencode(img: Image.Image, label: _Label, opts: _Options, fmt: str, animated: bool,
              orientation: int, plan: _Plan, nbytes: int) -> PreparedImage:
    notes: list[tuple[str, str]] = []
    if animated and fmt != "MPO":  # MPO "frames" are depth maps/previews, not an animation
        notes.append(_note_first_frame(label))
    icc = img.info.get("icc_profile")
    if orientation != 1:
        img = ImageOps.exif_transpose(img)
        notes.append(_note_rotated(label))
    img, mode_note = _normalise_mode(img, label)
    if mode_note:
        notes.append(mode_note)
    if img.size != plan.target:
        img = img.resize(plan.target, Image.Resampling.LANCZOS,
                         reducing_gap=3.0 if img.width > plan.target[0] else None)
    if img.mode == "RGBA" and _alpha_is_opaque(img):
        img = img.convert("RGB")

    data, out_fmt, quality, img = _encode_to_fit(img, label, opts, _matching_icc(icc, img.mode))
    if fmt and fmt not in ("JPEG", "PNG", "WEBP"):
        notes.append(_note_converted(label, "JPEG" if fmt == "MPO" else fmt, out_fmt))
    if img.size != plan.size:
        notes.append(_note_resized(label, plan, img.size, opts))
    elif nbytes > opts.max_bytes:
        notes.append(_note_recompressed(label, out_fmt, opts))
    if quality is not None and quality < JPEG_QUALITY:
        notes.append(_note_quality(label, quality, opts))
    return _local(label, data, _MIME[out_fmt], img.size, notes)


def _local(label: _Label, data: bytes, mime: str, size: tuple[int, int],
           notes: list[tuple[str, str]]) -> PreparedImage:
    return PreparedImage(kind="local", name=label.name, ref=None, data=data, mime=mime,
                         width=size[0], height=size[1], sha256=hashlib.sha256(data).hexdigest(),
                         notes=notes)


def _alpha_is_opaque(img: Image.Image) -> bool:
    return img.getchannel("A").getextrema() == (255, 255)


def _normalise_mode(img: Image.Image, label: _Label) -> tuple[Image.Image, tuple[str, str] | None]:
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
        return _int_to_l(img), _note_depth(label)
    if mode == "F":
        return _float_to_l(img), _note_depth(label)
    if mode == "CMYK":
        # Pillow's JPEG decoder already undoes Adobe's inverted CMYK, so this is a plain convert.
        return img.convert("RGB"), _note_cmyk(label)
    return img.convert("RGB"), None  # YCbCr, LAB, HSV, RGBX... (alpha modes are handled above)


def _int_to_l(img: Image.Image) -> Image.Image:
    """16/32-bit greyscale to 8-bit by scaling, not clipping (a plain convert turns it white)."""
    sixteen = img.mode.startswith("I;16")
    if img.mode != "I":
        img = img.convert("I")
    low, high = img.getextrema()
    if sixteen or (low >= 0 and 255 < high <= 65535):
        return img.point(lambda v: v / 257).convert("L")
    if low >= 0 and high <= 255:
        return img.convert("L")
    span = (high - low) or 1
    return img.point(lambda v: (v - low) * 255 / span).convert("L")


def _float_to_l(img: Image.Image) -> Image.Image:
    low, high = img.getextrema()
    if low >= 0 and high <= 1.0:
        return img.point(lambda v: v * 255).convert("L")
    if low >= 0 and high <= 255:
        return img.convert("L")
    span = (high - low) or 1
    return img.point(lambda v: (v - low) * 255 / span).convert("L")


def _matching_icc(icc: Any, mode: str) -> bytes | None:
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


def _encode_to_fit(img: Image.Image, label: _Label, opts: _Options, icc: bytes | None,
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
            raise _cannot_fit(label, opts)
        # Always resample from the full image so quality does not degrade step by step.
        current = img.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
        if fmt == "JPEG":
            qualities = _QUALITY_AFTER_SHRINK


# --- Messages: errors ---------------------------------------------------------------------------------
def _no_image(index: int | None) -> InputImageError:
    if index is None:
        return _err("Missing", "没有提供图片。请选择或上传一张图片。",
                    "No image was given. Choose or upload an image.")
    return _err("Missing", f"图{index}为空：没有提供图片或路径。请选择或上传该图片。",
                f"Image {index} is empty: no image or path was given. Choose or upload it.")


def _empty(label: _Label) -> InputImageError:
    return _err("Empty", f"{label.zh}是空文件（0 字节）。请重新选择或上传该图片。",
                f"{label.En} is an empty file (0 bytes). Choose or upload the image again.")


def _sniff_kind(data: bytes) -> tuple[str, str] | None:
    """Name the common non-images people pick by mistake, to give a precise remedy."""
    head = data[:1024].lstrip().lower()
    if head.startswith(b"%pdf"):
        return "PDF 文档", "a PDF document"
    if head.startswith(b"%!ps"):
        return "PostScript/EPS 文件", "a PostScript/EPS file"
    if b"<svg" in head or (head.startswith(b"<?xml") and b"svg" in head):
        return "SVG 矢量图", "an SVG (vector) image"
    if head.startswith((b"<!doctype html", b"<html")):
        return "网页（HTML）", "a web page (HTML)"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
            return "HEIC/HEIF 照片", "a HEIC/HEIF photo"
        if brand in (b"avif", b"avis"):
            return "AVIF 图片", "an AVIF image"
    return None


def _unrecognised(label: _Label, data: bytes) -> InputImageError:
    kind = _sniff_kind(data)
    if kind is not None:
        zh_mid = f"它看起来是{kind[0]}，格式不受支持或无法识别。请先导出或另存为 PNG 或 JPG。"
        en_mid = (f"It looks like {kind[1]}: an unsupported or unrecognised format. "
                  "Export or save it as PNG or JPG first.")
    elif label.ext in _IMAGE_EXTS:
        zh_mid = (f"文件名以 {label.ext} 结尾，但内容不是可读取的图片（格式不受支持或无法识别，"
                  "可能已损坏或是改了扩展名的其他文件）。请用看图软件检查，或重新导出为 JPG 或 PNG。")
        en_mid = (f"Its name ends in {label.ext} but its content is not a readable image "
                  "(unsupported or unrecognised format: damaged, or another kind of file renamed). "
                  "Check it in an image viewer or export it again as JPG or PNG.")
    else:
        zh_mid = "格式不受支持或无法识别。请换一张图片，或先转换为 JPG 或 PNG。"
        en_mid = ("It is in an unsupported or unrecognised format. Use another image or convert "
                  "it to JPG or PNG first.")
    return _err("UnsupportedFormat", f"无法读取{label.zh}：{zh_mid}支持的格式：{_FORMATS_ZH}。",
                f"{label.En} cannot be used. {en_mid} Supported formats: {_FORMATS_EN}.")


def _corrupt(label: _Label, exc: BaseException) -> InputImageError:
    if "truncated" in str(exc).lower() or isinstance(exc, EOFError):
        why_zh, why_en = "文件不完整", "the file is truncated"
    else:
        why_zh, why_en = "图像数据无法解码", "the image data cannot be decoded"
    return _err("Corrupt",
                f"{label.zh}已损坏或不完整，无法读取（{why_zh}）。请重新下载或重新导出该图片后再试。"
                f"支持的格式：{_FORMATS_ZH}。",
                f"{label.En} is damaged or incomplete and cannot be read ({why_en}). Download or "
                f"export the image again and retry. Supported formats: {_FORMATS_EN}.")


def _too_many_pixels(label: _Label, size: tuple[int, int] | None, pixels: int | None,
                     opts: _Options, limit: int | None = None) -> InputImageError:
    limit = limit or opts.max_pixels
    if size is not None:
        pixels = size[0] * size[1]
        dims_zh = f"{size[0]}×{size[1]}（{pixels:,} 像素）"
        dims_en = f"{size[0]}x{size[1]} ({pixels:,} pixels)"
    elif pixels is not None:
        dims_zh, dims_en = f"{pixels:,} 像素", f"{pixels:,} pixels"
    else:
        dims_zh, dims_en = "过大", "too large"
    return _err("TooManyPixels",
                f"{label.zh}的尺寸为 {dims_zh}，超过上限 {limit:,} 像素，为安全起见未解码。"
                f"请先把图片缩小（例如长边不超过 {MAX_SIDE} 像素）后再试。",
                f"{label.En} is {dims_en}, more than the limit of {limit:,} pixels, so it "
                f"was not decoded (a safety limit). Shrink it first (for example to at most "
                f"{MAX_SIDE} px on the long side) and try again.")


def _aspect(label: _Label, width: int, height: int) -> InputImageError:
    return _err("AspectRatio",
                f"{label.zh}的宽高比过于极端（{width}×{height}）。服务要求每边在 {MIN_SIDE} 到 "
                f"{MAX_SIDE} 像素之间，所以长边最多是短边的 {MAX_ASPECT} 倍（{MAX_ASPECT}:1）。"
                "请裁剪图片后再试。",
                f"{label.En} has an extreme aspect ratio ({width}x{height}). The service needs "
                f"{MIN_SIDE} to {MAX_SIDE} px per side, so the long side may be at most "
                f"{MAX_ASPECT} times the short side ({MAX_ASPECT}:1). Crop the image and try again.")


def _cannot_fit(label: _Label, opts: _Options) -> InputImageError:
    limit = _mb(opts.max_bytes)
    return _err("TooLarge",
                f"{label.zh}无法压缩到 {limit} 以内。请先裁剪或缩小图片后再试。",
                f"{label.En} cannot be compressed below {limit}. Crop or shrink it first and try again.")


def _too_big_to_read(label: _Label, size: int) -> InputImageError:
    return _err("TooLarge",
                f"{label.zh}有 {_mb(size)}，超过本工具可读取的上限 {_mb(MAX_READ_BYTES)}。"
                "请先缩小或压缩图片后再试。",
                f"{label.En} is {_mb(size)}, more than the {_mb(MAX_READ_BYTES)} this tool reads. "
                "Shrink or compress the image first and try again.")


def _not_found(label: _Label, shown: str) -> InputImageError:
    return _err("NotFound", f"找不到{label.zh}：{shown}。请检查路径是否正确。",
                f"{label.En} was not found: {shown}. Check the path and try again.")


def _is_directory(label: _Label, shown: str) -> InputImageError:
    return _err("IsDirectory", f"{label.zh}是一个文件夹，不是图片文件：{shown}。请选择其中的图片文件。",
                f"{label.En} is a folder, not an image file: {shown}. Choose an image file instead.")


def _not_regular(label: _Label, shown: str) -> InputImageError:
    return _err("NotAFile", f"{label.zh}不是普通文件：{shown}。请选择一个图片文件。",
                f"{label.En} is not a regular file: {shown}. Choose an image file instead.")


def _unreadable(label: _Label, shown: str, denied: bool = False) -> InputImageError:
    why_zh, why_en = ("没有读取权限", "permission denied") if denied else ("读取失败", "read error")
    return _err("Unreadable", f"无法读取{label.zh}（{why_zh}）：{shown}。请检查文件权限或换一个文件。",
                f"{label.En} cannot be read ({why_en}): {shown}. Check the file's permissions or "
                "choose another file.")


def _local_not_allowed(label: _Label, shown: str) -> InputImageError:
    return _err("LocalPathNotAllowed",
                f"此处不能使用本地文件路径（{label.zh}：{shown}）。请用上传按钮上传图片，"
                "或提供可公开访问的 http(s) 链接。",
                f"Local file paths cannot be used here ({label.en}: {shown}). Upload the image "
                "with the upload button, or give a public http(s) URL.")


def _outside_dirs(label: _Label, shown: str) -> InputImageError:
    return _err("PathNotAllowed",
                f"不允许读取{label.zh}（{shown}）：它不在允许的文件夹内。请用上传按钮上传图片。",
                f"{label.En} ({shown}) may not be read: it is outside the folders this service "
                "may read. Upload the image instead.")


def _bad_url(label: _Label) -> InputImageError:
    return _err("BadURL",
                f"链接{label.zh}无效（缺少主机名或格式不对）。请检查链接是否完整，"
                "例如 https://example.com/photo.jpg 或 oss://bucket/key。",
                f"The link {label.en} is not valid (no host name or malformed). Check that it is "
                "complete, e.g. https://example.com/photo.jpg or oss://bucket/key.")


def _bad_file_url(label: _Label) -> InputImageError:
    return _err("BadURL",
                f"file:// 链接{label.zh}无效。请使用 file:///绝对路径 的形式，或直接填写本地路径。",
                f"The file:// URL {label.en} is not valid. Use file:///absolute/path or give the "
                "local path directly.")


_FETCH_ZH = "阿里云服务需要能从互联网下载该链接。"
_FETCH_EN = "The service must be able to fetch the URL from the internet."


def _private_url(label: _Label, host: str) -> InputImageError:
    return _err("PrivateURL",
                f"链接{label.zh}指向本机或内网地址（{host}）。{_FETCH_ZH}"
                "请使用可公开访问的 http(s) 链接，或直接上传图片。",
                f"The link {label.en} points to a local or private address ({host}). {_FETCH_EN} "
                "Use a public http(s) URL or upload the image instead.")


def _bad_scheme(label: _Label, scheme: str) -> InputImageError:
    return _err("UnsupportedScheme",
                f"不支持链接{label.zh}的类型（{scheme}://）。{_FETCH_ZH}"
                "请使用 http(s):// 或 oss:// 链接、data: URI，或直接上传图片。",
                f"The link {label.en} uses an unsupported scheme ({scheme}://). {_FETCH_EN} "
                "Use an http(s):// or oss:// URL, a data: URI, or upload the image.")


def _bad_data_uri(label: _Label, problem: str, mime: str = "") -> InputImageError:
    zh, en = {
        "shape": ("格式不完整（缺少逗号分隔的数据部分）", "is incomplete (no comma before the data)"),
        "mime": (f"声明的类型是 {mime}，不是图片", f"declares the type {mime}, not an image"),
        "base64": ("不是 base64 编码", "is not base64-encoded"),
        "invalid": ("中的 base64 数据无效（可能被截断或损坏）",
                    "contains invalid base64 data (cut off or damaged)"),
    }[problem]
    return _err("BadDataURI",
                f"{label.zh}{zh}。请使用 data:image/png;base64,... 的形式，或直接上传图片文件。",
                f"{label.En} {en}. Use the form data:image/png;base64,... or upload the image file.")


# --- Messages: notes ----------------------------------------------------------------------------------
def _note_first_frame(label: _Label) -> tuple[str, str]:
    return (f"{label.zh}包含多帧（动图或多页），只使用第一帧。",
            f"{label.En} has several frames (animation or pages); only the first one is used.")


def _note_rotated(label: _Label) -> tuple[str, str]:
    return (f"{label.zh}：已按 EXIF 方向信息旋转为正向。",
            f"{label.En}: rotated upright according to its EXIF orientation.")


def _note_depth(label: _Label) -> tuple[str, str]:
    return (f"{label.zh}：已从高位深（16 位或浮点）转换为每通道 8 位。",
            f"{label.En}: converted from high bit depth (16-bit or float) to 8 bits per channel.")


def _note_cmyk(label: _Label) -> tuple[str, str]:
    return (f"{label.zh}：已从 CMYK 转换为 RGB 颜色，颜色可能略有差异。",
            f"{label.En}: converted from CMYK to RGB colours; colours may look slightly different.")


def _note_converted(label: _Label, src: str, dst: str) -> tuple[str, str]:
    if src in API_FORMATS:
        return (f"{label.zh}：已从 {src} 转换为 {dst}，以减小上传体积。",
                f"{label.En}: converted from {src} to {dst} for a smaller upload.")
    return (f"{label.zh}：已从 {src} 转换为 {dst}（服务不接受 {src} 格式）。",
            f"{label.En}: converted from {src} to {dst} (the service does not accept {src}).")


def _note_resized(label: _Label, plan: _Plan, size: tuple[int, int],
                  opts: _Options) -> tuple[str, str]:
    (w0, h0), (w1, h1) = plan.size, size
    if w1 > w0:
        return (f"{label.zh}：已从 {w0}×{h0} 放大到 {w1}×{h1}，因为服务要求每边至少 {MIN_SIDE} 像素。",
                f"{label.En}: upscaled from {w0}x{h0} to {w1}x{h1} because the service needs at "
                f"least {MIN_SIDE} px per side.")
    if size != plan.target:  # shrunk again after encoding: the output itself was too big
        why_zh, why_en = f"以控制在 {_mb(opts.max_bytes)} 以内", f"to stay under {_mb(opts.max_bytes)}"
    elif plan.reason == "side":
        why_zh, why_en = f"服务每边最多接受 {MAX_SIDE} 像素", f"the service accepts at most {MAX_SIDE} px per side"
    else:
        why_zh, why_en = f"文件超过 {_mb(opts.max_bytes)}", f"the file was over {_mb(opts.max_bytes)}"
    return (f"{label.zh}：已从 {w0}×{h0} 缩小到 {w1}×{h1}（{why_zh}）。",
            f"{label.En}: downscaled from {w0}x{h0} to {w1}x{h1} ({why_en}).")


def _note_recompressed(label: _Label, out_fmt: str, opts: _Options) -> tuple[str, str]:
    return (f"{label.zh}：文件超过 {_mb(opts.max_bytes)}，已重新编码为 {out_fmt}。",
            f"{label.En}: the file was over {_mb(opts.max_bytes)}, so it was re-encoded as {out_fmt}.")


def _note_quality(label: _Label, quality: int, opts: _Options) -> tuple[str, str]:
    return (f"{label.zh}：已以 JPEG 质量 {quality} 保存，以控制在 {_mb(opts.max_bytes)} 以内。",
            f"{label.En}: saved as JPEG quality {quality} to stay under {_mb(opts.max_bytes)}.")
