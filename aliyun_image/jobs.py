"""What the user asked for, checked before any money is spent.

:func:`build_job` turns loose user input (from the CLI, the UI or Python) into a
:class:`Job`: model resolved by the Plus/Max rule, prompt and negative checked, size
normalised, ``n`` split into requests, seeds chosen, input images prepared. Anything the API
would reject is refused here with a message in both languages. Building a job does no
network I/O (input URLs are passed through, local images are read and prepared).
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Sequence

from . import catalog
from .catalog import ASYNC, EDIT, SYNC, T2I, ModelSpec
from .errors import validation
from .images import PreparedImage, prepare_images

TASKS = ("t2i", "edit", "fuse")
MAX_FANOUT = 6  # models fixed at n=1: at most this many parallel requests per action
_INVISIBLE = re.compile(r"^[\s\u200b-\u200f\u2060\ufeff\u202a-\u202e]+|[\s\u200b-\u200f\u2060\ufeff\u202a-\u202e]+$")


@dataclass
class Job:
    """A validated request: everything needed to build the wire bodies."""

    task: str  # t2i | edit | fuse
    model: str  # as sent (may be a dated snapshot)
    spec: ModelSpec
    prompt: str
    negative: str
    size: str | None  # None: the service's default (edit: follows the last input image)
    n: int  # images wanted in total
    per_request: int  # images per request (1 for fixed-n models: fan-out)
    seeds: list[int]  # one per request
    seed_given: bool
    prompt_extend: bool
    watermark: bool
    endpoint: str  # sync | async
    images: list[PreparedImage] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def requests(self) -> int:
        """How many API requests the job makes."""
        return len(self.seeds)

    def params(self) -> dict[str, Any]:
        """The parameters worth storing with each result (no key, no image bytes)."""
        return {"size": self.size, "n": self.n, "prompt_extend": self.prompt_extend,
                "watermark": self.watermark, "endpoint": self.endpoint}

    def input_refs(self) -> list[dict]:
        """Input images as stored references: URL / oss:// as given, local files by name and digest."""
        out = []
        for im in self.images:
            if im.kind == "local":
                out.append({"name": im.name, "sha256": im.sha256, "width": im.width, "height": im.height})
            else:
                out.append({"name": im.name, "url": im.ref})
        return out

    def sync_body(self, seed: int, image_refs: Sequence[str]) -> dict:
        """Body for ``multimodal-generation/generation`` (section 3.1 of the protocol notes)."""
        content: list[dict] = [{"image": ref} for ref in image_refs]
        content.append({"text": self.prompt})
        params: dict[str, Any] = {}
        if self.negative:
            params["negative_prompt"] = self.negative
        if self.size:
            params["size"] = self.size
        if self.spec.n_max > 1:
            params["n"] = self.per_request
        params["prompt_extend"] = self.prompt_extend
        params["watermark"] = self.watermark
        params["seed"] = seed
        return {"model": self.model, "input": {"messages": [{"role": "user", "content": content}]},
                "parameters": params}

    def async_body(self, seed: int) -> dict:
        """Body for the async ``text2image/image-synthesis`` task (section 4.1)."""
        inp = {"prompt": self.prompt}
        if self.negative:
            inp["negative_prompt"] = self.negative
        params: dict[str, Any] = {"n": 1, "prompt_extend": self.prompt_extend, "watermark": self.watermark,
                                  "seed": seed}
        if self.size:
            params["size"] = self.size
        return {"model": self.model, "input": inp, "parameters": params}


def clean_text(text: str | None) -> str:
    """NFC-normalise and strip surrounding whitespace and invisible marks (zero-width, bidi)."""
    return _INVISIBLE.sub("", unicodedata.normalize("NFC", text or ""))


def _as_int(value: Any, what_zh: str, what_en: str) -> int:
    if isinstance(value, bool):
        raise validation(f"{what_zh}必须是整数", f"{what_en} must be a whole number", code="Validation.Type")
    try:
        f = float(str(value).strip())
    except ValueError:
        raise validation(f"{what_zh}必须是整数（收到“{value}”）", f"{what_en} must be a whole number (got '{value}')",
                         code="Validation.Type") from None
    if f != int(f):
        raise validation(f"{what_zh}必须是整数（收到 {value}）", f"{what_en} must be a whole number (got {value})",
                         code="Validation.Type")
    return int(f)


def resolve_model(task: str, model: str | None, best: bool) -> tuple[str, ModelSpec]:
    """Pick the model: explicit name (checked), else Plus, or Max when ``best`` is asked for."""
    need = T2I if task == "t2i" else EDIT
    name = (model or "").strip() or catalog.default_model(need, best)
    spec = catalog.get_model(name)
    if spec is None:
        known = ", ".join(m.name for m in catalog.models_for(need))
        raise validation(f"未知模型“{name}”。可用：{known}", f"Unknown model '{name}'. Available: {known}",
                         code="Validation.Model")
    if not spec.does(need):
        what = ("文生图", "text-to-image") if need == T2I else ("图像编辑", "image editing")
        raise validation(f"模型 {name} 不支持{what[0]}", f"Model {name} does not do {what[1]}",
                         code="Validation.Model")
    if best and model and spec.best:
        # The user named a Plus model *and* asked for the best: honour the rule, say so.
        name, spec = spec.best, catalog.MODELS[spec.best]
    return name, spec


def build_job(task: str, prompt: str | None, *, images: Sequence[Any] = (), model: str | None = None,
              best: bool = False, size: str | None = None, n: Any = 1, seed: Any = None,
              negative: str | None = None, prompt_extend: bool = catalog.DEFAULT_PROMPT_EXTEND,
              watermark: bool = catalog.DEFAULT_WATERMARK, use_async: bool = False,
              image_options: dict | None = None, rng: random.Random | None = None) -> Job:
    """Validate user input for ``task`` (``t2i``, ``edit`` or ``fuse``) and return a :class:`Job`.

    ``negative=None`` means the product default negative prompt; ``""`` means none.
    ``seed=None`` (or ``-1``/``"random"``) means a random seed *chosen here*, so the seed actually
    used is always known and stored. Raises :class:`~aliyun_image.errors.ValidationError`.
    """
    if task not in TASKS:
        raise validation(f"未知任务 {task}", f"Unknown task {task}", code="Validation.Task")
    name, spec = resolve_model(task, model, best)
    notes: list[tuple[str, str]] = []

    text = clean_text(prompt)
    if not text:
        what = ("提示词", "prompt") if task == "t2i" else ("编辑指令", "instruction")
        raise validation(f"{what[0]}为空。请描述你想要的画面。", f"The {what[1]} is empty. Describe what you want.",
                         code="Validation.EmptyPrompt")
    if len(text) > spec.prompt_max:
        raise validation(
            f"提示词有 {len(text)} 个字符，超过 {spec.prompt_max} 的上限（超出部分会被服务截断）。请删减 {len(text) - spec.prompt_max} 个字符。",
            f"The prompt has {len(text)} characters, over the {spec.prompt_max} limit (the service would cut the rest). "
            f"Remove {len(text) - spec.prompt_max} characters.", code="Validation.PromptTooLong")
    neg = catalog.DEFAULT_NEGATIVE if negative is None else clean_text(negative)
    if len(neg) > spec.negative_max:
        raise validation(
            f"反向提示词有 {len(neg)} 个字符，超过 {spec.negative_max} 的上限。",
            f"The negative prompt has {len(neg)} characters, over the {spec.negative_max} limit.",
            code="Validation.NegativeTooLong")

    need = T2I if task == "t2i" else EDIT
    checked = catalog.check_size(spec, need, size)
    if not checked.ok:
        assert checked.problem
        raise validation(*checked.problem, code="Validation.Size")
    notes += checked.notes

    n = _as_int(n if n not in (None, "") else 1, "张数", "Number of images")
    top = MAX_FANOUT if spec.fixed_n else spec.n_max
    if not 1 <= n <= top:
        raise validation(f"张数须在 1–{top} 之间（收到 {n}）", f"Number of images must be 1-{top} (got {n})",
                         code="Validation.N")

    seed_given = seed not in (None, "", -1, "-1", "random")
    rng = rng or random.SystemRandom()
    if seed_given:
        s = _as_int(seed, "种子", "Seed")
        if not 0 <= s <= catalog.SEED_MAX:
            raise validation(f"种子须在 0–{catalog.SEED_MAX} 之间（收到 {s}）；留空表示随机。",
                             f"Seed must be 0-{catalog.SEED_MAX} (got {s}); leave it empty for a random one.",
                             code="Validation.Seed")
    else:
        s = rng.randint(0, catalog.SEED_MAX)
    per_request = 1 if spec.fixed_n else n
    requests_n = n if spec.fixed_n else 1
    # Fan-out: consecutive seeds, so "seed 42, 4 images" is reproducible image by image.
    seeds = [(s + i) % (catalog.SEED_MAX + 1) for i in range(requests_n)]

    endpoint = ASYNC if (use_async or SYNC not in spec.endpoints) else SYNC
    if endpoint == ASYNC and ASYNC not in spec.endpoints:
        raise validation(f"模型 {name} 不支持异步任务接口", f"Model {name} has no async task API",
                         code="Validation.Async")

    prepared: list[PreparedImage] = []
    if task == "t2i":
        if images:
            raise validation("文生图不接受输入图片；要改图请用图像编辑。",
                             "Text-to-image takes no input image; use edit for that.", code="Validation.Images")
    else:
        lo, hi = (2, spec.images_max) if task == "fuse" else (spec.images_min, spec.images_max)
        got = len([i for i in images if i is not None and i != ""])
        if not lo <= got <= hi:
            if task == "fuse":
                raise validation(f"多图融合需要 {lo}–{hi} 张图片（收到 {got} 张）",
                                 f"Fusion needs {lo}-{hi} images (got {got})", code="Validation.Images")
            raise validation(f"图像编辑需要 {lo}–{hi} 张输入图片（收到 {got} 张）",
                             f"Editing needs {lo}-{hi} input images (got {got})", code="Validation.Images")
        prepared = prepare_images([i for i in images if i is not None and i != ""], **(image_options or {}))
        for im in prepared:
            notes += im.notes

    return Job(task=task, model=name, spec=spec, prompt=text, negative=neg, size=checked.value, n=n,
               per_request=per_request, seeds=seeds, seed_given=seed_given,
               prompt_extend=bool(prompt_extend), watermark=bool(watermark), endpoint=endpoint,
               images=prepared, notes=notes)
