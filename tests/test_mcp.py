"""`python app.py --mcp` driven by the official MCP client, as an agent uses it.

The app runs from its own virtualenv with Gradio's ``mcp`` extra (which downgrades pydantic, so it
cannot share the default test environment), the agent from another with ``mcp`` 2.x (which that
extra does not allow): scripts/mcp_env.py makes both once and reuses them (keyed by their
requirement files). One app launch, in hosted mode against the test emulator, serves every test.
"""

from __future__ import annotations

import base64
import http.server
import io
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
from PIL import Image

from aliyun_image.ui.endpoints import PARAMS, REQUIRED

from .appserver import ROOT, running
from .conftest import TEST_KEY

# launches the app in a subprocess; the first run on a machine also builds the virtualenvs
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

REAL_HOME = str(Path.home())  # before the autouse fixture points HOME at a temp dir: the cache is the user's
KEY = {"X-DashScope-API-Key": TEST_KEY}


def _env_python(name: str) -> str:
    """The interpreter of virtualenv ``name`` (made the first time: up to a few minutes)."""
    env = {**os.environ, "HOME": REAL_HOME}
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "mcp_env.py"), name], env=env, text=True,
                         capture_output=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def mcp_app(tmp_path_factory, emulator_server):
    """Hosted mode with a host key whose visitors get 2 images an hour; most calls bring their own key."""
    server = _env_python("server")
    yield from running(tmp_path_factory, "mcp-app", ["--hosted", "--mcp", "--base-url", emulator_server.base_url,
                                                     "--session-limit", "2", "--total-limit", "50"],
                       hosted=True, env_extra={"DASHSCOPE_API_KEY": TEST_KEY}, python=server)


@pytest.fixture(scope="module")
def agent(mcp_app):
    """``agent(step, ...)``: the results of MCP steps (see tests/mcp_agent.py), each its own connection."""
    client = _env_python("client")

    def run(*steps: dict) -> list[dict]:
        out = subprocess.run([client, str(ROOT / "tests" / "mcp_agent.py"), f"{mcp_app.url}gradio_api/mcp/"],
                             input=json.dumps(list(steps)), text=True, capture_output=True, timeout=110,
                             env={**os.environ, "HOME": REAL_HOME})
        assert out.returncode == 0, out.stderr[-3000:]
        return json.loads(out.stdout)
    return run


def _texts(result: dict) -> str:
    return "\n".join(c["text"] for c in result["content"] if c["type"] == "text")


def _images(result: dict) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(c["data"]))) for c in result["content"] if c["type"] == "image"]


def _data_url(color: tuple[int, int, int], size=(640, 480)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_tools_say_which_parameters_are_required(agent, mcp_app):
    (listed,) = agent({"list": True})
    tools = {t["name"]: t for t in listed["tools"]}
    assert set(tools) == set(PARAMS)
    for name, params in PARAMS.items():
        assert tools[name]["required"] == list(REQUIRED[name]), name
        assert tools[name]["properties"] == sorted(params), name
        assert "when, " not in tools[name]["description"]  # a docstring's wrapped Returns line, split
    # the schema route agrees (what the Hugging Face MCP bridge reads)
    schema = {t["name"]: t for t in requests.get(f"{mcp_app.url}gradio_api/mcp/schema", timeout=10).json()}
    assert schema["edit"]["inputSchema"]["required"] == ["instruction"]
    assert schema["fuse"]["inputSchema"]["required"] == ["image1", "image2", "instruction"]


def test_generate_gives_images_with_their_recipe_and_urls(agent, mcp_app, emulator_server):
    emulator_server.clear()
    (res,) = agent({"tool": "generate", "headers": KEY,
                    "args": {"prompt": "一只橘猫", "n": 2, "seed": 7, "size": "1328*1328"}})
    assert not res["is_error"], res
    images = _images(res)
    assert len(images) == 2 and all(im.format == "PNG" and im.size == (1328, 1328) for im in images)
    assert sorted(re.search(r"Seed: (\d+)", im.text["parameters"]).group(1) for im in images) == ["7", "8"]
    text = _texts(res)
    assert "Seed 7, 8" in text and "'image'" not in text and "{'path'" not in text
    assert str(mcp_app.data_dir) not in text  # no server paths
    urls = re.findall(r"https?://\S+", text)
    assert len(urls) == 2 and all(requests.get(u, timeout=10).status_code == 200 for u in urls)
    # the key header went through the bridge to the service (and the visitor paid, not the host)
    assert {c.headers["authorization"] for c in emulator_server.calls("generation")} == {f"Bearer {TEST_KEY}"}


def test_edit_and_fuse_without_the_optional_images(agent, emulator_server):
    emulator_server.clear()
    edited, fused = agent(
        {"tool": "edit", "headers": KEY, "args": {"image": _data_url((200, 30, 30), (1200, 600)),
                                                  "instruction": "把背景换成星空"}},
        {"tool": "fuse", "headers": KEY, "progress": True,  # the bridge's other path: outputs as a list
         "args": {"image1": _data_url((255, 0, 0)), "image2": _data_url((0, 0, 255)),
                  "instruction": "图1的颜色，图2的形状"}})
    assert not edited["is_error"] and not fused["is_error"], (edited, fused)
    (after,) = _images(edited)  # the before/after view is not sent again
    assert abs(after.width / after.height - 2) < 0.1
    assert len(_images(fused)) == 1 and fused["progress"]
    sent = emulator_server.calls("generation")[-1].json["input"]["messages"][0]["content"]
    assert sum(1 for c in sent if "image" in c) == 2


def test_an_image_url_on_this_machine_is_not_fetched(agent):
    """An agent may give an image as an http(s) URL, which the server downloads: never from its
    own machine or network (the emulator, an admin page), whatever the tool."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            self.wfile.write(base64.b64decode(_data_url((1, 2, 3)).split(",", 1)[1]))

        def log_message(self, *args):
            pass

    local = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=local.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{local.server_address[1]}/secret.png"
        edit, fuse = agent({"tool": "edit", "headers": KEY, "args": {"image": url, "instruction": "make it blue"}},
                           {"tool": "fuse", "headers": KEY, "args": {"image1": url, "image2": url,
                                                                     "instruction": "图1和图2"}})
    finally:
        local.shutdown()
    assert edit["is_error"] and fuse["is_error"] and not hits, (edit, fuse, hits)


def test_a_refusal_is_an_error_in_the_callers_language(agent):
    (res,) = agent({"tool": "generate", "headers": {**KEY, "Accept-Language": "zh-CN,zh;q=0.9"},
                    "args": {"prompt": "   "}})
    assert res["is_error"] and "提示词为空" in _texts(res) and "Traceback" not in _texts(res)


def test_hosted_agents_never_reach_each_others_results(agent):
    """Gradio's bridge calls for every agent with one client (one session): here each call is its
    own caller, so another agent's record id is not theirs and their searches find nothing of it."""
    (mine,) = agent({"tool": "generate", "headers": KEY, "args": {"prompt": "a secret lighthouse"}})
    assert not mine["is_error"], mine
    record = int(re.search(r"#(\d+)", _texts(mine)).group(1))
    by_id, by_search = agent({"tool": "download_run", "args": {"record_id": record}},
                             {"tool": "download_matching", "args": {"query": "secret lighthouse"}})
    assert by_id["is_error"], by_id
    assert ".zip" not in _texts(by_search), by_search


def test_a_forged_forwarded_address_buys_no_fresh_allowance(agent):
    """On the host's key (2 images an hour per visitor) a session-less bridge call counts against
    the address the MCP request came from, stamped by the server. The agent connects from
    127.0.0.3, an address the server takes no X-Forwarded-For from; the bridge re-sends the call
    from 127.0.0.1, which it does take them from: a forwarded address must not make the second
    call a new visitor."""
    first, second = agent({"tool": "generate", "headers": {"X-Forwarded-For": "203.0.113.7"},
                           "local_address": "127.0.0.3", "args": {"prompt": "a cat", "n": 2}},
                          {"tool": "generate", "headers": {"X-Forwarded-For": "198.51.100.9"},
                           "local_address": "127.0.0.3", "args": {"prompt": "another cat"}})
    assert not first["is_error"] and len(_images(first)) == 2, first
    assert second["is_error"] and "per visitor per hour" in _texts(second), second


def test_a_forged_bridge_stamp_and_a_huge_body_are_refused(mcp_app):
    """Raw HTTP, no MCP client: a queue call that claims to come through the bridge is an ordinary
    call of its session, and a 3 MB tool call is refused before it is read."""
    from .test_hosted_safety import _fn_index, _join, _listen
    from aliyun_image.ui.endpoints import call_args
    from aliyun_image.ui.mcp_tools import PEER_HEADER
    from .test_ui_handlers import GEN_DEFAULTS

    session = "forged-stamp-1"
    data = call_args("generate", **{**GEN_DEFAULTS, "prompt": "a forged cat"})
    event = _join(mcp_app, session, _fn_index(mcp_app, "generate"), data,
                  headers={**KEY, PEER_HEADER: "192.0.2.1 " + "0" * 64})
    done = _listen(mcp_app, session, {event})[event]
    assert done["success"], done  # served as the session it is, not as a bridge call
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "edit", "arguments": {"image": "data:image/png;base64," + "A" * (3 << 20),
                                                     "instruction": "x"}}}
    r = requests.post(f"{mcp_app.url}gradio_api/mcp/", data=json.dumps(body), timeout=30,
                      headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
    assert r.status_code == 413


def test_tool_content_of_each_output_kind(tmp_path):
    """The conversion itself, on the shapes the bridge hands over (no server needed)."""
    from aliyun_image.ui.mcp_tools import content_items

    some_png = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(some_png)
    file = {"path": str(some_png), "url": "http://h/gradio_api/file=x.png", "meta": {"_type": "gradio.FileData"}}
    zipped = {"path": "/srv/x.zip", "url": "http://h/gradio_api/file=x.zip", "meta": {"_type": "gradio.FileData"}}
    gallery = [{"image": file, "caption": "#3 · a cat"}]
    for data in ([[gallery, [file, file], "Done"]], [gallery, [file, file], "Done"]):  # with / without progress
        kinds = [(k, p if k == "text" else mime) for k, p, mime in content_items(data)]
        assert kinds == [("image", "image/png"), ("text", "#3 · a cat · http://h/gradio_api/file=x.png"),
                         ("text", "Done")]
    assert [p for _, p, _ in content_items([[zipped, "3 images"]])] == ["http://h/gradio_api/file=x.zip", "3 images"]


# --- /batch and /grid -------------------------------------------------------------------------------
def test_batch_and_grid_as_tools(agent, emulator_server):
    """A template batch and a 2x2 grid through MCP: every image back as an image. An agent that
    keeps a visitor cookie of its own keeps its gallery: the same batch called again makes nothing
    new (it finds its stored results) and sends nothing; without the cookie it is another caller."""
    emulator_server.clear()
    mine = {**KEY, "Cookie": "aliyun_image_visitor=" + "agent-7-" + "k" * 40}
    spec = {"prompts": "a {animal} in the snow\n# not a prompt\na red kite", "variables": "animal=cat,dog", "seed": 5}
    batch, grid, again = agent({"tool": "batch", "headers": mine, "args": spec, "progress": True},
                               {"tool": "grid", "headers": KEY,
                                "args": {"prompt": "a lighthouse", "x": "seed=1,2", "y": "size=1328*1328,1664*928"}},
                               {"tool": "batch", "headers": mine, "args": spec})
    assert not batch["is_error"] and len(_images(batch)) == 3, batch
    prompts = sorted(re.search(r"#\d+ · (.+?) · ", line).group(1) for line in _texts(batch).splitlines()
                     if line.startswith("#"))
    assert prompts == ["a cat in the snow", "a dog in the snow", "a red kite"]
    assert "3 of 3 images stored" in _texts(batch)
    assert any("of 3" in note for note in batch["progress"]), batch["progress"]  # each image as it landed
    assert not grid["is_error"] and len(_images(grid)) == 5, grid  # 4 cells, then the grid
    whole = _images(grid)[-1]
    assert whole.size[0] > 2 * 1328 // 4 and "X/Y: seed: 1, 2 | size:" in whole.text["parameters"]
    assert len(emulator_server.calls("generation")) == 3 + 4
    assert not again["is_error"] and len(_images(again)) == 3  # the stored ones, nothing sent again
    assert len(emulator_server.calls("generation")) == 3 + 4


def test_batch_refusals_come_before_anything_is_sent(agent, emulator_server):
    """On the host's key the hourly allowance (2 per visitor) refuses a batch of 3 whole; a shared
    demo takes at most 100 requests a call; a template of a million combinations is refused at once,
    before it is built. Nothing reaches the service."""
    emulator_server.clear()
    over_quota, too_many, million, no_axis = agent(
        {"tool": "batch", "args": {"prompts": "one\ntwo\nthree"}},
        {"tool": "batch", "headers": KEY, "args": {"prompts": "\n".join(f"cat {k}" for k in range(101))}},
        {"tool": "batch", "headers": KEY, "args": {"prompts": "{a} {b} {c}", "variables": "\n".join(
            f"{name}=" + ",".join(str(v) for v in range(100)) for name in "abc")}},
        {"tool": "grid", "headers": KEY, "args": {"prompt": "a cat", "x": ""}})
    assert over_quota["is_error"] and "per visitor per hour" in _texts(over_quota), over_quota
    assert too_many["is_error"] and "more than 100 requests" in _texts(too_many), too_many
    assert million["is_error"] and "more than 1000 requests" in _texts(million), million
    assert no_axis["is_error"], no_axis
    assert not emulator_server.calls("generation")


def test_another_callers_batch_is_not_reachable_by_the_raw_queue(mcp_app, emulator_server):
    """A raw queue call (no MCP, its own session) with the same input as another caller's batch gets
    a batch of its own: the fingerprint includes the owner, so no one collects another's results."""
    from aliyun_image.ui.endpoints import call_args

    from .test_hosted_safety import _fn_index, _join, _listen

    fn = _fn_index(mcp_app, "batch")
    results = []
    for session in ("raw-batch-a", "raw-batch-b"):
        data = call_args("batch", prompts="a shared secret", variables="", negative="", quality="plus", model="",
                         size="", n=1, seed=9, prompt_extend=True, watermark=False)
        event = _join(mcp_app, session, fn, data, headers=KEY)
        results.append(_listen(mcp_app, session, {event})[event])
    assert all(r["success"] for r in results), results
    ids = [re.search(r"#(\d+)", r["output"]["data"][0][0]["caption"]).group(1) for r in results]
    assert ids[0] != ids[1]  # b made its own image; it was not handed a's
