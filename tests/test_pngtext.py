"""Text chunks slipped into a PNG while it streams."""

import io

from PIL import Image

from aliyun_image.images.pngtext import PngTextWriter


def _png(w=40, h=30):
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (10, 200, 30)).save(buf, "PNG")
    return buf.getvalue()


def test_chunks_inserted_in_small_writes_and_image_intact():
    src = _png()
    out = io.BytesIO()
    w = PngTextWriter(out, {"parameters": "一只橘猫\nSeed: 42", "aliyun-image": "{}"})
    for i in range(0, len(src), 7):  # awkward chunking across the header
        w.write(src[i:i + 7])
    w.flush()
    assert w.is_png
    im = Image.open(io.BytesIO(out.getvalue()))
    im.load()
    assert im.text["parameters"] == "一只橘猫\nSeed: 42"
    assert im.size == (40, 30) and im.getpixel((0, 0)) == (10, 200, 30)


def test_restart_after_seek_and_truncate():
    src = _png()
    out = io.BytesIO()
    w = PngTextWriter(out, {"k": "v"})
    w.write(src[:50])
    w.seek(0)
    w.truncate()
    w.write(src)
    w.flush()
    assert Image.open(io.BytesIO(out.getvalue())).text["k"] == "v"


def test_non_png_passes_through():
    out = io.BytesIO()
    w = PngTextWriter(out, {"k": "v"})
    w.write(b"<html>nope</html>")
    w.flush()
    assert out.getvalue() == b"<html>nope</html>" and not w.is_png
