"""The DashScope wire format in one place: paths, headers, request bodies, typed replies.

Nothing here does I/O. The client (:mod:`.client`) sends what this module builds and hands
back the JSON; the service (:mod:`.service`) turns that JSON into typed results with the
parsers below. The shapes follow ``docs/dashscope-protocol.md`` (section numbers below refer to
it), which was checked against the official ``dashscope`` SDK.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import parse_qs, urlsplit
from typing import TYPE_CHECKING, Any

from ..catalog import ASYNC_GENERATION, ModelSpec
from ..errors import bad_reply, is_moderation

if TYPE_CHECKING:  # only for annotations: jobs imports nothing from here
    from ..jobs import Job

URL_TTL = 24 * 3600  # result URLs live 24 h (section 3.3)

# --- paths and headers (sections 2-5) ------------------------------------------------------------
GENERATION_PATH = "/services/aigc/multimodal-generation/generation"
TASK_CREATE_PATH = "/services/aigc/text2image/image-synthesis"
# The 3.0 line's async task API: the messages body of the sync endpoint, answered with a task id.
IMAGE_TASK_PATH = "/services/aigc/image-generation/generation"
UPLOAD_POLICY_PATH = "/uploads"
ASYNC_HEADER = {"X-DashScope-Async": "enable"}
# Tells the service that ``oss://`` references in the body point at temporary uploads (section 5).
OSS_RESOLVE_HEADER = {"X-DashScope-OssResourceResolve": "enable"}
JSON_TYPE = "application/json; charset=utf-8"


def task_create_path(spec: ModelSpec) -> str:
    """Where ``spec``'s async tasks are created: the catalogue's ``async_api`` (section 4.1 / 4.4)."""
    return IMAGE_TASK_PATH if spec.async_api == ASYNC_GENERATION else TASK_CREATE_PATH


def task_path(task_id: str) -> str:
    """Where one async task is polled (section 4.2)."""
    return f"/tasks/{task_id}"


def task_cancel_path(task_id: str) -> str:
    """Where a PENDING task is cancelled (section 4.3)."""
    return f"/tasks/{task_id}/cancel"


def encode(body: Any) -> bytes:
    """JSON body bytes as the official SDK sends them: UTF-8, non-ASCII kept raw."""
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


# --- request bodies (sections 3.1 and 4.1) -------------------------------------------------------
def _parameters(job: Job, seed: int) -> dict[str, Any]:
    """The optional parameters the model accepts (an unknown model gets all of them)."""
    spec = job.spec
    params: dict[str, Any] = {}
    if job.negative and spec.accepts("negative_prompt"):
        params["negative_prompt"] = job.negative
    if spec.accepts("prompt_extend"):
        params["prompt_extend"] = job.prompt_extend
    # The rewriting's own options: only when asked for (None leaves the service's default).
    if job.extend_mode is not None and spec.accepts("prompt_extend_mode"):
        params["prompt_extend_mode"] = job.extend_mode
    if job.thinking is not None and spec.accepts("enable_thinking"):
        params["enable_thinking"] = job.thinking
    if spec.accepts("watermark"):
        params["watermark"] = job.watermark
    if spec.accepts("seed"):
        params["seed"] = seed
    return params


def sync_body(job: Job, seed: int, image_refs: Sequence[str]) -> dict:
    """Body for ``multimodal-generation/generation``: images first, then the text (section 3.1)."""
    content: list[dict] = [{"image": ref} for ref in image_refs]
    content.append({"text": job.prompt})
    params = _parameters(job, seed)
    negative = params.pop("negative_prompt", None)
    # Key order as the SDK sends it (negative_prompt, size, n, then the switches).
    ordered: dict[str, Any] = {"negative_prompt": negative} if negative else {}
    if job.size:
        ordered["size"] = job.size
    if job.spec.n_max > 1:
        ordered["n"] = job.per_request
    ordered.update(params)
    return {"model": job.model, "input": {"messages": [{"role": "user", "content": content}]},
            "parameters": ordered}


def task_body(job: Job, seed: int, image_refs: Sequence[str] = ()) -> dict:
    """Body of an async task for ``job``'s model: the messages body on the 3.0 line's
    ``image-generation`` API (section 4.4), else the legacy ``input.prompt`` body."""
    if job.spec.async_api == ASYNC_GENERATION:
        return sync_body(job, seed, image_refs)
    return async_body(job, seed)


def async_body(job: Job, seed: int) -> dict:
    """Body for an async ``text2image/image-synthesis`` task: the prompt sits in ``input``
    directly, the negative prompt too (section 4.1)."""
    params = _parameters(job, seed)
    inp = {"prompt": job.prompt}
    negative = params.pop("negative_prompt", None)
    if negative:
        inp["negative_prompt"] = negative
    body_params: dict[str, Any] = {"n": 1, **params}
    if job.size:
        body_params["size"] = job.size
    return {"model": job.model, "input": inp, "parameters": body_params}


# --- replies (sections 3.3, 4.1, 4.2, 5, 6) ------------------------------------------------------
@dataclass(frozen=True)
class Reply:
    """A successful JSON reply: the parsed body, its request id and how many retries it took."""

    data: dict
    request_id: str
    retries: int = 0

    @property
    def output(self) -> dict:
        """The reply's ``output`` object (empty when absent or not an object)."""
        out = self.data.get("output")
        return out if isinstance(out, dict) else {}

    @property
    def usage(self) -> dict:
        """The reply's ``usage`` object (empty when absent)."""
        usage = self.data.get("usage")
        return usage if isinstance(usage, dict) else {}


@dataclass(frozen=True)
class Generation:
    """What one successful request produced: result URLs (valid 24 h), the prompt the service
    actually used (when it rewrote it), the request id, the usage block, and what the reply said
    of the rewriting (``output.rewrite_status``, the 3.0 line; None when absent)."""

    urls: tuple[str, ...]
    actual_prompt: str | None
    request_id: str
    usage: dict = field(default_factory=dict)
    rewrite_status: str | None = None


class TaskStatus(str, Enum):
    """An async task's ``output.task_status`` (section 4.2)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUSPENDED = "SUSPENDED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    UNKNOWN = "UNKNOWN"  # no such task, or it expired (task ids live 24 h)

    @property
    def finished(self) -> bool:
        """True once the task will not change any more."""
        return self in (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELED, TaskStatus.UNKNOWN)


@dataclass(frozen=True)
class TaskState:
    """One poll of an async task: its status, and for a finished one what it ended with."""

    status: TaskStatus
    generation: Generation | None = None  # SUCCEEDED only
    code: str = ""  # failed tasks: the service's code (or ``Task.Failed``...)
    message: str = ""


def rewrite_status(reply: Reply) -> str | None:
    """``output.rewrite_status`` as text (the 3.0 line's word on the rewriting), None when absent."""
    value = reply.output.get("rewrite_status")
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)[:200]


def parse_generation(reply: Reply) -> Generation:
    """The images of a sync reply; a 200 without any is a bad reply (section 3.3)."""
    try:
        content = reply.data["output"]["choices"][0]["message"]["content"]
        urls = [c["image"] for c in content if isinstance(c, dict) and c.get("image")]
        texts = [c["text"] for c in content if isinstance(c, dict) and c.get("text")]
    except (KeyError, IndexError, TypeError):
        raise bad_reply(200, "missing output.choices[0].message.content", reply.request_id) from None
    if not urls:
        raise bad_reply(200, "no image in the reply", reply.request_id)
    return Generation(tuple(str(u) for u in urls), texts[0] if texts else None, reply.request_id, reply.usage,
                      rewrite_status(reply))


def parse_task_id(reply: Reply) -> str:
    """The id of a task just created (section 4.1)."""
    task_id = str(reply.output.get("task_id") or "")
    if not task_id:
        raise bad_reply(200, "missing output.task_id", reply.request_id)
    return task_id


def parse_task(reply: Reply) -> TaskState:
    """One poll's outcome (section 4.2). Failure arrives as HTTP 200 with ``output.code``."""
    out = reply.output
    raw = str(out.get("task_status") or "")
    try:
        status = TaskStatus(raw)
    except ValueError:
        detail = "missing output.task_status" if not raw else f"unknown task_status {raw[:40]!r}"
        raise bad_reply(200, detail, reply.request_id, json.dumps(reply.data)[:200]) from None
    if status is TaskStatus.SUCCEEDED:
        refused = _moderated(reply)
        if refused is not None:  # every image refused by content moderation: a failed task, not billed
            return TaskState(TaskStatus.FAILED, code=refused[0], message=refused[1])
        return TaskState(status, generation=_task_generation(reply))
    if status.finished:
        message = str(out.get("message") or status.value)
        if status is TaskStatus.UNKNOWN:
            message = "task not found or expired (task ids live 24 h)"
        return TaskState(status, code=str(out.get("code") or f"Task.{status.value.title()}"), message=message)
    return TaskState(status)


def _moderated(reply: Reply) -> tuple[str, str] | None:
    """(code, message) when a SUCCEEDED task's results are all refusals by content moderation."""
    results = reply.output.get("results")
    if not isinstance(results, list) or not results:
        return None
    items = [r for r in results if isinstance(r, dict)]
    if not items or any(r.get("url") or not is_moderation(str(r.get("code") or "")) for r in items):
        return None
    return str(items[0]["code"]), str(items[0].get("message") or items[0]["code"])


def _task_generation(reply: Reply) -> Generation:
    """A finished task's images: ``output.results`` (the legacy task API, section 4.2), or the sync
    reply's ``output.choices`` (the 3.0 line's task API, whose shape is unverified: section 4.4)."""
    if "results" not in reply.output and "choices" in reply.output:
        return parse_generation(reply)
    results = reply.output.get("results")
    if not isinstance(results, list):
        raise bad_reply(200, "missing output.results", reply.request_id)
    hits = [r for r in results if isinstance(r, dict) and r.get("url")]
    if not hits:
        codes = [r.get("code") for r in results if isinstance(r, dict) and r.get("code")]
        raise bad_reply(200, f"task succeeded without images {codes or ''}".strip(), reply.request_id)
    return Generation(tuple(str(r["url"]) for r in hits), hits[0].get("actual_prompt"), reply.request_id,
                      reply.usage, rewrite_status(reply))


UPLOAD_POLICY_FIELDS = ("policy", "signature", "upload_dir", "upload_host", "oss_access_key_id")


def parse_upload_policy(reply: Reply) -> dict:
    """The signed OSS form policy of the temporary upload (section 5)."""
    data = reply.data.get("data")
    if not isinstance(data, dict) or any(k not in data for k in UPLOAD_POLICY_FIELDS):
        raise bad_reply(200, "upload policy without data", reply.request_id)
    return data


def upload_form(policy: dict, key: str, filename: str, data: bytes, mime: str) -> list[tuple[str, tuple]]:
    """The OSS form fields in the SDK's order (OSS requires ``file`` last, section 5)."""
    return [
        ("OSSAccessKeyId", (None, policy["oss_access_key_id"])),
        ("Signature", (None, policy["signature"])),
        ("policy", (None, policy["policy"])),
        ("key", (None, key)),
        ("x-oss-object-acl", (None, policy.get("x_oss_object_acl", "private"))),
        ("x-oss-forbid-overwrite", (None, policy.get("x_oss_forbid_overwrite", "true"))),
        ("success_action_status", (None, "200")),
        ("x-oss-content-type", (None, mime)),
        ("file", (filename, data)),
    ]


def oss_error(text: str) -> tuple[str, str]:
    """``(Code, Message)`` from an OSS XML error body (empty strings if absent)."""
    code = re.search(r"<Code>([^<]*)</Code>", text or "")
    msg = re.search(r"<Message>([^<]*)</Message>", text or "")
    return (code.group(1) if code else "", msg.group(1) if msg else "")


def error_fields(payload: dict) -> tuple[str, str, str]:
    """``(code, message, request_id)`` of an error body (section 6.1; some gateways say ``msg``)."""
    return (str(payload.get("code") or ""), str(payload.get("message") or payload.get("msg") or ""),
            str(payload.get("request_id") or ""))


def url_expiry(url: str, now: float | None = None) -> float:
    """When a result URL stops working: its ``Expires`` query parameter, else 24 h from now."""
    now = time.time() if now is None else now
    try:
        return float(parse_qs(urlsplit(url).query)["Expires"][0])
    except (KeyError, ValueError, IndexError):
        return now + URL_TTL
