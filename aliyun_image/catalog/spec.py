"""Model catalogue: what each model accepts, read from data.

The facts live in ``models.toml`` beside this module (read with :mod:`tomllib`); a user file
named by ``ALIYUN_IMAGE_MODELS`` (same schema) adds models or corrects fields without a
release. This module holds the rules: how a size is checked, which model the product picks,
what an unknown model id is allowed to do. Everything that validates a request (the service
*and* the emulator) reads this table, so the two never disagree about a limit.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from .loader import PARAMS, CatalogData, load_data
from .loader import CatalogError as CatalogError
from ..i18n import LANGUAGES, Message, catalogue, msg, render, t
from ..enums import Endpoint, Task

T2I = Task.T2I  #: text-to-image
EDIT = Task.EDIT  #: single-image edit and multi-image fusion (same endpoint, 1-3 images)
SYNC = Endpoint.SYNC
ASYNC = Endpoint.ASYNC

PROMPT_MAX = 800  # the legacy line's limit; each model has its own (``ModelSpec.prompt_max``)
NEGATIVE_MAX = 500
SEED_MAX = 2147483647
GENERIC_N_MAX = 6  # an unknown model: at most this many images, one request each

DEFAULT_NEGATIVE = "低分辨率，低画质，肢体畸形，手指畸形，画面过饱和，蜡像感"
DEFAULT_PROMPT_EXTEND = True
DEFAULT_WATERMARK = False
PROMPT_EXTEND_MODES = ("direct", "agent")  # prompt_extend_mode: agent (text-to-image only) plans the picture
ASYNC_SYNTHESIS = "image-synthesis"  # the legacy async task API: text2image/image-synthesis, prompt in input
ASYNC_GENERATION = "image-generation"  # the 3.0 line's: image-generation/generation, the messages body
ENV_MODELS = "ALIYUN_IMAGE_MODELS"
BUILTIN_FILE = Path(__file__).with_name("models.toml")

# The product rule: Plus by default, Max when the user asks for the best quality.
DEFAULT_MODEL: dict[str, str] = {T2I: "qwen-image-plus", EDIT: "qwen-image-edit-plus"}
# Models priced by output size bill "2K" above this output area, "1K" up to it (the 3.0 reference's
# usage.output_image_type: qima_output_1k / qima_output_2k).
TIER_2K_PIXELS = 2_250_000
TIER_1K, TIER_2K = "1k", "2k"
DEFAULT_CURRENCY = "CNY"
_SNAPSHOT_RE = re.compile(r"-\d{4}-\d{2}-\d{2}$")


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

    ``kind``: ``fixed`` (only :attr:`presets`), ``sides`` (each side within
    ``min_side..max_side``), ``pixels`` (``width*height`` within ``min_pixels..max_pixels``),
    ``none`` (no size parameter: the output follows the input) or ``free`` (an unknown model:
    passed through unchecked). Free sizes are snapped to multiples of :attr:`step`, as the
    service does. ``max_aspect`` bounds the longer side over the shorter (8: from 1:8 to 8:1; 0: no bound).
    """

    kind: str
    presets: tuple[SizeOption, ...]
    default: str | None  # None = the service picks (edit: follows the last input image)
    min_side: int = 0
    max_side: int = 0
    min_pixels: int = 0
    max_pixels: int = 0
    step: int = 16
    max_aspect: int = 0
    picked: str | None = None  # with no size: what the service was seen to pick (``default`` None)

    @property
    def free(self) -> bool:
        """True when any width and height within the limits may be asked for."""
        return self.kind in ("sides", "pixels", "free")


@dataclass(frozen=True)
class ModelSpec:
    """What one model id (a model, an alias or a dated snapshot) does and accepts."""

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
    best: str | None = None  # the "best quality" sibling (Plus -> Max)
    title: str = ""
    note: Message | str = ""  # a catalogue text (built-in models) or a user file's own words
    edit_size: SizeRule | None = None  # size rule when editing, if it differs from t2i
    family: str = ""
    status: str = "current"  # current | legacy
    params: frozenset[str] = frozenset({"negative_prompt", "prompt_extend", "watermark", "seed"})
    refuses: frozenset[str] = frozenset()  # parameters the service answers with 400 (never sent)
    async_api: str = ASYNC_SYNTHESIS  # which task API the async endpoint means (see models.toml)
    prompt_extend_default: bool = DEFAULT_PROMPT_EXTEND
    regions: tuple[str, ...] = ("beijing", "singapore")
    price: dict[str, float] = field(default_factory=dict)  # per image (1K when tiered), by region
    price_extend: dict[str, float] = field(default_factory=dict)  # with prompt rewriting on
    price_2k: dict[str, float] = field(default_factory=dict)  # per image above TIER_2K_PIXELS
    price_input: dict[str, float] = field(default_factory=dict)  # per input image (edit, fusion)
    currencies: dict[str, str] = field(default_factory=dict)  # by region; absent: CNY
    base: str = ""  # the entry this one copies (a snapshot's model, an alias's sibling)
    alias_of: str = ""
    unverified: frozenset[str] = frozenset()
    source: str = ""
    checked: str = ""
    generic: bool = False  # not in the catalogue: local checks are off
    task_limit: int | None = None  # the scheduler's starting tasks at once, if the data gives one

    def does(self, task: str) -> bool:
        """True when the model can do ``task`` (:data:`T2I` or :data:`EDIT`)."""
        return task in self.tasks

    def size_rule(self, task: str) -> SizeRule:
        """The size rule that applies to ``task``."""
        if task == EDIT and self.edit_size is not None:
            return self.edit_size
        return self.size

    def accepts(self, param: str) -> bool:
        """True when the model takes the optional parameter ``param`` (e.g. ``negative_prompt``)."""
        return param in self.params

    @property
    def fixed_n(self) -> bool:
        """True when one request yields exactly one image (several images: several requests)."""
        return self.n_max == 1

    @property
    def snapshot_of(self) -> str:
        """The model a dated snapshot pins (``""`` for models and aliases)."""
        return self.base if _SNAPSHOT_RE.search(self.name) and self.base else ""

    @property
    def snapshots(self) -> tuple[str, ...]:
        """Dated snapshots of this model in the catalogue."""
        return tuple(m.name for m in models().values() if m.snapshot_of == self.name)

    @property
    def verified(self) -> bool:
        """False when the whole entry rests on unverified facts."""
        return "*" not in self.unverified

    def price_in(self, region: str, prompt_extend: bool = False, tier: str = TIER_1K) -> float | None:
        """Price per generated image in ``region`` (None: not known, never guessed); ``tier``: the
        output's size class (:func:`tier_of`), for models priced by it."""
        if tier == TIER_2K and region in self.price_2k:
            return self.price_2k[region]
        table = self.price_extend if prompt_extend and self.price_extend else self.price
        return table.get(region)

    def input_price_in(self, region: str) -> float | None:
        """What each input image of an edit or fusion adds in ``region`` (None: nothing known to)."""
        return self.price_input.get(region)

    def currency_in(self, region: str) -> str:
        """The currency of the prices in ``region`` (the catalogue says; CNY when it does not)."""
        return self.currencies.get(region, DEFAULT_CURRENCY)

    def tiered_in(self, region: str) -> bool:
        """True when the output's size changes the price in ``region``."""
        return region in self.price_2k and self.price_2k[region] != self.price.get(region)


# --- building specs from the data ----------------------------------------------------------------
def _ratio_presets(ratios: list[str], pixels: int, step: int = 16) -> tuple[SizeOption, ...]:
    """Presets near ``pixels`` total for each ``w:h`` ratio, sides multiples of ``step``."""
    out = []
    for ratio in ratios:
        a, b = (int(x) for x in ratio.split(":"))
        w = round(math.sqrt(pixels * a / b) / step) * step
        h = round(w * b / a / step) * step
        out.append(SizeOption(w, h, ratio))
    return tuple(out)


def _size_rule(raw: dict) -> SizeRule:
    presets = tuple(SizeOption(int(w), int(h), str(r)) for r, w, h in raw.get("presets", ()))
    if not presets and raw.get("ratios"):
        presets = _ratio_presets(list(raw["ratios"]), int(raw.get("preset_pixels", 1024 * 1024)))
    return SizeRule(kind=raw["kind"], presets=presets, default=raw.get("default") or None,
                    min_side=raw.get("min_side", 0), max_side=raw.get("max_side", 0),
                    min_pixels=raw.get("min_pixels", 0), max_pixels=raw.get("max_pixels", 0),
                    max_aspect=raw.get("max_aspect", 0), picked=raw.get("picked") or None)


def _spec(raw: dict, sizes: dict[str, SizeRule]) -> ModelSpec:
    n = raw.get("n", [1, 1])
    images = raw.get("images", [0, 0])
    return ModelSpec(
        name=raw["id"], tasks=frozenset(Task(t) for t in raw["tasks"]),
        endpoints=tuple(Endpoint(e) for e in raw.get("endpoints", ["sync"])),
        size=sizes[raw.get("size", "none")],
        edit_size=sizes[raw["edit_size"]] if raw.get("edit_size") else None,
        n_min=n[0], n_max=n[1], images_min=images[0], images_max=images[1],
        prompt_max=raw.get("prompt_max", PROMPT_MAX), negative_max=raw.get("negative_max", NEGATIVE_MAX),
        best=raw.get("best") or None, title=raw.get("display") or raw["id"],
        note=_note(raw), family=raw.get("family", ""),
        status=raw.get("status", "current"),
        params=frozenset(raw.get("params", ModelSpec.params)), refuses=frozenset(raw.get("refuses", ())),
        async_api=raw.get("async_api", ASYNC_SYNTHESIS),
        prompt_extend_default=raw.get("prompt_extend_default", DEFAULT_PROMPT_EXTEND),
        regions=tuple(raw.get("regions", ("beijing", "singapore"))),
        price=dict(raw.get("price", {})), price_extend=dict(raw.get("price_extend", {})),
        price_2k=dict(raw.get("price_2k", {})), price_input=dict(raw.get("price_input", {})),
        currencies=dict(raw.get("currency", {})),
        base=raw.get("base", ""), alias_of=raw.get("alias_of", ""),
        unverified=frozenset(raw.get("unverified", ())), source=raw.get("source", ""),
        checked=raw.get("checked", ""), task_limit=raw.get("task_limit"))


def _note(raw: dict) -> Message | str:
    """The model's note: ``note`` names a catalogue text (``catalog.note.qwen_image_plus``), or is a
    user file's own words, shown as written."""
    note = raw.get("note") or ""
    return msg(note) if note in catalogue("en") else note


@dataclass(frozen=True)
class Catalog:
    """Every model of the catalogue, by id, and the files it was read from."""

    models: dict[str, ModelSpec]
    files: tuple[Path, ...]


_cache: dict[tuple, Catalog] = {}


def user_file() -> Path | None:
    """The user's catalogue file (``ALIYUN_IMAGE_MODELS``), if set."""
    value = os.environ.get(ENV_MODELS, "").strip()
    return Path(value).expanduser() if value else None


def load(user: Path | None = None) -> Catalog:
    """Read the built-in table and ``user`` on top; raises :class:`CatalogError` naming the
    file, model and field of anything malformed."""
    data: CatalogData = load_data(BUILTIN_FILE, user)
    sizes = {name: _size_rule(raw) for name, raw in data.sizes.items()}
    specs = {mid: _spec(raw, sizes) for mid, raw in data.models.items()}
    return Catalog(specs, data.files)


def catalog() -> Catalog:
    """The catalogue in effect (cached; re-read when the user file changes)."""
    user = user_file()
    try:
        stamp = user.stat().st_mtime_ns if user else None
    except OSError:
        stamp = -1  # missing file: load() reports it
    key = (str(user), stamp)
    if key not in _cache:
        _cache.clear()
        _cache[key] = load(user)
    return _cache[key]


def models() -> dict[str, ModelSpec]:
    """Every model id of the catalogue in effect."""
    return catalog().models


def generic_spec(name: str) -> ModelSpec:
    """Rules for a model id the catalogue does not know: the sync endpoint, size passed
    through, one image per request, no local limits (the service's own error says what it
    refuses). Every optional parameter is let through: what the user asks for is sent."""
    free = SizeRule(kind="free", presets=(), default=None)
    return ModelSpec(name=name, tasks=frozenset({T2I, EDIT}), endpoints=(SYNC,), size=free, n_max=1,
                     params=frozenset(PARAMS),
                     images_min=1, images_max=3, prompt_max=1_000_000, negative_max=1_000_000,
                     title=name, family="?", status="unknown", regions=(), generic=True,
                     unverified=frozenset({"*"}))


def get_model(name: str) -> ModelSpec | None:
    """The spec for ``name`` (a model, alias or dated snapshot), or None if unknown."""
    return models().get((name or "").strip())


def all_model_names() -> list[str]:
    """Every model id in the catalogue (the emulator serves all of them)."""
    return list(models())


def models_for(task: str, snapshots: bool = False) -> list[ModelSpec]:
    """Models that can do ``task``: the default first, then current before legacy, by family.

    Dated snapshots only with ``snapshots=True`` (they are for pinning, not for browsing).
    """
    specs = [m for m in models().values() if m.does(task) and (snapshots or not m.snapshot_of)]
    return sorted(specs, key=lambda m: (m.name != DEFAULT_MODEL.get(task), m.status != "current"))


def takers(param: str, task: str | None = None) -> list[str]:
    """The models (no dated snapshots) that take the optional parameter ``param``, and do ``task``
    when given: what a refusal of that parameter points the user to."""
    return [m.name for m in models().values()
            if m.accepts(param) and not m.snapshot_of and (task is None or m.does(task))]


def default_model(task: str, best: bool = False) -> str:
    """The product rule: Plus unless the user asks for the best quality, then Max."""
    name = DEFAULT_MODEL[task]
    spec = get_model(name)
    return (spec.best or name) if best and spec else name


def best_of(spec: ModelSpec) -> ModelSpec:
    """The "best quality" sibling of ``spec`` (itself when it has none)."""
    sibling = get_model(spec.best) if spec.best else None
    return sibling or spec


def choose_model(task: str, model: str | None, best: bool = False) -> tuple[str, ModelSpec]:
    """The model a run of ``task`` (T2I or EDIT) uses and its rules: the one rule that the job, the page's
    model info and its cost line share.

    The named model (as typed: a dated snapshot is sent as it is), else :func:`default_model`; asking for
    the best quality turns a named model into its best sibling (Plus -> Max). An id the catalogue does
    not know keeps its name with generic rules (``spec.generic``): a newer model must not be blocked.
    """
    name = (model or "").strip() or default_model(task, best)
    spec = get_model(name)
    if spec is None:
        return name, generic_spec(name)
    if best and spec.best:
        spec = best_of(spec)
        return spec.name, spec
    return name, spec


def size_options(model: str, task: str = T2I) -> list[SizeOption]:
    """Preset sizes for ``model`` and ``task`` (empty for unknown models)."""
    spec = get_model(model)
    return list(spec.size_rule(task).presets) if spec else []


def with_region_prices(spec: ModelSpec, region: str) -> ModelSpec:
    """``spec`` restricted to one region's prices (for display)."""
    def one(table: dict) -> dict:
        return {region: table[region]} if region in table else {}
    return replace(spec, price=one(spec.price), price_extend=one(spec.price_extend), price_2k=one(spec.price_2k),
                   price_input=one(spec.price_input), currencies=one(spec.currencies))


def tier_of(width: int, height: int) -> str:
    """The size class an output of ``width`` x ``height`` is billed as: 2K above
    :data:`TIER_2K_PIXELS`, else 1K."""
    return TIER_2K if width * height > TIER_2K_PIXELS else TIER_1K


def billed_tier(output_image_type: str) -> str | None:
    """The size class a reply's ``usage.output_image_type`` names (``qima_output_2k`` -> ``"2k"``);
    None when it names none."""
    kind = (output_image_type or "").strip().lower()
    if kind.endswith("_2k") or kind == "2k":
        return TIER_2K
    if kind.endswith("_1k") or kind == "1k":
        return TIER_1K
    return None


# --- sizes --------------------------------------------------------------------------------------
_SIZE_RE = re.compile(r"^\s*(\d{1,5})\s*([*xX×,]|\s)\s*(\d{1,5})\s*$")
_RATIO_RE = re.compile(r"^\s*(\d{1,2})\s*:\s*(\d{1,2})\s*$")


def parse_size(text: str) -> tuple[int, int] | None:
    """``"1328*1328"``, ``"1328x1328"`` or ``"1328 × 1328"`` -> ``(1328, 1328)``; else None."""
    m = _SIZE_RE.match(text or "")
    return (int(m.group(1)), int(m.group(3))) if m else None


class _Listing(Message):
    """Texts joined the reader's way: "a, b" in English, "a、b" in Chinese and Japanese."""

    def __init__(self, items: Iterable[Message | str]):
        super().__init__("catalog.list_sep", {"items": tuple(items)})

    def render(self, lang: str) -> str:
        return t(lang, self.key).join(render(lang, item) for item in self.params["items"])


def listing(items: Iterable[Message | str]) -> Message:
    """``items`` (texts or model names) as one list, joined in the reader's language when rendered."""
    return _Listing(items)


@functools.cache
def _auto_words() -> frozenset[str]:
    """What a size box may say for "the model's default", in every language of the page."""
    return frozenset({"", "auto", "default"} | {t(lang, key).lower() for lang in LANGUAGES
                                               for key in ("catalog.size_auto", "catalog.size_default")})


@dataclass
class SizeCheck:
    """Outcome of :func:`check_size`: the size to send (or None = service default) and why."""

    value: str | None
    ok: bool = True
    notes: list[Message] = field(default_factory=list)  # told to the user
    problem: Message | None = None  # why not, when not ok


def check_size(spec: ModelSpec, task: str, size: str | None) -> SizeCheck:
    """Validate and normalise ``size`` for ``spec``.

    Accepts ``None``/``""``/``"auto"`` (the model's default), an aspect label such as
    ``"16:9"`` (the preset with that ratio), or ``W*H`` (``x`` and ``×`` accepted and told).
    Free-size models get sides snapped to multiples of 16, and the user is told.
    """
    rule = spec.size_rule(task)
    text = (size or "").strip()
    if text.lower() in _auto_words():
        return SizeCheck(rule.default)
    if rule.kind == "none":
        return SizeCheck(None, False, problem=msg("catalog.size_takes_none", model=spec.name))
    if _RATIO_RE.match(text):
        return _preset_for_ratio(spec, rule, text)
    wh = parse_size(text)
    if wh is None:
        return SizeCheck(None, False, problem=msg("catalog.size_unreadable", size=text))
    notes: list[Message] = []
    if "*" not in text:
        notes.append(msg("catalog.size_read_as", size=text, width=wh[0], height=wh[1]))
    if rule.kind == "free":
        return SizeCheck(f"{wh[0]}*{wh[1]}", notes=notes)
    if rule.kind == "fixed":
        return _fixed_size(spec, rule, wh, notes)
    return _free_size(spec, rule, wh, notes)


def _allowed(rule: SizeRule) -> Message:
    return listing(p.value for p in rule.presets)


def _preset_for_ratio(spec: ModelSpec, rule: SizeRule, text: str) -> SizeCheck:
    m = _RATIO_RE.match(text)
    assert m
    ratio = f"{int(m.group(1))}:{int(m.group(2))}"
    for p in rule.presets:
        if p.ratio == ratio:
            return SizeCheck(p.value)
    return SizeCheck(None, False, problem=msg("catalog.size_no_ratio", model=spec.name, ratio=ratio,
                                              sizes=_allowed(rule)))


def _fixed_size(spec: ModelSpec, rule: SizeRule, wh: tuple[int, int], notes: list) -> SizeCheck:
    w, h = wh
    if f"{w}*{h}" in {p.value for p in rule.presets}:
        return SizeCheck(f"{w}*{h}", notes=notes)
    return SizeCheck(None, False, problem=msg("catalog.size_not_preset", model=spec.name, sizes=_allowed(rule),
                                              size=f"{w}*{h}"))


def _free_size(spec: ModelSpec, rule: SizeRule, wh: tuple[int, int], notes: list) -> SizeCheck:
    w, h = wh
    sw = max(rule.step, round(w / rule.step) * rule.step)
    sh = max(rule.step, round(h / rule.step) * rule.step)
    if rule.kind == "sides" and not (rule.min_side <= sw <= rule.max_side and rule.min_side <= sh <= rule.max_side):
        return SizeCheck(None, False, problem=msg("catalog.size_sides_range", model=spec.name, low=rule.min_side,
                                                  high=rule.max_side, size=f"{w}*{h}"))
    if rule.kind == "pixels" and not (rule.min_pixels <= sw * sh <= rule.max_pixels):
        return SizeCheck(None, False, problem=msg(
            "catalog.size_pixels_range", model=spec.name, low=pixels_label(rule.min_pixels),
            high=pixels_label(rule.max_pixels), size=f"{w}*{h}"))
    if rule.max_aspect and max(sw, sh) > rule.max_aspect * min(sw, sh):
        return SizeCheck(None, False, problem=msg("catalog.params.size_aspect", model=spec.name,
                                                  ratio=f"{rule.max_aspect}:1", size=f"{w}*{h}"))
    if (sw, sh) != (w, h):
        notes.append(msg("catalog.size_snapped", size=f"{w}*{h}", snapped=f"{sw}*{sh}"))
    return SizeCheck(f"{sw}*{sh}", notes=notes)


def pixels_label(pixels: int) -> str:
    """``4194304`` -> ``"2048*2048"`` (a square's side when it is one), else the number."""
    side = math.isqrt(pixels)
    return f"{side}*{side}" if side * side == pixels else f"{pixels:,}"
