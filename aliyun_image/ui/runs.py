"""The bridge between a run's worker thread and the async handlers that show it.

A run's state (results, failures, finished) is changed in one place only: :meth:`Run.apply`,
which the worker thread schedules on the event loop with ``loop.call_soon_threadsafe``. Nothing
polls, and nothing depends on who, if anyone, is watching:

- a run that nobody consumes still finishes: ``apply`` sees its last event, marks it finished
  and calls ``on_finish`` (settle the quota, forget the run);
- at most one consumer (the run handler, or after Stop the stop handler) watches a run at a
  time: :meth:`Run.attach` makes a new consumer current and wakes the previous one, which then
  returns at once;
- a Stop handler for a run that is over (or unknown) has nothing to attach to and returns.

This module knows nothing about Gradio; the handlers turn its state into widget values.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from ..errors import AliyunImageError
from ..i18n import Message
from ..jobs import Job
from ..enums import EventKind, Payer
from ..generation import Event
from ..storage import Record

log = logging.getLogger(__name__)
# Sent to a consumer that another one replaced.
_DETACHED = object()
# How long Stop waits for the consumer it replaced to step aside before it shows anything. Only
# the order in which two outputs reach the page depends on it, never whether a handler ends.
HANDOVER_WAIT = 2.0
# A watcher is woken at least this often while its run goes on, so the elapsed time in the status
# line ticks even while no request comes back (a real generation takes 30-60 s).
TICK = 1.0


@dataclass(eq=False)
class Consumer:
    """One watcher of a run: a wake-up queue and a flag set when it stopped watching."""

    wake: asyncio.Queue = field(default_factory=asyncio.Queue)
    released: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(eq=False)
class Run:
    """One run in progress and everything shown about it."""

    job: Job
    lang: str
    route_kind: Payer  # who pays for the run (OFFLINE: the free demo)
    loop: asyncio.AbstractEventLoop
    on_finish: Callable[[Run], None] = lambda run: None
    # How a failure is told on this page (e.g. the remedy for a key typed in the page); None: as is.
    adapt: Callable[[AliyunImageError], AliyunImageError] | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    results: list[Record] = field(default_factory=list)
    failures: list[AliyunImageError] = field(default_factory=list)
    status_text: Message | None = None  # the service's latest status line
    running: int = 0  # the run's requests out to the service now (the scheduler's count)
    queued: int | None = None  # its requests waiting for their turn; None until the service said
    started: float = field(default_factory=time.monotonic)
    stopping: bool = False
    finished: bool = False
    ended: float | None = None  # wall-clock time it finished (how long a finished run stays listed)
    _consumer: Consumer | None = None

    # --- the worker thread's side -----------------------------------------------------------
    def post(self, ev: Event) -> None:
        """Hand one event to the event loop (called from the worker thread)."""
        # RuntimeError: the loop is closed, the app is shutting down: nobody is left to show it.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.apply, ev)

    # --- the event loop's side --------------------------------------------------------------
    def apply(self, ev: Event) -> None:
        """Change the run's state for one event and wake its consumer (runs on the loop)."""
        if self.finished:
            return
        if ev.kind == EventKind.STATUS and ev.text:
            self.status_text = ev.text
        if ev.running is not None and ev.queued is not None:
            self.running, self.queued = ev.running, ev.queued
        if ev.record is not None:
            self.results.append(ev.record)
            self.results.sort(key=lambda r: (r.idx, r.id))  # request order, whatever order they land in
        if ev.error is not None and ev.error.code != "Cancelled":  # Stop kept it from being sent: no failure
            self.failures.append(self.adapt(ev.error) if self.adapt is not None else ev.error)
        if ev.kind == EventKind.DONE:
            self.finished = True
            self.ended = time.time()
            try:
                self.on_finish(self)
            except Exception:  # the consumer must still be woken to show the end
                log.exception("finishing a run failed")
        if self._consumer is not None:
            self._consumer.wake.put_nowait(ev.kind)

    def attach(self) -> tuple[Consumer, Consumer | None]:
        """Make a new consumer the run's only one; return it and the one it replaced."""
        new, old = Consumer(), self._consumer
        self._consumer = new
        if old is not None:
            old.wake.put_nowait(_DETACHED)
        return new, old

    def elapsed(self) -> int:
        """Whole seconds since the run started."""
        return int(time.monotonic() - self.started)

    def is_current(self, consumer: Consumer) -> bool:
        """True while ``consumer`` is the run's watcher."""
        return self._consumer is consumer

    async def watch(self, consumer: Consumer) -> AsyncIterator[None]:
        """Yield once per batch of changes while ``consumer`` is current and the run unfinished,
        and every :data:`TICK` seconds without a change (the elapsed time moves on).

        Returns when the run finishes (the caller then shows the summary if
        :meth:`is_current` still holds) or when another consumer took over.
        """
        try:
            while not self.finished and self.is_current(consumer):
                try:
                    signals = [await asyncio.wait_for(consumer.wake.get(), TICK)]
                except asyncio.TimeoutError:
                    signals = []
                while not consumer.wake.empty():  # several events at once: show them in one update
                    signals.append(consumer.wake.get_nowait())
                if _DETACHED in signals or not self.is_current(consumer):
                    return
                if not self.finished:
                    yield None
        finally:
            consumer.released.set()

    async def take_over(self) -> Consumer:
        """Attach a new consumer and wait (briefly) for the previous one to step aside."""
        consumer, old = self.attach()
        if old is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(old.released.wait(), HANDOVER_WAIT)
        return consumer


class RunRegistry:
    """The runs that Stop can find, by (session, task). Runs without a session are not listed
    (nothing can address them), and a run leaves the registry when it finishes."""

    def __init__(self) -> None:
        self._runs: dict[tuple[str, str], Run] = {}

    def add(self, session: str | None, task: str, run: Run) -> None:
        """List ``run`` as the session's current run of ``task``.

        A Stop handler still showing the session's previous, stopped run of ``task`` steps aside:
        its outputs are the new run's now. (A previous run that was not stopped keeps its own
        watcher: an API client may run two calls of one session at once.)
        """
        if session:
            previous = self._runs.get((session, task))
            if previous is not None and previous is not run and previous.stopping:
                previous.attach()  # a consumer nobody watches: the old one returns at once
            self._runs[(session, task)] = run

    def get(self, session: str | None, task: str) -> Run | None:
        """The session's unfinished run of ``task``, if any."""
        run = self._runs.get((session, task)) if session else None
        return run if run is not None and not run.finished else None

    def discard(self, session: str | None, task: str, run: Run) -> None:
        """Forget ``run`` (only if it is still the one listed)."""
        if session and self._runs.get((session, task)) is run:
            del self._runs[(session, task)]
