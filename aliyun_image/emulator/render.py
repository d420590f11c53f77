"""Deterministic stand-in images for the emulator.

A :class:`RenderSpec` says everything that decides a picture (model, prompt, seed, size, inputs,
watermark, position in the batch). :func:`render` turns it into PNG bytes: the same recipe
always gives the same bytes, while a different prompt, seed or model gives a visibly different
picture. Every image carries an "EMULATOR · 模拟结果" label so nobody mistakes it for a real
Qwen-Image output, and names the model that "made" it: its id in the label, its display name
in the caption, and a ``model`` text chunk in the PNG (readable with ``Image.open(...).info``).

Input images (for edits) are kept as small JPEG thumbnails keyed by the SHA-256 of the
original bytes (:class:`InputThumbs`); a recipe names them by hash, so recipes stay small and
can be re-rendered after the byte cache evicted them.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import os
import random
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont, ImageOps
from PIL.PngImagePlugin import PngInfo

from ..catalog import get_model

LABEL = "EMULATOR · 模拟结果"
WATERMARK = "Qwen-Image"
MAX_INPUT_PIXELS = 40_000_000
THUMB_SIDE = 512  # inputs are kept this small: enough to be recognisable when scaled up

_FONT_PATTERNS = (
    "NotoSansCJK*-Regular.ttc", "NotoSansCJK*.ttc", "NotoSansCJK*.otf", "NotoSansSC*.otf",
    "NotoSerifCJK*-Regular.ttc", "NotoSerifCJK*", "wqy-microhei*", "wqy-zenhei*", "wqy*",
    "DroidSansFallback*", "msyh.ttc", "simhei.ttf", "PingFang.ttc", "Hiragino Sans GB*",
)
_FONT_DIRS = (
    "/usr/share/fonts", "/usr/local/share/fonts", os.path.expanduser("~/.fonts"),
    os.path.expanduser("~/.local/share/fonts"), "/System/Library/Fonts", "/Library/Fonts",
    "C:/Windows/Fonts",
)


@dataclass(frozen=True)
class RenderSpec:
    """Everything that decides one output image.

    ``inputs`` are SHA-256 hex digests of the input images, in request order (empty for
    text-to-image). ``index`` is the image's position in its batch, so ``n=2`` yields two
    different pictures that are each reproducible.
    """

    model: str
    prompt: str
    negative: str
    seed: int
    width: int
    height: int
    inputs: tuple[str, ...] = ()
    watermark: bool = False
    index: int = 0

    @property
    def key(self) -> str:
        """Stable hash of the recipe; also the seed of its random choices."""
        blob = json.dumps(asdict(self), ensure_ascii=False, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()


# --- fonts ---------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def find_cjk_font() -> str | None:
    """Path of a TrueType/OpenType font that can draw Chinese, or None if the system has none."""
    for pattern in _FONT_PATTERNS:
        for root in _FONT_DIRS:
            if not os.path.isdir(root):
                continue
            hits = sorted(glob.glob(os.path.join(root, "**", pattern), recursive=True))
            if hits:
                return hits[0]
    return None


@lru_cache(maxsize=32)
def _font(size: int):
    path = find_cjk_font()
    if path:
        # Noto CJK collections: face 2 is Simplified Chinese; other files have one face.
        for index in ((2, 0) if path.endswith(".ttc") and "CJK" in path else (0,)):
            try:
                return ImageFont.truetype(path, size, index=index)
            except OSError:
                continue
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def _safe_text(font, text: str) -> str:
    # The bitmap fallback font only knows Latin-1; FreeType fonts draw tofu at worst.
    if isinstance(font, ImageFont.FreeTypeFont):
        return text
    return text.encode("latin-1", "replace").decode("latin-1")


def _text(draw: ImageDraw.ImageDraw, xy, text: str, size: int, fill, **kw) -> None:
    font = _font(size)
    draw.text(xy, _safe_text(font, text), font=font, fill=fill, **kw)


def _text_width(draw: ImageDraw.ImageDraw, text: str, size: int) -> int:
    font = _font(size)
    box = draw.textbbox((0, 0), _safe_text(font, text), font=font)
    return int(box[2] - box[0])


# --- building blocks -----------------------------------------------------------------------------
def _rng(*parts) -> random.Random:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


def _colour(rng: random.Random, lo: int = 30, hi: int = 230) -> tuple[int, int, int]:
    return (rng.randint(lo, hi), rng.randint(lo, hi), rng.randint(lo, hi))


def _gradient(w: int, h: int, a, b, angle: int) -> Image.Image:
    """Two-colour linear gradient: a 256px ramp rotated and stretched (fast, no per-pixel work)."""
    ramp = Image.linear_gradient("L").rotate(angle, resample=Image.Resampling.BILINEAR, expand=False)
    # The rotated ramp has blank corners; cropping the middle keeps a clean gradient.
    mask = ramp.crop((48, 48, 208, 208)).resize((w, h), Image.Resampling.BILINEAR)
    return Image.composite(Image.new("RGB", (w, h), b), Image.new("RGB", (w, h), a), mask)


def _shapes(img: Image.Image, rng: random.Random, count: int, outline_only: bool = False) -> None:
    w, h = img.size
    overlay = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(overlay)
    side = min(w, h)
    for _ in range(count):
        r = rng.randint(side // 14, side // 4)
        cx, cy = rng.randint(0, w), rng.randint(0, h)
        col = (*_colour(rng, 0, 255), rng.randint(90, 200))
        kind = rng.choice(("ellipse", "rect", "triangle"))
        box = (cx - r, cy - r, cx + r, cy + r)
        fill = None if outline_only else col
        width = max(2, side // 150)
        if kind == "ellipse":
            d.ellipse(box, fill=fill, outline=col[:3] + (230,), width=width)
        elif kind == "rect":
            d.rounded_rectangle(box, radius=r // 4, fill=fill, outline=col[:3] + (230,), width=width)
        else:
            pts = [(cx + rng.randint(-r, r), cy + rng.randint(-r, r)) for _ in range(3)]
            d.polygon(pts, fill=fill, outline=col[:3] + (230,), width=width)
    img.paste(overlay, (0, 0), overlay)


def placeholder(seed_text: str, width: int = THUMB_SIDE, height: int = THUMB_SIDE) -> Image.Image:
    """A deterministic picture standing in for an image we cannot fetch (e.g. an internet URL)."""
    rng = _rng("placeholder", seed_text)
    img = _gradient(width, height, _colour(rng), _colour(rng), rng.randrange(0, 360, 15))
    _shapes(img, rng, 5)
    d = ImageDraw.Draw(img)
    size = max(12, min(width, height) // 12)
    _text(d, (size // 2, height - size * 2), "URL 图片", size, (255, 255, 255), stroke_width=2,
          stroke_fill=(0, 0, 0))
    return img


# --- input thumbnails ----------------------------------------------------------------------------
def make_thumb(img: Image.Image) -> bytes:
    """Shrink ``img`` to at most :data:`THUMB_SIDE` and encode it (JPEG: small and deterministic)."""
    img = img.convert("RGB")
    img.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=88)
    return out.getvalue()


def decode_image(data: bytes) -> tuple[bytes, tuple[int, int]]:
    """Thumbnail and upright ``(width, height)`` of encoded image ``data``.

    Raises ValueError when ``data`` is not an image Pillow can read (GIF: first frame).
    """
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if w * h > MAX_INPUT_PIXELS:  # decompression bombs: refuse before decoding
                raise ValueError("image has too many pixels")
            if im.getexif().get(0x0112) in (5, 6, 7, 8):  # EXIF rotation by 90 degrees
                w, h = h, w
            im.draft("RGB", (THUMB_SIDE, THUMB_SIDE))  # JPEG: decode at reduced scale, much faster
            return make_thumb(_upright(im)), (w, h)
    except Exception as exc:  # Pillow raises many types for garbage (OSError, SyntaxError...)
        raise ValueError(f"not a readable image: {exc.__class__.__name__}") from exc


def _upright(im: Image.Image) -> Image.Image:
    """``im`` turned by its EXIF orientation, or ``im`` itself when the EXIF is broken."""
    try:
        return ImageOps.exif_transpose(im)
    except Exception:  # noqa: BLE001 - Pillow's EXIF parser raises many types on bad tags; not worth refusing an image
        return im


class InputThumbs:
    """Bounded LRU of input-image thumbnails keyed by SHA-256 of the original bytes (thread-safe).

    Each entry also remembers the original ``(width, height)``: the edit output size follows
    the last input's aspect ratio, and a repeated input need not be decoded again.
    """

    def __init__(self, capacity: int = 2048):
        self.capacity = capacity
        self._items: OrderedDict[str, tuple[bytes, tuple[int, int]]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, sha: str, thumb: bytes, size: tuple[int, int]) -> None:
        """Remember ``thumb`` (and the original ``size``) under ``sha``, evicting the oldest."""
        with self._lock:
            self._items[sha] = (thumb, size)
            self._items.move_to_end(sha)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def size(self, sha: str) -> tuple[int, int] | None:
        """Original ``(width, height)`` of a known input, or None."""
        with self._lock:
            item = self._items.get(sha)
            if item is not None:
                self._items.move_to_end(sha)
            return item[1] if item else None

    def get(self, sha: str) -> Image.Image | None:
        """The thumbnail as an RGB image, or None if unknown/evicted."""
        with self._lock:
            item = self._items.get(sha)
            if item is not None:
                self._items.move_to_end(sha)
        if item is None:
            return None
        with Image.open(io.BytesIO(item[0])) as im:
            return im.convert("RGB")


# --- the render ----------------------------------------------------------------------------------
def _edit_base(recipe: RenderSpec, images: list[Image.Image], rng: random.Random) -> Image.Image:
    w, h = recipe.width, recipe.height
    # The last input decides the aspect ratio (as in the service), so it fills the canvas.
    base = ImageOps.fit(images[-1], (w, h), Image.Resampling.BILINEAR)
    base = ImageOps.posterize(base, rng.choice((2, 3, 4, 5)))
    tint = Image.new("RGB", (w, h), _colour(rng, 0, 255))
    base = Image.blend(base, tint, 0.28)
    _shapes(base, rng, 4, outline_only=True)
    if len(images) > 1:
        d = ImageDraw.Draw(base)
        side = min(w, h) // 4
        pad = max(8, side // 12)
        label_size = max(14, side // 7)
        y = pad + label_size * 2
        for i, im in enumerate(images, 1):
            inset = ImageOps.fit(im, (side, side), Image.Resampling.BILINEAR)
            x = w - side - pad
            base.paste(inset, (x, y))
            d.rectangle((x - 2, y - 2, x + side + 1, y + side + 1), outline=(255, 255, 255), width=3)
            _text(d, (x + 6, y + 4), f"图{i}", label_size, (255, 255, 255), stroke_width=2,
                  stroke_fill=(0, 0, 0))
            y += side + pad
    return base


def render(recipe: RenderSpec, inputs: InputThumbs | None = None) -> bytes:
    """PNG bytes for ``recipe``: exactly ``width*height``, deterministic, labelled as emulated."""
    w, h = recipe.width, recipe.height
    rng = _rng(recipe.key)
    if recipe.inputs:
        images = []
        for sha in recipe.inputs:
            img = inputs.get(sha) if inputs is not None else None
            # Evicted thumbnail: a stand-in derived from the hash keeps the render deterministic.
            images.append(img if img is not None else placeholder(sha))
        img = _edit_base(recipe, images, rng)
    else:
        img = _gradient(w, h, _colour(rng), _colour(rng), rng.randrange(0, 360, 15))
        _shapes(img, rng, rng.randint(5, 9))

    d = ImageDraw.Draw(img)
    side = min(w, h)
    small = max(12, side // 40)
    # Label top-left on a dark box: the "this is not a real result" marker and the model id,
    # so a picture shown without its request still says which model it stands in for.
    label = f"{LABEL} · {recipe.model}"
    lw = _text_width(d, label, small)
    d.rectangle((0, 0, lw + small * 2, small * 2 + small // 2), fill=(20, 20, 20))
    _text(d, (small, small // 2), label, small, (255, 220, 80))

    # Caption strip: model's display name, seed, start of the prompt.
    strip = small * 3
    d.rectangle((0, h - strip, w, h), fill=(0, 0, 0))
    prompt = " ".join(recipe.prompt.split())
    max_chars = max(8, int(w / (small * 0.9)) - 30)
    if len(prompt) > max_chars:
        prompt = prompt[: max_chars - 1] + "…"
    caption = f"{model_title(recipe.model)} · seed {recipe.seed} · #{recipe.index + 1} · {prompt}"
    _text(d, (small, h - strip + small), caption, small, (235, 235, 235))

    if recipe.watermark:
        big = max(16, side // 22)
        ww = _text_width(d, WATERMARK, big)
        _text(d, (w - ww - big, h - strip - big * 2), WATERMARK, big, (255, 255, 255),
              stroke_width=max(1, big // 12), stroke_fill=(60, 60, 60))

    info = PngInfo()
    info.add_text("model", recipe.model)
    info.add_text("Software", LABEL)
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=1, pnginfo=info)
    return out.getvalue()


def model_title(model: str) -> str:
    """The display name of ``model`` from the catalogue (the id itself when it has none)."""
    spec = get_model(model)
    return spec.title if spec is not None and spec.title else model
