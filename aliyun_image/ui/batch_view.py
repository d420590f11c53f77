"""What the Batch tab shows and how a batch is started: limits a shared demo needs before anything
is built (items, characters, batches running), widget values into a
:class:`~aliyun_image.generation.BatchSpec`, the batch handed to a server thread (:mod:`.batch_live`),
and its gallery, status line, summary, grid image, zip and the owner's list of batches.

No business logic lives here: expanding, planning, pricing, storing, sending and resuming are the
engine's (:mod:`aliyun_image.generation.batch`), the grid image :mod:`aliyun_image.generation.grid`'s.
The endpoints are :mod:`.batch_handlers`'.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from .. import catalog
from ..enums import Payer, Task
from ..errors import AliyunImageError, ValidationError, unexpected
from ..generation import Axis, BatchSpec, Plan, batch as batches, grid
from ..i18n import msg, render
from ..jobs import random_seed
from ..config import Settings
from ..runtime import AppContext, Route, RunKind, RunSlot
from ..storage import Gallery, Record
from ..storage.batches import DONE, FAILED, QUEUED, SENT
from .batch_live import LiveBatch, LiveBatches, Slot, duration, slots_of
from .page_text import error_md, md
from .request_info import request_payers, request_visitor
from .rewrite_options import negative_value, rewrite_values
from .run_handlers import run_options
from .strings import t

log = logging.getLogger(__name__)
ASSETS = Path(__file__).resolve().parent / "static"
HOSTED_MAX_ITEMS = 100  # items one page batch may expand to in hosted mode, unless the host says
MAX_VARIABLES = 10  # variable lines: more is a paste gone wrong
Outputs = tuple[Any, Any, Any, Any, Any]  # gallery, status, grid image, zip button, list of batches


@dataclass(frozen=True)
class BatchLimits:
    """What one page batch may be: ``max_items`` combinations. (How many batches run at once, and
    whose, is the app's run slots': :mod:`aliyun_image.runtime.run_slots`.)"""

    max_items: int

    @property
    def max_chars(self) -> int:
        """The longest prompt list taken: a full prompt per item, with room for comments."""
        return self.max_items * (catalog.PROMPT_MAX + 200)

    @classmethod
    def from_settings(cls, settings: Settings) -> BatchLimits:
        """The limits of the app's settings: ``ALIYUN_IMAGE_BATCH_MAX_ITEMS`` (``hosting.batch_max_items``)
        when set, else 100 items hosted and locally the engine's cap of
        :data:`~aliyun_image.generation.batch.MAX_UNITS` requests (never more than that)."""
        items = settings.hosting.batch_max_items
        if items is None:
            items = HOSTED_MAX_ITEMS if settings.hosting.hosted else batches.MAX_UNITS
        return cls(min(items, batches.MAX_UNITS))


def refuse(key: str, **params: Any) -> ValidationError:
    """A refusal of the page's (catalogue ``ui.batch.<key>``), before anything is sent."""
    return ValidationError(msg("ui.batch." + key, **params), code="Validation.BatchPage")


def _axis(name: Any, values: Any) -> Axis | None:
    """One axis from the page: a name (``model``, ``seed``, ``size``, ``prompt_extend`` or a
    variable, braces allowed) and comma-separated values; None when both are empty."""
    name = str(name or "").strip().strip("{}").strip()
    values = str(values or "").strip()
    if not name and not values:
        return None
    return Axis.parse(f"{name}={values}")


def variable_axes(text: Any) -> list[Axis]:
    """The variables box: one ``name=v1,v2`` per line (blank lines and ``#`` lines skipped)."""
    lines = batches.prompt_lines(str(text or ""))
    if len(lines) > MAX_VARIABLES:
        raise refuse("too_many_variables", n=len(lines), limit=MAX_VARIABLES)
    axes = []
    for line in lines:
        name, _, values = line.partition("=")
        axis = _axis(name, values) if _ else Axis.parse(line)
        if axis is not None:
            axes.append(axis)
    return axes


def page_spec(limits: BatchLimits, mode: str, prompts: Any, variables: Any, axes: list[tuple[Any, Any]],
              options: dict[str, Any]) -> BatchSpec:
    """The batch the page asks for (``mode``: ``list`` or ``grid``), refused before anything is
    expanded when it is too long or would make more than ``limits.max_items`` items."""
    text = str(prompts or "")
    if len(text) > limits.max_chars:
        raise refuse("too_long", n=len(text), limit=limits.max_chars)
    if mode == "grid":
        given = [a for a in (_axis(n, v) for n, v in axes) if a is not None]
        if not given:
            raise refuse("no_axis")
        spec = grid.grid_spec(text.strip(), given, {**options, "n": 1})
    else:
        spec = BatchSpec(text, tuple(variable_axes(variables)), options)
    n = batches.count(spec.text, spec.axes)
    if n > limits.max_items:
        raise refuse("too_many", n=n, limit=limits.max_items)
    return spec


class BatchView:
    """What the Batch tab shows and how a batch starts, bound to one :class:`AppContext`; the app's
    running batches live here (:attr:`live`)."""

    def __init__(self, ctx: AppContext, limits: BatchLimits | None = None):
        self.ctx = ctx
        self.limits = limits or BatchLimits.from_settings(ctx.settings)
        self.live = LiveBatches()
        # Placeholders for images still to come or failed, copied where Gradio may serve them from
        # (its temp dir rule), whatever the working directory.
        self._art = Path(tempfile.mkdtemp(prefix="aliyun-image-batch-"))
        self._zip_locks = [threading.Lock() for _ in range(8)]  # batch zips being written (zip_of)
        atexit.register(shutil.rmtree, self._art, ignore_errors=True)
        self.waiting_png = Path(shutil.copy(ASSETS / "batch_waiting.png", self._art / "waiting.png"))
        self.failed_png = Path(shutil.copy(ASSETS / "batch_failed.png", self._art / "failed.png"))
        self.not_sent_png = Path(shutil.copy(ASSETS / "batch_not_sent.png", self._art / "not_sent.png"))

    # --- from widgets to a spec and a plan ------------------------------------------------------
    @staticmethod
    def options(quality: str, model: str, size: str | None, n: Any, seed: Any, negative: str, prompt_extend: bool,
                watermark: bool, extend_mode: Any, thinking: Any) -> dict[str, Any]:
        """The options every request of the batch shares, as text-to-image takes them."""
        opts = run_options(quality, model, n, seed, negative, prompt_extend, watermark, size or None)
        opts.update(rewrite_values(Task.T2I, quality, model, prompt_extend, extend_mode, thinking))
        opts["negative"] = negative_value(Task.T2I, quality, model, opts["negative"])
        return opts

    def check(self, route: Route, p: Plan, owner: str | None, request: gr.Request | None) -> None:
        """Refuse (ValidationError) a plan a budget or the hosted hourly quota would refuse."""
        batches.check_cost(route.service, p, p.units, api_key=route.key, owner=owner)
        quota = self.ctx.quota_for(route)
        if quota is not None:
            refused = quota.refusal(request_payers(self.ctx, request), p.images)
            if refused is not None:
                raise ValidationError(refused, code="Quota.Exceeded")

    def plan_checked(self, route: Route, spec: BatchSpec, owner: str | None, request: gr.Request | None) -> Plan:
        p = batches.plan(route.service, spec)
        self.check(route, p, owner, request)
        return p

    @staticmethod
    def plan_text(p: Plan, route: Route, lang: str) -> str:
        """The plan line: items, requests, images and the total price per currency."""
        cost = " + ".join(c.head().render(lang) for c in p.costs()) or "-"
        if route.kind == Payer.OFFLINE:
            cost = render(lang, msg("batch.plan_free", cost=cost))
        line = render(lang, msg("batch.plan", items=len(p.items), requests=p.requests, images=p.images, cost=cost))
        notes = [md(render(lang, n)) for n in p.notes]
        return "\n\n".join([md(line), *("ℹ️ " + n for n in notes)])

    # --- the running batch --------------------------------------------------------------------------
    def _thumb(self, owner: str | None):
        gallery = Gallery(self.ctx.store, owner)
        return gallery.thumbnail

    def _records(self, units: list, owner: str | None) -> list[Record]:
        store = self.ctx.store
        return [r for r in (store.get(i, owner) for u in units for i in u.results) if r is not None]

    def start_held(self, route: Route, owner: str | None, lang: str, request: gr.Request | None,
                   which: Callable[[], str]) -> LiveBatch:
        """In a worker thread: hold the caller's place for a batch (refused at once when they run one
        already, hosted when they have as many runs going as they may, or when the app runs its
        limit), then start the batch ``which()`` names (it plans, checks and stores a new one, or
        finds one). The place goes with the batch's thread, or back when anything before fails;
        taking it here, in the thread, means a caller who goes away meanwhile cannot leave it held."""
        slot = self.ctx.run_slot(request_visitor(self.ctx, request), RunKind.BATCH)
        try:
            return self.launch(route, which(), owner, lang, request, slot)
        finally:
            slot.release()  # nothing once the batch's thread took it over

    def launch(self, route: Route, batch_id: str, owner: str | None, lang: str,
               request: gr.Request | None, slot: RunSlot) -> LiveBatch:
        """Start stored batch ``batch_id`` in a server thread holding ``slot`` (see :mod:`.batch_live`)."""
        found = batches.find(route.service, batch_id, owner)
        if found is None:
            raise refuse("not_found", id=str(batch_id)[:40])
        row, units = found
        thumb = self._thumb(owner)
        live = LiveBatch(row.id, row.kind, owner, lang, slots_of(units, self._records(units, owner), thumb), thumb)
        quota, payers = self.ctx.quota_for(route), request_payers(self.ctx, request)

        def work() -> None:  # the key lives in this closure, for this batch's thread only
            self._work(live, route, quota, payers)

        self.live.start(live, work, slot)
        return live

    def _work(self, live: LiveBatch, route: Route, quota: Any, payers: Any) -> None:
        """The whole run of a batch, in its thread: send what is missing, then the grid image."""
        try:
            outcome = batches.run(route.service, live.batch_id, api_key=route.key, owner=live.owner,
                                  on_event=live.post, cancel=live.cancel, quota=quota, payer=payers)
        except AliyunImageError as err:
            live.finish(None, error=err)
            return
        except Exception as exc:  # a bug: logged, shown as "unexpected", the batch stays resumable
            log.exception("batch %s failed", live.batch_id)
            live.finish(None, error=unexpected(exc))
            return
        picture = None
        if live.kind == grid.TASK and outcome.settled:
            try:
                picture = grid.make_grid(route.service, outcome, lang=live.lang, owner=live.owner)
            except Exception:  # the cells are stored; a grid that failed can be made on the next Resume
                log.warning("grid image of batch %s failed", live.batch_id, exc_info=True)
        live.finish(outcome, picture)
        if self.ctx.opts.hosted:
            self.ctx.enforce_disk_budget()

    # --- what the page shows ------------------------------------------------------------------------
    def items(self, slots: list[Slot], lang: str, kind: str = "batch") -> list[tuple[str, str]]:
        """The gallery: one tile per image, in the batch's order, each in its place from the start
        (a placeholder until it lands), captioned with its item number and prompt (a grid's cells
        with their axis values)."""
        out = []
        for s in slots:
            # a grid's cells by their axis values, titles in the reader's language ("Model=qwen-image-max · Seed=1")
            what = grid.labels_text(s.labels, lang, " · ") if kind == grid.TASK and s.labels else s.prompt
            what = what if len(what) <= 40 else what[:39] + "…"
            if s.record is not None:
                out.append((str(s.thumb or s.record.file), f"{s.label} · #{s.record.id} · {what}"))
            elif s.failed or s.lost:
                state = t(lang, "batch_ux.slot_failed_why", why=s.reason) if s.reason else t(lang, "batch.slot_failed")
                out.append((str(self.failed_png), f"{s.label} · {state} · {what}"))
            elif s.not_sent:
                out.append((str(self.not_sent_png), f"{s.label} · {t(lang, 'batch_ux.slot_not_sent')} · {what}"))
            elif s.sent:
                out.append((str(self.waiting_png), f"{s.label} · {t(lang, 'batch_sent.slot')} · {what}"))
            else:
                out.append((str(self.waiting_png), f"{s.label} · {t(lang, 'batch.slot_waiting')} · {what}"))
        return out

    @staticmethod
    def progress(live: LiveBatch, lang: str) -> str:
        """The status line while ``live`` runs: counts and the elapsed time."""
        key = "batch.stopping" if live.cancel.is_set() else "batch.progress"
        return t(lang, key, id=live.batch_id, done=live.done, failed=live.failures, waiting=live.waiting,
                         total=live.total, elapsed=duration(live.elapsed(), lang, running=True))

    @staticmethod
    def summary(outcome: batches.BatchOutcome, lang: str, elapsed: float | None = None) -> str:
        """The closing summary: done, failed with why (not billed), maybe billed, not sent; the
        engine's lines, with the page's words where the terminal's name a command."""
        page = {"batch.unit_running": "batch.running_left", "batch.not_sent": "batch.not_sent",
                "batch.not_sent_stopped": "batch.not_sent_stopped"}
        lines = []
        for line in outcome.summary():
            if line.key in page:
                line = msg("ui." + page[line.key], **line.params)
            lines.append(md(render(lang, line).strip()))
        head = ("✓ " if outcome.complete else "⚠️ ") + lines[0]
        if elapsed is not None:
            head += "  \n" + t(lang, "batch.took", elapsed=duration(elapsed, lang))
        return "\n".join([head, "", *("- " + line for line in lines[1:])])

    def zip_of(self, batch_id: str, results: list[Record], picture: Path | None, owner: str | None) -> Path | None:
        """The batch's stored images (and its grid image) in one zip, or None when none is stored."""
        ids = [r.id for r in results]
        if picture is not None:
            ids += [i for i in self.ctx.store.records.batch_ids(batch_id, owner) if i not in ids]
        if not ids:
            return None
        dest = self.ctx.zip_path(f"aliyun-image-batch-{batch_id}.zip", ids)
        # Every show of a finished batch offers its zip: written once per set of results, not once per
        # show (a flood of shows would write, and hold on the disk at once, one zip of the whole batch
        # each). The same ids make the same bytes (zip_path); one writer at a time per zip.
        with self._zip_locks[hash(str(dest)) % len(self._zip_locks)]:
            try:
                for path in (dest.parent, dest):  # kept ten more minutes by zip_path's clean-up
                    os.utime(path)
                return dest
            except OSError:  # not written yet, or cleaned up: write it
                return Gallery(self.ctx.store, owner).export_zip(ids, dest)

    def grid_file(self, batch_id: str, owner: str | None) -> Path | None:
        """The stored grid image of a grid batch, if it was made."""
        store = self.ctx.store
        for rid in reversed(store.records.batch_ids(batch_id, owner)):
            rec = store.get(rid, owner)
            if rec is not None and rec.task == grid.TASK and rec.file is not None:
                return rec.file
        return None

    def choices(self, owner: str | None, lang: str) -> list[tuple[str, str]]:
        """The owner's recent batches for the picker, newest first: id, kind, done/total, time, what."""
        out = []
        for row, units in batches.recent(self.ctx.live_service, owner):  # any service: the store is one
            total = sum(u.images for u in units)
            done = sum(len(u.results) for u in units if u.state == DONE)
            running = self.live.get(row.id, owner) is not None
            left = sum(1 for u in units if u.state in (QUEUED, FAILED, SENT))
            state = "running" if running else "complete" if done >= total and not left else "unfinished"
            first = (batches.prompt_lines(row.spec.get("text", "")) or [""])[0]
            label = t(lang, "batch.list_item", id=row.id, kind=t(lang, f"batch.kind_{row.kind}"),
                      done=done, total=total, state=t(lang, f"batch.state_{state}"),
                      when=time.strftime("%m-%d %H:%M", time.localtime(row.created)),
                      prompt=first if len(first) <= 30 else first[:29] + "…")
            out.append((label, row.id))
        return out

    def snapshot(self, batch_id: str, owner: str | None, lang: str, complete_note: bool = False) -> Outputs:
        """A stored batch as the page shows it when it is not running."""
        found = batches.find(self.ctx.live_service, batch_id, owner)
        if found is None:
            raise refuse("not_found", id=batch_id[:40])
        row, units = found
        records = self._records(units, owner)
        outcome = batches.BatchOutcome(row.id, row.kind, units, records)
        picture = self.grid_file(row.id, owner) if row.kind == grid.TASK else None
        status = self.summary(outcome, lang)
        if complete_note:
            status = "ℹ️ " + t(lang, "batch.nothing_missing") + "\n\n" + status
        elif not outcome.settled or not outcome.complete:
            status += "\n\n" + t(lang, "batch.resume_hint")
        slots = slots_of(units, records, self._thumb(owner), outcome, lang)  # not running: each place as it ended
        return (self.items(slots, lang, row.kind), status, _image(picture),
                _download(self.zip_of(row.id, records, picture, owner)),
                gr.Dropdown(choices=self.choices(owner, lang), value=row.id))

    def form(self, batch_id: str, owner: str | None) -> list[Any]:
        """The Batch tab's form as stored batch ``batch_id`` (the owner's) asked for it, in the order of
        :meth:`.batch_panel.BatchPanel.inputs`: mode, prompts, variables or axes, quality, model, size,
        ``n``, seed and the options, so a batch opened shows what it runs and can be tweaked into a new
        one. A value the batch left to its default (a CLI batch's negative prompt or rewriting) leaves
        the widget as it is; an unknown id (not the caller's) changes nothing."""
        found = batches.find(self.ctx.live_service, str(batch_id or ""), owner)
        if found is None:
            return [gr.skip()] * 17
        spec = BatchSpec.from_dict(found[0].spec)
        o = spec.options
        lines = "\n".join(f"{a.name}={','.join(a.values)}" for a in spec.axes)
        if spec.kind == grid.TASK:
            axes = [*((a.name, ",".join(a.values)) for a in spec.axes), ("", "")][:2]
            shape = ["grid", spec.text, gr.skip(), axes[0][0], axes[0][1], axes[1][0], axes[1][1]]
        else:
            shape = ["list", spec.text, lines, *[gr.skip()] * 4]

        def given(value: Any) -> Any:
            return gr.skip() if value is None else value

        seed = -1 if random_seed(o.get("seed")) else o.get("seed")
        return [*shape, "max" if o.get("best") else "plus", o.get("model") or "", given(o.get("size")),
                o.get("n") or 1, seed, given(o.get("negative")), given(o.get("prompt_extend")),
                bool(o.get("watermark")), given(o.get("extend_mode")), given(o.get("thinking"))]

    def ending(self, live: LiveBatch, lang: str) -> Outputs:
        """What the page shows when ``live`` is over: every tile, the summary (or why nothing ran),
        the grid image, the zip, the list with this batch picked."""
        if live.outcome is None:
            err = live.error or unexpected(RuntimeError("batch ended without an outcome"))
            status = error_md(err, lang)
            return self.items(live.slots, lang, live.kind), status, gr.skip(), gr.skip(), gr.skip()
        zipped = self.zip_of(live.batch_id, live.outcome.results, live.grid, live.owner)
        return (self.items(live.slots, lang, live.kind), self.summary(live.outcome, lang, live.elapsed()),
                _image(live.grid), _download(zipped),
                gr.Dropdown(choices=self.choices(live.owner, lang), value=live.batch_id))

    async def follow(self, live: LiveBatch, lang: str) -> AsyncIterator[Outputs]:
        """The page's view of ``live`` until it ends: the gallery as images land, the status every
        second. Leaving (the page closed, another batch picked) stops the watching, not the batch."""
        shown = live.tiles  # before the tiles are drawn: a change while this first update is out is not missed
        tiles = self.items(live.slots, lang, live.kind)
        listed = gr.Dropdown(choices=await asyncio.to_thread(self.choices, live.owner, lang), value=live.batch_id)
        yield tiles, self.progress(live, lang), _image(None), _download(None), listed
        gap = 0.3 if live.total <= 100 else 1.0  # each gallery update re-sends every tile
        async for _ in live.changes(gap):
            gallery = self.items(live.slots, lang, live.kind) if live.tiles != shown else gr.skip()
            shown = live.tiles
            yield gallery, self.progress(live, lang), gr.skip(), gr.skip(), gr.skip()
        yield await asyncio.to_thread(self.ending, live, lang)


def _image(path: Path | None) -> Any:
    return gr.Image(value=str(path), visible=True) if path is not None else gr.Image(value=None, visible=False)


def _download(path: Path | None) -> Any:
    return gr.DownloadButton(value=str(path), visible=True) if path is not None else \
        gr.DownloadButton(value=None, visible=False)


def refusal(err: AliyunImageError, lang: str) -> Outputs:
    """The outputs of a batch refused before anything was sent: the message where the status goes."""
    return gr.skip(), error_md(err, lang), gr.skip(), gr.skip(), gr.skip()


