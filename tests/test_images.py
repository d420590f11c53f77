"""Tests for aliyun_image.images: every input shape, every normalisation, every refusal.

The whole corpus is generated in tmp_path (no binary fixtures in the repository).
"""

from __future__ import annotations

import base64
import hashlib
import io
import random
import re
import struct
import time
import warnings
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from aliyun_image.errors import InputImageError, ValidationError
from aliyun_image.images import PreparedImage, prepare_image, prepare_images

CJK = re.compile(r"[\u4e00-\u9fff]")
KANA = re.compile(r"[\u3040-\u30ff]")


# --- helpers ---------------------------------------------------------------------------------------
def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def noise(size: tuple[int, int], seed: int = 1, block: int = 1) -> Image.Image:
    """Deterministic RGB noise; ``block`` > 1 makes it smoother (and more compressible)."""
    w, h = max(1, size[0] // block), max(1, size[1] // block)
    small = Image.frombytes("RGB", (w, h), random.Random(seed).randbytes(w * h * 3))
    return small if block == 1 else small.resize(size, Image.Resampling.BILINEAR)


def halves(size=(600, 400), left=(255, 0, 0), right=(0, 0, 255)) -> Image.Image:
    img = Image.new("RGB", size, right)
    img.paste(left, (0, 0, size[0] // 2, size[1]))
    return img


def decoded(prep: PreparedImage) -> Image.Image:
    img = Image.open(io.BytesIO(prep.data))
    img.load()
    return img


def near(pixel, expected, tol=40) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(pixel, expected, strict=False))


def check_error(exc: BaseException, *needles: str) -> None:
    """The error is a user-facing InputImageError naming the file in every language."""
    assert isinstance(exc, InputImageError) and isinstance(exc, ValidationError)
    assert exc.msg.key.startswith("image.error.")
    assert CJK.search(exc.zh), exc.zh
    assert not CJK.search(exc.en), exc.en
    assert KANA.search(exc.text("ja")), exc.text("ja")
    for text in (exc.zh, exc.en, exc.text("ja")):
        assert "Traceback" not in text and "PIL" not in text
        for needle in needles:
            assert needle in text, (needle, text)


def notes(prep: PreparedImage, lang: str = "en") -> list[str]:
    """The image's notes as the reader of ``lang`` sees them."""
    return [n.render(lang) for n in prep.notes]


def png_with_header_size(width: int, height: int) -> bytes:
    """A 1x1 PNG whose IHDR claims another size: tiny on disk, huge if ever decoded."""
    data = bytearray(encode(Image.new("1", (1, 1)), "PNG"))
    assert data[12:16] == b"IHDR"
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


# --- orientation, modes, frames --------------------------------------------------------------------
def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display = rotate 90 degrees clockwise
    exif[0x8825] = {1: "N", 2: (31.0, 14.0, 0.0)}  # GPS, must not survive a re-encode
    path = write(tmp_path / "phone.jpg", encode(halves(), "JPEG", exif=exif.tobytes()))
    prep = prepare_image(path)
    assert (prep.kind, prep.mime, prep.width, prep.height) == ("local", "image/jpeg", 400, 600)
    out = decoded(prep)
    assert out.size == (400, 600)
    assert near(out.getpixel((200, 50)), (255, 0, 0)) and near(out.getpixel((200, 550)), (0, 0, 255))
    assert "exif" not in out.info
    assert any("EXIF" in en for en in notes(prep)) and any("EXIF" in zh for zh in notes(prep, "zh"))


def test_big_rotated_jpeg_is_drafted_then_turned():
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(halves((4000, 3000)), "JPEG", exif=exif.tobytes())
    prep = prepare_image(data, name="tall.jpg")
    assert (prep.width, prep.height) == (1536, 2048)
    out = decoded(prep)
    assert near(out.getpixel((768, 100)), (255, 0, 0)) and near(out.getpixel((768, 1900)), (0, 0, 255))
    assert any("3000x4000" in en and "1536x2048" in en for en in notes(prep))


def test_png_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 8
    prep = prepare_image(encode(halves(), "PNG", exif=exif.tobytes()), name="turned.png")
    assert (prep.width, prep.height) == (400, 600)
    out = decoded(prep).convert("RGB")
    assert near(out.getpixel((200, 50)), (0, 0, 255)) and near(out.getpixel((200, 550)), (255, 0, 0))


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    path = write(tmp_path / "print.jpg", encode(Image.new("CMYK", (500, 500), (0, 255, 255, 0)), "JPEG"))
    prep = prepare_image(path)
    out = decoded(prep)
    assert prep.mime == "image/jpeg" and out.mode == "RGB"
    assert near(out.getpixel((250, 250)), (255, 0, 0), tol=60)
    assert any("CMYK" in en for en in notes(prep))


def test_animated_gif_uses_first_frame(tmp_path):
    frames = [Image.new("RGB", (400, 400), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    prep = prepare_image(write(tmp_path / "anim.gif", data))
    out = decoded(prep)
    assert out.size == (400, 400) and near(out.convert("RGB").getpixel((10, 10)), (255, 0, 0))
    assert any("first" in en and '"anim.gif"' in en for en in notes(prep))
    assert any("第一帧" in zh and "anim.gif" in zh for zh in notes(prep, "zh"))


def test_animated_webp_uses_first_frame(tmp_path):
    frames = [Image.new("RGB", (400, 400), c) for c in ((0, 0, 255), (255, 255, 0))]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100)
    prep = prepare_image(data, name="clip.webp")
    assert near(decoded(prep).convert("RGB").getpixel((5, 5)), (0, 0, 255))
    assert any("first" in en for en in notes(prep))


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    w, h = 512, 400
    row = b"".join(struct.pack("<H", x * 65535 // (w - 1)) for x in range(w))
    img16 = Image.frombytes("I;16", (w, h), row * h)
    path = write(tmp_path / "scan16.png", encode(img16, "PNG"))
    with Image.open(path) as check:
        assert check.mode.startswith("I;16")
    prep = prepare_image(path)
    out = decoded(prep)
    assert out.mode == "L" and prep.mime == "image/jpeg"
    low, high = out.getextrema()
    assert low < 10 and high > 245  # the gradient survives...
    assert 100 < ImageStat.Stat(out).mean[0] < 155  # ...and is not clipped to white
    assert any("8" in en for en in notes(prep))


def test_float_image_is_scaled():
    img = Image.linear_gradient("L").resize((400, 400)).convert("F").point(lambda v: v / 255)
    out = decoded(prepare_image(img))
    assert out.mode == "L" and out.getextrema()[1] > 240 and 100 < ImageStat.Stat(out).mean[0] < 155


def test_la_png_becomes_rgba_png(tmp_path):
    img = Image.new("LA", (400, 400), (128, 255))
    img.paste((200, 0), (0, 0, 200, 400))
    prep = prepare_image(write(tmp_path / "grey-alpha.png", encode(img, "PNG")))
    out = decoded(prep)
    assert prep.mime == "image/png" and out.mode == "RGBA"
    assert out.getpixel((10, 10))[3] == 0 and out.getpixel((300, 10))[3] == 255


def test_palette_png_with_transparency(tmp_path):
    img = Image.new("P", (400, 400), 1)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.paste(0, (0, 0, 100, 100))
    img.info["transparency"] = 0
    data = encode(img, "PNG", transparency=0)
    # Fits as is: a palette PNG is sent unchanged (lossless and smallest), transparency intact.
    prep = prepare_image(write(tmp_path / "logo.png", data))
    assert prep.data == data and prep.mime == "image/png" and prep.notes == []
    assert decoded(prep).convert("RGBA").getpixel((5, 5))[3] == 0
    # Needs resizing: re-encoded as an RGBA PNG, alpha kept.
    small = encode(img.resize((200, 200)), "PNG", transparency=0)
    prep = prepare_image(small, name="logo-small.png")
    out = decoded(prep)
    assert prep.mime == "image/png" and out.mode == "RGBA" and prep.width == 384
    assert out.getpixel((5, 5))[3] == 0 and out.getpixel((300, 300)) == (255, 0, 0, 255)


def test_rgb_png_with_colour_key_keeps_transparency():
    img = halves((200, 200))
    prep = prepare_image(encode(img, "PNG", transparency=(255, 0, 0)), name="keyed.png")
    out = decoded(prep)
    assert prep.mime == "image/png" and out.mode == "RGBA" and prep.width == 384
    assert out.getpixel((5, 5))[3] == 0 and out.getpixel((380, 380))[3] == 255


def test_opaque_rgba_becomes_jpeg(tmp_path):
    img = halves((500, 400)).convert("RGBA")
    prep = prepare_image(write(tmp_path / "screen.png", encode(img, "PNG")))
    assert prep.mime == "image/jpeg" and decoded(prep).mode == "RGB"
    assert prep.filename == "screen.jpg"


def test_real_transparency_png_passes_through(tmp_path):
    img = halves((500, 400)).convert("RGBA")
    img.putalpha(128)
    data = encode(img, "PNG")
    prep = prepare_image(write(tmp_path / "glass.png", data))
    assert prep.data == data and prep.mime == "image/png"


def test_mode_1_becomes_l():
    img = Image.new("1", (400, 400), 1)
    prep = prepare_image(encode(img, "BMP"), name="fax.bmp")
    assert decoded(prep).mode == "L" and prep.mime == "image/jpeg"
    assert any("BMP" in en for en in notes(prep))


# --- sizes -----------------------------------------------------------------------------------------
def test_one_pixel_is_upscaled():
    prep = prepare_image(encode(Image.new("RGB", (1, 1), (9, 9, 9)), "PNG"), name="dot.png")
    assert (prep.width, prep.height) == (384, 384)
    assert any("1x1" in en and "384x384" in en for en in notes(prep))
    assert any("1×1" in zh and "384×384" in zh for zh in notes(prep, "zh"))


def test_small_wide_image_upscaled_to_short_side_384():
    prep = prepare_image(encode(Image.new("RGB", (600, 100)), "PNG"))
    assert (prep.width, prep.height) == (2304, 384)


def test_5000_square_is_downscaled(tmp_path):
    img = Image.linear_gradient("L").resize((5000, 5000)).convert("RGB")
    prep = prepare_image(write(tmp_path / "big.png", encode(img, "PNG", compress_level=1)))
    assert (prep.width, prep.height) == (2048, 2048) and decoded(prep).size == (2048, 2048)
    assert any("5000x5000" in en and "2048x2048" in en and "3072" in en for en in notes(prep))


def test_extreme_aspect_ratio_is_refused(tmp_path):
    path = write(tmp_path / "strip.png", encode(Image.new("RGB", (3000, 10)), "PNG"))
    with pytest.raises(InputImageError) as err:
        prepare_image(path)
    check_error(err.value, "strip.png", "3000", "8:1")
    assert err.value.code == "InputImage.AspectRatio"


def test_aspect_just_under_the_limit_is_fitted():
    prep = prepare_image(encode(Image.new("L", (4000, 500)), "PNG"))
    assert (prep.width, prep.height) == (3072, 384)


def test_large_camera_jpeg_is_fast_and_small(tmp_path, capsys):
    img = noise((6000, 4000), seed=7, block=4)
    raw = encode(img, "JPEG", quality=90)
    path = write(tmp_path / "camera.jpg", raw)
    start = time.perf_counter()
    prep = prepare_image(path)
    elapsed = time.perf_counter() - start
    b64 = len(base64.b64encode(raw))
    ratio = len(prep.data) / b64
    with capsys.disabled():
        print(f"\n[bench] 6000x4000 JPEG {len(raw) / 1e6:.1f} MB -> {prep.width}x{prep.height} "
              f"{len(prep.data) / 1e6:.2f} MB in {elapsed * 1000:.0f} ms; "
              f"output / base64(raw) = {ratio:.1%}")
    assert (prep.width, prep.height) == (2048, 1365)
    assert ratio <= 0.40
    assert any("6000x4000" in en and "2048x1365" in en for en in notes(prep))


def test_oversized_file_is_recompressed_to_fit():
    img = noise((1200, 900), seed=3)
    raw = encode(img, "JPEG", quality=95)
    limit = 400_000
    assert len(raw) > limit
    prep = prepare_image(raw, name="noisy.jpg", max_bytes=limit)
    assert len(prep.data) <= limit and prep.mime == "image/jpeg"
    assert prep.notes and all("noisy.jpg" in en for en in notes(prep))
    assert any("400" in en or "0.38 MB" in en for en in notes(prep))


def test_big_png_under_the_side_limit_is_reencoded_with_note():
    raw = encode(noise((1000, 800), seed=11), "PNG", compress_level=0)
    prep = prepare_image(raw, name="raw.png", max_bytes=len(raw) - 1)
    assert prep.mime == "image/jpeg" and (prep.width, prep.height) == (1000, 800)
    assert any("re-encoded as JPEG" in en for en in notes(prep))


def test_impossible_fit_is_refused():
    img = noise((400, 400), seed=4)
    with pytest.raises(InputImageError) as err:
        prepare_image(encode(img, "PNG"), name="static.png", max_bytes=2000)
    check_error(err.value, "static.png")


# --- decompression bombs ---------------------------------------------------------------------------
def test_bomb_refused_before_decoding(tmp_path):
    limit_before = Image.MAX_IMAGE_PIXELS
    path = write(tmp_path / "bomb.png", png_with_header_size(9000, 9000))
    with pytest.raises(InputImageError) as err:
        prepare_image(path)  # 81 Mpx: above our 64 Mpx, below Pillow's own guard
    # The IDAT holds one pixel: had we decoded, this would be a "corrupt" error instead.
    check_error(err.value, "bomb.png", "9000", "64,000,000")
    assert err.value.code == "InputImage.TooManyPixels"
    assert limit_before == Image.MAX_IMAGE_PIXELS


def test_giant_bomb_caught_from_pillow_guard(tmp_path):
    path = write(tmp_path / "giant.png", png_with_header_size(20000, 20000))
    with pytest.raises(InputImageError) as err:
        prepare_image(path, max_pixels=10**10)
    check_error(err.value, "giant.png", "400,000,000")
    assert "10,000,000,000" not in err.value.en  # the limit quoted is the one that applied
    assert err.value.code == "InputImage.TooManyPixels"


def test_bomb_between_pillow_warning_and_error_limits(tmp_path):
    # 100 Mpx: Pillow only warns (or raises, under -W error); either way one clear message.
    path = write(tmp_path / "warned.png", png_with_header_size(10000, 10000))
    with pytest.raises(InputImageError) as err, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        prepare_image(path)
    check_error(err.value, "warned.png", "100,000,000")


def test_max_pixels_is_configurable():
    with pytest.raises(InputImageError) as err:
        prepare_image(encode(Image.new("RGB", (500, 500)), "PNG"), name="a.png", max_pixels=1000)
    check_error(err.value, "a.png", "250,000", "1,000")
    assert "500x500" in err.value.en and "500×500" in err.value.zh


# --- broken and foreign files ----------------------------------------------------------------------
def test_truncated_jpeg(tmp_path):
    data = encode(noise((800, 600), seed=2), "JPEG", quality=90)
    path = write(tmp_path / "cut.jpg", data[: len(data) // 2])
    with pytest.raises(InputImageError) as err:
        prepare_image(path)  # a pass-through candidate: still fully decoded
    check_error(err.value, "cut.jpg", "WEBP")
    assert "truncated" in err.value.en and err.value.code == "InputImage.Corrupt"


def test_truncated_jpeg_that_needs_resizing(tmp_path):
    data = encode(noise((4000, 3000), seed=5, block=8), "JPEG")
    with pytest.raises(InputImageError) as err:
        prepare_image(write(tmp_path / "cut-big.jpg", data[: len(data) * 2 // 3]))
    check_error(err.value, "cut-big.jpg")


def test_text_file_named_png(tmp_path):
    path = write(tmp_path / "notes.png", b"just some text, not a picture\n" * 20)
    with pytest.raises(InputImageError) as err:
        prepare_image(path)
    check_error(err.value, "notes.png", "WEBP", ".png")


def test_empty_file(tmp_path):
    with pytest.raises(InputImageError) as err:
        prepare_image(write(tmp_path / "zero.jpg", b""))
    check_error(err.value, "zero.jpg", "0")
    assert err.value.code == "InputImage.Empty"


@pytest.mark.parametrize("fname, payload, hint", [
    ("logo.svg", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10"/>', "SVG"),
    ("photo.heic", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64, "HEIC"),
    ("doc.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "PDF"),
    ("blob.bin", b"\x13\x37\xca\xfe" * 300, None),
])
def test_unsupported_formats(tmp_path, fname, payload, hint):
    with pytest.raises(InputImageError) as err:
        prepare_image(write(tmp_path / fname, payload))
    check_error(err.value, fname, "JPG")
    assert "unsupported or unrecognised format" in err.value.en
    if hint:
        assert hint in err.value.en and hint in err.value.zh


def test_eps_is_never_handed_to_ghostscript():
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    with pytest.raises(InputImageError) as err:
        prepare_image(eps, name="art.eps")
    check_error(err.value, "art.eps")


@pytest.mark.parametrize("fmt, fname", [("ICO", "favicon.ico"), ("PPM", "frame.ppm"), ("TGA", "old.tga")])
def test_formats_outside_the_api_list_are_converted(tmp_path, fmt, fname):
    img = halves((400, 400))
    kw = {"sizes": [(256, 256)]} if fmt == "ICO" else {}
    prep = prepare_image(write(tmp_path / fname, encode(img, fmt, **kw)))
    assert prep.mime in ("image/jpeg", "image/png")
    assert prep.width >= 384 and prep.height >= 384
    assert any(fmt in en and "does not accept" in en and fname in en for en in notes(prep))
    assert any(fmt in zh for zh in notes(prep, "zh"))


def test_mpo_becomes_plain_jpeg():
    first, second = halves((500, 400)), Image.new("RGB", (500, 400))
    data = encode(first, "MPO", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    prep = prepare_image(data, name="stereo.jpg")
    assert prep.mime == "image/jpeg" and prep.data != data and (prep.width, prep.height) == (500, 400)
    assert not any("frames" in en for en in notes(prep))


# --- pass-through ----------------------------------------------------------------------------------
def test_jpeg_passes_through_unchanged(tmp_path):
    data = encode(noise((1200, 800), seed=9, block=4), "JPEG", quality=85)
    prep = prepare_image(write(tmp_path / "holiday.jpg", data))
    assert prep.data == data and prep.notes == []
    assert (prep.mime, prep.width, prep.height) == ("image/jpeg", 1200, 800)
    assert prep.sha256 == hashlib.sha256(data).hexdigest()
    assert prep.name == "holiday.jpg" and prep.filename == "holiday.jpg" and prep.ref is None


def test_webp_and_grey_png_pass_through():
    webp = encode(halves((500, 400)), "WEBP", quality=80)
    assert prepare_image(webp).data == webp
    grey = encode(Image.linear_gradient("L").resize((400, 400)), "PNG")
    assert prepare_image(grey).data == grey


def test_bmp_is_reencoded_with_note():
    prep = prepare_image(encode(halves((500, 400)), "BMP"), name="paint.bmp")
    assert prep.mime == "image/jpeg" and prep.filename == "paint.jpg"
    assert any("BMP" in en and "JPEG" in en for en in notes(prep))


# --- input shapes ----------------------------------------------------------------------------------
def test_bytes_pil_and_file_like_inputs(tmp_path):
    img = halves((500, 400))
    data = encode(img, "PNG")
    assert prepare_image(data).data == data
    assert prepare_image(bytearray(data)).data == data
    assert prepare_image(data).name == "image"

    from_pil = prepare_image(img)
    assert from_pil.kind == "local" and from_pil.mime == "image/jpeg"
    assert (from_pil.width, from_pil.height) == (500, 400)
    assert img.mode == "RGB" and img.size == (500, 400)  # the caller's image is untouched

    path = write(tmp_path / "stream.png", data)
    with open(path, "rb") as fh:
        prep = prepare_image(fh)
    assert prep.data == data and prep.name == "stream.png"
    prep = prepare_image(io.BytesIO(data), name="clipboard.png")
    assert prep.name == "clipboard.png" and prep.filename == "clipboard.png"

    with pytest.raises(TypeError):
        prepare_image(12345)


def test_data_uri_inputs():
    data = encode(halves((500, 400)), "PNG")
    uri = "data:image/png;base64," + base64.b64encode(data).decode()
    prep = prepare_image("  " + uri + "\n")
    assert prep.kind == "local" and prep.data == data
    assert prep.data_uri() == uri

    for bad, code_word in [
        ("data:image/png;base64,@@@not-base64@@@", "base64"),
        ("data:image/png," + "abc", "base64"),
        ("data:text/plain;base64,aGVsbG8=", "text/plain"),
    ]:
        with pytest.raises(InputImageError) as err:
            prepare_image(bad)
        check_error(err.value, "data URI", code_word)
    with pytest.raises(InputImageError) as err:
        prepare_image("data:image/png;base64," + base64.b64encode(b"hello there").decode(), name="paste")
    check_error(err.value, "paste")


def test_file_url(tmp_path):
    data = encode(halves((500, 400)), "PNG")
    path = write(tmp_path / "my photo.png", data)
    prep = prepare_image(path.as_uri())
    assert prep.data == data and prep.name == "my photo.png" and prep.filename == "my_photo.png"
    with pytest.raises(InputImageError) as err:
        prepare_image((tmp_path / "gone.png").as_uri())
    check_error(err.value, "gone.png")


def test_missing_path_and_directory(tmp_path):
    with pytest.raises(InputImageError) as err:
        prepare_image(str(tmp_path / "nope.jpg"))
    check_error(err.value, "nope.jpg", str(tmp_path))
    assert err.value.code == "InputImage.NotFound"
    (tmp_path / "album").mkdir()
    with pytest.raises(InputImageError) as err:
        prepare_image(tmp_path / "album")
    check_error(err.value, "album")
    assert err.value.code == "InputImage.IsDirectory"


def test_empty_sources_are_validation_errors():
    for empty in ("", "   ", None):
        with pytest.raises(ValidationError) as err:
            prepare_image(empty)
        assert CJK.search(err.value.zh) and "image" in err.value.en.lower()


def test_local_paths_refused_in_hosted_mode(tmp_path):
    path = write(tmp_path / "secret.png", encode(halves((500, 400)), "PNG"))
    for source in (str(path), path, path.as_uri()):
        with pytest.raises(InputImageError) as err:
            prepare_image(source, allow_local_paths=False)
        check_error(err.value, "secret.png")
        assert "upload" in err.value.en.lower() and "上传" in err.value.zh
    # bytes and data URIs are what hosted mode is for
    assert prepare_image(path.read_bytes(), allow_local_paths=False).kind == "local"


def test_allowed_dirs(tmp_path):
    uploads, private = tmp_path / "uploads", tmp_path / "private"
    uploads.mkdir()
    private.mkdir()
    data = encode(halves((500, 400)), "PNG")
    write(uploads / "ok.png", data)
    write(private / "key.png", data)
    (uploads / "link.png").symlink_to(private / "key.png")

    assert prepare_image(uploads / "ok.png", allowed_dirs=[uploads]).data == data
    with pytest.raises(InputImageError) as err:
        prepare_image(uploads / "link.png", allowed_dirs=[uploads])  # symlink pointing out
    check_error(err.value, "link.png")
    assert err.value.code == "InputImage.PathNotAllowed"
    assert str(private) not in err.value.en  # the link's target is not revealed
    with pytest.raises(InputImageError) as err:
        prepare_image(f"{uploads}/../private/key.png", allowed_dirs=[uploads])  # ".." escape
    check_error(err.value, "key.png")
    assert err.value.code == "InputImage.PathNotAllowed"
    # a missing file outside the allowed folders is refused the same way (no existence oracle)
    with pytest.raises(InputImageError) as err:
        prepare_image(private / "absent.png", allowed_dirs=[uploads])
    assert err.value.code == "InputImage.PathNotAllowed"


# --- URLs ------------------------------------------------------------------------------------------
def test_public_and_oss_urls_pass_through():
    for url in ("https://example.com/a/cat.png?x=1", "http://8.8.8.8/img.jpg"):
        prep = prepare_image(url, allow_private_urls=False)
        assert (prep.kind, prep.ref, prep.name, prep.data) == ("url", url, url, None)
    assert prepare_image("https://example.com/a/cat.png?x=1").filename == "cat.png"
    prep = prepare_image("oss://dashscope-instant/abc/photo.jpg", allow_private_urls=False)
    assert (prep.kind, prep.ref) == ("oss", "oss://dashscope-instant/abc/photo.jpg")
    with pytest.raises(ValueError):
        prep.data_uri()


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/a.png", "http://10.1.2.3/a.png", "http://192.168.1.20:8080/a.png",
    "http://[::1]/a.png", "http://localhost/a.png", "http://169.254.169.254/latest/meta-data",
    "http://printer.local/a.png", "http://metadata.google.internal/a", "http://127.1/a.png",
    "http://[::ffff:127.0.0.1]/a.png", "http://0.0.0.0/a.png", "http://nas/a.png",
    "http://app.localhost/a.png", "http://2130706433/a.png", "http://100.64.0.1/a.png",
])
def test_private_urls_refused_in_hosted_mode(url):
    with pytest.raises(InputImageError) as err:
        prepare_image(url, allow_private_urls=False)
    check_error(err.value, url, "http")
    assert "internet" in err.value.en and "互联网" in err.value.zh
    assert prepare_image(url).kind == "url"  # a local user may point at a local server


def test_bad_schemes_and_urls():
    with pytest.raises(InputImageError) as err:
        prepare_image("ftp://example.com/a.png", allow_private_urls=False)
    check_error(err.value, "ftp://example.com/a.png", "ftp://")
    assert "internet" in err.value.en
    with pytest.raises(InputImageError) as err:
        prepare_image("ftp://example.com/a.png")
    check_error(err.value, "ftp://")
    for bad in ("http://", "https:///path.png", "http://host:99999/a.png", "oss://"):
        with pytest.raises(InputImageError) as err:
            prepare_image(bad)
        check_error(err.value, bad)


# --- several images --------------------------------------------------------------------------------
def test_prepare_images_labels_each_image(tmp_path):
    good = encode(halves((500, 400)), "PNG")
    out = prepare_images([good, "https://example.com/b.png", Image.new("RGB", (10, 10))])
    assert [p.kind for p in out] == ["local", "url", "local"]
    assert out[0].name == "image 1" and out[2].name == "image 3"
    assert any(en.startswith("Image 3") for en in notes(out[2]))
    assert any(zh.startswith("图3") for zh in notes(out[2], "zh"))

    with pytest.raises(InputImageError) as err:
        prepare_images([good, write(tmp_path / "broken.png", b"nope")])
    check_error(err.value, "broken.png")
    assert "图2" in err.value.zh and err.value.en.startswith('Image 2 ("broken.png")')
    with pytest.raises(InputImageError) as err:
        prepare_images([good, ""])
    assert "图2" in err.value.zh and "Image 2" in err.value.en

    single = prepare_images([write(tmp_path / "solo.png", good)])
    assert single[0].name == "solo.png"
    named = prepare_images([good, good], names=["left.png", None], allow_local_paths=False)
    assert [p.name for p in named] == ["left.png", "image 2"]


def test_filename_is_safe():
    prep = prepare_image(encode(halves((500, 400)), "PNG"), name="../../etc/pass wd?.png")
    assert prep.filename == "pass_wd.png"
    assert prepare_image(encode(halves((500, 400)), "PNG"), name="照片 1.PNG").filename == "照片_1.png"
