"""Batches that outlive the page: each runs in a server thread owned by the app, not by the Gradio
request that started it, so closing or reloading the page stops nothing.

A :class:`LiveBatch` is what the page shows of one batch while it runs: one :class:`Slot` per image
the batch asks for (its place in the batch, the item and prompt it belongs to, and once it lands
its record and thumbnail), counts and the elapsed time. The engine's events
(:func:`aliyun_image.generation.batch.run`) reach it from the engine's threads through
:meth:`LiveBatch.post`; any number of page handlers may watch it (:meth:`LiveBatch.changes`: woken
by each event, and once a second for the clock), and none is needed for it to finish.

:class:`LiveBatches` is the app's registry of running batches (Stop needs no id, it stops the
caller's own). How many may run, and whose, is the app's run slots' (one batch per owner, a few in
all, hosted a visitor's runs and batches together: :mod:`aliyun_image.runtime.run_slots`), so a
hostile visitor cannot start threads without end. This module knows nothing about Gradio (its few
words, a failure's reason and a duration, come from the page's catalogue).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..enums import EventKind
from ..errors import AliyunImageError, api_error
from ..generation import BatchOutcome, Event
from ..runtime import RunSlot
from ..storage import Record
from ..storage.batches import FAILED, MAYBE, QUEUED, SENT, UnitRow
from .strings import t

TICK = 1.0  # seconds between two status lines while nothing lands (the elapsed time moves on)


@dataclass
class Slot:
    """One image a batch asks for, in the batch's order."""

    idx: int  # its place among the batch's images (a result's ``idx``)
    item: int  # the item (one prompt, one set of axis values) it belongs to, from 0
    number: int  # its number among the item's images, from 1
    of: int  # how many images the item asks for
    prompt: str
    labels: dict[str, str]
    record: Record | None = None
    thumb: Path | None = None
    failed: bool = False
    reason: str = ""  # why it failed, a few words in the page's language (set when the batch ends)
    not_sent: bool = False  # the batch ended (Stop, a refusal) before its request was sent: nothing billed
    sent: bool = False  # its request is out (maybe billed): the image is on its way, not waiting its turn
    # its unit failed during this run: shown failed at once (counted by the run's failure events, not
    # by ``failed``; the reason comes when the batch ends)
    lost: bool = False

    @property
    def label(self) -> str:
        """``3`` for the only image of item 3, ``3.2`` for its second of several."""
        return str(self.item + 1) if self.of == 1 else f"{self.item + 1}.{self.number}"


def slots_of(units: Sequence[UnitRow], records: Sequence[Record],
             thumb: Callable[[Record], Path | None], settled: BatchOutcome | None = None,
             lang: str = "en") -> list[Slot]:
    """The slots of a stored batch: every image its units ask for, the ones already stored filled
    in (``thumb`` makes their previews), those of failed or maybe-billed units marked failed. With
    ``settled`` (the batch is not running: shown as stored, or its run just ended) every place says
    what became of it (:func:`mark_ended`): nothing still reads "waiting" that will not come."""
    per_item: dict[int, int] = {}
    for u in units:
        per_item[u.item] = per_item.get(u.item, 0) + u.images
    by_idx = {r.idx: r for r in records}
    seen: dict[int, int] = {}
    slots = []
    for u in units:
        for k in range(u.images):
            seen[u.item] = seen.get(u.item, 0) + 1
            slot = Slot(u.idx + k, u.item, seen[u.item], per_item[u.item], u.prompt, dict(u.labels))
            rec = by_idx.get(slot.idx)
            if rec is not None:
                slot.record, slot.thumb = rec, thumb(rec)
            elif u.state in (FAILED, MAYBE):
                slot.failed = True
            else:
                slot.sent = u.state == SENT
            slots.append(slot)
    if settled is not None:
        mark_ended(slots, settled, lang)
    return slots


def mark_ended(slots: Sequence[Slot], outcome: BatchOutcome, lang: str) -> None:
    """The places of a batch whose run is over, by their unit's final state: failed (with why, in a few
    words) or maybe billed; ``queued`` ones were never sent (Stop, a refusal of the account): "not sent",
    not "waiting" (a page that says waiting promises an image that will not come)."""
    by_idx = {u.idx + k: u for u in outcome.units for k in range(u.images)}
    for slot in slots:
        unit = by_idx.get(slot.idx)
        if slot.record is not None or unit is None:
            continue
        slot.failed = unit.state in (FAILED, MAYBE)
        slot.not_sent = unit.state == QUEUED
        slot.sent = unit.state == SENT  # an async task Stop left running at the service: resume collects it
        slot.reason = short_reason(outcome, unit, lang) if slot.failed else ""


SHORT = 36  # characters of a failure's reason on a tile's caption


def short_reason(outcome: BatchOutcome, unit: UnitRow, lang: str) -> str:
    """Why ``unit`` failed, in a few words: the first phrase of this run's error in ``lang``; for a
    unit left by an earlier run (only its code is stored) the first phrase of what that DashScope code
    means, else the code itself; maybe billed said so."""
    if unit.state == MAYBE:
        return t(lang, "batch_ux.maybe_billed")
    err = outcome.error(unit)
    if err is None:
        known = api_error(None, unit.error) if unit.error else None
        if known is None or known.msg.key == "error.api.unknown":
            return unit.error or ""
        err = known
    text = err.text(lang, details=False).strip()
    first = re.split(r"(?<=[.:;!?])\s|[。：；！？]", text, maxsplit=1)[0].rstrip(".:; ")
    return first if len(first) <= SHORT else first[:SHORT - 1].rstrip() + "…"


def duration(seconds: float, lang: str, *, running: bool = False) -> str:
    """A batch's elapsed time for a person: ``m:ss`` (``h:mm:ss``); under a second ``0.4 s``, or "under
    1 s" on the status line of a running batch (it ticks once a second), never ``0:00``."""
    if seconds >= 1:
        s = int(seconds)
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    if running or seconds < 0.05:
        return t(lang, "batch_ux.under", n=1 if running else "0.1")
    return t(lang, "batch_ux.seconds", s=f"{max(seconds, 0.1):.1f}")


@dataclass(eq=False)
class LiveBatch:
    """One batch running (or just run) in a server thread, as the page shows it."""

    batch_id: str
    kind: str  # batch | grid
    owner: str | None
    lang: str  # the language of the page that started it (the grid's axis titles)
    slots: list[Slot]
    thumb: Callable[[Record], Path | None]
    cancel: threading.Event = field(default_factory=threading.Event)
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    failed: int = 0  # images that failed in this run
    finished: bool = False
    outcome: BatchOutcome | None = None
    grid: Path | None = None  # the grid image, once a grid batch is settled
    error: AliyunImageError | None = None  # why the run stopped before it started (budget, quota...)
    landed: int = 0  # images stored in this run
    tiles: int = 0  # changes to the tiles (an image landed, a request went out): the page redraws them then
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = field(default_factory=list)

    # --- counts ------------------------------------------------------------------------------
    @property
    def total(self) -> int:
        """Images the batch asks for."""
        return len(self.slots)

    @property
    def done(self) -> int:
        """Images stored (in earlier runs too)."""
        return sum(1 for s in self.slots if s.record is not None)

    @property
    def failures(self) -> int:
        """Images that will not come: failed in this run, or marked failed before it."""
        return self.failed + sum(1 for s in self.slots if s.failed and s.record is None)

    @property
    def waiting(self) -> int:
        """Images still to come (queued, or sent and not back yet)."""
        return max(0, self.total - self.done - self.failures)

    def elapsed(self) -> float:
        """Seconds since the run started (until it ended)."""
        return (self.ended or time.monotonic()) - self.started

    # --- the engine's threads ---------------------------------------------------------------------
    def post(self, ev: Event) -> None:
        """One event of the engine (any thread): an image stored lands in its slot; a unit's new state
        marks its places (sent: on their way; failed: at once, not only when the batch ends)."""
        with self._lock:
            if ev.kind == EventKind.RESULT and ev.record is not None:
                for slot in self.slots:
                    if slot.idx == ev.record.idx and slot.record is None:
                        slot.record, slot.thumb, slot.failed = ev.record, self.thumb(ev.record), False
                        self.landed += 1
                        self.tiles += 1
                        break
            elif ev.kind == EventKind.FAILURE:
                self.failed += 1
            elif ev.unit is not None:
                first, images, state = ev.unit
                for slot in self.slots:
                    if first <= slot.idx < first + images and slot.record is None:
                        slot.sent, slot.lost = state == SENT, state in (FAILED, MAYBE)
                        self.tiles += 1
        self._wake()

    def finish(self, outcome: BatchOutcome | None, grid: Path | None = None,
               error: AliyunImageError | None = None) -> None:
        """The run is over (its thread calls this last): the units' final states mark the slots."""
        with self._lock:
            self.outcome, self.grid, self.error = outcome, grid, error
            if outcome is not None:
                mark_ended(self.slots, outcome, self.lang)
                self.failed = 0
            elif error is not None:  # refused before anything was sent (a budget, the quota): none will come
                for slot in self.slots:
                    slot.not_sent = slot.record is None and not slot.failed
            self.ended, self.finished = time.monotonic(), True
        self._wake()

    def _wake(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that page's loop is gone: nothing to wake
                loop.call_soon_threadsafe(event.set)

    # --- the page's handlers ------------------------------------------------------------------
    async def changes(self, gap: float = 0.0) -> AsyncIterator[None]:
        """Yield after each change (images landing together are one change, at most one per ``gap``
        seconds) and once a second for the clock; return when the run is over."""
        event = asyncio.Event()
        me = (asyncio.get_running_loop(), event)
        with self._lock:
            self._waiters.append(me)
        try:
            while not self.finished:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(event.wait(), TICK)
                event.clear()
                if self.finished:
                    return
                yield None
                if gap:
                    await asyncio.sleep(gap)
        finally:
            with self._lock:
                self._waiters.remove(me)


class LiveBatches:
    """The batches this app runs now, by id. How many may run, and whose, is the app's run slots'
    (:mod:`aliyun_image.runtime.run_slots`): each batch holds its place until its thread ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[str, LiveBatch] = {}  # by batch id

    def of(self, owner: str | None) -> LiveBatch | None:
        """The owner's running batch, if any (locally, the one running batch)."""
        with self._lock:
            return next((b for b in self._live.values() if b.owner == owner), None)

    def get(self, batch_id: str, owner: str | None) -> LiveBatch | None:
        """Batch ``batch_id`` if it runs now and is the owner's."""
        with self._lock:
            live = self._live.get(str(batch_id))
        return live if live is not None and live.owner == owner else None

    def start(self, live: LiveBatch, work: Callable[[], None], slot: RunSlot) -> None:
        """Run ``work`` (the batch's whole run) in a thread of its own, listed until it returns; the
        thread takes ``slot`` (the batch's place) over and gives it back when it ends."""
        held = slot.hand_over()
        with self._lock:
            self._live[live.batch_id] = live

        def body() -> None:
            try:
                work()
            finally:
                with self._lock:
                    self._live.pop(live.batch_id, None)
                held.release()
                if not live.finished:  # work() always finishes it; a bug must not leave watchers hanging
                    live.finish(None)

        # A daemon: stopping the app must not wait for (and keep sending) a long batch. Units cut
        # short stay stored as queued or sent; the owner's Resume makes only what is missing and
        # never resends a sent one (the engine's rule).
        try:
            threading.Thread(target=body, name=f"aliyun-image-batch-{live.batch_id}", daemon=True).start()
        except BaseException:  # no thread: nothing else would unlist the batch and give its place back
            with self._lock:
                self._live.pop(live.batch_id, None)
            held.release()
            raise

    def __len__(self) -> int:
        with self._lock:
            return len(self._live)
