"""Runs that outlive the page (issue 18 item 2): each owner's recent runs, kept to be listed again.

A run started from the page goes on in the service's worker threads when the page is closed or
reloaded (:mod:`.run_handlers`: only Stop, or an API client's cancel, stops it). This module keeps,
per owner, the runs they started lately (:class:`RecentRuns`) and shows them in a strip above the run
tabs (:class:`.recent_view.RecentRunsView`): each run's task, the start of its prompt, its state and its results as
thumbnails. "Follow again" makes each task's panel follow its newest run in progress through the
same hand-over a Stop uses (:meth:`.runs.Run.take_over`), and registers it for the page's Stop.

Who is the owner (:func:`recent_owner`): locally the one local user (any page); hosted, only the
visitor's cookie. A session hash alone lists nothing: a reload gets a new one, and a hash someone
else saw must not show them anyone's runs.

Bounds: at most :data:`PER_OWNER` runs per owner and :data:`MAX_OWNERS` owners; a finished run is
kept as a few records (its run object, whose job may hold input images, is let go) and forgotten
:data:`KEEP_S` after it ended. A listing costs at most ``PER_OWNER`` entries; every addition also
looks at the two owners listed longest ago, so stale owners drain away.

Batches are listed too (:func:`recent_batches`): they are stored (:mod:`aliyun_image.storage.batches`),
so nothing is kept here; the owner's newest :data:`BATCHES` batches that run now in this app
(:class:`.batch_live.LiveBatches`) or changed within ``KEEP_S``, with what landed. Batches follow the
Batch tab's owner rule (:func:`.request_info.request_owner`), which for a caller the strip lists at
all (the local user, a hosted visitor with a cookie) is the same owner as the strip's.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from itertools import islice
from dataclasses import dataclass, field

import gradio as gr

from ..generation import batch as batches
from ..runtime import AppContext
from ..storage import Record
from ..storage.batches import DONE, FAILED, MAYBE, QUEUED, SENT
from .batch_live import LiveBatch, LiveBatches
from .request_info import request_visitor
from .runs import Run

PER_OWNER = 20  # runs listed per owner
KEEP_S = 3600.0  # a finished run is listed this long after it ended
MAX_OWNERS = 5000  # owners remembered at once (the oldest are forgotten first)
LOCAL = "local"  # the one local user's key
BATCHES = 5  # batches listed per owner (each one read from the store on a full listing)


def recent_owner(ctx: AppContext, request: gr.Request | None) -> str | None:
    """Whose runs the caller may list: the local user, or in hosted mode the visitor of the cookie
    (None without one: nothing is listed, nothing is recorded)."""
    if not ctx.opts.hosted:
        return LOCAL
    visitor = request_visitor(ctx, request)
    return ctx.stable_owner(visitor) if visitor.token else None


@dataclass(eq=False)
class Entry:
    """One run as the strip lists it; ``run`` is None once it finished (its records are kept)."""

    task: str
    prompt: str
    n: int
    run: Run | None
    results: tuple[Record, ...] = ()
    state: str = "running"  # running, done, stopped, failed
    ended: float | None = None

    def settle(self) -> None:
        """Once the run finished: keep what the strip shows, let go of the run."""
        run = self.run
        if run is None or not run.finished:
            return
        self.results = tuple(run.results)
        self.state = "stopped" if run.stopping else "failed" if not run.results and run.failures else "done"
        self.ended = run.ended or time.time()
        self.run = None

    def saved(self) -> list[Record]:
        """The results saved so far, in request order."""
        return list(self.run.results) if self.run is not None else list(self.results)

    def progress(self) -> int:
        """Requests answered so far (saved or failed)."""
        run = self.run
        return len(run.results) + len(run.failures) if run is not None else len(self.results)


class RecentRuns:
    """Each owner's recent runs, newest first; bounded (see the module docstring). Used on the event
    loop only (the run handlers and the strip's handlers are ``async``)."""

    def __init__(self, per_owner: int = PER_OWNER, keep_s: float = KEEP_S, max_owners: int = MAX_OWNERS):
        self.per_owner, self.keep_s, self.max_owners = per_owner, keep_s, max_owners
        self._owners: OrderedDict[str, deque[Entry]] = OrderedDict()  # least recently added first

    def add(self, owner: str | None, run: Run) -> None:
        """List ``run`` under ``owner`` (nothing without an owner)."""
        if owner is None:
            return
        runs = self._owners.pop(owner, None) or deque(maxlen=self.per_owner)
        runs.appendleft(Entry(str(run.job.task), run.job.prompt, run.job.n, run))
        self._owners[owner] = runs
        for old in list(islice(self._owners, 2)):  # two at most: no call does work that grows with owners
            if old != owner:
                self.entries(old)
        while len(self._owners) > self.max_owners:
            self._owners.popitem(last=False)

    def entries(self, owner: str | None) -> list[Entry]:
        """``owner``'s runs, newest first: those in progress and those that ended within ``keep_s``."""
        runs = self._owners.get(owner) if owner is not None else None
        if not runs:
            return []
        cutoff = time.time() - self.keep_s
        for entry in runs:
            entry.settle()
        keep = [e for e in runs if e.ended is None or e.ended >= cutoff]
        if len(keep) != len(runs):
            runs.clear()
            runs.extend(keep)
        if not runs:
            del self._owners[owner]  # type: ignore[arg-type]
        return keep

    def running(self, owner: str | None, task: str) -> Run | None:
        """``owner``'s newest run of ``task`` still in progress."""
        for entry in self.entries(owner):
            if entry.run is not None and entry.task == task:
                return entry.run
        return None

    def __len__(self) -> int:
        return len(self._owners)


# --- batches ---------------------------------------------------------------------------------------
def batch_owner(ctx: AppContext, owner: str) -> str | None:
    """The store owner of the strip's ``owner`` for batches: None (every batch) for the local user,
    the visitor's own id in hosted mode (the same one :func:`.request_info.request_owner` gives a
    caller with the cookie). Never called without an owner: hosted, None would mean every batch."""
    return None if owner == LOCAL and not ctx.opts.hosted else owner


@dataclass(eq=False)
class BatchEntry:
    """One batch as the strip lists it."""

    batch_id: str
    kind: str  # batch | grid
    prompt: str  # its first prompt
    k: int  # images stored
    n: int  # images it asks for
    state: str  # running, done, stopped (units left: Resume makes them), failed (nothing stored)
    records: list[Record] = field(default_factory=list)  # what landed, newest last (thumbnails)
    live: LiveBatch | None = None  # while it runs in this app


def live_batch(ctx: AppContext, live: LiveBatches, owner: str | None) -> LiveBatch | None:
    """``owner``'s batch running in this app now, if any (memory only: the strip's timer asks this
    every tick)."""
    return live.of(batch_owner(ctx, owner)) if owner is not None else None


def recent_batches(ctx: AppContext, live: LiveBatches, owner: str | None, keep_s: float = KEEP_S,
                   limit: int = BATCHES, thumbs: int = 24) -> list[BatchEntry]:
    """``owner``'s newest batches (at most ``limit``) that run now or changed within ``keep_s``,
    newest first, with at most ``thumbs`` results read back in all. Blocking (the store): call it
    from a worker thread. Nothing without an owner."""
    if owner is None:
        return []
    store_owner = batch_owner(ctx, owner)
    running = live.of(store_owner)
    if running is not None and running.finished:  # its thread is ending: the store has the final states
        running = None
    cutoff = time.time() - keep_s
    out: list[BatchEntry] = []
    for row, units in batches.recent(ctx.live_service, store_owner, limit):  # any service: the store is one
        first = (batches.prompt_lines(row.spec.get("text", "")) or [""])[0]
        n = sum(u.images for u in units)
        if running is not None and running.batch_id == row.id:
            landed = [s.record for s in running.slots if s.record is not None]
            out.append(BatchEntry(row.id, row.kind, first, running.done, running.total, "running",
                                  landed[-thumbs:] if thumbs else [], running))
        elif row.updated >= cutoff:
            ids = [i for u in units if u.state == DONE for i in u.results]
            left = any(u.state in (QUEUED, SENT) for u in units)
            failed = any(u.state in (FAILED, MAYBE) for u in units)
            state = "stopped" if left else "failed" if not ids and failed else "done"
            got = [ctx.store.get(i, store_owner) for i in ids[-thumbs:]] if thumbs else []
            out.append(BatchEntry(row.id, row.kind, first, len(ids), n, state, [r for r in got if r is not None]))
        else:
            continue
        thumbs = max(0, thumbs - len(out[-1].records))
    return out
