"""PNG info: read the recipe back out of a PNG (this app's, or one with an A1111 ``parameters`` text).

The reverse of :mod:`.recipe`. A dropped file is untrusted: it is read only up to
:data:`MAX_BYTES`, only its text chunks are looked at (the pixels are never decoded; Pillow caps
each text chunk), every value is checked for type and range, and anything odd is dropped rather
than passed on. A file that is not a readable PNG, or carries no recipe, gets a
:class:`~aliyun_image.errors.ValidationError` saying what to do.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from .. import catalog
from ..errors import ValidationError
from ..i18n import msg, t
from ..enums import Task

MAX_BYTES = 64 << 20  # a result PNG is a few MB; anything much bigger is not one of ours
MAX_TEXT = 64 << 10  # the recipe text itself (prompts are at most a few thousand characters)
SEED_MAX = 2**31 - 1
_KV = re.compile(r'\s*([\w][\w \-/]*):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')
_SIZE = re.compile(r"^\s*(\d{2,5})\s*[x*×]\s*(\d{2,5})\s*$")


@dataclass
class PngRecipe:
    """What a PNG says made it: the fields :func:`aliyun_image.recipes.reuse.reuse_values` reads, and
    where it came from (``aliyun-image`` or ``a1111``) with any other ``Key: value`` it listed."""

    task: str
    model: str
    prompt: str
    negative: str
    seed: int | None
    params: dict = field(default_factory=dict)
    inputs: list = field(default_factory=list)
    source: str = "aliyun-image"
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The recipe as plain JSON-able data."""
        return asdict(self)

    def lines(self, lang: str) -> list[str]:
        """The recipe as ``Key: value`` lines for a terminal, in ``lang``."""
        p = self.params

        def label(key: str) -> str:
            return t(lang, "run.recipe." + key)

        rows = [(label("source"), self.source), (label("task"), self.task),
                (label("model"), self.model or label("auto")),
                (label("prompt"), self.prompt), (label("negative"), self.negative),
                (label("seed"), "" if self.seed is None else str(self.seed)),
                (label("size"), p.get("size") or ""), (label("n"), str(p.get("n") or "")),
                (label("prompt_extend"), str(p.get("prompt_extend", ""))),
                (label("watermark"), str(p.get("watermark", "")))]
        rows += [(label("input"), str(i.get("url") or i.get("name") or "")) for i in self.inputs]
        rows += [(k, str(v)) for k, v in self.extra.items()]
        return [f"{k}: {v}" for k, v in rows if v != ""]


def _bad(key: str, **params: object) -> ValidationError:
    return ValidationError(msg("run." + key, **params), code="Validation.Recipe")


def _not_png() -> ValidationError:
    return _bad("recipe_not_png")


def _texts(data: bytes) -> dict[str, str]:
    """The PNG's text chunks (tEXt, zTXt, iTXt before the image data), pixels untouched."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise _not_png()
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as im:
            info = dict(im.info)
            im.verify()  # every chunk's CRC to the end (no pixel decoding): a cut or altered file fails
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        raise _not_png() from None
    return {str(k): str(v) for k, v in info.items() if isinstance(v, str | bytes) and len(v) <= MAX_TEXT}


def read_png_recipe(source: str | Path | bytes) -> PngRecipe:
    """The recipe in a PNG file (path or bytes); raises ValidationError when there is none."""
    if isinstance(source, bytes):
        data = source
    else:
        path = Path(source)
        try:
            if path.stat().st_size > MAX_BYTES:
                raise _bad("recipe_too_big_file", mb=MAX_BYTES >> 20)
            data = path.read_bytes()
        except OSError:
            raise _bad("recipe_unreadable") from None
    if len(data) > MAX_BYTES:
        raise _bad("recipe_too_big", mb=MAX_BYTES >> 20)
    texts = _texts(data)
    if "aliyun-image" in texts:
        with_json = _from_json(texts["aliyun-image"])
        if with_json is not None:
            return with_json
    if "parameters" in texts:
        return _from_a1111(texts["parameters"])
    raise _bad("recipe_none")


def recipe_origin(data: bytes) -> tuple[int | None, str] | None:
    """Which stored result a PNG says it is: ``(id, request_id)`` from this app's recipe chunk (``id`` None in
    files written before ids were), or None when the bytes carry no recipe of ours. A claim only: the caller
    checks it against the store (the file's digest, the owner) before believing it."""
    try:
        raw = json.loads(_texts(data).get("aliyun-image", ""))
    except (ValidationError, ValueError):
        return None
    if not isinstance(raw, dict) or raw.get("generator") != "aliyun-image":
        return None
    rid = raw.get("id")
    request_id = raw.get("request_id")
    return (rid if isinstance(rid, int) and not isinstance(rid, bool) and rid > 0 else None,
            request_id[:200] if isinstance(request_id, str) else "")


# --- checking untrusted values ----------------------------------------------------------------------
def _text(value: Any, limit: int = 8000) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _seed(value: Any) -> int | None:
    try:
        seed = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return seed if 0 <= seed <= SEED_MAX else None


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return True if text in ("true", "1", "yes", "on") else False if text in ("false", "0", "no", "off") else None


def _model(value: Any) -> str:
    """A model the catalogue knows (others would only fail later): its id, else "" (automatic)."""
    name = _text(value, 100).strip()
    return name if name and catalog.get_model(name) is not None else ""


def _size(value: Any, task: str, model: str) -> str | None:
    """``W*H`` when it is a size the panel can take (a preset, or any size for free-size models)."""
    m = _SIZE.match(str(value or ""))
    if not m:
        return None
    size = f"{int(m.group(1))}*{int(m.group(2))}"
    kind = catalog.T2I if task == Task.T2I else catalog.EDIT
    spec = catalog.choose_model(kind, model)[1]
    if spec.generic:  # a model the catalogue does not know: no size to check against
        return None
    rule = spec.size_rule(kind)
    return size if rule.free or size in {o.value for o in rule.presets} else None


def _params(task: str, model: str, size: Any, n: Any, extend: Any, watermark: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"size": _size(size, task, model)}
    try:
        out["n"] = max(1, min(int(str(n)), 6)) if n is not None else 1
    except ValueError:
        out["n"] = 1
    for key, value in (("prompt_extend", extend), ("watermark", watermark)):
        flag = _flag(value) if value is not None else None
        if flag is not None:
            out[key] = flag
    return out


def _task(value: Any) -> str:
    return str(value) if str(value) in {t.value for t in Task} else Task.T2I


def _inputs(value: Any) -> list[dict[str, str]]:
    """Input references as names, digests and http(s) URLs only (a stored path from a file is not
    trusted: a digest is looked up in the reader's own kept inputs instead)."""
    out = []
    # at most as many as a model takes (2.1-pro: ten references); a file may claim any number
    top = max((m.images_max for m in catalog.models().values()), default=3)
    for item in value[:top] if isinstance(value, list) else []:
        if not isinstance(item, dict):
            continue
        url, digest = _text(item.get("url"), 2000), _text(item.get("sha256"), 64)
        out.append({"name": _text(item.get("name"), 200),
                    **({"url": url} if url.startswith(("http://", "https://")) else {}),
                    **({"sha256": digest} if re.fullmatch(r"[0-9a-f]{64}", digest) else {})})
    return out


def _from_json(text: str) -> PngRecipe | None:
    """This app's ``aliyun-image`` chunk; None when it is not a JSON object of ours."""
    try:
        raw = json.loads(text)
    except ValueError:
        return None
    if not isinstance(raw, dict):
        return None
    task, model = _task(raw.get("task")), _model(raw.get("model"))
    given = raw.get("parameters")
    p: dict[str, Any] = given if isinstance(given, dict) else {}
    return PngRecipe(task=task, model=model, prompt=_text(raw.get("prompt")),
                     negative=_text(raw.get("negative_prompt")), seed=_seed(raw.get("seed")),
                     params={**_params(task, model, p.get("size"), p.get("n"), p.get("prompt_extend"),
                                       p.get("watermark")), **_rewriting(p)},
                     inputs=_inputs(raw.get("inputs")), source="aliyun-image")


def _rewriting(p: dict) -> dict[str, Any]:
    """The rewriting's options a recipe recorded (3.0 and 2.1 models), when they are well-formed."""
    out: dict[str, Any] = {}
    if p.get("prompt_extend_mode") in catalog.PROMPT_EXTEND_MODES:
        out["prompt_extend_mode"] = p["prompt_extend_mode"]
    if isinstance(p.get("enable_thinking"), bool):
        out["enable_thinking"] = p["enable_thinking"]
    return out


def _from_a1111(text: str) -> PngRecipe:
    """An A1111-style ``parameters`` text: prompt, ``Negative prompt: …``, then ``Key: value, …``."""
    lines = text[:MAX_TEXT].strip().split("\n")
    kv: dict[str, str] = {}
    if len(lines) > 1 and len(_KV.findall(lines[-1])) >= 2:
        kv = {k.strip(): v.strip().strip('"') for k, v in _KV.findall(lines.pop())}
    prompt: list[str] = []
    negative: list[str] = []
    in_negative = False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative, line = True, line[len("Negative prompt:"):].strip()
        (negative if in_negative else prompt).append(line)
    task, model = _task(kv.pop("Task", "t2i")), _model(kv.pop("Model", ""))
    params = _params(task, model, kv.pop("Size", None), kv.pop("Batch size", None),
                     kv.pop("Prompt extend", None), kv.pop("Watermark", None))
    seed = _seed(kv.pop("Seed", None))
    extra = {k[:40]: v[:200] for k, v in list(kv.items())[:20]}
    return PngRecipe(task=task, model=model, prompt="\n".join(prompt).strip()[:8000],
                     negative="\n".join(negative).strip()[:8000], seed=seed, params=params, source="a1111",
                     extra=extra)
