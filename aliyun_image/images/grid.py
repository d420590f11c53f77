"""The X/Y grid image: member images in rows and columns, with the axes' labels, and its recipe in
the PNG's text chunks (:mod:`.pngtext`).

Labels are drawn with a font that has the label's characters: a CJK font for Chinese and Japanese
(WenQuanYi, Noto CJK, Droid Sans Fallback... whichever this machine has, found once), else DejaVu
Sans, else Pillow's built-in font. :func:`can_draw` tells the caller whether a text would come out
as boxes, so it can pick the English words instead.
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from PIL import Image, ImageDraw, ImageFont

from .pngtext import PngTextWriter

CELL = 384  # px: the longer side of each member image in the grid
PAD = 12
BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
EMPTY = (230, 230, 230)  # a cell whose image is missing (failed, not made)
RECIPE_KEY = "aliyun-image-grid"  # the PNG text chunk holding the grid's recipe (JSON)

_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "/System/Library/Fonts", "/Library/Fonts",
              "C:/Windows/Fonts", str(Path.home() / ".fonts"), str(Path.home() / ".local/share/fonts"))
# File names of fonts with CJK glyphs, best first; then Latin fonts.
_CJK_NAMES = ("wqy-microhei.ttc", "wqy-zenhei.ttc", "NotoSansCJK-Regular.ttc", "NotoSansCJKsc-Regular.otf",
              "NotoSansSC-Regular.otf", "SourceHanSansSC-Regular.otf", "DroidSansFallbackFull.ttf",
              "DroidSansFallback.ttf", "msyh.ttc", "simhei.ttf", "PingFang.ttc", "Hiragino Sans GB.ttc")
_LATIN_NAMES = ("DejaVuSans.ttf", "LiberationSans-Regular.ttf", "Arial.ttf", "arial.ttf")


@functools.cache
def _font_files() -> dict[str, Path]:
    """Font files of this machine by file name (searched once)."""
    found: dict[str, Path] = {}
    wanted = set(_CJK_NAMES) | set(_LATIN_NAMES)
    for base in _FONT_DIRS:
        root = Path(base)
        if not root.is_dir():
            continue
        for path in root.rglob("*"):
            if path.name in wanted and path.name not in found:
                found[path.name] = path
    return found


def _is_wide(text: str) -> bool:
    """True when ``text`` has characters beyond Latin, Greek and Cyrillic (CJK, kana...)."""
    return any(ord(ch) >= 0x2E80 for ch in text)


@functools.cache
def font_path(wide: bool) -> Path | None:
    """The font file for labels (``wide``: one with CJK glyphs), or None when there is none."""
    files = _font_files()
    names = (_CJK_NAMES + _LATIN_NAMES) if wide else (_LATIN_NAMES + _CJK_NAMES)
    for name in names:
        if name in files and (not wide or name in _CJK_NAMES):
            return files[name]
    return None if wide else next((files[n] for n in _CJK_NAMES if n in files), None)


def can_draw(text: str) -> bool:
    """True when this machine has a font for every character of ``text``."""
    return not _is_wide(text) or font_path(True) is not None


@functools.cache
def _font(wide: bool, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = font_path(wide) or font_path(False)
    if path is not None:
        try:
            return ImageFont.truetype(str(path), size)
        except OSError:
            pass
    return ImageFont.load_default(size)


def _text_size(draw: ImageDraw.ImageDraw, text: str, size: int) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=_font(_is_wide(text), size))
    return int(right - left), int(bottom - top)


def _fit(draw: ImageDraw.ImageDraw, text: str, size: int, width: int) -> str:
    """``text``, cut with an ellipsis to fit ``width`` pixels."""
    if _text_size(draw, text, size)[0] <= width:
        return text
    while text and _text_size(draw, text + "…", size)[0] > width:
        text = text[:-1]
    return text + "…"


def _thumb(path: Path | None, cell: int) -> Image.Image:
    """A member image fitted into a ``cell`` square (centred on white), or an empty grey cell."""
    box = Image.new("RGB", (cell, cell), BACKGROUND)
    if path is None or not Path(path).is_file():
        box.paste(EMPTY, (0, 0, cell, cell))
        return box
    with Image.open(path) as src:
        im = src.convert("RGB")
    im.thumbnail((cell, cell))
    box.paste(im, ((cell - im.width) // 2, (cell - im.height) // 2))
    return box


def compose(cells: Sequence[Sequence[Path | None]], columns: Sequence[str], rows: Sequence[str], *,
            x_title: str, y_title: str = "", cell: int = CELL) -> Image.Image:
    """The grid: ``cells[row][column]`` images under column labels ``columns`` (headed ``x_title``)
    and beside row labels ``rows`` (headed ``y_title``; one unnamed row when there is no Y axis)."""
    size = max(14, cell // 16)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line = _text_size(probe, "Ag\u56fe", size)[1] + 6
    label_w = min(cell, max([_text_size(probe, s, size)[0] for s in [*rows, y_title]] + [0]) + 2 * PAD) \
        if y_title or any(rows) else 0
    top = 2 * line + PAD
    width = label_w + len(columns) * (cell + PAD) + PAD
    height = top + len(rows) * (cell + PAD) + PAD
    out = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(out)

    def write(xy: tuple[int, int], text: str, room: int) -> None:
        text = _fit(draw, text, size, room)
        draw.text(xy, text, fill=INK, font=_font(_is_wide(text), size))

    write((label_w + PAD, PAD // 2), x_title, width - label_w - 2 * PAD)
    for c, name in enumerate(columns):
        write((label_w + PAD + c * (cell + PAD), PAD // 2 + line), name, cell)
    if y_title:
        write((PAD, PAD // 2 + line), y_title, max(1, label_w - PAD))
    for r, name in enumerate(rows):
        y = top + r * (cell + PAD)
        write((PAD, y + cell // 2 - line // 2), name, max(1, label_w - PAD))
        for c in range(len(columns)):
            path = cells[r][c] if r < len(cells) and c < len(cells[r]) else None
            out.paste(_thumb(path, cell), (label_w + PAD + c * (cell + PAD), y))
    return out


def save_png(image: Image.Image, fh: IO[bytes], recipe: dict, texts: dict[str, str] | None = None) -> None:
    """Write ``image`` as PNG into ``fh`` with ``recipe`` (JSON, under :data:`RECIPE_KEY`) and
    ``texts`` as iTXt chunks, slipped in as the bytes stream (:class:`.pngtext.PngTextWriter`)."""
    chunks = {**(texts or {}), RECIPE_KEY: json.dumps(recipe, ensure_ascii=False)}
    writer = PngTextWriter(fh, chunks)
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False)
    writer.write(buf.getvalue())
    writer.flush()
