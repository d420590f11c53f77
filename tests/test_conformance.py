"""Same inputs, same wire: the official dashscope SDK and our client send equal JSON bodies.

The SDK (a dev dependency) is pointed at the emulator; both requests are recorded there and
compared as parsed JSON (key order and whitespace do not matter to the service).
"""

import base64
import io

import pytest
from PIL import Image

from aliyun_image.dashscope import protocol

from .conftest import TEST_KEY

dashscope = pytest.importorskip("dashscope")
from dashscope import MultiModalConversation  # noqa: E402 - only when the SDK is installed


@pytest.fixture
def sdk(emu, monkeypatch):
    monkeypatch.setattr(dashscope, "base_http_api_url", emu.base_url)
    return MultiModalConversation


def _sdk_body(emu, sdk, model, content, **params):
    emu.clear()
    resp = sdk.call(model=model, messages=[{"role": "user", "content": content}], api_key=TEST_KEY, **params)
    assert resp.status_code == 200, resp
    (rec,) = emu.calls("generation")
    return rec.json


def _our_body(emu, service, task, prompt, images=(), **opts):
    emu.clear()
    job = service.plan(task, prompt, images, **opts)
    refs = [im.ref if im.kind != "local" else im.data_uri() for im in job.images]
    service.client.generate(TEST_KEY, protocol.sync_body(job, job.seeds[0], refs))
    (rec,) = emu.calls("generation")
    return rec.json


def _png_data_uri():
    buf = io.BytesIO()
    Image.new("RGB", (512, 512), "teal").save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_t2i_all_parameters(emu, sdk, service):
    ours = _our_body(emu, service, "t2i", "一只橘猫在阳光下打盹，窗台，暖色调", size="1472*1104", seed=42,
                     negative="低画质", prompt_extend=False, watermark=True, model="qwen-image-max")
    theirs = _sdk_body(emu, sdk, "qwen-image-max", [{"text": "一只橘猫在阳光下打盹，窗台，暖色调"}],
                       negative_prompt="低画质", size="1472*1104", prompt_extend=False, watermark=True, seed=42)
    assert ours == theirs


def test_edit_one_url(emu, sdk, service):
    url = f"{emu.origin}/static/photo.jpg"
    ours = _our_body(emu, service, "edit", "把背景换成星空", [url], n=2, seed=3)
    theirs = _sdk_body(emu, sdk, "qwen-image-edit-plus", [{"image": url}, {"text": "把背景换成星空"}],
                       negative_prompt=ours["parameters"]["negative_prompt"], n=2, prompt_extend=True,
                       watermark=False, seed=3)
    assert ours == theirs


def test_fusion_three_urls(emu, sdk, service):
    urls = [f"https://example.com/{i}.png" for i in (1, 2, 3)]
    ours = _our_body(emu, service, "fuse", "图1的人穿上图2的衣服，站在图3里", urls, seed=11, size="1024*1024")
    theirs = _sdk_body(emu, sdk, "qwen-image-edit-plus",
                       [{"image": u} for u in urls] + [{"text": "图1的人穿上图2的衣服，站在图3里"}],
                       negative_prompt=ours["parameters"]["negative_prompt"], size="1024*1024", n=1,
                       prompt_extend=True, watermark=False, seed=11)
    assert ours == theirs


def test_base64_image(emu, sdk, service):
    uri = _png_data_uri()
    ours = _our_body(emu, service, "edit", "变成水彩画风格", [uri], seed=5, negative="")
    # Our 512x512 PNG passes through unchanged, so the data URI on the wire is the SDK's too.
    assert ours["input"]["messages"][0]["content"][0]["image"] == uri
    theirs = _sdk_body(emu, sdk, "qwen-image-edit-plus", [{"image": uri}, {"text": "变成水彩画风格"}],
                       n=1, prompt_extend=True, watermark=False, seed=5)
    assert ours == theirs
