"""The HTTP client over real HTTP against the emulator: wire format, retries, typed errors."""

import json
import socket

import pytest

from aliyun_image.dashscope.client import DashScopeClient
from aliyun_image.config import Settings
from aliyun_image.errors import ApiError, DownloadError, NetworkError, OutcomeUnknownError

from .conftest import TEST_KEY

T2I_BODY = {
    "model": "qwen-image-plus",
    "input": {"messages": [{"role": "user", "content": [{"text": "一只橘猫在阳光下打盹"}]}]},
    "parameters": {"negative_prompt": "低画质", "size": "1328*1328", "prompt_extend": True,
                   "watermark": False, "seed": 42},
}


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def client(settings, sleeps):
    c = DashScopeClient(settings, sleep=sleeps.append)
    yield c
    c.close()


def test_generate_wire_format(client, emu):
    reply = client.generate(TEST_KEY, T2I_BODY)
    assert reply.request_id and reply.retries == 0
    url = reply.data["output"]["choices"][0]["message"]["content"][0]["image"]
    assert url.startswith(emu.origin)
    (rec,) = emu.calls("generation")
    assert rec.method == "POST" and rec.path.endswith("/services/aigc/multimodal-generation/generation")
    assert rec.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert rec.headers["content-type"].startswith("application/json")
    assert rec.json == T2I_BODY
    assert "一只橘猫".encode() in rec.body  # UTF-8 raw, like the SDK (ensure_ascii=False)
    assert "x-dashscope-ossresourceresolve" not in rec.headers


def test_429_retry_after_is_honoured(client, emu, sleeps):
    emu.fail(status=429, code="Throttling.RateQuota", message="Requests rate limit exceeded", times=2,
             retry_after=1)
    reply = client.generate(TEST_KEY, T2I_BODY)
    assert reply.retries == 2 and sleeps == [1.0, 1.0]
    assert len(emu.calls("generation")) == 3


def test_5xx_burst_then_success_with_backoff(client, emu, sleeps):
    emu.fail(status=500, code="InternalError", times=1)
    emu.fail(status=502, body=b"<html>502 Bad Gateway</html>", content_type="text/html", times=1)
    emu.fail(status=503, code="ModelUnavailable", times=1)
    reply = client.generate(TEST_KEY, T2I_BODY)
    assert reply.retries == 3 and len(sleeps) == 3
    assert all(0 < s <= 0.1 for s in sleeps)  # backoff capped by settings


def test_retries_exhausted_reports_count(client, emu):
    emu.fail(status=429, code="Throttling.RateQuota", times=10)
    with pytest.raises(ApiError) as ei:
        client.generate(TEST_KEY, T2I_BODY)
    e = ei.value
    assert e.code == "Throttling.RateQuota" and e.status == 429 and e.retries == 3
    assert "3" in e.en and "3" in e.zh and e.request_id
    assert len(emu.calls("generation")) == 4


def test_non_json_error_body(client, emu):
    emu.fail(status=502, body=b"<html><body>Bad Gateway</body></html>", content_type="text/html", times=10)
    with pytest.raises(ApiError) as ei:
        client.generate(TEST_KEY, T2I_BODY)
    assert ei.value.status == 502 and "Bad Gateway" in ei.value.en
    assert "<" not in ei.value.en and "<" not in ei.value.zh  # words, not markup


def test_input_image_the_service_cannot_fetch_says_so(client, emu):
    emu.fail(status=400, code="InvalidParameter", message="Download the media resource timed out.", times=1)
    with pytest.raises(ApiError) as ei:
        client.generate(TEST_KEY, T2I_BODY)
    assert ei.value.code == "InvalidParameter"  # the service's own code is kept for support
    assert "could not download the input image" in ei.value.en and "public" in ei.value.en
    assert "无法下载输入图片" in ei.value.zh and "size" not in ei.value.en


def test_upload_time_allowed_grows_with_the_file(settings):
    from aliyun_image.dashscope.client import DashScopeClient

    c = DashScopeClient(settings.with_(read_timeout=300.0))
    assert c._upload_timeout(1000) == 300.0  # --timeout applies to uploads too
    assert c._upload_timeout(10 * 1024 * 1024) > 300.0  # 10 MB on a slow line gets longer


@pytest.mark.parametrize("status,code", [(400, "InvalidParameter"), (400, "DataInspectionFailed"),
                                         (403, "AccessDenied.Unpurchased"), (400, "Arrearage")])
def test_client_errors_are_not_retried(client, emu, status, code):
    emu.fail(status=status, code=code, message="nope", times=5)
    with pytest.raises(ApiError) as ei:
        client.generate(TEST_KEY, T2I_BODY)
    assert ei.value.code == code and len(emu.calls("generation")) == 1


def test_wrong_key(client, emu):
    with pytest.raises(ApiError) as ei:
        client.generate("sk-invalid-key-000", T2I_BODY)
    e = ei.value
    assert e.code == "InvalidApiKey" and e.status == 401
    assert "sk-invalid-key-000" not in e.text("en") + e.text("zh")
    assert len(emu.calls("generation")) == 1


def test_unknown_model(client, emu):
    with pytest.raises(ApiError) as ei:
        client.generate(TEST_KEY, {**T2I_BODY, "model": "qwen-image-ultra"})
    assert ei.value.code == "ModelNotFound" and "qwen-image-ultra" in ei.value.en


def test_read_timeout_on_generation_is_not_retried(settings, emu):
    c = DashScopeClient(settings.with_(read_timeout=0.3), sleep=lambda s: None)
    emu.fault("hang", seconds=1.0)
    with pytest.raises(OutcomeUnknownError) as ei:
        c.generate(TEST_KEY, T2I_BODY)
    assert "billed" in ei.value.en and "计费" in ei.value.zh
    assert len(emu.calls("generation")) == 1


def test_reset_after_send_is_never_resent(client, emu):
    emu.fault("reset", times=1)
    with pytest.raises(OutcomeUnknownError) as ei:
        client.generate(TEST_KEY, T2I_BODY)
    assert len(emu.calls("generation")) == 1, "a request that may have been billed is not sent twice"
    assert "billed" in ei.value.en


@pytest.mark.parametrize("value,expected", [("2", 2.0), ("0.5", 0.5), ("soon", None), ("", None),
                                            ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)])
def test_retry_after_parsing_never_raises(value, expected):
    import requests as rq

    from aliyun_image.dashscope.client import _retry_after
    r = rq.Response()
    r.headers["Retry-After"] = value
    assert _retry_after(r) == expected


@pytest.mark.parametrize("code", ["PrepaidBillOverdue", "Throttling.AllocationQuota"])
def test_non_transient_429_is_not_retried(client, emu, code):
    emu.fail(status=429, code=code, message="quota", times=5)
    with pytest.raises(ApiError):
        client.generate(TEST_KEY, T2I_BODY)
    assert len(emu.calls("generation")) == 1


def test_connection_refused_is_retried_then_reported(settings, sleeps):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    c = DashScopeClient(settings.with_(base_url=f"http://127.0.0.1:{port}/api/v1"), sleep=sleeps.append)
    with pytest.raises(NetworkError) as ei:
        c.generate(TEST_KEY, T2I_BODY)
    assert ei.value.code == "Network.refused" and ei.value.retries == 3 and len(sleeps) == 3


def test_async_task_roundtrip(client, emu):
    body = {"model": "qwen-image", "input": {"prompt": "a lighthouse"},
            "parameters": {"size": "1328*1328", "n": 1, "prompt_extend": True, "watermark": False, "seed": 7}}
    created = client.create_task(TEST_KEY, body)
    tid = created.data["output"]["task_id"]
    (rec,) = emu.calls("task_create")
    assert rec.headers["x-dashscope-async"] == "enable" and rec.json == body
    seen = []
    done = client.wait_task(TEST_KEY, tid, on_status=seen.append)
    # wait_task returns the typed result (protocol.Generation), not the raw reply
    assert seen[-1] == "SUCCEEDED" and done.urls[0].startswith("http") and done.request_id
    assert done.actual_prompt  # prompt_extend was on: the service says what it actually used


@pytest.mark.parametrize("outcome", ["FAILED", "UNKNOWN"])
def test_async_task_failures(client, emu, outcome):
    emu.task_outcome(outcome, code="InternalError.Algo", message="model crashed")
    body = {"model": "qwen-image", "input": {"prompt": "x"}, "parameters": {"n": 1}}
    tid = client.create_task(TEST_KEY, body).data["output"]["task_id"]
    with pytest.raises(ApiError) as ei:
        client.wait_task(TEST_KEY, tid)
    assert ei.value.zh and ei.value.en
    if outcome == "FAILED":
        assert ei.value.code == "InternalError.Algo"


def test_upload_flow_wire(client, emu):
    policy = client.upload_policy(TEST_KEY, "qwen-image-edit-plus")
    ref = client.upload(policy, "my photo.png", b"\x89PNG fake", "image/png")
    assert ref == f"oss://{policy['upload_dir']}/my photo.png"
    (pol,) = emu.calls("policy")
    assert pol.query == {"action": "getPolicy", "model": "qwen-image-edit-plus"}
    (oss,) = emu.calls("oss")
    assert "authorization" not in oss.headers
    names = [name for name, _ in oss.form["fields"]]
    assert names == ["OSSAccessKeyId", "Signature", "policy", "key", "x-oss-object-acl",
                     "x-oss-forbid-overwrite", "success_action_status", "x-oss-content-type", "file"]


def test_download_allow_list(client):
    import io
    for url in ("http://169.254.169.254/latest/meta-data", "http://10.0.0.1/x.png", "file:///etc/passwd",
                "https://evil.example.com/x.png", "https://aliyuncs.com.evil.io/x.png"):
        with pytest.raises(DownloadError) as ei:
            client.download(url, io.BytesIO())
        assert ei.value.code == "Download.HostNotAllowed"


def test_download_allows_aliyuncs_pattern(settings, emu):
    c = DashScopeClient(settings)
    c.check_host("https://dashscope-result-bj.oss-cn-beijing.aliyuncs.com/x.png")  # no raise
    c.check_host(f"{emu.origin}/results/x.png")  # the configured base: same host and port
    with pytest.raises(DownloadError):
        c.check_host("http://127.0.0.1:1/results/x.png")  # same host, another port


def _result_url(client):
    return client.generate(TEST_KEY, T2I_BODY).data["output"]["choices"][0]["message"]["content"][0]["image"]


def test_download_truncated_is_retried(client, emu, tmp_path):
    url = _result_url(client)
    emu.download_fault("truncate", times=1)
    with open(tmp_path / "x.png", "wb+") as fh:
        client.download(url, fh)
    from PIL import Image
    with Image.open(tmp_path / "x.png") as im:
        im.load()
    assert len(emu.calls("download")) == 2


def test_download_retry_after_and_malformed_content_length(client, emu, tmp_path, sleeps):
    url = _result_url(client)
    emu.fail("download", status=503, code="ServiceUnavailable", retry_after=1, times=1)
    with open(tmp_path / "y.png", "wb+") as fh:
        client.download(url, fh)
    assert sleeps == [1.0]
    from aliyun_image.dashscope.client import _content_length
    assert _content_length("12, 12") == 12 and _content_length("abc") == 0 and _content_length(None) == 0


def test_download_expired(client, emu, tmp_path):
    url = _result_url(client)
    emu.download_fault("expired")
    with open(tmp_path / "x.png", "wb+") as fh, pytest.raises(DownloadError) as ei:
        client.download(url, fh)
    assert ei.value.code == "Download.Expired" and "24" in ei.value.en


def test_body_is_never_ascii_escaped_and_key_not_in_body(client, emu):
    client.generate(TEST_KEY, T2I_BODY)
    (rec,) = emu.calls("generation")
    assert TEST_KEY.encode() not in rec.body
    assert json.loads(rec.body.decode("utf-8")) == T2I_BODY


def test_settings_repr_hides_key():
    s = Settings.from_env(api_key="sk-secret-123456789")
    assert "sk-secret" not in repr(s)
