"""Hourly image limits that protect a shared demo's host.

Two budgets exist in hosted mode, each per visitor and for the whole demo per rolling hour:

- ``host``: images made with the host's own API key (the host's bill);
- ``demo``: stand-in images of the offline demo (the host's disk and CPU).

Visitors who bring their own key are not limited here (their bill, their limits).

Counting is exact in the host's favour: images are reserved before a run, and when it ends
the reservation is settled against what may have been billed (stored images, plus images whose
outcome is unknown or whose download failed), never against what was merely shown.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from ..enums import Payer
from ..errors import AliyunImageError, ValidationError, may_be_billed
from ..i18n import Message, msg

WINDOW = 3600.0
# The refusal's words are the catalogue's money.quota_left.<kind>_<who> (kind: host or offline;
# who: session or demo) while some images are left, with {limit} and {left}, else
# money.quota.<kind>_<who> with {limit}, {left} and {wait} filled in.


class HourlyQuota:
    """Sliding-window counters: ``per_session`` and ``total`` images per hour (0 = unlimited).

    ``kind`` (:attr:`Payer.HOST` or :attr:`Payer.OFFLINE`) picks the wording of the refusal.
    """

    def __init__(self, per_session: int, total: int, clock=time.monotonic, kind: Payer = Payer.HOST):
        self.per_session = per_session
        self.total = total
        self.kind = kind
        self._clock = clock
        self._lock = threading.Lock()
        self._all: deque[float] = deque()
        self._by: dict[str, deque[float]] = {}

    def _trim(self, q: deque[float], now: float) -> None:
        while q and q[0] <= now - WINDOW:
            q.popleft()

    def _forget_idle(self, now: float) -> None:
        """Drop visitors with nothing in the window, so a million one-call sessions cost nothing."""
        for who in [w for w, q in self._by.items() if not q or q[-1] <= now - WINDOW]:
            del self._by[who]

    def _refusal(self, session: str, n: int, now: float) -> Message | None:
        """Why ``n`` more images for ``session`` would cross a limit (the caller holds the lock)."""
        mine = self._by.get(session, deque())
        self._trim(mine, now)
        self._trim(self._all, now)
        for q, limit, who in ((mine, self.per_session, "session"), (self._all, self.total, "demo")):
            if limit and len(q) + n > limit:
                left = max(0, limit - len(q))
                if left:  # a smaller run fits now: say how small, not when to come back
                    return msg(f"money.quota_left.{self.kind}_{who}", limit=limit, left=left)
                wait = int((q[0] + WINDOW - now) // 60) + 1 if q else 60
                return msg(f"money.quota.{self.kind}_{who}", limit=limit, left=left, wait=wait)
        return None

    def refusal(self, session: str, n: int) -> Message | None:
        """Why :meth:`take` would refuse ``n`` images for ``session`` now, or None (nothing is
        reserved: the page's cost line warns with it before a run)."""
        with self._lock:
            return self._refusal(session, max(1, int(n)), self._clock())

    def take(self, session: str, n: int) -> None:
        """Reserve ``n`` images for ``session`` or raise ValidationError saying how many are left,
        or, with none left, when to retry."""
        with self._lock:
            now = self._clock()
            if len(self._by) > 1000:
                self._forget_idle(now)
            refused = self._refusal(session, n, now)
            if refused is not None:
                raise ValidationError(refused, code="Quota.Exceeded")
            mine = self._by.setdefault(session, deque())
            mine.extend([now] * n)
            self._all.extend([now] * n)

    def settle(self, session: str, reserved: int, spent: int) -> None:
        """A run that reserved ``reserved`` images ended having spent ``spent`` (what may have been
        billed): give back the rest, or count the extra when the service sent more than asked."""
        if spent < reserved:
            self._give_back(session, reserved - spent)
        elif spent > reserved:
            with self._lock:
                now = self._clock()
                extra = [now] * (spent - reserved)
                self._by.setdefault(session, deque()).extend(extra)
                self._all.extend(extra)

    def _give_back(self, session: str, n: int) -> None:
        with self._lock:
            for q in (self._by.get(session, deque()), self._all):
                for _ in range(min(n, len(q))):
                    q.pop()

    def used(self, session: str) -> int:
        """Images ``session`` used in the last hour."""
        with self._lock:
            q = self._by.get(session, deque())
            self._trim(q, self._clock())
            return len(q)

    def used_total(self) -> int:
        """Images everyone used in the last hour."""
        with self._lock:
            self._trim(self._all, self._clock())
            return len(self._all)


def payer_id(session: str | None, owner: str | None, client_host: str | None) -> str:
    """Who a per-visitor hourly limit counts against: the session (its store owner when there is
    one), or for a call without a session (each gets a fresh owner) the client's address, so new
    calls do not mean a new budget."""
    if session:
        return owner or session
    return "ip:" + (client_host or "unknown")


def spent(stored: int, failures: Sequence[AliyunImageError]) -> int:
    """Images that may have been billed: the ``stored`` ones and failures that may have been."""
    return stored + sum(1 for f in failures if may_be_billed(f))


@dataclass
class Reservation:
    """Images set aside for one run; :meth:`settle` when it ends. Without a quota (a visitor's own
    key, or local mode) it only remembers the size of the run."""

    quota: HourlyQuota | None
    payer: str
    n: int

    @classmethod
    def take(cls, quota: HourlyQuota | None, payer: str, n: int) -> Reservation:
        """Reserve ``n`` images for ``payer``, or raise ValidationError saying when to retry."""
        if quota is not None:
            quota.take(payer, n)
        return cls(quota, payer, n)

    def settle(self, stored: int, failures: Sequence[AliyunImageError]) -> None:
        """The run ended with ``stored`` images and ``failures``: refund what was surely not billed."""
        if self.quota is not None:
            self.quota.settle(self.payer, self.n, spent(stored, failures))
