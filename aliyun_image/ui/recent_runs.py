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
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from itertools import islice
from dataclasses import dataclass

import gradio as gr

from ..runtime import AppContext
from ..storage import Record
from .request_info import request_visitor
from .runs import Run

PER_OWNER = 20  # runs listed per owner
KEEP_S = 3600.0  # a finished run is listed this long after it ended
MAX_OWNERS = 5000  # owners remembered at once (the oldest are forgotten first)
LOCAL = "local"  # the one local user's key


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
