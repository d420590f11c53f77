"""What the user asked for, checked before any money is spent.

:func:`build_job` turns loose user input (from the CLI, the UI or Python) into a
:class:`Job`: model resolved by the Plus/Max rule, prompt and negative checked, size
normalised, ``n`` split into requests, seeds chosen, input images prepared. Anything the API
would reject is refused here with a message in both languages. Building a job does no
network I/O (input URLs are passed through, local images are read and prepared).
"""

from __future__ import annotations

import difflib
import random
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import catalog
from .catalog import ASYNC, EDIT, SYNC, T2I, ModelSpec
from .errors import plural, validation
from .images import PreparedImage, prepare_images
from .kinds import Task

TASKS = tuple(Task)
MAX_FANOUT = 6  # models fixed at n=1: at most this many parallel requests per action
_INVISIBLE = re.compile(r"^[\s\u200b-\u200f\u2060\ufeff\u202a-\u202e]+|[\s\u200b-\u200f\u2060\ufeff\u202a-\u202e]+$")


@dataclass
class Job:
    """A validated request: everything needed to build the wire bodies."""

    task: Task
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
                out.append({"name": im.name, "sha256": im.sha256, "width": im.width, "height": im.height,
                            **({"stored": im.stored} if im.stored else {})})
            else:
                out.append({"name": im.name, "url": im.ref})
        return out


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


def resolve_model(task: str, model: str | None, best: bool) -> tuple[str, ModelSpec, list[tuple[str, str]]]:
    """Pick the model: explicit name, else Plus, or Max when ``best`` is asked for.

    An id the catalogue does not know is still sent, with generic rules and a note saying that
    local checks were off (a model released after this catalogue must not be blocked). Returns
    the name, its rules and the notes for the user.
    """
    need = T2I if task == Task.T2I else EDIT
    name = (model or "").strip() or catalog.default_model(need, best)
    spec = catalog.get_model(name)
    if spec is None:
        return name, catalog.generic_spec(name), [_unknown_model_note(name, need)]
    if not spec.does(need):
        what = ("文生图", "text-to-image") if need == T2I else ("图像编辑", "image editing")
        others = ", ".join(m.name for m in catalog.models_for(need)[:4])
        raise validation(f"模型 {name} 不支持{what[0]}。可用：{others}…",
                         f"Model {name} does not do {what[1]}. Try: {others}…", code="Validation.Model")
    notes: list[tuple[str, str]] = []
    if not spec.verified:
        notes.append((f"{name} 的规则尚未核实：本地检查可能过严或过松，以服务返回为准。",
                      f"{name}'s rules are not verified: local checks may be off; the service has the last word."))
    if best and model and spec.best:
        # The user named a Plus model *and* asked for the best: honour the rule, say so.
        spec = catalog.best_of(spec)
        name = spec.name
    return name, spec, notes


def _unknown_model_note(name: str, task: str) -> tuple[str, str]:
    close = difflib.get_close_matches(name, [m.name for m in catalog.models_for(task, snapshots=True)], n=1)
    hint_zh = f"（是否想用 {close[0]}？）" if close else ""
    hint_en = f" (did you mean {close[0]}?)" if close else ""
    return (f"模型 {name} 不在目录中：已按通用规则发送（同步接口、尺寸原样传递、每次请求 1 张），"
            f"本地检查已关闭{hint_zh}。",
            f"Model {name} is not in the catalogue: sent with generic rules (sync endpoint, size passed "
            f"through, one image per request); local checks were off{hint_en}.")


def build_job(task: str, prompt: str | None, *, images: Sequence[Any] = (), model: str | None = None,
              best: bool = False, size: str | None = None, n: Any = 1, seed: Any = None,
              negative: str | None = None, prompt_extend: bool | None = None,
              watermark: bool = catalog.DEFAULT_WATERMARK, use_async: bool = False,
              image_options: dict | None = None, rng: random.Random | None = None) -> Job:
    """Validate user input for ``task`` (``t2i``, ``edit`` or ``fuse``) and return a :class:`Job`.

    ``negative=None`` means the product default negative prompt; ``""`` means none.
    ``prompt_extend=None`` means the model's own default (on, except for z-image-turbo).
    ``seed=None`` (or ``-1``/``"random"``) means a random seed *chosen here*, so the seed actually
    used is always known and stored. Raises :class:`~aliyun_image.errors.ValidationError`.
    Checks run cheapest first, so a typo in the prompt is reported before an image is decoded.
    """
    if task not in TASKS:
        raise validation(f"未知任务 {task}", f"Unknown task {task}", code="Validation.Task")
    kind = Task(task)
    name, spec, notes = resolve_model(kind, model, best)
    text, neg, text_notes = _check_texts(kind, spec, prompt, negative)
    notes += text_notes
    checked = catalog.check_size(spec, T2I if kind == Task.T2I else EDIT, size)
    if not checked.ok:
        assert checked.problem
        raise validation(*checked.problem, code="Validation.Size")
    n = _check_n(spec, n)
    first_seed, seed_given = _first_seed(seed, rng)
    # Models fixed at n=1 fan out: one request per image, consecutive seeds, so "seed 42, 4 images"
    # is reproducible image by image.
    requests_n = n if spec.fixed_n else 1
    seeds = [(first_seed + i) % (catalog.SEED_MAX + 1) for i in range(requests_n)]
    endpoint = _endpoint(name, spec, use_async)
    prepared = _prepare_inputs(kind, spec, images, image_options)
    # Image notes are catalogue Messages; Job.notes still holds (zh, en) pairs here.
    notes += list(checked.notes) + [(n.render("zh"), n.render("en")) for im in prepared for n in im.notes]
    return Job(task=kind, model=name, spec=spec, prompt=text, negative=neg, size=checked.value, n=n,
               per_request=1 if spec.fixed_n else n, seeds=seeds, seed_given=seed_given,
               prompt_extend=spec.prompt_extend_default if prompt_extend is None else bool(prompt_extend),
               watermark=bool(watermark),
               endpoint=endpoint, images=prepared, notes=notes)


def _check_texts(task: Task, spec: ModelSpec, prompt: str | None,
                 negative: str | None) -> tuple[str, str, list[tuple[str, str]]]:
    """The cleaned prompt and negative prompt, within the model's limits, and notes."""
    notes: list[tuple[str, str]] = []
    text = clean_text(prompt)
    if not text:
        what = ("提示词", "prompt") if task == Task.T2I else ("编辑指令", "instruction")
        raise validation(f"{what[0]}为空。请描述你想要的画面。", f"The {what[1]} is empty. Describe what you want.",
                         code="Validation.EmptyPrompt")
    over = len(text) - spec.prompt_max
    if over > 0:
        raise validation(
            f"提示词有 {len(text)} 个字符，超过 {spec.prompt_max} 的上限（超出部分会被服务截断）。"
            f"请删减 {over} 个字符。",
            f"The prompt has {len(text)} characters, over the {spec.prompt_max} limit (the service would cut "
            f"the rest). Remove {over} {plural(over, 'character')}.", code="Validation.PromptTooLong")
    neg = catalog.DEFAULT_NEGATIVE if negative is None else clean_text(negative)
    if not spec.accepts("negative_prompt"):
        # The model has no negative prompt (z-image-turbo): the product default is simply not
        # sent; one the user typed is dropped with a word, not refused.
        if neg and negative:
            notes.append((f"{spec.name} 不接受反向提示词，已忽略。",
                          f"{spec.name} takes no negative prompt; it was left out."))
        return text, "", notes
    if len(neg) > spec.negative_max:
        raise validation(
            f"反向提示词有 {len(neg)} 个字符，超过 {spec.negative_max} 的上限。",
            f"The negative prompt has {len(neg)} characters, over the {spec.negative_max} limit.",
            code="Validation.NegativeTooLong")
    return text, neg, notes


def _check_n(spec: ModelSpec, n: Any) -> int:
    """How many images, within what the model (or the fan-out cap) allows."""
    n = _as_int(n if n not in (None, "") else 1, "张数", "Number of images")
    top = MAX_FANOUT if spec.fixed_n else spec.n_max
    if not 1 <= n <= top:
        raise validation(f"张数须在 1–{top} 之间（收到 {n}）", f"Number of images must be 1-{top} (got {n})",
                         code="Validation.N")
    return n


def _first_seed(seed: Any, rng: random.Random | None) -> tuple[int, bool]:
    """The seed of the first request, and whether the user gave it (else it is drawn here)."""
    if seed in (None, "", -1, "-1", "random"):
        return (rng or random.SystemRandom()).randint(0, catalog.SEED_MAX), False
    s = _as_int(seed, "种子", "Seed")
    if not 0 <= s <= catalog.SEED_MAX:
        raise validation(f"种子须在 0–{catalog.SEED_MAX} 之间（收到 {s}）；留空表示随机。",
                         f"Seed must be 0-{catalog.SEED_MAX} (got {s}); leave it empty for a random one.",
                         code="Validation.Seed")
    return s, True


def _endpoint(name: str, spec: ModelSpec, use_async: bool) -> str:
    """Sync unless the user asked for the async task API (or the model has nothing else)."""
    endpoint = ASYNC if (use_async or SYNC not in spec.endpoints) else SYNC
    if endpoint == ASYNC and ASYNC not in spec.endpoints:
        raise validation(f"模型 {name} 不支持异步任务接口", f"Model {name} has no async task API",
                         code="Validation.Async")
    return endpoint


def _prepare_inputs(task: Task, spec: ModelSpec, images: Sequence[Any],
                    image_options: dict | None) -> list[PreparedImage]:
    """Input images checked for count and prepared (read, decoded, normalised) for the wire."""
    given = [i for i in images if i is not None and i != ""]
    if task == Task.T2I:
        if images:
            raise validation("文生图不接受输入图片；要改图请用图像编辑。",
                             "Text-to-image takes no input image; use edit for that.", code="Validation.Images")
        return []
    lo, hi = (2, spec.images_max) if task == Task.FUSE else (spec.images_min, spec.images_max)
    if not lo <= len(given) <= hi:
        if task == Task.FUSE:
            raise validation(f"多图融合需要 {lo}–{hi} 张图片（收到 {len(given)} 张）",
                             f"Fusion needs {lo}-{hi} images (got {len(given)})", code="Validation.Images")
        raise validation(f"图像编辑需要 {lo}–{hi} 张输入图片（收到 {len(given)} 张）",
                         f"Editing needs {lo}-{hi} input images (got {len(given)})", code="Validation.Images")
    return prepare_images(given, **(image_options or {}))
