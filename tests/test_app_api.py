"""The launched app through gradio_client: the public API, errors, hosted-mode isolation and limits."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import uuid
from pathlib import Path

import pytest
import requests
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from aliyun_image.ui.endpoints import KEY_HEADER as APP_KEY_HEADER
from aliyun_image.ui.endpoints import PARAMS, REQUIRED, call_args

from .appserver import running
from .conftest import TEST_KEY, gradio_client
from .test_ui_handlers import GEN_DEFAULTS

pytestmark = pytest.mark.slow  # launches the app in a subprocess

KEY_HEADER = "X-DashScope-API-Key"  # the only way a key reaches the app (never a parameter)
assert APP_KEY_HEADER == KEY_HEADER
EDIT_DEFAULTS = dict(quality="plus", model="", n=1, size_mode="auto", size_preset="1024*1024", width=1024, height=1024,
                     seed=-1, negative="", prompt_extend=True, watermark=False)


@contextlib.contextmanager
def keyed(client: Client, api_key: str | None):
    """Send ``api_key`` in the key header for the calls inside (a visitor typing it in the page)."""
    old = client.headers.pop(KEY_HEADER, None)
    if api_key:
        client.headers[KEY_HEADER] = api_key
    try:
        yield client
    finally:
        client.headers.pop(KEY_HEADER, None)
        if old is not None:
            client.headers[KEY_HEADER] = old


def generate(client: Client, prompt: str, api_key: str | None = None, **kw):
    args = call_args("generate", **{**GEN_DEFAULTS, "prompt": prompt, **kw})
    with keyed(client, api_key):
        return client.predict(*args, api_name="/generate")


def edit(client: Client, image, instruction: str, url: str = "", api_key: str | None = None, n: int = 1):
    args = call_args("edit", **{**EDIT_DEFAULTS, "image": image, "image_url": url, "instruction": instruction, "n": n})
    with keyed(client, api_key):
        return client.predict(*args, api_name="/edit")


def fuse(client: Client, images, instruction: str, api_key: str | None = None):
    a, b, c = (list(images) + [None, None, None])[:3]
    args = call_args("fuse", **{**EDIT_DEFAULTS, "image1": a, "image2": b, "image3": c, "instruction": instruction})
    with keyed(client, api_key):
        return client.predict(*args, api_name="/fuse")


def refused(call, *args, **kw) -> str:
    """The message of a call that produced nothing: it must raise, not return an empty gallery."""
    with pytest.raises(AppError) as ei:
        call(*args, **kw)
    return str(ei.value)


def _png(path: Path, size=(640, 480), color=(30, 120, 200)) -> str:
    Image.new("RGB", size, color).save(path)
    return str(path)


@pytest.fixture(scope="module")
def offline_app(tmp_path_factory):
    yield from running(tmp_path_factory, "offline-app", ["--offline"])


@pytest.fixture(scope="module")
def hosted_app(tmp_path_factory, emulator_server):
    """Shared-demo mode on the test emulator; no host key (visitors bring theirs)."""
    yield from running(tmp_path_factory, "hosted-app", ["--hosted", "--base-url", emulator_server.base_url],
                       hosted=True)


@pytest.fixture(scope="module")
def host_key_app(tmp_path_factory, emulator_server):
    """Shared-demo mode where the host's key serves visitors within 2 images per session per hour."""
    yield from running(tmp_path_factory, "hostkey-app", ["--hosted", "--base-url", emulator_server.base_url,
                                                         "--session-limit", "2", "--total-limit", "3"],
                       hosted=True, env_extra={"DASHSCOPE_API_KEY": TEST_KEY})


def client(app) -> Client:
    return gradio_client(app.url, verbose=False)


def test_api_lists_only_the_public_endpoints(offline_app):
    info = client(offline_app).view_api(print_info=False, return_format="dict")
    assert sorted(info["named_endpoints"]) == sorted(f"/{name}" for name in PARAMS)
    assert not info["unnamed_endpoints"]
    # Names and order as gradio_client sees them: the table the tests build calls from.
    for name, params in PARAMS.items():
        got = [p["parameter_name"] for p in info["named_endpoints"][f"/{name}"]["parameters"]]
        assert tuple(got) == params, name
        # what a caller may leave out (gradio_client fills it in; MCP tools list the rest as required)
        required = [p["parameter_name"] for p in info["named_endpoints"][f"/{name}"]["parameters"]
                    if not p["parameter_has_default"]]
        assert tuple(required) == REQUIRED[name], name


def test_batch_and_grid_through_gradio_client(offline_app):
    """By keyword, the optional parameters left out: a prompt list, then a grid with one axis."""
    c = client(offline_app)
    gallery, status = c.predict(prompts="a fox\n# skipped\na {animal}", variables="animal=owl,bee",
                                api_name="/batch")
    assert len(gallery) == 3 and "3 of 3 images stored" in status
    assert all(Path(g["image"]).is_file() for g in gallery)
    gallery, status = c.predict(prompt="a kite", x="seed=3,4", api_name="/grid")
    assert len(gallery) == 3 and "grid" in gallery[-1]["caption"].lower()
    assert "more than 1000 requests" in refused(c.predict, prompts="\n".join(["x"] * 1001), api_name="/batch")


def test_edit_with_a_url_only_and_fuse_with_two_leave_the_rest_out(offline_app, tmp_path):
    """gradio_client by keyword: edit without an upload, fusion without image3 (both optional)."""
    c = client(offline_app)
    refused_without = refused(c.predict, instruction="把背景换成星空", api_name="/edit")
    assert "input image" in refused_without  # neither given: the handler's message, not a missing argument
    a, b = (handle_file(_png(tmp_path / f"{k}.png")) for k in "ab")
    gallery, status = c.predict(image1=a, image2=b, instruction="图1和图2", api_name="/fuse")
    assert len(gallery) == 1, status


def test_generate_offline(offline_app):
    gallery, status = generate(client(offline_app), "一只橘猫在阳光下打盹", n=2, seed=42)
    assert len(gallery) == 2 and all(Path(g["image"]).is_file() for g in gallery)
    assert "Seed 42, 43" in status and "offline" in status
    with Image.open(gallery[0]["image"]) as im:
        assert im.size == (1328, 1328) and "Seed: 42" in im.text["parameters"]  # recipe survives the trip
    db = sqlite3.connect(offline_app.data_dir / "gallery.sqlite3")
    assert db.execute("SELECT COUNT(*) FROM results WHERE status='done'").fetchone()[0] >= 2


def test_validation_error_raises_in_the_callers_language(offline_app):
    message = refused(generate, client(offline_app), "   ")  # no Accept-Language: English
    assert "The prompt is empty" in message and "提示词为空" not in message
    zh = client(offline_app)
    zh.headers["Accept-Language"] = "zh-CN,zh;q=0.9"
    message = refused(generate, zh, "   ")
    assert "提示词为空" in message and "The prompt is empty" not in message
    ja = client(offline_app)
    ja.headers["Accept-Language"] = "ja-JP,ja;q=0.9"
    message = refused(edit, ja, None, "背景を星空に")
    assert message.startswith("入力画像を追加してください") and "input image" not in message
    assert "801" in refused(generate, client(offline_app), "x" * 801)


def test_edit_with_upload(offline_app, tmp_path):
    gallery, pair, status = edit(client(offline_app), handle_file(_png(tmp_path / "in.png", (1200, 600))),
                                 "把背景换成星空", n=2)
    assert len(gallery) == 2 and "2 of 2" in status
    assert pair and len(pair) == 2  # before/after
    with Image.open(gallery[0]["image"]) as im:
        assert abs(im.width / im.height - 2) < 0.1


def test_edit_without_input_says_so(offline_app):
    assert "input image" in refused(edit, client(offline_app), None, "把背景换成星空")


def test_fuse_three_in_order_on_the_wire(hosted_app, emulator_server, tmp_path):
    emulator_server.clear()
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    files = [handle_file(_png(tmp_path / f"{i}.png", color=c)) for i, c in enumerate(colors)]
    gallery, status = fuse(client(hosted_app), files, "图1的颜色，图2的形状，图3的背景", api_key=TEST_KEY)
    assert len(gallery) == 1, status
    (call,) = emulator_server.calls("generation")
    import base64
    import io
    got = []
    for item in call.json["input"]["messages"][0]["content"][:-1]:
        raw = base64.b64decode(item["image"].split(",", 1)[1])
        got.append(Image.open(io.BytesIO(raw)).convert("RGB").getpixel((5, 5)))
    assert got == colors


def _upload(app, path: str) -> dict:
    """A file uploaded as the page does it (hosted mode takes no local paths)."""
    with open(path, "rb") as fh:
        r = requests.post(f"{app.url}gradio_api/upload", files={"files": ("in.png", fh, "image/png")}, timeout=30)
    r.raise_for_status()
    return {"path": r.json()[0], "meta": {"_type": "gradio.FileData"}}


# An image reference as a model reads it, written independently of the app's own pattern.
_NAMED = re.compile(r"(?:图|image\s*|picture\s*)(\d+)", re.I)


def test_a_raw_queue_fusion_never_names_an_image_it_does_not_carry(hosted_app, emulator_server, tmp_path):
    """Every mix of filled slots and references, sent straight to the queue (no gradio_client): a
    request that reaches the service names only images it carries (图3 of slots 1 and 3 goes out as
    图2); one that names an empty slot never reaches it, and its refusal names the slot to fill."""
    from .test_hosted_safety import _fn_index, _join, _listen

    fn, session = _fn_index(hosted_app, "fuse"), f"raw-{uuid.uuid4().hex[:8]}"
    files = [_upload(hosted_app, _png(tmp_path / f"{k}.png", color=(60 * k, 90, 200))) for k in (1, 2, 3)]
    cases = [(filled, text) for filled in ((1, 3), (2, 3), (1, 2), (1, 2, 3), (3,))
             for text in ("图1的人物站在图3的场景里", "put image 2 into picture 3", "图3的风格", "图1和图2")]
    for filled, text in cases:
        emulator_server.clear()
        slots = [files[k - 1] if k in filled else None for k in (1, 2, 3)]
        data = call_args("fuse", **{**EDIT_DEFAULTS, "image1": slots[0], "image2": slots[1], "image3": slots[2],
                                    "instruction": text})
        event = _join(hosted_app, session, fn, data, headers={KEY_HEADER: TEST_KEY})
        done = _listen(hosted_app, session, {event})[event]
        calls = emulator_server.calls("generation")
        named = {int(n) for n in _NAMED.findall(text)}
        if not done["success"]:
            assert not calls, (filled, text)  # refused before anything was sent
            if not named <= set(filled):
                missing = sorted(named - set(filled))
                assert f"Put an image in 图{missing[0]}" in str(done["output"]), (filled, text, done)
            continue
        (call,) = calls
        content = call.json["input"]["messages"][0]["content"]
        carried, sent_text = sum(1 for c in content if "image" in c), content[-1]["text"]
        assert carried == len(filled) >= 2, (filled, text)
        assert all(1 <= int(n) <= carried for n in _NAMED.findall(sent_text)), (filled, text, sent_text)
        assert named <= set(filled), (filled, text)  # only references to filled slots may go out
    # the one that moves: slots 1 and 3, 图3 went out as 图2 and the status said so
    emulator_server.clear()
    data = call_args("fuse", **{**EDIT_DEFAULTS, "image1": files[0], "image2": None, "image3": files[2],
                                "instruction": "图1的人物站在图3的场景里"})
    event = _join(hosted_app, session, fn, data, headers={KEY_HEADER: TEST_KEY})
    done = _listen(hosted_app, session, {event})[event]
    assert done["success"] and "图3 was sent as 图2" in done["output"]["data"][1], done
    (call,) = emulator_server.calls("generation")
    assert call.json["input"]["messages"][0]["content"][-1]["text"] == "图1的人物站在图2的场景里"


def test_a_client_that_predates_the_new_parameters_still_calls(hosted_app, emulator_server, tmp_path):
    """gradio_client fills in the parameters added at the end (their defaults): a call with the
    original arguments of /generate and /fuse works, and a model that takes none of the new
    options gets none of them on the wire."""
    c = client(hosted_app)
    old_generate = [GEN_DEFAULTS[k] if k != "prompt" else "a cat" for k in PARAMS["generate"][:9]]
    emulator_server.clear()
    with keyed(c, TEST_KEY):
        gallery, status = c.predict(*old_generate, api_name="/generate")
    assert len(gallery) == 1, status
    sent = emulator_server.calls("generation")[0].json["parameters"]
    assert not {"prompt_extend_mode", "enable_thinking"} & set(sent)
    a, b = (handle_file(_png(tmp_path / f"{k}.png")) for k in "ab")
    old_fuse = call_args("fuse", **{**EDIT_DEFAULTS, "image1": a, "image2": b, "image3": None,
                                    "instruction": "图1和图2"})[:15]
    with keyed(c, TEST_KEY):
        gallery, status = c.predict(*old_fuse, api_name="/fuse")
    assert len(gallery) == 1, status


def test_the_3_0_options_and_ten_slots_through_the_api(hosted_app, emulator_server, tmp_path):
    c = client(hosted_app)
    emulator_server.clear()
    generate(c, "a lighthouse", api_key=TEST_KEY, model="qwen-image-3.0", extend_mode="agent", thinking=False)
    params = emulator_server.calls("generation")[0].json["parameters"]
    assert params["prompt_extend_mode"] == "agent" and params["enable_thinking"] is False
    emulator_server.clear()
    files = [handle_file(_png(tmp_path / f"s{k}.png", color=(20 * k, 100, 100))) for k in range(1, 6)]
    args = call_args("fuse", **{**EDIT_DEFAULTS, "image1": files[0], "image2": files[1], "image3": None,
                                "image4": files[3], "image5": files[4], "model": "qwen-image-2.1-pro",
                                "instruction": "图5的光线照在图1上，背景取自图4"})
    with keyed(c, TEST_KEY):
        gallery, status = c.predict(*args, api_name="/fuse")
    assert len(gallery) == 1, status
    content = emulator_server.calls("generation")[0].json["input"]["messages"][0]["content"]
    assert sum(1 for x in content if "image" in x) == 4 and content[-1]["text"] == "图4的光线照在图1上，背景取自图3"
    assert "图5 was sent as 图4" in status and "图4 was sent as 图3" in status


def test_fuse_needs_two(offline_app, tmp_path):
    assert "2-3" in refused(fuse, client(offline_app), [handle_file(_png(tmp_path / "a.png"))], "merge")


def test_invalid_key_message(hosted_app):
    message = refused(generate, client(hosted_app), "a cat", api_key="sk-invalid-0000000000")
    # The key came with the call (a header): the remedy is to check that key, not DASHSCOPE_API_KEY.
    assert "API key you entered is invalid" in message and "DASHSCOPE_API_KEY" not in message
    assert "API Key 无效" not in message and "sk-invalid" not in message


def test_visitor_key_goes_to_the_wire_and_nowhere_else(hosted_app, emulator_server):
    emulator_server.clear()
    key = "sk-visitor-secret-abcdef987654"
    gallery, status = generate(client(hosted_app), "a cat", api_key=key)
    assert len(gallery) == 1, status
    assert emulator_server.calls("generation")[0].headers["authorization"] == f"Bearer {key}"
    for f in hosted_app.data_dir.parent.rglob("*"):
        if f.is_file():
            assert key.encode() not in f.read_bytes(), f  # data dir, Gradio's cache, the app's log


def test_hosted_sessions_are_isolated(hosted_app, emulator_server):
    a, b = client(hosted_app), client(hosted_app)
    generate(a, "alice's secret cat", api_key=TEST_KEY)
    generate(b, "bob's dog", api_key=TEST_KEY)
    db = sqlite3.connect(hosted_app.data_dir / "gallery.sqlite3")
    owners = dict(db.execute("SELECT prompt, owner FROM results"))
    assert owners["alice's secret cat"] and owners["bob's dog"]
    assert owners["alice's secret cat"] != owners["bob's dog"]
    # The gallery events are private: not callable through the API.
    with pytest.raises(ValueError, match="Cannot find a function"):
        b.predict("", "", "", 1, api_name="/gallery_page")
    # Result files are not served from the results folder by path.
    path = db.execute("SELECT path FROM results LIMIT 1").fetchone()[0]
    full = (hosted_app.data_dir / path).resolve()
    r = requests.get(f"{hosted_app.url}gradio_api/file={full}", timeout=5)
    assert r.status_code in (403, 404)


def test_host_key_limits(host_key_app):
    c = client(host_key_app)
    gallery, status = generate(c, "a cat", n=2)
    assert len(gallery) == 2, status
    assert "per visitor per hour" in refused(generate, c, "one more")
    # The visitor's own key is not limited by the host's budget.
    gallery, status = generate(c, "my own key", api_key=TEST_KEY, n=2)
    assert len(gallery) == 2
    # The demo-wide budget (3) is shared: another visitor gets 1 more, then none.
    other = client(host_key_app)
    assert len(generate(other, "x")[0]) == 1
    assert "budget" in refused(generate, other, "y")


def test_partial_failure_shows_good_ones_and_explains(hosted_app, emulator_server):
    emulator_server.clear()
    emulator_server.fail(status=400, code="DataInspectionFailed", message="flagged", times=1)
    gallery, status = generate(client(hosted_app), "three cats", api_key=TEST_KEY, n=3)
    assert len(gallery) == 2 and "2 of 3" in status and "moderation" in status


def test_page_has_no_run_history_and_no_key_in_config(hosted_app):
    cfg = requests.get(f"{hosted_app.url}config", timeout=5).json()
    assert cfg.get("run_history") in (False, None)
    assert TEST_KEY not in str(cfg)


def test_undecodable_upload_gets_our_message_not_a_gradio_traceback(offline_app, tmp_path):
    bad = tmp_path / "notimage.png"
    bad.write_text("this is text, not a picture")
    message = refused(edit, client(offline_app), handle_file(str(bad)), "make it blue")
    assert "notimage.png" in message and "Traceback" not in message
    assert "UnidentifiedImageError" not in message and "/tmp/" not in message


def test_out_of_range_numbers_get_the_service_messages(offline_app):
    c = client(offline_app)
    assert "Seed must be 0-2147483647" in refused(generate, c, "a cat", seed=3_000_000_000)
    custom = call_args("edit", **{**EDIT_DEFAULTS, "image": None, "image_url": "https://example.com/a.png",
                                  "instruction": "x", "size_mode": "custom", "width": 3000, "height": 700})
    assert "512-2048" in refused(c.predict, *custom, api_name="/edit")
