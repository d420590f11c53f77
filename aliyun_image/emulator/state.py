"""What a running emulator shares between its threads: :class:`EmulatorState`.

The :class:`~.server.Emulator` owns one and hands it to the HTTP server, which passes it to
the endpoints and the control surface. Those modules depend on this one only (never on the
server), so the serving code has no import cycle: server -> handler -> endpoints/control ->
state -> the stores.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..catalog import SEED_MAX
from .faults import FaultBook
from .inputs import Resolver
from .oss import OssBucket
from .errors import ServiceError
from .records import Recorded
from .regions import BEIJING, key_belongs
from .render import InputThumbs
from .results import ServedImages
from .tasks import AsyncTask, TaskStore

MAX_RECORDED = 20_000  # oldest records are dropped beyond this (long-running demo servers)
MSG_RATE = "Requests rate limit exceeded, please try again later."  # the service's 429 message (protocol 6)

Latency = float | tuple[float, float]


def _opened(event: threading.Event) -> threading.Event:
    event.set()
    return event


@dataclass(eq=False)
class EmulatorState:
    """The stores, settings, recorded requests and counters of one emulator.

    Settings (``latency``, ``task_delay``, ``url_ttl``, ``policy_ttl``, ``api_keys``,
    ``region``, ``region_keys``, ``task_limit``, ``limit_retry_after``, ``image_latency``) may be changed while
    serving; ``origin`` and ``base_url`` are set once the server is bound.

    ``task_limit``: the account's limit on tasks in flight per key (sync generations inside
    their latency plus async tasks not yet finished); beyond it a request gets 429
    ``Throttling.RateQuota`` (with ``Retry-After: limit_retry_after`` when set) and is not
    carried out. None: no limit. ``throttled`` counts those 429s.
    ``lock`` guards ``requests``, the in-flight counters and ``rng``; the stores lock
    themselves.
    """

    inputs: InputThumbs
    results: ServedImages
    bucket: OssBucket
    tasks: TaskStore
    resolver: Resolver
    faults: FaultBook = field(default_factory=FaultBook)
    api_keys: set[str] | None = None
    region: str = BEIJING  # the region whose service this emulator plays (see .regions)
    region_keys: dict[str, str] = field(default_factory=dict)  # key -> the region it belongs to
    latency: Latency = 0.0
    image_latency: float = 0.0  # added per image of a synchronous reply (n images: latency + n x this)
    task_delay: float = 0.6
    url_ttl: float = 86400.0
    policy_ttl: float = 300.0
    origin: str = ""
    base_url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    in_flight: int = 0  # requests inside their latency right now
    peak_in_flight: int = 0  # the most at once since the last clear()
    task_limit: int | None = None
    limit_retry_after: float | None = None
    throttled: int = 0  # 429s sent for task_limit since the last clear()
    _busy_sync: dict[str, int] = field(default_factory=dict)  # key hash -> generations in flight
    _busy_tasks: dict[str, list[AsyncTask]] = field(default_factory=dict)  # key hash -> tasks maybe unfinished
    rng: random.Random = field(default_factory=random.Random)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    # Open unless a test holds replies (Emulator.hold): a held generation waits here after its latency,
    # so "the request is out and has not come back" is a state a test can set, not a race with a clock.
    gate: threading.Event = field(default_factory=lambda: _opened(threading.Event()))

    @classmethod
    def new(cls, *, fixed_image: bytes | None = None, seed: int = 0, **settings) -> EmulatorState:
        """Fresh, empty stores; ``settings`` are the dataclass's setting fields (``latency``...)."""
        secret = os.urandom(32)  # per instance: URLs and policies of another run are not accepted
        inputs = InputThumbs()
        results = ServedImages(inputs, secret, fixed_image=fixed_image)
        bucket = OssBucket(secret)
        resolver = Resolver(inputs, results, bucket, set())
        return cls(inputs, results, bucket, TaskStore(), resolver, rng=random.Random(seed), **settings)

    # --- recording -------------------------------------------------------------------------------
    def record(self, rec: Recorded) -> None:
        """Keep ``rec`` (the oldest are dropped beyond :data:`MAX_RECORDED`)."""
        with self.lock:
            self.requests.append(rec)
            if len(self.requests) > MAX_RECORDED:
                del self.requests[: len(self.requests) - MAX_RECORDED]

    def calls(self, endpoint: str) -> list[Recorded]:
        """Recorded requests of one endpoint, in order."""
        with self.lock:
            return [r for r in self.requests if r.endpoint == endpoint]

    def clear(self) -> None:
        """Forget recorded requests, pending faults and task outcomes; random faults off; replies
        no longer held."""
        self.gate.set()
        with self.lock:
            self.requests.clear()
            self.peak_in_flight = self.in_flight
            self.throttled = 0
        self.faults.clear()

    # --- helpers for the endpoints ---------------------------------------------------------------
    def key_ok(self, key: str) -> bool:
        """True when ``key`` is accepted: a key of ``region_keys``, one of ``api_keys`` if given,
        else any key that starts with ``sk-``, is at least 8 characters long and does not
        contain ``invalid``; and in every case the key belongs to the place the emulator plays
        (:attr:`region`: see :func:`.regions.key_belongs`)."""
        if not key_belongs(key, self.region, self.region_keys):
            return False  # a key works only in its own region and platform (models document 3, 7.4)
        if key in self.region_keys:
            return True
        if self.api_keys is not None:
            return key in self.api_keys
        return key.startswith("sk-") and len(key) >= 8 and "invalid" not in key.lower()

    # --- the account's limit on tasks in flight --------------------------------------------------
    @contextlib.contextmanager
    def task_slot(self, key: str, rec: Recorded | None = None) -> Iterator[str]:
        """Hold one of the key's ``task_limit`` slots for the block (a generation, or the creation
        of a task: :meth:`add_task` then keeps it busy until the task ends); beyond the limit raise
        429 ``Throttling.RateQuota`` (marking ``rec.throttled``). Yields the key's hash."""
        name = hashlib.sha256(key.encode()).hexdigest()[:16]  # keys are not kept, even here
        with self.lock:
            if self.task_limit is not None and self._busy(name) >= self.task_limit:
                self.throttled += 1
                if rec is not None:
                    rec.throttled = True
                after = self.limit_retry_after
                raise ServiceError(429, "Throttling.RateQuota", MSG_RATE,
                                   {"Retry-After": f"{after:g}"} if after is not None else None)
            self._busy_sync[name] = self._busy_sync.get(name, 0) + 1
        try:
            yield name
        finally:
            with self.lock:
                self._busy_sync[name] -= 1
                if not self._busy_sync[name]:
                    del self._busy_sync[name]

    def add_task(self, name: str, task: AsyncTask) -> None:
        """Count ``task`` against key hash ``name``'s limit until it ends."""
        with self.lock:
            self._busy_tasks.setdefault(name, []).append(task)

    def _busy(self, name: str) -> int:
        """Tasks in flight for a key hash (call with ``lock`` held); forgets finished tasks."""
        running = [t for t in self._busy_tasks.get(name, []) if TaskStore.status(t) in ("PENDING", "RUNNING")]
        if running:
            self._busy_tasks[name] = running
        else:
            self._busy_tasks.pop(name, None)
        return self._busy_sync.get(name, 0) + len(running)

    def random_seed(self) -> int:
        """A seed for a request that gave none (the service picks one at random too)."""
        with self.lock:
            return self.rng.randint(0, SEED_MAX)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; returns True early if the emulator is stopping."""
        return self.stopping.wait(max(0.0, float(seconds))) if seconds > 0 else self.stopping.is_set()

    def sleep_latency(self, rec: Recorded | None = None, images: int = 0) -> None:
        """Apply ``latency`` (a number, or a ``(low, high)`` uniform range) plus ``images`` x
        ``image_latency``, note it on ``rec`` and count the requests inside it (``peak_in_flight``)."""
        lat = self.latency
        if isinstance(lat, (tuple, list)):
            with self.lock:
                lat = self.rng.uniform(float(lat[0]), float(lat[1]))
        lat = float(lat or 0.0) + max(0, images) * self.image_latency
        if rec is not None:
            rec.latency = float(lat or 0.0)
        with self.lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if lat and lat > 0:
                self.wait(lat)
            while not self.gate.wait(0.05) and not self.stopping.is_set():
                pass  # held: the reply waits for release() (or the emulator's stop)
        finally:
            with self.lock:
                self.in_flight -= 1

    def result_url(self, token: str, now: float | None = None) -> str:
        """The signed URL of one result, valid ``url_ttl`` seconds from ``now``."""
        return self.results.url(self.origin, token, self.url_ttl, now)

    def mint_urls(self, tokens: list[str]) -> list[str]:
        """Signed result URLs for ``tokens``, valid ``url_ttl`` seconds from now."""
        now = time.time()
        return [self.result_url(t, now) for t in tokens]
