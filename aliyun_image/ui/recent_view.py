"""The strip of recent runs above the run tabs, and "Follow again" (issue 18 item 2).

The owner's runs come from :class:`.recent_runs.RecentRuns` (who the owner is, and the bounds: see
there): each run's task, the start of its prompt, its state and its results as thumbnails. "Follow
again" makes each task's panel follow the owner's newest run of that task still in progress, through
the hand-over a Stop uses (:meth:`.run_handlers.RunHandlers.reattach`), so the page's Stop stops it.

The owner's batches are listed too (:func:`.recent_runs.recent_batches`), each with its state and
what landed; picking one opens the Batch tab on it through the tab's own handler
(:meth:`.batch_panel.BatchTab.wire_open`), which follows it while it runs.

The strip refreshes by itself while, and only while, something in it is live: a ``gr.Timer`` that
each listing switches on when a run or batch in it is in progress and off otherwise, so an idle page
polls nothing. A tick first compares a signature of what is live, read from memory only
(:meth:`RecentRunsView.signature`), with the one the page saw last (a ``gr.State``): unchanged, it
answers "no change" without touching the store, the disk or the page; only a change lists again.

After a server restart nothing is in memory and nothing is run again: the strip says what became of
the owner's downloads the stop cut short (the housekeeping's ``resume_pending`` finishes those whose
link still lives, and marks the others expired; see :attr:`.AppContext.pending_at_start`). All the
strip's events are private: not in the API page, not MCP tools.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from ..enums import Status, Task
from ..runtime import AppContext
from ..storage import Gallery
from .batch_live import LiveBatches
from .batch_panel import BatchPanel, BatchTab
from .page_text import caption, md
from .recent_runs import BatchEntry, Entry, LOCAL, batch_owner, live_batch, recent_batches, recent_owner
from .request_info import request_lang, request_session
from .run_handlers import RunHandlers
from .strings import t
from .widgets import I18N, PRIVATE, STOP, label, progress_on, scroll_to_when_shown

THUMBS = 24  # thumbnails in the strip (each one a file check)
LINES = 4  # lines of finished runs and batches listed under the live ones (a phone keeps its tabs in reach)
RESTART_IDS = 50  # an owner's downloads followed across a restart
TICK_S = 3.0  # seconds between two refreshes while something in the strip is live (never below 2)
Signature = tuple[Any, ...]  # what is live in an owner's strip, as the page saw it last


@dataclass
class RecentStrip:
    """The strip's widgets."""

    box: gr.Accordion
    listing: gr.Markdown
    thumbs: gr.Gallery
    refresh: gr.Button
    attach: gr.Button
    batches: gr.Radio  # the listed batches: picking one opens the Batch tab on it
    timer: gr.Timer  # active only while something listed is live
    seen: gr.State  # the signature of the last listing this page got

    def outputs(self) -> list[Any]:
        """What a listing writes, in the order of :meth:`RecentRunsView.view`'s answer."""
        return [self.box, self.listing, self.thumbs, self.attach, self.batches, self.timer, self.seen]


def build_strip() -> RecentStrip:
    """The strip above the run tabs, hidden until the owner has something to see."""
    with gr.Accordion(I18N("recent.title"), open=True, visible=False, elem_id="recent-runs") as box:
        listing = gr.Markdown(elem_id="recent-runs-list")
        thumbs = gr.Gallery(show_label=False, columns=8, height=120, format="png", allow_preview=False,
                            elem_id="recent-runs-thumbs", buttons=[], visible=False)
        batches = gr.Radio(choices=[], value=None, label=I18N("recent_batch.open"), visible=False,
                           elem_id="recent-runs-batches")
        with gr.Row():
            attach = gr.Button(label("recent.attach"), size="sm", variant="primary", visible=False, scale=0,
                               min_width=160, elem_id="recent-runs-attach")
            refresh = gr.Button(label("recent.refresh"), size="sm", scale=0, min_width=100,
                                elem_id="recent-runs-refresh")
    timer = gr.Timer(TICK_S, active=False)
    return RecentStrip(box, listing, thumbs, refresh, attach, batches, timer, gr.State(None))


@dataclass
class _Restart:
    """An owner's downloads that the last stop cut short, and what became of them."""

    ids: list[int]
    counts: dict[str, int] = field(default_factory=dict)
    settled: bool = False


def _short(prompt: str) -> str:
    return md(prompt if len(prompt) <= 40 else prompt[:39] + "…")


class RecentRunsView:
    """The strip's events: list the owner's runs and batches (by itself while one is live), follow
    the runs in progress again, open a batch in the Batch tab."""

    def __init__(self, ctx: AppContext, runs: RunHandlers, batches: LiveBatches | None = None):
        self.ctx, self.runs = ctx, runs
        self.batches = batches if batches is not None else LiveBatches()  # the app's running batches
        self.started = time.time()
        self._restart: dict[str, _Restart] = {}
        for rid, owner in getattr(ctx, "pending_at_start", ()):
            key = LOCAL if not ctx.opts.hosted else owner
            if key is not None:
                ids = self._restart.setdefault(key, _Restart([])).ids
                if len(ids) < RESTART_IDS:
                    ids.append(rid)

    # --- what the strip shows ------------------------------------------------------------------
    def restart_lines(self, owner: str | None, lang: str) -> list[str]:
        """What became of ``owner``'s downloads cut short by the last stop (for ``KEEP_S`` after the start)."""
        found = self._restart.get(owner) if owner is not None else None
        if found is None or time.time() - self.started > self.runs.recent.keep_s:
            return []
        if not found.settled:
            counts = {"saved": 0, "lost": 0, "pending": 0}
            for rid in found.ids:
                rec = self.ctx.store.get(rid)
                if rec is None or (self.ctx.opts.hosted and rec.owner != owner):
                    continue
                state = {Status.DONE: "saved", Status.PENDING: "pending"}.get(rec.status, "lost")
                counts[state] += 1
            found.counts, found.settled = counts, not counts["pending"]
        return ["ℹ️ " + t(lang, f"recent.restart_{k}", n=v) for k, v in found.counts.items() if v]

    def signature(self, owner: str | None, entries: list[Entry] | None = None) -> Signature:
        """What is live in ``owner``'s strip, from memory only (no store, no disk): each run's state
        and progress, and the running batch's counts. Equal signatures list the same thing."""
        if entries is None:
            entries = self.runs.recent.entries(owner)
        running = live_batch(self.ctx, self.batches, owner)
        batch = (running.batch_id, running.done, running.failures, running.finished) if running is not None else None
        return tuple((id(e), e.state, e.progress()) for e in entries), batch

    def _batch_line(self, b: BatchEntry, lang: str) -> str:
        key = "recent_batch.stopped" if b.state == "stopped" else f"recent.{b.state}"
        state = t(lang, key, k=b.k, n=b.n)
        return "- " + t(lang, "recent_batch.line", kind=t(lang, f"recent_batch.kind_{b.kind}"), id=b.batch_id,
                        prompt=_short(b.prompt), state=state)

    def _read(self, owner: str | None, lang: str, entries: list[Entry]) -> tuple[list[str], list[tuple[str, str]],
                                                                                  list[BatchEntry]]:
        """The listing's lines, thumbnails and batches: the store and the disk (a worker thread)."""
        lines = self.restart_lines(owner, lang)
        listed = recent_batches(self.ctx, self.batches, owner, self.runs.recent.keep_s, thumbs=THUMBS)
        live: list[str] = []
        ended: list[str] = []
        for b in listed:
            (live if b.live is not None else ended).append(self._batch_line(b, lang))
        for e in entries:
            k = len(e.results) if e.run is None else e.progress()
            state = t(lang, f"recent.{e.state}", k=k, n=e.n)
            (live if e.run is not None else ended).append(
                "- " + t(lang, "recent.line", task=t(lang, f"task.{e.task}"), prompt=_short(e.prompt), state=state))
        # What is going on first, then the newest finished ones; the rest are one line (they are in the gallery).
        lines += live + ended[:LINES]
        if len(ended) > LINES:
            lines.append("- " + t(lang, "recent_more.finished", n=len(ended) - LINES))
        thumbs: list[tuple[str, str]] = []
        if listed and owner is not None:
            gallery = Gallery(self.ctx.store, batch_owner(self.ctx, owner))
            for b in listed:
                for rec in b.records:  # in the batch's order, as the Batch tab shows them
                    small = gallery.thumbnail(rec) if len(thumbs) < THUMBS else None
                    if small is not None:
                        thumbs.append((str(small), caption(rec, lang)))
        for e in entries:
            for rec in reversed(e.saved()):
                if len(thumbs) < THUMBS and rec.file is not None and rec.file.exists():
                    thumbs.append((str(rec.file), caption(rec, lang)))
        return lines, thumbs, listed

    async def view(self, owner: str | None, lang: str, opened: bool | None = None,
                   keep_open: bool = False) -> tuple[Any, ...]:
        """(strip, listing, thumbnails, Follow button, batches, timer, signature) for ``owner``; the
        strip ``opened`` or, when None (a page load), open only while a run is in progress or a
        restart has news: finished runs are in the gallery already, and an open strip would push
        the tabs off a phone's screen. ``keep_open``: leave it as the visitor left it (a tick)."""
        entries = self.runs.recent.entries(owner)  # on the event loop: RecentRuns is not thread-safe
        seen = self.signature(owner, entries)
        lines, thumbs, listed = await asyncio.to_thread(self._read, owner, lang, entries)
        news = any(line.startswith("ℹ️") for line in lines)
        runs_live = any(e.run is not None for e in entries)
        live = runs_live or any(b.live is not None for b in listed)
        opened = (live or news) if opened is None else opened
        box = gr.Accordion(visible=bool(lines)) if keep_open else gr.Accordion(visible=bool(lines), open=opened)
        choices = [(t(lang, "recent_batch.choice", kind=t(lang, f"recent_batch.kind_{b.kind}"), id=b.batch_id),
                    b.batch_id) for b in listed]
        return (box, "\n".join(lines), gr.Gallery(thumbs, visible=bool(thumbs)), gr.Button(visible=runs_live),
                gr.Radio(choices=choices, value=None, visible=bool(choices)), gr.Timer(active=live), seen)

    async def recent_runs_on_load(self, request: gr.Request):
        """The strip for the caller on a page load (open only when something needs them)."""
        return await self.view(recent_owner(self.ctx, request), request_lang(request))

    async def recent_runs(self, request: gr.Request):
        """The strip for the caller, open (Refresh, or after following a run)."""
        return await self.view(recent_owner(self.ctx, request), request_lang(request), opened=True)

    async def recent_runs_tick(self, seen: Any, request: gr.Request):
        """The timer's refresh while something in the strip is live: "no change" (from memory) while
        what is live is as the page last saw it, else the strip listed again (the timer stops once
        nothing is live). Bounded: at most ``PER_OWNER`` runs and one running batch are looked at."""
        owner = recent_owner(self.ctx, request)
        if owner is None:  # hosted without the cookie: nothing is listed, and nothing to tick for
            return (gr.Accordion(visible=False), "", gr.Gallery([], visible=False), gr.Button(visible=False),
                    gr.Radio(choices=[], value=None, visible=False), gr.Timer(active=False), None)
        if seen is not None and self.signature(owner) == tuple(seen):
            return (*(gr.skip() for _ in range(6)), seen)
        return await self.view(owner, request_lang(request), keep_open=True)

    @staticmethod
    def recent_open_batch(batch_id: str) -> tuple[Any, Any, Any]:
        """Picking a batch in the strip: the Batch tab, its picker set to that batch (the tab's own
        handler then shows it, the caller's own only), and the strip's choice cleared."""
        batch_id = str(batch_id or "")[:40]
        if not batch_id:
            return gr.skip(), gr.skip(), gr.skip()
        return gr.Tabs(selected="batch"), gr.Dropdown(value=batch_id), gr.Radio(value=None)

    # --- following a run again -----------------------------------------------------------------
    async def _follow(self, task: str, request: gr.Request | None) -> AsyncIterator[tuple[Any, str]]:
        run = self.runs.recent.running(recent_owner(self.ctx, request), task)
        if run is None:
            yield gr.skip(), gr.skip()
            return
        async for out in self.runs.reattach(run, request_session(request), task):
            yield out

    async def recent_follow_t2i(self, request: gr.Request):
        """Follow the caller's newest text-to-image run in progress in this page."""
        async for out in self._follow(Task.T2I, request):
            yield out

    async def recent_follow_edit(self, request: gr.Request):
        """Follow the caller's newest edit run in progress in this page."""
        async for out in self._follow(Task.EDIT, request):
            yield out

    async def recent_follow_fuse(self, request: gr.Request):
        """Follow the caller's newest fusion run in progress in this page."""
        async for out in self._follow(Task.FUSE, request):
            yield out

    def wire(self, demo: gr.Blocks, strip: RecentStrip, panels: dict[Task, Any]) -> None:
        """The strip on every page load and Refresh; Follow again: each task's panel (``{Task.T2I:
        panel, ...}``) follows its run in progress, then the strip is listed again; the timer's
        refresh. All private."""
        outputs = strip.outputs()
        demo.load(self.recent_runs_on_load, None, outputs, **PRIVATE, show_progress="hidden")
        strip.refresh.click(self.recent_runs, None, outputs, **PRIVATE, show_progress="hidden")
        follow = {Task.T2I: self.recent_follow_t2i, Task.EDIT: self.recent_follow_edit,
                  Task.FUSE: self.recent_follow_fuse}
        for task, panel in panels.items():
            followed = strip.attach.click(follow[task], None, [panel.results, panel.status], **STOP,
                                          **progress_on(panel.status))
            # The run ended (or there was none of this task): the strip says so without a Refresh.
            followed.then(self.recent_runs, None, outputs, **PRIVATE, show_progress="hidden")
        # Queued, in a group of its own with a small limit, rather than unqueued or unlimited: a tick
        # whose signature changed reads the store and the disk (in a worker thread), and a client
        # can send ticks without a timer. A flood then waits in this group's queue (the run and
        # batch groups go on), and never holds more than two worker threads. "once": a page whose
        # tick is still pending sends no other.
        strip.timer.tick(self.recent_runs_tick, strip.seen, outputs, api_visibility="private",
                         concurrency_id="recent_strip", concurrency_limit=2, trigger_mode="once",
                         show_progress="hidden")

    def wire_batches(self, strip: RecentStrip, tab: BatchTab, panel: BatchPanel, tabs: gr.Tabs) -> None:
        """Picking a batch in the strip opens the Batch tab on it (after :meth:`BatchTab.wire`: its
        events follow every earlier one)."""
        opened = strip.batches.input(self.recent_open_batch, strip.batches, [tabs, panel.picker, strip.batches],
                                     **PRIVATE, show_progress="hidden")
        tab.wire_open(opened, panel)
        # On a phone the Batch tab's results lie screens below the strip: bring them up (browser only).
        opened.then(None, None, None, js=scroll_to_when_shown(f"#{panel.results.elem_id}"), **PRIVATE)
