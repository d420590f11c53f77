"""Model catalogue: what each Qwen-Image model accepts.

One table (:data:`MODELS`) says, per model, which tasks it does, which endpoint it uses,
which sizes it allows, how many images one request may ask for and which dated snapshots
share its rules. Everything that validates a request (the service *and* the emulator) reads
this table, so the two can never disagree about a limit.

Facts come from ``shared/dashscope-protocol.md`` (sections 3.2 and 8).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

T2I = "t2i"  #: text-to-image
EDIT = "edit"  #: single-image edit and multi-image fusion (same endpoint, 1-3 images)

SYNC = "sync"  #: POST .../multimodal-generation/generation, answer in the reply
ASYNC = "async"  #: POST .../text2image/image-synthesis + poll /tasks/{id}

PROMPT_MAX = 800
NEGATIVE_MAX = 500
SEED_MAX = 2147483647

DEFAULT_NEGATIVE = "低分辨率，低画质，肢体畸形，手指畸形，画面过饱和，蜡像感"
DEFAULT_PROMPT_EXTEND = True
DEFAULT_WATERMARK = False


@dataclass(frozen=True)
class SizeOption:
    """One preset size, e.g. ``SizeOption(1664, 928, "16:9")``."""

    width: int
    height: int
    ratio: str

    @property
    def value(self) -> str:
        """The size as the API spells it: ``"1664*928"``."""
        return f"{self.width}*{self.height}"

    @property
    def label(self) -> str:
        """Human label: ``"16:9  1664*928"``."""
        return f"{self.ratio}  {self.value}"


@dataclass(frozen=True)
class SizeRule:
    """How a model constrains ``size``.

    ``kind`` is ``"fixed"`` (only :attr:`presets`), ``"sides"`` (each side within
    ``min_side..max_side``) or ``"pixels"`` (``width*height`` within ``min_pixels..max_pixels``).
    Free sizes are snapped to multiples of :attr:`step`, as the service does.
    """

    kind: str
    presets: tuple[SizeOption, ...]
    default: str | None  # None = the service picks (edit: follows the last input image)
    min_side: int = 0
    max_side: int = 0
    min_pixels: int = 0
    max_pixels: int = 0
    step: int = 16


@dataclass(frozen=True)
class ModelSpec:
    """What one model (and its dated snapshots) does and accepts."""

    name: str
    tasks: frozenset[str]
    endpoints: tuple[str, ...]  # preferred first
    size: SizeRule
    n_min: int = 1
    n_max: int = 1
    images_min: int = 0  # input images for EDIT
    images_max: int = 0
    prompt_max: int = PROMPT_MAX
    negative_max: int = NEGATIVE_MAX
    snapshots: tuple[str, ...] = ()
    best: str | None = None  # the "best quality" sibling (Plus -> Max)
    title: str = ""
    note_zh: str = ""
    note_en: str = ""
    edit_size: SizeRule | None = None  # size rule when editing, if it differs from t2i

    def does(self, task: str) -> bool:
        """True when the model can do ``task`` (:data:`T2I` or :data:`EDIT`)."""
        return task in self.tasks

    def size_rule(self, task: str) -> SizeRule:
        """The size rule that applies to ``task``."""
        if task == EDIT and self.edit_size is not None:
            return self.edit_size
        return self.size

    @property
    def fixed_n(self) -> bool:
        """True when one request yields exactly one image (the service fans out for more)."""
        return self.n_max == 1


def _ratio_presets(ratios: list[tuple[int, int]], pixels: int, step: int = 16) -> tuple[SizeOption, ...]:
    """Presets near ``pixels`` total for each ``w:h`` ratio, sides multiples of ``step``."""
    out = []
    for a, b in ratios:
        w = round(math.sqrt(pixels * a / b) / step) * step
        h = round(w * b / a / step) * step
        out.append(SizeOption(w, h, f"{a}:{b}"))
    return tuple(out)


# Plus / Max / qwen-image: five fixed sizes (4:3 is 1472*1104, not the 1140 some gateways copy).
QWEN_FIXED = SizeRule(
    kind="fixed",
    presets=(
        SizeOption(1664, 928, "16:9"),
        SizeOption(1472, 1104, "4:3"),
        SizeOption(1328, 1328, "1:1"),
        SizeOption(1104, 1472, "3:4"),
        SizeOption(928, 1664, "9:16"),
    ),
    default="1664*928",
)

# Edit models: each side 512..2048, snapped to 16; default keeps the last input's aspect.
EDIT_SIDES = SizeRule(
    kind="sides",
    presets=_ratio_presets(
        [(1, 1), (4, 3), (3, 4), (3, 2), (2, 3), (16, 9), (9, 16), (21, 9)], 1024 * 1024
    ),
    default=None,
    min_side=512,
    max_side=2048,
)

# qwen-image-2.0 family: any W*H with total pixels within 512^2..2048^2.
V2_PIXELS = SizeRule(
    kind="pixels",
    presets=(
        SizeOption(2048, 2048, "1:1"),
        SizeOption(2688, 1536, "16:9"),
        SizeOption(2368, 1728, "4:3"),
        SizeOption(1728, 2368, "3:4"),
        SizeOption(1536, 2688, "9:16"),
    ),
    default="2048*2048",
    min_pixels=512 * 512,
    max_pixels=2048 * 2048,
)
V2_EDIT = SizeRule(
    kind="pixels",
    presets=_ratio_presets([(1, 1), (4, 3), (3, 4), (16, 9), (9, 16), (21, 9)], 1024 * 1024),
    default=None,
    min_pixels=512 * 512,
    max_pixels=2048 * 2048,
)

MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in (
        ModelSpec(
            "qwen-image-plus", frozenset({T2I}), (SYNC, ASYNC), QWEN_FIXED,
            snapshots=("qwen-image-plus-2026-01-09",), best="qwen-image-max",
            title="Qwen-Image Plus",
            note_zh="默认文生图模型，擅长复杂文字渲染", note_en="Default text-to-image model, strong at rendering text",
        ),
        ModelSpec(
            "qwen-image-max", frozenset({T2I}), (SYNC,), QWEN_FIXED,
            snapshots=("qwen-image-max-2025-12-30",), title="Qwen-Image Max",
            note_zh="最高质量文生图（更慢、更贵）", note_en="Best-quality text-to-image (slower, costs more)",
        ),
        ModelSpec(
            "qwen-image", frozenset({T2I}), (ASYNC,), QWEN_FIXED, title="Qwen-Image (async)",
            note_zh="异步任务接口：提交后轮询结果", note_en="Async task API: submit, then poll for the result",
        ),
        ModelSpec(
            "qwen-image-edit-plus", frozenset({EDIT}), (SYNC,), EDIT_SIDES, n_max=6,
            images_min=1, images_max=3,
            snapshots=("qwen-image-edit-plus-2025-10-30", "qwen-image-edit-plus-2025-12-15"),
            best="qwen-image-edit-max", title="Qwen-Image-Edit Plus",
            note_zh="默认图像编辑与多图融合模型", note_en="Default model for editing and multi-image fusion",
        ),
        ModelSpec(
            "qwen-image-edit-max", frozenset({EDIT}), (SYNC,), EDIT_SIDES, n_max=6,
            images_min=1, images_max=3, snapshots=("qwen-image-edit-max-2026-01-16",),
            title="Qwen-Image-Edit Max",
            note_zh="最高质量图像编辑", note_en="Best-quality image editing",
        ),
        ModelSpec(
            "qwen-image-2.0", frozenset({T2I, EDIT}), (SYNC,), V2_PIXELS, n_max=6,
            images_min=1, images_max=3, snapshots=("qwen-image-2.0-2026-03-03",),
            title="Qwen-Image 2.0", edit_size=V2_EDIT,
            note_zh="新一代：文生图与编辑，自由尺寸", note_en="New generation: generation and editing, free size",
        ),
        ModelSpec(
            "qwen-image-2.0-pro", frozenset({T2I, EDIT}), (SYNC,), V2_PIXELS, n_max=6,
            images_min=1, images_max=3,
            snapshots=("qwen-image-2.0-pro-2026-03-03", "qwen-image-2.0-pro-2026-04-22",
                       "qwen-image-2.0-pro-2026-06-22"),
            title="Qwen-Image 2.0 Pro", edit_size=V2_EDIT,
            note_zh="新一代专业版：文生图与编辑", note_en="New generation, pro: generation and editing",
        ),
    )
}

_SNAPSHOT_OF: dict[str, str] = {snap: m.name for m in MODELS.values() for snap in m.snapshots}

DEFAULT_MODEL = {T2I: "qwen-image-plus", EDIT: "qwen-image-edit-plus"}


def get_model(name: str) -> ModelSpec | None:
    """The spec for ``name`` (a model or one of its dated snapshots), or None if unknown."""
    name = (name or "").strip()
    return MODELS.get(name) or MODELS.get(_SNAPSHOT_OF.get(name, ""))


def all_model_names() -> list[str]:
    """Every accepted model name, snapshots included (the emulator serves all of them)."""
    return [n for m in MODELS.values() for n in (m.name, *m.snapshots)]


def models_for(task: str) -> list[ModelSpec]:
    """Models that can do ``task``, defaults first."""
    specs = [m for m in MODELS.values() if m.does(task)]
    return sorted(specs, key=lambda m: m.name != DEFAULT_MODEL.get(task))


def default_model(task: str, best: bool = False) -> str:
    """The product rule: Plus unless the user asks for the best quality, then Max."""
    name = DEFAULT_MODEL[task]
    return (MODELS[name].best or name) if best else name


def size_options(model: str, task: str = T2I) -> list[SizeOption]:
    """Preset sizes for ``model`` and ``task`` (empty for unknown models)."""
    spec = get_model(model)
    return list(spec.size_rule(task).presets) if spec else []


_SIZE_RE = re.compile(r"^\s*(\d{1,5})\s*([*xX×,]|\s)\s*(\d{1,5})\s*$")
_RATIO_RE = re.compile(r"^\s*(\d{1,2})\s*:\s*(\d{1,2})\s*$")


def parse_size(text: str) -> tuple[int, int] | None:
    """``"1328*1328"``, ``"1328x1328"`` or ``"1328 × 1328"`` -> ``(1328, 1328)``; else None."""
    m = _SIZE_RE.match(text or "")
    return (int(m.group(1)), int(m.group(3))) if m else None


@dataclass
class SizeCheck:
    """Outcome of :func:`check_size`: the size to send (or None = service default) and why."""

    value: str | None
    ok: bool = True
    notes: list[tuple[str, str]] = field(default_factory=list)  # (zh, en) pairs told to the user
    problem: tuple[str, str] | None = None  # (zh, en) when not ok


def check_size(spec: ModelSpec, task: str, size: str | None) -> SizeCheck:
    """Validate and normalise ``size`` for ``spec``.

    Accepts ``None``/``""``/``"auto"`` (the model's default), an aspect label such as
    ``"16:9"`` (the preset with that ratio), or ``W*H`` (``x`` and ``×`` accepted and told).
    Free-size models get sides snapped to multiples of 16, and the user is told.
    """
    rule = spec.size_rule(task)
    text = (size or "").strip()
    if text.lower() in ("", "auto", "default", "自动", "默认"):
        return SizeCheck(rule.default)
    allowed = "、".join(p.value for p in rule.presets)
    allowed_en = ", ".join(p.value for p in rule.presets)
    m = _RATIO_RE.match(text)
    if m:
        ratio = f"{int(m.group(1))}:{int(m.group(2))}"
        for p in rule.presets:
            if p.ratio == ratio:
                return SizeCheck(p.value)
        return SizeCheck(None, False, problem=(
            f"{spec.name} 没有 {ratio} 的预设尺寸，可选：{allowed}",
            f"{spec.name} has no {ratio} preset; choose one of: {allowed_en}",
        ))
    wh = parse_size(text)
    if wh is None:
        return SizeCheck(None, False, problem=(
            f"尺寸“{text}”无法识别，请写成 宽*高，例如 1328*1328",
            f"Size '{text}' is not understood; write it as width*height, e.g. 1328*1328",
        ))
    w, h = wh
    notes: list[tuple[str, str]] = []
    if "*" not in text:
        notes.append((f"尺寸已按 {w}*{h} 理解（API 使用 * 分隔）",
                      f"Read size '{text}' as {w}*{h} (the API separates with *)"))
    if rule.kind == "fixed":
        if f"{w}*{h}" in {p.value for p in rule.presets}:
            return SizeCheck(f"{w}*{h}", notes=notes)
        return SizeCheck(None, False, problem=(
            f"{spec.name} 只支持这些尺寸：{allowed}（{w}*{h} 不在其中）",
            f"{spec.name} only accepts these sizes: {allowed_en} ({w}*{h} is not one of them)",
        ))
    sw = max(rule.step, round(w / rule.step) * rule.step)
    sh = max(rule.step, round(h / rule.step) * rule.step)
    if rule.kind == "sides":
        lo, hi = rule.min_side, rule.max_side
        if not (lo <= sw <= hi and lo <= sh <= hi):
            return SizeCheck(None, False, problem=(
                f"{spec.name} 的宽和高都须在 {lo}–{hi} 像素之间（收到 {w}*{h}）",
                f"{spec.name} needs width and height each within {lo}-{hi} px (got {w}*{h})",
            ))
    else:
        if not (rule.min_pixels <= sw * sh <= rule.max_pixels):
            return SizeCheck(None, False, problem=(
                f"{spec.name} 的总像素须在 512*512 到 2048*2048 之间（收到 {w}*{h}）",
                f"{spec.name} needs total pixels between 512*512 and 2048*2048 (got {w}*{h})",
            ))
    if (sw, sh) != (w, h):
        notes.append((f"尺寸已对齐到 16 的倍数：{w}*{h} → {sw}*{sh}",
                      f"Size snapped to multiples of 16: {w}*{h} -> {sw}*{sh}"))
    return SizeCheck(f"{sw}*{sh}", notes=notes)
