"""The X/Y grid: one prompt, up to two axes among ``model``, ``seed``, ``size``, ``prompt_extend`` and
the prompt's ``{name}`` variables; every combination runs as one batch (:mod:`.batch`: planned,
priced, resumable), then one labelled grid image (:mod:`aliyun_image.images.grid`) is stored in the
gallery as a result of task ``grid``, its recipe (axes, values, member result ids) in its PNG text.

The grid's row is not billed (no URL, no charge): its members carry the prices.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..enums import Relation, Status
from ..errors import AliyunImageError, ValidationError
from ..i18n import msg, t
from ..images import grid as grid_image
from ..jobs import Parent
from ..storage import NewResult, Record
from ..storage.batches import DONE
from . import batch as batches
from .batch import Axis, BatchOutcome, BatchSpec
from .service import ImageService

TASK = "grid"  # the task of a grid's own result row (readers of an unknown task show it as a result)
MAX_AXES = 2


def grid_spec(prompt: str, axes: list[Axis], options: dict[str, Any]) -> BatchSpec:
    """The batch of a grid: ``prompt`` over one or two axes, one image per cell (ValidationError otherwise)."""
    if not 1 <= len(axes) <= MAX_AXES:
        raise ValidationError(msg("batch.grid.axes", n=len(axes), limit=MAX_AXES), code="Validation.Grid")
    if str(options.get("n") or 1) != "1":
        raise ValidationError(msg("batch.grid.one_each"), code="Validation.Grid")
    if "\n" in prompt.strip():
        raise ValidationError(msg("batch.grid.one_prompt"), code="Validation.Grid")
    return BatchSpec(prompt, tuple(axes), {**options, "n": 1}, kind=TASK)


def axis_title(axis: Axis, lang: str) -> str:
    """What an axis is called in ``lang`` (its variable name for a template variable); English when
    this machine has no font for ``lang``'s characters."""
    if not axis.option:
        return "{" + axis.name + "}"
    title = t(lang, f"batch.grid.axis_{axis.name}")
    return title if grid_image.can_draw(title) else t("en", f"batch.grid.axis_{axis.name}")


def title(name: str, lang: str) -> str:
    """What an axis (or a batch item's label) is called in text for ``lang``: an option axis by its
    catalogue title ("Model" in English), a template variable by its own name. (The grid image's titles are
    :func:`axis_title`'s: they also depend on the fonts this machine has.)"""
    return t(lang, f"batch.grid.axis_{name}") if name in batches.OPTION_AXES else name


def labels_text(labels: Mapping[str, Any], lang: str, sep: str = ", ") -> str:
    """A batch item's labels in ``lang``: ``Model=qwen-image-max, Seed=1`` (the titles in ``lang``)."""
    return sep.join(f"{title(str(k), lang)}={v}" for k, v in labels.items())


def grid_axes(rec: Record) -> list[Axis]:
    """The axes of a stored grid result (columns first); none for any other result."""
    data = rec.params.get("grid") if rec.task == TASK else None
    if not isinstance(data, dict):
        return []
    out = []
    for key in ("x", "y"):
        axis = data.get(key)
        if isinstance(axis, dict) and axis.get("name"):
            out.append(Axis(str(axis["name"]), tuple(str(v) for v in axis.get("values") or ())))
    return out


def axes_text(axes: Sequence[Axis], lang: str) -> str:
    """``Model: qwen-image-plus, qwen-image-max × Seed: 1, 2`` with the titles in ``lang``."""
    sep = t(lang, "catalog.list_sep")
    return " × ".join(f"{title(a.name, lang)}: {sep.join(a.values)}" for a in axes)


def member_ids(rec: Record) -> list[int]:
    """The stored cells of a grid result, row by row (a cell that was not made is left out)."""
    data = rec.params.get("grid") if rec.task == TASK else None
    rows = data.get("members") if isinstance(data, dict) else None
    return [int(i) for row in rows or () for i in row or () if isinstance(i, int)]


FACTS = ("model", "size", "seed", "prompt_extend", "watermark")  # what a grid's details tell of its cells


@dataclass(frozen=True)
class Fact:
    """One of a grid's facts over its cells: set by an ``axis`` (its name), the same ``value`` in every
    cell, or different between cells (``mixed``); ``known`` False when no cell was read."""

    axis: str = ""
    value: Any = None
    mixed: bool = False
    known: bool = True


@dataclass(frozen=True)
class GridFacts:
    """What a grid result is, for its details: axes, cells asked for and made, and per fact of
    :data:`FACTS` how it goes over the cells."""

    axes: tuple[Axis, ...]
    cells: int
    made: int
    facts: dict[str, Fact]


def _cell_value(cell: Record, name: str) -> Any:
    if name in ("model", "size", "seed"):
        return getattr(cell, name)
    return bool(cell.params.get(name))


def grid_facts(rec: Record, cells: Sequence[Record]) -> GridFacts:
    """The facts of grid result ``rec`` from its stored ``cells`` (those the reader may see: a fact
    is read from them, an axis wins)."""
    axes = tuple(grid_axes(rec))
    on_axis = {a.name for a in axes}
    facts = {}
    for name in FACTS:
        if name in on_axis:
            facts[name] = Fact(axis=name)
            continue
        values = list(dict.fromkeys(_cell_value(c, name) for c in cells))
        facts[name] = Fact(value=values[0] if len(values) == 1 else None, mixed=len(values) > 1,
                           known=bool(values))
    total = 1
    for a in axes:
        total *= len(a.values)
    return GridFacts(axes, total if axes else 0, len(member_ids(rec)), facts)


def make_grid(service: ImageService, outcome: BatchOutcome, *, lang: str = "en", owner: str | None = None,
              cell: int = grid_image.CELL) -> Path | None:
    """Compose and store the grid image of a finished grid batch; its file (None: not a grid, or
    nothing stored). Cells whose image is missing stay grey."""
    found = batches.find(service, outcome.batch_id, owner)
    if found is None:
        return None
    row, units = found
    spec = BatchSpec.from_dict(row.spec)
    if spec.kind != TASK or not spec.axes:
        return None
    x = spec.axes[0]
    y = spec.axes[1] if len(spec.axes) > 1 else None
    by_cell: dict[tuple[str, str], Record] = {}
    for unit in units:
        if unit.state != DONE or not unit.results:
            continue
        rec = service.store.get(unit.results[0], owner)
        if rec is not None and rec.file is not None:
            by_cell.setdefault((unit.labels.get(x.name, ""), unit.labels.get(y.name, "") if y else ""), rec)
    if not by_cell:
        return None
    rows = list(y.values) if y else [""]
    cells = [[(by_cell[(xv, yv)].file if (xv, yv) in by_cell else None) for xv in x.values] for yv in rows]
    image = grid_image.compose(cells, list(x.values), rows, x_title=axis_title(x, lang),
                               y_title=axis_title(y, lang) if y else "", cell=cell)
    members = [[by_cell[(xv, yv)].id if (xv, yv) in by_cell else None for xv in x.values] for yv in rows]
    recipe = {"task": TASK, "prompt": spec.text.strip(), "batch_id": row.id,
              "x": {"name": x.name, "values": list(x.values)},
              "y": {"name": y.name, "values": list(y.values)} if y else None,
              "members": members, "options": {k: v for k, v in spec.options.items() if v is not None},
              "generator": "aliyun-image"}
    for rid in service.store.records.batch_ids(row.id, owner):  # made already (the batch resumed when complete)
        old = service.store.get(rid, owner)
        if old is not None and old.task == TASK and old.params.get("grid", {}).get("members") == members:
            return old.file
    return _store(service, image, recipe, next(iter(by_cell.values())), owner)


def _parameters(recipe: dict, first: Record) -> str:
    """The A1111-style ``parameters`` text of a grid (its prompt and axes): a PNG reader that knows
    no grid still gets the prompt back."""
    axes = [f"{a['name']}: {', '.join(a['values'])}" for a in (recipe["x"], recipe["y"]) if a]
    line = [f"Model: {first.model}", f"X/Y: {' | '.join(axes)}", f"Task: {TASK}", f"Batch: {recipe['batch_id']}"]
    negative = f"\nNegative prompt: {first.negative}" if first.negative else ""
    return recipe["prompt"] + negative + "\n" + ", ".join(line)


def run_grid(service: ImageService, prompt: str, x: Axis, y: Axis | None = None, *, lang: str = "en",
             owner: str | None = None, new: bool = False, **run_options: Any) -> tuple[BatchOutcome, Path | None]:
    """The whole grid in one call (for the API and tools): plan and store the batch of ``prompt`` on
    axes ``x`` (columns) and ``y`` (rows), run what is missing (``run_options``: options of the
    requests, e.g. ``model``, and of :func:`.batch.run`: ``api_key``, ``on_event``, ``cancel``,
    ``quota``, ``payer``, ``inflight``), then store the grid image. Returns the batch's outcome and
    the grid's file (None while some cell may still come: not sent, or still running)."""
    run_keys = ("api_key", "on_event", "cancel", "inflight", "quota", "payer")
    how = {k: run_options.pop(k) for k in run_keys if k in run_options}
    spec = grid_spec(prompt, [a for a in (x, y) if a is not None], run_options)
    prepared = batches.prepare(service, spec, owner=owner, new=new)
    outcome = batches.run(service, prepared.batch_id, owner=owner, **how)
    return outcome, make_grid(service, outcome, lang=lang, owner=owner) if outcome.settled else None


def _store(service: ImageService, image: Any, recipe: dict, first: Record, owner: str | None) -> Path | None:
    """The grid as a result row of its own (no URL: nothing billed), its file named ``...-grid-...``."""
    store = service.store
    params = {"size": f"{image.width}*{image.height}", "grid": {k: recipe[k] for k in ("x", "y", "members")}}
    # its cells are its parents (row by row), so each member's details link to the grid and back
    cells = [rid for row in recipe["members"] for rid in row]
    parents = [Parent(rid, Relation.GRID, k) for k, rid in enumerate(cells, 1) if rid is not None]
    new = NewResult(batch_id=recipe["batch_id"], idx=-1, task=TASK, model=first.model, prompt=recipe["prompt"],
                    negative=first.negative, params=params, seed=None, inputs=[], request_id="", usage={},
                    actual_prompt=None, url="", url_expires=None, owner=owner, region=first.region or "",
                    price=None, currency=first.currency or "CNY", paid_by=first.paid_by or "",
                    parents=[p.as_dict() for p in parents])
    (rid,) = store.records.insert_pending([new], lambda i, p, when: store.files.image_path(i, "grid " + p, when),
                                          now=time.time())
    try:
        with store.files.partial(rid) as fh:
            grid_image.save_png(image, fh, recipe, {"parameters": _parameters(recipe, first)})
            rec = store.commit_file(rid, fh, width=image.width, height=image.height)
    except (AliyunImageError, OSError):
        store.mark(rid, Status.FAILED, "Grid.NotSaved")
        raise
    return rec.file
