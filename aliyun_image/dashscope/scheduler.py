"""The request scheduler: keeps within the account's limit on image tasks at once.

Bailian limits each Alibaba Cloud account to a few image tasks at once per model, shared by
every key, workspace and visitor (``shared/models-2026.md`` section 5); the real number is not
published, so it is found at run time. One :class:`Scheduler` per :class:`~.service.ImageService`
(so one per process in the app and the CLI) holds a :class:`Lane` per (key, model) pair, and
every generation request and async task of every run and every hosted visitor passes through it:

* **AIMD.** A lane starts at a small limit (``Settings.concurrency.task_limit``, else the model data's
  ``task_limit``, else :data:`DEFAULT_START`). A ``Throttling*`` 429 lowers it (halved, rounded
  up, at least 1; once per window, so a burst of 429s from one overload counts once) and holds
  every new start until ``Retry-After`` (else an exponential backoff) has passed. After
  ``increase_every`` successes in a row, and no 429 for ``cooldown`` seconds, it grows by one,
  up to ``Settings.concurrency.task_limit_max``.
* **Fair order.** Requests wait in FIFO order within a run, and a free slot goes to the waiting
  run that has had the fewest so far (ties: the one that came first), so three runs of four
  images started together interleave; none waits for another to finish.
* **Stop.** A queued request of a run whose cancel flag is set leaves the queue at once and
  fails as ``Cancelled``: it is never sent.
* **429s and money.** The scheduler asks the client not to retry 429s itself
  (``retry_throttled=False``): a 429 comes back at once as a
  :class:`~.errors.ThrottledError`, which feeds the limit and puts the request back at the head
  of its run's queue. That is safe because a 429 means the request was refused, not carried
  out, so not billed. Any other failure (including one that may have been billed, see
  :func:`~.errors.may_be_billed`) is handed to the caller and never resent; 5xx retries stay
  the client's business. A request refused more than :data:`MAX_REQUEUES` times fails, saying so.

For an async task the slot is held from ``create_task`` until the task ends, because the
account's limit counts running tasks. The API key is never stored: lanes are named by a hash.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from ..catalog import get_model
from ..config import Settings
from ..errors import ThrottledError, cancelled
from ..i18n import Message, msg

T = TypeVar("T")

DEFAULT_START = 2  # tasks at once when neither the settings nor the model data say
INCREASE_EVERY = 8  # successes in a row before the limit grows by one
COOLDOWN = 60.0  # s without a 429 before growing again (the service forgives a ramp-up in ~1 min)
MAX_REQUEUES = 8  # 429s one request may get before it fails
POLL = 0.05  # s between checks of Stop and of a hold's end while queued
MAX_IDLE_LANES = 256  # idle lanes beyond this are forgotten (many visitors with their own keys)

OK, THROTTLED, OTHER = "ok", "throttled", "other"


def queued_text(limit: int) -> Message:
    """The status line while requests wait on the account's limit."""
    return msg("error.queued", limit=limit)


def lane_id(base_url: str, key: str, model: str) -> tuple[str, str]:
    """The name of a lane: a hash of the service address and key (never the key), and the model."""
    digest = hashlib.sha256(f"{base_url}\0{key}".encode()).hexdigest()[:20]
    return digest, model


@dataclass(eq=False)
class Ticket:
    """One request's place in a lane: queued, then granted a slot, then finished."""

    run: str
    granted: threading.Event = field(default_factory=threading.Event)
    epoch: int = -1  # the lane's epoch when granted (429s of one window lower the limit once)


class Lane:
    """The limit and the queue of one (key, model) pair. Thread-safe; ``clock`` is injectable
    (monotonic seconds), so the AIMD rules and holds are tested without sleeping."""

    def __init__(self, start: int, ceiling: int, *, clock: Callable[[], float] = time.monotonic,
                 backoff_base: float = 1.0, backoff_max: float = 20.0,
                 increase_every: int = INCREASE_EVERY, cooldown: float = COOLDOWN):
        self.ceiling = max(1, ceiling)
        self.limit = min(max(1, start), self.ceiling)
        self.active = 0
        self.hold_until = 0.0
        self.throttles = 0  # 429s received (for benchmarks and tests)
        self._clock = clock
        self._backoff = (backoff_base, backoff_max)
        self._increase_every, self._cooldown = increase_every, cooldown
        self._queues: OrderedDict[str, deque[Ticket]] = OrderedDict()  # run -> its waiting tickets, by arrival
        self._served: dict[str, int] = {}  # run -> slots granted so far (while it has requests here)
        self._running: dict[str, int] = {}  # run -> slots it holds now
        self._told: dict[str, int] = {}  # run -> the limit it was last told it waits on
        self._epoch = 0
        self._successes = 0
        self._streak = 0  # 429s since the last success (backoff grows with it)
        self._quiet_until = 0.0
        self._lock = threading.Lock()

    # --- queue ---------------------------------------------------------------------------------
    def enqueue(self, run: str) -> Ticket:
        """Queue a request of ``run`` and grant what the limit allows."""
        ticket = Ticket(run)
        with self._lock:
            self._queues.setdefault(run, deque()).append(ticket)
        self.pump()
        return ticket

    def withdraw(self, ticket: Ticket) -> bool:
        """Take a queued ticket out (Stop); False when it was already granted a slot."""
        with self._lock:
            q = self._queues.get(ticket.run)
            if ticket.granted.is_set() or q is None or ticket not in q:
                return False
            q.remove(ticket)
            if not q:
                del self._queues[ticket.run]
                self._forget(ticket.run)
            return True

    def _forget(self, run: str) -> None:
        """Drop a run's counts once it has nothing queued or running here (call with the lock held)."""
        if run not in self._queues and not self._running.get(run):
            self._served.pop(run, None)
            self._running.pop(run, None)
            self._told.pop(run, None)

    def tell(self, run: str) -> int | None:
        """The limit to tell ``run`` it is waiting on, or None when it was told that one already."""
        with self._lock:
            if self._told.get(run) == self.limit:
                return None
            self._told[run] = self.limit
            return self.limit

    def pump(self) -> None:
        """Grant slots to queued tickets while the limit allows and no hold is on."""
        with self._lock:
            if self._clock() < self.hold_until:
                return
            while self.active < self.limit and self._queues:
                run = min(self._queues, key=lambda r: self._served.get(r, 0))  # fewest served; first come
                q = self._queues[run]
                ticket = q.popleft()
                if not q:
                    del self._queues[run]
                self._served[run] = self._served.get(run, 0) + 1
                self._running[run] = self._running.get(run, 0) + 1
                self.active += 1
                ticket.epoch = self._epoch
                ticket.granted.set()

    @property
    def waiting(self) -> int:
        """Requests queued now."""
        with self._lock:
            return sum(len(q) for q in self._queues.values())

    @property
    def idle(self) -> bool:
        """Nothing running, queued or held back: safe to forget (a new lane learns the limit again)."""
        with self._lock:
            return not self.active and not self._queues and self._clock() >= self.hold_until

    # --- outcomes ------------------------------------------------------------------------------
    def finish(self, ticket: Ticket, outcome: str, retry_after: float | None = None, *,
               requeue: bool = False) -> Ticket | None:
        """Free ``ticket``'s slot: ``OK`` (may raise the limit), ``THROTTLED`` (a 429: lower it,
        hold new starts) or ``OTHER`` (no change to the limit). ``requeue``: the same request
        waits again, at the head of its run's queue (a 429 keeps its place); its new ticket is
        returned."""
        run, again = ticket.run, Ticket(ticket.run) if requeue else None
        with self._lock:
            self.active = max(0, self.active - 1)
            self._running[run] = max(0, self._running.get(run, 0) - 1)
            now = self._clock()
            if outcome == OK:
                self._succeeded(now)
            elif outcome == THROTTLED:
                self._throttled(ticket, now, retry_after)
                self._served[run] = max(0, self._served.get(run, 0) - 1)  # refused: it was not served
            if again is not None:
                self._queues.setdefault(run, deque()).appendleft(again)
                self._queues.move_to_end(run, last=False)  # first among equals
            self._forget(run)
        self.pump()
        return again

    def _succeeded(self, now: float) -> None:
        self._streak = 0
        self._successes += 1
        if self._successes >= self._increase_every and now >= self._quiet_until and self.limit < self.ceiling:
            self.limit += 1  # additive increase
            self._successes = 0

    def _throttled(self, ticket: Ticket, now: float, retry_after: float | None) -> None:
        self.throttles += 1
        self._successes = 0
        self._streak += 1
        if ticket.epoch == self._epoch:  # the first 429 of requests started since the last decrease
            self.limit = max(1, min(self.limit - 1, math.ceil(self.limit / 2)))  # multiplicative decrease
            self._epoch += 1
        base, cap = self._backoff
        wait = retry_after if retry_after is not None else min(cap, base * 2 ** (self._streak - 1))
        self.hold_until = max(self.hold_until, now + wait)
        self._quiet_until = now + self._cooldown


class Scheduler:
    """Every generation request and async task goes through :meth:`call` (see the module doc)."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self._clock = clock
        self._lanes: dict[tuple[str, str], Lane] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """False with ``task_limit=0``: requests go out at once, as before the scheduler."""
        return self.settings.concurrency.task_limit != 0

    def start_limit(self, model: str) -> int:
        """The starting limit for ``model``: the settings', else the model data's, else the default."""
        if self.settings.concurrency.task_limit:
            return self.settings.concurrency.task_limit
        spec = get_model(model)
        return (spec.task_limit if spec is not None and spec.task_limit else None) or DEFAULT_START

    def lane(self, key: str, model: str) -> Lane:
        """The lane of (key, model), made on first use."""
        name = lane_id(self.settings.base_url, key, model)
        with self._lock:
            lane = self._lanes.get(name)
            if lane is None:
                if len(self._lanes) >= MAX_IDLE_LANES:
                    self._lanes = {k: v for k, v in self._lanes.items() if not v.idle}
                t, most = self.settings.transport, self.settings.concurrency.task_limit_max
                lane = self._lanes[name] = Lane(self.start_limit(model), most, clock=self._clock,
                                                backoff_base=t.backoff_base, backoff_max=t.backoff_max)
            return lane

    def call(self, key: str, model: str, run: str, send: Callable[[bool], T], *,
             cancel: threading.Event | None = None, on_wait: Callable[[int], None] | None = None) -> T:
        """Run ``send(retry_throttled)`` in a slot of the (key, model) lane and return its result.

        ``send`` makes the request (and, for an async task, waits for it: the slot is held
        throughout). It gets ``False`` here, so a 429 raises :class:`ThrottledError` at once;
        the request is then queued again at the head of ``run``'s queue. ``on_wait(limit)`` is
        called when a request of ``run`` has to wait, once per run and limit. Raises
        :class:`CancelledError` when ``cancel`` is set while queued (nothing was sent), and
        whatever ``send`` raises otherwise.
        """
        if not self.enabled:
            return send(True)
        lane = self.lane(key, model)
        queued: Ticket | None = None
        for refused in range(MAX_REQUEUES + 1):
            ticket = self._acquire(lane, queued or lane.enqueue(run), cancel, on_wait)
            try:
                result = send(False)
            except ThrottledError as exc:
                queued = lane.finish(ticket, THROTTLED, exc.retry_after, requeue=refused < MAX_REQUEUES)
                if queued is None:
                    raise _gave_up(exc, refused + 1) from None
                continue
            except BaseException:
                lane.finish(ticket, OTHER)
                raise
            lane.finish(ticket, OK)
            return result
        raise AssertionError("unreachable")  # the loop returns or raises

    @staticmethod
    def _acquire(lane: Lane, ticket: Ticket, cancel: threading.Event | None,
                 on_wait: Callable[[int], None] | None) -> Ticket:
        """Wait until ``ticket`` (queued) gets a slot; Stop while queued withdraws it and raises Cancelled."""
        if not ticket.granted.is_set() and on_wait is not None and (limit := lane.tell(ticket.run)) is not None:
            on_wait(limit)
        while not ticket.granted.wait(POLL):
            if cancel is not None and cancel.is_set() and lane.withdraw(ticket):
                raise cancelled()
            lane.pump()  # a hold may have ended
        if cancel is not None and cancel.is_set():  # stopped just as the slot came: do not send
            lane.finish(ticket, OTHER)
            raise cancelled()
        return ticket


def _gave_up(exc: ThrottledError, times: int) -> ThrottledError:
    """The error when the account kept refusing one request."""
    out = ThrottledError(msg("error.throttled_gave_up", times=times), code=exc.code, status=exc.status,
                         message=exc.message, request_id=exc.request_id, retries=times)
    out.retry_after = exc.retry_after
    return out
