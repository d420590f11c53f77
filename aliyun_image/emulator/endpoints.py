"""The emulated service: one function per endpoint, from a :class:`Recorded` request to an :class:`HttpReply`.

No sockets here (see :mod:`.handler`); state lives on the :class:`~.state.EmulatorState` passed in.
Order of checks follows the service: authentication, then headers, then the body.
"""

from __future__ import annotations

import hashlib
import re
from email.utils import formatdate
from typing import TYPE_CHECKING
from urllib.parse import unquote

from ..catalog import ASYNC, ASYNC_GENERATION, EDIT, T2I
from .errors import ServiceError
from .faults import TaskOutcome
from .multipart import Part
from .render import RenderSpec
from .sizes import edit_default_size
from .tasks import extended_prompt
from .replies import XML_TYPE, HttpReply, error_reply, json_reply, new_request_id, oss_error_reply
from .validate import (
    MSG_ASYNC_HEADER, MSG_BAD_KEY, MSG_NO_KEY, ImageOrder, parse_generation, parse_json, parse_task,
    served_model,
)

if TYPE_CHECKING:
    from .records import Recorded
    from .state import EmulatorState

BASE = "/api/v1"
GENERATION_PATH = BASE + "/services/aigc/multimodal-generation/generation"
TASK_CREATE_PATH = BASE + "/services/aigc/text2image/image-synthesis"
IMAGE_TASK_PATH = BASE + "/services/aigc/image-generation/generation"  # the 3.0 line's async tasks
UPLOADS_PATH = BASE + "/uploads"
_TASK_RE = re.compile(r"^" + re.escape(BASE) + r"/tasks/([^/]+)$")
_CANCEL_RE = re.compile(r"^" + re.escape(BASE) + r"/tasks/([^/]+)/cancel$")
_RESULT_RE = re.compile(r"^/results/([0-9a-f]{32})\.png$")
MSG_CANCEL = "Failed to cancel the task, please confirm if the task is in PENDING status."


def route(method: str, path: str) -> str:
    """The endpoint name for ``method path`` (``"other"`` when nothing matches)."""
    get = method in ("GET", "HEAD")
    if path == GENERATION_PATH and method == "POST":
        return "generation"
    if path == TASK_CREATE_PATH and method == "POST":
        return "task_create"
    if path == IMAGE_TASK_PATH and method == "POST":
        return "image_task_create"
    if _CANCEL_RE.match(path) and method == "POST":
        return "task_cancel"
    if _TASK_RE.match(path) and get:
        return "task_get"
    if path == UPLOADS_PATH and get:
        return "policy"
    if path == "/oss" and method == "POST":
        return "oss"
    if path.startswith("/results/") and get:
        return "download"
    return "other"


def _known_path(path: str) -> bool:
    return (path in (GENERATION_PATH, TASK_CREATE_PATH, IMAGE_TASK_PATH, UPLOADS_PATH, "/oss")
            or bool(_TASK_RE.match(path) or _CANCEL_RE.match(path)) or path.startswith("/results/"))


def authenticate(state: EmulatorState, rec: Recorded) -> None:
    """Raise 401 InvalidApiKey unless the request carries an accepted ``Bearer`` key."""
    value = rec.headers.get("authorization", "").strip()
    scheme, _, key = value.partition(" ")
    key = key.strip()
    if not value or (scheme.lower() == "bearer" and not key):
        raise ServiceError(401, "InvalidApiKey", MSG_NO_KEY)
    if scheme.lower() != "bearer" or not state.key_ok(key):
        raise ServiceError(401, "InvalidApiKey", MSG_BAD_KEY)


def bearer_key(rec: Recorded) -> str:
    """The key an authenticated request carries (the account whose limits it counts against)."""
    return rec.headers.get("authorization", "").strip().partition(" ")[2].strip()


def require_json(rec: Recorded) -> None:
    """The service requires ``Content-Type: application/json`` on POSTs with a JSON body."""
    ctype = rec.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise ServiceError(400, "InvalidParameter", "Content-Type must be application/json.")


def dispatch(state: EmulatorState, rec: Recorded, parts: list[Part] | None) -> HttpReply:
    """Answer ``rec`` (already recorded, faults already applied)."""
    ep = rec.endpoint
    try:
        if ep == "generation":
            return generation(state, rec)
        if ep == "task_create":
            return task_create(state, rec)
        if ep == "image_task_create":
            return image_task_create(state, rec)
        if ep == "task_get":
            return task_get(state, rec)
        if ep == "task_cancel":
            return task_cancel(state, rec)
        if ep == "policy":
            return policy(state, rec)
        if ep == "oss":
            return oss_upload(state, rec, parts)
        if ep == "download":
            return download(state, rec)
        if _known_path(rec.path):
            return error_reply(405, "MethodNotAllowed", f"Method {rec.method} is not allowed for {rec.path}.")
        return error_reply(404, "NotFound", f"The requested path {rec.path} was not found.")
    except ServiceError as err:
        return error_reply(err.status, err.code, err.message, err.headers)


# --- synchronous generation ----------------------------------------------------------------------
def _recipes(state: EmulatorState, order: ImageOrder, size: tuple[int, int],
             inputs: tuple[str, ...]) -> list[RenderSpec]:
    seed = order.seed if order.seed is not None else state.random_seed()
    return [RenderSpec(order.model, order.prompt, order.negative, seed, size[0], size[1], inputs, order.watermark, i)
            for i in range(order.n)]


def _note(rec: Recorded, order: ImageOrder, size: tuple[int, int]) -> None:
    """Keep what the emulator understood on the record (:attr:`Recorded.order`)."""
    rec.order = {"model": order.model, "task": str(order.task), "size": f"{size[0]}*{size[1]}", "n": order.n,
                 "prompt_extend": order.prompt_extend, "negative_prompt": order.negative,
                 "watermark": order.watermark, "prompt_extend_mode": order.extend_mode,
                 "enable_thinking": order.thinking}


def rewrite_status(order: ImageOrder) -> dict:
    """``output.rewrite_status`` for the models that take the rewriting's options (the 3.0 line).
    The values are stand-ins: the documentation names the field, not its values."""
    if not order.spec.accepts("prompt_extend_mode"):
        return {}
    return {"rewrite_status": "success" if order.prompt_extend else "skipped"}


def _rewritten(order: ImageOrder) -> list[dict]:
    """With prompt_extend on, the prompt the model drew from, as a ``text`` item after the images
    (the sync reply's counterpart of the task API's ``actual_prompt``; see the protocol notes)."""
    return [{"text": extended_prompt(order.prompt)}] if order.prompt_extend else []


# Content moderation: a prompt with one of these words is refused as the service refuses flagged
# content (sync: 400 DataInspectionFailed; a task: FAILED with that code), so the product's
# "not billed" path can be exercised without scripting a fault.
MODERATION_WORDS = ("违禁内容", "moderation-refuse")
MSG_MODERATION = "Input or output data may contain inappropriate content."
QIMA_2K_PIXELS = 2_250_000  # the 3.0 reference: qima_output_2k above this output area


def moderated(prompt: str) -> bool:
    """True when the emulator's content moderation refuses ``prompt`` (see :data:`MODERATION_WORDS`)."""
    return any(word in prompt for word in MODERATION_WORDS)


def usage_of(order: ImageOrder, size: tuple[int, int], inputs: list) -> dict:
    """The reply's ``usage``: the size and count; for the 3.0 line (the models that bill input
    images) also the billed classes the 3.0 reference documents: ``output_image_type``
    ``qima_output_1k``/``_2k`` by output area, input counts (the type present even without input)."""
    usage: dict = {"width": size[0], "height": size[1], "image_count": order.n}
    if order.spec.price_input:
        biggest = max((i.width * i.height for i in inputs), default=0)
        usage.update(output_image_count=order.n,
                     output_image_type="qima_output_2k" if size[0] * size[1] > QIMA_2K_PIXELS else "qima_output_1k",
                     input_image_count=len(inputs),
                     input_image_type="qima_input_2k" if biggest > QIMA_2K_PIXELS else "qima_input_1k")
    return usage


def generation(state: EmulatorState, rec: Recorded) -> HttpReply:
    """``POST .../multimodal-generation/generation``: text-to-image or edit, answer in the reply."""
    authenticate(state, rec)
    require_json(rec)
    order = parse_generation(parse_json(rec.body), state.region)
    inputs, size = _inputs_and_size(state, rec, order)
    if moderated(order.prompt):  # refused before anything is made: nothing billed
        raise ServiceError(400, "DataInspectionFailed", MSG_MODERATION)
    with state.task_slot(bearer_key(rec), rec):  # the account's limit: 429 beyond it, nothing generated
        _note(rec, order, size)
        recipes = _recipes(state, order, size, tuple(i.sha for i in inputs))
        urls = state.mint_urls([state.results.add(r) for r in recipes])
        output: dict = {"choices": [{
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": [{"image": u} for u in urls] + _rewritten(order)},
        }], **rewrite_status(order)}
        # task_metric: in the max/plus text-to-image docs only (not for edits, not for the 2.0 family).
        if order.task == T2I and not order.spec.does(EDIT):
            output["task_metric"] = {"TOTAL": order.n, "SUCCEEDED": order.n, "FAILED": 0}
        state.sleep_latency(rec, images=order.n)
    return json_reply({"output": output, "usage": usage_of(order, size, inputs), "request_id": new_request_id()})


def _inputs_and_size(state: EmulatorState, rec: Recorded, order: ImageOrder) -> tuple[list, tuple[int, int]]:
    """The request's input images, resolved, and the output size (an edit without one:
    ~1024*1024 at the last image's aspect ratio)."""
    resolve_oss = rec.headers.get("x-dashscope-ossresourceresolve", "").strip().lower() == "enable"
    inputs = [state.resolver.resolve(ref, model=order.model, oss_resolve=resolve_oss) for ref in order.images]
    size = order.size
    if size is None:
        size = edit_default_size(order.spec.size_rule(EDIT), inputs[-1].width, inputs[-1].height)
    return inputs, size


# --- async tasks ---------------------------------------------------------------------------------
def image_task_create(state: EmulatorState, rec: Recorded) -> HttpReply:
    """``POST .../image-generation/generation`` with ``X-DashScope-Async: enable``: the 3.0 line's
    async task API, the sync endpoint's messages body (edits included), answered with a task id."""
    authenticate(state, rec)
    if rec.headers.get("x-dashscope-async", "").strip().lower() != "enable":
        raise ServiceError(403, "AccessDenied", MSG_ASYNC_HEADER)  # the docs: this path takes async calls only
    require_json(rec)
    order = parse_generation(parse_json(rec.body), state.region, mode=ASYNC)
    inputs, size = _inputs_and_size(state, rec, order)
    with state.task_slot(bearer_key(rec), rec) as account:  # a created task counts until it ends
        _note(rec, order, size)
        tokens = [state.results.add(r) for r in _recipes(state, order, size, tuple(i.sha for i in inputs))]
        outcome = state.faults.take_outcome()
        if moderated(order.prompt):  # the output check fails the task
            outcome = TaskOutcome("FAILED", "DataInspectionFailed", MSG_MODERATION)
        task = state.tasks.create(order, tokens, state.task_delay, outcome)
        task.usage = usage_of(order, size, inputs)  # what its finished poll reports as billed
        state.add_task(account, task)
        state.sleep_latency(rec)
    return json_reply({"output": {"task_status": "PENDING", "task_id": task.id}, "request_id": new_request_id()})


def _as_messages(task, body: dict) -> dict:
    """A finished 3.0-line task's poll reply: the sync reply's ``choices`` instead of ``results``
    (as third-party clients read it; unverified, see the protocol notes section 4.4), and
    ``rewrite_status``."""
    out = body.get("output", {})
    results = out.pop("results", None)
    if results is None:
        return body
    content = [{"image": r["url"]} for r in results]
    content += [{"text": results[0]["actual_prompt"]}] if results and results[0].get("actual_prompt") else []
    out["choices"] = [{"finish_reason": "stop", "message": {"role": "assistant", "content": content}}]
    out.update(rewrite_status(task.order))
    if task.usage:  # the sync reply's usage, size classes included (as unverified as the shape)
        body["usage"] = task.usage
    return body


def task_create(state: EmulatorState, rec: Recorded) -> HttpReply:
    """``POST .../text2image/image-synthesis`` with ``X-DashScope-Async: enable``."""
    authenticate(state, rec)
    if rec.headers.get("x-dashscope-async", "").strip().lower() != "enable":
        raise ServiceError(403, "AccessDenied", MSG_ASYNC_HEADER)
    require_json(rec)
    order = parse_task(parse_json(rec.body), state.region)
    assert order.size is not None  # parse_task always decides the size (there are no inputs)
    with state.task_slot(bearer_key(rec), rec) as account:  # a created task counts until it ends
        _note(rec, order, order.size)
        tokens = [state.results.add(r) for r in _recipes(state, order, order.size, ())]
        outcome = state.faults.take_outcome()
        if moderated(order.prompt):  # the output check fails the task
            outcome = TaskOutcome("FAILED", "DataInspectionFailed", MSG_MODERATION)
        task = state.tasks.create(order, tokens, state.task_delay, outcome)
        state.add_task(account, task)
        state.sleep_latency(rec)
    return json_reply({"output": {"task_status": "PENDING", "task_id": task.id}, "request_id": new_request_id()})


def _task_id(rec: Recorded) -> str:
    return unquote(rec.path[len(BASE + "/tasks/"):].split("/")[0])


def task_get(state: EmulatorState, rec: Recorded) -> HttpReply:
    """``GET /tasks/{id}``: status from the task clock; unknown ids say UNKNOWN (HTTP 200)."""
    authenticate(state, rec)
    task_id = _task_id(rec)
    task = state.tasks.get(task_id)
    if task is None:
        body = {"output": {"task_id": task_id, "task_status": "UNKNOWN"}}
    else:
        body = state.tasks.view(task, state.result_url)
        if task.order.spec.async_api == ASYNC_GENERATION:
            body = _as_messages(task, body)
    return json_reply({"request_id": new_request_id(), **body})


def task_cancel(state: EmulatorState, rec: Recorded) -> HttpReply:
    """``POST /tasks/{id}/cancel``: only PENDING tasks can be cancelled."""
    authenticate(state, rec)
    if not state.tasks.cancel(_task_id(rec)):
        raise ServiceError(400, "UnsupportedOperation", MSG_CANCEL)
    return json_reply({"request_id": new_request_id()})


# --- temporary upload ----------------------------------------------------------------------------
def policy(state: EmulatorState, rec: Recorded) -> HttpReply:
    """``GET /uploads?action=getPolicy&model=M``: an upload policy for the emulated OSS."""
    authenticate(state, rec)
    if rec.query.get("action") != "getPolicy":
        raise ServiceError(400, "InvalidParameter", "Parameter 'action' must be getPolicy.")
    model = rec.query.get("model", "")
    if not model:
        raise ServiceError(400, "BadRequest.EmptyModel", "Required parameter 'model' missing from request.")
    served_model(model, state.region)
    data = state.bucket.issue(model, state.origin + "/oss", state.policy_ttl)
    return json_reply({"request_id": new_request_id(), "data": data})


def oss_upload(state: EmulatorState, rec: Recorded, parts: list[Part] | None) -> HttpReply:
    """``POST {origin}/oss``: the OSS PostObject form upload (no DashScope auth)."""
    if parts is None:
        return oss_error_reply(400, "MalformedPOSTRequest",
                               "The body of your POST request is not well-formed multipart/form-data.")
    try:
        key, status = state.bucket.upload(parts)
    except ServiceError as err:
        return oss_error_reply(err.status, err.code, err.message, err.extra)
    obj = state.bucket.get(key)
    etag = '"' + hashlib.md5(obj.data if obj else b"").hexdigest().upper() + '"'
    headers = {"x-oss-request-id": new_request_id().replace("-", "")[:24].upper(), "ETag": etag}
    if status == 201:
        xml = ('<?xml version="1.0" encoding="UTF-8"?>\n<PostResponse>\n'
               f"  <Bucket>dashscope-file-emulator</Bucket>\n  <Key>{key}</Key>\n  <ETag>{etag}</ETag>\n"
               "</PostResponse>\n")
        return HttpReply(201, xml.encode(), XML_TYPE, headers)
    return HttpReply(status, b"", None, headers)


# --- result downloads ----------------------------------------------------------------------------
def download(state: EmulatorState, rec: Recorded) -> HttpReply:
    """``GET /results/<token>.png?Expires&OSSAccessKeyId&Signature``: the rendered PNG."""
    m = _RESULT_RE.match(rec.path)
    if not m:
        return oss_error_reply(404, "NoSuchKey", "The specified key does not exist.")
    token = m.group(1)
    problem = state.results.check(token, rec.query)
    if problem is not None:
        status, code, message = problem
        extra = None
        if message == "Request has expired.":
            extra = {"Expires": rec.query.get("Expires", ""), "ServerTime": formatdate(usegmt=True)}
        return oss_error_reply(status, code, message, extra)
    data = state.results.png(token)
    if data is None:
        return oss_error_reply(404, "NoSuchKey", "The specified key does not exist.")
    return HttpReply(200, data, "image/png", {
        "ETag": '"' + hashlib.md5(data).hexdigest().upper() + '"',
        "Last-Modified": formatdate(usegmt=True),
        "x-oss-request-id": new_request_id().replace("-", "")[:24].upper(),
    })
