"""Hourly image limits that protect a shared demo's host.

Two budgets exist in hosted mode, each per visitor and for the whole demo per rolling hour:

- ``host``: images made with the host's own API key (the host's bill);
- ``demo``: stand-in images of the offline demo (the host's disk and CPU).

Visitors who bring their own key are not limited here (their bill, their limits).

Each budget counts per visitor (the store owner of a visitor's cookie or page session) and per
client address (:class:`Payers`): a new cookie starts a new gallery but not a new budget, because
its address has used its share (``address_share`` visitors' worth, so an office behind one address
is not shut out by one colleague).

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
from math import ceil

from ..enums import Payer
from ..errors import AliyunImageError, ValidationError, may_be_billed
from ..i18n import Message, msg

WINDOW = 3600.0
# The refusal's words are the catalogue's money.quota_left.<kind>_<who> (kind: host or offline;
# who: session or demo) while some images are left, with {limit} and {left}, else
# money.quota.<kind>_<who> with {limit}, {left} and {wait} filled in. A client address's share has
# its own table: money.quota_address.<kind>_left / <kind>.


@dataclass(frozen=True)
class Payers:
    """Who one run counts against: the ``visitor`` (a store owner, or ``ip:<address>`` for a caller
    with neither cookie nor session) and the client ``address`` (None: not known)."""

    visitor: str
    address: str | None = None


def _payers(who: str | Payers) -> Payers:
    return who if isinstance(who, Payers) else Payers(who)


class HourlyQuota:
    """Sliding-window counters: ``per_session`` and ``total`` images per hour (0 = unlimited).

    ``kind`` (:attr:`Payer.HOST` or :attr:`Payer.OFFLINE`) picks the wording of the refusal.
    """

    def __init__(self, per_session: int, total: int, clock=time.monotonic, kind: Payer = Payer.HOST,
                 address_share: float = 4.0):
        self.per_session = per_session
        self.total = total
        # A client address may use this many visitors' worth (0 when visitors are unlimited).
        self.per_address = ceil(per_session * max(1.0, address_share))
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

    def _queues(self, who: Payers) -> list[tuple[str, int, str]]:
        """(counter key, limit, wording) of each limit ``who`` counts against."""
        out = [(who.visitor, self.per_session, "session")]
        if who.address is not None:
            out.append(("addr:" + who.address, self.per_address, "address"))
        return out

    def _refusal(self, who: Payers, n: int, now: float) -> Message | None:
        """Why ``n`` more images for ``who`` would cross a limit (the caller holds the lock)."""
        checks = [(self._by.get(key, deque()), limit, kind) for key, limit, kind in self._queues(who)]
        checks.append((self._all, self.total, "demo"))
        for q, limit, kind in checks:
            self._trim(q, now)
            if limit and len(q) + n > limit:
                left = max(0, limit - len(q))
                if left:  # a smaller run fits now: say how small, not when to come back
                    if kind == "address":
                        return msg(f"money.quota_address.{self.kind}_left", limit=limit, left=left)
                    return msg(f"money.quota_left.{self.kind}_{kind}", limit=limit, left=left)
                wait = int((q[0] + WINDOW - now) // 60) + 1 if q else 60
                if kind == "address":
                    return msg(f"money.quota_address.{self.kind}", limit=limit, left=left, wait=wait)
                return msg(f"money.quota.{self.kind}_{kind}", limit=limit, left=left, wait=wait)
        return None

    def refusal(self, who: str | Payers, n: int) -> Message | None:
        """Why :meth:`take` would refuse ``n`` images for ``who`` now, or None (nothing is
        reserved: the page's cost line warns with it before a run)."""
        with self._lock:
            return self._refusal(_payers(who), max(1, int(n)), self._clock())

    def take(self, who: str | Payers, n: int) -> None:
        """Reserve ``n`` images for ``who`` (visitor and address) or raise ValidationError saying
        how many are left, or, with none left, when to retry."""
        payers = _payers(who)
        with self._lock:
            now = self._clock()
            if len(self._by) > 1000:
                self._forget_idle(now)
            refused = self._refusal(payers, n, now)
            if refused is not None:
                raise ValidationError(refused, code="Quota.Exceeded")
            self._count(payers, [now] * n)

    def _count(self, who: Payers, stamps: list[float]) -> None:
        for key, _, _ in self._queues(who):
            self._by.setdefault(key, deque()).extend(stamps)
        self._all.extend(stamps)

    def settle(self, who: str | Payers, reserved: int, spent: int) -> None:
        """A run that reserved ``reserved`` images ended having spent ``spent`` (what may have been
        billed): give back the rest, or count the extra when the service sent more than asked."""
        payers = _payers(who)
        if spent < reserved:
            self._give_back(payers, reserved - spent)
        elif spent > reserved:
            with self._lock:
                self._count(payers, [self._clock()] * (spent - reserved))

    def _give_back(self, who: Payers, n: int) -> None:
        with self._lock:
            for q in [self._by.get(key, deque()) for key, _, _ in self._queues(who)] + [self._all]:
                for _ in range(min(n, len(q))):
                    q.pop()

    def used(self, who: str | Payers) -> int:
        """Images ``who`` (a visitor) used in the last hour."""
        with self._lock:
            q = self._by.get(_payers(who).visitor, deque())
            self._trim(q, self._clock())
            return len(q)

    def used_by_address(self, address: str) -> int:
        """Images the client ``address`` used in the last hour (all its visitors)."""
        with self._lock:
            q = self._by.get("addr:" + address, deque())
            self._trim(q, self._clock())
            return len(q)

    def used_total(self) -> int:
        """Images everyone used in the last hour."""
        with self._lock:
            self._trim(self._all, self._clock())
            return len(self._all)


def payer_id(owner: str | None, client_host: str | None) -> Payers:
    """Who a run's hourly limits count against: the visitor's stable ``owner`` (from their cookie
    or page session), or for a call with neither (each gets a fresh owner) the client's address,
    so new calls do not mean a new budget; and in every case the client's address."""
    host = client_host or "unknown"
    return Payers(owner or "ip:" + host, host)


def spent(stored: int, failures: Sequence[AliyunImageError]) -> int:
    """Images that may have been billed: the ``stored`` ones and failures that may have been."""
    return stored + sum(1 for f in failures if may_be_billed(f))


@dataclass
class Reservation:
    """Images set aside for one run; :meth:`settle` when it ends. Without a quota (a visitor's own
    key, or local mode) it only remembers the size of the run."""

    quota: HourlyQuota | None
    payer: str | Payers
    n: int

    @classmethod
    def take(cls, quota: HourlyQuota | None, payer: str | Payers, n: int) -> Reservation:
        """Reserve ``n`` images for ``payer``, or raise ValidationError saying when to retry."""
        if quota is not None:
            quota.take(payer, n)
        return cls(quota, payer, n)

    def settle(self, stored: int, failures: Sequence[AliyunImageError]) -> None:
        """The run ended with ``stored`` images and ``failures``: refund what was surely not billed."""
        if self.quota is not None:
            self.quota.settle(self.payer, self.n, spent(stored, failures))
