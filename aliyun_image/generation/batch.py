"""Batches: many text-to-image requests from a prompt list or a template, planned, priced, stored,
run through the scheduler and resumable without paying twice.

Input (:func:`expand`): one prompt per line (blank lines and lines starting with ``#`` ignored); a
line may use variables ``{name}`` whose values are given as axes (:class:`Axis`), expanded to every
combination of the axes it uses (:func:`itertools.product`, in the order given); ``{{`` and ``}}``
are literal braces. The axes ``model``, ``seed``, ``size`` and ``prompt_extend`` change the request's
options instead of (or as well as) its text: the X/Y grid (:mod:`.grid`) is a batch on two axes.

A batch is made of *units*, one API request each (a fan-out model's four images are four units,
each with its seed fixed at planning), so each unit's fate is known on its own:

1. :func:`plan` validates every item (:meth:`ImageService.plan`) and prices it by the models'
   estimate rules, per currency; :func:`prepare` stores the spec and every unit (``queued``) before
   anything is sent, under an id that the same input, options and owner find again (:func:`fingerprint`);
2. :func:`run` checks the budgets and the hosted quota for what is still missing (refused before
   anything is sent), then sends the missing units through :meth:`ImageService.run`, a bounded
   number at a time, each through the account's scheduler lane (fair with other runs: one batch
   counts as one run there). A unit is written ``sent`` just before its request leaves; Stop
   withdraws what is still queued (those units stay ``queued``) and keeps what was sent;
3. run again after a crash or a kill, a batch makes only what is missing, and never resends a unit
   that was ``sent``: its recorded rows are collected (an async task is polled by its id), and one
   with nothing recorded is reported as maybe billed, not resent (:data:`MAYBE`).

Every result of a batch carries the batch's id as its ``batch_id`` (a "run" in the gallery, so
"download this run" zips the whole batch) and its place in the batch as ``idx``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import random
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from .. import catalog
from ..catalog import listing
from ..enums import EventKind, Relation, Status, Task
from ..errors import (AliyunImageError, CancelledError, OutcomeUnknownError, ValidationError, may_be_billed,
                      unexpected)
from ..i18n import Message, msg
from ..jobs import Parent, random_seed
from ..money import HourlyQuota, Payers, Reservation, billing, estimate_for
from ..money.estimate import Estimate
from ..storage import Gallery, Record
from ..storage.batches import DONE, FAILED, MAYBE, QUEUED, SENT, BatchBook, BatchRow, UnitRow
from .run_context import BatchPart
from .service import Event, ImageService

log = logging.getLogger(__name__)

# Refusals of the key or the account: every request of a batch would get the same (not a model's or an input's).
ACCOUNT_REFUSALS = frozenset({"InvalidApiKey", "Arrearage"})
OPTION_AXES = ("model", "seed", "size", "prompt_extend")  # axes that change the request, not only its text
MAX_UNITS = 1000  # requests one batch may hold: more is a typo (a thousand values) more often than a plan
MAX_VALUES = 100  # values of one axis
MAX_VARIABLES = 20  # axes of one batch: more is a pasted list, not a template (and checking each costs)
_NAME = re.compile(r"^[^\W\d]\w*$")  # a variable's name: a word (any script), not starting with a digit
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _refuse(key: str, code: str = "Validation.Batch", **params: Any) -> ValidationError:
    return ValidationError(msg("batch." + key, **params), code=code)


# --- input ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Axis:
    """One variable (or option) and its values, in order."""

    name: str
    values: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Axis:
        """``NAME=V1,V2,...`` (``--var``, ``--x``, ``--y``); values are trimmed, empty ones dropped."""
        name, sep, rest = str(text).partition("=")
        name = name.strip()
        values = tuple(v.strip() for v in rest.split(",") if v.strip())
        if not sep or not _NAME.match(name) or not values:
            raise _refuse("bad_var", given=text)
        if len(values) > MAX_VALUES:
            raise _refuse("too_many_values", name=name, n=len(values), limit=MAX_VALUES)
        if len(set(values)) != len(values):
            raise _refuse("repeated_value", name=name)
        return cls(name, values)

    @property
    def option(self) -> bool:
        """True when the axis sets a request option (model, seed, size, prompt_extend)."""
        return self.name in OPTION_AXES


def prompt_lines(text: str) -> list[str]:
    """The prompts of a list: one per line, blank lines and ``#`` comments left out."""
    lines = (line.strip() for line in str(text or "").replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    return [line for line in lines if line and not line.startswith("#")]


def variables(line: str) -> list[str]:
    """The variable names a template line uses, in order of first use (``{{``/``}}`` are literal)."""
    names = [m.group(1).strip() for m in _TOKEN.finditer(line) if m.group(1) is not None]
    return list(dict.fromkeys(names))


def fill(line: str, values: dict[str, str]) -> str:
    """``line`` with each ``{name}`` replaced by its value and ``{{``/``}}`` made single braces."""
    def one(m: re.Match[str]) -> str:
        if m.group(0) in ("{{", "}}"):
            return m.group(0)[0]
        return values[m.group(1).strip()]

    return _TOKEN.sub(one, line)


@dataclass(frozen=True)
class Item:
    """One combination: a prompt, the axis values that made it, and the options they set."""

    prompt: str
    labels: dict[str, str]
    options: dict[str, Any]


def _option_value(name: str, value: str) -> Any:
    if name != "prompt_extend":
        return value
    low = value.lower()
    if low in _TRUE or low in _FALSE:
        return low in _TRUE
    raise _refuse("bad_switch", name=name, value=value)


def _axis_names(axes: Sequence[Axis]) -> list[str]:
    """The axes' names; refused when there are too many (before any work: 2000 one-value variables took
    23 s of CPU to refuse) or one is given twice."""
    if len(axes) > MAX_VARIABLES:
        raise ValidationError(msg("batch_limits.too_many_vars", n=len(axes), limit=MAX_VARIABLES),
                              code="Validation.Batch")
    names = [a.name for a in axes]
    if len(set(names)) != len(names):
        raise _refuse("repeated_var", name=next(n for n in names if names.count(n) > 1))
    return names


def expand(text: str, axes: Sequence[Axis] = ()) -> list[Item]:
    """Every item of a prompt list or template: each line times every combination of the axes it
    uses (its variables, and every option axis), in a stable order (lines in order, then
    :func:`itertools.product` of the axes in the order given). Refused (ValidationError, nothing
    sent): no prompt, a variable the line names but no axis gives, an axis no line uses, an axis
    given twice."""
    lines = prompt_lines(text)
    if not lines:
        raise _refuse("empty")
    names = _axis_names(axes)
    used: set[str] = set()
    for line in lines:
        for name in variables(line):
            if name not in names:
                known = ", ".join(names) or "-"
                raise _refuse("unknown_var", name=name, line=line[:80], known=known)
            used.add(name)
    for axis in axes:
        if not axis.option and axis.name not in used:
            raise _refuse("unused_var", name=axis.name)
    # Counted before any is made: three variables of 100 values are a million items (seconds of CPU
    # and ~0.5 GB to build), four a hundred million; each item is at least one request.
    count = 0
    for line in lines:
        here = set(variables(line))
        count += math.prod(len(a.values) for a in axes if a.option or a.name in here)
        if count > MAX_UNITS:
            raise _refuse("too_big", limit=MAX_UNITS)
    items: list[Item] = []
    for line in lines:
        here = set(variables(line))
        mine = [a for a in axes if a.option or a.name in used and a.name in here]
        for combo in itertools.product(*(a.values for a in mine)):
            labels = {a.name: v for a, v in zip(mine, combo, strict=True)}
            options = {a.name: _option_value(a.name, v) for a, v in zip(mine, combo, strict=True) if a.option}
            items.append(Item(fill(line, labels), labels, options))
    return items


def count(text: str, axes: Sequence[Axis] = ()) -> int:
    """How many items :func:`expand` would make of ``text`` and ``axes``, without making them (a page
    refuses a template of a million combinations before building any). Variables no axis gives count
    once here; :func:`expand` refuses them with its own message."""
    total = 0
    for line in prompt_lines(text):
        used = set(variables(line))
        n = 1
        for axis in axes:
            if axis.option or axis.name in used:
                n *= len(axis.values)
        total += n
    return total


@dataclass
class BatchSpec:
    """What the user asked for: the text, the axes, the options every item shares, and the kind."""

    text: str
    axes: tuple[Axis, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)  # JobOptions for every item (n, model, size...)
    kind: str = "batch"  # batch | grid

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (stored with the batch)."""
        return {"text": self.text, "axes": [[a.name, list(a.values)] for a in self.axes],
                "options": self.options, "kind": self.kind}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BatchSpec:
        """The spec stored with a batch."""
        return cls(d["text"], tuple(Axis(n, tuple(v)) for n, v in d.get("axes", [])), dict(d.get("options", {})),
                   d.get("kind", "batch"))


def fingerprint(spec: BatchSpec, owner: str | None) -> str:
    """The identity of a batch: the same prompts, axes, options and owner give the same one (so
    running the same file again resumes it instead of starting over)."""
    data = {"lines": prompt_lines(spec.text), "axes": spec.as_dict()["axes"], "kind": spec.kind,
            "options": {k: v for k, v in sorted(spec.options.items()) if v is not None}, "owner": owner}
    return hashlib.sha256(json.dumps(data, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


# --- plan and price --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SumEstimate(Estimate):
    """Several requests' estimates in one currency, summed (models may differ): what a budget checks."""

    amount: Decimal | None = None

    @property
    def total(self) -> Decimal | None:
        """The sum of the requests' estimates (None when one of them has no known price)."""
        return self.amount


@dataclass
class Plan:
    """A batch before it is sent: its items and units, notes for the user, and what it would cost."""

    spec: BatchSpec
    items: list[Item]
    units: list[UnitRow]  # batch_id '' until stored
    estimates: list[Estimate]  # one per unit
    notes: list[Message] = field(default_factory=list)

    @property
    def requests(self) -> int:
        """API requests."""
        return len(self.units)

    @property
    def images(self) -> int:
        """Images asked for."""
        return sum(u.images for u in self.units)

    def costs(self, units: Sequence[UnitRow] | None = None) -> list[SumEstimate]:
        """The estimate of ``units`` (default all), one per currency (CNY and USD are never added)."""
        chosen = {u.pos for u in (self.units if units is None else units)}
        return cost_of([e for u, e in zip(self.units, self.estimates, strict=True) if u.pos in chosen])

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: counts, and the total per currency as exact decimal text (None: unknown)."""
        return {"items": len(self.items), "requests": self.requests, "images": self.images,
                "cost": [c.as_dict() for c in self.costs()]}


def cost_of(estimates: Sequence[Estimate]) -> list[SumEstimate]:
    """Estimates summed per currency: models listed, "up to" when one of them is."""
    out = []
    for currency in sorted({e.currency for e in estimates}):
        mine = [e for e in estimates if e.currency == currency]
        totals = [e.total for e in mine]
        amount = None if any(t is None for t in totals) else sum((t for t in totals if t is not None), Decimal(0))
        models = ", ".join(dict.fromkeys(e.model for e in mine))
        out.append(SumEstimate(models, mine[0].region, sum(e.n for e in mine), sum(e.requests for e in mine),
                               None, currency, "", any(e.up_to for e in mine), amount=amount))
    return out


def identity_seeds(spec: BatchSpec, owner: str | None) -> random.Random:
    """Where the random seeds of a batch are drawn from: its identity (:func:`fingerprint`), so the
    same input, options and owner draw the same seeds, and a dry run shows the very seeds its real
    run will send (a seed copied from the plan makes that image again)."""
    return random.Random(fingerprint(spec, owner))


def seed_fixed(spec: BatchSpec, unit: UnitRow) -> bool:
    """True when ``unit``'s seed is the user's (an option or a seed axis), not drawn for them."""
    return "seed" in unit.labels or not random_seed(spec.options.get("seed"))


def plan(service: ImageService, spec: BatchSpec, rng: random.Random | None = None) -> Plan:
    """Validate every item of ``spec`` (as :meth:`ImageService.plan` does for one run) and split it
    into units, seeds drawn and fixed now (from ``rng``: :func:`identity_seeds` for a batch that the
    same input finds again; None: the system's randomness); price each unit. Sends nothing
    (ValidationError on the first item refused, naming it)."""
    items = expand(spec.text, spec.axes)
    units: list[UnitRow] = []
    estimates: list[Estimate] = []
    notes: list[Message] = []
    region = service.settings.region
    idx = 0
    for number, item in enumerate(items):
        options = {**spec.options, **item.options}
        if rng is not None and random_seed(options.get("seed")):
            options["seed"] = rng.randint(0, catalog.SEED_MAX)  # drawn in item order: the same spec, the same seeds
        try:
            job = service.plan(Task.T2I, item.prompt, **options)
        except ValidationError as exc:
            raise exc.with_text(msg("batch.item_refused", n=number + 1, prompt=item.prompt[:80], error=exc.msg)) \
                from None
        if len(units) + job.requests > MAX_UNITS:
            raise _refuse("too_big", limit=MAX_UNITS)
        notes += [n for n in job.notes if n not in notes]
        for seed in job.seeds:
            unit_options = {k: v for k, v in options.items() if k != "best"}
            unit_options.update(model=job.model, seed=seed, n=job.per_request, size=job.size)
            units.append(UnitRow("", len(units), number, job.prompt, unit_options, item.labels, idx, job.per_request))
            estimates.append(estimate_for(job.spec, job.per_request, job.prompt_extend, region, requests=1,
                                          model=job.model, size=job.size))
            idx += job.per_request
    notes += size_notes(spec, units)
    return Plan(spec, items, units, estimates, notes)


def size_notes(spec: BatchSpec, units: Sequence[UnitRow]) -> list[Message]:
    """A note when the batch's images would come out at different sizes without anyone asking: no size
    chosen (nor a size axis) and its models' defaults differ (a grid over Plus and 2.0 makes 1664*928
    beside 2048*2048). Told before sending; what is sent does not change."""
    given = str(spec.options.get("size") or "")
    # a size or a ratio names numbers; "", "auto" and their translations do not (each model's default)
    if any(ch.isdigit() for ch in given) or any(a.name == "size" for a in spec.axes):
        return []
    by_model = dict.fromkeys((str(u.options.get("model") or ""), str(u.options.get("size") or "")) for u in units)
    if len({size for _, size in by_model}) < 2:
        return []
    sizes = listing(msg("grid_ux.model_size", model=m, size=s) if s else msg("grid_ux.model_picks", model=m)
                    for m, s in by_model)
    return [msg("grid_ux.cells_differ" if spec.kind == "grid" else "grid_ux.images_differ", sizes=sizes)]


@dataclass
class Prepared:
    """A stored batch ready to run: its id, its plan (None when it was found, not planned now) and
    whether it existed already (the same input run again)."""

    batch_id: str
    plan: Plan | None
    existing: bool


def prepare(service: ImageService, spec: BatchSpec, *, owner: str | None = None, new: bool = False,
            check: Callable[[Plan], None] | None = None) -> Prepared:
    """Find the batch of ``spec`` (same input, options and owner) or plan and store a new one
    (``new``: always a new one, e.g. to draw new random seeds). Nothing is sent.

    ``check`` sees a new batch's plan before it is stored and may refuse it (raise): a call refused by
    a quota or a budget leaves no rows behind, so refused calls in a loop cannot grow the store. The
    same input prepared twice at once finds one batch (see :meth:`BatchBook.create`)."""
    fp = fingerprint(spec, owner)
    with _book(service) as book:
        if not new:
            found = book.find(fp, owner)
            if found is not None:
                return Prepared(found.id, None, True)
        p = plan(service, spec, None if new else identity_seeds(spec, owner))
        if check is not None:
            try:
                check(p)
            except AliyunImageError:
                # refused as a new batch, but the same input came at the same time and is stored now:
                # that one is the batch (busy or done), not a refusal counting its images twice
                found = None if new else book.find(fp, owner)
                if found is None:
                    raise
                return Prepared(found.id, None, True)
        batch_id = uuid.uuid4().hex[:12]
        stored = book.create(batch_id, owner, fp, spec.kind, spec.as_dict(), p.units, reuse=not new)
    if stored != batch_id:  # stored by a call that came at the same time
        return Prepared(stored, None, True)
    return Prepared(batch_id, p, False)


def preview(service: ImageService, spec: BatchSpec, *, owner: str | None = None, new: bool = False) -> Plan:
    """The plan of ``spec`` as :func:`prepare` then :func:`run` would send it, storing and sending
    nothing: the stored units (their seeds) when the same input finds its batch, else the units
    :func:`prepare` would store (seeds from :func:`identity_seeds`). With ``new`` the seeds the user
    did not fix are drawn at random when the batch is stored: shown seeds are placeholders then
    (see :func:`seed_fixed`)."""
    p = plan(service, spec, None if new else identity_seeds(spec, owner))
    if new:
        return p
    with _book(service) as book:
        found = book.find(fingerprint(spec, owner), owner)
        units = book.units(found.id) if found is not None else None
    if units:
        p.units, p.estimates = units, [_unit_estimate(service, u) for u in units]
    return p


class _book:
    """The batch tables of ``service``'s store, opened for one use (``with _book(svc) as book``)."""

    def __init__(self, service: ImageService):
        self.book = BatchBook(service.store.root, show_paths=service.store.show_paths)

    def __enter__(self) -> BatchBook:
        return self.book

    def __exit__(self, *exc: object) -> None:
        self.book.close()


def find(service: ImageService, batch_id: str, owner: str | None = None) -> tuple[BatchRow, list[UnitRow]] | None:
    """A stored batch and its units, if it is ``owner``'s (every batch locally)."""
    with _book(service) as book:
        row = book.get(batch_id.strip(), owner)
        return (row, book.units(row.id)) if row is not None else None


def unfinished(service: ImageService, owner: str | None = None, limit: int = 20) -> list[tuple[BatchRow, int]]:
    """The owner's batches with units still to make or collect, and how many, newest first."""
    out = []
    with _book(service) as book:
        for row in book.recent(owner, limit):
            left = sum(1 for u in book.units(row.id) if u.state in (QUEUED, SENT, FAILED))
            if left:
                out.append((row, left))
    return out


def recent(service: ImageService, owner: str | None = None,
           limit: int = 20) -> list[tuple[BatchRow, list[UnitRow]]]:
    """The owner's newest batches (every batch locally) with their units, newest first: finished
    ones too, for a page that shows what ran while it was closed."""
    with _book(service) as book:
        return [(row, book.units(row.id)) for row in book.recent(owner, limit)]


# --- run ---------------------------------------------------------------------------------------------
@dataclass
class BatchOutcome:
    """What a batch came to after a run: every unit's state, the stored results (of earlier runs
    too), and what this run learned of failures."""

    batch_id: str
    kind: str
    units: list[UnitRow]
    results: list[Record]
    errors: dict[int, AliyunImageError] = field(default_factory=dict)  # unit pos -> this run's error
    stopped: bool = False

    def by_state(self, state: str) -> list[UnitRow]:
        """The units in ``state``."""
        return [u for u in self.units if u.state == state]

    @property
    def images(self) -> int:
        """Images the batch asks for."""
        return sum(u.images for u in self.units)

    def error(self, unit: UnitRow) -> AliyunImageError | None:
        """This run's error for ``unit`` (None for one left by an earlier run: see its ``error`` code)."""
        return self.errors.get(unit.pos)

    @property
    def complete(self) -> bool:
        """Every unit done."""
        return all(u.state == DONE for u in self.units)

    @property
    def settled(self) -> bool:
        """Nothing more will come without a new run: no unit waits to be sent or still runs (a grid is
        drawn then, a failed cell left grey)."""
        return not any(u.state in (QUEUED, SENT) for u in self.units)

    def summary(self) -> list[Message]:
        """The lines of the summary: done; failed (not billed) with why; maybe billed, not resent;
        still running at the service; not sent."""
        lines = [msg("batch.summary", id=self.batch_id, done=len(self.results), total=self.images,
                     requests=len(self.units))]
        for u in self.by_state(FAILED):
            err = self.error(u)
            lines.append(msg("batch.unit_failed", n=u.pos + 1, prompt=u.prompt[:60],
                             error=err.msg if err is not None else u.error or "-"))
        for u in self.by_state(MAYBE):
            lines.append(msg("batch.unit_maybe", n=u.pos + 1, prompt=u.prompt[:60], code=u.error or "-"))
        running = self.by_state(SENT)
        if running:
            lines.append(msg("batch.unit_running", n=len(running), id=self.batch_id))
        queued = self.by_state(QUEUED)
        if queued:
            key = "batch.not_sent_stopped" if self.stopped else "batch.not_sent"
            lines.append(msg(key, n=len(queued), id=self.batch_id))
        return lines

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (``batch --json``): counts, results with their files, every unit that is not done."""
        def unit(u: UnitRow) -> dict[str, Any]:
            err = self.error(u)
            return {"unit": u.pos + 1, "item": u.item + 1, "prompt": u.prompt, "labels": u.labels, "state": u.state,
                    "code": (err.code if err is not None else u.error) or None, "seed": u.options.get("seed"),
                    "model": u.options.get("model")}
        return {"batch_id": self.batch_id, "kind": self.kind, "requests": len(self.units), "images": self.images,
                "done": len(self.results), "complete": self.complete, "stopped": self.stopped,
                "results": [{"id": r.id, "file": str(r.file), "prompt": r.prompt, "model": r.model, "seed": r.seed,
                             "idx": r.idx} for r in self.results],
                "failed": [unit(u) for u in self.by_state(FAILED)],
                "maybe_billed": [unit(u) for u in self.by_state(MAYBE)],
                "running": [unit(u) for u in self.by_state(SENT)],
                "not_sent": [unit(u) for u in self.by_state(QUEUED)]}


def default_inflight(service: ImageService) -> int:
    """Requests of one batch handed to the scheduler at once: enough to fill the account's limit as
    the scheduler learns it (its ceiling), so the scheduler, not this number, sets the pace."""
    c = service.settings.concurrency
    return max(1, c.max_parallel, c.task_limit_max)


class _Runner:
    """One run of a stored batch (see :func:`run`)."""

    def __init__(self, service: ImageService, book: BatchBook, row: BatchRow, units: list[UnitRow], *,
                 api_key: str | None, owner: str | None, emit: Callable[[Event], None],
                 cancel: threading.Event):
        self.svc, self.book, self.row, self.units = service, book, row, units
        self.key, self.owner, self.emit, self.cancel = api_key, owner, emit, cancel
        self.errors: dict[int, AliyunImageError] = {}
        self.lock = threading.Lock()
        self.total = sum(u.images for u in units)
        self.landed = sum(len(u.results) for u in units if u.state == DONE)
        self.failed_images = 0
        self.halted = threading.Event()  # the account refused the key: the other units stay queued

    # events ----------------------------------------------------------------------------------
    def relay(self, ev: Event) -> None:
        """A unit's event, counted over the whole batch."""
        with self.lock:
            if ev.kind == EventKind.RESULT:
                self.landed += 1
            elif ev.kind == EventKind.FAILURE:
                self.failed_images += 1
            ev.done, ev.total = self.landed + self.failed_images, self.total
        try:
            self.emit(ev)
        except Exception:  # a broken progress callback must not undo a stored result
            log.warning("progress callback failed", exc_info=True)

    # units -------------------------------------------------------------------------------------
    def set(self, unit: UnitRow, state: str, error: str = "", results: Sequence[int] | None = None) -> None:
        unit.state, unit.error = state, error
        if results is not None:
            unit.results = list(results)
        self.book.set_state(self.row.id, unit.pos, state, error, results)
        self.relay(Event(EventKind.STATUS, unit=(unit.idx, unit.images, state)))  # after it is stored

    def job(self, unit: UnitRow) -> Any:
        """The unit's job, its results recorded as "item k of batch B" in their lineage."""
        item = Parent(None, Relation.BATCH, unit.item + 1, self.row.id)  # 1-based, as the page says it
        return self.svc.plan(Task.T2I, unit.prompt, **unit.options, parents=[item])

    def collect(self, unit: UnitRow) -> None:
        """A unit ``sent`` by an earlier run (crash, kill, Stop while its task ran): never sent
        again. Its recorded results are fetched, its async task polled by id; with nothing recorded
        it may have been billed: counted so, and reported."""
        rows = self.book.result_rows(self.row.id, unit.idx, unit.images)
        if not rows:
            try:
                job = self.job(unit)
                ctx = _Charge(job, self.key or self.svc.settings.api_key, self.owner)
                billing.record_maybe(self.svc.store, self.svc.settings, ctx, _MAYBE_ERROR, unit.images)
            except AliyunImageError:
                pass  # the ledger must not stop the report
            self.set(unit, MAYBE, "Batch.SentNoAnswer")
            return
        got: list[int] = []
        still = False
        for rid, _status in rows:
            try:
                rec = self.svc.collect(rid, api_key=self.key)
            except AliyunImageError as exc:
                self.errors[unit.pos] = exc
                rec = None
            if rec is not None and rec.status == Status.DONE:
                got.append(rec.id)
                self.relay(Event(EventKind.RESULT, record=rec))
            elif (now := self.svc.store.get(rid)) is not None and now.status == Status.PENDING:
                still = True
        if got:
            self.set(unit, DONE, results=got)
        elif still:
            self.set(unit, SENT, "Batch.StillRunning")
        else:
            self.set(unit, MAYBE, "Batch.NotCollected")

    def send(self, unit: UnitRow) -> list[AliyunImageError]:
        """Run one unit through the service (its scheduler lane); returns this run's failures."""
        if self.cancel.is_set() or self.halted.is_set():
            return []  # stays queued: never sent
        went = threading.Event()

        def on_send() -> None:  # in the scheduler's slot, just before the HTTP request
            if not went.is_set():
                went.set()
                self.set(unit, SENT)

        try:
            job = self.job(unit)
            out = self.svc.run(job, api_key=self.key, owner=self.owner, on_event=self.relay, cancel=self.cancel,
                               part_of=BatchPart(self.row.id, unit.idx, on_send))
        except AliyunImageError as exc:  # refused before any request (budget, key, disk)
            self.errors[unit.pos] = exc
            if went.is_set():
                self.set(unit, MAYBE if may_be_billed(exc) else FAILED, exc.code)
            else:
                self.set(unit, FAILED, exc.code)
            for _ in range(unit.images):
                self.relay(Event(EventKind.FAILURE, error=exc))
            self.halt_if_refused([exc])
            return [exc]
        stopped = bool(out.failures) and all(isinstance(f, CancelledError) for f in out.failures)
        if out.results:
            self.set(unit, DONE, results=[r.id for r in out.results])
        elif not went.is_set() or stopped and not self.book.result_rows(self.row.id, unit.idx, unit.images):
            # never sent, or withdrawn by Stop while queued again after a 429 (refused, so not billed)
            self.set(unit, QUEUED if stopped else FAILED, out.failures[0].code if out.failures else "")
        elif any(s == Status.PENDING for _, s in self.book.result_rows(self.row.id, unit.idx, unit.images)):
            self.set(unit, SENT, "Batch.StillRunning")  # an async task left running by Stop: resume collects it
        elif any(may_be_billed(f) for f in out.failures):
            self.set(unit, MAYBE, next(f.code for f in out.failures if may_be_billed(f)))
        else:
            self.set(unit, FAILED, out.failures[0].code if out.failures else "")
        if out.failures:
            self.errors[unit.pos] = out.failures[0]
        self.halt_if_refused(out.failures)
        return list(out.failures)

    def halt_if_refused(self, failures: Sequence[AliyunImageError]) -> None:
        """After a refusal that every other request of the batch would get too (the key is not valid, the
        account is in arrears), send no more: a hosted visitor's junk key must not make the server send a
        hundred doomed requests per call. The rest stay ``queued`` (not billed; run again with a good key)."""
        if any(f.code in ACCOUNT_REFUSALS for f in failures):
            self.halted.set()
            self.cancel.set()  # units already waiting in the scheduler are withdrawn too (they stay queued)


@dataclass(frozen=True)
class _Charge:
    """What :func:`billing.record_maybe` reads of a run, for a unit found sent without an answer."""

    job: Any
    key: str | None
    owner: str | None


# sent, and the process ended before the answer was kept: maybe billed (see errors.may_be_billed)
_MAYBE_ERROR = OutcomeUnknownError(msg("batch.maybe_error"), code="Batch.SentNoAnswer")


def check_cost(service: ImageService, p: Plan, units: Sequence[UnitRow], *, api_key: str | None,
               owner: str | None) -> None:
    """Refuse (ValidationError, nothing sent) when ``units`` would cross a budget."""
    for cost in p.costs(units):
        refusal = billing.budget_refusal(service.store, service.settings, cost, api_key, owner)
        if refusal is not None:
            raise refusal


def run(service: ImageService, batch_id: str, *, api_key: str | None = None, owner: str | None = None,
        on_event: Callable[[Event], None] | None = None, cancel: threading.Event | None = None,
        inflight: int | None = None, quota: HourlyQuota | None = None,
        payer: str | Payers = "") -> BatchOutcome:
    """Make what is missing of stored batch ``batch_id`` (``owner``'s), see the module doc.

    Before any request: units ``sent`` by an earlier run are collected (never resent); the missing
    ones (``queued``, and ``failed`` ones: a failure is not billed) are checked against the budgets
    (:func:`check_cost`) and the hosted ``quota`` (images for ``payer``), refused as a whole when
    they would cross one. Then at most ``inflight`` units at a time go to the service. Events:
    each image stored or failed as it lands (``done``/``total`` over the batch), then ``DONE``.
    Raises ValidationError for an unknown batch, one another live process is running, or a refusal.
    """
    emit = on_event or (lambda ev: None)
    flag = cancel or threading.Event()
    with _book(service) as book:
        row = book.get(str(batch_id).strip(), owner)
        if row is None:
            raise _refuse("not_found", code="Batch.NotFound", id=batch_id)
        if not book.claim(row.id):
            raise _refuse("busy", code="Batch.Busy", id=row.id)
        try:
            units = book.units(row.id)
            runner = _Runner(service, book, row, units, api_key=api_key, owner=owner, emit=emit, cancel=flag)
            for unit in units:
                # sent by an earlier run; or maybe billed then, whose rows have come since (results kept in
                # the journal while the disk was full are indexed at the next start)
                if unit.state == SENT or unit.state == MAYBE and book.result_rows(row.id, unit.idx, unit.images):
                    runner.collect(unit)
            todo = [u for u in units if u.state in (QUEUED, FAILED)]
            failures: list[AliyunImageError] = []
            if todo:
                p = Plan(BatchSpec.from_dict(row.spec), [], units, [_unit_estimate(service, u) for u in units])
                check_cost(service, p, todo, api_key=api_key, owner=owner)
                reservation = Reservation.take(quota, payer, sum(u.images for u in todo))
                workers = max(1, min(inflight or default_inflight(service), len(todo)))
                with ThreadPoolExecutor(workers, thread_name_prefix="aliyun-image-batch") as pool:
                    try:
                        for got in pool.map(lambda u: _safe_send(runner, u), todo):
                            failures += got
                    except BaseException:  # Ctrl+C: what is queued stays queued; what was sent is kept
                        flag.set()
                        raise
                stored = sum(len(u.results) for u in todo if u.state == DONE)
                reservation.settle(stored, failures)
            records = [r for r in (service.store.get(i, owner) for u in units for i in u.results) if r is not None]
        finally:
            book.release(row.id)
    stopped = flag.is_set() and not runner.halted.is_set()  # halted: refused, not stopped by the user
    outcome = BatchOutcome(row.id, row.kind, units, records, runner.errors, stopped=stopped)
    emit(Event(EventKind.DONE, done=len(records), total=outcome.images))
    return outcome


def submit(service: ImageService, spec: BatchSpec, *, owner: str | None = None, new: bool = False,
           **run_options: Any) -> BatchOutcome:
    """The whole batch in one call (for the API and tools): :func:`prepare` (the same input finds its
    batch again), then :func:`run` with ``run_options`` (``api_key``, ``on_event``, ``cancel``,
    ``inflight``, ``quota``, ``payer``)."""
    prepared = prepare(service, spec, owner=owner, new=new)
    return run(service, prepared.batch_id, owner=owner, **run_options)


def _safe_send(runner: _Runner, unit: UnitRow) -> list[AliyunImageError]:
    """:meth:`_Runner.send`, a bug in it becoming one failure (never a lost batch)."""
    try:
        return runner.send(unit)
    except Exception as exc:  # the other units go on; the unit's state says what is known
        log.error("batch unit %d failed unexpectedly", unit.pos, exc_info=True)
        err = unexpected(exc)
        runner.errors[unit.pos] = err
        return [err]


def _unit_estimate(service: ImageService, unit: UnitRow) -> Estimate:
    """A stored unit's estimate (its options are complete: model, size, n, rewriting)."""
    job = service.plan(Task.T2I, unit.prompt, **unit.options)
    return estimate_for(job.spec, job.per_request, job.prompt_extend, service.settings.region, requests=1,
                        model=job.model, size=job.size)


def zip_batch(service: ImageService, outcome: BatchOutcome, dest: Path | str, owner: str | None = None) -> Path | None:
    """The batch's stored images in one zip at ``dest`` (the gallery's zip); None when none is stored."""
    return Gallery(service.store, owner).export_zip([r.id for r in outcome.results], Path(dest))
