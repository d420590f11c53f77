"""What the user asked for, checked before any money is spent.

:func:`build_job` turns loose user input (from the CLI, the UI or Python) into a
:class:`Job`: model resolved by the Plus/Max rule, prompt and negative checked, size
normalised, ``n`` split into requests, seeds chosen, input images prepared. Anything the API
would reject is refused here with a catalogue message (``job.*``). Building a job does no
network I/O (input URLs are passed through, local images are read and prepared).

Fusion references (:func:`follow`) live here too: an instruction that names an image the request
does not carry is refused before anything is sent, whichever caller (CLI, page, MCP) built the job.
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
from .catalog import REGIONS as CATALOG_REGIONS
from .catalog import ASYNC, EDIT, SYNC, T2I, ModelSpec, listing
from .config import Settings, region_name
from .errors import ValidationError
from .i18n import Message, msg
from .images import PreparedImage, prepare_images
from .enums import Relation, Task

TASKS = tuple(Task)
MAX_FANOUT = 6  # models fixed at n=1: at most this many parallel requests per action
_INVISIBLE = re.compile(r"^[\s\u200b-\u200f\u2060\ufeff\u202a-\u202e]+|[\s\u200b-\u200f\u2060\ufeff\u202a-\u202e]+$")


@dataclass(frozen=True)
class Parent:
    """Where a result came from: stored result ``id`` (None for a batch item: a batch is not a result) and
    how (:class:`~aliyun_image.enums.Relation`); ``position`` is the fusion slot (1-based, as sent) or the
    batch item's number, ``batch`` the batch's id. Stored as its lineage (:mod:`aliyun_image.storage.lineage`)."""

    id: int | None
    relation: Relation
    position: int = 0
    batch: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain data, as a :class:`~aliyun_image.storage.NewResult` carries it (and its journal keeps it)."""
        return {"id": self.id, "relation": str(self.relation), "position": self.position, "batch": self.batch}


def merge_parents(*groups: Sequence[Parent]) -> list[Parent]:
    """``groups`` in order, each stored result once (the first mention wins: an explicit relation, such as a
    variation, before one recognised from the inputs); batch items kept as they are."""
    seen: set[int] = set()
    out: list[Parent] = []
    for p in (p for group in groups for p in group):
        if p.id is not None and p.id in seen:
            continue
        if p.id is not None:
            seen.add(p.id)
        out.append(p)
    return out


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
    notes: list[Message] = field(default_factory=list)  # told to the user: a size read, a model unknown...
    extend_mode: str | None = None  # prompt_extend_mode ("direct" / "agent"); None: not sent (the model's default)
    thinking: bool | None = None  # enable_thinking; None: not sent (the model's default)
    # Where the results come from (edit of #12, variation of #7...), recorded with each result; the service adds
    # the stored results it recognises among the input images (generation.lineage).
    parents: list[Parent] = field(default_factory=list)

    @property
    def requests(self) -> int:
        """How many API requests the job makes."""
        return len(self.seeds)

    def params(self) -> dict[str, Any]:
        """The parameters worth storing with each result (no key, no image bytes)."""
        out: dict[str, Any] = {"size": self.size, "n": self.n, "prompt_extend": self.prompt_extend,
                               "watermark": self.watermark, "endpoint": self.endpoint}
        # Only what was sent: a model without these parameters keeps the recipe it always had.
        if self.extend_mode is not None:
            out["prompt_extend_mode"] = self.extend_mode
        if self.thinking is not None:
            out["enable_thinking"] = self.thinking
        return out

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


def _refuse(key: str, code: str, **params: Any) -> ValidationError:
    return ValidationError(msg(key, **params), code=code)


def _as_int(value: Any, what: Message) -> int:
    """``value`` as a whole number, or a refusal naming ``what`` it is (``job.what_seed``...)."""
    if isinstance(value, bool):
        raise _refuse("job.not_whole", "Validation.Type", what=what)
    try:
        f = float(str(value).strip())
    except ValueError:
        raise _refuse("job.not_whole_got", "Validation.Type", what=what, value=str(value)) from None
    if f != int(f):
        raise _refuse("job.not_whole_got", "Validation.Type", what=what, value=str(value))
    return int(f)


def resolve_model(task: str, model: str | None, best: bool) -> tuple[str, ModelSpec, list[Message]]:
    """Pick the model (the rule is :func:`aliyun_image.catalog.choose_model`: explicit name, else Plus, or
    Max when ``best`` is asked for) and check that it does ``task``.

    An id the catalogue does not know is still sent, with generic rules and a note saying that
    local checks were off (a model released after this catalogue must not be blocked). Returns
    the name, its rules and the notes for the user.
    """
    need = T2I if task == Task.T2I else EDIT
    name, spec = catalog.choose_model(need, model, best)
    if spec.generic:
        return name, spec, [_unknown_model_note(name, need)]
    if not spec.does(need):
        what = msg("job.task_t2i" if need == T2I else "job.task_edit")
        others = catalog.listing(m.name for m in catalog.models_for(need)[:4])
        asked = (model or "").strip() or name  # the name the user typed, not its best sibling
        raise _refuse("job.model_not_for_task", "Validation.Model", model=asked, task=what, others=others)
    return name, spec, [msg("job.model_unverified", model=name)] if not spec.verified else []


def _unknown_model_note(name: str, task: str) -> Message:
    close = difflib.get_close_matches(name, [m.name for m in catalog.models_for(task, snapshots=True)], n=1)
    return msg("job.model_unknown", model=name, hint=msg("job.did_you_mean", model=close[0]) if close else "")


def build_job(task: str, prompt: str | None, *, images: Sequence[Any] = (), model: str | None = None,
              best: bool = False, size: str | None = None, n: Any = 1, seed: Any = None,
              negative: str | None = None, prompt_extend: bool | None = None,
              watermark: bool = catalog.DEFAULT_WATERMARK, use_async: bool = False,
              extend_mode: str | None = None, thinking: bool | None = None,
              image_options: dict | None = None, rng: random.Random | None = None,
              parents: Sequence[Parent] = ()) -> Job:
    """Validate user input for ``task`` (``t2i``, ``edit`` or ``fuse``) and return a :class:`Job`.

    ``negative=None`` means the product default negative prompt; ``""`` means none.
    ``prompt_extend=None`` means the model's own default (on, except for z-image-turbo).
    ``extend_mode`` (``"direct"`` / ``"agent"``) and ``thinking`` go to models that take them
    (:func:`~aliyun_image.catalog.takers`); None sends nothing (the service's default). Asked of a
    model that does not take them, they are refused, naming the models that do; with rewriting off
    they are not sent, with a note (both act only on the rewriting).
    ``seed=None`` (or ``-1``/``"random"``) means a random seed *chosen here*, so the seed actually
    used is always known and stored. ``parents``: the stored results this job comes from, as the caller knows
    them (a variation's source, a ``#12`` input). Raises :class:`~aliyun_image.errors.ValidationError`.
    Checks run cheapest first, so a typo in the prompt is reported before an image is decoded.
    """
    if task not in TASKS:
        raise _refuse("job.task_unknown", "Validation.Task", task=task)
    kind = Task(task)
    name, spec, notes = resolve_model(kind, model, best)
    text, neg, text_notes = _check_texts(kind, spec, prompt, negative)
    notes += text_notes
    extend = spec.prompt_extend_default if prompt_extend is None else bool(prompt_extend)
    mode, think, rewrite_notes = _check_rewriting(kind, spec, extend, extend_mode, thinking)
    notes += rewrite_notes
    checked = catalog.check_size(spec, T2I if kind == Task.T2I else EDIT, size)
    if not checked.ok:
        assert checked.problem
        raise ValidationError(checked.problem, code="Validation.Size")
    n = _check_n(spec, n)
    first_seed, seed_given = _first_seed(seed, rng)
    endpoint = _endpoint(name, spec, use_async)
    # Models fixed at n=1 fan out: one request per image, consecutive seeds, so "seed 42, 4 images"
    # is reproducible image by image. So do async runs: a task is recorded and collected as one
    # image (its row holds the task id).
    one_each = spec.fixed_n or endpoint == ASYNC
    requests_n = n if one_each else 1
    seeds = [(first_seed + i) % (catalog.SEED_MAX + 1) for i in range(requests_n)]
    prepared = _prepare_inputs(kind, spec, images, image_options, text)
    notes += list(checked.notes) + [note for im in prepared for note in im.notes]
    return Job(task=kind, model=name, spec=spec, prompt=text, negative=neg, size=checked.value, n=n,
               per_request=1 if one_each else n, seeds=seeds, seed_given=seed_given,
               prompt_extend=extend, watermark=bool(watermark),
               endpoint=endpoint, images=prepared, notes=notes, extend_mode=mode, thinking=think,
               parents=merge_parents(_check_parents(parents)))


def _check_parents(parents: Sequence[Any]) -> list[Parent]:
    """The parents a caller gave, as :class:`Parent` (a dict from a form or an API is read; anything else is
    dropped: lineage is a record, never a reason to refuse a paid run). Whose they are is checked when they are
    stored (:mod:`aliyun_image.storage.lineage`)."""
    out = []
    for p in list(parents or ())[:32]:
        if isinstance(p, dict):
            try:
                p = Parent(None if p.get("id") is None else int(p["id"]), Relation(str(p.get("relation"))),
                           int(p.get("position") or 0), str(p.get("batch") or "")[:64])
            except (TypeError, ValueError):
                continue
        if isinstance(p, Parent):
            out.append(p)
    return out


def _check_texts(task: Task, spec: ModelSpec, prompt: str | None,
                 negative: str | None) -> tuple[str, str, list[Message]]:
    """The cleaned prompt and negative prompt, within the model's limits, and notes."""
    notes: list[Message] = []
    text = clean_text(prompt)
    if not text:
        what = msg("job.what_prompt" if task == Task.T2I else "job.what_instruction")
        raise _refuse("job.prompt_empty", "Validation.EmptyPrompt", what=what)
    over = len(text) - spec.prompt_max
    if over > 0:
        chars = msg("job.characters_one" if over == 1 else "job.characters", n=over)
        raise _refuse("job.prompt_too_long", "Validation.PromptTooLong", length=len(text), limit=spec.prompt_max,
                      over=chars)
    neg = catalog.DEFAULT_NEGATIVE if negative is None else clean_text(negative)
    if not spec.accepts("negative_prompt"):
        # The model has no negative prompt (z-image-turbo): the product default is simply not
        # sent; one the user typed is dropped with a word, not refused.
        if neg and negative:
            notes.append(msg("job.negative_dropped", model=spec.name))
        return text, "", notes
    if len(neg) > spec.negative_max:
        raise _refuse("job.negative_too_long", "Validation.NegativeTooLong", length=len(neg),
                      limit=spec.negative_max)
    return text, neg, notes


# What the refusals and notes call the rewriting options (catalogue keys).
_PARAM_NAMES = {"prompt_extend_mode": "job.params.what_mode", "enable_thinking": "job.params.what_thinking"}


def not_taken(spec: ModelSpec, param: str, task: str) -> ValidationError:
    """The refusal of an optional parameter ``spec`` does not take, naming the models that do."""
    takers = catalog.takers(param, task)
    return _refuse("job.params.not_taken", "Validation.Param", model=spec.name, what=msg(_PARAM_NAMES[param]),
                   models=listing(takers) if takers else msg("catalog.no_regions"))


def _check_rewriting(task: Task, spec: ModelSpec, extend: bool, mode: Any,
                     thinking: Any) -> tuple[str | None, bool | None, list[Message]]:
    """The rewriting mode and thinking switch to send (None: not sent), and notes.

    Refused: an unknown mode, a parameter the model does not take, ``agent`` for an edit or a
    fusion (the service answers 400). With rewriting off neither acts, so neither is sent and the
    user is told, rather than refused: a page keeps its switches' values when rewriting is turned off.
    """
    mode = (str(mode).strip().lower() or None) if mode is not None else None
    if mode is not None and mode not in catalog.PROMPT_EXTEND_MODES:
        raise _refuse("job.params.mode_unknown", "Validation.ExtendMode", mode=mode,
                      modes=listing(catalog.PROMPT_EXTEND_MODES))
    need = T2I if task == Task.T2I else EDIT
    for param, value in (("prompt_extend_mode", mode), ("enable_thinking", thinking)):
        if value is not None and not spec.accepts(param):
            raise not_taken(spec, param, need)
    if mode == "agent" and task != Task.T2I and not spec.generic:
        raise _refuse("job.params.agent_t2i_only", "Validation.ExtendMode", model=spec.name)
    if not extend:
        dropped = [msg(_PARAM_NAMES[p]) for p, v in (("prompt_extend_mode", mode), ("enable_thinking", thinking))
                   if v is not None]
        return None, None, [msg("job.params.rewriting_off", what=listing(dropped))] if dropped else []
    return mode, None if thinking is None else bool(thinking), []


def _check_references(instruction: str, count: int) -> None:
    """Refuse a fusion whose instruction names an image slot the request does not fill."""
    refs = follow(instruction, range(1, count + 1))
    if not refs.ok:
        raise _refuse("job.params.ref_missing", "Validation.References", refs=listing(str(n) for n in refs.missing),
                      count=count)


def _check_n(spec: ModelSpec, n: Any) -> int:
    """How many images, within what the model (or the fan-out cap) allows."""
    n = _as_int(n if n not in (None, "") else 1, msg("job.what_n"))
    top = MAX_FANOUT if spec.fixed_n else spec.n_max
    if not 1 <= n <= top:
        raise _refuse("job.n_range", "Validation.N", top=top, n=n)
    return n


def random_seed(seed: Any) -> bool:
    """True when ``seed`` asks for a random seed (None, ``""``, -1 or ``"random"``), not a fixed one."""
    return seed in (None, "", -1, "-1", "random")


def _first_seed(seed: Any, rng: random.Random | None) -> tuple[int, bool]:
    """The seed of the first request, and whether the user gave it (else it is drawn here)."""
    if random_seed(seed):
        return (rng or random.SystemRandom()).randint(0, catalog.SEED_MAX), False
    s = _as_int(seed, msg("job.what_seed"))
    if not 0 <= s <= catalog.SEED_MAX:
        raise _refuse("job.seed_range", "Validation.Seed", top=catalog.SEED_MAX, seed=s)
    return s, True


def _endpoint(name: str, spec: ModelSpec, use_async: bool) -> str:
    """Sync unless the user asked for the async task API (or the model has nothing else)."""
    endpoint = ASYNC if (use_async or SYNC not in spec.endpoints) else SYNC
    if endpoint == ASYNC and ASYNC not in spec.endpoints:
        raise _refuse("job.no_async", "Validation.Async", model=name)
    return endpoint


def _prepare_inputs(task: Task, spec: ModelSpec, images: Sequence[Any],
                    image_options: dict | None, instruction: str = "") -> list[PreparedImage]:
    """Input images checked for count (and a fusion's references to them) and prepared (read,
    decoded, normalised) for the wire."""
    given = [i for i in images if i is not None and i != ""]
    if task == Task.T2I:
        if images:
            raise _refuse("job.t2i_no_images", "Validation.Images")
        return []
    lo, hi = (2, spec.images_max) if task == Task.FUSE else (spec.images_min, spec.images_max)
    if not lo <= len(given) <= hi:
        if task == Task.FUSE:
            raise _refuse("job.fuse_images", "Validation.Images", low=lo, high=hi, count=len(given))
        raise _refuse("job.edit_images", "Validation.Images", low=lo, high=hi, count=len(given))
    if task == Task.FUSE:
        _check_references(instruction, len(given))
    return prepare_images(given, **(image_options or {}))


def check_offered(job: Job, settings: Settings) -> None:
    """Refuse a model the chosen region does not offer, before anything is sent or billed.

    Unknown models (sent with generic rules) and custom bases with no region asked for are
    let through: nothing is known about them. Regions the catalogue has no column for
    (workspace domains such as eu-central-1) get a note instead: their offer is not known.
    """
    s, spec = settings, job.spec
    if spec.generic or not s.region_known or s.region in spec.regions:
        return
    if s.region not in CATALOG_REGIONS:
        job.notes.append(msg("catalog.offer_unknown", region=region_name(s.region), model=job.model))
        return
    where = listing(region_name(r) for r in spec.regions) if spec.regions else msg("catalog.no_regions")
    raise ValidationError(msg("catalog.not_offered", model=job.model, region=region_name(s.region), regions=where),
                          code="Validation.Region")


# --- fusion references ------------------------------------------------------------------------------
# The instruction names images by slot: "\u56fe" N (what the model reads), its traditional form "\u5716" N and
# the Japanese "\u753b\u50cf" N, and the English "image N", "picture N", "img N", "pic N" (an optional "#").
# Digits are whole numbers: slot 12 is never slot 1 (2.1-pro takes ten images).
_REF = re.compile(r"(?P<word>\u56fe|\u5716|\u753b\u50cf|\b(?:image|picture|img|pic)\b)"
                  r"(?P<gap>\s*#?\s*)(?P<n>\d+)(?!\d)", re.I)


@dataclass(frozen=True)
class References:
    """What an instruction says about the fusion slots, against the slots that hold an image."""

    instruction: str  # the instruction with every reference renumbered to what is sent
    renumbered: dict[int, int] = field(default_factory=dict)  # slot -> position sent, where they differ
    missing: tuple[int, ...] = ()  # slots named in the instruction that hold no image

    @property
    def ok(self) -> bool:
        """True when every slot the instruction names holds an image."""
        return not self.missing


def follow(instruction: str, filled: Sequence[int]) -> References:
    """``instruction`` with its references moved to the positions the filled slots are sent in.

    ``filled`` lists the 1-based slots that hold an image (``[1, 3]``: slot 3 is sent second, so
    its reference becomes 2). A reference to a slot that holds no image is reported in
    ``missing`` (the caller refuses before sending); the instruction is then returned unchanged.
    """
    position = {slot: i for i, slot in enumerate(sorted(filled), 1)}
    named = [int(m.group("n")) for m in _REF.finditer(instruction or "")]
    missing = tuple(sorted({n for n in named if n not in position}))
    if missing:
        return References(instruction, {}, missing)
    moved = {n: position[n] for n in named if position[n] != n}
    if not moved:
        return References(instruction)

    def swap(m: re.Match[str]) -> str:
        return f"{m.group('word')}{m.group('gap')}{position[int(m.group('n'))]}"

    return References(_REF.sub(swap, instruction), moved)
