"""How many runs and batches may go at once, and for whom: the one place of those rules.

The app's run events share one queue of ``--concurrency`` places (Gradio's ``concurrency_id="runs"``),
and every run or batch holds a worker thread and the account scheduler's attention while it goes. A
hosted visitor with their own key is not bounded by the hourly quota (their bill), so without a cap
of its own one visitor could open every place through the raw queue and make everyone else wait.

What counts, and against what (:meth:`RunSlots.take`):

============  ==========================================  ================================
kind          hosted                                      locally
============  ==========================================  ================================
``RUN``       the visitor's and the address's runs        nothing (one person, their app)
``BATCH``     the same, plus one batch per visitor, half  one batch at a time, and the
              of the app's batches per address, and       app's ``batch_max_running``
              ``batch_max_running`` batches in the app
``API_BATCH`` as ``BATCH``                                nothing (as before)
``WATCH``     the visitor's and the address's watchers,   nothing
              apart from their runs
============  ==========================================  ================================

``RUN`` is a run of text-to-image, edit, fusion or a variation; ``BATCH`` a batch of the Batch tab;
``API_BATCH`` a ``/batch`` or ``/grid`` call (an address's share of the app's batches: without it, one
address with as many cookies as the app runs batches would hold every place, and everyone else's
batches would be refused; no share when addresses are not capped); ``WATCH`` a page following a batch that runs already
(the Batch tab's show and Resume, the strip's pick): it holds a place of the app's "batches" queue
group, shared by everyone, for as long as it follows, and nothing else bounds how many pages of one
visitor do. A visitor may follow in as many pages at once as they may have runs going, an address as
many as its runs (the same caps, counted apart: watching never keeps anyone from running). The page
that started a batch follows it inside the batch's own place. The visitor is the stable owner of their cookie (else
their page session, else their address) and the address is the client's, after the proxies the
host trusts: the same payers as the hourly quota's (:func:`aliyun_image.money.payer_id`), so a new
cookie does not bring new places, and an office behind one address gets ``runs_per_address``.

A slot is held for as long as what it counts goes on, not for as long as a page watches: runs and
batches outlive the page that started them, and a visitor who closed the connection must not be able
to start more in the background. Its holder releases it on every way out (:meth:`RunSlot.release`
is idempotent and thread-safe); a refusal holds nothing, sends nothing and bills nothing.
"""

from __future__ import annotations

import threading
from collections import Counter
from enum import Enum

from ..errors import ValidationError
from ..i18n import msg
from ..money import Payers

__all__ = ["RunKind", "RunSlot", "RunSlots"]

LOCAL = "local"  # the one visitor of an app that is not hosted


class RunKind(str, Enum):
    """What a slot is taken for (see the module's table)."""

    RUN = "run"
    BATCH = "batch"
    API_BATCH = "api_batch"
    WATCH = "watch"


class RunSlot:
    """One place held by a run or a batch; :meth:`release` it when that ends (any number of times)."""

    def __init__(self, slots: RunSlots | None, keys: tuple[str, ...]):
        self._slots = slots
        self._keys = keys
        self._lock = threading.Lock()

    def release(self) -> None:
        """Give the place back (a no-op after the first call, and for a slot nothing counts)."""
        with self._lock:
            slots, self._slots = self._slots, None
        if slots is not None:
            slots._give_back(self._keys)

    def hand_over(self) -> RunSlot:
        """The same place under a new handle, this one becoming inert: what takes the work over (a
        batch's thread) releases it, and a late release of the old handle (its caller cancelled
        just after the start) gives nothing back twice."""
        with self._lock:
            slots, self._slots = self._slots, None
        return RunSlot(slots, self._keys)

    def __enter__(self) -> RunSlot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    @property
    def held(self) -> bool:
        """True until released (or handed over)."""
        return self._slots is not None


class RunSlots:
    """The runs and batches going now, counted per visitor, per address, and batches in all.

    ``per_visitor`` / ``per_address``: runs and batches one hosted visitor / client address may have
    going at once (0: no cap); ``batches``: batches the app runs at once; ``hosted``: the mode.
    """

    def __init__(self, *, hosted: bool, per_visitor: int, per_address: int, batches: int):
        self.hosted = hosted
        self.per_visitor = max(0, per_visitor)
        self.per_address = max(0, per_address)
        self.batches = max(1, batches)
        # batches one address may run at once: half the app's (at least one), never more than its runs
        self.address_batches = min(self.per_address, max(1, self.batches // 2)) if self.per_address else 0
        self._lock = threading.Lock()
        # "v:<visitor>", "a:<address>", "b:<visitor>", "ab:<address>", "batches"; watchers "w:", "wa:"
        self._going: Counter[str] = Counter()

    def take(self, who: Payers, kind: RunKind = RunKind.RUN) -> RunSlot:
        """Hold a place for a run or batch of ``who`` (see the module's table), or raise
        ValidationError saying what is going and what to do; nothing is held then."""
        counted = self.hosted or kind == RunKind.BATCH
        if not counted:
            return RunSlot(None, ())
        visitor = who.visitor if self.hosted else LOCAL
        keys: list[str] = []
        if kind == RunKind.WATCH:  # hosted only (see counted): "w" and "wa" count apart from runs
            keys.append("w:" + visitor)
            if who.address is not None:
                keys.append("wa:" + who.address)
        elif self.hosted:
            keys.append("v:" + visitor)
            if who.address is not None:
                keys.append("a:" + who.address)
        if kind in (RunKind.BATCH, RunKind.API_BATCH):
            keys.append("b:" + visitor)
            if self.hosted and who.address is not None:
                keys.append("ab:" + who.address)
            keys.append("batches")
        with self._lock:
            self._refuse(keys)
            self._going.update(keys)
        return RunSlot(self, tuple(keys))

    def _refuse(self, keys: list[str]) -> None:
        """Raise when one more on ``keys`` would cross a cap (the caller holds the lock)."""
        for key in keys:
            kind, going = key.partition(":")[0], self._going[key]
            if kind == "v" and self.per_visitor and going >= self.per_visitor:
                raise ValidationError(msg("run_slots.visitor", limit=self.per_visitor), code="Runs.PerVisitor")
            if kind == "a" and self.per_address and going >= self.per_address:
                raise ValidationError(msg("run_slots.address", limit=self.per_address), code="Runs.PerAddress")
            if kind == "w" and self.per_visitor and going >= self.per_visitor:
                raise ValidationError(msg("run_watchers.visitor", limit=self.per_visitor), code="Runs.Watchers")
            if kind == "wa" and self.per_address and going >= self.per_address:
                raise ValidationError(msg("run_watchers.address", limit=self.per_address),
                                      code="Runs.WatchersPerAddress")
            if kind == "b" and going >= 1:
                raise ValidationError(msg("ui.batch.one_at_a_time"), code="Batch.OneAtATime")
            if kind == "ab" and self.address_batches and going >= self.address_batches:
                raise ValidationError(msg("run_batches.address", limit=self.address_batches),
                                      code="Batch.PerAddress")
            if kind == "batches" and going >= self.batches:
                raise ValidationError(msg("ui.batch.server_busy", limit=self.batches), code="Batch.ServerBusy")

    def _give_back(self, keys: tuple[str, ...]) -> None:
        with self._lock:
            self._going.subtract(keys)
            for key in keys:  # a visitor with nothing going costs nothing
                if self._going[key] <= 0:
                    del self._going[key]

    def going(self, who: Payers) -> int:
        """Runs and batches ``who`` (a hosted visitor) has going now."""
        with self._lock:
            return self._going["v:" + who.visitor]

    def batches_going(self) -> int:
        """Batches that hold a place now (the Batch tab's, and hosted the API's)."""
        with self._lock:
            return self._going["batches"]
