"""The strip of recent runs above the run tabs, and "Follow again" (issue 18 item 2).

The owner's runs come from :class:`.recent_runs.RecentRuns` (who the owner is, and the bounds: see
there): each run's task, the start of its prompt, its state and its results as thumbnails. "Follow
again" makes each task's panel follow the owner's newest run of that task still in progress, through
the hand-over a Stop uses (:meth:`.run_handlers.RunHandlers.reattach`), so the page's Stop stops it.

After a server restart nothing is in memory and nothing is run again: the strip says what became of
the owner's downloads the stop cut short (the housekeeping's ``resume_pending`` finishes those whose
link still lives, and marks the others expired; see :attr:`.AppContext.pending_at_start`). All the
strip's events are private: not in the API page, not MCP tools.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from ..enums import Status, Task
from ..runtime import AppContext
from .page_text import caption, md
from .recent_runs import LOCAL, recent_owner
from .request_info import request_lang, request_session
from .run_handlers import RunHandlers
from .strings import t
from .widgets import I18N, PRIVATE, STOP, label, progress_on

THUMBS = 24  # thumbnails in the strip (each one a file check)
RESTART_IDS = 50  # an owner's downloads followed across a restart


@dataclass
class RecentStrip:
    """The strip's widgets."""

    box: gr.Accordion
    listing: gr.Markdown
    thumbs: gr.Gallery
    refresh: gr.Button
    attach: gr.Button


def build_strip() -> RecentStrip:
    """The strip above the run tabs, hidden until the owner has something to see."""
    with gr.Accordion(I18N("recent.title"), open=True, visible=False, elem_id="recent-runs") as box:
        listing = gr.Markdown(elem_id="recent-runs-list")
        thumbs = gr.Gallery(show_label=False, columns=8, height=120, format="png", allow_preview=False,
                            elem_id="recent-runs-thumbs", buttons=[], visible=False)
        with gr.Row():
            attach = gr.Button(label("recent.attach"), size="sm", variant="primary", visible=False, scale=0,
                               min_width=160, elem_id="recent-runs-attach")
            refresh = gr.Button(label("recent.refresh"), size="sm", scale=0, min_width=100,
                                elem_id="recent-runs-refresh")
    return RecentStrip(box, listing, thumbs, refresh, attach)


@dataclass
class _Restart:
    """An owner's downloads that the last stop cut short, and what became of them."""

    ids: list[int]
    counts: dict[str, int] = field(default_factory=dict)
    settled: bool = False


class RecentRunsView:
    """The strip's events: list the owner's runs, and follow those in progress again."""

    def __init__(self, ctx: AppContext, runs: RunHandlers):
        self.ctx, self.runs = ctx, runs
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

    def view(self, owner: str | None, lang: str, opened: bool | None = None) -> tuple[Any, str, Any, Any]:
        """(strip, listing, thumbnails, Follow button) for ``owner``; the strip ``opened`` or, when
        None (a page load), open only while a run is in progress or a restart has news: finished
        runs are in the gallery already, and an open strip would push the tabs off a phone's screen."""
        entries = self.runs.recent.entries(owner)
        lines = self.restart_lines(owner, lang)
        news = bool(lines)
        for e in entries:
            prompt = e.prompt if len(e.prompt) <= 40 else e.prompt[:39] + "…"
            k = len(e.results) if e.run is None else e.progress()
            state = t(lang, f"recent.{e.state}", k=k, n=e.n)
            lines.append("- " + t(lang, "recent.line", task=t(lang, f"task.{e.task}"), prompt=md(prompt), state=state))
        thumbs: list[tuple[str, str]] = []
        for e in entries:
            for rec in reversed(e.saved()):
                if len(thumbs) < THUMBS and rec.file is not None and rec.file.exists():
                    thumbs.append((str(rec.file), caption(rec)))
        live = any(e.run is not None for e in entries)
        opened = (live or news) if opened is None else opened
        return (gr.Accordion(visible=bool(lines), open=opened), "\n".join(lines),
                gr.Gallery(thumbs, visible=bool(thumbs)), gr.Button(visible=live))

    async def recent_runs_on_load(self, request: gr.Request):
        """The strip for the caller on a page load (open only when something needs them)."""
        return self.view(recent_owner(self.ctx, request), request_lang(request))

    async def recent_runs(self, request: gr.Request):
        """The strip for the caller, open (Refresh, or after following a run)."""
        return self.view(recent_owner(self.ctx, request), request_lang(request), opened=True)

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
        panel, ...}``) follows its run in progress, then the strip is listed again. All private."""
        outputs = [strip.box, strip.listing, strip.thumbs, strip.attach]
        demo.load(self.recent_runs_on_load, None, outputs, **PRIVATE, show_progress="hidden")
        strip.refresh.click(self.recent_runs, None, outputs, **PRIVATE, show_progress="hidden")
        follow = {Task.T2I: self.recent_follow_t2i, Task.EDIT: self.recent_follow_edit,
                  Task.FUSE: self.recent_follow_fuse}
        for task, panel in panels.items():
            followed = strip.attach.click(follow[task], None, [panel.results, panel.status], **STOP,
                                          **progress_on(panel.status))
            # The run ended (or there was none of this task): the strip says so without a Refresh.
            followed.then(self.recent_runs, None, outputs, **PRIVATE, show_progress="hidden")
