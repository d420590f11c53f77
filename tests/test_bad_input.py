"""A corpus of bad and odd input, generated here. Refused input gets a message in both languages
and sends nothing; odd-but-usable input reaches the wire only in a form the API accepts."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from aliyun_image.catalog import spec as catalog
from aliyun_image.errors import AliyunImageError, ValidationError
from aliyun_image.generation.service import ImageService


def _bilingual_refusal(exc: AliyunImageError, *names: str) -> None:
    assert isinstance(exc, ValidationError)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in exc.zh) and exc.en and exc.zh != exc.en
    for n in names:
        assert n in exc.zh and n in exc.en, (n, exc.zh, exc.en)
    assert "Traceback" not in exc.en


# --- the corpus ---------------------------------------------------------------------------------
def _bomb_png(w: int, h: int) -> bytes:
    """A tiny valid-looking PNG whose header claims w x h pixels (never decoded by a safe reader)."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)

    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def make_corpus(d: Path) -> dict[str, Path]:
    files = {}

    def save(name: str, img: Image.Image, **kw) -> None:
        files[name] = d / name
        img.save(files[name], **kw)

    (d / "notes.png").write_text("this is text, not a picture")
    files["text_as_png"] = d / "notes.png"
    buf = io.BytesIO()
    Image.new("RGB", (800, 600), "orange").save(buf, "JPEG")
    (d / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    files["truncated_jpeg"] = d / "truncated.jpg"
    (d / "empty.png").write_bytes(b"")
    files["zero_bytes"] = d / "empty.png"
    (d / "bomb.png").write_bytes(_bomb_png(30000, 30000))
    files["bomb"] = d / "bomb.png"
    (d / "drawing.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
    files["svg"] = d / "drawing.svg"
    save("tiny.png", Image.new("RGB", (1, 1), "red"))
    save("huge.png", Image.new("RGB", (5000, 5000), "navy"), compress_level=1)
    save("cmyk.jpg", Image.new("CMYK", (700, 500), (0, 128, 255, 0)), quality=90)
    g16 = Image.new("I;16", (600, 400))
    g16.putdata([(x * 65535 // 599) for _y in range(400) for x in range(600)])
    save("sixteen.png", g16)
    frames = [Image.new("P", (500, 500), i * 40) for i in range(4)]
    files["animated.gif"] = d / "animated.gif"
    frames[0].save(files["animated.gif"], save_all=True, append_images=frames[1:], duration=100, loop=0)
    rgba = Image.new("RGBA", (600, 600), (255, 0, 0, 0))
    rgba.paste((0, 255, 0, 255), (100, 100, 300, 300))
    save("transparent.png", rgba)
    save("ok.jpg", Image.new("RGB", (800, 600), "teal"), quality=90)
    return files


@pytest.fixture
def corpus(tmp_path):
    return make_corpus(tmp_path)


@pytest.fixture
def hosted_service(settings):
    svc = ImageService(settings.with_(hosted=True))
    yield svc
    svc.store.close()


# --- prompts ------------------------------------------------------------------------------------
@pytest.mark.parametrize("prompt,needle", [
    ("", "empty"), ("   \n\t", "empty"), ("\u200b\u200c\u200d\ufeff", "empty"), ("字" * 801, "801"),
])
def test_refused_prompts(service, emu, prompt, needle):
    with pytest.raises(ValidationError) as ei:
        service.generate(prompt)
    _bilingual_refusal(ei.value)
    assert needle in ei.value.en and not emu.requests


@pytest.mark.parametrize("prompt", ["🐱🎨 一只猫 🌅", "قطة على النافذة في الشمس", "a\u200bcat\u200d on a mat",
                                    "\u202eRTL override\u202c cat", "字" * 800])
def test_odd_but_valid_prompts_reach_the_wire_intact(service, emu, prompt):
    batch = service.generate(prompt)
    assert len(batch.results) == 1
    sent = emu.calls("generation")[0].json["input"]["messages"][0]["content"][-1]["text"]
    assert len(sent) <= catalog.PROMPT_MAX and sent.strip() and sent in prompt


# --- parameters ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kw,needle", [
    ({"size": "1024x1024"}, "1664*928"), ({"size": "0*0"}, "size"), ({"size": "huge"}, "width*height"),
    ({"n": 0}, "1-6"), ({"n": 7}, "1-6"), ({"seed": -2}, "Seed"), ({"seed": 2**31}, "Seed"),
    ({"seed": "abc"}, "whole number"),
    ({"negative": "x" * 501}, "501"),
])
def test_refused_parameters(service, emu, kw, needle):
    with pytest.raises(ValidationError) as ei:
        service.generate("a cat", **kw)
    _bilingual_refusal(ei.value)
    assert needle.lower() in ei.value.en.lower() and not emu.requests


def test_seed_minus_one_means_random_and_a_valid_seed_is_sent(service, emu):
    batch = service.generate("a cat", seed=-1)
    sent = emu.calls("generation")[0].json["parameters"]["seed"]
    assert 0 <= sent <= catalog.SEED_MAX and batch.results[0].seed == sent


def test_x_size_on_a_free_size_model_is_read_and_told(service, emu, corpus):
    batch = service.edit([str(corpus["ok.jpg"])], "make it blue", size="1024x1024")
    assert emu.calls("generation")[0].json["parameters"]["size"] == "1024*1024"
    assert any("1024*1024" in note.render("en") for note in batch.notes)


# --- images -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,needle", [
    ("text_as_png", "notes.png"), ("truncated_jpeg", "truncated.jpg"), ("zero_bytes", "empty.png"),
    ("bomb", "bomb.png"), ("svg", "drawing.svg"),
])
def test_refused_images_name_the_file(service, emu, corpus, name, needle):
    with pytest.raises(ValidationError) as ei:
        service.edit([str(corpus[name])], "make it blue")
    _bilingual_refusal(ei.value, needle)
    assert not emu.requests


def test_bomb_message_gives_the_pixel_size(service, corpus):
    with pytest.raises(ValidationError) as ei:
        service.edit([str(corpus["bomb"])], "x")
    assert "900,000,000" in ei.value.en and "64,000,000" in ei.value.en


def _sent_images(emu) -> list[Image.Image]:
    out = []
    for item in emu.calls("generation")[0].json["input"]["messages"][0]["content"][:-1]:
        head, b64 = item["image"].split(",", 1)
        raw = base64.b64decode(b64)
        assert len(raw) <= 10 * 1024 * 1024
        im = Image.open(io.BytesIO(raw))
        im.load()
        assert im.format in ("JPEG", "PNG", "WEBP") and head == f"data:image/{im.format.lower()};base64"
        out.append(im)
    return out


@pytest.mark.parametrize("name,check", [
    ("tiny.png", lambda im: min(im.size) >= 384),
    ("huge.png", lambda im: max(im.size) <= 3072),
    ("cmyk.jpg", lambda im: im.mode == "RGB"),
    ("sixteen.png", lambda im: im.mode == "L" and im.getextrema()[1] > 200 and im.getextrema()[0] < 50),
    ("animated.gif", lambda im: getattr(im, "n_frames", 1) == 1),
    ("transparent.png", lambda im: im.format == "PNG" and im.mode == "RGBA" and im.getextrema()[3][0] == 0),
])
def test_odd_images_are_fixed_and_told(service, emu, corpus, name, check):
    batch = service.edit([str(corpus[name])], "make it blue")
    assert len(batch.results) == 1
    (sent,) = _sent_images(emu)
    assert check(sent), (name, sent.size, sent.mode)
    assert min(sent.size) >= 384 and max(sent.size) <= 3072
    if name not in ("cmyk.jpg", "transparent.png"):  # those two fit as they are: nothing to tell
        assert batch.notes, f"the user is told what was changed in {name}"


def test_four_images_for_fusion(service, emu, corpus):
    with pytest.raises(ValidationError) as ei:
        service.fuse([str(corpus["ok.jpg"])] * 4, "merge")
    _bilingual_refusal(ei.value, "4")
    assert not emu.requests


@pytest.mark.parametrize("ref", [
    "file:///etc/passwd", "/etc/hostname", "http://127.0.0.1:8080/a.png", "http://localhost/a.png",
    "http://10.0.0.5/a.png", "http://192.168.1.10/a.png", "http://[::1]/a.png", "http://169.254.169.254/latest",
])
def test_hosted_mode_refuses_server_paths_and_internal_urls(hosted_service, emu, ref):
    with pytest.raises(ValidationError) as ei:
        hosted_service.edit([ref], "make it blue")
    _bilingual_refusal(ei.value)
    assert not emu.requests


def test_hosted_mode_accepts_public_urls(hosted_service, emu):
    batch = hosted_service.edit(["https://example.com/photo.jpg"], "make it blue")
    assert len(batch.results) == 1
    assert emu.calls("generation")[0].json["input"]["messages"][0]["content"][0] == {
        "image": "https://example.com/photo.jpg"}
