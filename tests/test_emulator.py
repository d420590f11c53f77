"""The DashScope emulator over real HTTP: shapes, validation, uploads, tasks, faults, robustness."""

from __future__ import annotations

import base64
import http.client
import io
import json
import re
import socket
import threading
import time

import pytest
import requests
import urllib3
from PIL import Image

from aliyun_image.emulator import Emulator, Recorded
from aliyun_image.emulator import handler as emu_handler

KEY = "sk-test-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
GEN = "/services/aigc/multimodal-generation/generation"
TASKS = "/services/aigc/text2image/image-synthesis"
ASYNC = {**AUTH, "X-DashScope-Async": "enable"}
CST_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")


# --- helpers -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server():
    with Emulator() as emu:
        yield emu


@pytest.fixture
def emu(server):
    """The shared emulator, with records, faults and settings reset around each test."""
    server.clear()
    saved = (server.latency, server.url_ttl, server.policy_ttl, server.task_delay)
    yield server
    server.latency, server.url_ttl, server.policy_ttl, server.task_delay = saved
    server.clear()


@pytest.fixture
def fast_tasks(emu):
    emu.task_delay = 0.3
    return emu


def t2i(prompt="a red fox in snow", model="qwen-image-plus", **params) -> dict:
    return {"model": model, "input": {"messages": [{"role": "user", "content": [{"text": prompt}]}]},
            "parameters": params}


def edit(images, prompt="make it blue", model="qwen-image-edit-plus", **params) -> dict:
    content = [{"image": i} for i in images] + [{"text": prompt}]
    return {"model": model, "input": {"messages": [{"role": "user", "content": content}]},
            "parameters": params}


def post(emu, body, headers=AUTH, path=GEN, **kw) -> requests.Response:
    if isinstance(body, (bytes, str)):
        headers = {"Content-Type": "application/json", **headers}
        return requests.post(emu.base_url + path, data=body, headers=headers, timeout=10, **kw)
    return requests.post(emu.base_url + path, json=body, headers=headers, timeout=10, **kw)


def urls_of(resp) -> list[str]:
    return [c["image"] for c in resp.json()["output"]["choices"][0]["message"]["content"] if "image" in c]


def png(w=64, h=64, colour=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (w, h), colour).save(out, "PNG")
    return out.getvalue()


def data_uri(data: bytes, mime="image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def image_of(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def assert_error(resp, status, code, message=None):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"request_id", "code", "message"}
    assert body["code"] == code
    assert body["request_id"]
    if message is not None:
        assert message in body["message"]


# --- text-to-image -------------------------------------------------------------------------------
def test_t2i_success_shape_and_download(emu):
    r = post(emu, t2i(size="1328*1328", seed=42))
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"output", "usage", "request_id"}
    choice = body["output"]["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    image, rewritten = choice["message"]["content"]  # prompt_extend defaults to on: the rewritten prompt last
    assert set(image) == {"image"} and set(rewritten) == {"text"} and rewritten["text"].startswith("a ")
    assert body["output"]["task_metric"] == {"TOTAL": 1, "SUCCEEDED": 1, "FAILED": 0}
    assert body["usage"] == {"width": 1328, "height": 1328, "image_count": 1}
    url = urls_of(r)[0]
    signed = r"/results/[0-9a-f]{32}\.png\?Expires=\d+&OSSAccessKeyId=LTAI-emulator&Signature=[0-9a-f]{64}$"
    assert re.match(re.escape(emu.origin) + signed, url)
    expires = int(re.search(r"Expires=(\d+)", url).group(1))
    assert abs(expires - (time.time() + 86400)) < 5
    d = requests.get(url, timeout=10)
    assert d.status_code == 200
    assert d.headers["Content-Type"] == "image/png"
    assert int(d.headers["Content-Length"]) == len(d.content)
    im = image_of(d.content)
    assert im.format == "PNG" and im.size == (1328, 1328)
    assert requests.head(url, timeout=10).headers["Content-Length"] == str(len(d.content))


def test_t2i_default_sizes_and_snapshots(emu):
    assert post(emu, t2i()).json()["usage"] == {"width": 1664, "height": 928, "image_count": 1}
    r = post(emu, t2i(model="qwen-image-max-2025-12-30", size="928*1664"))
    assert r.json()["usage"]["width"] == 928
    r = post(emu, t2i(model="qwen-image-2.0", n=2))
    assert r.json()["usage"] == {"width": 2048, "height": 2048, "image_count": 2}
    assert "task_metric" not in r.json()["output"]  # not returned for the 2.0 family


def test_determinism_and_variation(emu):
    def fetch(**kw):
        body = t2i(**{"size": "1104*1472", "seed": 7, **kw})
        r = post(emu, body)
        return requests.get(urls_of(r)[0], timeout=10).content

    a, b = fetch(), fetch()
    assert a == b
    assert fetch(seed=8) != a
    assert fetch(prompt="another prompt") != a
    assert fetch(model="qwen-image-max") != a
    assert fetch(watermark=True) != a


def test_seed_omitted_picks_random_seed(emu):
    u1, u2 = urls_of(post(emu, t2i(size="928*1664")))[0], urls_of(post(emu, t2i(size="928*1664")))[0]
    assert requests.get(u1, timeout=10).content != requests.get(u2, timeout=10).content


def test_prompt_and_negative_truncated_not_rejected(emu):
    r = post(emu, t2i(prompt="长" * 2000, negative_prompt="x" * 1000, size="1328*1328"))
    assert r.status_code == 200


# --- edit ----------------------------------------------------------------------------------------
def test_edit_with_data_uri_follows_last_image_aspect(emu):
    wide, tall = data_uri(png(800, 400)), data_uri(png(300, 600, (0, 90, 200)))
    r = post(emu, edit([tall, wide], seed=1))
    assert r.status_code == 200, r.text
    usage = r.json()["usage"]
    w, h = usage["width"], usage["height"]
    assert (w, h) == (1456, 720)  # ~1024*1024 pixels at 2:1, multiples of 16
    assert "task_metric" not in r.json()["output"]
    im = image_of(requests.get(urls_of(r)[0], timeout=10).content)
    assert im.size == (1456, 720)
    r = post(emu, edit([wide, tall], seed=1))
    assert (r.json()["usage"]["width"], r.json()["usage"]["height"]) == (720, 1456)


def test_edit_n2_and_explicit_size_snapped(emu):
    r = post(emu, edit([data_uri(png())], n=2, size="1033*1032", seed=5))
    assert r.status_code == 200, r.text
    assert r.json()["usage"] == {"width": 1040, "height": 1024, "image_count": 2}
    urls = urls_of(r)
    assert len(urls) == 2 and urls[0] != urls[1]
    a, b = (requests.get(u, timeout=10).content for u in urls)
    assert a != b and image_of(a).size == (1040, 1024)


def test_edit_accepts_own_result_url_and_other_urls(emu):
    result = urls_of(post(emu, t2i(size="1664*928", seed=3)))[0]
    r = post(emu, edit([result]))
    assert (r.json()["usage"]["width"], r.json()["usage"]["height"]) == (1376, 768)
    r = post(emu, edit(["https://example.com/cat.jpg", "http://example.com/dog.png"]))
    assert r.status_code == 200
    assert (r.json()["usage"]["width"], r.json()["usage"]["height"]) == (1024, 1024)
    im = image_of(requests.get(urls_of(r)[0], timeout=10).content)
    assert im.size == (1024, 1024)


def test_edit_image_errors(emu):
    assert_error(post(emu, edit(["data:image/png;base64,bm90IGFuIGltYWdl"])), 400,
                 "InvalidParameter.DataInspection")
    assert_error(post(emu, edit(["data:image/png;base64,@@@"])), 400, "InvalidParameter.DataInspection")
    assert_error(post(emu, edit(["ftp://example.com/a.png"])), 400, "InvalidURL")
    assert_error(post(emu, edit(["/home/me/cat.png"])), 400, "InvalidURL")
    assert_error(post(emu, edit(["oss://nowhere/x.png"])), 400, "InvalidURL")
    assert_error(post(emu, edit([data_uri(png())] * 4)), 400, "InvalidParameter")
    assert_error(post(emu, edit([data_uri(png())], model="qwen-image-plus")), 400, "InvalidParameter")
    assert_error(post(emu, t2i(model="qwen-image-edit-max")), 400, "InvalidParameter")
    assert post(emu, edit([data_uri(png())], model="qwen-image-2.0-pro")).status_code == 200


# --- auth and model ------------------------------------------------------------------------------
def test_auth_errors(emu):
    assert_error(post(emu, t2i(), headers={}), 401, "InvalidApiKey", "No API-key provided.")
    assert_error(post(emu, t2i(), headers={"Authorization": "Bearer "}), 401, "InvalidApiKey",
                 "No API-key provided.")
    for bad in ("Bearer sk-invalid-123", "Bearer xx-12345678", "Bearer sk-1", f"Basic {KEY}"):
        assert_error(post(emu, t2i(), headers={"Authorization": bad}), 401, "InvalidApiKey",
                     "Invalid API-key provided.")


def test_explicit_key_set():
    with Emulator(api_keys={"only-this-one"}) as emu:
        assert post(emu, t2i(), headers={"Authorization": "Bearer only-this-one"}).status_code == 200
        assert_error(post(emu, t2i()), 401, "InvalidApiKey")


def test_model_errors(emu):
    assert_error(post(emu, t2i(model="qwen-image-ultra")), 404, "ModelNotFound", "Model can not be found.")
    body = t2i()
    del body["model"]
    assert_error(post(emu, body), 400, "BadRequest.EmptyModel")
    assert_error(post(emu, t2i(model="")), 400, "BadRequest.EmptyModel")
    assert_error(post(emu, t2i(model=42)), 400, "InvalidParameter")
    # qwen-image is served on both endpoints (models document, section 1)
    assert post(emu, t2i(model="qwen-image")).status_code == 200


# --- parameters ----------------------------------------------------------------------------------
@pytest.mark.parametrize("model,size,expect", [
    ("qwen-image-plus", "1472*1104", (1472, 1104)),
    ("qwen-image-plus", "1472*1140", None),
    ("qwen-image-plus", "1024*1024", None),
    ("qwen-image-plus", "1328x1328", None),
    ("qwen-image-plus", 1328, None),
    ("qwen-image-edit-plus", "1033*1032", (1040, 1024)),
    ("qwen-image-edit-plus", "512*2048", (512, 2048)),
    ("qwen-image-edit-plus", "500*1024", None),
    ("qwen-image-edit-plus", "2100*1024", None),
    ("qwen-image-2.0", "1000*1000", (992, 992)),
    ("qwen-image-2.0", "2688*1536", (2688, 1536)),
    ("qwen-image-2.0", "256*256", None),
    ("qwen-image-2.0", "3000*3000", None),
])
def test_size_rules(emu, model, size, expect):
    body = edit([data_uri(png())], model=model, size=size) if "edit" in model else t2i(model=model, size=size)
    r = post(emu, body)
    if expect is None:
        assert_error(r, 400, "InvalidParameter")
    else:
        assert r.status_code == 200, r.text
        assert (r.json()["usage"]["width"], r.json()["usage"]["height"]) == expect


def test_n_rules(emu):
    assert_error(post(emu, t2i(n=2)), 400, "InvalidParameter", "num_images_per_prompt must be 1")
    assert post(emu, t2i(n=1)).status_code == 200
    img = [data_uri(png())]
    for bad in (0, 7, "2", 2.0, True):
        assert_error(post(emu, edit(img, n=bad)), 400, "InvalidParameter")
    r = post(emu, edit(img, n=6, size="512*512"))
    assert r.json()["usage"]["image_count"] == 6 and len(urls_of(r)) == 6


@pytest.mark.parametrize("params", [
    {"seed": -1}, {"seed": 2147483648}, {"seed": "1"}, {"seed": True}, {"seed": 1.5},
    {"prompt_extend": "yes"}, {"watermark": 1}, {"negative_prompt": 5}, {"size": None, "n": "x"},
])
def test_parameter_types(emu, params):
    assert_error(post(emu, t2i(**params)), 400, "InvalidParameter")


def test_parameter_edges_accepted(emu):
    assert post(emu, t2i(seed=0, prompt_extend=False, watermark=True, result_format="message")).status_code == 200
    assert post(emu, t2i(seed=2147483647)).status_code == 200
    body = t2i()
    del body["parameters"]
    assert post(emu, body).status_code == 200


@pytest.mark.parametrize("mutate,code", [
    (lambda b: b["input"]["messages"].append({"role": "user", "content": [{"text": "x"}]}), "InvalidParameter"),
    (lambda b: b["input"]["messages"][0].update(role="assistant"), "InvalidParameter"),
    (lambda b: b["input"]["messages"][0]["content"].append({"text": "again"}), "InvalidParameter"),
    (lambda b: b["input"]["messages"][0].update(content=[]), "InvalidParameter"),
    (lambda b: b["input"]["messages"][0].update(content="just text"), "InvalidParameter"),
    (lambda b: b["input"]["messages"][0].update(content=[{"video": "x"}, {"text": "y"}]), "InvalidParameter"),
    (lambda b: b["input"]["messages"][0].update(content=[{"text": ""}]), "BadRequest.EmptyInput"),
    (lambda b: b["input"]["messages"][0].update(content=[{"text": 12}]), "InvalidParameter"),
    (lambda b: b["input"].update(messages=[]), "InvalidParameter"),
    (lambda b: b.pop("input"), "BadRequest.EmptyInput"),
    (lambda b: b.update(input=[1]), "InvalidParameter"),
    (lambda b: b.update(parameters=[1]), "InvalidParameter"),
])
def test_message_structure(emu, mutate, code):
    body = t2i()
    mutate(body)
    assert_error(post(emu, body), 400, code)


# --- async tasks ---------------------------------------------------------------------------------
def task_body(prompt="a lighthouse at dusk", model="qwen-image-plus", **params):
    return {"model": model, "input": {"prompt": prompt, "negative_prompt": "blurry"}, "parameters": params}


def poll(emu, task_id, until=("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"), timeout=60.0):
    seen = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = requests.get(f"{emu.base_url}/tasks/{task_id}", headers=AUTH, timeout=10)
        assert r.status_code == 200
        status = r.json()["output"]["task_status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in until:
            return r.json(), seen
        time.sleep(0.03)
    raise AssertionError(f"task stuck: {seen}")


def test_async_task_life_cycle(fast_tasks):
    emu = fast_tasks
    r = post(emu, task_body(size="1328*1328", seed=9, prompt="长" * 900), headers=ASYNC, path=TASKS)
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"output", "request_id"}
    assert r.json()["output"]["task_status"] == "PENDING"
    task_id = r.json()["output"]["task_id"]
    body, seen = poll(emu, task_id)
    assert seen[0] == "PENDING" and seen[-1] == "SUCCEEDED" and "RUNNING" in seen
    out = body["output"]
    assert out["task_id"] == task_id
    for key in ("submit_time", "scheduled_time", "end_time"):
        assert CST_TIME.match(out[key]), out[key]
    assert body["usage"] == {"image_count": 1}
    (res,) = out["results"]
    assert res["orig_prompt"] == "长" * 800  # truncated, not refused
    assert res["actual_prompt"].startswith(res["orig_prompt"]) and res["actual_prompt"] != res["orig_prompt"]
    assert image_of(requests.get(res["url"], timeout=10).content).size == (1328, 1328)
    again, _ = poll(emu, task_id)
    assert again["output"]["results"][0]["url"] == res["url"]  # stable across polls


def test_async_without_prompt_extend_has_no_actual_prompt(fast_tasks):
    r = post(fast_tasks, task_body(prompt_extend=False), headers=ASYNC, path=TASKS)
    body, _ = poll(fast_tasks, r.json()["output"]["task_id"])
    assert "actual_prompt" not in body["output"]["results"][0]


def test_async_errors(emu):
    assert_error(post(emu, task_body(), headers=AUTH, path=TASKS), 403, "AccessDenied",
                 "current user api does not support synchronous calls")
    assert_error(post(emu, task_body(), headers={"X-DashScope-Async": "enable"}, path=TASKS), 401, "InvalidApiKey")
    assert_error(post(emu, task_body(model="qwen-image-max"), headers=ASYNC, path=TASKS), 400, "InvalidParameter")
    assert_error(post(emu, task_body(n=2), headers=ASYNC, path=TASKS), 400, "InvalidParameter")
    assert_error(post(emu, task_body(size="1000*1000"), headers=ASYNC, path=TASKS), 400, "InvalidParameter")
    assert_error(post(emu, {"model": "qwen-image", "input": {}}, headers=ASYNC, path=TASKS), 400,
                 "BadRequest.EmptyInput")
    assert post(emu, task_body(model="qwen-image"), headers=ASYNC, path=TASKS).status_code == 200
    r = requests.get(f"{emu.base_url}/tasks/whatever", timeout=10)
    assert_error(r, 401, "InvalidApiKey")


def test_cancel_only_pending(fast_tasks):
    emu = fast_tasks
    emu.task_delay = 3.0
    tid = post(emu, task_body(), headers=ASYNC, path=TASKS).json()["output"]["task_id"]
    r = requests.post(f"{emu.base_url}/tasks/{tid}/cancel", headers=AUTH, timeout=10)
    assert r.status_code == 200 and set(r.json()) == {"request_id"}
    body, _ = poll(emu, tid)
    assert body["output"]["task_status"] == "CANCELED"
    r = requests.post(f"{emu.base_url}/tasks/{tid}/cancel", headers=AUTH, timeout=10)
    assert_error(r, 400, "UnsupportedOperation")
    emu.task_delay = 0.15
    tid = post(emu, task_body(), headers=ASYNC, path=TASKS).json()["output"]["task_id"]
    poll(emu, tid)
    assert_error(requests.post(f"{emu.base_url}/tasks/{tid}/cancel", headers=AUTH, timeout=10), 400,
                 "UnsupportedOperation")


def test_task_outcomes_and_unknown(fast_tasks):
    emu = fast_tasks
    emu.task_delay = 0.1
    emu.task_outcome("FAILED", code="InternalError.Algo", message="algo broke")
    emu.task_outcome("UNKNOWN")
    emu.task_outcome("CANCELED")
    ids = [post(emu, task_body(), headers=ASYNC, path=TASKS).json()["output"]["task_id"] for _ in range(4)]
    failed, _ = poll(emu, ids[0])
    assert failed["output"]["task_status"] == "FAILED"
    assert failed["output"]["code"] == "InternalError.Algo" and failed["output"]["message"] == "algo broke"
    assert "results" not in failed["output"]
    assert poll(emu, ids[1])[0]["output"]["task_status"] == "UNKNOWN"
    assert poll(emu, ids[2])[0]["output"]["task_status"] == "CANCELED"
    assert poll(emu, ids[3])[0]["output"]["task_status"] == "SUCCEEDED"
    r = requests.get(f"{emu.base_url}/tasks/no-such-task", headers=AUTH, timeout=10)
    assert r.status_code == 200
    assert r.json()["output"] == {"task_id": "no-such-task", "task_status": "UNKNOWN"}


# --- temporary upload ----------------------------------------------------------------------------
def get_policy(emu, model="qwen-image-edit-plus", headers=AUTH):
    return requests.get(f"{emu.base_url}/uploads", params={"action": "getPolicy", "model": model},
                        headers=headers, timeout=10)


def upload(data, filename="my cat.png", key=None, **overrides):
    fields = [
        ("OSSAccessKeyId", data["oss_access_key_id"]),
        ("Signature", data["signature"]),
        ("policy", data["policy"]),
        ("key", key or f"{data['upload_dir']}/{filename}"),
        ("x-oss-object-acl", data["x_oss_object_acl"]),
        ("x-oss-forbid-overwrite", data["x_oss_forbid_overwrite"]),
        ("success_action_status", "200"),
        ("x-oss-content-type", "image/png"),
    ]
    fields = [(k, overrides.get(k, v)) for k, v in fields]
    files = {"file": (filename, overrides.get("file", png(96, 48)))}
    return requests.post(data["upload_host"], data=fields, files=files, headers={"Accept": "application/json"},
                         timeout=10)


def test_upload_flow_and_oss_url(emu):
    r = get_policy(emu)
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["upload_host"] == emu.origin + "/oss"
    assert re.match(r"^dashscope-instant/emulator/\d{4}-\d\d-\d\d/[0-9a-f-]{36}$", data["upload_dir"])
    assert data["expire_in_seconds"] == 300 and data["max_file_size_mb"] == 100
    for key in ("policy", "signature", "capacity_limit_mb", "oss_access_key_id", "x_oss_object_acl",
                "x_oss_forbid_overwrite"):
        assert key in data

    up = upload(data)
    assert up.status_code == 200 and up.content == b""
    (rec,) = emu.calls("oss")
    assert "authorization" not in rec.headers
    names = [name for name, _ in rec.form["fields"]]
    assert names == ["OSSAccessKeyId", "Signature", "policy", "key", "x-oss-object-acl",
                     "x-oss-forbid-overwrite", "success_action_status", "x-oss-content-type", "file"]
    assert rec.form["fields"][-1] == ("file", "my cat.png")
    assert image_of(rec.form["files"]["file"]["data"]).size == (96, 48)

    oss_url = f"oss://{data['upload_dir']}/my cat.png"
    resolve = {**AUTH, "X-DashScope-OssResourceResolve": "enable"}
    r = post(emu, edit([oss_url]), headers=resolve)
    assert r.status_code == 200, r.text
    assert (r.json()["usage"]["width"], r.json()["usage"]["height"]) == (1456, 720)
    assert_error(post(emu, edit([oss_url])), 400, "InvalidURL")  # no resolve header
    assert_error(post(emu, edit([oss_url], model="qwen-image-2.0"), headers=resolve), 400, "InvalidURL")

    again = upload(data)  # forbid-overwrite
    assert again.status_code == 409 and b"<Code>FileAlreadyExists</Code>" in again.content


def test_upload_refusals(emu):
    data = get_policy(emu).json()["data"]
    r = upload(data, key="dashscope-instant/other/x.png")
    assert r.status_code == 403 and b"<Code>AccessDenied</Code>" in r.content
    r = upload(data, Signature="AAAA")
    assert r.status_code == 403 and b"SignatureDoesNotMatch" in r.content
    r = upload(data, **{"x-oss-forbid-overwrite": "false"})
    assert r.status_code == 403
    r = requests.post(data["upload_host"], data=b"not multipart", timeout=10)
    assert r.status_code == 400 and r.headers["Content-Type"] == "application/xml"
    assert_error(get_policy(emu, model="nope"), 404, "ModelNotFound")
    assert_error(get_policy(emu, headers={}), 401, "InvalidApiKey")
    not_image = upload(data, filename="notes.txt", file=b"hello")
    assert not_image.status_code == 200
    r = post(emu, edit([f"oss://{data['upload_dir']}/notes.txt"]),
             headers={**AUTH, "X-DashScope-OssResourceResolve": "enable"})
    assert_error(r, 400, "InvalidParameter.DataInspection")


def test_expired_policy(emu):
    emu.policy_ttl = -1
    data = get_policy(emu).json()["data"]
    r = upload(data)
    assert r.status_code == 403
    assert r.headers["Content-Type"] == "application/xml"
    assert b"<Code>AccessDenied</Code>" in r.content and b"Policy expired." in r.content


# --- result URLs ---------------------------------------------------------------------------------
def test_result_url_expiry_and_signature(emu):
    emu.url_ttl = -1
    url = urls_of(post(emu, t2i()))[0]
    r = requests.get(url, timeout=10)
    assert r.status_code == 403 and r.headers["Content-Type"] == "application/xml"
    assert b"<Code>AccessDenied</Code>" in r.content and b"<Message>Request has expired.</Message>" in r.content
    emu.url_ttl = 86400
    url = urls_of(post(emu, t2i()))[0]
    r = requests.get(re.sub(r"Signature=\w+", "Signature=" + "0" * 64, url), timeout=10)
    assert r.status_code == 403 and b"SignatureDoesNotMatch" in r.content
    r = requests.get(re.sub(r"/results/\w+", "/results/" + "a" * 32, url), timeout=10)
    assert r.status_code == 404 and b"NoSuchKey" in r.content


def test_fixed_image():
    blob = png(8, 8)
    with Emulator(fixed_image=blob) as emu:
        url = urls_of(post(emu, t2i()))[0]
        assert requests.get(url, timeout=10).content == blob


# --- faults --------------------------------------------------------------------------------------
def test_fail_with_retry_after_times_and_fifo(emu):
    emu.fail(status=429, code="Throttling.RateQuota", message="slow down", retry_after=2, times=2)
    emu.fault("missing_fields")
    for _ in range(2):
        r = post(emu, t2i())
        assert_error(r, 429, "Throttling.RateQuota", "slow down")
        assert r.headers["Retry-After"] == "2"
    r = post(emu, t2i())
    assert r.status_code == 200 and "choices" not in r.json().get("output", {}) and r.json()["request_id"]
    assert post(emu, t2i()).status_code == 200
    assert len(emu.calls("generation")) == 4


def test_fail_raw_body_and_other_endpoints(emu):
    emu.fail(status=502, body=b"<html>502 Bad Gateway</html>", content_type="text/html")
    r = post(emu, t2i())
    assert r.status_code == 502 and r.text == "<html>502 Bad Gateway</html>"
    assert r.headers["Content-Type"] == "text/html"
    emu.fail("policy", status=500)
    assert_error(get_policy(emu), 500, "InternalError")
    emu.fail("task_get", status=503, code="ModelUnavailable", message="busy")
    assert_error(requests.get(f"{emu.base_url}/tasks/x", headers=AUTH, timeout=10), 503, "ModelUnavailable")
    with pytest.raises(ValueError):
        emu.fail("nowhere")
    with pytest.raises(ValueError):
        emu.fault("explode")


def test_reset_and_hang(emu):
    emu.fault("reset")
    with pytest.raises(requests.ConnectionError):
        post(emu, t2i())
    assert len(emu.calls("generation")) == 1  # the request was read and recorded
    emu.fault("hang", seconds=0.3)
    t = time.monotonic()
    assert post(emu, t2i()).status_code == 200
    assert time.monotonic() - t >= 0.29
    emu.fault("hang", endpoint="download", seconds=0.3)
    url = urls_of(post(emu, t2i()))[0]
    with pytest.raises(requests.Timeout):
        requests.get(url, timeout=0.1)


def test_missing_fields_on_tasks(emu):
    emu.fault("missing_fields", endpoint="task_create")
    r = post(emu, task_body(), headers=ASYNC, path=TASKS)
    assert r.status_code == 200 and "task_id" not in r.json()["output"]
    emu.fault("missing_fields", endpoint="task_get")
    r = requests.get(f"{emu.base_url}/tasks/x", headers=AUTH, timeout=10)
    assert r.status_code == 200 and "results" not in r.json()["output"]


def test_download_faults(emu):
    url = urls_of(post(emu, t2i(size="1328*1328", seed=1)))[0]
    full = requests.get(url, timeout=10).content

    emu.download_fault("truncate")
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        requests.get(url, timeout=10)
    # streaming shows the lie: Content-Length says full size, fewer bytes arrive
    emu.download_fault("truncate")
    with requests.get(url, stream=True, timeout=10) as r:
        assert int(r.headers["Content-Length"]) == len(full)
        got = b""
        with pytest.raises(urllib3.exceptions.ProtocolError):  # "Connection broken: IncompleteRead"
            for chunk in r.raw.stream(65536, decode_content=False):
                got += chunk
        assert len(got) < len(full)

    emu.download_fault("slow", seconds=0.3)
    t = time.monotonic()
    assert requests.get(url, timeout=10).content == full
    assert time.monotonic() - t >= 0.25

    emu.download_fault("expired")
    r = requests.get(url, timeout=10)
    assert r.status_code == 403 and b"Request has expired." in r.content

    emu.download_fault("not_image")
    r = requests.get(url, timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert requests.get(url, timeout=10).content == full


def test_random_faults(emu):
    emu.random_faults(1.0, seed=3)
    codes = {post(emu, t2i()).json()["code"] for _ in range(12)}
    assert codes <= {"InternalError", "ModelUnavailable", "Throttling.RateQuota"} and len(codes) >= 2
    emu.random_faults(0)
    assert post(emu, t2i()).status_code == 200


def test_latency(emu):
    emu.latency = 0.2
    t = time.monotonic()
    assert post(emu, t2i()).status_code == 200
    assert time.monotonic() - t >= 0.19
    emu.latency = (0.0, 0.01)
    assert post(emu, t2i()).status_code == 200


# --- control surface and records -----------------------------------------------------------------
def test_control_endpoint(emu):
    ctl = emu.origin + "/_emulator/control"
    assert requests.post(ctl, json={"action": "fail", "status": 503, "code": "ModelUnavailable",
                                    "retry_after": 1}, timeout=10).json() == {"ok": True}
    r = post(emu, t2i())
    assert_error(r, 503, "ModelUnavailable")
    assert r.headers["Retry-After"] == "1"
    requests.post(ctl, json={"action": "fail", "status": 502, "body": "<h1>bad gateway</h1>",
                             "content_type": "text/html"}, timeout=10)
    assert post(emu, t2i()).text == "<h1>bad gateway</h1>"
    requests.post(ctl, json={"action": "download_fault", "kind": "not_image"}, timeout=10)
    requests.post(ctl, json={"action": "task_outcome", "status": "FAILED"}, timeout=10)
    requests.post(ctl, json={"action": "latency", "latency": 0.05}, timeout=10)
    assert emu.latency == 0.05
    requests.post(ctl, json={"action": "set", "task_delay": 0.2, "latency": [0, 0]}, timeout=10)
    assert emu.task_delay == 0.2 and emu.latency == (0.0, 0.0)
    requests.post(ctl, json={"action": "fault", "kind": "missing_fields"}, timeout=10)
    requests.post(ctl, json={"action": "clear"}, timeout=10)
    assert emu.requests == [] and post(emu, t2i()).status_code == 200
    for bad in ({"action": "explode"}, {"action": "fail", "nonsense": 1}, {"nope": 1}, [1]):
        assert_error(requests.post(ctl, json=bad, timeout=10), 400, "InvalidParameter")
    assert_error(requests.post(ctl, data=b"\xff{", timeout=10), 400, "InvalidParameter")
    assert requests.get(emu.origin + "/_emulator/health", timeout=10).json()["ok"] is True


def test_recorded_requests_and_redaction(emu):
    post(emu, t2i(prompt="你好百炼"), headers={**AUTH, "X-Custom-Trace": "abc"})
    (rec,) = emu.calls("generation")
    assert isinstance(rec, Recorded)
    assert rec.method == "POST" and rec.path == "/api/v1" + GEN
    assert rec.headers["authorization"] == f"Bearer {KEY}"  # in process: the real header
    assert rec.headers["x-custom-trace"] == "abc"
    assert rec.json["input"]["messages"][0]["content"][0]["text"] == "你好百炼"
    assert KEY not in repr(rec)
    data = get_policy(emu).json()["data"]
    upload(data)
    r = requests.get(emu.origin + "/_emulator/requests", timeout=10)
    assert KEY not in r.text
    items = r.json()
    assert [i["endpoint"] for i in items] == ["generation", "policy", "oss"]
    assert items[0]["headers"]["authorization"] == "Bearer ***"
    assert json.loads(items[0]["body"])["model"] == "qwen-image-plus"
    assert items[1]["query"] == {"action": "getPolicy", "model": "qwen-image-edit-plus"}
    assert items[2]["form"]["fields"][-1] == ["file", "my cat.png"]
    assert base64.b64decode(items[2]["form"]["files"]["file"]["data_base64"])[:4] == b"\x89PNG"


# --- robustness ----------------------------------------------------------------------------------
def raw(emu, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", emu.port), timeout=5) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            got = s.recv(65536)
            if not got:
                return b"".join(chunks)
            chunks.append(got)


def test_garbage_never_crashes(emu, monkeypatch):
    for body in (b"", b"{", b"\xff\xfe garbage", b"[1, 2]", b"null", b"[" * 100000 + b"]" * 100000,
                 json.dumps({"model": {"x": 1}}).encode()):
        r = post(emu, body)
        assert 400 <= r.status_code < 500 and r.json()["code"], body[:20]
    assert_error(post(emu, t2i(), path="/services/nothing"), 404, "NotFound")
    r = requests.post(emu.base_url + GEN, data=json.dumps(t2i()), headers=AUTH, timeout=10)
    assert_error(r, 400, "InvalidParameter", "Content-Type")
    assert_error(requests.get(emu.base_url + GEN, headers=AUTH, timeout=10), 405, "MethodNotAllowed")
    assert requests.delete(emu.base_url + "/tasks/x", headers=AUTH, timeout=10).status_code == 405

    monkeypatch.setattr(emu_handler, "MAX_API_BODY", 1000)
    assert_error(post(emu, b"x" * 5000), 413, "BadRequest.TooLarge")
    monkeypatch.undo()

    assert b'"code": "BadRequest"' in raw(emu, b"GARBAGE\r\n\r\n")
    request_line = b"POST /api/v1" + GEN.encode() + b" HTTP/1.1\r\n"
    assert raw(emu, request_line + b"Content-Length: nope\r\n\r\n").startswith(b"HTTP/1.1 400")
    assert raw(emu, request_line + b"Content-Length: 100\r\n\r\n{}").startswith(b"HTTP/1.1 400")
    chunked = json.dumps(t2i()).encode()
    reply = raw(emu, request_line + b"Host: x\r\nAuthorization: Bearer " + KEY.encode()
                + b"\r\nContent-Type: application/json; charset=utf-8\r\nTransfer-Encoding: chunked"
                + b"\r\nConnection: close\r\n\r\n"
                + f"{len(chunked):x}\r\n".encode() + chunked + b"\r\n0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200")
    assert post(emu, t2i()).status_code == 200  # still alive


def test_keep_alive_across_errors(emu):
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=5)
    try:
        for body, status in ((b"{bad", 400), (json.dumps(t2i()).encode(), 200), (b"[]", 400)):
            conn.request("POST", "/api/v1" + GEN, body=body, headers={**AUTH, "Content-Type": "application/json"})
            resp = conn.getresponse()
            assert resp.status == status
            assert resp.getheader("Content-Length") is not None
            resp.read()
        conn.request("GET", "/nowhere")
        resp = conn.getresponse()
        assert resp.status == 404 and json.loads(resp.read())["code"] == "NotFound"
    finally:
        conn.close()


def test_concurrent_requests(emu):
    errors = []

    def worker(i):
        try:
            r = post(emu, t2i(seed=i, size="928*1664"))
            assert r.status_code == 200
            assert requests.get(urls_of(r)[0], timeout=10).status_code == 200
        except Exception as exc:  # noqa: BLE001 - any failure must fail the test; in a thread it would only be printed
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(emu.calls("generation")) == 8


def test_serve_forever_and_stop():
    emu = Emulator()
    runner = threading.Thread(target=emu.serve_forever, daemon=True)
    runner.start()
    deadline = time.time() + 60
    while not emu.base_url and time.time() < deadline:
        time.sleep(0.01)
    while time.time() < deadline:
        try:
            if post(emu, t2i()).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.02)
    emu.stop()
    runner.join(5)
    assert not runner.is_alive()
    with pytest.raises(requests.ConnectionError):
        post(emu, t2i())
