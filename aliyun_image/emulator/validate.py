"""Request validation, as the real service does it, against :mod:`aliyun_image.catalog.spec`.

Turns a request body into an :class:`ImageOrder` or raises :class:`.errors.ServiceError`
(HTTP status, DashScope code, message). Nothing here touches the network or images;
resolving image references is the server's job (:mod:`.inputs`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from ..catalog import (
    ASYNC, ASYNC_GENERATION, ASYNC_SYNTHESIS, EDIT, PROMPT_EXTEND_MODES, SEED_MAX, SYNC, T2I, ModelSpec, check_size,
    get_model,
)
from ..config import PLATFORMS
from .errors import ServiceError
from .sizes import default_size

MSG_NO_KEY = "No API-key provided."
MSG_BAD_KEY = "Invalid API-key provided."
MSG_MODEL_NOT_FOUND = "Model can not be found."
MSG_ASYNC_HEADER = "current user api does not support synchronous calls"
MSG_NOT_SYNC = "Model not support synchronous call."
MSG_NOT_ASYNC = "Model not support asynchronous call."
MSG_FIXED_N = "num_images_per_prompt must be 1"
MSG_INVALID_URL = "Invalid URL provided in your request."
MSG_DATA_INSPECTION = "The media format is not supported or incorrect for the data inspection."
# Stand-ins (the real wording is not known): agent rewriting asked for an edit, a parameter a model refuses.
MSG_AGENT_EDIT = "prompt_extend_mode 'agent' is only supported for text-to-image; use 'direct' for image editing."
MSG_REFUSED_PARAM = "Parameter '{key}' is not supported by this model."

_SIZE_RE = re.compile(r"^(\d{1,6})\*(\d{1,6})$")


def invalid(message: str) -> ServiceError:
    """400 ``InvalidParameter`` with ``message``."""
    return ServiceError(400, "InvalidParameter", message)


@dataclass
class ImageOrder:
    """A validated generation request (sync) or task (async): the images a caller ordered.

    Named apart from :class:`aliyun_image.jobs.Job`, the app's own checked user input.
    """

    model: str  # as the caller spelled it (a snapshot name stays a snapshot name)
    spec: ModelSpec
    task: str  # T2I or EDIT
    prompt: str
    negative: str
    size: tuple[int, int] | None  # None = decide from the inputs (edit default)
    n: int
    seed: int | None  # None = the emulator picks one at random, as the service does
    prompt_extend: bool
    watermark: bool
    images: list[str] = field(default_factory=list)  # raw references, in request order
    extend_mode: str | None = None  # prompt_extend_mode as sent (None: not sent, or a model that ignores it)
    thinking: bool | None = None  # enable_thinking as sent (likewise)


def parse_json(body: bytes) -> dict:
    """The body as a JSON object, or 400 InvalidParameter."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise invalid("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise invalid("The request body must be a JSON object.")
    return data


def served_model(name: str, region: str | None) -> ModelSpec:
    """The spec of ``name`` as served in ``region`` (None: any region), or 404 ModelNotFound.

    A model the catalogue does not offer in ``region`` is answered like an unknown one: the
    service of one region does not know the models of another.
    """
    spec = get_model(name)
    if spec is None or name != name.strip():
        raise ServiceError(404, "ModelNotFound", MSG_MODEL_NOT_FOUND)
    # The platforms' offer is not in the catalogue: there, every model is served.
    if region is not None and region not in PLATFORMS and region not in spec.regions:
        raise ServiceError(404, "ModelNotFound",
                           f"{MSG_MODEL_NOT_FOUND} Model {name} is not available in this region ({region}).")
    return spec


def model_of(data: dict, mode: str, region: str | None = None) -> tuple[str, ModelSpec]:
    """The requested model name and its spec; checks it is served in ``region`` and on ``mode``
    (SYNC or ASYNC)."""
    name = data.get("model")
    if name is None or name == "":
        raise ServiceError(400, "BadRequest.EmptyModel", "Required parameter 'model' missing from request.")
    if not isinstance(name, str):
        raise invalid("Parameter 'model' must be a string.")
    spec = served_model(name, region)
    if mode not in spec.endpoints:
        raise invalid(MSG_NOT_SYNC if mode == SYNC else MSG_NOT_ASYNC)
    return name, spec


def _check_type(params: dict, key: str, kind, label: str):
    value = params.get(key)
    if value is None:
        return None
    # bool is an int subclass; a seed of `true` is a client bug, not 1.
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise invalid(f"Parameter '{key}' must be {label}.")
    return value


def _size(spec: ModelSpec, task: str, value) -> tuple[int, int] | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid("Parameter 'size' must be a string such as '1328*1328'.")
    if not _SIZE_RE.match(value):
        raise invalid(f"Parameter 'size' '{value[:40]}' is invalid; use width*height, e.g. 1328*1328.")
    result = check_size(spec, task, value)
    if not result.ok or result.value is None:
        raise invalid(result.problem.render("en") if result.problem else f"Parameter 'size' '{value}' is invalid.")
    w, h = result.value.split("*")
    return int(w), int(h)


def _parameters(params, spec: ModelSpec, task: str) -> dict:
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise invalid("Parameter 'parameters' must be an object.")
    negative = _check_type(params, "negative_prompt", str, "a string") or ""
    if not spec.accepts("negative_prompt"):
        negative = ""  # assumed: a model without a negative prompt ignores one (z-image-turbo)
    n = _check_type(params, "n", int, "an integer")
    if n is None:
        n = spec.n_min
    if not spec.n_min <= n <= spec.n_max:
        raise invalid(MSG_FIXED_N if spec.fixed_n else f"n must be between {spec.n_min} and {spec.n_max}")
    seed = _check_type(params, "seed", int, "an integer")
    if seed is not None and not 0 <= seed <= SEED_MAX:
        raise invalid(f"seed must be within [0, {SEED_MAX}]")
    extend = _check_type(params, "prompt_extend", bool, "a boolean")
    watermark = _check_type(params, "watermark", bool, "a boolean")
    return {
        **_rewriting(params, spec),
        "negative": negative[: spec.negative_max],
        "size": _size(spec, task, params.get("size")),
        "n": n,
        "seed": seed,
        "prompt_extend": spec.prompt_extend_default if extend is None else extend,
        "watermark": False if watermark is None else watermark,
    }


def _rewriting(params: dict, spec: ModelSpec) -> dict:
    """The rewriting's options as the model takes them: checked when sent, ignored by a model that
    does not take them (assumed, like an unknown parameter); a parameter the model refuses, 400."""
    for key in sorted(spec.refuses):
        if params.get(key) not in (None, ""):
            raise invalid(MSG_REFUSED_PARAM.format(key=key))
    mode = _check_type(params, "prompt_extend_mode", str, "a string")
    if mode is not None and mode not in PROMPT_EXTEND_MODES:
        raise invalid(f"Parameter 'prompt_extend_mode' must be one of {', '.join(PROMPT_EXTEND_MODES)}.")
    thinking = _check_type(params, "enable_thinking", bool, "a boolean")
    return {"extend_mode": mode if spec.accepts("prompt_extend_mode") else None,
            "thinking": thinking if spec.accepts("enable_thinking") else None}


def _prompt(spec: ModelSpec, value, where: str) -> str:
    if value is None:
        raise ServiceError(400, "BadRequest.EmptyInput", f"Required parameter '{where}' missing from request.")
    if not isinstance(value, str):
        raise invalid(f"Parameter '{where}' must be a string.")
    if not value.strip():
        raise ServiceError(400, "BadRequest.EmptyInput", f"Required parameter '{where}' is empty.")
    return value[: spec.prompt_max]  # the service truncates, it does not refuse


def _input_object(data: dict) -> dict:
    """The body's ``input`` object (both endpoints require one)."""
    inp = data.get("input")
    if inp is None:
        raise ServiceError(400, "BadRequest.EmptyInput", "Required parameter 'input' missing from request.")
    if not isinstance(inp, dict):
        raise invalid("Parameter 'input' must be an object.")
    return inp


def parse_generation(data: dict, region: str | None = None, mode: str = SYNC) -> ImageOrder:
    """Validate a ``multimodal-generation`` body (section 3.1 of the protocol) as the service of
    ``region`` does (None: every catalogue model is served). ``mode=ASYNC``: the same messages body
    sent to the 3.0 line's async ``image-generation`` task API (section 4.4)."""
    name, spec = model_of(data, mode, region)
    if mode == ASYNC and spec.async_api != ASYNC_GENERATION:
        raise invalid(MSG_NOT_ASYNC)
    texts, images = _split_content(_user_content(_input_object(data)))
    if len(texts) != 1:
        raise invalid(f"input.messages[0].content must contain exactly one text item (got {len(texts)}).")
    prompt = _prompt(spec, texts[0], "text")
    task = _task_for(name, spec, images)
    p = _parameters(data.get("parameters"), spec, task)
    if p["extend_mode"] == "agent" and task == EDIT:
        raise invalid(MSG_AGENT_EDIT)
    size = p["size"]
    if size is None and task == T2I:
        size = default_size(spec.size_rule(T2I), prompt)
    return ImageOrder(name, spec, task, prompt, p["negative"], size, p["n"], p["seed"],
                      p["prompt_extend"], p["watermark"], images, p["extend_mode"], p["thinking"])


def _user_content(inp: dict) -> list:
    """The content list of the single user message in ``input.messages``."""
    messages = inp.get("messages")
    if not isinstance(messages, list) or len(messages) != 1:
        raise invalid("input.messages must be a list with exactly one user message (single turn).")
    msg = messages[0]
    if not isinstance(msg, dict) or msg.get("role") != "user":
        raise invalid("The only message in input.messages must have role 'user'.")
    content = msg.get("content")
    if not isinstance(content, list) or not content:
        raise invalid("input.messages[0].content must be a non-empty list.")
    return content


def _split_content(content: list) -> tuple[list, list[str]]:
    """The text values (unchecked: :func:`_prompt` does that) and image references, in order."""
    texts: list = []
    images: list[str] = []
    for item in content:
        if not isinstance(item, dict) or len(item) != 1:
            raise invalid('Each content item must be exactly one of {"text": ...} or {"image": ...}.')
        (key, value), = item.items()
        if key == "text":
            texts.append(value)
        elif key == "image":
            if not isinstance(value, str) or not value:
                raise invalid("An image item must be a non-empty string (URL, oss:// or data URI).")
            images.append(value)
        else:
            raise invalid(f"Content type '{key}' is not supported by this model.")
    return texts, images


def _task_for(name: str, spec: ModelSpec, images: list[str]) -> str:
    """EDIT with input images, T2I without; checks the model does that task with that many."""
    limit = max(spec.images_max, 3)
    if len(images) > limit:
        raise invalid(f"Too many input images: at most {limit} are supported (got {len(images)}).")
    if images:
        if not spec.does(EDIT):
            raise invalid(f"Model {name} does not accept input images; use an image edit model.")
        if len(images) < spec.images_min or len(images) > spec.images_max:
            raise invalid(f"Model {name} accepts {spec.images_min} to {spec.images_max} input images.")
        return EDIT
    if not spec.does(T2I):
        raise invalid(f"Model {name} requires {spec.images_min} to {spec.images_max} input images.")
    return T2I


def parse_task(data: dict, region: str | None = None) -> ImageOrder:
    """Validate an async ``image-synthesis`` body (section 4.1: ``input.prompt``) as the
    service of ``region`` does."""
    name, spec = model_of(data, ASYNC, region)
    if spec.async_api != ASYNC_SYNTHESIS:  # the 3.0 line's tasks take the messages body elsewhere
        raise invalid(MSG_NOT_ASYNC)
    inp = _input_object(data)
    prompt = _prompt(spec, inp.get("prompt"), "input.prompt")
    params = data.get("parameters")
    p = _parameters(params, spec, T2I)
    negative = inp.get("negative_prompt")
    if negative is not None:
        if not isinstance(negative, str):
            raise invalid("Parameter 'input.negative_prompt' must be a string.")
        p["negative"] = negative[: spec.negative_max] if spec.accepts("negative_prompt") else ""
    size = p["size"] or default_size(spec.size_rule(T2I), prompt)
    return ImageOrder(name, spec, T2I, prompt, p["negative"], size, p["n"], p["seed"],
                      p["prompt_extend"], p["watermark"])
