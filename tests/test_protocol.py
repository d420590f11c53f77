"""The wire format module: typed replies, and the immutable error they raise."""

import pytest

from aliyun_image.dashscope import protocol
from aliyun_image.errors import ApiError, api_error
from aliyun_image.dashscope.protocol import Reply, TaskStatus
from aliyun_image.i18n import msg, t


def task_reply(status, **out):
    return Reply({"output": {"task_status": status, **out}, "usage": {"image_count": 1}}, "rid-1")


def test_sync_reply_becomes_a_generation():
    content = [{"image": "https://x/1.png"}, {"image": "https://x/2.png"}, {"text": "rewritten"}]
    gen = protocol.parse_generation(Reply({"output": {"choices": [{"message": {"content": content}}]},
                                           "usage": {"image_count": 2}}, "rid-2"))
    assert gen.urls == ("https://x/1.png", "https://x/2.png") and gen.actual_prompt == "rewritten"
    assert gen.request_id == "rid-2" and gen.usage == {"image_count": 2}


@pytest.mark.parametrize("data", [{}, {"output": {"choices": []}}, {"output": {"choices": [{"message": {
    "content": [{"text": "only text"}]}}]}}])
def test_sync_reply_without_images_is_a_bad_reply(data):
    with pytest.raises(ApiError) as ei:
        protocol.parse_generation(Reply(data, "rid"))
    assert ei.value.code == "BadReply" and ei.value.request_id == "rid"


def test_task_states():
    ok = protocol.parse_task(task_reply("SUCCEEDED", results=[{"url": "https://x/a.png", "actual_prompt": "p"}]))
    assert ok.status is TaskStatus.SUCCEEDED and ok.generation.urls == ("https://x/a.png",)
    assert ok.generation.actual_prompt == "p"
    running = protocol.parse_task(task_reply("RUNNING"))
    assert running.generation is None and not running.status.finished
    failed = protocol.parse_task(task_reply("FAILED", code="InternalError.Algo", message="boom"))
    assert failed.status.finished and (failed.code, failed.message) == ("InternalError.Algo", "boom")
    gone = protocol.parse_task(task_reply("UNKNOWN"))
    assert gone.code == "Task.Unknown" and "24 h" in gone.message


@pytest.mark.parametrize("status", ["", "EXPLODED"])
def test_a_task_status_we_do_not_know_is_a_bad_reply(status):
    with pytest.raises(ApiError) as ei:
        protocol.parse_task(task_reply(status))
    assert ei.value.code == "BadReply"


def test_succeeded_task_without_images_is_a_bad_reply():
    with pytest.raises(ApiError, match="without images"):
        protocol.parse_task(task_reply("SUCCEEDED", results=[{"code": "InternalError.Algo"}]))


@pytest.mark.parametrize("code", ["DataInspectionFailed", "data_inspection_failed", "DataInspection.Failed"])
def test_a_task_whose_every_image_moderation_refused_failed(code):
    """Content moderation in a task: its own answer, a failed task (not billed), not a bad reply."""
    state = protocol.parse_task(task_reply("SUCCEEDED", results=[{"code": code, "message": "flagged"}] * 2))
    assert state.status is protocol.TaskStatus.FAILED and state.code == code and state.generation is None
    mixed = protocol.parse_task(task_reply("SUCCEEDED", results=[{"code": code}, {"url": "https://x/1.png"}]))
    assert mixed.generation is not None and mixed.generation.urls == ("https://x/1.png",)


def test_oss_error_body():
    xml = "<Error><Code>AccessDenied</Code><Message>Request has expired.</Message></Error>"
    assert protocol.oss_error(xml) == ("AccessDenied", "Request has expired.")
    assert protocol.oss_error("<html>") == ("", "")


def test_errors_are_immutable_and_copied_with_new_text():
    err = api_error(429, "Throttling.RateQuota", "slow down", "rid", retries=3)
    with pytest.raises(AttributeError):
        err.msg = msg("error.cancelled")  # type: ignore[misc]
    other = err.with_text(msg("error.cancelled"))
    assert type(other) is ApiError and other is not err
    assert (other.code, other.status, other.request_id, other.retries) == ("Throttling.RateQuota", 429, "rid", 3)
    assert other.text("ja", details=False) == t("ja", "error.cancelled") and err.msg.key != "error.cancelled"
